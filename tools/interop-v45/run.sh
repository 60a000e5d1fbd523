#!/bin/bash
# Runs one interop scenario against the real Python Fed-BioMed v4.5.0 laid out by setup.sh:
#   run.sh py-researcher-ts-node | ts-researcher-py-nodes | mixed | all
# Starts Mosquitto, Fed-BioMed's Django file repository, an MQTT spy and the scenario's nodes on 127.0.0.1, runs the
# driver (py/), tears everything down (process groups, checked), prints `INTEROP scenario=NAME result=pass|fail`
# and exits non-zero on failure. Logs and the MQTT trace stay in $FBENV/runs/<scenario>-<time>/.
set -uo pipefail
. "$(dirname "$0")/lib/common.sh"

SCENARIOS="py-researcher-ts-node ts-researcher-py-nodes mixed"
case ${1:-} in
  all)
    rc=0
    for s in $SCENARIOS; do "$0" "$s" || rc=1; done
    exit $rc ;;
  py-researcher-ts-node | ts-researcher-py-nodes | mixed) SCENARIO=$1 ;;
  *) echo "usage: run.sh {${SCENARIOS// /|}|all}" >&2; exit 2 ;;
esac
[[ -f $FBENV/pristine/.configured ]] || die "run tools/interop-v45/setup.sh first (no $FBENV/pristine)"
grep -q "mqtt=$MQTT_PORT http=$HTTP_PORT " "$FBENV/pristine/.configured" ||
  die "setup.sh was run for other ports than $MQTT_PORT/$HTTP_PORT: run it again"

STARTED=$(date +%s)
RUN=$FBENV/runs/$SCENARIO-$(date -u +%Y%m%dT%H%M%S)
mkdir -p "$RUN"
TS_CLI="node $REPO_DIR/src/cli/bin.js"
PLAN_TS=$INTEROP_DIR/plan.ts
export FEDBIOMED_TS_THREADS=1   # 2 shared cores
fbm_env

# ---------------------------------------------------------------- process groups and teardown
GROUPS_STARTED=()
start() { # start NAME CMD...: in its own process group (setsid), output to $RUN/NAME.log
  local name=$1; shift
  setsid "$@" >"$RUN/$name.log" 2>&1 </dev/null &
  GROUPS_STARTED+=("$!:$name")
}
teardown() {
  local entry pgid name i left=()
  for ((i = ${#GROUPS_STARTED[@]} - 1; i >= 0; i--)); do # nodes first, broker last (nodes say goodbye over MQTT)
    entry=${GROUPS_STARTED[i]} pgid=${entry%%:*}
    kill -TERM -- "-$pgid" 2>/dev/null
    for _ in $(seq 50); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pgid" 2>/dev/null
  done
  wait 2>/dev/null
  for entry in "${GROUPS_STARTED[@]}"; do
    pgid=${entry%%:*} name=${entry#*:}
    pgrep -g "$pgid" >/dev/null && left+=("$name")
  done
  GROUPS_STARTED=()
  ((${#left[@]} == 0)) || { echo "interop-v45: processes left behind: ${left[*]}" >&2; return 1; }
}
finish() {
  local rc=$1
  trap - EXIT INT TERM
  teardown || rc=1
  local result=pass; ((rc == 0)) || result=fail
  echo "INTEROP scenario=$SCENARIO result=$result seconds=$(($(date +%s) - STARTED)) logs=$RUN"
  exit "$rc"
}
trap 'finish 130' INT TERM
trap 'finish 1' EXIT   # any unexpected exit still tears everything down and says fail

wait_until() { # wait_until SECONDS WHAT CMD...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  while ((SECONDS < deadline)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  echo "interop-v45: $what not ready in time (logs in $RUN)" >&2
  return 1
}

# ---------------------------------------------------------------- the network: broker, file repository, spy
for port in "$MQTT_PORT" "$HTTP_PORT"; do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port is taken (INTEROP_MQTT_PORT / INTEROP_HTTP_PORT)"
done
# Fed-BioMed v4.5.0 keeps node databases and queues beside its package: back to setup.sh's state
rm -rf "$FBM_ROOT/etc" "$FBM_ROOT/var" && cp -a "$FBENV/pristine/etc" "$FBENV/pristine/var" "$FBM_ROOT/"
cp -a "$FBENV/restful-app" "$RUN/restful"

cat >"$RUN/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
EOF
start mosquitto /usr/sbin/mosquitto -c "$RUN/mosquitto.conf"
start restful env DJANGO_SETTINGS_MODULE=fedbiomed.settings /usr/bin/gunicorn -w 2 -b "127.0.0.1:$HTTP_PORT" \
  --chdir "$RUN/restful" --access-logfile - fedbiomed.wsgi
wait_until 20 "mosquitto" bash -c "exec 3<>/dev/tcp/127.0.0.1/$MQTT_PORT" || finish 1
wait_until 60 "the file repository" curl -sf "http://127.0.0.1:$HTTP_PORT/upload/" || finish 1
start spy $PY "$INTEROP_DIR/py/spy.py" "$MQTT_PORT" "$RUN/mqtt-trace.jsonl" "$RUN/spy.ready"
wait_until 20 "the MQTT spy" test -f "$RUN/spy.ready" || finish 1

# ---------------------------------------------------------------- nodes
start_py_node() { # Fed-BioMed's own node CLI, its config and database from setup.sh
  start "$1" env CONFIG_FILE="config_$1.ini" $PY -m fedbiomed.node.cli -s
}
init_ts_node() { # fedbiomed-ts node, approval on, with its CSV
  local dir=$RUN/ts_node
  $TS_CLI node init --dir "$dir" --id ts_node --broker "$BROKER_URL" --uploads-url "$UPLOADS_URL" --approval on &&
    $TS_CLI node dataset add --dir "$dir" --type csv --path "$FBENV/data/ts_node/tabular.csv" --tags csv,interop \
      --name tabular-ts_node --description "interop-v45 synthetic tabular data (ts_node)"
} >>"$RUN/ts_node-init.log" 2>&1
start_ts_node() { start ts_node $TS_CLI node start --dir "$RUN/ts_node"; }
wait_nodes() { wait_until 120 "nodes $*" $PY "$INTEROP_DIR/py/wait_nodes.py" "$MQTT_PORT" "$@"; }
py_operator() { # what py_node2's operator types: approve the one pending plan (menu entry 1) with the node CLI
  echo "cd $FBENV && echo 1 | CONFIG_FILE=config_$1.ini $PY -m fedbiomed.node.cli --approve-training-plan"
}
ts_operator() { echo "$TS_CLI node plan approve --dir $RUN/ts_node $($TS_CLI plan hash "$PLAN_TS")"; }

driver() { # driver SCRIPT: the scenario's checks; only their lines on the terminal, everything in driver.log
  : >"$RUN/driver.log"
  timeout 900 $PY "$INTEROP_DIR/py/$1" >>"$RUN/driver.log" 2>&1 &
  local pid=$!
  tail -n +1 -f --pid=$pid "$RUN/driver.log" | grep --line-buffered '^\['
  wait $pid
}

export BROKER_URL UPLOADS_URL TS_CLI PLAN_TS RUN_DIR=$RUN TRACE=$RUN/mqtt-trace.jsonl SCENARIO
cd "$RUN" || finish 1
case $SCENARIO in
  py-researcher-ts-node)
    init_ts_node || finish 1
    start_ts_node
    wait_nodes ts_node || finish 1
    $TS_CLI plan export "$PLAN_TS" --python "$RUN/InteropCsvMlp.py" >/dev/null || finish 1
    TS_NODE_ID=ts_node PLAN_PY=$RUN/InteropCsvMlp.py PLAN_CLASS=InteropCsvMlp APPROVE_CMD=$(ts_operator) \
      CONFIG_FILE=config_researcher.ini RESEARCHER_ID=py_researcher driver py_researcher.py
    finish $? ;;
  ts-researcher-py-nodes)
    start_py_node py_node1
    start_py_node py_node2
    wait_nodes py_node1 py_node2 || finish 1
    NODES=py_node1,py_node2 ROWS=py_node1:48,py_node2:80 APPROVAL_OFF=py_node1 OPERATOR_py_node2=$(py_operator py_node2) \
      driver ts_researcher.py
    finish $? ;;
  mixed)
    init_ts_node || finish 1
    start_py_node py_node2
    start_ts_node
    wait_nodes py_node2 ts_node || finish 1
    NODES=py_node2,ts_node ROWS=py_node2:80,ts_node:64 APPROVAL_OFF= OPERATOR_py_node2=$(py_operator py_node2) \
      OPERATOR_ts_node=$(ts_operator) driver ts_researcher.py
    finish $? ;;
esac

#!/usr/bin/env bash
# Dev tool (not run by CI): runs the real Fed-BioMed v6.3.3 laid out by setup.sh (FBM6_DIR, default /work/fbm6).
#
#   run.sh spike      the runbook's one FedAvg round: real v6 researcher + real v6 node (port 50057)
#   run.sh ts-nodes [--record DIR]
#                     the real v6 researcher (port 50059) drives two fedbiomed-ts nodes: ping, list, search,
#                     approval (approved on the nodes by their CLI), status, 2 FedAvg rounds + validation; FedAvg is
#                     recomputed independently from the replies; --record copies the traffic into DIR
#   run.sh bench      the same two nodes (a real v6.3.3 node, a fedbiomed-ts node), same run: 2 FedAvg rounds +
#                     validation timed under the real v6 researcher, then under ours (same port, same certificate)
#   run.sh ts-researcher [--record DIR]
#                     our researcher (the Experiment over researcher/v6-link.ts, port 50061) drives a real v6.3.3 node and a
#                     fedbiomed-ts node: ping, list, search, approval, status, 2 FedAvg rounds + validation
#   run.sh image-plan the demo's image plan (v6 MedicalFolderDataset on NIfTI) trained one round on a real v6 node
#                     by our researcher (port 50063)
#   run.sh plan-hash [DIR]
#                     the real v6 node's hash of our v6 plans (python-minifier + SHA256), recorded into DIR
#
# Every Python process runs in its own process group and is killed by group id on exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
S=${FBM6_DIR:-/work/fbm6}
[ -f "$S/env.sh" ] || { echo "run tools/interop-v6/setup.sh first ($S/env.sh missing)" >&2; exit 1; }
. "$S/env.sh"
PY=/usr/bin/python3
PIDS=()
NODE_PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -- -"$p" 2>/dev/null || true; done; }
trap cleanup EXIT

case "${1:-}" in
  spike)
    RUN=$S/spike
    mkdir -p "$RUN" && cp -r /work/shared/fedbiomed-v6-real-network/run/. "$RUN/" && chmod -R u+w "$RUN"
    cd "$RUN"
    export FBM_RESEARCHER_PORT=50057 FBM_SERVER_PORT=50057 FBM_SERVER_HOST=localhost FBM_RESEARCHER_IP=localhost
    export FBM_RESEARCHER_COMPONENT_ROOT=$RUN/fbm-researcher
    sed "s#RUN_DIR#$RUN#" ds.json > ds.local.json
    [ -d fbm-node ] || (echo y | $PY -m fedbiomed.cli node -p ./fbm-node dataset add --file ds.local.json >/dev/null)
    setsid $PY -m fedbiomed.cli node -p ./fbm-node start > node.log 2>&1 < /dev/null &
    PIDS+=($!)
    timeout 280 $PY exp_spike.py > exp.log 2>&1 || { tail -20 exp.log; exit 1; }
    grep SPIKE_ exp.log
    ;;
  ts-nodes)
    RECORD=""
    if [ "${2:-}" = "--record" ]; then RECORD=$(realpath -m "${3:?--record DIR}"); fi
    REPO=$(cd "$HERE/../.." && pwd)
    TS="node $REPO/bin/fedbiomed-ts.js"
    RUN=$S/tsrun
    rm -rf "$RUN" && mkdir -p "$RUN"
    cd "$RUN"
    CSV=/work/shared/fedbiomed-v6-real-network/run/data/lin.csv
    { head -1 $CSV; sed -n '2,81p' $CSV; } > a.csv
    { head -1 $CSV; sed -n '82,141p' $CSV; } > b.csv
    { head -1 $CSV; sed -n '142,201p' $CSV; } > c.csv
    HASH=$($TS plan export "$HERE/lin-plan.ts" --fedbiomed v6 --python "$RUN/lin_plan.py" | sed 's/.*sha256 //')
    for n in a b; do
      $TS node init --dir node_$n --id NODE_fbts_$n --protocol v6 --researcher localhost:50059 --name fbts-$n >/dev/null
      $TS node dataset add --dir node_$n --type csv --path $n.csv --tags '#ts' --name lin-$n >/dev/null
      setsid npx --prefix "$REPO" ts-node --transpile-only "$HERE/record-node.ts" node_$n rec_$n > node_$n.log 2>&1 < /dev/null &
      PIDS+=($!); NODE_PIDS+=($!)
    done
    # A real Fed-BioMed v6.3.3 node beside them (mixed federation), running the generated plan's v6 variant.
    export FBM_RESEARCHER_PORT=50059 FBM_RESEARCHER_IP=localhost
    echo "{\"path\": \"$RUN/c.csv\", \"data_type\": \"csv\", \"description\": \"v6 python node\", \"tags\": \"#ts\", \"name\": \"lin-c\"}" > ds_c.json
    echo y | $PY -m fedbiomed.cli node -p ./node_py dataset add --file ds_c.json > node_py.log 2>&1
    setsid $PY -m fedbiomed.cli node -p ./node_py start >> node_py.log 2>&1 < /dev/null &
    PIDS+=($!)
    # The researcher broadcasts its search once, 3 s after it starts: the nodes must be polling by then.
    for n in a b; do
      for _ in $(seq 300); do grep -q " ready: " node_$n.log 2>/dev/null && break; sleep 0.2; done
    done
    export FBM_SERVER_PORT=50059 FBM_SERVER_HOST=localhost FBM_RESEARCHER_COMPONENT_ROOT=$RUN/fbm-researcher
    export INTEROP_APPROVED_FLAG=$RUN/approved.flag INTEROP_OUT=$RUN/replies.json
    cp "$HERE/exp_ts_nodes.py" .
    setsid timeout 300 $PY exp_ts_nodes.py > exp.log 2>&1 < /dev/null &
    EXP=$!
    PIDS+=($EXP)
    for _ in $(seq 600); do grep -q INTEROP_APPROVAL_SENT exp.log 2>/dev/null && break; kill -0 $EXP 2>/dev/null || break; sleep 0.2; done
    for n in a b; do $TS node plan approve "${HASH:0:12}" --dir node_$n; done
    touch approved.flag
    wait $EXP || { tail -30 exp.log; exit 1; }
    grep INTEROP_ exp.log
    $PY "$HERE/check_fedavg.py" replies.json
    for p in "${NODE_PIDS[@]}"; do kill -TERM -"$p" 2>/dev/null || true; done
    sleep 2
    if [ -n "$RECORD" ]; then
      DEST=$RECORD; rm -rf "$DEST" && mkdir -p "$DEST"
      cp -r rec_a "$DEST/node_a" && cp -r rec_b "$DEST/node_b"
      cp a.csv b.csv lin_plan.py replies.json "$DEST/"
      cp fbm-researcher/etc/certs/server_certificate.pem fbm-researcher/etc/certs/server_certificate.key "$DEST/"
      grep -E "WARNING|ERROR" exp.log > "$DEST/researcher-warnings.log" || true
      echo "recorded into $DEST"
    fi
    ;;
  ts-researcher|bench)
    MODE=$1
    REPO=$(cd "$HERE/../.." && pwd)
    TS="node $REPO/bin/fedbiomed-ts.js"
    RUN=$S/$MODE
    rm -rf "$RUN" && mkdir -p "$RUN"
    cd "$RUN"
    CSV=/work/shared/fedbiomed-v6-real-network/run/data/lin.csv
    { head -1 $CSV; sed -n '2,81p' $CSV; } > a.csv
    { head -1 $CSV; sed -n '142,201p' $CSV; } > c.csv
    $TS node init --dir node_a --id NODE_fbts_a --protocol v6 --researcher localhost:50061 --approval off >/dev/null
    $TS node dataset add --dir node_a --type csv --path a.csv --tags '#ts' --name lin-a >/dev/null
    setsid npx --prefix "$REPO" ts-node --transpile-only "$HERE/record-node.ts" node_a rec_a > node_a.log 2>&1 < /dev/null &
    PIDS+=($!)
    export FBM_RESEARCHER_PORT=50061 FBM_RESEARCHER_IP=localhost
    echo "{\"path\": \"$RUN/c.csv\", \"data_type\": \"csv\", \"description\": \"v6 python node\", \"tags\": \"#ts\", \"name\": \"lin-c\"}" > ds_c.json
    echo y | $PY -m fedbiomed.cli node -p ./node_py dataset add --file ds_c.json > node_py.log 2>&1
    setsid $PY -m fedbiomed.cli node -p ./node_py start >> node_py.log 2>&1 < /dev/null &
    PIDS+=($!)
    if [ "$MODE" = bench ]; then
      for _ in $(seq 300); do grep -q " ready: " node_a.log 2>/dev/null && break; sleep 0.2; done
      $TS plan export "$HERE/lin-plan.ts" --fedbiomed v6 --python "$RUN/lin_plan.py" >/dev/null
      cp "$HERE/exp_bench.py" .
      FBM_SERVER_PORT=50061 FBM_SERVER_HOST=localhost FBM_RESEARCHER_COMPONENT_ROOT=$RUN/fbm-researcher \
        timeout 300 $PY exp_bench.py > real.log 2>&1 || { tail -30 real.log; exit 1; }
      # Ours takes over the real researcher's identity: the TS node pinned its certificate.
      mkdir -p researcher/certs && cp fbm-researcher/etc/certs/server_certificate.* researcher/certs/
      RID=$(openssl x509 -in researcher/certs/server_certificate.pem -noout -subject -nameopt multiline | sed -n 's/ *organizationName *= *//p')
      echo "{\"researcher_id\": \"$RID\"}" > researcher/researcher.json
    fi
    [ "${2:-}" = "--record" ] && export TSR_RECORD=$(realpath -m "${3:?--record DIR}") && rm -rf "$TSR_RECORD"
    (cd "$REPO" && timeout 300 npx ts-node --transpile-only "$HERE/ts-researcher.ts" "$RUN/researcher" 50061 2 \
      "$RUN/replies.json") > researcher.log 2>&1 || { tail -30 researcher.log; tail -30 node_py.log; exit 1; }
    grep TSR_ researcher.log | grep -v TSR_NODE_LOG
    $PY "$HERE/check_fedavg.py" replies.json
    if [ "$MODE" = bench ]; then
      REAL=$(sed -n 's/BENCH_REAL_MS //p' real.log); OURS=$(sed -n 's/.*TSR_ROUNDS_DONE 2 \([0-9]*\) ms.*/\1/p' researcher.log)
      echo "RESULT real_v6_researcher_ms=$REAL ts_v6_researcher_ms=$OURS ratio_real_over_ours=$(echo "scale=2; $REAL/$OURS" | bc)"
    fi
    echo "real v6 node warnings/errors:"; grep -E "WARNING|ERROR" node_py.log | grep -v "Not able to send log message" || true
    ;;
  image-plan)
    REPO=$(cd "$HERE/../.." && pwd)
    TS="node $REPO/bin/fedbiomed-ts.js"
    RUN=$S/image-plan
    rm -rf "$RUN" && mkdir -p "$RUN"
    cd "$RUN"
    $TS demo data --out cohort > cohort.log
    SITE=$RUN/cohort/$(cd cohort && ls -d */medical-folder | head -1)
    export FBM_RESEARCHER_PORT=50063 FBM_RESEARCHER_IP=localhost
    cat > ds.json <<JSON
{"path": "$SITE", "data_type": "medical-folder", "description": "demo site, NIfTI", "tags": "gbm-v6", "name": "gbm",
 "dataset_parameters": {"tabular_file": "$SITE/demographics.csv", "index_col": "patient_id"}}
JSON
    echo y | $PY -m fedbiomed.cli node -p ./node_py dataset add --file ds.json > node_py.log 2>&1
    setsid $PY -m fedbiomed.cli node -p ./node_py start >> node_py.log 2>&1 < /dev/null &
    PIDS+=($!)
    (cd "$REPO" && timeout 900 npx ts-node --transpile-only "$HERE/image-plan.ts" "$RUN/researcher" 50063) > researcher.log 2>&1 \
      || { tail -30 researcher.log; tail -40 node_py.log; exit 1; }
    grep -E "TSR_IMAGE_(ROUND|WEIGHTS)" researcher.log
    echo "real v6 node warnings/errors:"; grep -E "WARNING|ERROR" node_py.log | grep -v "Not able to send log message" || true
    ;;
  plan-hash)
    # The hash a real v6 node computes for our v6 plans (its own _create_hash: python-minifier + SHA256), recorded
    # with the minified text into DIR (default: the repository's vectors, checked by src/plan/v6-plan-hash.test.ts).
    REPO=$(cd "$HERE/../.." && pwd)
    TS="node $REPO/bin/fedbiomed-ts.js"
    DEST=$(realpath -m "${2:-$REPO/src/transport/v6/testing/vectors/plan-hash}")
    mkdir -p "$DEST"
    $TS plan export "$HERE/lin-plan.ts" --fedbiomed v6 --python "$DEST/lin_plan_v6.py" >/dev/null
    (cd "$REPO" && npx ts-node --transpile-only -e "
      const fs = require('fs');
      const { generateTorchPlan } = require('./src/plan/pytorch');
      const { glioResponsePlan } = require('./examples/glioblastoma/plan');
      const { demoConfig } = require('./examples/glioblastoma/demo-config');
      const spec = glioResponsePlan({ volumeSize: demoConfig({}).volumeSize });
      fs.writeFileSync('$DEST/glio_plan_v6.py', generateTorchPlan(spec, { fedbiomed: 'v6' }));")
    for p in lin_plan_v6 glio_plan_v6; do
      $PY "$HERE/plan_hash.py" "$DEST/$p.py" "$DEST/$p" 2>/dev/null | sed "s/^/$p /"
    done | tee "$DEST/hashes.txt"
    ;;
  *)
    sed -n '2,18p' "$0"; exit 2 ;;
esac

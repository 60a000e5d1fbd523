#!/usr/bin/env bash
# Dev tool (not run by CI): runs the real Fed-BioMed v6.3.3 laid out by setup.sh (FBM6_DIR, default /work/fbm6).
#
#   run.sh spike      the runbook's one FedAvg round: real v6 researcher + real v6 node (port 50057)
#
# Every Python process runs in its own process group and is killed by group id on exit.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
S=${FBM6_DIR:-/work/fbm6}
[ -f "$S/env.sh" ] || { echo "run tools/interop-v6/setup.sh first ($S/env.sh missing)" >&2; exit 1; }
. "$S/env.sh"
PY=/usr/bin/python3
PIDS=()
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
  *)
    sed -n '2,6p' "$0"; exit 2 ;;
esac

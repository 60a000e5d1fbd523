# Shared settings of setup.sh and run.sh (sourced, not run).
# Everything Fed-BioMed lives under $FBENV, outside the repository; nothing listens beyond 127.0.0.1.

INTEROP_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REPO_DIR=$(cd "$INTEROP_DIR/../.." && pwd)
FBENV=${FBENV:-/work/fbenv}
PY=/usr/bin/python3                      # Debian's Python: torch 1.13 & co. come from apt, never from pip
MQTT_PORT=${INTEROP_MQTT_PORT:-18831}    # unusual ports, so a developer's own broker/repository on 1883/8844 is left alone
HTTP_PORT=${INTEROP_HTTP_PORT:-18844}
BROKER_URL=mqtt://127.0.0.1:$MQTT_PORT
UPLOADS_URL=http://127.0.0.1:$HTTP_PORT/upload/
FBM_ROOT=$FBENV/src/fedbiomed           # Fed-BioMed v4.5.0 puts etc/ and var/ beside its package
PY_NODES="py_node1 py_node2"            # py_node1: approval off; py_node2: approval on (as the recorded network)

# The environment every Fed-BioMed process gets.
fbm_env() {
  export PYTHONPATH=$FBENV/stubs:$FBM_ROOT:$FBENV/src/tinydb:$FBENV/src/declearn:$FBENV/src/python-minifier/src
  export MQTT_BROKER=127.0.0.1 MQTT_BROKER_PORT=$MQTT_PORT UPLOADS_URL=$UPLOADS_URL
  export PYTHONDONTWRITEBYTECODE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1   # 2 shared cores: one thread per process
}

die() {
  echo "interop-v45: $*" >&2
  exit 1
}

#!/bin/bash
# Lays out a real Python Fed-BioMed v4.5.0 under $FBENV (default /work/fbenv, outside the repository) for run.sh:
# Debian packages, the upstream sources at their tags, our import-only stubs, two Python nodes (configs written by
# Fed-BioMed itself, one CSV dataset each), a researcher config and Fed-BioMed's Django file repository (migrated).
# Starts nothing. Idempotent: a second run only checks; --force rebuilds the node/researcher state.
#
# Sources come from git snapshots (bare git dirs). By default they are looked up where the `fetch` tool puts them,
# $MIRROR_DIR/<owner>+<name>/repo (MIRROR_DIR=/work/.mirror); override one with FEDBIOMED_GIT, TINYDB_GIT,
# DECLEARN_GIT, MINIFIER_GIT (a git dir holding the tag) or FEDBIOMED_SRC, TINYDB_SRC, DECLEARN_SRC, MINIFIER_SRC
# (a source tree already at the tag).
set -euo pipefail
. "$(dirname "$0")/lib/common.sh"

FORCE=0
for arg in "$@"; do
  case $arg in
    --force) FORCE=1 ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $arg (setup.sh [--force])" ;;
  esac
done
MIRROR_DIR=${MIRROR_DIR:-/work/.mirror}

# ---------------------------------------------------------------- Debian packages
# What Fed-BioMed v4.5.0 imports (node, researcher, declearn) and what runs the file repository and the broker.
DEB_PACKAGES="mosquitto python3-torch python3-torchvision python3-paho-mqtt python3-msgpack python3-pandas
  python3-sklearn python3-requests python3-validators python3-tabulate python3-packaging python3-cryptography
  python3-openssl python3-joblib python3-persist-queue python3-gmpy2 python3-psutil python3-ipython python3-tk
  python3-pathvalidate python3-fire python3-tqdm python3-typing-extensions
  python3-django python3-djangorestframework python3-django-cleanup gunicorn"
missing=()
for p in $DEB_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "interop-v45: installing Debian packages: ${missing[*]}"
  [[ $(id -u) == 0 ]] || die "need root for apt-get install ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=900 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
[[ -x $PY ]] || die "$PY missing"

# ---------------------------------------------------------------- upstream sources at their tags
# name | GitHub repo | tag | paths to take | commit the tag must be (empty: not pinned)
SOURCES=(
  "fedbiomed|fedbiomed/fedbiomed|v4.5.0|fedbiomed envs|52ba56b7f11b62ee6250ebacb9b085cfb18a5938"
  "tinydb|msiemens/tinydb|v4.7.1|tinydb|"
  "declearn|DecLearn/declearn|v2.2.2|declearn|"
  "python-minifier|dflook/python-minifier|2.5.0|src|"
)
need_fetch=()
for entry in "${SOURCES[@]}"; do
  IFS='|' read -r name repo tag paths pinned <<<"$entry"
  var=$(echo "${name%%-*}" | tr a-z A-Z); [[ $name == python-minifier ]] && var=MINIFIER
  src_var=${var}_SRC git_var=${var}_GIT
  dest=$FBENV/src/$name stamp=$FBENV/src/$name/.interop-source
  if [[ -n ${!src_var:-} ]]; then
    origin="dir ${!src_var} (said to be $tag)"
    [[ -f $stamp && $(cat "$stamp") == "$origin" ]] && continue
    rm -rf "$dest" && mkdir -p "$dest"
    for p in $paths; do cp -a "${!src_var}/$p" "$dest/"; done
    echo "$origin" >"$stamp"
    continue
  fi
  gitdir=${!git_var:-$MIRROR_DIR/${repo/\//+}/repo}
  if ! commit=$(git --git-dir="$gitdir" rev-parse -q --verify "refs/tags/$tag^{commit}" 2>/dev/null); then
    need_fetch+=("$repo ($tag; expected at $gitdir, or set $git_var / $src_var)")
    continue
  fi
  [[ -z $pinned || $commit == "$pinned" ]] || die "$repo tag $tag is $commit, expected $pinned"
  origin="$repo $tag $commit"
  [[ -f $stamp && $(cat "$stamp") == "$origin" ]] && continue
  echo "interop-v45: laying out $repo $tag ($commit) in $dest"
  rm -rf "$dest" && mkdir -p "$dest"
  # shellcheck disable=SC2086 # paths is a word list
  git --git-dir="$gitdir" archive "$commit" -- $paths | tar -x -C "$dest"
  echo "$origin" >"$stamp"
done
if ((${#need_fetch[@]})); then
  echo "interop-v45: these source snapshots are missing:" >&2
  printf '  %s\n' "${need_fetch[@]}" >&2
  echo "Bring them with the search tool's fetch (they land in $MIRROR_DIR/<owner>+<name>/repo), then run setup.sh again:" >&2
  for m in "${need_fetch[@]}"; do echo "  fetch github:${m%% *}" >&2; done
  exit 2
fi

# ---------------------------------------------------------------- our stubs, the file repository app, the data
rm -rf "$FBENV/stubs" && cp -a "$INTEROP_DIR/stubs" "$FBENV/stubs"
rm -rf "$FBENV/restful-app"
cp -a "$FBM_ROOT/envs/development/docker/restful/run_mounts/app" "$FBENV/restful-app"
(cd "$FBENV/restful-app" && rm -f db.sqlite3 && DJANGO_SETTINGS_MODULE=fedbiomed.settings \
  $PY manage.py migrate -v 0)   # run.sh copies this migrated app (empty sqlite) for each run

# py_node1 48 rows, py_node2 80, ts_node 64: with test_ratio 0.25 the sample sizes are 36, 60 and 48.
$PY "$INTEROP_DIR/py/make_data.py" "$FBENV/data" py_node1:48:11 py_node2:80:22 ts_node:64:33

# ---------------------------------------------------------------- Fed-BioMed configs and node databases
# Written by Fed-BioMed itself on first use (CONFIG_FILE + NODE_ID/RESEARCHER_ID + network variables), then kept
# as a pristine copy that run.sh restores before each scenario.
stamp=$FBENV/pristine/.configured
want="mqtt=$MQTT_PORT http=$HTTP_PORT sources=$(cat "$FBENV"/src/*/.interop-source | sha256sum | cut -c1-16)"
if ((FORCE)) || [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "interop-v45: writing Fed-BioMed configs and node databases"
  fbm_env
  rm -rf "$FBM_ROOT/etc" "$FBM_ROOT/var" "$FBENV/pristine"
  for node in $PY_NODES; do
    approval=False; [[ $node == py_node2 ]] && approval=True
    cat >"$FBENV/data/$node/dataset.json" <<EOF
{"path": "$FBENV/data/$node/tabular.csv", "data_type": "csv", "description": "interop-v45 synthetic tabular data ($node)",
 "tags": "csv,interop", "name": "tabular-$node"}
EOF
    (cd "$FBENV" && CONFIG_FILE=config_$node.ini NODE_ID=$node ENABLE_TRAINING_PLAN_APPROVAL=$approval \
      ALLOW_DEFAULT_TRAINING_PLANS=True $PY -m fedbiomed.node.cli -adff "$FBENV/data/$node/dataset.json" \
      >"$FBENV/setup-$node.log" 2>&1) || die "adding the dataset of $node failed: $FBENV/setup-$node.log"
    grep -q "tabular-$node" "$FBM_ROOT/var/db_$node.json" || die "$node has no dataset after -adff (see $FBENV/setup-$node.log)"
  done
  (cd "$FBENV" && CONFIG_FILE=config_researcher.ini RESEARCHER_ID=py_researcher \
    $PY -c 'from fedbiomed.researcher.environ import environ; print(environ["RESEARCHER_ID"])' \
    >"$FBENV/setup-researcher.log" 2>&1) || die "researcher config failed: $FBENV/setup-researcher.log"
  mkdir -p "$FBENV/pristine"
  cp -a "$FBM_ROOT/etc" "$FBM_ROOT/var" "$FBENV/pristine/"
  echo "$want" >"$stamp"
fi

cat >"$FBENV/env.sh" <<EOF
# For poking at the Python side by hand: . $FBENV/env.sh; then CONFIG_FILE=config_py_node1.ini $PY -m fedbiomed.node.cli -l
$(declare -f fbm_env | sed "s#\$FBENV#$FBENV#g; s#\$FBM_ROOT#$FBM_ROOT#g; s#\$MQTT_PORT#$MQTT_PORT#g; s#\$UPLOADS_URL#$UPLOADS_URL#g")
fbm_env
EOF
echo "interop-v45: ready in $FBENV (broker port $MQTT_PORT, file repository port $HTTP_PORT). Now: tools/interop-v45/run.sh SCENARIO"

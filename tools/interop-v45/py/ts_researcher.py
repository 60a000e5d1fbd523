"""Scenarios ts-researcher-py-nodes and mixed: the fedbiomed-ts researcher CLI drives a federation holding real
Fed-BioMed v4.5.0 Python nodes (and, in mixed, a fedbiomed-ts node). Run by run.sh with these variables:
  SCENARIO       name printed with each check
  TS_CLI         how to call fedbiomed-ts (e.g. "node /repo/src/cli/bin.js")
  NODES          the federation's node ids, comma-separated
  ROWS           rows of each node's CSV, "id:rows,..." (sample size = 3/4 of it with test_ratio 0.25)
  APPROVAL_OFF   nodes with training-plan approval off (comma-separated, may be empty)
  OPERATOR_<id>  for each node with approval on: the shell command its operator approves the plan with
  PLAN_TS        the fedbiomed-ts plan; RUN_DIR where to write the experiment and outputs; TRACE the spy's trace
"""
import json
import os
import shlex
import subprocess
import sys
import time

from fedavg_check import check_fedavg, check_is_discriminative
from interop import Checks, read_trace

SCENARIO = os.environ["SCENARIO"]
NODES = os.environ["NODES"].split(",")
ROWS = {n: int(r) for n, r in (x.split(":") for x in os.environ["ROWS"].split(","))}
APPROVAL_OFF = set(filter(None, os.environ.get("APPROVAL_OFF", "").split(",")))
RUN_DIR = os.environ["RUN_DIR"]
PLAN = os.environ["PLAN_TS"]
BROKER = ["--broker", os.environ["BROKER_URL"], "--uploads", os.environ["UPLOADS_URL"]]
ROUNDS = 2

c = Checks(SCENARIO)


def cli(*args: str, timeout: float = 600) -> tuple:
    """Runs `fedbiomed-ts ARGS`; returns (exit code, parsed JSON stdout or None, stderr tail)."""
    cmd = shlex.split(os.environ["TS_CLI"]) + list(args)
    started = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    try:
        out = json.loads(p.stdout) if p.stdout.strip() else None
    except ValueError:
        out = None
    print(f"[{SCENARIO}]      $ fedbiomed-ts {' '.join(args[:2])} ... -> exit {p.returncode} in {time.time() - started:.1f} s",
          flush=True)
    if p.returncode != 0:
        print(p.stderr[-2000:], file=sys.stderr, flush=True)
    return p.returncode, out, p.stderr.strip()[-400:]


discover = ["--nodes", ",".join(NODES), "--timeout", "8000", "--json", *BROKER]

# --- discovery
rc, pong, err = cli("researcher", "ping", *discover)
c.check(rc == 0 and sorted(pong or {}) == sorted(NODES), "ping: every node answers pong", pong or err)

rc, listed, err = cli("researcher", "list", *discover)
for n in NODES:
    sets = (listed or {}).get(n) or []
    c.check(len(sets) == 1 and sets[0].get("name") == f"tabular-{n}" and sets[0].get("shape") == [ROWS[n], 5]
            and "path" not in sets[0], f"list: {n} lists tabular-{n} [{ROWS[n]}, 5] without path",
            [(d.get("name"), d.get("shape")) for d in sets])

rc, found, err = cli("researcher", "search", "--tags", "csv,interop", *discover)
c.check(rc == 0 and sorted(found or {}) == sorted(NODES), "search csv,interop: every node", sorted(found or {}) or err)
rc, found, err = cli("researcher", "search", "--tags", "nope", "--timeout", "6000", "--json", *BROKER)
c.check(found == {} or found is None and rc != 0, "search nope: no node answers", found)

# --- approval request, the operators' approval, status
rc, approval, err = cli("researcher", "approve", PLAN, "--description", f"interop-v45 {SCENARIO}", *discover)
replies = (approval or {}).get("replies", {})
c.check(rc == 0 and all(replies.get(n, {}).get("success") is True and replies[n].get("status") == 200 for n in NODES),
        "approval: every node downloads and stores the plan (status 200)", replies or err)

rc, status, err = cli("researcher", "status", PLAN, *discover)
for n in NODES:
    s = (status or {}).get(n, {})
    want = ("Pending", n not in APPROVAL_OFF)
    c.check((s.get("status"), s.get("approval_obligation")) == want,
            f"training-plan-status before the operators: {n} {want[0]}, approval_obligation {want[1]}", s or err)

for n in NODES:
    if n in APPROVAL_OFF:
        continue
    op = subprocess.run(os.environ[f"OPERATOR_{n}"], shell=True, capture_output=True, text=True)
    c.check(op.returncode == 0, f"{n}'s operator approves the plan", (op.stdout + op.stderr).strip()[-300:])

rc, status, err = cli("researcher", "status", PLAN, *discover)
for n in NODES:
    s = (status or {}).get(n, {})
    want = "Pending" if n in APPROVAL_OFF else "Approved"
    c.check(s.get("status") == want and s.get("can_train") is True, f"training-plan-status: {n} {want}, can train", s or err)

# --- the experiment: 2 FedAvg rounds and the validation round, with the recorded researcher's training arguments
experiment = os.path.join(RUN_DIR, "experiment.json")
with open(experiment, "w") as f:
    json.dump({
        "name": f"interop-v45 {SCENARIO}", "tags": ["csv", "interop"], "nodes": NODES, "plan": os.path.abspath(PLAN),
        "trainingArgs": {"loader_args": {"batch_size": 8}, "optimizer_args": {"lr": 0.01}, "num_updates": 3,
                         "log_interval": 1, "random_seed": 1234, "test_ratio": 0.25, "test_on_local_updates": True,
                         "test_on_global_updates": True, "test_metric": "ACCURACY"},
        "roundLimit": ROUNDS, "aggregator": "fedavg",
    }, f, indent=1)
final = os.path.join(RUN_DIR, "final-weights.mpk")
started = time.time()
rc, result, err = cli("researcher", "run", experiment, "--json", "--no-progress", "--weights", final,
                      "--history", os.path.join(RUN_DIR, "history.jsonl"), *BROKER)
c.check(rc == 0 and (result or {}).get("roundsCompleted") == ROUNDS, f"researcher run: {ROUNDS} rounds completed",
        f"exit {rc}, {time.time() - started:.1f} s" + ("" if rc == 0 else f": {err}"))
summaries = (result or {}).get("summaries", [])
training = [s for s in summaries if s["training"]]
validation = [s for s in summaries if not s["training"]]
c.check(len(training) == ROUNDS and all(s["aggregated"] for s in training), "every training round aggregated",
        [(s["round"], s["aggregated"]) for s in summaries])
for s in training:
    by = {x["nodeId"]: x for x in s["nodes"]}
    for n in NODES:
        x = by.get(n, {})
        c.check(x.get("status") == "ok" and x.get("sampleSize") == ROWS[n] * 3 // 4 and x.get("lastLoss") is not None
                and "ACCURACY" in (x.get("validationGlobal") or {}),
                f"round {s['round']}: {n} ok, sample size {ROWS[n] * 3 // 4}, loss and ACCURACY reported",
                {k: x.get(k) for k in ("status", "sampleSize", "lastLoss", "validationGlobal", "message")})
c.check(len(validation) == 1 and all(x["status"] == "ok" and "ACCURACY" in (x.get("validationGlobal") or {})
                                     for x in validation[0]["nodes"]) and len(validation[0]["nodes"]) == len(NODES),
        "validation round: every node tests the final weights", validation[0]["nodes"] if validation else None)

time.sleep(1)  # let the spy write the last messages
trace = read_trace(os.environ["TRACE"])
check_fedavg(trace, c, min_aggregations=ROUNDS, final_file=final if rc == 0 else None)
check_is_discriminative(trace, c)
sys.exit(c.summary())

"""Scenario py-researcher-ts-node: the real Fed-BioMed v4.5.0 researcher (its Requests and Experiment API) drives a
fedbiomed-ts node. Run by run.sh with Fed-BioMed on PYTHONPATH and these variables:
  TS_NODE_ID     the TS node's id
  PLAN_PY        the fedbiomed-ts generated TorchTrainingPlan (.py)
  PLAN_CLASS     its class name
  APPROVE_CMD    shell command with which the TS node's operator approves the plan (fedbiomed-ts node plan approve)
  TRACE          the spy's MQTT trace (for the validation round, monitoring and the FedAvg check)
"""
import math
import os
import subprocess
import sys
import time

from fedbiomed.common.metrics import MetricTypes
from fedbiomed.researcher.aggregators.fedavg import FedAverage
from fedbiomed.researcher.experiment import Experiment
from fedbiomed.researcher.requests import Requests

from fedavg_check import check_fedavg
from interop import Checks, read_trace

TS_NODE = os.environ["TS_NODE_ID"]
DATASET_NAME = "tabular-ts_node"
ROWS = 64  # the TS node's CSV (setup.sh)
TRAINING_ARGS = {  # those of the recorded Python researcher
    "loader_args": {"batch_size": 8}, "optimizer_args": {"lr": 0.01}, "num_updates": 3, "log_interval": 1,
    "random_seed": 1234, "test_ratio": 0.25, "test_on_local_updates": True, "test_on_global_updates": True,
    "test_metric": MetricTypes.ACCURACY,
}

c = Checks("py-researcher-ts-node")
reqs = Requests()

# --- discovery
pong = reqs.ping_nodes()
c.check(TS_NODE in pong, "ping: the TS node answers pong", pong)

listed = reqs.list()
ts_sets = listed.get(TS_NODE) or []
c.check(len(ts_sets) == 1 and ts_sets[0].get("name") == DATASET_NAME, "list (broadcast): the TS node lists its dataset",
        [d.get("name") for d in ts_sets])
if ts_sets:
    d = ts_sets[0]
    c.check(d.get("shape") == [ROWS, 5] and d.get("data_type") == "csv" and "path" not in d,
            "list: shape [64, 5], data_type csv, no path", {k: d.get(k) for k in ("shape", "data_type", "tags")})
only = reqs.list(nodes=[TS_NODE])
c.check(list(only) == [TS_NODE] and len(only[TS_NODE]) == 1, "list to the node's own topic", list(only))

found = reqs.search(["csv", "interop"])
c.check(TS_NODE in found and found[TS_NODE][0]["name"] == DATASET_NAME, "search csv+interop finds the TS dataset")
c.check(TS_NODE not in reqs.search(["nope"]), "search nope: the TS node stays silent")

# --- experiment, approval request, operator approval, status
exp = Experiment(tags=["csv", "interop"], nodes=[TS_NODE], training_plan_class=os.environ["PLAN_CLASS"],
                 training_plan_path=os.environ["PLAN_PY"], training_args=TRAINING_ARGS, round_limit=2,
                 aggregator=FedAverage(), tensorboard=False, save_breakpoints=False)
c.check(exp.training_data() is not None and TS_NODE in exp.training_data().node_ids(),
        "Experiment's own search selects the TS node")

approval = exp.training_plan_approve(exp.training_plan(), description="interop-v45 plan from the Python researcher")
c.check(approval.get(TS_NODE) is True, "approval: the TS node downloaded and stored the plan", approval)


def plan_status() -> dict:
    return {r["node_id"]: r for r in exp.check_training_plan_status().data()}


before = plan_status().get(TS_NODE, {})
c.check(before.get("status") == "Pending" and before.get("approval_obligation") is True,
        "training-plan-status before the operator: Pending, approval_obligation true",
        {k: before.get(k) for k in ("status", "approval_obligation", "success")})

op = subprocess.run(os.environ["APPROVE_CMD"], shell=True, capture_output=True, text=True)
c.check(op.returncode == 0, "the TS node's operator approves with fedbiomed-ts node plan approve",
        (op.stdout + op.stderr).strip())
after = plan_status().get(TS_NODE, {})
c.check(after.get("status") == "Approved" and after.get("success") is True,
        "training-plan-status after the operator: Approved", {k: after.get(k) for k in ("status", "success", "msg")})

# --- 2 rounds of FedAvg, then Fed-BioMed's own validation round on the final weights
started = time.time()
try:
    rounds = exp.run()
except BaseException as err:  # Experiment raises SystemExit on some failures: report it as a failed check
    rounds = f"{type(err).__name__}: {err}"
c.check(rounds == 2, "Experiment.run() completes 2 rounds", f"{rounds}, {time.time() - started:.1f} s")
replies = exp.training_replies() or {}
for r in range(2):
    got = replies.get(r)
    data = got.data() if got is not None else []
    ok = [x for x in data if x.get("node_id") == TS_NODE and x.get("success")]
    c.check(len(ok) == 1, f"round {r}: train reply success from the TS node", [x.get("msg") for x in data])
    if ok:
        c.check(ok[0].get("sample_size") == 48, f"round {r}: sample_size 48 (64 rows, test_ratio 0.25)",
                ok[0].get("sample_size"))
        params = ok[0].get("params") or {}
        c.check(sorted(params) == ["head.0.bias", "head.0.weight", "tabular.0.bias", "tabular.0.weight"]
                and all(math.isfinite(float(v.abs().sum())) for v in params.values()),
                f"round {r}: node params decoded by Fed-BioMed: PyTorch names, finite", sorted(params))
agg = exp.aggregated_params() or {}
c.check(sorted(agg) == [0, 1], "aggregated params for rounds 0 and 1", sorted(agg))

time.sleep(1)  # let the spy write the last messages
trace = read_trace(os.environ["TRACE"])
msgs = [(e["topic"], e["message"]) for e in trace if isinstance(e["message"], dict)]
validation = [m for t, m in msgs if t == f"general/{TS_NODE}" and m.get("command") == "train" and not m["training"]]
val_replies = [m for t, m in msgs if t == "general/researcher" and m.get("command") == "train"
               and m.get("node_id") == TS_NODE and m.get("params_url") == ""]
c.check(len(validation) == 1 and validation[0]["round"] == 2, "validation round: train request training=false, round 2",
        len(validation))
c.check(len(val_replies) == 1 and val_replies[0]["success"] is True and val_replies[0]["timing"] == {},
        "validation round: success, no params file, timing {}", val_replies[0] if val_replies else None)
scalars = [m for t, m in msgs if t == "general/monitoring" and m.get("node_id") == TS_NODE]
c.check(any(m["train"] for m in scalars) and any(m["test"] and "ACCURACY" in m["metric"] for m in scalars),
        "add_scalar: training losses and ACCURACY test metrics reach Fed-BioMed's monitor", len(scalars))
check_fedavg(trace, c, min_aggregations=2)

reqs.messaging.stop() if hasattr(reqs.messaging, "stop") else None
sys.exit(c.summary())

"""The real Fed-BioMed v6.3.3 researcher driving fedbiomed-ts nodes (dev tool, run by run.sh ts-nodes).

ping + list, search (Experiment), approval request, operator approval on the node (run.sh does it when this script
prints INTEROP_APPROVAL_SENT and creates the flag file), training-plan status, 2 FedAvg rounds + final validation.
Prints INTEROP_* lines that run.sh checks, and dumps what it received for an independent recomputation of FedAvg.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lin_plan import LinPlan  # noqa: E402 (the fedbiomed-ts generated plan, written by run.sh)

from fedbiomed.researcher.federated_workflows import Experiment  # noqa: E402
from fedbiomed.researcher.aggregators.fedavg import FedAverage  # noqa: E402

FLAG = os.environ["INTEROP_APPROVED_FLAG"]
OUT = os.environ["INTEROP_OUT"]

exp = Experiment(
    tags=["#ts"],
    training_plan_class=LinPlan,
    model_args={},
    training_args={"loader_args": {"batch_size": 20}, "optimizer_args": {"lr": 0.05}, "epochs": 1,
                   "dry_run": False, "test_ratio": 0.25, "test_on_global_updates": True,
                   "test_on_local_updates": True, "random_seed": 1234, "log_interval": 5},
    round_limit=2,
    aggregator=FedAverage(),
    node_selection_strategy=None,
)
nodes = sorted(exp.training_data().node_ids())
print("INTEROP_SEARCH", nodes, flush=True)

pings = exp.requests.ping_nodes()
print("INTEROP_PING", sorted(pings), flush=True)
listed = exp.requests.list()
print("INTEROP_LIST", {k: len(v) for k, v in sorted(listed.items())}, flush=True)

approval = exp.training_plan_approve(description="fedbiomed-ts interop LinPlan")
print("INTEROP_APPROVAL", {k: v for k, v in sorted(approval.items())}, flush=True)
print("INTEROP_APPROVAL_SENT", flush=True)
deadline = time.time() + 60
while not os.path.exists(FLAG) and time.time() < deadline:
    time.sleep(0.2)
status = exp.check_training_plan_status()
print("INTEROP_STATUS", {k: (v.status, v.approval_obligation) for k, v in sorted(status.items())},
      flush=True)

initial = {k: v.detach().clone() for k, v in exp.training_plan().get_model_params().items()}
exp.run()
print("INTEROP_ROUNDS_DONE", exp.round_current(), flush=True)

dump = {"initial": {k: v.tolist() for k, v in initial.items()}, "rounds": {}}
for rnd, replies in sorted(exp.training_replies().items()):
    dump["rounds"][rnd] = {
        "replies": {node: {"sample_size": r["sample_size"], "success": r["success"],
                           "params": {k: v.tolist() for k, v in r["params"].items()}}
                    for node, r in sorted(replies.items()) if r.get("params") is not None},
        "aggregated": {k: v.tolist() for k, v in exp.aggregated_params()[rnd]["params"].items()},
    }
with open(OUT, "w") as f:
    json.dump(dump, f)
p = exp.aggregated_params()[max(exp.aggregated_params())]["params"]
print("INTEROP_AGG_PARAMS", {k: v.tolist() for k, v in p.items()}, flush=True)

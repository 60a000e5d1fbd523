"""Round time of the real Fed-BioMed v6.3.3 researcher (run.sh bench): 2 FedAvg rounds + validation, timed."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lin_plan import LinPlan  # noqa: E402

from fedbiomed.researcher.federated_workflows import Experiment  # noqa: E402
from fedbiomed.researcher.aggregators.fedavg import FedAverage  # noqa: E402

exp = Experiment(tags=["#ts"], training_plan_class=LinPlan, model_args={},
                 training_args={"loader_args": {"batch_size": 20}, "optimizer_args": {"lr": 0.05}, "epochs": 1,
                                "test_ratio": 0.25, "test_on_global_updates": True, "test_on_local_updates": True,
                                "random_seed": 1234},
                 round_limit=2, aggregator=FedAverage(), node_selection_strategy=None)
print("BENCH_NODES", sorted(exp.training_data().node_ids()), flush=True)
t = time.perf_counter()
exp.run()
print(f"BENCH_REAL_MS {(time.perf_counter() - t) * 1000:.0f}", flush=True)

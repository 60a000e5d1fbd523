"""Recomputes FedAvg from the replies the real v6 researcher received (weights = sample_size) and compares it with
the researcher's aggregate of each round. Exit status 1 on a mismatch."""
import json
import sys

import numpy as np

dump = json.load(open(sys.argv[1]))
ok = True
for rnd, r in sorted(dump["rounds"].items(), key=lambda kv: int(kv[0])):
    replies = r["replies"]
    total = sum(x["sample_size"] for x in replies.values())
    for name, agg in r["aggregated"].items():
        mine = sum(np.asarray(x["params"][name], dtype=np.float64) * x["sample_size"] / total for x in replies.values())
        err = float(np.max(np.abs(mine - np.asarray(agg, dtype=np.float64))))
        ok &= err < 1e-6
        print(f"CHECK_FEDAVG round {rnd} {name}: {len(replies)} replies, samples {total}, max |diff| {err:.2e}")
print("CHECK_FEDAVG", "OK" if ok else "MISMATCH")
sys.exit(0 if ok else 1)

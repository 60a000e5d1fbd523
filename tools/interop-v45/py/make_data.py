"""Writes the harness's synthetic tabular datasets: 4 features, binary label from a fixed linear rule plus noise.
Different row counts per node, so FedAvg's sample-size weights differ. Usage: make_data.py OUT_DIR NAME:ROWS:SEED..."""
import os
import sys

import numpy as np


def write_csv(path: str, rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    score = 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.5 * x[:, 2] + 0.3 * rng.normal(size=rows)
    label = (score > 0).astype(int)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("f0,f1,f2,f3,label\n")
        for features, y in zip(x, label):
            f.write(",".join(f"{v:.4f}" for v in features) + f",{y}\n")


if __name__ == "__main__":
    out = sys.argv[1]
    for spec in sys.argv[2:]:
        name, rows, seed = spec.split(":")
        write_csv(os.path.join(out, name, "tabular.csv"), int(rows), int(seed))

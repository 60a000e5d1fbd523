"""Recomputes FedAvg from what travelled, independently of both researchers: for every round r of a job, the
weights sent to the nodes in round r+1 (or in the validation round) must be the sample-size weighted mean of the
node_params files the nodes uploaded in round r, weighted by the sample_size of their train replies.

Usage: fedavg_check.py TRACE.jsonl [--min-aggregations N] [--final WEIGHTS.mpk]"""
import argparse
import sys
from collections import defaultdict

import numpy as np

from interop import Checks, decode_params_file, download, read_trace

RTOL, ATOL = 1e-5, 1e-6  # float32 results of float32 (Python) or float64 (TS) arithmetic on values of order 1


def train_exchanges(trace: list) -> dict:
    """job_id -> list of (request, reply or None) in request order, a node's k-th reply paired with its k-th request."""
    requests, replies = defaultdict(list), defaultdict(list)
    for entry in trace:
        m = entry["message"]
        if not isinstance(m, dict) or m.get("command") != "train":
            continue
        if entry["topic"] == "general/researcher":
            replies[(m["job_id"], m["node_id"])].append(m)
        elif entry["topic"].startswith("general/"):
            requests[(m["job_id"], entry["topic"][len("general/"):])].append(m)
    jobs = defaultdict(list)
    for (job, node), reqs in requests.items():
        reps = replies.get((job, node), [])
        for k, req in enumerate(reqs):
            jobs[job].append((node, req, reps[k] if k < len(reps) else None))
    return jobs


def compare(expected: dict, actual: dict) -> float:
    """Largest |actual - expected| over every tensor; raises if names, shapes or dtypes differ."""
    if set(expected) != set(actual):
        raise AssertionError(f"tensor names differ: {sorted(expected)} vs {sorted(actual)}")
    worst = 0.0
    for name, want in expected.items():
        got = actual[name]
        if got.shape != want.shape or got.dtype != np.float32:
            raise AssertionError(f"{name}: {got.dtype}{list(got.shape)}, expected float32{list(want.shape)}")
        diff = np.abs(got.astype(np.float64) - want)
        if not np.all(diff <= ATOL + RTOL * np.abs(want)):
            raise AssertionError(f"{name}: differs by up to {diff.max():.3g}")
        worst = max(worst, float(diff.max()))
    return worst


def weighted_mean(params: list, sizes: list) -> dict:
    total = float(sum(sizes))
    return {name: sum(p[name].astype(np.float64) * (n / total) for p, n in zip(params, sizes)) for name in params[0]}


def check_fedavg(trace: list, checks: Checks, min_aggregations: int, final_file: str = None) -> None:
    files = {}

    def weights_at(url: str) -> dict:
        if url not in files:
            files[url] = decode_params_file(download(url))["model_weights"]
        return files[url]

    aggregations = 0
    last_aggregate = None
    for job, exchanges in train_exchanges(trace).items():
        rounds = sorted({req["round"] for _, req, _ in exchanges})
        for r in rounds:
            done = [(node, rep) for node, req, rep in exchanges
                    if req["round"] == r and req["training"] and rep is not None and rep.get("success")]
            following = [req for _, req, _ in exchanges if req["round"] == r + 1]
            if not done or not following:
                continue
            urls = {req["params_url"] for req in following}
            checks.check(len(urls) == 1, f"{job} round {r + 1}: every node gets the same weights file", urls)
            sizes = [rep["sample_size"] for _, rep in done]
            node_params = [weights_at(rep["params_url"]) for _, rep in done]
            expected = weighted_mean(node_params, sizes)
            try:
                worst = compare(expected, weights_at(sorted(urls)[0]))
                ok, detail = True, f"max |diff| {worst:.2e} over {sum(v.size for v in expected.values())} values"
            except AssertionError as err:
                ok, detail = False, str(err)
            label = "validation round" if not any(req["training"] for req in following) else f"round {r + 1}"
            nodes = ", ".join(f"{node} n={n}" for (node, _), n in zip(done, sizes))
            checks.check(ok, f"FedAvg of round {r} ({nodes}) = weights sent in the {label}", detail)
            aggregations += 1
            last_aggregate = expected
    checks.check(aggregations >= min_aggregations, f"at least {min_aggregations} aggregation(s) checked", aggregations)
    if final_file and last_aggregate is not None:
        with open(final_file, "rb") as f:
            final = decode_params_file(f.read())["model_weights"]
        try:
            detail, ok = f"max |diff| {compare(last_aggregate, final):.2e}", True
        except AssertionError as err:
            detail, ok = str(err), False
        checks.check(ok, f"final weights file {final_file} = last aggregate", detail)


def sizes_swapped(trace: list) -> list:
    """The same trace with the sample sizes of the first two training replies of each round exchanged: the check
    must fail on it whenever those sizes differ (it proves the weighting is really checked)."""
    swapped, pending = [], {}
    for entry in trace:
        m = entry["message"]
        if isinstance(m, dict) and m.get("command") == "train" and entry["topic"] == "general/researcher" \
                and m.get("success") and m.get("params_url"):
            m = dict(m)
            key = m["job_id"]
            if key in pending:
                other = pending.pop(key)
                other["sample_size"], m["sample_size"] = m["sample_size"], other["sample_size"]
            else:
                pending[key] = m
            entry = {**entry, "message": m}
        swapped.append(entry)
    return swapped


def check_is_discriminative(trace: list, checks: Checks) -> None:
    quiet = Checks("swapped", quiet=True)
    check_fedavg(sizes_swapped(trace), quiet, min_aggregations=1)
    checks.check(bool(quiet.failures), "the FedAvg check fails on the same trace with two nodes' sample sizes swapped",
                 f"{len(quiet.failures)} failing check(s)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("trace")
    parser.add_argument("--min-aggregations", type=int, default=1)
    parser.add_argument("--final")
    args = parser.parse_args()
    checks = Checks("fedavg")
    check_fedavg(read_trace(args.trace), checks, args.min_aggregations, args.final)
    sys.exit(checks.summary())

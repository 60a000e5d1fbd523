"""Helpers shared by the interop-v45 Python scripts (ours, independent of Fed-BioMed and of fedbiomed-ts code)."""
import json
import urllib.request

import msgpack
import numpy as np


class Checks:
    """Collects named assertions; a scenario passes only if every one held."""

    def __init__(self, scenario: str, quiet: bool = False):
        self.scenario = scenario
        self.quiet = quiet
        self.failures = []
        self.count = 0

    def check(self, ok: bool, what: str, detail: object = "") -> bool:
        self.count += 1
        status = "ok  " if ok else "FAIL"
        if not self.quiet:
            print(f"[{self.scenario}] {status} {what}" + (f" ({detail})" if detail != "" else ""), flush=True)
        if not ok:
            self.failures.append(what)
        return ok

    def summary(self) -> int:
        print(f"[{self.scenario}] {self.count - len(self.failures)}/{self.count} checks held", flush=True)
        return 1 if self.failures else 0


def read_trace(path: str) -> list:
    """The spy's JSON lines: {ts, topic, payload}, with `message` = the parsed payload (None if not JSON)."""
    lines = []
    with open(path) as f:
        for line in f:
            entry = json.loads(line)
            try:
                entry["message"] = json.loads(entry["payload"])
            except ValueError:
                entry["message"] = None
            lines.append(entry)
    return lines


def _decode_special(obj: dict):
    # Fed-BioMed v4.5 weight files: {"__type__": "torch.Tensor" | "np.ndarray", "value": [raw bytes, dtype, shape]}
    kind = obj.get("__type__")
    if kind in ("torch.Tensor", "np.ndarray"):
        raw, dtype, shape = obj["value"]
        return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)
    if kind == "tuple":
        return tuple(obj["value"])
    if kind is not None:
        raise ValueError(f"unexpected __type__ {kind!r} in a weight file")
    return obj


def decode_params_file(data: bytes) -> dict:
    return msgpack.unpackb(data, raw=False, strict_map_key=False, object_hook=_decode_special)


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return reply.read()

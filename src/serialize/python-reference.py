"""Python side of src/serialize/python-interop.test.ts.

Packs and unpacks msgpack with the rules of Fed-BioMed v4.5.0's serializer (as documented in
../shared/reference/fedbiomed-v4.5-protocol.md section 5: `packb(obj, default=hook, strict_types=True)` and
`unpackb(data, object_hook=hook, strict_map_key=False)` with the tags torch.Tensor, np.ndarray, np.generic, tuple
and int), so the TypeScript codec can be checked against the real msgpack-python, numpy and, when installed, torch.

Usage:
  python-reference.py write OUT.mpk        write a document covering every case; print its description (JSON)
  python-reference.py roundtrip IN OUT     decode IN, print its description, re-encode it to OUT

A description is JSON that keeps what plain JSON loses: int vs float (floats as their float64 bits), map key
order and key types, tensors as tag + dtype + shape + hex bytes.
"""
import json
import math
import struct
import sys

import msgpack
import numpy as np

try:
    import torch
except ImportError:  # the torch.Tensor tag is then written from numpy arrays (same bytes)
    torch = None


class TorchLike:
    """Stands in for a torch tensor when torch is not installed: packed with the torch.Tensor tag."""

    def __init__(self, array):
        self.array = array


def pack_hook(obj):
    if isinstance(obj, int):
        return {"__type__": "int", "value": obj.to_bytes(math.ceil(obj.bit_length() / 8), "big")}
    if isinstance(obj, tuple):
        return {"__type__": "tuple", "value": list(obj)}
    if isinstance(obj, np.ndarray):
        return {"__type__": "np.ndarray", "value": [obj.tobytes(), obj.dtype.name, list(obj.shape)]}
    if isinstance(obj, np.generic):
        return {"__type__": "np.generic", "value": [obj.tobytes(), obj.dtype.name]}
    if torch is not None and isinstance(obj, torch.Tensor):
        array = obj.cpu().numpy()
        return {"__type__": "torch.Tensor", "value": [array.tobytes(), array.dtype.name, list(array.shape)]}
    if isinstance(obj, TorchLike):
        array = obj.array
        return {"__type__": "torch.Tensor", "value": [array.tobytes(), array.dtype.name, list(array.shape)]}
    raise TypeError(f"cannot serialize {type(obj)}")


def unpack_hook(obj):
    if "__type__" not in obj:
        return obj
    kind = obj["__type__"]
    if kind == "tuple":
        return tuple(obj["value"])
    if kind == "int":
        return int.from_bytes(obj["value"], byteorder="big")
    if kind == "np.ndarray":
        data, dtype, shape = obj["value"]
        return np.frombuffer(data, dtype=dtype).reshape(shape).copy()
    if kind == "np.generic":
        data, dtype = obj["value"]
        return np.frombuffer(data, dtype=dtype)[0]
    if kind == "torch.Tensor":
        data, dtype, shape = obj["value"]
        array = np.frombuffer(data, dtype=dtype).reshape(shape).copy()
        return torch.from_numpy(array) if torch is not None else TorchLike(array)
    return obj


def dumps(obj):
    return msgpack.packb(obj, default=pack_hook, strict_types=True)


def loads(data):
    return msgpack.unpackb(data, object_hook=unpack_hook, strict_map_key=False)


def describe(value):
    if isinstance(value, np.generic):  # first: np.float64 is also a Python float
        return {"generic": value.dtype.name, "hex": value.tobytes().hex()}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, float):
        return {"float": struct.pack(">d", value).hex()}
    if isinstance(value, bytes):
        return {"bytes": value.hex()}
    if isinstance(value, tuple):
        return {"tuple": [describe(v) for v in value]}
    if isinstance(value, list):
        return [describe(v) for v in value]
    if isinstance(value, dict):
        return {"map": [[describe(k), describe(v)] for k, v in value.items()]}
    if torch is not None and isinstance(value, torch.Tensor):
        value = TorchLike(value.numpy())
    if isinstance(value, TorchLike):
        a = value.array
        return {"tensor": "torch.Tensor", "dtype": a.dtype.name, "shape": list(a.shape), "hex": a.tobytes().hex()}
    if isinstance(value, np.ndarray):
        return {"tensor": "np.ndarray", "dtype": value.dtype.name, "shape": list(value.shape), "hex": value.tobytes().hex()}
    raise TypeError(f"cannot describe {type(value)}")


TORCH_DTYPES = ["float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool"]
NUMPY_DTYPES = TORCH_DTYPES + ["uint16", "uint32", "uint64"]


def sample(dtype, shape):
    """Values that exercise each dtype's range: signs, extremes, fractions."""
    n = int(np.prod(shape))
    if dtype == "bool":
        return (np.arange(n) % 3 == 0).reshape(shape)
    info = np.finfo(dtype) if dtype.startswith("float") else np.iinfo(dtype)
    base = np.linspace(float(info.min) / 3, float(info.max) / 3, n) if dtype.startswith("float") else None
    if base is not None:
        base[0], base[-1] = info.min, info.max
        return base.astype(dtype).reshape(shape)
    values = [int(info.min), int(info.max), 0, 1, int(info.max) // 3, int(info.min) // 7 if info.min < 0 else 5]
    return np.array((values * n)[:n], dtype=dtype).reshape(shape)


def tensor(array):
    if torch is not None:
        return torch.from_numpy(np.ascontiguousarray(array))
    return TorchLike(array)


def document():
    rng = np.random.default_rng(4)
    f16_source = np.concatenate([
        rng.normal(0, 1000, 200).astype(np.float32),
        (rng.random(100) * 2.0 ** -20).astype(np.float32),  # float16 subnormal range
        np.array([65504, 65519.99, 65520, 2.0 ** -25, 2.0 ** -24 * 1.5, 2.0 ** -24 * 2.5, -0.0, 1 / 3], np.float32),
        np.array([np.inf, -np.inf, np.nan], np.float32),
    ])
    with np.errstate(over="ignore"):  # values beyond 65504 become inf, on purpose
        f16 = f16_source.astype(np.float16)
    return {
        "researcher_id": "researcher_interop",
        "model_weights": {f"w.{dt}": tensor(sample(dt, (2, 3))) for dt in TORCH_DTYPES},
        "scalar_tensor": tensor(np.array(7, dtype=np.int64)),
        "empty_tensor": tensor(np.zeros((0, 3), np.float32)),
        "large_tensor": tensor(np.arange(3000, dtype=np.float32).reshape(30, 100)),
        "ndarrays": {dt: sample(dt, (3, 2)) for dt in NUMPY_DTYPES},
        "generics": [np.dtype(dt).type(sample(dt, (6,))[1]) for dt in NUMPY_DTYPES],
        "f16_source": f16_source,
        "f16": f16,
        "f16_back": f16.astype(np.float32),
        "tuple": (1, "a", (2.0, None), []),
        "big_ints": [2 ** 64, 2 ** 70 + 5, 2 ** 200 - 1],
        "ints": [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 + 1, 2 ** 64 - 1,
                 -1, -32, -33, -128, -129, -32768, -32769, -2 ** 31, -2 ** 31 - 1, -2 ** 53 - 1, -2 ** 63],
        "floats": [1.0, 0.0, -0.0, 0.01, -2.5, 1e300, 2.0 ** 60, float("nan"), float("inf"), float("-inf")],
        "int_keys": {2: "two", 1: "one", "0": "zero as text", "b": 1, -5: None},
        "bytes": b"\x00\x01\xff",
        "strings": ["", "x" * 31, "y" * 32, "z" * 300, "h\u00e9llo \u2713 \U0001F600"],
        "bools": [True, False, None],
        "empty_map": {},
        "vector": {"__type__": "Vector", "value": {"w": np.zeros(2, np.float32)}},
        "map16": {f"k{i}": i for i in range(20)},
        "array16": list(range(20)),
    }


def main():
    mode = sys.argv[1]
    if mode == "write":
        doc = document()
        with open(sys.argv[2], "wb") as f:
            f.write(dumps(doc))
        print(json.dumps({"torch": torch is not None, "description": describe(doc)}))
    elif mode == "roundtrip":
        with open(sys.argv[2], "rb") as f:
            value = loads(f.read())
        with open(sys.argv[3], "wb") as f:
            f.write(dumps(value))
        print(json.dumps({"torch": torch is not None, "description": describe(value)}))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()

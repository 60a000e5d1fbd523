"""Loads a Fed-BioMed weight file (`aggregated_params_*.mpk`) into a generated plan's model with
`load_state_dict(strict=True)`, for src tests.

Usage: python3 load_weights_strict.py PLAN_DIR MODULE CLASS WEIGHTS.mpk RESULT.json
The file is decoded with msgpack as Fed-BioMed's Serializer writes it (torch.Tensor tags: [bytes, dtype, shape]).
Reports each key's dtype in the file and in the model, and whether the strict load succeeded (with its error).
"""
import importlib
import json
import sys
import traceback

import msgpack
import numpy as np
import torch


def decode(obj):
    if isinstance(obj, dict) and obj.get('__type__') == 'torch.Tensor':
        data, dtype, shape = obj['value']
        return torch.from_numpy(np.frombuffer(data, dtype=np.dtype(dtype).newbyteorder('<')).astype(dtype).reshape(shape).copy())
    return obj


def main():
    plan_dir, module_name, class_name, weights_file, result_file = sys.argv[1:6]
    sys.path.insert(0, plan_dir)
    with open(weights_file, 'rb') as f:
        content = msgpack.unpackb(f.read(), raw=False, object_hook=decode)
    weights = content['model_weights']
    plan = getattr(importlib.import_module(module_name), class_name)()
    plan.post_init(model_args={}, training_args={'optimizer_args': {}, 'random_seed': 0})
    model = plan.model()
    expected = model.state_dict()
    out = {
        'file_dtypes': {k: str(v.dtype).replace('torch.', '') for k, v in weights.items()},
        'model_dtypes': {k: str(v.dtype).replace('torch.', '') for k, v in expected.items()},
    }
    try:
        model.load_state_dict(weights, strict=True)
        loaded = model.state_dict()
        out['loaded'] = all(torch.equal(loaded[k], weights[k]) for k in weights)
    except Exception:
        out['error'] = traceback.format_exc()
    with open(result_file, 'w') as f:
        json.dump(out, f)


if __name__ == '__main__':
    main()

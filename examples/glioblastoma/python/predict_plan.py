"""Runs a generated Fed-BioMed plan's model on given weights and inputs, as a Python node would at inference.

Usage: python3 predict_plan.py MANIFEST.json
MANIFEST: plan_dir, module, class_name, weights [{name, file, shape}], inputs {name: {file, shape}} (float32,
channels first), output (file to write the float32 output to). The plan module imports fedbiomed: put a
Fed-BioMed install, or the project's stand-in (src/plan/testing/python), on PYTHONPATH.
"""
import importlib
import json
import sys

import numpy as np
import torch


def raw(spec):
    return torch.from_numpy(np.fromfile(spec['file'], dtype='<f4').reshape(spec['shape']).copy())


def main():
    with open(sys.argv[1]) as f:
        manifest = json.load(f)
    sys.path.insert(0, manifest['plan_dir'])
    plan = getattr(importlib.import_module(manifest['module']), manifest['class_name'])()
    plan.post_init(model_args={}, training_args={'optimizer_args': {}, 'random_seed': 0})
    model = plan.model()
    model.load_state_dict({w['name']: raw(w) for w in manifest['weights']}, strict=True)
    model.eval()
    torch.set_num_threads(1)
    with torch.no_grad():
        output = model(*[raw(manifest['inputs'][name]) for name in manifest['input_order']])
    output.numpy().astype('<f4').tofile(manifest['output'])


if __name__ == '__main__':
    main()

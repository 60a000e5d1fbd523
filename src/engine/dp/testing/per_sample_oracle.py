"""PyTorch oracle for the DP engine tests: per-sample gradients by functorch (vmap of grad), as Opacus defines them.

Reads a JSON list on stdin, one case each: the generated plan module (folder, module, class), its state_dict and a
batch in PyTorch layout. For each, prints the per-sample gradient norms (flat L2 over all parameters), the clipping
norm C chosen between the two middle norms (so that some samples are clipped and some are not), the clipped sums
sum_i min(1, C / (norm_i + 1e-6)) grad_i per parameter and the plain sum of per-sample gradients, as float64 lists.
One process for every case: importing torch is the slow part.
"""
import importlib
import json
import sys

import torch
from functorch import grad, make_functional, vmap


def tensor(spec, dtype=torch.float32):
    return torch.tensor(spec['data'], dtype=dtype).reshape(spec['shape'])


def run(req):
    sys.path.insert(0, req['module_dir'])
    plan_class = getattr(importlib.import_module(req['module']), req['class_name'])
    model = plan_class.Net()
    model.load_state_dict({k: tensor(v) for k, v in req['state'].items()})
    model.train()
    names = [n for n, _ in model.named_parameters()]
    fmodel, params = make_functional(model)
    keys = sorted(req['inputs'])
    inputs = [tensor(req['inputs'][k]) for k in keys]
    target = tensor(req['target'], torch.int64 if req['target']['dtype'] == 'int64' else torch.float32)

    def sample_loss(params, target_i, *inputs_i):
        batch = {k: x.unsqueeze(0) for k, x in zip(keys, inputs_i)}
        output = fmodel(params, **batch)
        return plan_class._fbts_loss(None, output, target_i.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0) + (0,) * len(inputs))(params, target, *inputs)
    n = target.shape[0]
    flat = torch.cat([g.reshape(n, -1) for g in per_sample], dim=1).double()
    norms = flat.norm(dim=1)
    ordered = norms.sort().values
    clip = float((ordered[n // 2 - 1] + ordered[n // 2]) / 2)
    factors = (clip / (norms + 1e-6)).clamp(max=1.0)
    out = {'norms': norms.tolist(), 'clip': clip, 'clipped': {}, 'summed': {}}
    for name, g in zip(names, per_sample):
        g = g.double()
        out['clipped'][name] = torch.einsum('i,i...->...', factors, g).reshape(-1).tolist()
        out['summed'][name] = g.sum(0).reshape(-1).tolist()
    return out


print(json.dumps([run(req) for req in json.load(sys.stdin)]))

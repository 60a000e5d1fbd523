"""Checks generated PyTorch plans the way a Fed-BioMed v4.5 node runs them, for src/plan tests.

Usage: python3 torch_conformance.py MANIFEST.json RESULT.json
The manifest (written by the TS test) lists cases: a generated plan module, weights and a batch as raw
little-endian files. For each case this script imports the module like a node (importlib from the folder the file
was downloaded to), instantiates the class, post_init, reports the state_dict layout, loads the weights, runs the
eval forward and testing_step, then training steps through training_step + backward + optimizer step, and writes
every resulting tensor back as raw files. The TS test compares them with the TS model.
"""
import importlib
import inspect
import json
import os
import sys
import traceback

import numpy as np
import torch

DTYPES = {'float32': np.float32, 'int64': np.int64}


def read_raw(spec):
    return torch.from_numpy(np.fromfile(spec['file'], dtype=DTYPES[spec['dtype']]).reshape(spec['shape']))


def write_raw(tensor, path):
    array = tensor.detach().cpu().contiguous().numpy()
    array.astype(array.dtype.newbyteorder('<')).tofile(path)
    return {'file': path, 'dtype': str(array.dtype), 'shape': list(array.shape)}


def fedbiomed_batch(batch):
    """The batch as Fed-BioMed's loaders give it to training_step: medical folder or CSV format."""
    target = read_raw(batch['target'])
    tabular = read_raw(batch['tabular']) if batch.get('tabular') else None
    if batch.get('image'):
        image = read_raw(batch['image'])
        k = batch['slices']
        images = {m: image[:, i * k:(i + 1) * k] for i, m in enumerate(batch['modalities'])}
        columns = [tabular] if tabular is not None else []
        if batch.get('target_modality'):
            # an image target: the target modality's batch, demographics without a target column
            demographics = torch.cat(columns, dim=1) if columns else torch.zeros(target.shape[0], 0)
            return [images, demographics], {batch['target_modality']: target}
        demographics = torch.cat(columns + [target.float().view(target.shape[0], -1)], dim=1)
        return [images, demographics], {}
    return tabular, target.float()


def run_case(case):
    module = importlib.import_module(case['module'])
    plan = getattr(module, case['class_name'])()
    plan.post_init(model_args=case['model_args'], training_args={'optimizer_args': case.get('optimizer_args', {}), 'random_seed': 0})
    out = {'dependencies': plan._dependencies, 'optimizer': type(plan._optimizer).__name__}
    state = plan.model().state_dict()
    out['state_dict'] = [[k, str(v.dtype).replace('torch.', ''), list(v.shape)] for k, v in state.items()]
    weights = {w['name']: read_raw(w) for w in case['weights']}
    plan.set_model_params(weights)
    loaded = plan.model().state_dict()
    out['loaded_exactly'] = all(torch.equal(loaded[k], weights[k]) for k in weights)
    data, target = fedbiomed_batch(case['batch'])
    plan.model().eval()
    with torch.no_grad():
        inputs, _ = plan._fbts_batch(data, target)
        output = plan.model()(**inputs)
    if isinstance(output, tuple):  # several heads: side by side, as the TS model gives them
        output = torch.cat([o.reshape(o.shape[0], -1) for o in output], dim=1)
    out['eval_output'] = write_raw(output, os.path.join(case['out_dir'], 'eval_output.bin'))
    out['metrics'] = plan.testing_batch(data, target)
    out['train_mode_after_testing'] = plan.model().training
    losses = []
    for _ in range(case['steps']):
        losses.append(float(plan._train_over_batch(data, target)))
    out['losses'] = losses
    out['updated'] = {}
    for i, (name, tensor) in enumerate(plan.after_training_params().items()):
        out['updated'][name] = write_raw(tensor, os.path.join(case['out_dir'], 'updated_%d.bin' % i))
    return out


def run_data_case(case):
    """training_data() on a real dataset (CSV file or medical folder), as the node calls it, then one loader batch
    through training_step."""
    from torch.utils.data import DataLoader
    module = importlib.import_module(case['module'])
    plan = getattr(module, case['class_name'])()
    plan.post_init(model_args={}, training_args={'optimizer_args': {}, 'random_seed': 0})
    plan.set_dataset_path(case['path'])
    manager = plan.training_data()
    dataset = manager.load()
    out = {'loader_kwargs': manager._loader_arguments, 'samples': {}}
    if case['kind'] == 'csv':
        out['features'] = write_raw(dataset.inputs, os.path.join(case['out_dir'], 'features.bin'))
        out['targets'] = write_raw(dataset.target, os.path.join(case['out_dir'], 'targets.bin'))
    else:
        dataset.set_dataset_parameters(case['dataset_parameters'])
        for i, folder in enumerate(dataset.subject_folders()):
            (data, demographics), targets = dataset[i]
            image = torch.cat([data[m] for m in plan.MODALITIES], dim=0)
            out['samples'][folder.name] = {
                'image': write_raw(image, os.path.join(case['out_dir'], 'image_%s.bin' % folder.name)),
                'demographics': demographics.tolist(),
                'targets': len(targets),
            }
            if hasattr(plan, 'TARGET_CHANNELS'):
                # an image target: what training_step receives for this subject (batch of one)
                y = plan._fbts_target_batch({m: t.unsqueeze(0) for m, t in targets.items()})[0]
                out['samples'][folder.name]['target_image'] = write_raw(y, os.path.join(case['out_dir'], 'target_%s.bin' % folder.name))
    batch = next(iter(DataLoader(dataset, batch_size=2, shuffle=False)))
    out['batch_loss'] = float(plan.training_step(*batch))
    return out


def run_augment_case(case):
    """The generated plan's augmentation of one batch with a given seed, and a training_step on augmented data."""
    module = importlib.import_module(case['module'])
    plan = getattr(module, case['class_name'])()
    plan.post_init(model_args={}, training_args={'optimizer_args': {}, 'random_seed': 0})
    images = read_raw(case['images'])
    # an image target's plan augments (images, targets) together
    extra = (read_raw(case['targets']),) if case.get('targets') else ()

    def both(result):
        return torch.cat([r.reshape(-1) for r in result]) if extra else result
    augmented = plan._fbts_augment_batch(images, case['seed'], *extra)
    if extra:
        augmented, targets = augmented
        out = {'augmented_targets': write_raw(targets, os.path.join(case['out_dir'], 'augmented_targets.bin'))}
    else:
        out = {}
    out['augmented'] = write_raw(augmented, os.path.join(case['out_dir'], 'augmented.bin'))
    # training_step draws its batch seed from torch's generator: seeded alike, two runs augment alike
    torch.manual_seed(0)
    first = both(plan._fbts_augment(images, *extra))
    torch.manual_seed(0)
    out['torch_seeded_repeatable'] = bool(torch.equal(first, both(plan._fbts_augment(images, *extra))))
    # the same batch whatever torch's intra-op thread count
    threads = torch.get_num_threads()
    batches = []
    for n in (1, 3):
        torch.set_num_threads(n)
        batches.append(both(plan._fbts_augment_batch(images, case['seed'], *extra)))
    torch.set_num_threads(threads)
    out['thread_count_independent'] = bool(torch.equal(batches[0], batches[1]))
    out['training_step_augments'] = 'self._fbts_augment(' in inspect.getsource(type(plan).training_step)
    out['testing_step_augments'] = 'self._fbts_augment(' in inspect.getsource(type(plan).testing_step)
    return out


def run_fedbn_case(case):
    """Two rounds of a FedBN plan on one node as Fed-BioMed runs them (set_model_params, set_dataset_path, train,
    after_training_params), then the second round's model on another dataset."""
    module = importlib.import_module(case['module'])
    cls = getattr(module, case['class_name'])

    def start(params, path):
        plan = cls()
        plan.post_init(model_args={}, training_args={'optimizer_args': {}, 'random_seed': 0})
        plan.set_model_params(params)
        plan.set_dataset_path(path)
        return plan
    weights = {w['name']: read_raw(w) for w in case['weights']}
    data, target = fedbiomed_batch(case['batch'])
    first = start(weights, case['path_a'])
    first._train_over_batch(data, target)
    trained = {k: v.detach().clone() for k, v in first.model().state_dict().items()}
    sent = first.after_training_params()
    local = case['local']
    second = start(sent, case['path_a'])  # the next round's global model lacks the local parameters
    restored = second.model().state_dict()
    other = start(sent, case['path_b'])  # another dataset on the same node: its own (here: none yet)
    return {
        'sent_keys': list(sent.keys()),
        'restored_equal': all(torch.equal(restored[k], trained[k]) for k in local),
        'local_moved': any(not torch.equal(trained[k], weights[k]) for k in local),
        'other_differs': any(not torch.equal(other.model().state_dict()[k], trained[k]) for k in local),
    }


def main():
    manifest_path, result_path = sys.argv[1], sys.argv[2]
    with open(manifest_path) as f:
        manifest = json.load(f)
    sys.path.insert(0, manifest['plan_dir'])
    results = {'torch': torch.__version__, 'cases': {}}
    for case in manifest['cases']:
        try:
            results['cases'][case['name']] = run_case(case)
        except Exception:
            results['cases'][case['name']] = {'error': traceback.format_exc()}
    results['fedbn_cases'] = {}
    for case in manifest.get('fedbn_cases', []):
        try:
            results['fedbn_cases'][case['name']] = run_fedbn_case(case)
        except Exception:
            results['fedbn_cases'][case['name']] = {'error': traceback.format_exc()}
    results['augment_cases'] = {}
    for case in manifest.get('augment_cases', []):
        try:
            results['augment_cases'][case['name']] = run_augment_case(case)
        except Exception:
            results['augment_cases'][case['name']] = {'error': traceback.format_exc()}
    results['data_cases'] = {}
    for case in manifest.get('data_cases', []):
        try:
            results['data_cases'][case['name']] = run_data_case(case)
        except Exception:
            results['data_cases'][case['name']] = {'error': traceback.format_exc()}
    with open(result_path, 'w') as f:
        json.dump(results, f)


if __name__ == '__main__':
    main()

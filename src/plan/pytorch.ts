/**
 * PyTorch code generator: a plan becomes a Fed-BioMed v4.5 `TorchTrainingPlan` subclass in the v4.5 plan file
 * format (the plan's dependency lines — TorchTrainingPlan's defaults, then `init_dependencies()` — joined by
 * newlines, a newline, then the class source), so Python nodes train it natively.
 *
 * The class embeds the plan's canonical JSON as `PLAN_SPEC` (a plain string constant, which survives
 * python-minifier) and its hash as `PLAN_SHA256`; TS nodes read those back (embed.ts) and never run the code.
 * Everything the plan needs lives inside the class, because a Python researcher re-uploading it sends only the
 * class source (inspect.getsource) plus the dependency lines.
 *
 * Data, as a Fed-BioMed node provides it:
 * - plans with an image input read a medical folder (`MedicalFolderDataset`: one modality folder per
 *   `inputs.image.modalities`, NIfTI volumes as [i, j, k] arrays; tabular columns and the target column come from
 *   the demographics file the node registered with the dataset, via dataset_parameters tabular_file/index_col);
 * - tabular-only plans read a CSV file (pandas).
 * Preprocessing follows the semantics documented in spec.ts, the same as src/data/ applies on TS nodes.
 */
import { canonicalJson, sha256Hex } from './canonical';
import { ResolvedGraph, ResolvedLayer } from './graph';
import { isImageStep, needsWholeSample, oneHotColumns, storedImageRank, tabularFeatureIndex } from './preprocess';
import { pyLiteral, pyNumber, pyString } from './python-literal';
import { localParameterNamesOf } from './fedbn';
import { CLASSIFICATION_METRICS, METRIC_WIRE_NAMES, outputsLogits } from './metrics';
import { isImageTarget, LossSpec, MetricName, PlanSpec, TargetSpec } from './spec';
import { hasSeveralHeads, headMetricKey, headView, lossWeight, planHeads } from './heads';
import { TORCH_TARGET_DATASET_LINES, torchTargetAugmentHelpers, torchTargetConstants, torchTargetHelpers } from './image-target';
import { torchImageLoss } from './image-losses';
import { validatePlan } from './validate';
import { dpGroupCount } from './dp-fix';
import { IMAGE_FOLDER_TRAINING_DATA, imageFolderHelpers, isImageFolderPlan } from './image-folder-plan';

/** The dependency lines TorchTrainingPlan.__init__ adds in Fed-BioMed v4.5.0, in its order. */
export const TORCH_PLAN_DEFAULT_DEPENDENCIES: readonly string[] = [
  'import torch',
  'import torch.nn as nn',
  'import torch.nn.functional as F',
  'from fedbiomed.common.training_plans import TorchTrainingPlan',
  'from fedbiomed.common.data import DataManager',
  'from fedbiomed.common.constants import ProcessTypes',
  'from torch.utils.data import DataLoader',
  'from torchvision import datasets, transforms',
];

/**
 * The dependency lines TorchTrainingPlan.__init__ adds in Fed-BioMed v6.3.3 (fedbiomed/common/training_plans/
 * _torchnn.py): DataManager moved to fedbiomed.common.datamanager (importing it from fedbiomed.common.data logs a
 * deprecation warning on a v6 researcher and node) and the loader is Fed-BioMed's own.
 */
export const TORCH_PLAN_DEFAULT_DEPENDENCIES_V6: readonly string[] = [
  'import torch',
  'import torch.nn as nn',
  'import torch.nn.functional as F',
  'from fedbiomed.common.training_plans import TorchTrainingPlan',
  'from fedbiomed.common.datamanager import DataManager',
  'from fedbiomed.common.constants import ProcessTypes',
  'from fedbiomed.common.dataloader import PytorchDataLoader',
  'from torchvision import datasets, transforms',
];

export interface GenerateTorchPlanOptions {
  /** Python class name; defaults to the plan's name. */
  className?: string;
  /**
   * The Fed-BioMed release the Python file targets (default v4.5). v6: v6's import paths. Image plans are v4.5
   * only for now: v6's MedicalFolderDataset takes other arguments (no root, no demographics transform).
   */
  fedbiomed?: 'v4.5' | 'v6';
}

const PYTHON_KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield'.split(
    ' ',
  ),
);

function checkClassName(name: string): void {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) || PYTHON_KEYWORDS.has(name)) {
    throw new Error(`className ${JSON.stringify(name)} is not a valid Python class name`);
  }
}

const tuple = (values: number[]): string => `(${values.join(', ')}${values.length === 1 ? ',' : ''})`;

/** The torch module expression for one resolved layer (index i of an nn.Sequential). */
function torchModule(layer: ResolvedLayer): string {
  switch (layer.type) {
    case 'conv_transpose':
      return `nn.ConvTranspose${layer.dims}d(${layer.inChannels}, ${layer.outChannels}, kernel_size=${tuple(layer.kernel)}, stride=${tuple(layer.stride)}, padding=${tuple(layer.padding)}, output_padding=${tuple(layer.outputPadding)}, bias=${layer.bias ? 'True' : 'False'})`;
    case 'upsample': {
      const scale = `(${layer.scale.map((s) => pyNumber(s, true)).join(', ')})`;
      return layer.mode === 'nearest'
        ? `nn.Upsample(scale_factor=${scale}, mode='nearest')`
        : `nn.Upsample(scale_factor=${scale}, mode='bilinear', align_corners=False)`;
    }
    case 'spatial_broadcast':
      // [N, F] → [N, F, 1, …] → repeated over the grid (nearest upsampling from one position copies it exactly).
      return `nn.Sequential(nn.Unflatten(1, ${tuple([layer.inShape[0], ...layer.size.map(() => 1)])}), nn.Upsample(size=${tuple(layer.size)}, mode='nearest'))`;
    case 'add':
    case 'concat':
      throw new Error(`internal: ${layer.type} is an expression, not a module`);
    case 'conv': {
      const padding = layer.paddingSame ? "'same'" : tuple(layer.padBefore);
      return `nn.Conv${layer.dims}d(${layer.inChannels}, ${layer.outChannels}, kernel_size=${tuple(layer.kernel)}, stride=${tuple(layer.stride)}, padding=${padding}, bias=${layer.bias ? 'True' : 'False'})`;
    }
    case 'max_pool':
      return `nn.MaxPool${layer.dims}d(kernel_size=${tuple(layer.kernel)}, stride=${tuple(layer.stride)})`;
    case 'avg_pool':
      return `nn.AvgPool${layer.dims}d(kernel_size=${tuple(layer.kernel)}, stride=${tuple(layer.stride)})`;
    case 'global_avg_pool':
      return `nn.Sequential(nn.AdaptiveAvgPool${layer.dims}d(1), nn.Flatten())`;
    case 'global_max_pool':
      return `nn.Sequential(nn.AdaptiveMaxPool${layer.dims}d(1), nn.Flatten())`;
    case 'instance_norm':
      return `nn.InstanceNorm${layer.spatialDims}d(${layer.features}, eps=${pyNumber(layer.eps, true)}, affine=${layer.affine ? 'True' : 'False'})`;
    case 'layer_norm':
      return `nn.LayerNorm(${pyLiteral(layer.inShape)}, eps=${pyNumber(layer.eps, true)}, elementwise_affine=${layer.affine ? 'True' : 'False'})`;
    case 'dropout2d':
    case 'dropout3d':
      return `nn.Dropout${layer.type.slice(-2)}(p=${pyNumber(layer.rate, true)})`;
    case 'batch_norm': {
      const kind = Math.max(1, layer.spatialDims);
      return `nn.BatchNorm${kind}d(${layer.features}, eps=${pyNumber(layer.eps, true)}, momentum=${pyNumber(layer.momentum, true)})`;
    }
    case 'group_norm':
      return `nn.GroupNorm(${layer.groups}, ${layer.features}, eps=${pyNumber(layer.eps, true)})`;
    case 'dropout':
      return `nn.Dropout(p=${pyNumber(layer.rate, true)})`;
    case 'flatten':
      return 'nn.Flatten()';
    case 'dense':
      return `nn.Linear(${layer.inFeatures}, ${layer.outFeatures}, bias=${layer.bias ? 'True' : 'False'})`;
    case 'relu':
      return 'nn.ReLU()';
    case 'leaky_relu':
      return `nn.LeakyReLU(negative_slope=${pyNumber(layer.negativeSlope, true)})`;
    case 'sigmoid':
      return 'nn.Sigmoid()';
    case 'softmax':
      return 'nn.Softmax(dim=1)';
  }
}

/** Graph models: one attribute per parameterised or module node, named like the node; forward in node order. */
function graphNetSource(graph: ResolvedGraph): string[] {
  const lines = ['    class Net(nn.Module):', '        def __init__(self):', '            super().__init__()'];
  const modules = graph.nodes.filter((n) => n.layer.type !== 'add' && n.layer.type !== 'concat');
  for (const { id, layer } of modules) lines.push(`            self.${id} = ${torchModule(layer)}  # [${layer.outShape.join(', ')}]`);
  if (modules.length === 0) lines.push('            pass');
  lines.push('');
  const inputs = Object.keys(graph.inputShapes);
  // Locals are prefixed so that no node name can shadow self, torch or an input.
  const local = (name: string): string => (inputs.includes(name) ? name : `x_${name}`);
  lines.push(`        def forward(self, ${inputs.join(', ')}):`);
  for (const { id, inputs: from, layer } of graph.nodes) {
    const args = from.map(local);
    const value =
      layer.type === 'add' ? args.join(' + ') : layer.type === 'concat' ? `torch.cat([${args.join(', ')}], dim=1)` : `self.${id}(${args[0]})`;
    lines.push(`            ${local(id)} = ${value}`);
  }
  // Several heads: a tuple, primary first (heads.ts).
  lines.push(`            return ${graph.outputs.map(local).join(', ')}`);
  return lines;
}

function netSource(graph: ResolvedGraph): string[] {
  if (graph.kind === 'graph') return graphNetSource(graph);
  const lines = ['    class Net(nn.Module):', '        def __init__(self):', '            super().__init__()'];
  for (const branch of graph.branches) {
    if (branch.layers.length === 0) {
      lines.push(`            self.${branch.name} = nn.Sequential()`);
      continue;
    }
    lines.push(`            self.${branch.name} = nn.Sequential(`);
    for (const layer of branch.layers) {
      // Under dp_args a node trains this layer as Opacus's ModuleValidator.fix leaves it (TS nodes too: dp-fix.ts).
      const dp = layer.type === 'batch_norm'
        ? `; with dp_args: nn.GroupNorm(${dpGroupCount(layer.features)}, ${layer.features}) (Opacus ModuleValidator.fix)`
        : '';
      lines.push(`                ${torchModule(layer)},  # ${layer.index}: [${layer.outShape.join(', ')}]${dp}`);
    }
    lines.push('            )');
  }
  lines.push('');
  const args = [graph.image ? 'image' : undefined, graph.tabular ? 'tabular' : undefined].filter(Boolean).join(', ');
  lines.push(`        def forward(self, ${args}):`);
  if (graph.image && graph.tabular) lines.push('            x = torch.cat([self.image(image), self.tabular(tabular)], dim=1)');
  else if (graph.image) lines.push('            x = self.image(image)');
  else lines.push('            x = self.tabular(tabular)');
  lines.push('            return self.head(x)');
  return lines;
}

function lossExpression(loss: LossSpec): string {
  switch (loss.type) {
    case 'bce': {
      if (!loss.fromLogits) return 'F.binary_cross_entropy(output, y.float().view_as(output))';
      const posWeight = loss.posWeight === undefined ? '' : `, pos_weight=torch.tensor([${pyNumber(loss.posWeight, true)}])`;
      return `F.binary_cross_entropy_with_logits(output, y.float().view_as(output)${posWeight})`;
    }
    case 'focal':
      return `self._fbts_focal(output, y.float().view_as(output), ${pyNumber(loss.gamma ?? 2, true)}, ${pyNumber(loss.alpha ?? 0.25, true)})`;
    case 'cross_entropy': {
      const weights = loss.classWeights;
      return weights
        ? `F.cross_entropy(output, y.long().view(-1), weight=torch.tensor([${weights.map((w) => pyNumber(w, true)).join(', ')}]))`
        : 'F.cross_entropy(output, y.long().view(-1))';
    }
    case 'mse':
      return 'F.mse_loss(output, y.float().view_as(output))';
    case 'l1':
    case 'soft_dice':
    case 'weighted':
      return torchImageLoss(loss, 'output', 'y.float().view_as(output)');
  }
}

function predictionExpression(spec: PlanSpec): string {
  switch (spec.loss.type) {
    case 'bce':
      return `(output.view(-1) >= ${spec.loss.fromLogits ? '0.0' : '0.5'}).long()`;
    case 'focal':
      return '(output.view(-1) >= 0.0).long()';
    case 'cross_entropy':
      return 'output.argmax(dim=1)';
    case 'mse':
    case 'l1':
      return 'output.view(-1)';
    case 'soft_dice':
    case 'weighted':
      return `(output.view(-1) >= ${outputsLogits(spec.loss) ? '0.0' : '0.5'}).long()`;
  }
}

/** A score ordered like the positive-class probability (see metrics.ts positiveScore). */
function positiveScoreExpression(spec: PlanSpec): string {
  return spec.loss.type === 'cross_entropy' ? '(output[:, 1] - output[:, 0])' : 'output.view(-1)';
}

/** testing_step lines for one head (`spec` as that head sees it), reading `output` and `y`. */
function metricLines(spec: PlanSpec, keyOf = (wire: string) => wire, lossCall = 'self._fbts_loss(output, y)'): string[] {
  const metrics: MetricName[] = spec.metrics.length > 0 ? spec.metrics : ['loss'];
  const lines: string[] = [];
  const classification = metrics.some((m) => CLASSIFICATION_METRICS.has(m));
  if (classification) {
    lines.push(`        truth, predicted = y.view(-1).long(), ${predictionExpression(spec)}.view(-1).long()`);
  }
  for (const metric of metrics) {
    const key = pyString(keyOf(METRIC_WIRE_NAMES[metric]));
    switch (metric) {
      case 'loss':
        lines.push(`        results[${key}] = float(${lossCall})`);
        break;
      case 'accuracy':
        lines.push(`        results[${key}] = float((${predictionExpression(spec)} == y.view(-1).long()).float().mean())`);
        break;
      case 'mse':
        lines.push(`        results[${key}] = float(((output.view(-1) - y.float().view(-1)) ** 2).mean())`);
        break;
      case 'mae':
        lines.push(`        results[${key}] = float((output.view(-1) - y.float().view(-1)).abs().mean())`);
        break;
      case 'precision':
      case 'recall':
      case 'f1_score':
        lines.push(`        results[${key}] = self._fbts_prf(truth, predicted)[${['precision', 'recall', 'f1_score'].indexOf(metric)}]`);
        break;
      case 'specificity':
        lines.push(`        results[${key}] = self._fbts_specificity(truth, predicted)`);
        break;
      case 'balanced_accuracy':
        lines.push(`        results[${key}] = self._fbts_balanced_accuracy(truth, predicted)`);
        break;
      case 'dice':
        lines.push(`        results[${key}] = self._fbts_dice(truth, predicted)`);
        break;
      case 'auc':
        lines.push(`        auc = self._fbts_auc(truth, ${positiveScoreExpression(spec)})`);
        lines.push('        if auc is not None:  # undefined with a single class in the validation set');
        lines.push(`            results[${key}] = auc`);
        break;
    }
  }
  return lines;
}

/** torchvision.ops.sigmoid_focal_loss (reduction mean), inline: torchvision is not a plan dependency. */
const FOCAL_HELPER = String.raw`
    @staticmethod
    def _fbts_focal(x, y, gamma, alpha):
        p = torch.sigmoid(x)
        ce = F.binary_cross_entropy_with_logits(x, y, reduction='none')
        p_t = p * y + (1 - p) * (1 - y)
        loss = ce * ((1 - p_t) ** gamma)
        if alpha >= 0:
            loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
        return loss.mean()
`;

/** Training-batch augmentation (src/plan/augment.ts), with a vectorised port of the Mulberry32 generator. */
const AUGMENT_HELPERS = String.raw`
    @staticmethod
    def _fbts_uniforms(state, n):
        # Mulberry32 (src/engine/prng.ts): draw k only depends on state + (k + 1) * 0x6D2B79F5, so n draws vectorise.
        m = np.uint64(0xFFFFFFFF)
        t = (np.uint64(state) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x6D2B79F5)) & m
        t = ((t ^ (t >> np.uint64(15))) * (t | np.uint64(1))) & m
        t = t ^ ((t + (((t ^ (t >> np.uint64(7))) * (t | np.uint64(61))) & m)) & m)
        return ((t ^ (t >> np.uint64(14))) & m).astype(np.float64) / 4294967296.0, (state + n * 0x6D2B79F5) & 0xFFFFFFFF

    def _fbts_augment_sample(self, x, state):
        for step in self.AUGMENTATION:
            u, state = self._fbts_uniforms(state, 1)
            if u[0] >= step['p']:
                continue
            op = step['op']
            if op == 'flip':
                x = x.flip([a + 1 for a in step['axes']])
            elif op == 'rotate90':
                u, state = self._fbts_uniforms(state, 1)
                x = torch.rot90(x, 1 + int(np.floor(3 * u[0])), [step['axes'][0] + 1, step['axes'][1] + 1])
            elif op == 'scale_intensity':
                u, state = self._fbts_uniforms(state, 1)
                x = x * float(np.float32(1 + (2 * u[0] - 1) * step['factor']))
            elif op == 'shift_intensity':
                u, state = self._fbts_uniforms(state, 1)
                x = x + float(np.float32((2 * u[0] - 1) * step['offset']))
            elif op == 'affine':
                u, state = self._fbts_uniforms(state, 4)
                x = self._fbts_affine(x, step['axes'][0] + 1, step['axes'][1] + 1, (2 * u[0] - 1) * step['rotate'] * np.pi / 180,
                                      1 + (2 * u[1] - 1) * step['scale'], ((2 * u[2] - 1) * step['translate'], (2 * u[3] - 1) * step['translate']))
            elif op == 'gaussian_noise':
                u, state = self._fbts_uniforms(state, 2 * x.numel())
                noise = step['std'] * np.sqrt(-2 * np.log(1 - u[0::2])) * np.cos(2 * np.pi * u[1::2])
                x = x + torch.from_numpy(noise.astype(np.float32)).view_as(x)
        return x

    @staticmethod
    def _fbts_affine(x, a, b, angle, scale, shift):
        # bilinear resampling of the plane (a, b) at R(-angle)(q - c - shift)/scale + c, zero outside (src/plan/augment.ts)
        v = np.moveaxis(x.detach().numpy().astype(np.float64), (a, b), (-2, -1))
        na, nb = v.shape[-2], v.shape[-1]
        ca, cb = (na - 1) / 2, (nb - 1) / 2
        qa, qb = np.meshgrid(np.arange(na) - ca - shift[0], np.arange(nb) - cb - shift[1], indexing='ij')
        cos, sin = np.cos(angle), np.sin(angle)
        sa = (cos * qa + sin * qb) / scale + ca
        sb = (-sin * qa + cos * qb) / scale + cb
        a0, b0 = np.floor(sa).astype(np.int64), np.floor(sb).astype(np.int64)
        wa, wb = sa - a0, sb - b0

        def at(ia, ib):
            inside = (ia >= 0) & (ia < na) & (ib >= 0) & (ib < nb)
            return np.where(inside, v[..., np.clip(ia, 0, na - 1), np.clip(ib, 0, nb - 1)], 0.0)
        out = (1 - wa) * (1 - wb) * at(a0, b0) + (1 - wa) * wb * at(a0, b0 + 1) + wa * (1 - wb) * at(a0 + 1, b0) + wa * wb * at(a0 + 1, b0 + 1)
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(out, (-2, -1), (a, b))).astype(np.float32))

    def _fbts_augment_batch(self, images, seed):
        return torch.stack([self._fbts_augment_sample(x, (seed + (i + 1) * 0x9E3779B9) & 0xFFFFFFFF) for i, x in enumerate(images)])

    def _fbts_augment(self, images):
        # One seed per training batch from torch's generator (seeded by Fed-BioMed with random_seed).
        return self._fbts_augment_batch(images, int(torch.randint(0, 2 ** 32, (1,), dtype=torch.int64)))
`;

function augmentHelpers(spec: PlanSpec): string {
  if (!isImageTarget(spec.target)) return AUGMENT_HELPERS;
  return torchTargetAugmentHelpers(AUGMENT_HELPERS, (text, from, to) => {
    if (!text.includes(from)) throw new Error(`internal: augmentation helper line not found: ${from.trim()}`);
    return text.replace(from, to);
  });
}

/** FedBN (src/plan/fedbn.ts): local parameters kept in Fed-BioMed's var directory, per plan and dataset. */
const FEDBN_HELPERS = String.raw`
    def _fbts_local_file(self):
        import hashlib
        import os
        from fedbiomed.node.environ import environ
        key = hashlib.sha256((self.PLAN_SHA256 + '|' + os.path.abspath(self.dataset_path)).encode('utf-8')).hexdigest()[:32]
        folder = os.path.join(environ['VAR_DIR'], 'fedbiomed_ts_fedbn')
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, key + '.pt')

    def set_model_params(self, params):
        # FedBN: what the global model lacks of the local parameters comes back from this node's own copy, once the
        # dataset (which names the copy) is known; a global model that has them (round 0) is used as sent.
        self._fbts_restore = [k for k in self.LOCAL_PARAMETERS if k not in params]
        return super().set_model_params(params)

    def set_dataset_path(self, dataset_path):
        super().set_dataset_path(dataset_path)
        import os
        restore = getattr(self, '_fbts_restore', [])
        if restore and os.path.exists(self._fbts_local_file()):
            stored = torch.load(self._fbts_local_file())
            self.model().load_state_dict({k: stored[k] for k in restore if k in stored}, strict=False)

    def postprocess(self, params):
        # Called by Fed-BioMed on the full state_dict before the weights leave the node.
        torch.save({k: v.detach().clone() for k, v in params.items() if k in self.LOCAL_PARAMETERS}, self._fbts_local_file())
        return {k: v for k, v in params.items() if k not in self.LOCAL_PARAMETERS}
`;

/** Classification metric helpers of the generated plan (the same definitions as src/engine/metrics.ts). */
const METRIC_HELPERS = String.raw`
    @staticmethod
    def _fbts_prf(truth, predicted):
        # precision, recall, F1: class 1 for binary labels, support-weighted over classes otherwise (scikit-learn)
        classes = sorted(set(truth.tolist()) | set(predicted.tolist()))

        def per_class(c):
            tp = int(((predicted == c) & (truth == c)).sum())
            fp = int(((predicted == c) & (truth != c)).sum())
            fn = int(((predicted != c) & (truth == c)).sum())
            p = tp / (tp + fp) if tp + fp else 0.0
            r = tp / (tp + fn) if tp + fn else 0.0
            return p, r, (2 * p * r / (p + r) if p + r else 0.0), tp + fn
        if all(c in (0, 1) for c in classes):
            return per_class(1)[:3]
        stats = [per_class(c) for c in classes]
        total = sum(s[3] for s in stats)
        if total == 0:
            return 0.0, 0.0, 0.0
        return tuple(sum(s[k] * s[3] for s in stats) / total for k in range(3))

    @staticmethod
    def _fbts_specificity(truth, predicted):
        tn = int(((truth != 1) & (predicted != 1)).sum())
        fp = int(((truth != 1) & (predicted == 1)).sum())
        return tn / (tn + fp) if tn + fp else 0.0

    @staticmethod
    def _fbts_balanced_accuracy(truth, predicted):
        classes = sorted(set(truth.tolist()))
        if not classes:
            return 0.0
        return sum(float((predicted[truth == c] == c).float().mean()) for c in classes) / len(classes)

    @staticmethod
    def _fbts_dice(truth, predicted):
        t, p = truth == 1, predicted == 1
        tp = int((t & p).sum())
        denominator = 2 * tp + int((~t & p).sum()) + int((t & ~p).sum())
        return 2 * tp / denominator if denominator else 1.0

    @staticmethod
    def _fbts_auc(truth, scores):
        # Mann-Whitney U with tied scores sharing their mean rank; None when one class only.
        s, t = scores.detach().double().tolist(), truth.tolist()
        order = sorted(range(len(s)), key=lambda i: s[i])
        ranks = [0.0] * len(s)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and s[order[j + 1]] == s[order[i]]:
                j += 1
            for k in range(i, j + 1):
                ranks[order[k]] = (i + j) / 2 + 1
            i = j + 1
        pos = sum(1 for v in t if v == 1)
        neg = len(t) - pos
        if pos == 0 or neg == 0:
            return None
        return (sum(r for r, v in zip(ranks, t) if v == 1) - pos * (pos + 1) / 2) / (pos * neg)
`;

const OPTIMIZER_KWARGS: Record<string, string> = {
  lr: 'lr',
  momentum: 'momentum',
  weightDecay: 'weight_decay',
  dampening: 'dampening',
  nesterov: 'nesterov',
  betas: 'betas',
  eps: 'eps',
};

function optimizerLines(spec: PlanSpec): string[] {
  const { type, ...rest } = spec.optimizer;
  const kwargs = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => {
      const value = typeof v === 'number' ? pyNumber(v, true) : Array.isArray(v) ? `(${v.map((x) => pyNumber(x, true)).join(', ')})` : pyLiteral(v);
      return `${pyString(OPTIMIZER_KWARGS[k])}: ${value}`;
    });
  const cls = type === 'sgd' ? 'torch.optim.SGD' : type === 'adamw' ? 'torch.optim.AdamW' : 'torch.optim.Adam';
  return [
    '    def init_optimizer(self, optimizer_args):',
    `        args = {${kwargs.join(', ')}}`,
    "        # The experiment's optimizer_args (e.g. lr) override the plan's values, as in any Fed-BioMed plan.",
    '        args.update({k: v for k, v in (optimizer_args or {}).items() if k in args})',
    "        if isinstance(args.get('betas'), list):",
    "            args['betas'] = tuple(args['betas'])",
    `        return ${cls}(self.model().parameters(), **args)`,
  ];
}

/** Helper methods shared by every generated plan; they read the plan constants set on the class. */
const DATA_HELPERS = String.raw`
    def _fbts_error(self, message):
        return ValueError('plan ' + self.PLAN_NAME + ': ' + message)

    def _fbts_standardize(self, x):
        for step in self.TABULAR_STEPS:
            j = self.TABULAR_COLUMNS.index(step['column'])
            x[..., j] = (x[..., j] - step['mean']) / step['std']
        return x

    def _fbts_frame_columns(self, frame, columns):
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise self._fbts_error('column(s) %s not in the dataset (it has: %s)' % (missing, list(frame.columns)))
        try:
            return frame[columns].to_numpy(dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise self._fbts_error('columns %s must be numeric: %s' % (columns, exc))

    def _fbts_demographics(self, row):
        # One subject's demographics (dict) -> float32 [tabular columns..., target].
        wanted = self.TABULAR_COLUMNS + [self.TARGET_COLUMN]
        if not row:
            raise self._fbts_error('needs the demographics file of the medical folder (dataset parameters tabular_file and index_col) for columns %s' % wanted)
        missing = [c for c in wanted if c not in row]
        if missing:
            raise self._fbts_error('column(s) %s missing or not numeric in the demographics' % missing)
        values = np.array([float(row[c]) for c in wanted], dtype=np.float32)
        values[:-1] = self._fbts_standardize(values[:-1])
        return values

    def _fbts_crop(self, x, start, size, modality):
        spatial = list(x.shape[1:])
        if len(start) != len(spatial) or any(s < 0 or s + n > d for s, n, d in zip(start, size, spatial)):
            raise self._fbts_error('modality %r: crop start %s size %s does not fit the volume %s' % (modality, list(start), list(size), spatial))
        for axis, (s, n) in enumerate(zip(start, size)):
            x = x.narrow(axis + 1, s, n)
        return x

    def _fbts_normalize(self, x, step):
        if step['method'] == 'zscore':
            std = float(x.std(unbiased=False))
            return (x - x.mean()) / (std if std > 0 else 1.0)
        if step['method'] == 'minmax':
            low, high = float(x.min()), float(x.max())
            return (x - low) / (high - low if high > low else 1.0)
        return (x - step['mean']) / step['std']

    def _fbts_slices(self, x, step, modality):
        axis = step['axis']
        n = x.shape[axis + 1]
        center = step.get('center', 'middle')
        center = n // 2 if center == 'middle' else center
        first = center - step['count'] // 2
        if first < 0 or first + step['count'] > n:
            raise self._fbts_error('modality %r: slices %d..%d do not fit axis %d of size %d' % (modality, first, first + step['count'] - 1, axis, n))
        return x[0].narrow(axis, first, step['count']).movedim(axis, 0)

    def _fbts_image(self, volume, modality):
        # One modality's volume -> float32 [channels, *size]: the plan's image preprocessing, in order.
        x = torch.as_tensor(np.asarray(volume), dtype=torch.float32)
        while x.dim() > self.STORED_RANK and x.shape[-1] == 1:
            x = x[..., 0]
        if x.dim() != self.STORED_RANK:
            raise self._fbts_error('modality %r has shape %s, expected a %dD volume' % (modality, list(x.shape), self.STORED_RANK))
        x = x.unsqueeze(0)
        for step in self.IMAGE_STEPS:
            op = step['op']
            if op == 'crop':
                x = self._fbts_crop(x, step['start'], step['size'], modality)
            elif op == 'center_crop':
                start = [(d - n) // 2 for d, n in zip(x.shape[1:], step['size'])]
                x = self._fbts_crop(x, start, step['size'], modality)
            elif op == 'resize':
                mode = 'bilinear' if len(step['size']) == 2 else 'trilinear'
                x = F.interpolate(x.unsqueeze(0), size=tuple(step['size']), mode=mode, align_corners=False).squeeze(0)
            elif op == 'normalize':
                if step.get('modalities') is None or modality in step['modalities']:
                    x = self._fbts_normalize(x, step)
            elif op == 'select_slices':
                x = self._fbts_slices(x, step, modality)
        if list(x.shape[1:]) != self.IMAGE_SIZE:
            raise self._fbts_error('modality %r gives %s after preprocessing, the network expects %s' % (modality, list(x.shape[1:]), self.IMAGE_SIZE))
        return x

    def _fbts_batch(self, data, target):
        # Medical folder batches are ((images by modality, demographics), targets); CSV batches are (features, target).
        if isinstance(data, (list, tuple)):
            images, demographics = data
            inputs = {'image': torch.cat([images[m] for m in self.MODALITIES], dim=1).float()}
            f = len(self.TABULAR_COLUMNS)
            if f > 0:
                inputs['tabular'] = demographics[:, :f].float()
            return inputs, demographics[:, f]
        return {'tabular': data.float()}, target
`;

/** Preprocessing code only plans using these steps carry (see dataHelpers). */
const INTENSITY_METHOD = String.raw`    def _fbts_intensity(self, x, step):
        if step['op'] == 'log':
            return torch.log1p(x.clamp(min=0))
        if step['op'] == 'clip':
            return x.clamp(min=step.get('min'), max=step.get('max'))
        low = float(np.float32(step['center'] - step['width'] / 2))
        high = float(np.float32(step['center'] + step['width'] / 2))
        return (x.clamp(min=low, max=high) - low) / step['width']

`;
const INTENSITY_BRANCH = String.raw`            elif op in ('clip', 'window', 'log'):
                if step.get('modalities') is None or modality in step['modalities']:
                    x = self._fbts_intensity(x, step)
`;
const MIP_BRANCH = String.raw`            elif op == 'mip':
                x = x.amax(dim=step['axis'] + 1)
`;

/**
 * The data helpers of a plan. Code for the newer steps (clip / window / log, mip, fill_missing) is added only to
 * plans that use them, so the generated source of other plans stays as it was, and so their approvals on Python
 * nodes; with fill_missing the column readers fill missing values first.
 */
function dataHelpers(spec: PlanSpec, fedbiomed: 'v4.5' | 'v6'): string {
  const replace = (text: string, from: string, to: string): string => {
    if (!text.includes(from)) throw new Error(`internal: data helper line not found: ${from.trim()}`);
    return text.replace(from, to);
  };
  const uses = (...ops: string[]) => spec.preprocessing.some((s) => ops.includes(s.op));
  let text = DATA_HELPERS;
  const branchAnchor = `            elif op == 'select_slices':
`;
  if (uses('clip', 'window', 'log')) {
    text = replace(text, `    def _fbts_slices(self, x, step, modality):
`, `${INTENSITY_METHOD}    def _fbts_slices(self, x, step, modality):
`);
    text = replace(text, branchAnchor, `${INTENSITY_BRANCH}${branchAnchor}`);
  }
  if (uses('mip')) text = replace(text, branchAnchor, `${MIP_BRANCH}${branchAnchor}`);
  if (needsWholeSample(spec)) text = wholeSampleHelpers(text);
  if (spec.preprocessing.some((s) => s.op === 'crop_around' && s.labels)) {
    // crop_around on the voxels of given labels (e.g. a segmentation's tumour labels, not its oedema)
    text = replace(text, `            inside = (guide > 0).any(dim=0).nonzero()
`, `            inside = (guide > 0 if step.get('labels') is None else torch.isin(guide, torch.tensor(step['labels'], dtype=guide.dtype))).any(dim=0).nonzero()
`);
  }
  if (uses('fill_missing')) text = fillMissingHelpers(text, replace);
  if (uses('one_hot_column')) text = oneHotHelpers(text, replace);
  if (fedbiomed === 'v6') {
    const tupleBatch = `        if isinstance(data, (list, tuple)):
`;
    text = replace(text, tupleBatch, `        if isinstance(data, dict):
            # Fed-BioMed v6 medical folder batches: one dict of modalities, the demographics row among them.
            data = (data, data['demographics'])
${tupleBatch}`);
  }
  if (isImageFolderPlan(spec)) text = imageFolderHelpers(text);
  if (hasSeveralHeads(spec)) text = severalHeadsDataHelpers(text, replace);
  if (isImageTarget(spec.target)) text = torchTargetHelpers(text, replace, needsWholeSample(spec));
  return text;
}

type Replace = (text: string, from: string, to: string) => string;

/**
 * Plans with resample or crop_around preprocess a subject's modalities together (pipeline.ts preprocessImages):
 * `_fbts_image`'s step branches become `_fbts_step`, driven by `_fbts_images` over every modality at once.
 */
function wholeSampleHelpers(data: string): string {
  const begin = data.indexOf('    def _fbts_image(self, volume, modality):\n');
  const end = data.indexOf('    def _fbts_batch(self, data, target):\n');
  if (begin < 0 || end < 0) throw new Error('internal: _fbts_image not found');
  const lines = data.slice(begin, end).split('\n');
  const at = (line: string): number => {
    const i = lines.indexOf(line);
    if (i < 0) throw new Error(`internal: data helper line not found: ${line.trim()}`);
    return i;
  };
  const unsqueeze = at('        x = x.unsqueeze(0)');
  const loop = at('        for step in self.IMAGE_STEPS:');
  const check = at('        if list(x.shape[1:]) != self.IMAGE_SIZE:');
  const method = [
    '    def _fbts_volume(self, volume, modality):',
    ...lines.slice(2, unsqueeze),
    '        return x.unsqueeze(0)',
    '',
    '    def _fbts_step(self, x, step, modality):',
    ...lines.slice(loop + 1, check).map((line) => line.slice(4)),
    '        return x',
    '',
  ].join('\n');
  return `${data.slice(0, begin)}${WHOLE_SAMPLE_HELPERS}${method}\n${data.slice(end)}`;
}

const WHOLE_SAMPLE_HELPERS = String.raw`    def _fbts_images(self, data):
        # A subject's modalities -> float32 [channels, *size] each: the image steps in order, every modality at once
        # (resample reads each volume's affine; crop_around places one box from one modality and cuts it from all).
        xs = {m: self._fbts_volume(data[m], m) for m in self.MODALITIES}
        for step in self.IMAGE_STEPS:
            if step['op'] == 'crop_around':
                xs = self._fbts_crop_around(xs, step)
            elif step['op'] == 'resample':
                xs = {m: self._fbts_resample(x, getattr(data[m], 'affine', None), step, m) for m, x in xs.items()}
            else:
                xs = {m: self._fbts_step(x, step, m) for m, x in xs.items()}
        for m, x in xs.items():
            if list(x.shape[1:]) != self.IMAGE_SIZE:
                raise self._fbts_error('modality %r gives %s after preprocessing, the network expects %s' % (m, list(x.shape[1:]), self.IMAGE_SIZE))
        return xs

    def _fbts_resample(self, x, affine, step, modality):
        # Voxel axes to RAS (greedy on the largest direction cosine), then each axis to the target spacing, the first
        # voxel's centre kept (src/plan/pipeline-geometry.ts).
        if affine is None:
            raise self._fbts_error("modality %r: resample needs the volume's affine, and this reader gave none" % modality)
        if x.dim() != 4:
            raise self._fbts_error('modality %r: resample needs a 3D volume' % modality)
        a = np.asarray(affine, dtype=np.float64)[:3, :3]
        norms = np.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])
        old_of, signs, used = [-1, -1, -1], [1, 1, 1], set()
        for _ in range(3):
            best = (-1.0, -1, -1)
            for ax in range(3):
                for w in range(3):
                    if ax not in used and old_of[w] < 0 and abs(a[w, ax] / norms[ax]) > best[0]:
                        best = (abs(a[w, ax] / norms[ax]), ax, w)
            _, ax, w = best
            used.add(ax)
            old_of[w], signs[w] = ax, (-1 if a[w, ax] < 0 else 1)
        x = x.permute([0] + [o + 1 for o in old_of])
        flips = [w + 1 for w in range(3) if signs[w] < 0]
        if flips:
            x = x.flip(flips)
        nearest = modality in step.get('nearest', [])
        for w in range(3):
            r = step['spacing'][w] / norms[old_of[w]]
            if r == 1:
                continue
            n = x.shape[w + 1]
            src = np.minimum(np.arange(int(np.floor((n - 1) / r + 1e-6)) + 1) * r, n - 1)
            if nearest:
                x = x.index_select(w + 1, torch.from_numpy(np.minimum(np.floor(src + 0.5), n - 1).astype(np.int64)))
                continue
            lo = np.floor(src).astype(np.int64)
            shape = [1] * x.dim()
            shape[w + 1] = len(src)
            weight = torch.from_numpy((src - lo).astype(np.float32)).view(shape)
            hi = torch.from_numpy(np.minimum(lo + 1, n - 1))
            x = x.index_select(w + 1, torch.from_numpy(lo)) * (1 - weight) + x.index_select(w + 1, hi) * weight
        return x.contiguous()

    def _fbts_crop_around(self, xs, step):
        # One box for every modality, centred on the mask's bounding box or the brightest voxel of one modality.
        guide = xs[step['modality']]
        spatial = list(guide.shape[1:])
        for m, x in xs.items():
            if list(x.shape[1:]) != spatial:
                raise self._fbts_error('modality %r is %s where %r is %s: crop_around needs one grid for all modalities' % (m, list(x.shape[1:]), step['modality'], spatial))
        if step['center'] == 'brightest':
            values = guide.numpy().astype(np.float64)
            k = step.get('smooth', 1)
            for axis in (range(1, values.ndim) if k > 1 else []):
                # k-wide box sums, zero outside, added from the lowest index up (as pipeline-geometry.ts)
                n, padded = values.shape[axis], np.pad(values, [((k - 1) // 2,) * 2 if a == axis else (0, 0) for a in range(values.ndim)])
                total = np.zeros_like(values)
                for d in range(k):
                    total = total + np.take(padded, np.arange(d, d + n), axis=axis)
                values = total
            center = [int(i) for i in np.unravel_index(int(np.argmax(values.reshape(-1))), guide.shape)[1:]]
        else:
            inside = (guide > 0).any(dim=0).nonzero()
            if len(inside) == 0:
                center = [n // 2 for n in spatial]
            else:
                center = [(lo + hi) // 2 for lo, hi in zip(inside.min(dim=0).values.tolist(), inside.max(dim=0).values.tolist())]
        start = [c - n // 2 for c, n in zip(center, step['size'])]
        return {m: self._fbts_pad_crop(x, start, step['size'], step.get('padValue', 0)) for m, x in xs.items()}

    @staticmethod
    def _fbts_pad_crop(x, start, size, value):
        out = torch.full([x.shape[0]] + list(size), float(value), dtype=torch.float32)
        source, target = [slice(None)], [slice(None)]
        for s, n, d in zip(start, size, x.shape[1:]):
            lo, hi = max(s, 0), min(s + n, d)
            if hi <= lo:
                return out
            source.append(slice(lo, hi))
            target.append(slice(lo - s, hi - s))
        out[tuple(target)] = x[tuple(source)]
        return out

`;

/** One-hot columns: features are encoded (indicators in place of the column); standardisation by feature index. */
function oneHotHelpers(data: string, replace: Replace): string {
  let text = replace(data, `            j = self.TABULAR_COLUMNS.index(step['column'])
`, `            j = self.FEATURE_INDEX[step['column']]
`);
  text = replace(text, `            f = len(self.TABULAR_COLUMNS)
`, `            f = self.FEATURE_COUNT
`);
  const values = / {8}values = np\.array\(\[(.*) for c in wanted\], dtype=np\.float32\)\n/.exec(text);
  if (!values) throw new Error('internal: demographics line not found');
  text = replace(text, values[0], `        cell = lambda c: ${values[1]}
        values = np.array(self._fbts_encode(lambda c: row.get(c), cell) + [cell(self.TARGET_COLUMN)], dtype=np.float32)
`);
  text = replace(text, `        missing = [c for c in wanted if c not in row`, `        missing = [c for c in wanted if c not in row and c not in self.ONE_HOT`);
  return `${text}${ONE_HOT_HELPERS}`;
}

const ONE_HOT_HELPERS = String.raw`
    @staticmethod
    def _fbts_category(v):
        # a cell's text for category matching: integral numbers without '.0'; None when missing
        if v is None or (isinstance(v, float) and np.isnan(v)) or v == '':
            return None
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v)

    def _fbts_encode(self, raw, cell):
        # tabular features: one indicator per category for one-hot columns (all 0 for another or a missing value)
        out = []
        for c in self.TABULAR_COLUMNS:
            if c in self.ONE_HOT:
                text = self._fbts_category(raw(c))
                out.extend(1.0 if text == k else 0.0 for k in self.ONE_HOT[c])
            else:
                out.append(cell(c))
        return out

    def _fbts_encode_frame(self, frame):
        numeric = [c for c in self.TABULAR_COLUMNS if c not in self.ONE_HOT]
        values = self._fbts_frame_columns(frame, numeric) if numeric else np.zeros((len(frame), 0), dtype=np.float32)
        absent = [c for c in self.ONE_HOT if c not in frame.columns]
        if absent:
            raise self._fbts_error('column(s) %s not in the dataset (it has: %s)' % (absent, list(frame.columns)))
        rows = []
        for i in range(len(frame)):
            known = dict(zip(numeric, values[i].tolist()))
            rows.append(self._fbts_encode(lambda c: frame[c].iloc[i], lambda c: known[c]))
        return np.array(rows, dtype=np.float32).reshape(len(frame), self.FEATURE_COUNT)
`;

/** fill_missing: the column readers fill missing values first. */
function fillMissingHelpers(data: string, replace: Replace): string {
  let text = replace(data, `    def _fbts_frame_columns(self, frame, columns):
`, `    def _fbts_frame_columns(self, frame, columns):
        frame = frame.copy()
        for c, v in self.FILL_MISSING.items():
            if c in columns:
                frame[c] = pd.to_numeric(frame[c], errors='coerce').replace([np.inf, -np.inf], np.nan).fillna(v) if c in frame.columns else v
`);
  text = replace(text, `        missing = [c for c in wanted if c not in row]
`, `        missing = [c for c in wanted if c not in row and c not in self.FILL_MISSING]
`);
  text = replace(text, `        values = np.array([float(row[c]) for c in wanted], dtype=np.float32)
`, `        values = np.array([self._fbts_cell(row, c) for c in wanted], dtype=np.float32)
`);
  return `${text}
    def _fbts_cell(self, row, c):
        # fill_missing: an absent, empty or non-numeric value of a filled column becomes its fill value
        if c not in self.FILL_MISSING:
            return float(row[c])
        try:
            value = float(row.get(c))
        except (TypeError, ValueError):
            return float(self.FILL_MISSING[c])
        return value if np.isfinite(value) else float(self.FILL_MISSING[c])
`;
}

/** A head's target column (validation refuses image targets in plans with several heads). */
function columnOf(target: TargetSpec): string {
  if (isImageTarget(target)) throw new Error('internal: an image target in a plan with several heads');
  return target.column;
}

function trainingDataLines(spec: PlanSpec, fedbiomed: 'v4.5' | 'v6'): string[] {
  if (isImageFolderPlan(spec)) {
    if (fedbiomed === 'v6') throw new Error('plan export --fedbiomed v6: image-folder plans are generated for Fed-BioMed v4.5 only (v6\'s image datasets were not checked)');
    return [...IMAGE_FOLDER_TRAINING_DATA];
  }
  if (isImageTarget(spec.target) && fedbiomed === 'v6') {
    // v6's MedicalFolderDataset takes the target from the demographics here: an image target would be lost.
    throw new Error('plan export --fedbiomed v6: plans with an image target are generated for Fed-BioMed v4.5 only (v6\'s target modalities were not checked)');
  }
  if (spec.inputs.image && needsWholeSample(spec)) {
    if (fedbiomed === 'v6') {
      throw new Error('plan export --fedbiomed v6: the resample / crop_around image steps are not generated for v6\'s MedicalFolderDataset yet');
    }
    return [
      '    def training_data(self):',
      '        plan = self',
      '',
      '        class SubjectDataset(MedicalFolderDataset):',
      "            # The image steps need a subject's modalities together (and their affines): run on the loaded item.",
      '            def __getitem__(self, item):',
      '                (data, demographics), targets = super().__getitem__(item)',
      ...(isImageTarget(spec.target) ? [
        '                images, targets = plan._fbts_sample(data, targets)',
        '                return (images, demographics), targets',
      ] : ['                return (plan._fbts_images(data), demographics), targets']),
      '',
      '        dataset = SubjectDataset(',
      '            root=self.dataset_path,',
      '            data_modalities=self.MODALITIES,',
      `            target_modalities=${isImageTarget(spec.target) ? 'self.TARGET_MODALITIES' : '[]'},`,
      '            demographics_transform=self._fbts_demographics,',
      '        )',
      '        return DataManager(dataset=dataset, shuffle=True)',
    ];
  }
  if (spec.inputs.image && fedbiomed === 'v6') {
    // v6's MedicalFolderDataset (fedbiomed.common.dataset) reads the folder the node registered, hands each
    // modality as a tensor and the demographics row as numbers (text as NaN) in the file's column order; the
    // target comes from the same row (the data loader cannot batch a missing target).
    return [
      '    def training_data(self):',
      '        def row(values):',
      '            return self._fbts_demographics_v6(values, dataset.demographics_columns)',
      '        transform = {m: (lambda volume, m=m: self._fbts_image(volume, m)) for m in self.MODALITIES}',
      "        transform['demographics'] = row",
      '        dataset = MedicalFolderDataset(',
      "            data_modalities=self.MODALITIES + ['demographics'],",
      '            transform=transform,',
      "            target_modalities=['demographics'],",
      "            target_transform={'demographics': lambda values: row(values)[-1]},",
      '        )',
      '        return DataManager(dataset=dataset, shuffle=True)',
      '',
      '    def _fbts_demographics_v6(self, values, columns):',
      '        # Named by the dataset\'s columns (known once the node set the dataset up); NaN (text) counts as missing.',
      '        row = {c: v for c, v in zip(columns or [], values.tolist()) if v == v}',
      '        return torch.from_numpy(self._fbts_demographics(row))',
    ];
  }
  if (spec.inputs.image) {
    return [
      '    def training_data(self):',
      '        transform = {m: (lambda volume, m=m: self._fbts_image(volume, m)) for m in self.MODALITIES}',
      '        dataset = MedicalFolderDataset(',
      '            root=self.dataset_path,',
      '            data_modalities=self.MODALITIES,',
      '            transform=transform,',
      ...(isImageTarget(spec.target) ? TORCH_TARGET_DATASET_LINES : ['            target_modalities=[],']),
      '            demographics_transform=self._fbts_demographics,',
      '        )',
      '        return DataManager(dataset=dataset, shuffle=True)',
    ];
  }
  return [
    '    def training_data(self):',
    '        frame = pd.read_csv(self.dataset_path)',
    spec.preprocessing.some((s) => s.op === 'one_hot_column')
      ? '        x = self._fbts_standardize(self._fbts_encode_frame(frame))'
      : '        x = self._fbts_standardize(self._fbts_frame_columns(frame, self.TABULAR_COLUMNS))',
    hasSeveralHeads(spec)
      ? '        y = self._fbts_frame_columns(frame, self.TARGET_COLUMNS)'
      : '        y = self._fbts_frame_columns(frame, [self.TARGET_COLUMN])[:, 0]',
    ...(fedbiomed === 'v6' ? [
      '        # Fed-BioMed v6 wraps plain data in a NativeDataset, which converts a numpy item as an image: lists.',
      '        return DataManager(dataset=x.tolist(), target=y.tolist(), shuffle=True)',
    ] : ['        return DataManager(dataset=x, target=y, shuffle=True)']),
  ];
}

function usesClassificationHelpers(spec: PlanSpec): boolean {
  return planHeads(spec).some((head) => head.metrics.some((m) => CLASSIFICATION_METRICS.has(m)));
}

/** _fbts_loss, and testing_step's metric lines (after `output` and `y` are computed). */
function lossAndMetricSource(spec: PlanSpec): { loss: string[]; metrics: string[] } {
  if (!hasSeveralHeads(spec)) {
    return { loss: ['    def _fbts_loss(self, output, y):', `        return ${lossExpression(spec.loss)}`], metrics: metricLines(spec) };
  }
  // Several heads (heads.ts): a tuple of outputs, one target column per head; loss Σ weight · head loss.
  const heads = planHeads(spec);
  const loss = [
    '    def _fbts_loss(self, outputs, ys):',
    '        # several heads: the weighted sum of their losses, each head against its target column (src/plan/heads.ts)',
    `        return ${heads.map((head, h) => `${pyNumber(lossWeight(head.loss), true)} * self._fbts_head_loss_${h}(outputs[${h}], ys[:, ${h}])`).join(' + ')}`,
  ];
  heads.forEach((head, h) => loss.push('', `    def _fbts_head_loss_${h}(self, output, y):`, `        return ${lossExpression(head.loss)}`));
  const metrics = [`        results[${pyString(METRIC_WIRE_NAMES.loss)}] = float(self._fbts_loss(output, y))`, '        outputs, ys = output, y'];
  heads.forEach((head, h) => {
    if (head.metrics.length === 0) return;
    metrics.push(`        output, y = outputs[${h}], ys[:, ${h}]  # head ${head.output}`);
    metrics.push(...metricLines(headView(spec, head), (wire) => headMetricKey(head, wire), `self._fbts_head_loss_${h}(output, y)`));
  });
  return { loss, metrics };
}

/** Several heads: the demographics carry one target per head, CSV targets are columns. */
function severalHeadsDataHelpers(data: string, replace: Replace): string {
  let text = replace(data, `        wanted = self.TABULAR_COLUMNS + [self.TARGET_COLUMN]
`, `        wanted = self.TABULAR_COLUMNS + self.TARGET_COLUMNS
`);
  text = replace(text, `        values[:-1] = self._fbts_standardize(values[:-1])
`, `        values[:-len(self.TARGET_COLUMNS)] = self._fbts_standardize(values[:-len(self.TARGET_COLUMNS)])
`);
  text = replace(text, `            return inputs, demographics[:, f]
`, `            return inputs, demographics[:, f:]
`);
  if (text.includes('[cell(self.TARGET_COLUMN)]')) text = replace(text, '[cell(self.TARGET_COLUMN)]', '[cell(c) for c in self.TARGET_COLUMNS]');
  return text;
}

/** The dependency lines the generated class declares in init_dependencies(). */
export function planDependencies(spec: PlanSpec, fedbiomed: 'v4.5' | 'v6' = 'v4.5'): string[] {
  const deps = ['import numpy as np', 'import pandas as pd'];
  if (spec.inputs.image && !isImageFolderPlan(spec)) {
    deps.push(fedbiomed === 'v6' ? 'from fedbiomed.common.dataset import MedicalFolderDataset'
      : 'from fedbiomed.common.data import MedicalFolderDataset');
  }
  return deps;
}

/** The class source alone (what inspect.getsource returns for it). */
export function generateTorchPlanClass(plan: PlanSpec, options: GenerateTorchPlanOptions = {}): string {
  validatePlan(plan); // first, so a bad plan gets the validator's message
  const className = options.className ?? plan.name;
  checkClassName(className);
  const json = canonicalJson(plan);
  // Generate from the canonical form: Python nodes approve a plan by the hash of this source, so one plan must give
  // one source whatever its key order (a spec written in TypeScript, or read back from a generated .py's PLAN_SPEC).
  const spec = JSON.parse(json) as PlanSpec;
  const { graph } = validatePlan(spec);
  const imageSteps = spec.preprocessing.filter(isImageStep);
  const oneHot = Object.fromEntries(oneHotColumns(spec));
  const features = tabularFeatureIndex(spec);
  const fills = Object.fromEntries(spec.preprocessing.flatMap((s) => (s.op === 'fill_missing' ? [[s.column, s.value]] : [])));
  const tabularSteps = spec.preprocessing.filter((s) => s.op === 'standardize_column');
  const augmentation = spec.augmentation ?? [];
  const localParameters = localParameterNamesOf(spec, graph);
  const lossAndMetric = lossAndMetricSource(spec);
  const doc = `Generated by fedbiomed-ts from the declarative plan ${spec.name} (sha256 ${sha256Hex(json)}).`;
  const lines: string[] = [
    `class ${className}(TorchTrainingPlan):`,
    `    ${pyString(spec.description ? `${spec.description} -- ${doc}` : doc)}`,
    '',
    '    # The plan itself: fedbiomed-ts nodes train from this document and never execute this file.',
    `    PLAN_SPEC = ${pyString(json)}`,
    `    PLAN_SHA256 = ${pyString(sha256Hex(json))}`,
    `    PLAN_NAME = ${pyString(spec.name)}`,
    `    MODALITIES = ${pyLiteral(spec.inputs.image?.modalities ?? [])}`,
    `    IMAGE_SIZE = ${pyLiteral(spec.inputs.image?.size ?? [])}`,
    `    STORED_RANK = ${storedImageRank(spec)}`,
    `    TABULAR_COLUMNS = ${pyLiteral(spec.inputs.tabular?.columns ?? [])}`,
    ...(isImageTarget(spec.target) ? torchTargetConstants(spec) : [
      `    TARGET_COLUMN = ${pyString(spec.target.column)}`,
      ...(hasSeveralHeads(spec) ? [`    TARGET_COLUMNS = ${pyLiteral(planHeads(spec).map((h) => columnOf(h.target)))}`] : []),
    ]),
    `    IMAGE_STEPS = ${pyLiteral(imageSteps)}`,
    `    TABULAR_STEPS = ${pyLiteral(tabularSteps)}`,
    ...(Object.keys(fills).length > 0 ? [`    FILL_MISSING = ${pyLiteral(fills)}`] : []),
    ...(Object.keys(oneHot).length > 0
      ? [
          `    ONE_HOT = ${pyLiteral(oneHot)}`,
          `    FEATURE_INDEX = ${pyLiteral(Object.fromEntries(features.index))}`,
          `    FEATURE_COUNT = ${features.count}`,
        ]
      : []),
    ...(augmentation.length > 0 ? [`    AUGMENTATION = ${pyLiteral(augmentation)}`] : []),
    ...(localParameters.length > 0 ? [`    LOCAL_PARAMETERS = ${pyLiteral(localParameters)}`] : []),
    '',
    ...netSource(graph),
    '',
    '    def init_model(self, model_args):',
    '        return self.Net()',
    '',
    ...optimizerLines(spec),
    '',
    '    def init_dependencies(self):',
    `        return ${pyLiteral(planDependencies(spec, options.fedbiomed))}`,
    '',
    ...trainingDataLines(spec, options.fedbiomed ?? 'v4.5'),
    '',
    ...(planHeads(spec).some((h) => h.loss.type === 'focal') ? FOCAL_HELPER.split('\n').slice(1) : []),
    ...lossAndMetric.loss,
    '',
    '    def training_step(self, data, target):',
    '        self.model().train()',
    '        inputs, y = self._fbts_batch(data, target)',
    ...(augmentation.length === 0 ? [] : isImageTarget(spec.target)
      ? ["        inputs['image'], y = self._fbts_augment(inputs['image'], y)  # training batches only; the target moves with the image"]
      : ["        inputs['image'] = self._fbts_augment(inputs['image'])  # training batches only"]),
    '        output = self.model()(**inputs)',
    '        return self._fbts_loss(output, y)',
    '',
    '    def testing_step(self, data, target):',
    '        # Fed-BioMed does not switch to eval mode around a custom testing_step; batch norm and dropout must.',
    '        self.model().eval()',
    '        inputs, y = self._fbts_batch(data, target)',
    '        output = self.model()(**inputs)',
    '        results = {}',
    ...lossAndMetric.metrics,
    '        return results',
    ...dataHelpers(spec, options.fedbiomed ?? 'v4.5').split('\n').slice(0, -1),
    ...(usesClassificationHelpers(spec) ? METRIC_HELPERS.split('\n').slice(0, -1) : []),
    ...(augmentation.length > 0 ? augmentHelpers(spec).split('\n').slice(0, -1) : []),
    ...(localParameters.length > 0 ? FEDBN_HELPERS.split('\n').slice(0, -1) : []),
  ];
  return `${lines.join('\n')}\n`;
}

/** The full plan file, byte-for-byte what Fed-BioMed v4.5's save_code writes for this class. */
export function generateTorchPlan(spec: PlanSpec, options: GenerateTorchPlanOptions = {}): string {
  const deps: string[] = [...(options.fedbiomed === 'v6' ? TORCH_PLAN_DEFAULT_DEPENDENCIES_V6 : TORCH_PLAN_DEFAULT_DEPENDENCIES)];
  for (const dep of planDependencies(spec, options.fedbiomed)) if (!deps.includes(dep)) deps.push(dep);
  return `${deps.join('\n')}\n${generateTorchPlanClass(spec, options)}`;
}

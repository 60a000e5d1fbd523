/**
 * Small example plans covering every layer family; used by the plan tests and usable by other areas' tests.
 */
import { definePlan } from '../define';
import { modelGraph } from '../graph-builder';
import { PlanSpec } from '../spec';

/** Tabular MLP 4 → 8 → 2 with cross-entropy and SGD with momentum and weight decay. */
export function mlpPlan(): PlanSpec {
  return definePlan({
    name: 'TinyMlp',
    description: 'MLP on four CSV features',
    inputs: { tabular: { columns: ['f0', 'f1', 'f2', 'f3'] } },
    target: { column: 'label' },
    preprocessing: [{ op: 'standardize_column', column: 'f0', mean: 1.5, std: 2 }],
    model: {
      tabular: [{ type: 'dense', outFeatures: 8 }, { type: 'leaky_relu', negativeSlope: 0.1 }, { type: 'softmax' }],
      head: [{ type: 'dense', outFeatures: 2 }],
    },
    loss: { type: 'cross_entropy' },
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 0.01 },
    metrics: ['loss', 'accuracy'],
    modelArgs: { in_features: 4 },
  });
}

/** 2D CNN with batch norm, max pool, avg pool, flatten (NCHW order matters) and a BCE-on-probabilities head. */
export function cnn2dPlan(): PlanSpec {
  return definePlan({
    name: 'Cnn2dBn',
    inputs: { image: { modalities: ['T1', 'FLAIR'], dims: 2, size: [12, 10] } },
    target: { column: 'responder' },
    preprocessing: [{ op: 'normalize', method: 'zscore' }],
    model: {
      image: [
        { type: 'conv2d', outChannels: 4, kernelSize: [3, 2], padding: 'same' }, // even kernel: PyTorch pads the extra column after
        { type: 'batch_norm' },
        { type: 'relu' },
        { type: 'max_pool2d', kernelSize: 2 },
        { type: 'conv2d', outChannels: 3, kernelSize: [3, 2], stride: [1, 2] },
        { type: 'avg_pool2d', kernelSize: [2, 1] },
        { type: 'flatten' },
      ],
      head: [{ type: 'dense', outFeatures: 5 }, { type: 'relu' }, { type: 'dense', outFeatures: 1 }, { type: 'sigmoid' }],
    },
    loss: { type: 'bce' },
    optimizer: { type: 'sgd', lr: 0.05 },
    metrics: ['accuracy'],
  });
}

/** 2.5D CNN on selected slices plus a clinical branch, concatenated; BCE with logits, Adam. */
export function cnnTabularPlan(): PlanSpec {
  return definePlan({
    name: 'CnnWithClinical',
    inputs: {
      image: { modalities: ['T1ce', 'FLAIR'], dims: 2, size: [8, 8] },
      tabular: { columns: ['age', 'kps', 'mgmt'] },
    },
    target: { column: 'responder' },
    preprocessing: [
      { op: 'select_slices', axis: 2, count: 3 },
      { op: 'center_crop', size: [8, 8] },
      { op: 'normalize', method: 'minmax', modalities: ['T1ce'] },
      { op: 'normalize', method: 'fixed', mean: 10, std: 5, modalities: ['FLAIR'] },
      { op: 'standardize_column', column: 'age', mean: 60, std: 10 },
    ],
    model: {
      image: [
        { type: 'conv2d', outChannels: 4, kernelSize: 3, padding: 'same' },
        { type: 'relu' },
        // No bias before batch norm: its gradient is exactly 0 in theory, so Adam's first step would follow rounding noise.
        { type: 'conv2d', outChannels: 5, kernelSize: 2, stride: 2, bias: false },
        { type: 'batch_norm', momentum: 0.2 },
        { type: 'sigmoid' },
        { type: 'global_avg_pool' },
      ],
      tabular: [{ type: 'dense', outFeatures: 4, bias: false }, { type: 'batch_norm' }, { type: 'relu' }],
      head: [{ type: 'dropout', rate: 0.25 }, { type: 'dense', outFeatures: 1 }],
    },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'adam', lr: 0.001 },
    metrics: ['loss', 'accuracy'],
  });
}

/** 3D CNN: conv3d, batch norm 3d, pools, flatten of a 5D tensor, softmax head with MSE-free cross-entropy. */
export function cnn3dPlan(): PlanSpec {
  return definePlan({
    name: 'Cnn3d',
    inputs: { image: { modalities: ['T1'], dims: 3, size: [6, 8, 7] } },
    target: { column: 'grade' },
    preprocessing: [{ op: 'resize', size: [6, 8, 7] }],
    model: {
      image: [
        { type: 'conv3d', outChannels: 3, kernelSize: 3, padding: [1, 1, 0] },
        { type: 'batch_norm' },
        { type: 'leaky_relu' },
        { type: 'max_pool3d', kernelSize: 2 },
        { type: 'conv3d', outChannels: 2, kernelSize: [1, 2, 2], bias: false },
        { type: 'avg_pool3d', kernelSize: [1, 1, 1] },
        { type: 'flatten' },
      ],
      head: [{ type: 'dense', outFeatures: 3 }],
    },
    loss: { type: 'cross_entropy' },
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.5, nesterov: true },
    metrics: ['accuracy'],
  });
}

/** MSE regression on a tabular input with batch norm first. */
export function regressionPlan(): PlanSpec {
  return definePlan({
    name: 'Regress',
    inputs: { tabular: { columns: ['a', 'b'] } },
    target: { column: 'y' },
    model: { tabular: [{ type: 'batch_norm' }, { type: 'dense', outFeatures: 3 }, { type: 'softmax' }], head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'mse' },
    optimizer: { type: 'adam', lr: 0.01, betas: [0.8, 0.9], eps: 1e-6, weightDecay: 0.001 },
    metrics: ['mse', 'mae'],
  });
}

/**
 * Graph model (version 2): a 2D image stem, a residual block with batch norm and a projection shortcut (channels
 * change), an identity residual block, global pooling, concatenation with a clinical branch, two heads' worth of
 * layers in one output. BCE with logits and Adam.
 */
export function resnetGraphPlan(): PlanSpec {
  const conv = (outChannels: number, stride = 1) => ({ type: 'conv2d' as const, outChannels, kernelSize: 3, stride, padding: 1, bias: false });
  return definePlan({
    name: 'ResNetGraph',
    inputs: { image: { modalities: ['T1', 'FLAIR'], dims: 2, size: [8, 8] }, tabular: { columns: ['age', 'kps'] } },
    target: { column: 'responder' },
    model: modelGraph((g) => {
      const stem = g.chain('stem', 'image', [{ type: 'conv2d', outChannels: 4, kernelSize: 3, padding: 'same' }, { type: 'relu' }]);
      const down = g.residual('res1', stem, [conv(6, 2), { type: 'batch_norm' }, { type: 'relu' }, conv(6)], {
        shortcut: [{ type: 'conv2d', outChannels: 6, kernelSize: 1, stride: 2 }],
        after: [{ type: 'relu' }],
      });
      const res = g.residual('res2', down, [conv(6), { type: 'batch_norm' }, { type: 'leaky_relu' }, conv(6)]);
      const features = g.layer('gap', { type: 'global_avg_pool' }, res);
      const clinical = g.chain('clin', 'tabular', [{ type: 'dense', outFeatures: 3 }, { type: 'relu' }]);
      return g.chain('head', g.concat('joined', [features, clinical]), [{ type: 'dense', outFeatures: 4 }, { type: 'relu' }, { type: 'dense', outFeatures: 1 }]);
    }),
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'adam', lr: 0.01 },
    metrics: ['loss', 'accuracy', 'auc', 'recall', 'specificity', 'balanced_accuracy', 'precision', 'f1_score', 'dice'],
  });
}

/** Graph model on a 3D volume: two parallel conv paths concatenated on channels (spatial concat), a sum of three. */
export function inception3dGraphPlan(): PlanSpec {
  return definePlan({
    name: 'Inception3d',
    inputs: { image: { modalities: ['T1'], dims: 3, size: [4, 6, 5] } },
    target: { column: 'grade' },
    model: modelGraph((g) => {
      const a = g.chain('a', 'image', [{ type: 'conv3d', outChannels: 2, kernelSize: 1 }, { type: 'relu' }]);
      const b = g.chain('b', 'image', [{ type: 'conv3d', outChannels: 3, kernelSize: 3, padding: 1 }, { type: 'batch_norm' }]);
      const joined = g.concat('joined', [a, b]);
      const c = g.layer('c', { type: 'conv3d', outChannels: 5, kernelSize: 3, padding: 'same' }, joined);
      const d = g.layer('d', { type: 'conv3d', outChannels: 5, kernelSize: 1 }, joined);
      const sum = g.add('sum', [joined, c, d]);
      return g.chain('out', sum, [{ type: 'max_pool3d', kernelSize: 2 }, { type: 'flatten' }, { type: 'dense', outFeatures: 3 }]);
    }),
    loss: { type: 'cross_entropy' },
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
    metrics: ['accuracy', 'precision', 'recall', 'f1_score', 'balanced_accuracy'],
  });
}

/**
 * The normalisation and pooling layers beyond batch norm, in a graph: instance norm (affine and not), layer norm
 * on a feature map and on a vector, global max and average pooling side by side, channel dropout.
 */
export function normsGraphPlan(): PlanSpec {
  return definePlan({
    name: 'NormsGraph',
    inputs: { image: { modalities: ['CT', 'PET'], dims: 3, size: [4, 6, 5] } },
    target: { column: 'responder' },
    model: modelGraph((g) => {
      const x = g.chain('enc', 'image', [
        { type: 'conv3d', outChannels: 4, kernelSize: 3, padding: 1 },
        { type: 'instance_norm', affine: true },
        { type: 'relu' },
        { type: 'dropout3d', rate: 0.25 },
        { type: 'conv3d', outChannels: 3, kernelSize: 2 },
        { type: 'layer_norm' },
        { type: 'instance_norm', eps: 1e-3 },
      ]);
      const peak = g.layer('peak', { type: 'global_max_pool' }, x);
      const mean = g.layer('mean', { type: 'global_avg_pool' }, x);
      return g.chain('head', g.concat('pooled', [peak, mean]), [{ type: 'layer_norm', affine: true }, { type: 'dense', outFeatures: 1 }]);
    }),
    loss: { type: 'bce', fromLogits: true, posWeight: 2 },
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true },
    metrics: ['loss', 'auc'],
  });
}

/** A 2D feature-map layer norm without affine terms and channel dropout on 2D maps. */
export function norms2dPlan(): PlanSpec {
  return definePlan({
    name: 'Norms2d',
    inputs: { image: { modalities: ['T1'], dims: 2, size: [6, 5] } },
    target: { column: 'grade' },
    model: {
      image: [
        // No bias: the instance norm below cancels it (gradient 0 in theory, so Adam would follow rounding noise).
        { type: 'conv2d', outChannels: 3, kernelSize: 3, padding: 'same', bias: false },
        { type: 'layer_norm', affine: false },
        { type: 'dropout2d', rate: 0.5 },
        { type: 'instance_norm', affine: true },
        { type: 'global_max_pool' },
      ],
      head: [{ type: 'dense', outFeatures: 3 }],
    },
    loss: { type: 'cross_entropy' },
    optimizer: { type: 'adam', lr: 0.01 },
    metrics: ['accuracy'],
  });
}

/**
 * The image-to-image layers in one graph, read out by a regression head so the existing loss and harness check
 * them: an encoder, a transposed-convolution up path (padding and output padding) joined to the skip, nearest and
 * bilinear upsampling, and the tabular input (an RT one-hot) broadcast over the grid and concatenated as channels.
 */
export function imageLayersGraphPlan(): PlanSpec {
  return definePlan({
    name: 'ImageLayersGraph',
    inputs: { image: { modalities: ['T1ce', 'dose'], dims: 2, size: [8, 6] }, tabular: { columns: ['rt_conventional', 'rt_proton', 'rt_carbon'] } },
    target: { column: 'volume_change' },
    model: modelGraph((g) => {
      const rt = g.layer('rt_map', { type: 'spatial_broadcast', size: [8, 6] }, 'tabular');
      const x = g.concat('conditioned', ['image', rt]);
      const enc = g.chain('enc', x, [{ type: 'conv2d', outChannels: 4, kernelSize: 3, padding: 1 }, { type: 'relu' }]);
      const down = g.chain('down', enc, [{ type: 'max_pool2d', kernelSize: 2 }, { type: 'conv2d', outChannels: 6, kernelSize: 3, padding: 1 }, { type: 'relu' }]);
      const up = g.layer('up', { type: 'conv_transpose2d', outChannels: 4, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1 }, down);
      const joined = g.concat('skip', [up, enc]);
      const near = g.chain('near', joined, [{ type: 'max_pool2d', kernelSize: 2 }, { type: 'upsample', scaleFactor: 2 }]);
      const bilinear = g.chain('bil', joined, [{ type: 'avg_pool2d', kernelSize: 2 }, { type: 'upsample', scaleFactor: [2, 2], mode: 'bilinear' }]);
      const sum = g.add('sum', [near, bilinear, joined]);
      const wide = g.chain('wide', sum, [{ type: 'conv_transpose2d', outChannels: 3, kernelSize: [2, 3], stride: [2, 1], bias: false }, { type: 'relu' }]);
      return g.chain('head', wide, [{ type: 'global_avg_pool' }, { type: 'dense', outFeatures: 1 }]);
    }),
    loss: { type: 'mse' },
    optimizer: { type: 'sgd', lr: 0.1, momentum: 0.9 },
    metrics: ['loss', 'mae'],
  });
}

/** A small U-Net (2D): encoder, pooled bottleneck, nearest upsampling, skip concatenation, decoder; pooled head. */
export function unetGraphPlan(): PlanSpec {
  const conv = (outChannels: number) => ({ type: 'conv2d' as const, outChannels, kernelSize: 3, padding: 'same' as const });
  return definePlan({
    name: 'TinyUNet',
    inputs: { image: { modalities: ['T1ce', 'FLAIR'], dims: 2, size: [8, 8] } },
    target: { column: 'responder' },
    model: modelGraph((g) => {
      const enc = g.chain('enc', 'image', [conv(4), { type: 'relu' }]);
      const bottom = g.chain('down', enc, [{ type: 'max_pool2d', kernelSize: 2 }, conv(6), { type: 'relu' }, { type: 'upsample', scaleFactor: 2 }]);
      const dec = g.chain('dec', g.concat('skip', [enc, bottom]), [conv(4), { type: 'relu' }]);
      return g.chain('head', dec, [{ type: 'global_avg_pool' }, { type: 'dense', outFeatures: 1 }]);
    }),
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'adam', lr: 0.01 },
    metrics: ['loss'],
  });
}

/** 3D nearest upsampling with a different factor per axis, summed with a skip path. */
export function upsample3dGraphPlan(): PlanSpec {
  return definePlan({
    name: 'Upsample3d',
    inputs: { image: { modalities: ['T1'], dims: 3, size: [2, 4, 6] } },
    target: { column: 'y' },
    model: modelGraph((g) => {
      const skip = g.layer('skip', { type: 'conv3d', outChannels: 3, kernelSize: 1 }, 'image');
      const coarse = g.chain('coarse', 'image', [
        { type: 'avg_pool3d', kernelSize: [1, 2, 3] },
        { type: 'conv3d', outChannels: 3, kernelSize: 1 },
        { type: 'upsample', scaleFactor: [1, 2, 3] },
      ]);
      return g.chain('out', g.add('sum', [skip, coarse]), [{ type: 'flatten' }, { type: 'dense', outFeatures: 1 }]);
    }),
    loss: { type: 'mse' },
    optimizer: { type: 'sgd', lr: 0.05 },
  });
}

/**
 * 3-D transposed convolutions: an encoder–decoder on a volume whose up path restores the skip's grid (stride 2,
 * padding and output padding), then a rectangular, anisotropic-stride one without bias.
 */
export function convTranspose3dGraphPlan(): PlanSpec {
  return definePlan({
    name: 'ConvTranspose3dGraph',
    inputs: { image: { modalities: ['T1ce', 'FLAIR'], dims: 3, size: [4, 6, 6] } },
    target: { column: 'y' },
    model: modelGraph((g) => {
      const enc = g.chain('enc', 'image', [{ type: 'conv3d', outChannels: 3, kernelSize: 3, padding: 1 }, { type: 'relu' }]);
      const down = g.chain('down', enc, [{ type: 'max_pool3d', kernelSize: 2 }, { type: 'conv3d', outChannels: 4, kernelSize: 1 }, { type: 'relu' }]);
      const up = g.layer('up', { type: 'conv_transpose3d', outChannels: 3, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1 }, down);
      const wide = g.chain('wide', g.concat('skip', [up, enc]), [
        { type: 'conv_transpose3d', outChannels: 2, kernelSize: [2, 1, 3], stride: [1, 2, 1], bias: false },
        { type: 'relu' },
      ]);
      return g.chain('head', wide, [{ type: 'flatten' }, { type: 'dense', outFeatures: 1 }]);
    }),
    loss: { type: 'mse' },
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
  });
}

export const EXAMPLE_PLANS: Record<string, () => PlanSpec> = {
  convTranspose3dGraph: convTranspose3dGraphPlan,
  unetGraph: unetGraphPlan,
  upsample3dGraph: upsample3dGraphPlan,
  normsGraph: normsGraphPlan,
  norms2d: norms2dPlan,
  imageLayersGraph: imageLayersGraphPlan,
  resnetGraph: resnetGraphPlan,
  inception3dGraph: inception3dGraphPlan,
  mlp: mlpPlan,
  cnn2d: cnn2dPlan,
  cnnTabular: cnnTabularPlan,
  cnn3d: cnn3dPlan,
  regression: regressionPlan,
};

/** Group norm on conv feature maps and on dense features (what Opacus's ModuleValidator.fix gives a DP model). */
export function groupNormPlan(): PlanSpec {
  return definePlan({
    name: 'GroupNormCnn',
    inputs: { image: { modalities: ['T1', 'FLAIR'], dims: 2, size: [8, 9] } },
    target: { column: 'responder' },
    model: {
      image: [
        { type: 'conv2d', outChannels: 6, kernelSize: 3, padding: 'same' },
        { type: 'group_norm', groups: 3 },
        { type: 'relu' },
        { type: 'max_pool2d', kernelSize: 2 },
        { type: 'flatten' },
      ],
      head: [{ type: 'dense', outFeatures: 4 }, { type: 'group_norm', groups: 2, eps: 1e-3 }, { type: 'relu' }, { type: 'dense', outFeatures: 1 }],
    },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'sgd', lr: 0.1 },
    metrics: ['accuracy'],
  });
}

/**
 * Several heads on one trunk (heads.ts): response (BCE with pos_weight, the primary head), survival months (MSE,
 * weight 0.5) and grade (3-class cross-entropy, weight 0.3), each with its own target column and metrics.
 */
export function severalHeadsGraphPlan(): PlanSpec {
  return definePlan({
    name: 'SeveralHeads',
    inputs: { image: { modalities: ['PET', 'CT'], dims: 2, size: [8, 8] }, tabular: { columns: ['age', 'kps'] } },
    target: { column: 'responder' },
    model: modelGraph((g) => {
      const stem = g.chain('stem', 'image', [{ type: 'conv2d', outChannels: 4, kernelSize: 3, padding: 'same' }, { type: 'batch_norm' }, { type: 'relu' }]);
      const pooled = g.layer('gmp', { type: 'global_max_pool' }, stem);
      const clinical = g.chain('clin', 'tabular', [{ type: 'dense', outFeatures: 3 }, { type: 'relu' }]);
      const trunk = g.chain('trunk', g.concat('joined', [pooled, clinical]), [{ type: 'dense', outFeatures: 6 }, { type: 'relu' }]);
      g.layer('pfs', { type: 'dense', outFeatures: 1 }, trunk);
      g.layer('grade', { type: 'dense', outFeatures: 3 }, trunk);
      return g.layer('response', { type: 'dense', outFeatures: 1 }, trunk);
    }),
    loss: { type: 'bce', fromLogits: true, posWeight: 2 },
    heads: [
      { output: 'pfs', target: { column: 'pfs' }, loss: { type: 'mse', weight: 0.5 }, metrics: ['loss', 'mae'] },
      { output: 'grade', target: { column: 'grade' }, loss: { type: 'cross_entropy', weight: 0.3 }, metrics: ['loss', 'accuracy', 'balanced_accuracy'] },
    ],
    optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 },
    metrics: ['loss', 'auc', 'accuracy'],
  });
}

/** An FDG PET/CT relapse classifier (CT and PET channels + age), small enough for DICOM round tests. */
export function petCtPlan(name: string): PlanSpec {
  return definePlan({
    name,
    inputs: { image: { modalities: ['CT', 'PET'], dims: 3, size: [8, 8, 3] }, tabular: { columns: ['age'] } },
    target: { column: 'relapse' },
    preprocessing: [{ op: 'resize', size: [8, 8, 3] }],
    model: { image: [{ type: 'global_avg_pool' }], tabular: [{ type: 'dense', outFeatures: 2 }], head: [{ type: 'dense', outFeatures: 1 }] },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'sgd', lr: 0.1 },
  });
}

/**
 * The training-plan document: what a researcher writes (through `definePlan`) and what travels, as canonical JSON,
 * to nodes. `schemas/plan.schema.json` is the same contract in JSON Schema; keep both in step.
 *
 * Tensor conventions used throughout (torch view, per sample, channels first):
 * - image input: `[C, ...size]`, C = modalities × (slice count when `select_slices` is used, else 1), channel index
 *   `m * sliceCount + s` (modality-major). Spatial axes keep the order of the stored volume (NIfTI i, j, k).
 *   On TS nodes the same tensor is fed channels-last (`[N, ...size, C]`, tfjs layout).
 * - tabular input: `[F]`, the `inputs.tabular.columns` in their listed order.
 */

export const PLAN_FORMAT = 'fedbiomed-ts/plan';
/** Version of plans whose model is branches (`{image?, tabular?, head}`): unchanged since the first release. */
export const PLAN_FORMAT_VERSION = 1;
/** Version of plans whose model is a graph of named nodes (`{nodes, output}`); nodes that know only 1 refuse it. */
export const PLAN_GRAPH_VERSION = 2;
export type PlanVersion = typeof PLAN_FORMAT_VERSION | typeof PLAN_GRAPH_VERSION;

/** A scalar allowed in `modelArgs` (delivered to Fed-BioMed as `model_args`). */
export type ModelArgValue = string | number | boolean;

export interface ImageInputSpec {
  /** Imaging modalities (medical-folder modality folders / DICOM series roles), e.g. `['T1', 'FLAIR']`. */
  modalities: string[];
  /** Spatial rank the network sees: 2 (images, or slices of volumes) or 3 (volumes). */
  dims: 2 | 3;
  /** Spatial size the network sees, after preprocessing; length = `dims`. */
  size: number[];
  /**
   * Where the images come from. Absent: a medical folder (or, on TS nodes, a DICOM site). `image_folder`: 2-D
   * PNG/JPEG pictures in torchvision's ImageFolder layout (Fed-BioMed `images` datasets; class = sub-folder, sorted);
   * `modalities` are then PIL bands of the RGB picture (`R`, `G`, `B`, or `L` for luma), `dims` 2 and the target
   * column `class` (the class index). See image-folder-plan.ts.
   */
  source?: 'image_folder';
}

export interface TabularInputSpec {
  /** Numeric columns (CSV columns, or demographics columns of a medical folder), in feature order. */
  columns: string[];
}

export interface PlanInputs {
  image?: ImageInputSpec;
  tabular?: TabularInputSpec;
}

export interface ColumnTargetSpec {
  /** Column holding the label (CSV column, or demographics column of a medical folder). */
  column: string;
}

/**
 * One channel of an image target: 1 where the voxel of `modality` (a label map or a mask of the medical folder)
 * holds one of `labels`, else 0.
 */
export interface ImageTargetChannel {
  modality: string;
  labels: number[];
}

/**
 * An image target (image-to-image plans): one binary channel per entry, from modality volumes of the same subject,
 * through the plan's spatial image steps together with the inputs (resample — always nearest-neighbour for a target —,
 * the same crop_around box — 0 outside the volume —, crop, center_crop, resize, select_slices, mip; intensity steps
 * do not apply), so it lands on the input's voxels: `[channels × slice count, ...inputs.image.size]`, channel index
 * `c * sliceCount + s`. Spatial augmentation moves it with the input (augment.ts). A target modality can place
 * a crop_around box (its voxels > 0: a tumour-centred crop). See src/plan/image-target.ts.
 */
export interface ImageTargetSpec {
  channels: ImageTargetChannel[];
}

export type TargetSpec = ColumnTargetSpec | ImageTargetSpec;

export function isImageTarget(target: TargetSpec): target is ImageTargetSpec {
  return Array.isArray((target as ImageTargetSpec).channels);
}

export type SpatialParam = number | number[];

export interface Conv2dLayer {
  type: 'conv2d';
  outChannels: number;
  kernelSize: SpatialParam;
  stride?: SpatialParam;
  /** Zero padding per side, or 'same' (stride 1 only, as in PyTorch) / 'valid' (= 0). */
  padding?: SpatialParam | 'same' | 'valid';
  bias?: boolean;
}
export interface Conv3dLayer extends Omit<Conv2dLayer, 'type'> {
  type: 'conv3d';
}
export interface PoolLayer {
  type: 'max_pool2d' | 'max_pool3d' | 'avg_pool2d' | 'avg_pool3d';
  kernelSize: SpatialParam;
  /** Defaults to kernelSize, as in PyTorch. */
  stride?: SpatialParam;
}
export interface GlobalAvgPoolLayer {
  type: 'global_avg_pool';
}
/** Maximum over every spatial position of each channel: [C, ...spatial] → [C] (small hot lesions in big volumes). */
export interface GlobalMaxPoolLayer {
  type: 'global_max_pool';
}
/** Per-sample, per-channel normalisation over the spatial axes (nn.InstanceNorm{1,2,3}d, no running statistics). */
export interface InstanceNormLayer {
  type: 'instance_norm';
  eps?: number;
  /** Learnable per-channel weight and bias (PyTorch default false). */
  affine?: boolean;
}
/** Per-sample normalisation over the whole [C, ...spatial] (nn.LayerNorm(input shape)); affine per element. */
export interface LayerNormLayer {
  type: 'layer_norm';
  eps?: number;
  /** Learnable weight and bias of the input's shape (PyTorch elementwise_affine, default true). */
  affine?: boolean;
}
/**
 * Upsampling by integer factors per spatial axis (nn.Upsample): nearest (2-D or 3-D, the default) or bilinear
 * (2-D, align_corners=False).
 */
export interface UpsampleLayer {
  type: 'upsample';
  scaleFactor: SpatialParam;
  mode?: 'nearest' | 'bilinear';
}
export interface BatchNormLayer {
  type: 'batch_norm';
  eps?: number;
  momentum?: number;
}
/** nn.GroupNorm(groups, channels, eps): what Opacus's ModuleValidator.fix puts in place of batch norm for DP. */
export interface GroupNormLayer {
  type: 'group_norm';
  /** Must divide the channel count. */
  groups: number;
  eps?: number;
}
/** dropout: element-wise. dropout2d / dropout3d: whole channels of a [C, H, W] / [C, D, H, W] input (nn.Dropout2d/3d). */
export interface DropoutLayer {
  type: 'dropout' | 'dropout2d' | 'dropout3d';
  rate: number;
}
export interface FlattenLayer {
  type: 'flatten';
}
export interface DenseLayer {
  type: 'dense';
  outFeatures: number;
  bias?: boolean;
}
export interface ActivationLayer {
  type: 'relu' | 'sigmoid' | 'softmax';
}
export interface LeakyReluLayer {
  type: 'leaky_relu';
  negativeSlope?: number;
}

/**
 * Transposed 2-D or 3-D convolution (PyTorch ConvTranspose2d / ConvTranspose3d, weight [in, out, (kd,) kh, kw]):
 * output size (n − 1)·stride − 2·padding + kernel + outputPadding per axis; outputPadding < stride.
 */
export interface ConvTranspose2dLayer {
  type: 'conv_transpose2d' | 'conv_transpose3d';
  outChannels: number;
  kernelSize: SpatialParam;
  /** Defaults to 1. */
  stride?: SpatialParam;
  padding?: SpatialParam;
  outputPadding?: SpatialParam;
  bias?: boolean;
}
/**
 * A flat [F] input repeated at every position of a spatial grid, [F] → [F, ...size]: conditions an image network on
 * a vector (e.g. the radiotherapy technique, one-hot) by concatenating the result to image channels.
 */
export interface SpatialBroadcastLayer {
  type: 'spatial_broadcast';
  size: number[];
}

export type LayerSpec =
  | ConvTranspose2dLayer
  | SpatialBroadcastLayer
  | Conv2dLayer
  | Conv3dLayer
  | PoolLayer
  | GlobalAvgPoolLayer
  | GlobalMaxPoolLayer
  | InstanceNormLayer
  | LayerNormLayer
  | UpsampleLayer
  | BatchNormLayer
  | GroupNormLayer
  | DropoutLayer
  | FlattenLayer
  | DenseLayer
  | ActivationLayer
  | LeakyReluLayer;

export type LayerType = LayerSpec['type'];

export const LAYER_TYPES: readonly LayerType[] = [
  'conv2d',
  'conv3d',
  'max_pool2d',
  'max_pool3d',
  'avg_pool2d',
  'avg_pool3d',
  'global_avg_pool',
  'global_max_pool',
  'instance_norm',
  'layer_norm',
  'upsample',
  'batch_norm',
  'group_norm',
  'dropout',
  'dropout2d',
  'dropout3d',
  'flatten',
  'dense',
  'relu',
  'leaky_relu',
  'sigmoid',
  'softmax',
  'conv_transpose2d',
  'conv_transpose3d',
  'spatial_broadcast',
];

/**
 * The network: a sequential branch per input, then a head. When both branches exist, the head receives
 * `concat([image branch output, tabular branch output], features)`; both must then be flat (`[F]`).
 * Parameters are named like PyTorch `nn.Sequential` children: `image.<i>.weight`, `tabular.<i>.bias`,
 * `head.<i>.running_mean`, where `<i>` is the layer's index in its list.
 */
export interface ModelGraphSpec {
  image?: LayerSpec[];
  tabular?: LayerSpec[];
  head: LayerSpec[];
}

/**
 * Merge nodes of a graph model. add: element-wise sum of inputs of one shape (residual connections).
 * concat: along the channel axis (PyTorch dim 1; for flat inputs the feature axis); other axes must agree.
 */
export interface AddNode {
  type: 'add';
}
export interface ConcatNode {
  type: 'concat';
}
export type MergeSpec = AddNode | ConcatNode;
export const MERGE_TYPES: readonly MergeSpec['type'][] = ['add', 'concat'];

/**
 * One node of a graph model: a layer (or merge) with a unique name and its inputs. `input` names a plan input
 * (`'image'`, `'tabular'`) or an earlier node; when left out it is the node just before (the plan's only input for
 * the first node). Merge nodes take a list of at least two inputs. Nodes are listed in an order where every input
 * comes first, so the graph is acyclic by construction and that order is the PyTorch module registration order.
 * A node's parameters are named `<name>.<role>` (`conv1.weight`, `bn1.running_mean`), as PyTorch names the
 * generated module's attribute `<name>`.
 */
export type GraphNodeSpec = (LayerSpec | MergeSpec) & {
  name: string;
  input?: string | string[];
};

/** A model as a directed acyclic graph of named nodes, ending at `output`. */
export interface GraphModelSpec {
  nodes: GraphNodeSpec[];
  output: string;
}

export type PlanModelSpec = ModelGraphSpec | GraphModelSpec;

export function isGraphModel(model: PlanModelSpec): model is GraphModelSpec {
  return Array.isArray((model as GraphModelSpec).nodes);
}

export type BranchName = 'image' | 'tabular' | 'head';
export const BRANCHES: readonly BranchName[] = ['image', 'tabular', 'head'];

export interface LossSpec {
  /**
   * bce: binary cross-entropy on one output; `fromLogits: true` applies the sigmoid inside the loss
   * (BCEWithLogits), otherwise the head must end with a sigmoid. cross_entropy: logits `[K]`, integer class target.
   * mse: one output, float target. focal: sigmoid focal loss on one logit (torchvision's sigmoid_focal_loss,
   * mean), for rare positives.
   * An image output ([C, H, W], image-to-image models) takes bce or mse element-wise, the target being an image of
   * the output's shape, and the image losses (src/plan/image-losses.ts): l1; soft_dice, 1 − (2 Σ p·t + smooth) /
   * (Σ p + Σ t + smooth) per sample and channel, averaged (through a sigmoid when fromLogits); weighted, Σ weight ·
   * loss over `terms` (e.g. BCE + soft Dice).
   */
  type: 'bce' | 'cross_entropy' | 'mse' | 'focal' | 'l1' | 'soft_dice' | 'weighted';
  fromLogits?: boolean;
  /** bce with fromLogits: weight of the positive class (PyTorch pos_weight), e.g. negatives / positives. */
  posWeight?: number;
  /** cross_entropy: one weight per class (PyTorch weight; the mean is weighted by the targets' class weights). */
  classWeights?: number[];
  /** focal: focusing exponent γ (default 2) and positive-class weight α in [0, 1] (default 0.25; -1 disables it). */
  gamma?: number;
  alpha?: number;
  /** Plans with several heads: this head's weight in the training loss Σ weight·loss (default 1). */
  weight?: number;
  /** soft_dice: the one output channel it scores (every channel when absent), and the smoothing term (default 1). */
  channel?: number;
  smooth?: number;
  /** weighted: the losses summed, each times its weight. */
  terms?: WeightedLossTerm[];
}

/** The loss types only image outputs take (src/plan/image-losses.ts). */
export const IMAGE_LOSS_TYPES: readonly LossSpec['type'][] = ['l1', 'soft_dice', 'weighted'];

export interface WeightedLossTerm {
  weight: number;
  loss: LossSpec;
}

/**
 * A further output of a graph model (plan version 2), beside the primary one (`model.output` with the plan's
 * `target`, `loss` and `metrics`): e.g. a regression head (survival months) beside a classification head
 * (response). Each head is a flat `[K]` node output with its own target column, loss (weighted in the training
 * loss: Σ_h weight_h · loss_h) and validation metrics, reported as `<output node>_<METRIC>` beside `LOSS` (the
 * weighted total). The generated PyTorch module returns the heads as a tuple in this order (primary first); the
 * ONNX export has one output per head. See src/plan/heads.ts.
 */
export interface HeadSpec {
  output: string;
  target: TargetSpec;
  loss: LossSpec;
  metrics?: MetricName[];
}

export interface SgdSpec {
  type: 'sgd';
  lr: number;
  momentum?: number;
  weightDecay?: number;
  dampening?: number;
  nesterov?: boolean;
}
export interface AdamSpec {
  /** adam: L2 weight decay added to the gradient (torch.optim.Adam); adamw: decoupled (torch.optim.AdamW, weightDecay default 0.01). */
  type: 'adam' | 'adamw';
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}
export type OptimizerSpec = SgdSpec | AdamSpec;

/**
 * Validation metrics a node reports (wire names in src/plan/metrics.ts; Fed-BioMed's MetricTypes names where one
 * exists). recall is sensitivity. Classification metrics read the plan's predictions (threshold 0.5 on
 * probabilities / 0 on logits for bce, argmax for cross_entropy); specificity and auc need a binary task (bce, or
 * cross_entropy with 2 classes); balanced_accuracy is the mean per-class recall; precision, recall and f1_score
 * are of class 1 on binary tasks and support-weighted on more classes (scikit-learn's conventions); dice is
 * 2TP / (2TP + FP + FN) over every output element of a binary task (1 when both are empty).
 */
export type MetricName =
  | 'loss'
  | 'accuracy'
  | 'mse'
  | 'mae'
  | 'precision'
  | 'recall'
  | 'f1_score'
  | 'specificity'
  | 'balanced_accuracy'
  | 'auc'
  | 'dice';
export const METRIC_NAMES: readonly MetricName[] = [
  'loss',
  'accuracy',
  'mse',
  'mae',
  'precision',
  'recall',
  'f1_score',
  'specificity',
  'balanced_accuracy',
  'auc',
  'dice',
];

/** Image preprocessing steps act on each modality's volume, in order; tabular steps on one column. */
export interface CropStep {
  op: 'crop';
  /** First voxel of the box, per spatial axis. */
  start: number[];
  size: number[];
}
export interface CenterCropStep {
  op: 'center_crop';
  /** Box centred at floor((n - size) / 2) on each axis. */
  size: number[];
}
export interface ResizeStep {
  op: 'resize';
  /** Linear interpolation (bilinear / trilinear), half-pixel centres, no antialiasing (torch align_corners=False). */
  size: number[];
}
export interface NormalizeStep {
  op: 'normalize';
  /** zscore: (x - mean) / std of this volume (std 0 → 1); minmax: (x - min) / (max - min) (range 0 → 1);
   *  fixed: (x - mean) / std with the given numbers. */
  method: 'zscore' | 'minmax' | 'fixed';
  mean?: number;
  std?: number;
  /** Modalities it applies to; all when absent. */
  modalities?: string[];
}
/** Intensity clipping to [min, max] (either bound may be left out), e.g. SUV or HU ranges. */
export interface ClipStep {
  op: 'clip';
  min?: number;
  max?: number;
  /** Modalities it applies to; all when absent. */
  modalities?: string[];
}
/** CT-style windowing: clip to [center - width/2, center + width/2], then map that range linearly to [0, 1]. */
export interface WindowStep {
  op: 'window';
  center: number;
  width: number;
  modalities?: string[];
}
/** log(1 + max(x, 0)): compresses skewed non-negative intensities (PET SUV, counts). */
export interface LogStep {
  op: 'log';
  modalities?: string[];
}
/** Maximum-intensity projection of a volume along one axis (it disappears): a 3-D volume becomes a 2-D image. */
export interface MipStep {
  op: 'mip';
  axis: 0 | 1 | 2;
}
/** Missing or non-numeric values of a tabular column become `value` when the column is read (before other steps). */
export interface FillMissingStep {
  op: 'fill_missing';
  column: string;
  value: number;
}
/**
 * Categorical encoding: the tabular column becomes one indicator feature per category, in place (its text must
 * equal a category; numbers compare by their decimal text, '3' for 3.0); another or a missing value gives all 0.
 */
export interface OneHotColumnStep {
  op: 'one_hot_column';
  column: string;
  categories: string[];
}
/**
 * Voxel order to RAS, then resampling to a voxel spacing, from the affine the image reader gives (TS readers: the
 * NIfTI / DICOM geometry; Python nodes: the MONAI MetaTensor's `affine`, RAS), as MONAI's Orientation('RAS') +
 * Spacing would, but without rotating oblique volumes:
 * 1. the voxel axes are permuted and flipped so that they run (mostly) towards +R, +A, +S (nibabel's
 *    `as_closest_canonical`; axes matched greedily by their largest direction cosine; exact, no interpolation);
 * 2. each axis is resampled to `spacing` (mm, in R, A, S order): output voxel t sits at input position
 *    t·spacing/old spacing (the first voxel's centre is kept) and there are floor((n − 1)·old/spacing) + 1 of them
 *    (none past the last input voxel's centre); linear interpolation between the two neighbours, or the nearest
 *    one (floor(position + 0.5)) for the modalities listed in `nearest` (masks, labels).
 * 3-D volumes only, before any step that changes the grid; the resulting size depends on each volume, so a
 * fixed-size crop (`crop_around`, `center_crop`) or `resize` must follow.
 */
export interface ResampleStep {
  op: 'resample';
  spacing: [number, number, number];
  nearest?: string[];
}
/**
 * A box of fixed size centred on a voxel found in one modality's volume (at this point of the pipeline), cut out
 * of every modality at the same voxel indices; positions outside the volume take `padValue` (default 0; an image
 * target's channels take 0). The modality is an image input or, with an image target, one of the target's label
 * maps (its voxels > 0 are the mask: a tumour-centred crop from the segmentation); a box placed by the target
 * needs the target at prediction time too, and tells the network where the answer lies: a model that predicts a
 * follow-up places it by an input (the pre-treatment segmentation).
 * center 'mask': the centre of the bounding box of the modality's voxels > 0 (per axis floor((first + last) / 2));
 * the volume centre floor(n / 2) when the mask is empty. center 'brightest': the maximum-intensity voxel (the
 * first one in C order on ties), e.g. PET SUVmax; with `smooth: k` (odd), the maximum of the k-wide box mean
 * instead (zero outside the volume, as scipy's uniform_filter mode 'constant'), a peak region rather than one hot
 * voxel (PET SUVpeak-like). The box starts at centre − floor(size / 2). Every modality must have the same grid
 * here (co-registered volumes of one subject).
 */
export interface CropAroundStep {
  op: 'crop_around';
  modality: string;
  center: 'mask' | 'brightest';
  size: number[];
  padValue?: number;
  smooth?: number;
  /**
   * center 'mask' only: the mask is the voxels holding one of these values (e.g. a segmentation's tumour labels
   * [1, 4], leaving oedema out) instead of every voxel > 0. List a resampled input guide in resample's `nearest`.
   */
  labels?: number[];
}
export interface SelectSlicesStep {
  op: 'select_slices';
  /** Volume axis the slices are taken along (it disappears; the slices become channels). */
  axis: 0 | 1 | 2;
  count: number;
  /** Centre slice: 'middle' = floor(n / 2) (default), or an index. Slices are centre - floor(count/2) + s. */
  center?: 'middle' | number;
}
export interface StandardizeColumnStep {
  op: 'standardize_column';
  column: string;
  mean: number;
  std: number;
}
export type PreprocessStep =
  | CropStep
  | CenterCropStep
  | ResampleStep
  | CropAroundStep
  | ResizeStep
  | NormalizeStep
  | ClipStep
  | WindowStep
  | LogStep
  | SelectSlicesStep
  | MipStep
  | StandardizeColumnStep
  | FillMissingStep
  | OneHotColumnStep;

export type PreprocessOp = PreprocessStep['op'];
export const PREPROCESS_OPS: readonly PreprocessOp[] = [
  'crop',
  'center_crop',
  'resample',
  'crop_around',
  'resize',
  'normalize',
  'clip',
  'window',
  'log',
  'select_slices',
  'mip',
  'standardize_column',
  'fill_missing',
  'one_hot_column',
];

/**
 * Augmentation of training batches (never validation), on the network's image input after preprocessing; each
 * step applies with probability p. Semantics and random draws: src/plan/augment.ts.
 */
export type AugmentStep =
  | { op: 'flip'; /** spatial axes (0 = first spatial axis) */ axes: number[]; p: number }
  | { op: 'rotate90'; /** the plane, two spatial axes of equal size */ axes: [number, number]; p: number }
  | { op: 'scale_intensity'; /** x·(1 + f), f uniform in [-factor, factor] */ factor: number; p: number }
  | { op: 'shift_intensity'; /** x + o, o uniform in [-offset, offset] */ offset: number; p: number }
  | { op: 'gaussian_noise'; std: number; p: number }
  | {
      op: 'affine';
      /** the plane (two spatial axes); 3-D volumes turn every slice across it alike */
      axes: [number, number];
      /** largest rotation in degrees, relative scaling and shift in voxels (each drawn in ±) */
      rotate: number;
      scale: number;
      translate: number;
      p: number;
    };
export const AUGMENT_OPS: readonly AugmentStep['op'][] = ['flip', 'rotate90', 'scale_intensity', 'shift_intensity', 'gaussian_noise', 'affine'];

export interface PlanSpec {
  format: typeof PLAN_FORMAT;
  /** 1 for branch models, 2 for graph models (definePlan sets it). */
  version: PlanVersion;
  /** A Python identifier-like name; the default generated class name. */
  name: string;
  description?: string;
  inputs: PlanInputs;
  target: TargetSpec;
  preprocessing: PreprocessStep[];
  /**
   * FedBN: normalisation parameters that stay on each node and are never aggregated: 'statistics' (batch-norm
   * running statistics) or 'all' (also the norms' affine weights). Absent when unused. See src/plan/fedbn.ts.
   */
  fedbn?: 'statistics' | 'all';
  /** Training-batch augmentation; absent when unused (plans without it keep their hash). */
  augmentation?: AugmentStep[];
  model: PlanModelSpec;
  loss: LossSpec;
  /** Further heads of a graph model (absent for one head; plans without it keep their hash). */
  heads?: HeadSpec[];
  optimizer: OptimizerSpec;
  metrics: MetricName[];
  /** Delivered to nodes as Fed-BioMed `model_args`; recorded with the plan (the architecture itself is fixed). */
  modelArgs: Record<string, ModelArgValue>;
}

/** What `definePlan` accepts: the fixed `format`/`version` and empty lists may be left out. */
export type PlanInit = Omit<PlanSpec, 'format' | 'version' | 'preprocessing' | 'metrics' | 'modelArgs'> & {
  format?: typeof PLAN_FORMAT;
  version?: PlanVersion;
  preprocessing?: PreprocessStep[];
  metrics?: MetricName[];
  modelArgs?: Record<string, ModelArgValue>;
};

/**
 * The responder / non-responder training plan: a 2.5D CNN on a stack of axial slices of the four MRI modalities,
 * with a clinical-feature branch, trained with binary cross-entropy.
 *
 * Where the tumour is: the cohort generator (phantom.ts, patient-model.ts) puts every tumour in one hemisphere,
 * 12-38 mm off the midline, 45 mm anterior to 40 mm posterior and 15 mm below to 30 mm above the centre of the
 * 192 x 192 x 144 mm field of view. On the default 48 x 48 x 24 grid (4 x 4 x 6 mm) tumour centres fall in voxels
 * x 14-33, y 12-33, z 9-17. A crop centred on each tumour would need a per-patient step the plan cannot express
 * (the generated PyTorch plan must reproduce every step), so the plan takes the tumour-bearing region instead: the
 * `sliceCount` axial slices around the middle one (z 7-16 by default) and the central 40 x 40 in-plane box
 * (x, y 4-43), which hold every tumour centre and nearly all of each tumour and its oedema. The test
 * `plan.test.ts` checks this against the ground truth the generator writes.
 *
 * Each volume is z-scored on that slab, which removes each scanner's gain and offset (not its contrast curve: the
 * sites stay non-IID). Continuous clinical columns are standardised with fixed reference values, binary ones are
 * fed as they are. The clinical CSV's `sex` and `rt_type` are text, which the plan's numeric tabular input cannot
 * take; the dose prescription (60 Gy vs hypofractionated 40 Gy) is numeric and used.
 *
 * Network: conv-BN-ReLU blocks and a global average pool (the pooled feature maps measure how much of the slab is
 * oedema, necrosis, enhancing rim — the quantities the responder model uses), concatenated with a small dense
 * layer on the clinical features, then one logit (BCEWithLogits).
 */
import { definePlan } from '../../src/plan/define';
import type { PlanSpec } from '../../src/plan/spec';
import { DEFAULT_VOLUME_SIZE } from './cohort';

export const PLAN_NAME = 'GlioResponsePlan';
export const IMAGE_MODALITIES = ['T1', 'T1ce', 'T2', 'FLAIR'];
export const CLINICAL_COLUMNS = ['age', 'kps', 'mgmt_methylated', 'idh_mutant', 'rt_dose_gy'];
/** Reference values used to standardise continuous clinical columns (cohort-independent constants). */
export const CLINICAL_STANDARDISATION: Record<string, { mean: number; std: number }> = {
  age: { mean: 62, std: 10 },
  kps: { mean: 80, std: 10 },
  rt_dose_gy: { mean: 55, std: 9 },
};

export interface GlioPlanOptions {
  /** Volume size the cohort was generated with, [x, y, z] voxels; default the generator's default. */
  volumeSize?: [number, number, number];
  learningRate?: number;
}

/** Fraction of the field of view kept in-plane (40 of 48 voxels at the default size). */
const IN_PLANE_FRACTION = 40 / 48;
/** Fraction of the axial slices kept (10 of 24 at the default size). */
const SLAB_FRACTION = 10 / 24;

/** The slab and crop for a volume size: same anatomy (millimetres) whatever the resolution. */
export function glioGeometry(volumeSize: [number, number, number]): { crop: [number, number]; sliceCount: number } {
  const crop: [number, number] = [0, 1].map((a) => Math.max(4, Math.round(volumeSize[a] * IN_PLANE_FRACTION))) as [number, number];
  const sliceCount = Math.max(1, Math.min(volumeSize[2], Math.round(volumeSize[2] * SLAB_FRACTION)));
  return { crop, sliceCount };
}

export function glioResponsePlan(options: GlioPlanOptions = {}): PlanSpec {
  const volumeSize = options.volumeSize ?? DEFAULT_VOLUME_SIZE;
  const { crop, sliceCount } = glioGeometry(volumeSize);
  return definePlan({
    name: PLAN_NAME,
    description:
      'Glioblastoma responder vs non-responder: 2.5D CNN on axial slices of T1, T1ce, T2 and FLAIR around the ' +
      'tumour-bearing slab, plus age, KPS, MGMT methylation, IDH mutation and dose prescription.',
    inputs: {
      image: { modalities: IMAGE_MODALITIES, dims: 2, size: crop },
      tabular: { columns: CLINICAL_COLUMNS },
    },
    target: { column: 'responder' },
    preprocessing: [
      { op: 'select_slices', axis: 2, count: sliceCount, center: 'middle' },
      { op: 'center_crop', size: crop },
      { op: 'normalize', method: 'zscore' },
      ...Object.entries(CLINICAL_STANDARDISATION).map(([column, s]) => ({
        op: 'standardize_column' as const, column, mean: s.mean, std: s.std,
      })),
    ],
    model: {
      image: [
        // No bias before batch norm: the norm's shift makes it redundant.
        { type: 'conv2d', outChannels: 16, kernelSize: 3, padding: 'same', bias: false },
        { type: 'batch_norm' },
        { type: 'relu' },
        { type: 'max_pool2d', kernelSize: 2 },
        { type: 'conv2d', outChannels: 16, kernelSize: 3, padding: 'same', bias: false },
        { type: 'batch_norm' },
        { type: 'relu' },
        { type: 'max_pool2d', kernelSize: 2 },
        { type: 'conv2d', outChannels: 16, kernelSize: 3, padding: 'same' },
        { type: 'relu' },
        { type: 'global_avg_pool' },
      ],
      tabular: [{ type: 'dense', outFeatures: 8 }, { type: 'relu' }],
      head: [{ type: 'dense', outFeatures: 1 }],
    },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'adam', lr: options.learningRate ?? 1e-3 },
    metrics: ['loss', 'accuracy'],
    modelArgs: { slices: sliceCount, crop: crop[0] },
  });
}

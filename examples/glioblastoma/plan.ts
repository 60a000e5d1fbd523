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
import { definePlan } from 'fedbiomed-ts';
import type { PlanSpec } from 'fedbiomed-ts';
import { DEFAULT_VOLUME_SIZE } from './cohort';
import { FIELD_OF_VIEW_MM } from './phantom';

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
  /** Feature maps per convolution (default 16). */
  convChannels?: number;
  /** Convolution blocks before the global pool: 1, or 2 with a max pool between (default 1). */
  convBlocks?: 1 | 2;
  /** Hidden units of the head after the concatenation; 0 for a linear head (default 16). */
  headUnits?: number;
  /** Thick axial slices the tumour box is resampled to (default NETWORK_GRID.slices). */
  slices?: number;
}

/**
 * The tumour-bearing box in millimetres (centre relative to the field-of-view centre, and size): the generator
 * draws tumour centres at |x| 12-38 mm, y -45..40 mm, z -15..30 mm, with radii up to 32 mm.
 */
export const TUMOUR_BOX_MM = { centre: [0, -2.5, 7.5], size: [160, 160, 72] } as const;
/** What the network sees: 8 x 8 mm pixels in-plane, 12 mm thick slices. */
export const NETWORK_GRID = { inPlane: [20, 20] as [number, number], slices: 6 };

export interface GlioGeometry {
  /** The tumour-bearing box cut from the volume (voxels). */
  start: [number, number, number];
  size: [number, number, number];
}

/** The box for a volume size: the same anatomy (millimetres) whatever the resolution. */
export function glioGeometry(volumeSize: [number, number, number]): GlioGeometry {
  const start = [0, 0, 0] as [number, number, number];
  const size = [0, 0, 0] as [number, number, number];
  for (let a = 0; a < 3; a++) {
    const spacing = FIELD_OF_VIEW_MM[a] / volumeSize[a];
    size[a] = Math.min(volumeSize[a], Math.max(1, Math.round(TUMOUR_BOX_MM.size[a] / spacing)));
    const first = Math.round((TUMOUR_BOX_MM.centre[a] - TUMOUR_BOX_MM.size[a] / 2 + FIELD_OF_VIEW_MM[a] / 2) / spacing);
    start[a] = Math.min(Math.max(0, first), volumeSize[a] - size[a]);
  }
  return { start, size };
}

export function glioResponsePlan(options: GlioPlanOptions = {}): PlanSpec {
  const volumeSize = options.volumeSize ?? DEFAULT_VOLUME_SIZE;
  const box = glioGeometry(volumeSize);
  const channels = options.convChannels ?? 16;
  const headUnits = options.headUnits ?? 16;
  const slices = options.slices ?? NETWORK_GRID.slices;
  const block = [
    { type: 'conv2d' as const, outChannels: channels, kernelSize: 3, padding: 'same' as const },
    { type: 'relu' as const },
  ];
  return definePlan({
    name: PLAN_NAME,
    description:
      'Glioblastoma responder vs non-responder: 2.5D CNN on 12 mm axial slabs of T1, T1ce, T2 and FLAIR over the ' +
      'tumour-bearing region, plus age, KPS, MGMT methylation, IDH mutation and dose prescription.',
    inputs: {
      image: { modalities: IMAGE_MODALITIES, dims: 2, size: NETWORK_GRID.inPlane },
      tabular: { columns: CLINICAL_COLUMNS },
    },
    target: { column: 'responder' },
    preprocessing: [
      { op: 'crop', start: box.start, size: box.size },
      { op: 'resize', size: [...NETWORK_GRID.inPlane, slices] },
      { op: 'select_slices', axis: 2, count: slices, center: 'middle' },
      { op: 'normalize', method: 'zscore' },
      ...Object.entries(CLINICAL_STANDARDISATION).map(([column, s]) => ({
        op: 'standardize_column' as const, column, mean: s.mean, std: s.std,
      })),
    ],
    model: {
      image: [
        ...block,
        ...(options.convBlocks === 2 ? [{ type: 'max_pool2d' as const, kernelSize: 2 }, ...block] : []),
        // The pooled maps measure how much of the region is oedema, necrosis, enhancing rim: what the outcome
        // depends on.
        { type: 'global_avg_pool' },
      ],
      tabular: [{ type: 'dense', outFeatures: 8 }, { type: 'relu' }],
      head: headUnits > 0
        ? [{ type: 'dense', outFeatures: headUnits }, { type: 'relu' }, { type: 'dense', outFeatures: 1 }]
        : [{ type: 'dense', outFeatures: 1 }],
    },
    loss: { type: 'bce', fromLogits: true },
    optimizer: { type: 'adam', lr: options.learningRate ?? 1e-2 },
    metrics: ['loss', 'accuracy'],
  });
}

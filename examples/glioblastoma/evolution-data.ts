/**
 * The evolution task's data, as the plan reads it. Each centre registers its NIfTI medical folder (pre-treatment
 * T1ce, FLAIR, T2, T1, the planning dose, the baseline delineation, and the follow-up label maps) with its
 * demographics; the plan's preprocessing (z-scored MRI, a 96 mm box around the pre-treatment tumour placed by its
 * delineation, dose as (D − 54 Gy) / 6 Gy, the axial slice through the tumour's centre) gives the network 2-D maps,
 * and its image target gives the follow-up tumour, necrotic-core and radiation-injury cross-sections on the same
 * grid (the "volume" of a tumour is its area on that slice, where RANO's bidimensional measure is taken).
 *
 * The held-out set is read here the same way (pipeline functions of the library), once per technique: the
 * patient's own plan, then the counterfactual ones (the same pre-treatment MRI with that technique's dose, judged
 * against that technique's simulated follow-up).
 */
import * as path from 'path';
import { imageInput, imageTarget, openMedicalFolder, tabularInput, volumeToDense } from 'fedbiomed-ts';
import type { DenseVolume, ImageTargetChannel, PlanSample, PlanSpec, PreprocessStep, Vec3, Volume } from 'fedbiomed-ts';
import {
  BASELINE_SEGMENTATION_MODALITY, FOLLOW_UP_INJURY_MODALITY, FOLLOW_UP_SEG_MODALITY, INJURY_MODALITY,
  SEGMENTATION_MODALITY, SplitSummary,
} from './cohort';
import type { HospitalDataset } from './hospitals';
import { LABEL } from './phantom';
import { RT_TYPES, RtType } from './sites';

export const EVOLUTION_MRI = ['T1ce', 'FLAIR', 'T2', 'T1'] as const;
export const EVOLUTION_INPUTS = [...EVOLUTION_MRI, 'dose', BASELINE_SEGMENTATION_MODALITY];
/** Output channels: follow-up tumour (necrotic core + enhancing), necrotic core, radiation-injured healthy brain. */
export const EVOLUTION_CHANNELS: ImageTargetChannel[] = [
  { modality: FOLLOW_UP_SEG_MODALITY, labels: [LABEL.necrosis, LABEL.enhancing] },
  { modality: FOLLOW_UP_SEG_MODALITY, labels: [LABEL.necrosis] },
  { modality: FOLLOW_UP_INJURY_MODALITY, labels: [1] },
];
export const CHANNEL = { tumour: 0, necrosis: 1, injury: 2 } as const;
export const EVOLUTION_TAGS = ['glioblastoma', 'mri', 'tumour-evolution'];
/** The dose input's normalisation (Gy): see `evolutionPreprocessing`. */
export const DOSE_CENTRE_GY = 54;
export const DOSE_SCALE_GY = 6;
/**
 * Side of the box kept around each patient's tumour, in mm. In the --quick cohort (4 mm pixels) the follow-up
 * tumour and the radiation-injured brain reach at most 44 mm (median 24 mm) in-plane from the pre-treatment
 * tumour's centre: all of them fall inside the box.
 */
const BOX_MM = 96;

/** What each centre registers for the evolution task: its NIfTI medical folder with demographics. */
export const EVOLUTION_DATASET: HospitalDataset = {
  tags: EVOLUTION_TAGS,
  entry: (cohortDir, split) => ({
    name: `${split.name} glioblastoma MRI with follow-up (NIfTI)`,
    description: `pre-treatment MRI, RT dose, baseline and follow-up segmentations, ${split.patients} patients`,
    dataType: 'medical-folder',
    path: path.resolve(cohortDir, split.medicalFolderDir),
    parameters: { tabular_file: path.resolve(cohortDir, split.demographicsCsv), index_col: 0 },
  }),
};

/** The network's grid for a cohort of `volumeSize` voxels over its 192 mm field of view: the 96 mm box. */
export function evolutionGrid(volumeSize: Vec3, fovMm = 192): [number, number] {
  const side = (n: number): number => Math.round((n * BOX_MM) / fovMm / 4) * 4;
  return [side(volumeSize[0]), side(volumeSize[1])];
}

export function evolutionPreprocessing(volumeSize: Vec3): PreprocessStep[] {
  const [h, w] = evolutionGrid(volumeSize);
  return [
    // Statistics of the whole brain, before the box cuts most of it away.
    { op: 'normalize', method: 'zscore', modalities: [...EVOLUTION_MRI] },
    // The box around the pre-treatment tumour (necrotic core + enhancing rim of the baseline delineation, an input:
    // known at prediction time, the same for the counterfactual cases), one axial slice thick: the slice through
    // the tumour's centre, where RANO measures. Against a 144 mm window projected along the head's axis at the
    // same tensor size, the pixels are 1.5x finer and the target is a cross-section, not a projected footprint
    // (README, "The tumour-centred crop").
    { op: 'crop_around', modality: BASELINE_SEGMENTATION_MODALITY, center: 'mask', labels: [LABEL.necrosis, LABEL.enhancing], size: [h, w, 1] },
    // The dose centred on where healthy brain starts to be injured (the generative model's EQD2 50 Gy ± 5 Gy,
    // tumour-evolution.ts): 60 Gy → +1, 54 Gy → 0, 40 Gy → −2.3, no dose → −9. Read as dose / 60 Gy, the 90–100 %
    // band that decides injury spanned 0.1 of the input, and the network injured healthy brain as much under 40 Gy
    // plans and under proton plans as under 60 Gy conventional ones. After the box: its padding (0) is then 0 Gy,
    // as outside the field, not 54 Gy.
    { op: 'normalize', method: 'fixed', mean: DOSE_CENTRE_GY, std: DOSE_SCALE_GY, modalities: ['dose'] },
    { op: 'select_slices', axis: 2, count: 1 },
    { op: 'one_hot_column', column: 'rt_type', categories: [...RT_TYPES] },
  ];
}

export interface HeldOutCase {
  rt: RtType;
  sample: PlanSample;
}

export interface HeldOutPatient {
  id: string;
  responder: boolean;
  rt: RtType;
  /** The patient's own technique first, then the two counterfactual ones. */
  cases: HeldOutCase[];
  /** Pre-treatment tumour cross-section on the grid [H·W] (x-major, as the pipeline lays it out). */
  baseline: Float32Array;
  /** For the panels: the pre-treatment and follow-up T1ce on the network's grid (the slice through the tumour) [H·W]. */
  t1ce: Float32Array;
  followUpT1ce: Float32Array;
}

const dense = (volumes: Record<string, Volume>): Record<string, DenseVolume> =>
  Object.fromEntries(Object.entries(volumes).map(([m, v]) => [m, volumeToDense(v)]));

/** Steps that place or cut the network's grid (not the intensity ones). */
const SPATIAL_OPS = new Set<PreprocessStep['op']>(['crop', 'center_crop', 'crop_around', 'resize', 'select_slices', 'mip']);

/**
 * The panels' T1ce (pre-treatment or follow-up) on the network's grid [X·Y] (x-major): the plan's spatial steps
 * applied to it beside the pre-treatment segmentation, which places the tumour-centred box.
 */
function panelSlice(spec: PlanSpec, t1ce: Volume, segmentation: Volume): Float32Array {
  const boxSpec: PlanSpec = {
    ...spec, inputs: { image: { ...spec.inputs.image!, modalities: ['T1ce', BASELINE_SEGMENTATION_MODALITY] } },
    preprocessing: spec.preprocessing.filter((s) => SPATIAL_OPS.has(s.op)),
  };
  const pixels = spec.inputs.image!.size.reduce((a, b) => a * b, 1);
  return imageInput(boxSpec, { T1ce: volumeToDense(t1ce), [BASELINE_SEGMENTATION_MODALITY]: volumeToDense(segmentation) }).data.slice(0, pixels);
}

/** The held-out patients under each technique, through the plan's own preprocessing. */
export function loadHeldOut(spec: PlanSpec, cohortDir: string, split: SplitSummary): HeldOutPatient[] {
  if (!split.counterfactuals) throw new Error(`${split.name}: the cohort has no counterfactual follow-ups (generate it with followUp: true)`);
  const pre = openMedicalFolder(path.join(cohortDir, split.medicalFolderDir), { tabularFile: path.join(cohortDir, split.demographicsCsv), indexCol: 0 });
  const follow = openMedicalFolder(path.join(cohortDir, split.followUp!.medicalFolderDir));
  const counterfactual = new Map(Object.entries(split.counterfactuals).filter(([, f]) => f.patients > 0)
    .map(([rt, f]) => [rt as RtType, openMedicalFolder(path.join(cohortDir, f.medicalFolderDir))]));
  const baselineSpec: PlanSpec = { ...spec, target: { channels: [{ modality: BASELINE_SEGMENTATION_MODALITY, labels: [LABEL.necrosis, LABEL.enhancing] }] } };
  const size = spec.inputs.image!.size;
  return pre.subjects.map((id) => {
    const own = pre.loadSubject(id, [...EVOLUTION_INPUTS, FOLLOW_UP_SEG_MODALITY, FOLLOW_UP_INJURY_MODALITY]);
    const rt = String(own.demographics.rt_type) as RtType;
    const caseOf = (technique: RtType): HeldOutCase => {
      let volumes = own.images;
      if (technique !== rt) {
        const scan = counterfactual.get(technique)!.loadSubject(id, ['dose', SEGMENTATION_MODALITY, INJURY_MODALITY]);
        volumes = { ...own.images, dose: scan.images.dose, [FOLLOW_UP_SEG_MODALITY]: scan.images[SEGMENTATION_MODALITY], [FOLLOW_UP_INJURY_MODALITY]: scan.images[INJURY_MODALITY] };
      }
      const d = dense(volumes);
      const row = { ...own.demographics, rt_type: technique };
      return { rt: technique, sample: { image: imageInput(spec, d), tabular: tabularInput(spec, row), target: imageTarget(spec, d) } };
    };
    const cases = [caseOf(rt), ...RT_TYPES.filter((t) => t !== rt).map(caseOf)];
    // Panels: the T1ce slice through the tumour, in the network's box.
    const after = follow.loadSubject(id, ['T1ce']);
    const segmentation = own.images[BASELINE_SEGMENTATION_MODALITY];
    return {
      id, rt, responder: Number(own.demographics.responder) === 1, cases,
      baseline: imageTarget(baselineSpec, dense(own.images)).data.slice(0, size[0] * size[1]),
      t1ce: panelSlice(spec, own.images.T1ce, segmentation), followUpT1ce: panelSlice(spec, after.images.T1ce, segmentation),
    };
  });
}

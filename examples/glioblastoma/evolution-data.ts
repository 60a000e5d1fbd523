/**
 * The evolution task's data, as the plan reads it. Each centre registers its NIfTI medical folder (pre-treatment
 * T1ce, FLAIR, T2, T1, the planning dose, the baseline delineation, and the follow-up label maps) with its
 * demographics; the plan's preprocessing (z-scored MRI, dose as (D − 54 Gy) / 6 Gy, a 144 mm window around the brain, axial
 * maximum-intensity projection) gives the network 2-D maps, and its image target gives the follow-up tumour,
 * necrotic-core and radiation-injury footprints on the same grid (projections along the head's axis: the "volume"
 * of a footprint is its projected area, the quantity RANO's bidimensional measure follows).
 *
 * The held-out set is read here the same way (pipeline functions of the library), once per technique: the
 * patient's own plan, then the counterfactual ones (the same pre-treatment MRI with that technique's dose, judged
 * against that technique's simulated follow-up).
 */
import * as path from 'path';
import { imageInput, imageTarget, openMedicalFolder, preprocessModality, tabularInput, volumeToDense } from 'fedbiomed-ts';
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
/** Side of the window kept around the brain, in mm (tumours lie within ±70 mm of the centre in-plane). */
const WINDOW_MM = 144;

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

/** The network's grid for a cohort of `volumeSize` voxels over its 192 mm field of view: the 144 mm window. */
export function evolutionGrid(volumeSize: Vec3, fovMm = 192): [number, number] {
  const side = (n: number): number => Math.round((n * WINDOW_MM) / fovMm / 4) * 4;
  return [side(volumeSize[0]), side(volumeSize[1])];
}

export function evolutionPreprocessing(volumeSize: Vec3): PreprocessStep[] {
  const [h, w] = evolutionGrid(volumeSize);
  return [
    { op: 'normalize', method: 'zscore', modalities: [...EVOLUTION_MRI] },
    // The dose centred on where healthy brain starts to be injured (the generative model's EQD2 50 Gy ± 5 Gy,
    // tumour-evolution.ts): 60 Gy → +1, 54 Gy → 0, 40 Gy → −2.3, no dose → −9. Read as dose / 60 Gy, the 90–100 %
    // band that decides injury spanned 0.1 of the input, and the network injured healthy brain as much under 40 Gy
    // plans and under proton plans as under 60 Gy conventional ones.
    { op: 'normalize', method: 'fixed', mean: DOSE_CENTRE_GY, std: DOSE_SCALE_GY, modalities: ['dose'] },
    { op: 'center_crop', size: [h, w, volumeSize[2]] },
    { op: 'mip', axis: 2 },
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
  /** Pre-treatment tumour footprint on the grid [H·W] (x-major, as the pipeline lays it out). */
  baseline: Float32Array;
  /** For the panels: the pre-treatment and follow-up T1ce on the axial slice where the tumour is largest [H·W]. */
  t1ce: Float32Array;
  followUpT1ce: Float32Array;
}

const dense = (volumes: Record<string, Volume>): Record<string, DenseVolume> =>
  Object.fromEntries(Object.entries(volumes).map(([m, v]) => [m, volumeToDense(v)]));

/** The axial slice where the pre-treatment tumour is largest. */
function largestTumourSlice(seg: Volume): number {
  const [nx, ny, nz] = seg.dims;
  let best = { z: Math.floor(nz / 2), area: -1 };
  for (let z = 0; z < nz; z++) {
    let area = 0;
    for (let i = z * nx * ny; i < (z + 1) * nx * ny; i++) if (seg.data[i] === LABEL.necrosis || seg.data[i] === LABEL.enhancing) area++;
    if (area > best.area) best = { z, area };
  }
  return best.z;
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
    // Panels: the T1ce slice through the tumour, in the network's window.
    const z = largestTumourSlice(own.images[BASELINE_SEGMENTATION_MODALITY]);
    const sliceSpec: PlanSpec = {
      ...spec, preprocessing: [...spec.preprocessing.filter((s) => s.op === 'center_crop'), { op: 'select_slices', axis: 2, count: 1, center: z }],
    };
    const slice = (v: Volume): Float32Array => preprocessModality(sliceSpec, 'T1ce', volumeToDense(v)).data;
    const after = follow.loadSubject(id, ['T1ce']);
    return {
      id, rt, responder: Number(own.demographics.responder) === 1, cases,
      baseline: imageTarget(baselineSpec, dense(own.images)).data.slice(0, size[0] * size[1]),
      t1ce: slice(own.images.T1ce), followUpT1ce: slice(after.images.T1ce),
    };
  });
}

/**
 * The evolution task's samples, read from the cohort's NIfTI medical folders: for each patient the axial slice
 * where the pre-treatment tumour is largest, with the pre-treatment MRI (T1ce, FLAIR, T2, T1, each z-scored over
 * the head), the planning dose (/ 60 Gy) and the pre-treatment tumour mask as channels; the RT technique one-hot as
 * the conditioning vector; the follow-up tumour (necrotic core + enhancing) and necrotic-core masks as the target.
 * The slice is cropped to a `crop` × `crop` window centred on the pre-treatment tumour (as a clinician would frame
 * it), so the tumour is not a few pixels in a whole head. Held-out patients also carry the inputs and targets of
 * their counterfactual techniques.
 */
import * as path from 'path';
import { openMedicalFolder } from 'fedbiomed-ts';
import type { Volume } from 'fedbiomed-ts';
import { CohortSummary, ScanFolders, SplitSummary } from './cohort';
import { LABEL } from './phantom';
import { RT_TYPES, RtType } from './sites';

export const EVOLUTION_INPUTS = ['T1ce', 'FLAIR', 'T2', 'T1', 'dose', 'seg_baseline'] as const;
export const EVOLUTION_TARGETS = ['tumour', 'necrosis'] as const;
export const RT_COLUMNS = RT_TYPES.map((rt) => `rt_${rt}`);

/** One patient under one technique: channels-last arrays of one slice [H, W, C]. */
export interface EvolutionCase {
  rt: RtType;
  /** [H, W, 6] inputs. */
  image: Float32Array;
  /** [H, W, 2]: follow-up tumour mask, necrotic-core mask. */
  target: Float32Array;
}

export interface EvolutionPatient {
  id: string;
  site: string;
  responder: boolean;
  height: number;
  width: number;
  /** The patient's own technique first, then (held-out) the counterfactual ones. */
  cases: EvolutionCase[];
  /** Pre-treatment tumour mask of the slice [H, W] and the slice's pre- and follow-up T1ce (for the panels). */
  baseline: Uint8Array;
  t1ce: Float32Array;
  followUpT1ce: Float32Array;
}

/** A window of an axial slice: rows y0…y0+size, columns x0…x0+size. */
interface Window { z: number; x0: number; y0: number; size: number }

function sliceOf(volume: Volume, at: Window): Float32Array {
  const [nx, ny] = volume.dims;
  const out = new Float32Array(at.size * at.size);
  for (let y = 0; y < at.size; y++) {
    const row = at.z * nx * ny + (at.y0 + y) * nx + at.x0;
    out.set(volume.data.subarray(row, row + at.size), y * at.size);
  }
  return out;
}

/** (x − mean) / sd over the head (voxels above the air noise floor). */
function zscore(volume: Volume): Volume {
  let sum = 0;
  let sq = 0;
  let n = 0;
  for (const v of volume.data) if (v > 50) { sum += v; sq += v * v; n++; }
  const mean = n > 0 ? sum / n : 0;
  const sd = n > 1 ? Math.sqrt(Math.max(sq / n - mean * mean, 1e-6)) : 1;
  return { ...volume, data: volume.data.map((v) => (v - mean) / sd) };
}

const isTumour = (label: number): boolean => label === LABEL.necrosis || label === LABEL.enhancing;

/** The slice where the tumour is largest, and a window of `size` centred on its centroid there. */
function tumourWindow(seg: Volume, size: number): Window {
  const [nx, ny, nz] = seg.dims;
  if (size > nx || size > ny) throw new Error(`crop ${size} is larger than the slice ${nx}x${ny}`);
  let best = { z: 0, area: -1, cx: nx / 2, cy: ny / 2 };
  for (let z = 0; z < nz; z++) {
    let area = 0;
    let sx = 0;
    let sy = 0;
    for (let y = 0; y < ny; y++) {
      for (let x = 0; x < nx; x++) if (isTumour(seg.data[z * nx * ny + y * nx + x])) { area++; sx += x; sy += y; }
    }
    if (area > best.area) best = { z, area, cx: area > 0 ? sx / area : nx / 2, cy: area > 0 ? sy / area : ny / 2 };
  }
  const start = (c: number, n: number): number => Math.min(n - size, Math.max(0, Math.round(c - size / 2 + 0.5)));
  return { z: best.z, x0: start(best.cx, nx), y0: start(best.cy, ny), size };
}

function interleave(channels: Float32Array[]): Float32Array {
  const pixels = channels[0].length;
  const out = new Float32Array(pixels * channels.length);
  for (let p = 0; p < pixels; p++) for (let c = 0; c < channels.length; c++) out[p * channels.length + c] = channels[c][p];
  return out;
}

function targetOf(seg: Float32Array): Float32Array {
  return interleave([seg.map((l) => (isTumour(l) ? 1 : 0)), seg.map((l) => (l === LABEL.necrosis ? 1 : 0))]);
}

/** Loads every patient of a split (sites: own technique; held-out: also the counterfactuals). */
export function loadEvolutionSplit(cohortDir: string, split: SplitSummary, crop: number): EvolutionPatient[] {
  if (!split.followUp) throw new Error(`${split.name}: the cohort has no follow-ups (generate it with followUp: true)`);
  const pre = openMedicalFolder(path.join(cohortDir, split.medicalFolderDir), {
    tabularFile: path.join(cohortDir, split.demographicsCsv), indexCol: 0,
  });
  const follow = openMedicalFolder(path.join(cohortDir, split.followUp.medicalFolderDir));
  const counterfactual = new Map<RtType, ReturnType<typeof openMedicalFolder>>();
  for (const [rt, folders] of Object.entries(split.counterfactuals ?? {}) as [RtType, ScanFolders][]) {
    if (folders.patients > 0) counterfactual.set(rt, openMedicalFolder(path.join(cohortDir, folders.medicalFolderDir)));
  }
  return pre.subjects.map((id) => {
    const before = pre.loadSubject(id, ['T1ce', 'FLAIR', 'T2', 'T1', 'dose']);
    const after = follow.loadSubject(id, ['seg', 'seg_baseline', 'T1ce']);
    const z = tumourWindow(after.images.seg_baseline, crop);
    const baselineSeg = sliceOf(after.images.seg_baseline, z);
    const mri = (['T1ce', 'FLAIR', 'T2', 'T1'] as const).map((m) => sliceOf(zscore(before.images[m]), z));
    const input = (dose: Volume): Float32Array => interleave([
      ...mri, sliceOf(dose, z).map((gy) => gy / 60), baselineSeg.map((l) => (isTumour(l) ? 1 : 0)),
    ]);
    const rt = String(before.demographics.rt_type) as RtType;
    const cases: EvolutionCase[] = [{ rt, image: input(before.images.dose), target: targetOf(sliceOf(after.images.seg, z)) }];
    for (const [other, folder] of counterfactual) {
      if (!folder.subjects.includes(id)) continue;
      const scan = folder.loadSubject(id, ['seg', 'dose']);
      cases.push({ rt: other, image: input(scan.images.dose), target: targetOf(sliceOf(scan.images.seg, z)) });
    }
    return {
      id, site: String(before.demographics.site), responder: Number(before.demographics.responder) === 1, height: crop, width: crop,
      cases, baseline: Uint8Array.from(baselineSeg, (l) => (isTumour(l) ? 1 : 0)),
      t1ce: sliceOf(before.images.T1ce, z), followUpT1ce: sliceOf(after.images.T1ce, z),
    };
  });
}

export function loadEvolutionCohort(cohortDir: string, cohort: CohortSummary, crop: number): { sites: Record<string, EvolutionPatient[]>; heldOut: EvolutionPatient[] } {
  return {
    sites: Object.fromEntries(cohort.sites.map((s) => [s.name, loadEvolutionSplit(cohortDir, s, crop)])),
    heldOut: loadEvolutionSplit(cohortDir, cohort.heldOut, crop),
  };
}

/**
 * Checks of the preprocessing pipeline against the inputs it feeds, and the few facts the rest of the plan code
 * needs from it (how many channels the image input has). The operations themselves run in src/data/ on TS nodes
 * and in the generated PyTorch plan on Python nodes; their exact semantics are documented in spec.ts.
 */
import { formatPath, PlanIssue } from './errors';
import { isImageTarget, PlanSpec, PreprocessStep, SelectSlicesStep } from './spec';

export function sliceSelection(spec: PlanSpec): SelectSlicesStep | undefined {
  return spec.preprocessing.find((s): s is SelectSlicesStep => s.op === 'select_slices');
}

/** Channels of the network image input: one per modality, times the slice count when slices become channels. */
export function imageInputChannels(spec: PlanSpec): number {
  const modalities = spec.inputs.image?.modalities.length ?? 0;
  return modalities * (sliceSelection(spec)?.count ?? 1);
}

/** Steps that turn a stored 3-D volume into the network's 2-D input. */
function reducesRank(step: PreprocessStep): boolean {
  return step.op === 'select_slices' || step.op === 'mip';
}

/** Rank of the volumes as stored: 3 when slices are selected from them or projected, else the network's spatial rank. */
export function storedImageRank(spec: PlanSpec): number {
  return spec.preprocessing.some(reducesRank) ? 3 : spec.inputs.image?.dims ?? 0;
}

/** Categories of the one-hot encoded tabular columns, by column. */
export function oneHotColumns(spec: PlanSpec): Map<string, string[]> {
  return new Map(spec.preprocessing.flatMap((s) => (s.op === 'one_hot_column' ? [[s.column, s.categories] as const] : [])));
}

/** Features of the tabular input: one per column, one per category for one-hot columns, in column order. */
export function tabularFeatureIndex(spec: PlanSpec): { count: number; index: Map<string, number> } {
  const oneHot = oneHotColumns(spec);
  const index = new Map<string, number>();
  let count = 0;
  for (const column of spec.inputs.tabular?.columns ?? []) {
    index.set(column, count);
    count += oneHot.get(column)?.length ?? 1;
  }
  return { count, index };
}

/** Steps after which voxel indices no longer match the stored volume's (and its affine). */
function changesGrid(step: PreprocessStep): boolean {
  return ['crop', 'center_crop', 'crop_around', 'resize', 'resample', 'select_slices', 'mip'].includes(step.op);
}

/** Steps that need every modality of a sample, or its geometry, at once (see pipeline-geometry.ts). */
export function needsWholeSample(spec: PlanSpec): boolean {
  return spec.preprocessing.some((s) => s.op === 'resample' || s.op === 'crop_around');
}

/** Whether a step acts on images (the others act on tabular columns). */
export function isImageStep(step: PreprocessStep): boolean {
  return step.op !== 'standardize_column' && step.op !== 'fill_missing' && step.op !== 'one_hot_column';
}

/** Walks the pipeline tracking the spatial rank (and size once a step fixes it). */
export function checkPreprocessing(spec: PlanSpec): PlanIssue[] {
  const issues: PlanIssue[] = [];
  const image = spec.inputs.image;
  const issue = (index: number, field: string | undefined, message: string): void => {
    issues.push({ path: formatPath(field ? ['preprocessing', index, field] : ['preprocessing', index]), message });
  };
  const checkModalities = (index: number, modalities: string[] | undefined, field = 'modalities'): void => {
    for (const [m, modality] of (modalities ?? []).entries()) {
      if (!image!.modalities.includes(modality)) {
        issues.push({ path: formatPath(['preprocessing', index, field, m]), message: `unknown modality '${modality}' (inputs.image.modalities: ${image!.modalities.join(', ')})` });
      }
    }
  };
  // An image target's label maps can place a crop_around box too (a tumour-centred crop of inputs and target).
  const targetLabelModalities = isImageTarget(spec.target) ? [...new Set(spec.target.channels.map((c) => c.modality))] : [];
  let rank = storedImageRank(spec);
  let size: number[] | undefined;
  let slicesSeen = 0;
  let gridChanged = false;
  spec.preprocessing.forEach((step, i) => {
    if (isImageStep(step) && !image) {
      issue(i, 'op', `${step.op} acts on images but the plan has no inputs.image`);
      return;
    }
    if (step.op !== 'resample' && changesGrid(step)) gridChanged = true;
    switch (step.op) {
      case 'resample':
        if (rank !== 3) issue(i, 'op', `resample needs 3D volumes (the volume is ${rank}D here)`);
        if (gridChanged) issue(i, 'op', 'resample reads the volume affine: it must come before every crop, resize, select_slices or mip');
        if (spec.preprocessing.filter((s) => s.op === 'resample').length > 1) issue(i, 'op', 'resample once');
        checkModalities(i, step.nearest, 'nearest');
        size = undefined; // depends on each volume's spacing
        break;
      case 'crop_around':
        if (step.size.length !== rank) issue(i, 'size', `needs ${rank} values (the volume is ${rank}D here)`);
        if (step.labels !== undefined && step.center !== 'mask') issue(i, 'labels', "labels apply to center 'mask'");
        if (step.smooth !== undefined && step.center !== 'brightest') issue(i, 'smooth', "smooth applies to center 'brightest'");
        else if (step.smooth !== undefined && step.smooth % 2 !== 1) issue(i, 'smooth', `needs an odd box width, got ${step.smooth}`);
        if (!image!.modalities.includes(step.modality) && !targetLabelModalities.includes(step.modality)) {
          const known = [...image!.modalities, ...targetLabelModalities];
          issue(i, 'modality', `unknown modality '${step.modality}' (inputs.image.modalities${targetLabelModalities.length > 0 ? ' and the target\'s' : ''}: ${known.join(', ')})`);
        }
        size = step.size.slice();
        break;
      case 'crop':
        if (step.start.length !== rank) issue(i, 'start', `needs ${rank} values (the volume is ${rank}D here)`);
        if (step.size.length !== rank) issue(i, 'size', `needs ${rank} values (the volume is ${rank}D here)`);
        if (size && step.size.length === rank && step.start.length === rank) {
          step.size.forEach((n, a) => {
            if (step.start[a] + n > size![a]) issue(i, 'size', `box ends at ${step.start[a] + n} on axis ${a}, past the volume size ${size![a]}`);
          });
        }
        size = step.size.slice();
        break;
      case 'center_crop':
        if (step.size.length !== rank) issue(i, 'size', `needs ${rank} values (the volume is ${rank}D here)`);
        if (size && step.size.length === rank) {
          step.size.forEach((n, a) => {
            if (n > size![a]) issue(i, 'size', `crop ${n} on axis ${a} is larger than the volume size ${size![a]}`);
          });
        }
        size = step.size.slice();
        break;
      case 'resize':
        if (step.size.length !== rank) issue(i, 'size', `needs ${rank} values (the volume is ${rank}D here)`);
        size = step.size.slice();
        break;
      case 'clip':
      case 'window':
      case 'log':
        if (step.op === 'clip' && step.min === undefined && step.max === undefined) issue(i, 'op', 'clip needs min, max or both');
        if (step.op === 'clip' && step.min !== undefined && step.max !== undefined && step.min > step.max) {
          issue(i, 'max', `max ${step.max} is below min ${step.min}`);
        }
        checkModalities(i, step.modalities);
        break;
      case 'normalize':
        if (step.method === 'fixed' && (step.mean === undefined || step.std === undefined)) {
          issue(i, step.mean === undefined ? 'mean' : 'std', "method 'fixed' needs both mean and std");
        }
        if (step.method !== 'fixed' && (step.mean !== undefined || step.std !== undefined)) {
          issue(i, step.mean !== undefined ? 'mean' : 'std', `method '${step.method}' computes its own statistics; mean/std are only for 'fixed'`);
        }
        checkModalities(i, step.modalities);
        break;
      case 'mip':
      case 'select_slices':
        // Both take the volume to 2D along `axis`: one of them, once.
        slicesSeen += 1;
        if (slicesSeen > 1) {
          issue(i, 'op', 'one of select_slices or mip, once');
          break;
        }
        if (step.op === 'select_slices' && size && typeof step.center === 'number') {
          const first = step.center - Math.floor(step.count / 2);
          if (first < 0 || first + step.count > size[step.axis]) {
            issue(i, 'center', `slices ${first}..${first + step.count - 1} fall outside the axis of size ${size[step.axis]}`);
          }
        }
        if (size) size = size.filter((_, a) => a !== step.axis);
        rank = 2;
        break;
      case 'fill_missing':
      case 'standardize_column':
      case 'one_hot_column': {
        const encoded = oneHotColumns(spec);
        if (step.op !== 'one_hot_column' && encoded.has(step.column)) {
          issue(i, 'column', `'${step.column}' is one-hot encoded: ${step.op} applies to numeric columns`);
        }
        if (step.op === 'one_hot_column' && spec.preprocessing.filter((s) => s.op === 'one_hot_column' && s.column === step.column).length > 1) {
          issue(i, 'column', `'${step.column}' is one-hot encoded twice`);
        }
        const known = [...(spec.inputs.tabular?.columns ?? [])];
        if (!known.includes(step.column)) {
          issue(i, 'column', `'${step.column}' is not one of inputs.tabular.columns`);
        }
        break;
      }
    }
  });
  if (image) {
    if (spec.preprocessing.some(reducesRank) && image.dims !== 2) {
      issues.push({ path: 'inputs.image.dims', message: 'select_slices and mip turn volumes into 2D inputs: dims must be 2' });
    }
    if (size && size.length === image.size.length && size.some((n, a) => n !== image.size[a])) {
      issues.push({
        path: 'inputs.image.size',
        message: `preprocessing produces [${size.join(', ')}] but inputs.image.size is [${image.size.join(', ')}]`,
      });
    }
  }
  return issues;
}

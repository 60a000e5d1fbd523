/**
 * Image targets (spec.ts ImageTargetSpec): the network's target for one sample built from label-map volumes of the
 * subject (e.g. the follow-up MRI's tumour segmentation), the same way on TS nodes (here) and in the generated
 * PyTorch plan (`_fbts_target`, checked in data-conformance.test.ts): one binary channel per entry (1 where the
 * voxel's value is one of the entry's labels), then the plan's spatial image steps, so the target lies on the grid
 * the network sees. Intensity steps (normalize, clip, window, log) are not applied to a target.
 */
import type { PlanIssue } from './errors';
import { PreprocessError, DenseVolume, preprocessModality } from './pipeline';
import { pyLiteral } from './python-literal';
import { sliceSelection } from './preprocess';
import { ImageTargetSpec, isImageTarget, PlanSpec, PreprocessStep } from './spec';

const SPATIAL_OPS: ReadonlySet<PreprocessStep['op']> = new Set(['crop', 'center_crop', 'resize', 'select_slices', 'mip']);

/** The plan's image steps that move voxels (what a target goes through). */
function targetSteps(spec: PlanSpec): PreprocessStep[] {
  return spec.preprocessing.filter((s) => SPATIAL_OPS.has(s.op));
}

function imageTargetOf(spec: PlanSpec): ImageTargetSpec | undefined {
  return isImageTarget(spec.target) ? spec.target : undefined;
}

/** Modalities an image target reads, in first-use order (none for a column target). */
export function targetModalities(spec: PlanSpec): string[] {
  const target = imageTargetOf(spec);
  return target ? [...new Set(target.channels.map((c) => c.modality))] : [];
}

/** Channels of the target tensor: entries × slice count (select_slices makes slices channels). */
export function imageTargetChannelCount(spec: PlanSpec): number {
  const target = imageTargetOf(spec);
  return target ? target.channels.length * (sliceSelection(spec)?.count ?? 1) : 0;
}

/** The target of one sample, channels first: `[entries × slices, ...inputs.image.size]`, float32 0/1 (resize may blend). */
export function imageTarget(spec: PlanSpec, volumes: Record<string, DenseVolume>): DenseVolume {
  const target = imageTargetOf(spec);
  if (!target) throw new PreprocessError(`plan ${spec.name} has no image target`);
  const spatial: PlanSpec = { ...spec, preprocessing: targetSteps(spec) };
  const parts = target.channels.map((channel) => {
    const volume = volumes[channel.modality];
    if (!volume) throw new PreprocessError(`plan ${spec.name}: target modality '${channel.modality}' is missing for this sample`);
    const labels = new Set(channel.labels);
    const mask = Float32Array.from(volume.data, (v) => (labels.has(v) ? 1 : 0));
    return preprocessModality(spatial, channel.modality, { data: mask, shape: volume.shape });
  });
  const data = new Float32Array(parts.reduce((n, p) => n + p.data.length, 0));
  let offset = 0;
  for (const p of parts) {
    data.set(p.data, offset);
    offset += p.data.length;
  }
  return { data, shape: [imageTargetChannelCount(spec), ...parts[0].shape.slice(1)] };
}

/** Rules the schema cannot say: an image target needs an image input and an output of the target's shape. */
export function imageTargetIssues(spec: PlanSpec, outputShape: number[]): PlanIssue[] {
  const target = imageTargetOf(spec);
  if (!target) return [];
  const image = spec.inputs.image;
  if (!image) return [{ path: 'target.channels', message: 'an image target needs inputs.image (its grid is the image input\'s)' }];
  const moving = (spec.augmentation ?? []).findIndex((a) => a.op === 'flip' || a.op === 'rotate90' || a.op === 'affine');
  if (moving >= 0) {
    // Augmentation moves the input's voxels only; a target left in place would no longer match it.
    return [{ path: `augmentation[${moving}].op`, message: 'spatial augmentation is not supported with an image target yet (the target would not move with the image)' }];
  }
  const expected = [imageTargetChannelCount(spec), ...image.size];
  if (outputShape.length !== expected.length || outputShape.some((n, a) => n !== expected[a])) {
    return [{
      path: 'target.channels',
      message: `the target is [${expected.join(', ')}] (${target.channels.length} channel(s)` +
        `${sliceSelection(spec) ? ` x ${sliceSelection(spec)!.count} slices` : ''} on the image grid), the model gives [${outputShape.join(', ')}]`,
    }];
  }
  return [];
}

/** The target in words, for reviews and logs: the column, or each channel's modality and labels. */
export function describeTarget(spec: PlanSpec): string {
  const target = imageTargetOf(spec);
  if (!target) return isImageTarget(spec.target) ? '' : spec.target.column;
  return `image: ${target.channels.map((c) => `${c.modality} in {${c.labels.join(', ')}}`).join('; ')}`;
}

type Replace = (text: string, from: string, to: string) => string;

/** Class constants of a generated PyTorch plan with an image target (in place of TARGET_COLUMN). */
export function torchTargetConstants(spec: PlanSpec): string[] {
  const target = imageTargetOf(spec);
  if (!target) throw new Error(`internal: plan ${spec.name} has no image target`);
  return [
    `    TARGET_CHANNELS = ${pyLiteral(target.channels)}`,
    `    TARGET_MODALITIES = ${pyLiteral(targetModalities(spec))}`,
    `    TARGET_SLICES = ${sliceSelection(spec)?.count ?? 1}`,
    `    TARGET_STEPS = ${pyLiteral(targetSteps(spec))}`,
  ];
}

/** The generated plan's `training_data` arguments that read the target modalities through `_fbts_target`. */
export const TORCH_TARGET_DATASET_LINES = [
  '            target_modalities=self.TARGET_MODALITIES,',
  '            target_transform={m: (lambda volume, m=m: self._fbts_target(volume, m)) for m in self.TARGET_MODALITIES},',
];

const TORCH_TARGET_METHODS = String.raw`
    def _fbts_target(self, volume, modality):
        # One label map -> float32 [its target channels x slices, *size]: a binary channel per label set, then the
        # plan's spatial steps (intensity steps do not apply to a target).
        v = torch.as_tensor(np.asarray(volume))
        parts = []
        for channel in self.TARGET_CHANNELS:
            if channel['modality'] == modality:
                mask = torch.zeros(v.shape, dtype=torch.float32)
                for label in channel['labels']:
                    mask[v == label] = 1.0
                parts.append(self._fbts_image(mask, modality, self.TARGET_STEPS))
        return torch.cat(parts, dim=0)

    def _fbts_target_batch(self, targets):
        # Target modalities -> float32 [N, channels x slices, *size] in the plan's channel order.
        taken = {}
        blocks = []
        n = self.TARGET_SLICES
        for channel in self.TARGET_CHANNELS:
            k = taken.get(channel['modality'], 0)
            blocks.append(targets[channel['modality']][:, k * n:(k + 1) * n])
            taken[channel['modality']] = k + 1
        return torch.cat(blocks, dim=1).float()
`;

/**
 * The data helpers of a plan with an image target: demographics carry only the tabular features, `_fbts_image`
 * takes the step list (the target's spatial steps), batches take the target from the target modalities.
 */
export function torchTargetHelpers(text: string, replace: Replace): string {
  let out = replace(text, `        wanted = self.TABULAR_COLUMNS + [self.TARGET_COLUMN]
`, `        wanted = list(self.TABULAR_COLUMNS)
        if not wanted:
            return np.zeros(0, dtype=np.float32)
`);
  out = replace(out, `        values[:-1] = self._fbts_standardize(values[:-1])
`, `        values = self._fbts_standardize(values)
`);
  if (out.includes(' + [cell(self.TARGET_COLUMN)]')) out = replace(out, ' + [cell(self.TARGET_COLUMN)]', '');
  out = replace(out, `            return inputs, demographics[:, f]
`, `            return inputs, self._fbts_target_batch(target)
`);
  out = replace(out, `    def _fbts_image(self, volume, modality):
`, `    def _fbts_image(self, volume, modality, steps=None):
`);
  out = replace(out, `        for step in self.IMAGE_STEPS:
`, `        for step in (self.IMAGE_STEPS if steps is None else steps):
`);
  return `${out}${TORCH_TARGET_METHODS}`;
}

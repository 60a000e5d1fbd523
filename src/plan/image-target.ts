/**
 * Image targets (spec.ts ImageTargetSpec): the network's target for one sample built from label-map volumes of the
 * subject (e.g. the follow-up MRI's tumour segmentation), the same way on TS nodes (here) and in the generated
 * PyTorch plan (`_fbts_target`, checked in data-conformance.test.ts): one binary channel per entry (1 where the
 * voxel's value is one of the entry's labels), then the plan's spatial image steps together with the inputs
 * (pipeline.ts imageSample: resample nearest-neighbour, the inputs' crop_around box), so the target lies on the
 * input's voxels. Intensity steps (normalize, clip, window, log) are not applied to a target.
 */
import type { PlanIssue } from './errors';
import { DenseVolume, imageSample } from './pipeline';
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

/**
 * The target of one sample, channels first: `[entries × slices, ...inputs.image.size]`, float32 0/1 (resize may
 * blend). With resample or crop_around it needs the volumes that place the box (pipeline.ts imageSample, which
 * computes the input and the target together).
 */
export function imageTarget(spec: PlanSpec, volumes: Record<string, DenseVolume>): DenseVolume {
  return imageSample(spec, volumes, { image: false, target: true }).target!;
}

/** Rules the schema cannot say: an image target needs an image input and an output of the target's shape. */
export function imageTargetIssues(spec: PlanSpec, outputShape: number[]): PlanIssue[] {
  const target = imageTargetOf(spec);
  if (!target) return [];
  const image = spec.inputs.image;
  if (!image) return [{ path: 'target.channels', message: 'an image target needs inputs.image (its grid is the image input\'s)' }];
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

const TORCH_TARGET_METHOD = String.raw`
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
`;

const TORCH_TARGET_BATCH_METHOD = String.raw`
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
 * With resample or crop_around (pipeline.ts imageSample): a subject's inputs and target channels through the image
 * steps together, the target channels (and a target modality's foreground placing a crop_around box) taking the
 * spatial steps only, nearest in resample, 0 outside the box.
 */
const TORCH_TARGET_SAMPLE_METHOD = String.raw`
    def _fbts_sample(self, data, targets):
        # -> (images by modality, targets by target modality as _fbts_target gives them)
        tracks = {m: (data[m], False) for m in self.MODALITIES}
        for c, channel in enumerate(self.TARGET_CHANNELS):
            tracks[('target', c)] = (targets[channel['modality']], True)
        for i, step in enumerate(self.IMAGE_STEPS):
            if step['op'] == 'crop_around' and step['modality'] not in self.MODALITIES:
                tracks[('guide', i)] = (targets[step['modality']], True)

        def name(k):
            if isinstance(k, tuple):
                return self.TARGET_CHANNELS[k[1]]['modality'] if k[0] == 'target' else self.IMAGE_STEPS[k[1]]['modality']
            return k
        xs = {}
        for k, (volume, label) in tracks.items():
            v = torch.as_tensor(np.asarray(volume))
            if isinstance(k, tuple):
                mask = torch.zeros(v.shape, dtype=torch.float32)
                for value in self.TARGET_CHANNELS[k[1]]['labels']:
                    mask[v == value] = 1.0
                v = mask
            elif label:
                # a target label map placing a crop_around box: its mask (voxels > 0, or of the step's labels)
                labels = self.IMAGE_STEPS[k[1]].get('labels')
                v = (v > 0).float() if labels is None else torch.isin(v, torch.tensor(labels, dtype=v.dtype)).float()
            xs[k] = self._fbts_volume(v, name(k))
        for i, step in enumerate(self.IMAGE_STEPS):
            op = step['op']
            if op == 'crop_around':
                named = xs
                if step['modality'] not in self.MODALITIES:
                    # the box from the target's mask, made above (its labels already applied)
                    named = dict(xs, **{step['modality']: xs[('guide', i)]})
                    step = dict(step, labels=None)
                boxes = self._fbts_crop_around(named, step)
                zero = self._fbts_crop_around(named, dict(step, padValue=0))
                xs = {k: zero[k] if tracks[k][1] else boxes[k] for k in xs}
            elif op == 'resample':
                xs = {k: self._fbts_resample(x, getattr(tracks[k][0], 'affine', None), dict(step, nearest=[name(k)]) if tracks[k][1] else step, name(k))
                      for k, x in xs.items()}
            elif op in ('normalize', 'clip', 'window', 'log'):
                xs = {k: x if tracks[k][1] else self._fbts_step(x, step, k) for k, x in xs.items()}
            else:
                xs = {k: self._fbts_step(x, step, name(k)) for k, x in xs.items()}
        for k, x in xs.items():
            if list(x.shape[1:]) != self.IMAGE_SIZE:
                raise self._fbts_error('modality %r gives %s after preprocessing, the network expects %s' % (name(k), list(x.shape[1:]), self.IMAGE_SIZE))
        by_modality = {}
        for c, channel in enumerate(self.TARGET_CHANNELS):
            by_modality.setdefault(channel['modality'], []).append(xs[('target', c)])
        return {m: xs[m] for m in self.MODALITIES}, {m: torch.cat(parts, dim=0) for m, parts in by_modality.items()}
`;

/**
 * The data helpers of a plan with an image target: demographics carry only the tabular features, `_fbts_image`
 * takes the step list (the target's spatial steps), batches take the target from the target modalities; with
 * resample or crop_around (`wholeSample`), `_fbts_sample` computes the inputs and the target together.
 */
export function torchTargetHelpers(text: string, replace: Replace, wholeSample: boolean): string {
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
  if (wholeSample) return `${out}${TORCH_TARGET_BATCH_METHOD}${TORCH_TARGET_SAMPLE_METHOD}`;
  out = replace(out, `    def _fbts_image(self, volume, modality):
`, `    def _fbts_image(self, volume, modality, steps=None):
`);
  out = replace(out, `        for step in self.IMAGE_STEPS:
`, `        for step in (self.IMAGE_STEPS if steps is None else steps):
`);
  return `${out}${TORCH_TARGET_METHOD}${TORCH_TARGET_BATCH_METHOD}`;
}

/**
 * The augmentation helpers of a plan with an image target (augment.ts augmentSample): the same draws move the target
 * with the image (flip, rot90, affine reading the nearest voxel); intensity steps leave it.
 */
export function torchTargetAugmentHelpers(text: string, replace: Replace): string {
  let out = replace(text, `    def _fbts_augment_sample(self, x, state):
`, `    def _fbts_augment_sample(self, x, state, y=None):
`);
  out = replace(out, `                x = x.flip([a + 1 for a in step['axes']])
`, `                x = x.flip([a + 1 for a in step['axes']])
                y = None if y is None else y.flip([a + 1 for a in step['axes']])
`);
  out = replace(out, `                x = torch.rot90(x, 1 + int(np.floor(3 * u[0])), [step['axes'][0] + 1, step['axes'][1] + 1])
`, `                x = torch.rot90(x, 1 + int(np.floor(3 * u[0])), [step['axes'][0] + 1, step['axes'][1] + 1])
                y = None if y is None else torch.rot90(y, 1 + int(np.floor(3 * u[0])), [step['axes'][0] + 1, step['axes'][1] + 1])
`);
  out = replace(out, `                x = self._fbts_affine(x, step['axes'][0] + 1, step['axes'][1] + 1, (2 * u[0] - 1) * step['rotate'] * np.pi / 180,
                                      1 + (2 * u[1] - 1) * step['scale'], ((2 * u[2] - 1) * step['translate'], (2 * u[3] - 1) * step['translate']))
`, `                transform = ((2 * u[0] - 1) * step['rotate'] * np.pi / 180, 1 + (2 * u[1] - 1) * step['scale'],
                             ((2 * u[2] - 1) * step['translate'], (2 * u[3] - 1) * step['translate']))
                x = self._fbts_affine(x, step['axes'][0] + 1, step['axes'][1] + 1, *transform)
                y = None if y is None else self._fbts_affine(y, step['axes'][0] + 1, step['axes'][1] + 1, *transform, nearest=True)
`);
  out = replace(out, `        return x

    @staticmethod
    def _fbts_affine(x, a, b, angle, scale, shift):
`, `        return x if y is None else (x, y)

    @staticmethod
    def _fbts_affine(x, a, b, angle, scale, shift, nearest=False):
`);
  out = replace(out, `        out = (1 - wa) * (1 - wb) * at(a0, b0)`, `        if nearest:  # an image target's labels: the nearest voxel, floor(position + 0.5)
            out = at(np.floor(sa + 0.5).astype(np.int64), np.floor(sb + 0.5).astype(np.int64))
        else:
            out = (1 - wa) * (1 - wb) * at(a0, b0)`);
  out = replace(out, `    def _fbts_augment_batch(self, images, seed):
        return torch.stack([self._fbts_augment_sample(x, (seed + (i + 1) * 0x9E3779B9) & 0xFFFFFFFF) for i, x in enumerate(images)])

    def _fbts_augment(self, images):
        # One seed per training batch from torch's generator (seeded by Fed-BioMed with random_seed).
        return self._fbts_augment_batch(images, int(torch.randint(0, 2 ** 32, (1,), dtype=torch.int64)))
`, `    def _fbts_augment_batch(self, images, seed, targets):
        pairs = [self._fbts_augment_sample(x, (seed + (i + 1) * 0x9E3779B9) & 0xFFFFFFFF, y) for i, (x, y) in enumerate(zip(images, targets))]
        return torch.stack([x for x, _ in pairs]), torch.stack([y for _, y in pairs])

    def _fbts_augment(self, images, targets):
        # One seed per training batch from torch's generator (seeded by Fed-BioMed with random_seed).
        return self._fbts_augment_batch(images, int(torch.randint(0, 2 ** 32, (1,), dtype=torch.int64)), targets)
`);
  return out;
}

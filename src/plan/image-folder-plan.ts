/**
 * Plans whose images come from an image folder (`inputs.image.source: 'image_folder'`): 2-D PNG/JPEG pictures in
 * torchvision's ImageFolder layout, which Fed-BioMed registers as `images` datasets (one sub-folder per class,
 * sorted names are the class indices; every picture read as RGB by PIL's `convert('RGB')`).
 *
 * The picture enters the plan as bands, each a 2-D [H, W] image scaled to [0, 1] like torchvision's `ToTensor`:
 * `R`, `G`, `B` (PIL's `getchannel`) or `L` (PIL's `convert('L')` of the RGB picture, ITU-R 601-2 luma in Pillow's
 * fixed point). The bands are the plan's `modalities`, so the image steps (crop, resize, normalize…) apply per band
 * as they apply per modality to volumes, on TS nodes (src/data/plan-dataset.ts) and in the generated PyTorch plan
 * (here) alike. The target is the class index (`target.column` must be `class`); there is no tabular input.
 */
import { PlanIssue } from './errors';
import { hasSeveralHeads } from './heads';
import { needsWholeSample, storedImageRank } from './preprocess';
import { isImageTarget, PlanSpec } from './spec';

/** PIL band names an image-folder plan may ask for. */
const IMAGE_FOLDER_BANDS: readonly string[] = ['R', 'G', 'B', 'L'];
/** The target column of an image-folder plan: the picture's class index. */
export const IMAGE_FOLDER_TARGET = 'class';

export function isImageFolderPlan(spec: PlanSpec): boolean {
  return spec.inputs.image?.source === 'image_folder';
}

/** What an image-folder plan cannot ask for (the schema only knows the field's value). */
export function imageFolderIssues(spec: PlanSpec): PlanIssue[] {
  const image = spec.inputs.image;
  if (!image || image.source !== 'image_folder') return [];
  const issues: PlanIssue[] = [];
  image.modalities.forEach((band, i) => {
    if (!IMAGE_FOLDER_BANDS.includes(band)) {
      issues.push({ path: `inputs.image.modalities[${i}]`, message: `an image folder gives the bands ${IMAGE_FOLDER_BANDS.join(', ')}, not '${band}'` });
    }
  });
  if (image.dims !== 2) issues.push({ path: 'inputs.image.dims', message: 'must be 2 for an image folder (pictures are 2-D)' });
  else if (storedImageRank(spec) !== 2) {
    issues.push({ path: 'preprocessing', message: 'select_slices and mip need 3-D volumes; an image folder holds 2-D pictures' });
  }
  if (needsWholeSample(spec)) {
    issues.push({ path: 'preprocessing', message: 'resample and crop_around need volumes with their geometry; an image folder holds 2-D pictures' });
  }
  if (spec.inputs.tabular) issues.push({ path: 'inputs.tabular', message: 'an image folder has no tabular columns' });
  if (hasSeveralHeads(spec)) issues.push({ path: 'heads', message: 'an image folder gives one target, the class index: one head' });
  if (isImageTarget(spec.target) || spec.target.column !== IMAGE_FOLDER_TARGET) {
    issues.push({ path: 'target.column', message: `must be '${IMAGE_FOLDER_TARGET}' for an image folder (the class index of the picture's sub-folder)` });
  }
  return issues;
}

/** The generated plan's `training_data` for an image folder (torchvision is in Fed-BioMed's default imports). */
export const IMAGE_FOLDER_TRAINING_DATA: readonly string[] = [
  '    def training_data(self):',
  "        # torchvision's ImageFolder, as Fed-BioMed reads `images` datasets: class = sub-folder, pictures as RGB.",
  '        dataset = datasets.ImageFolder(self.dataset_path, transform=self._fbts_picture)',
  '        return DataManager(dataset=dataset, shuffle=True)',
];

const PICTURE_METHOD = String.raw`
    def _fbts_picture(self, picture):
        # One RGB picture (PIL) -> float32 [channels, *size]: each band of MODALITIES (R, G, B, or L = luma) scaled
        # to [0, 1] as ToTensor does, through the plan's image steps.
        bands = []
        for m in self.MODALITIES:
            band = picture.convert('L') if m == 'L' else picture.getchannel(m)
            bands.append(self._fbts_image(np.asarray(band, dtype=np.float32) / np.float32(255), m))
        return torch.cat(bands, dim=0)
`;

const BATCH_METHOD = String.raw`
    def _fbts_batch(self, data, target):
        # Image folder batches are (pictures [N, C, *size], class indices).
        return {'image': data.float()}, target
`;

/**
 * The shared data helpers with the image-folder batch reader in place of the medical-folder/CSV one, and the
 * picture transform added.
 */
export function imageFolderHelpers(helpers: string): string {
  const start = helpers.indexOf('\n    def _fbts_batch(self, data, target):\n');
  if (start < 0) throw new Error('internal: _fbts_batch not found in the data helpers');
  const next = helpers.indexOf('\n    def ', start + 1);
  const end = next < 0 ? helpers.length : next;
  return `${helpers.slice(0, start)}${BATCH_METHOD}${helpers.slice(end)}${PICTURE_METHOD}`;
}

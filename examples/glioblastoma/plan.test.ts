/**
 * The demo plan: its box holds every tumour the generator can draw (at the default and quick resolutions), the
 * committed PyTorch plan is what the generator script writes, and the network has the shapes the plan promises.
 */
import * as fs from 'fs';
import { initBackend, extractPlanFromTorchSource, planHash, buildModel } from 'fedbiomed-ts';
import type { Vec3 } from 'fedbiomed-ts';
import { QUICK_DEMO, DEFAULT_DEMO } from './demo-config';
import { GENERATED_PLAN_FILE, generatedPlanSource } from './generate-python-plan';
import { samplePatient } from './patient-model';
import { geometryFor } from './phantom';
import { CLINICAL_COLUMNS, glioGeometry, glioResponsePlan, IMAGE_MODALITIES, NETWORK_GRID, TUMOUR_BOX_MM } from './plan';
import { SITE_PROFILES } from './sites';

/** Tumour centres (mm) of many patients from every site, straight from the generative model. */
function tumourCentres(perSite: number): [number, number, number][] {
  const out: [number, number, number][] = [];
  for (const site of Object.values(SITE_PROFILES)) {
    for (let i = 0; i < perSite; i++) out.push(samplePatient(7, site, site.name, i).tumour.centreMm);
  }
  return out;
}

describe('glioblastoma plan', () => {
  const centres = tumourCentres(400);

  test('the tumour box (mm) holds every tumour centre the generator draws, with a margin', () => {
    for (let a = 0; a < 3; a++) {
      const low = TUMOUR_BOX_MM.centre[a] - TUMOUR_BOX_MM.size[a] / 2;
      const high = TUMOUR_BOX_MM.centre[a] + TUMOUR_BOX_MM.size[a] / 2;
      const values = centres.map((c) => c[a]);
      // At least 5 mm of margin: the box is not cut on the tumour centre itself.
      expect(Math.min(...values)).toBeGreaterThan(low + 5);
      expect(Math.max(...values)).toBeLessThan(high - 5);
    }
  });

  test.each([['default', DEFAULT_DEMO.volumeSize], ['quick', QUICK_DEMO.volumeSize]] as [string, Vec3][])(
    'the cropped voxels hold every tumour centre at the %s resolution', (_name, size) => {
      const box = glioGeometry(size);
      const g = geometryFor(size);
      for (const c of centres) {
        for (let a = 0; a < 3; a++) {
          const voxel = (c[a] - g.origin[a]) / g.spacing[a];
          expect(voxel).toBeGreaterThanOrEqual(box.start[a]);
          expect(voxel).toBeLessThanOrEqual(box.start[a] + box.size[a] - 1);
        }
      }
      // The same anatomy at both resolutions: the box spans the same millimetres (to one voxel).
      box.size.forEach((n, a) => expect(Math.abs(n * g.spacing[a] - TUMOUR_BOX_MM.size[a])).toBeLessThanOrEqual(g.spacing[a]));
    });

  test('the network sees 4 modalities x 6 slices of 20 x 20 pixels plus 5 clinical features, one logit out', async () => {
    await initBackend(() => undefined);
    const spec = glioResponsePlan();
    const model = buildModel(spec, { seed: 1 });
    try {
      expect(model.graph.imageInputShape).toEqual([IMAGE_MODALITIES.length * NETWORK_GRID.slices, ...NETWORK_GRID.inPlane]);
      expect(model.graph.tabularInputShape).toEqual([CLINICAL_COLUMNS.length]);
      expect(model.graph.outputShape).toEqual([1]);
      expect(spec.loss).toEqual({ type: 'bce', fromLogits: true });
    } finally {
      model.dispose();
    }
    // Quick and default plans differ only in the crop (the voxels of the same box).
    const quick = glioResponsePlan({ volumeSize: QUICK_DEMO.volumeSize });
    expect({ ...quick, preprocessing: quick.preprocessing.slice(1) }).toEqual({ ...spec, preprocessing: spec.preprocessing.slice(1) });
  });

  test('the committed PyTorch plan is the generator script output and embeds this plan', () => {
    const committed = fs.readFileSync(GENERATED_PLAN_FILE, 'utf8');
    // If this fails: npx ts-node --transpile-only examples/glioblastoma/generate-python-plan.ts
    expect(committed).toBe(generatedPlanSource());
    const embedded = extractPlanFromTorchSource(committed);
    expect(embedded).toBeDefined();
    expect(planHash(embedded)).toBe(planHash(glioResponsePlan()));
    expect(committed).toContain('class GlioResponsePlan(TorchTrainingPlan):');
  });
});

import { canonicalJson, planHash } from './canonical';
import { definePlan } from './define';
import { PlanValidationError } from './errors';
import { PlanSpec } from './spec';
import { EXAMPLE_PLANS, cnn2dPlan, cnn3dPlan, mlpPlan, severalHeadsGraphPlan } from './testing/plans';
import { checkPlan, validatePlan } from './validate';

/** A deep copy of a valid plan, edited by `edit`, as untyped JSON (bad plans are not PlanSpecs). */
function mutate(base: PlanSpec, edit: (p: any) => void): unknown {
  const copy = JSON.parse(JSON.stringify(base));
  edit(copy);
  return copy;
}

function issuePaths(value: unknown): string[] {
  return checkPlan(value).issues.map((i) => i.path);
}

describe('plan validation', () => {
  test.each(Object.keys(EXAMPLE_PLANS))('example plan %s is valid and resolves', (key) => {
    const spec = EXAMPLE_PLANS[key]();
    const { issues, graph } = checkPlan(spec);
    expect(issues).toEqual([]);
    expect(graph!.outputShape.length).toBe(1);
  });

  test('an unknown layer type is named by path', () => {
    const bad = mutate(cnn2dPlan(), (p) => (p.model.image[1] = { type: 'conv4d' }));
    const { issues } = checkPlan(bad);
    expect(issues).toHaveLength(1);
    expect(issues[0].path).toBe('model.image[1].type');
    expect(issues[0].message).toContain('"conv2d"');
  });

  test('a negative kernel is named by path', () => {
    const bad = mutate(cnn2dPlan(), (p) => (p.model.image[4].kernelSize = -3));
    expect(issuePaths(bad)).toEqual(['model.image[4].kernelSize']);
    expect(() => validatePlan(bad)).toThrow(/model\.image\[4\]\.kernelSize: must be >= 1/);
  });

  test('a negative kernel inside a list is named by path', () => {
    const bad = mutate(cnn2dPlan(), (p) => (p.model.image[0].kernelSize = [3, -1]));
    expect(issuePaths(bad)).toEqual(['model.image[0].kernelSize[1]']);
  });

  test('a missing loss is reported as loss', () => {
    const bad = mutate(mlpPlan(), (p) => delete p.loss);
    const err = (() => {
      try {
        validatePlan(bad);
      } catch (e) {
        return e as PlanValidationError;
      }
      throw new Error('expected a PlanValidationError');
    })();
    expect(err).toBeInstanceOf(PlanValidationError);
    expect(err.issues).toEqual([{ path: 'loss', message: 'is required' }]);
  });

  test('a dense layer on an unflattened feature map is a shape mismatch at that layer', () => {
    const bad = mutate(cnn2dPlan(), (p) => p.model.image.splice(6, 1)); // drop the flatten
    const { issues } = checkPlan(bad);
    expect(issues.map((i) => i.path)).toEqual(['model.head[0].type']);
    expect(issues[0].message).toContain('dense needs a flat [F] input, got [3, 2, 2]');
  });

  test('a dense layer directly on an image input is rejected at that layer', () => {
    const bad = mutate(cnn2dPlan(), (p) => (p.model.image = [{ type: 'dense', outFeatures: 3 }]));
    const { issues } = checkPlan(bad);
    expect(issues[0].path).toBe('model.image[0].type');
    expect(issues[0].message).toContain('flat');
  });

  test('a kernel larger than its input is rejected', () => {
    const bad = mutate(cnn2dPlan(), (p) => (p.model.image[4].kernelSize = 9));
    expect(issuePaths(bad)).toEqual(['model.image[4].kernelSize']);
  });

  test('conv3d on a 2D input is rejected', () => {
    const bad = mutate(cnn2dPlan(), (p) => (p.model.image[0].type = 'conv3d'));
    expect(issuePaths(bad)).toEqual(['model.image[0].type']);
  });

  test("'same' padding with a stride is rejected like PyTorch does", () => {
    const bad = mutate(cnn2dPlan(), (p) => Object.assign(p.model.image[0], { padding: 'same', stride: 2 }));
    expect(issuePaths(bad)).toEqual(['model.image[0].padding']);
  });

  test('a head output that does not fit the loss is rejected', () => {
    expect(issuePaths(mutate(mlpPlan(), (p) => (p.loss = { type: 'bce', fromLogits: true })))).toEqual(['loss.type']);
    expect(issuePaths(mutate(cnn2dPlan(), (p) => p.model.head.pop()))).toEqual(['loss.fromLogits']);
  });

  test('an unknown field, an unknown optimizer and a wrong format are named', () => {
    expect(issuePaths(mutate(mlpPlan(), (p) => (p.model.head[0].units = 3)))).toEqual(['model.head[0]']);
    const opt = checkPlan(mutate(mlpPlan(), (p) => (p.optimizer = { type: 'rmsprop', lr: 1 }))).issues;
    expect(opt).toEqual([{ path: 'optimizer.type', message: 'unknown value "rmsprop"' }]);
    expect(issuePaths(mutate(mlpPlan(), (p) => (p.version = 2)))).toEqual(['version']);
  });

  test('preprocessing that does not produce inputs.image.size is rejected', () => {
    const bad = mutate(cnn2dPlan(), (p) => p.preprocessing.push({ op: 'resize', size: [12, 11] }));
    expect(issuePaths(bad)).toEqual(['inputs.image.size']);
    const wrongRank = mutate(cnn2dPlan(), (p) => p.preprocessing.push({ op: 'crop', start: [0, 0, 0], size: [12, 10, 1] }));
    expect(issuePaths(wrongRank)).toEqual(['preprocessing[1].start', 'preprocessing[1].size']);
    const unknownModality = mutate(cnn2dPlan(), (p) => (p.preprocessing[0].modalities = ['T2']));
    expect(issuePaths(unknownModality)).toEqual(['preprocessing[0].modalities[0]']);
    const noBounds = mutate(cnn2dPlan(), (p) => p.preprocessing.push({ op: 'clip' }));
    expect(issuePaths(noBounds)).toEqual(['preprocessing[1].op']);
    const inverted = mutate(cnn2dPlan(), (p) => p.preprocessing.push({ op: 'clip', min: 3, max: 1, modalities: ['T1'] }));
    expect(issuePaths(inverted)).toEqual(['preprocessing[1].max']);
    const emptyWindow = mutate(cnn2dPlan(), (p) => p.preprocessing.push({ op: 'window', center: 40, width: 0 }));
    expect(issuePaths(emptyWindow)).toEqual(['preprocessing[1].width']);
    const mipOn3d = mutate(cnn2dPlan(), (p) => p.preprocessing.unshift({ op: 'mip', axis: 2 }));
    expect(issuePaths(mipOn3d)).toEqual([]); // a stored 3-D volume projected to the network's 2-D input
    const twoReductions = mutate(cnn2dPlan(), (p) => p.preprocessing.unshift({ op: 'mip', axis: 2 }, { op: 'select_slices', axis: 0, count: 1 }));
    expect(issuePaths(twoReductions)).toEqual(['preprocessing[1].op']);
    const reductionsReversed = mutate(cnn2dPlan(), (p) => p.preprocessing.unshift({ op: 'select_slices', axis: 0, count: 1 }, { op: 'mip', axis: 2 }));
    expect(checkPlan(reductionsReversed).issues.filter((i) => i.path === 'preprocessing[1].op').map((i) => i.message))
      .toEqual(['one of select_slices or mip, once']);
    const fillUnknown = mutate(mlpPlan(), (p) => p.preprocessing.push({ op: 'fill_missing', column: 'zz', value: 0 }));
    expect(issuePaths(fillUnknown)).toEqual(['preprocessing[1].column']);
    const standardizedCategory = mutate(mlpPlan(), (p) => p.preprocessing.push({ op: 'one_hot_column', column: 'f0', categories: ['a', 'b'] }));
    expect(issuePaths(standardizedCategory)).toEqual(['preprocessing[0].column']);
    const widened = validatePlan(mutate(mlpPlan(), (p) => p.preprocessing.push({ op: 'one_hot_column', column: 'f1', categories: ['a', 'b', 'c'] })));
    expect(widened.graph.inputShapes.tabular).toEqual([6]); // 4 columns, one of them 3 indicators
    const unknownColumn = mutate(mlpPlan(), (p) => (p.preprocessing[0].column = 'zz'));
    expect(issuePaths(unknownColumn)).toEqual(['preprocessing[0].column']);
  });

  test('resample and crop_around: rank, order, modalities and sizes are checked', () => {
    const ok = mutate(cnn3dPlan(), (p) => p.preprocessing.unshift({ op: 'resample', spacing: [1, 1, 2], nearest: ['T1'] }, { op: 'crop_around', modality: 'T1', center: 'mask', size: [9, 9, 9] }));
    expect(issuePaths(ok)).toEqual([]);
    const afterCrop = mutate(cnn3dPlan(), (p) => p.preprocessing.unshift({ op: 'center_crop', size: [6, 8, 7] }, { op: 'resample', spacing: [1, 1, 2] }));
    expect(issuePaths(afterCrop)).toEqual(['preprocessing[1].op']);
    const on2d = mutate(cnn2dPlan(), (p) => p.preprocessing.unshift({ op: 'resample', spacing: [1, 1, 1] }));
    expect(issuePaths(on2d)).toEqual(['preprocessing[0].op']);
    const badSpacing = mutate(cnn3dPlan(), (p) => p.preprocessing.unshift({ op: 'resample', spacing: [1, 0, 1] }));
    expect(issuePaths(badSpacing)).toEqual(['preprocessing[0].spacing[1]']);
    const unknownNearest = mutate(cnn3dPlan(), (p) => p.preprocessing.unshift({ op: 'resample', spacing: [1, 1, 1], nearest: ['GTV'] }));
    expect(issuePaths(unknownNearest)).toEqual(['preprocessing[0].nearest[0]']);
    const unknownGuide = mutate(cnn3dPlan(), (p) => p.preprocessing.unshift({ op: 'crop_around', modality: 'GTV', center: 'brightest', size: [6, 8, 7] }));
    expect(issuePaths(unknownGuide)).toEqual(['preprocessing[0].modality']);
    const labelsOnBrightest = mutate(cnn3dPlan(), (p) => (p.preprocessing = [{ op: 'crop_around', modality: 'T1', center: 'brightest', size: [6, 8, 7], labels: [1] }]));
    expect(issuePaths(labelsOnBrightest)).toEqual(['preprocessing[0].labels']);
    const smoothOnMask = mutate(cnn3dPlan(), (p) => (p.preprocessing = [{ op: 'crop_around', modality: 'T1', center: 'mask', size: [6, 8, 7], smooth: 3 }]));
    expect(issuePaths(smoothOnMask)).toEqual(['preprocessing[0].smooth']);
    const evenSmooth = mutate(cnn3dPlan(), (p) => (p.preprocessing = [{ op: 'crop_around', modality: 'T1', center: 'brightest', size: [6, 8, 7], smooth: 2 }]));
    expect(issuePaths(evenSmooth)).toEqual(['preprocessing[0].smooth']);
    const wrongRank = mutate(cnn3dPlan(), (p) => p.preprocessing.unshift({ op: 'crop_around', modality: 'T1', center: 'mask', size: [6, 8] }));
    expect(issuePaths(wrongRank)).toEqual(['preprocessing[0].size']);
    // With an image target, resample and crop_around move the target too; a target label map can place the box.
    const imageTarget = mutate(cnn3dPlan(), (p) => {
      p.preprocessing.unshift({ op: 'resample', spacing: [1, 1, 2] }, { op: 'crop_around', modality: 'seg', center: 'mask', size: [6, 8, 7] });
      p.target = { channels: [{ modality: 'seg', labels: [1] }] };
    });
    expect(issuePaths(imageTarget).filter((i) => i.startsWith('preprocessing'))).toEqual([]);
    const unknownTargetGuide = mutate(imageTarget as PlanSpec, (p) => ((p.preprocessing[1] as { modality: string }).modality = 'GTV'));
    expect(checkPlan(unknownTargetGuide).issues).toContainEqual({ path: 'preprocessing[1].modality', message: "unknown modality 'GTV' (inputs.image.modalities and the target's: T1, seg)" });
    const wrongSize = mutate(cnn3dPlan(), (p) => (p.preprocessing = [{ op: 'crop_around', modality: 'T1', center: 'mask', size: [6, 8, 8] }]));
    expect(issuePaths(wrongSize)).toEqual(['inputs.image.size']);
  });

  test('several heads: outputs, shapes, losses and metrics are checked per head', () => {
    const ok = validatePlan(severalHeadsGraphPlan());
    expect(ok.graph.outputs).toEqual(['response', 'pfs', 'grade']);
    expect(ok.graph.outputShapes).toEqual([[1], [1], [3]]);
    const onBranches = mutate(mlpPlan(), (p) => (p.heads = [{ output: 'head', target: { column: 'f0' }, loss: { type: 'mse' } }]));
    expect(issuePaths(onBranches)).toEqual(['heads']);
    expect(issuePaths(mutate(severalHeadsGraphPlan(), (p) => (p.heads[0].output = 'nowhere')))).toEqual(['heads[0].output']);
    expect(issuePaths(mutate(severalHeadsGraphPlan(), (p) => (p.heads[1].output = 'response')))).toEqual(['heads[1].output']);
    const imageHead = mutate(severalHeadsGraphPlan(), (p) => (p.heads[0].output = 'stem_2'));
    expect(checkPlan(imageHead).issues).toEqual([{ path: 'heads[0].output', message: 'a head ends with a flat output [K] (one target column), got [4, 8, 8]' }]);
    expect(issuePaths(mutate(severalHeadsGraphPlan(), (p) => (p.heads[1].loss = { type: 'bce', fromLogits: true })))).toEqual(['heads[1].loss.type']);
    expect(issuePaths(mutate(severalHeadsGraphPlan(), (p) => (p.heads[0].metrics = ['auc'])))).toEqual(['heads[0].metrics[0]']);
    expect(issuePaths(mutate(severalHeadsGraphPlan(), (p) => (p.heads[0].loss.weight = -1)))).toEqual(['heads[0].loss.weight']);
    expect(issuePaths(mutate(mlpPlan(), (p) => (p.loss.weight = 2)))).toEqual(['loss.weight']);
    // A head dropped from the list leaves its node leading nowhere.
    expect(issuePaths(mutate(severalHeadsGraphPlan(), (p) => p.heads.pop()))).toEqual(['model.output']);
  });

  test('a branch without its input, and an input without its branch, are rejected', () => {
    expect(issuePaths(mutate(mlpPlan(), (p) => delete p.model.tabular))).toEqual(['model']);
    expect(issuePaths(mutate(mlpPlan(), (p) => (p.model.image = [])))).toEqual(['model.image']);
  });

  test('non-objects never crash the validator', () => {
    for (const v of [null, 3, 'plan', [], undefined]) {
      expect(checkPlan(v).issues.length).toBeGreaterThan(0);
    }
  });
});

describe('plan identity', () => {
  test('canonical JSON sorts keys at every level and has no whitespace', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: 1, y: 'x y' }], c: true } })).toBe(
      '{"a":{"c":true,"d":[3,{"y":"x y","z":1}]},"b":1}',
    );
    expect(() => canonicalJson({ a: NaN })).toThrow(/a is NaN/);
  });

  test('the hash ignores key order and changes with any content change', () => {
    const spec = mlpPlan();
    const reordered = JSON.parse(JSON.stringify(spec, Object.keys(spec).reverse()));
    const shuffled = { ...reordered, ...Object.fromEntries(Object.entries(spec).reverse()) };
    expect(planHash(shuffled)).toBe(planHash(spec));
    expect(planHash(spec)).toMatch(/^[0-9a-f]{64}$/);
    const changed = mutate(spec, (p) => (p.optimizer.lr = 0.2));
    expect(planHash(changed)).not.toBe(planHash(spec));
  });

  test('definePlan fills format, version and empty lists', () => {
    const spec = definePlan({
      name: 'P',
      inputs: { tabular: { columns: ['x'] } },
      target: { column: 'y' },
      model: { tabular: [], head: [{ type: 'dense', outFeatures: 1 }] },
      loss: { type: 'mse' },
      optimizer: { type: 'sgd', lr: 0.1 },
    });
    expect(spec).toMatchObject({ format: 'fedbiomed-ts/plan', version: 1, preprocessing: [], metrics: [], modelArgs: {} });
  });
});

describe('schema and TypeScript types agree', () => {
  // The schema is the wire contract and spec.ts the typed one; a value added to one must be added to the other.
  const schema = require('../../schemas/plan.schema.json');
  test('layer types, preprocessing ops and metrics', () => {
    const { LAYER_TYPES, PREPROCESS_OPS, METRIC_NAMES } = require('./spec');
    expect([...schema.definitions.layer.properties.type.enum].sort()).toEqual([...LAYER_TYPES].sort());
    expect([...schema.definitions.preprocessStep.properties.op.enum].sort()).toEqual([...PREPROCESS_OPS].sort());
    expect([...schema.properties.metrics.items.enum].sort()).toEqual([...METRIC_NAMES].sort());
  });
});

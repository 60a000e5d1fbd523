/** Opacus's ModuleValidator.fix on a plan: batch norm -> group norm with gcd(32, channels) groups. */
import { withGroupNormForDp } from './dp-fix';
import { cnn2dPlan, cnnTabularPlan, mlpPlan, resnetGraphPlan } from './testing/plans';
import { isGraphModel } from './spec';
import { validatePlan } from './validate';
import type { ModelGraphSpec } from './spec';

describe('withGroupNormForDp', () => {
  it('replaces every batch norm by group norm with gcd(32, C) groups and keeps everything else', () => {
    const spec = cnnTabularPlan(); // batch norm on 5 conv channels and on 4 dense features
    const fixed = withGroupNormForDp(spec);
    expect(fixed.replaced).toEqual([
      'model.image[3]: batch_norm -> group_norm(1 groups, 5 channels)',
      'model.tabular[1]: batch_norm -> group_norm(4 groups, 4 channels)',
    ]);
    expect((fixed.spec.model as ModelGraphSpec).image?.[3]).toEqual({ type: 'group_norm', groups: 1 });
    expect((fixed.spec.model as ModelGraphSpec).tabular?.[1]).toEqual({ type: 'group_norm', groups: 4 });
    expect({ ...fixed.spec, model: spec.model }).toEqual(spec);
    expect(() => validatePlan(fixed.spec)).not.toThrow();
    expect((spec.model as ModelGraphSpec).image?.[3].type).toBe('batch_norm'); // the original is untouched
    expect(withGroupNormForDp(cnn2dPlan()).replaced).toEqual(['model.image[1]: batch_norm -> group_norm(4 groups, 4 channels)']);
  });

  it('returns a plan without batch norm as it is', () => {
    const spec = mlpPlan();
    expect(withGroupNormForDp(spec)).toEqual({ spec, replaced: [] });
  });

  it('replaces the batch norms of a graph plan in place, keeping node names (so parameter names) and inputs', () => {
    const spec = resnetGraphPlan();
    const fixed = withGroupNormForDp(spec);
    expect(fixed.replaced).toHaveLength(2);
    if (!isGraphModel(spec.model) || !isGraphModel(fixed.spec.model)) throw new Error('expected graph plans');
    const before = spec.model.nodes;
    const after = fixed.spec.model.nodes;
    expect(after.map((n) => [n.name, n.input])).toEqual(before.map((n) => [n.name, n.input]));
    const changed = after.filter((n, i) => n.type !== before[i].type);
    expect(changed.map((n) => n.type)).toEqual(['group_norm', 'group_norm']);
    expect(before.filter((n) => n.type === 'batch_norm')).toHaveLength(2);
    expect(after.filter((n) => n.type === 'batch_norm')).toHaveLength(0);
  });
});

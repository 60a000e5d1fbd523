/** Opacus's ModuleValidator.fix on a plan: batch norm -> group norm with gcd(32, channels) groups. */
import { withGroupNormForDp } from './dp-fix';
import { cnn2dPlan, cnnTabularPlan, mlpPlan } from './testing/plans';
import { validatePlan } from './validate';

describe('withGroupNormForDp', () => {
  it('replaces every batch norm by group norm with gcd(32, C) groups and keeps everything else', () => {
    const spec = cnnTabularPlan(); // batch norm on 5 conv channels and on 4 dense features
    const fixed = withGroupNormForDp(spec);
    expect(fixed.replaced).toEqual([
      'model.image[3]: batch_norm -> group_norm(1 groups, 5 channels)',
      'model.tabular[1]: batch_norm -> group_norm(4 groups, 4 channels)',
    ]);
    expect(fixed.spec.model.image?.[3]).toEqual({ type: 'group_norm', groups: 1 });
    expect(fixed.spec.model.tabular?.[1]).toEqual({ type: 'group_norm', groups: 4 });
    expect({ ...fixed.spec, model: spec.model }).toEqual(spec);
    expect(() => validatePlan(fixed.spec)).not.toThrow();
    expect(spec.model.image?.[3].type).toBe('batch_norm'); // the original is untouched
    expect(withGroupNormForDp(cnn2dPlan()).replaced).toEqual(['model.image[1]: batch_norm -> group_norm(4 groups, 4 channels)']);
  });

  it('returns a plan without batch norm as it is', () => {
    const spec = mlpPlan();
    expect(withGroupNormForDp(spec)).toEqual({ spec, replaced: [] });
  });
});

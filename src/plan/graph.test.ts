/**
 * Graph models (plan version 2): the builder, shape inference through merges, every structural mistake named at
 * its field, parameter names, and branch plans resolving to the same DAG the engine and exporters walk.
 */
import { definePlan } from './define';
import { modelGraph } from './graph-builder';
import { describeParameters } from './parameters';
import { GraphModelSpec, PlanInit, PlanSpec } from './spec';
import { cnnTabularPlan, inception3dGraphPlan, resnetGraphPlan } from './testing/plans';
import { checkPlan, validatePlan } from './validate';

/** A deep copy of a valid plan, edited by `edit`, as untyped JSON (bad plans are not PlanSpecs). */
function mutate(base: PlanSpec, edit: (p: any) => void): unknown {
  const copy = JSON.parse(JSON.stringify(base));
  edit(copy);
  return copy;
}

function issues(value: unknown): string[] {
  return checkPlan(value).issues.map((i) => `${i.path}: ${i.message}`);
}

const base: Omit<PlanInit, 'model'> = {
  name: 'G',
  inputs: { image: { modalities: ['T1'], dims: 2, size: [6, 6] } },
  target: { column: 'y' },
  loss: { type: 'bce', fromLogits: true },
  optimizer: { type: 'sgd', lr: 0.1 },
};

describe('graph models', () => {
  test('definePlan gives version 2; shapes flow through add and concat', () => {
    const spec = resnetGraphPlan();
    expect(spec.version).toBe(2);
    const { graph } = validatePlan(spec);
    expect(graph.kind).toBe('graph');
    const shape = (id: string) => graph.nodes.find((n) => n.id === id)!.layer.outShape;
    expect(shape('res1_add')).toEqual([6, 4, 4]);
    expect(shape('joined')).toEqual([9]); // 6 pooled channels + 3 clinical features
    expect(graph.outputShape).toEqual([1]);
    const spatial = validatePlan(inception3dGraphPlan()).graph;
    expect(spatial.nodes.find((n) => n.id === 'joined')!.layer.outShape).toEqual([5, 4, 6, 5]);
  });

  test('parameters are named after the nodes, in node order (the PyTorch registration order)', () => {
    const names = describeParameters(validatePlan(resnetGraphPlan()).graph).map((p) => p.name);
    expect(names.slice(0, 8)).toEqual([
      'stem_0.weight', 'stem_0.bias', 'res1_0.weight', 'res1_1.weight', 'res1_1.bias', 'res1_1.running_mean', 'res1_1.running_var', 'res1_1.num_batches_tracked',
    ]);
    expect(names).toContain('res1_skip_0.bias');
    expect(names[names.length - 1]).toBe('head_2.bias');
  });

  test('the builder writes an input only where it is not the node just before', () => {
    const model = modelGraph((g) => {
      const a = g.chain('a', 'image', [{ type: 'relu' }, { type: 'sigmoid' }]);
      return g.add('sum', [a, 'a_0']);
    });
    expect(model).toEqual({
      nodes: [
        { name: 'a_0', type: 'relu', input: 'image' },
        { name: 'a_1', type: 'sigmoid' },
        { name: 'sum', type: 'add', input: ['a_1', 'a_0'] },
      ],
      output: 'sum',
    });
  });

  test('branch plans resolve to the same DAG: chains per branch, a parameter-free concat before the head', () => {
    const { graph } = validatePlan(cnnTabularPlan());
    expect(graph.kind).toBe('branches');
    const concat = graph.nodes.find((n) => n.layer.type === 'concat')!;
    expect(concat.inputs).toEqual(['image.5', 'tabular.2']);
    expect(graph.nodes.find((n) => n.id === 'head.0')!.inputs).toEqual([concat.id]);
    expect(graph.output).toBe('head.1');
  });

  test('structural mistakes are named at their field', () => {
    const good = resnetGraphPlan();
    const at = (i: number) => `model.nodes[${i}]`;
    expect(issues(mutate(good, (p) => (p.model.nodes[2].name = 'stem_0')))).toEqual([`${at(2)}.name: 'stem_0' is already the name of an earlier node`]);
    expect(issues(mutate(good, (p) => (p.model.nodes[2].input = 'nowhere')))).toEqual([`${at(2)}.input: 'nowhere' is neither a plan input nor an earlier node`]);
    expect(issues(mutate(good, (p) => (p.model.nodes[2].input = 'gap')))[0]).toMatch(/'gap' comes later in nodes/);
    expect(issues(mutate(good, (p) => (p.model.nodes[1].name = 'forward')))[0]).toMatch(/nn\.Module attribute/);
    expect(issues(mutate(good, (p) => (p.model.nodes[1].name = 'image')))[0]).toMatch(/name of a plan input/);
    expect(issues(mutate(good, (p) => (p.model.output = 'gone')))).toEqual(["model.output: 'gone' is not a node"]);
    expect(issues(mutate(good, (p) => (p.model.output = 'head_1')))).toEqual(['model.output: node(s) head_2 do not lead to the output']);
    expect(issues(mutate(good, (p) => (p.version = 1)))).toEqual(['version: a plan whose model is a graph (nodes) has version 2']);
    // a layer's own fields are checked with the same schema as branch layers
    expect(issues(mutate(good, (p) => (p.model.nodes[0].kernelSize = 0)))[0]).toMatch(/^model\.nodes\[0\]\.kernelSize: /);
    expect(issues(mutate(good, (p) => (p.model.nodes[0].type = 'conv4d')))[0]).toMatch(/^model\.nodes\[0\]\.type: must be one of .*"add", "concat"/);
    const addIndex = (good.model as GraphModelSpec).nodes.findIndex((n) => n.name === 'res1_add');
    expect(issues(mutate(good, (p) => (p.model.nodes[addIndex].axis = 1)))).toEqual([`${at(addIndex)}.axis: unknown field 'axis' (add takes only name and input)`]);
  });

  test('merges check their inputs’ shapes', () => {
    const addMismatch = () =>
      definePlan({
        ...base,
        model: modelGraph((g) => {
          const a = g.layer('a', { type: 'conv2d', outChannels: 2, kernelSize: 3 }, 'image');
          return g.chain('out', g.add('sum', ['image', a]), [{ type: 'flatten' }, { type: 'dense', outFeatures: 1 }]);
        }),
      });
    expect(addMismatch).toThrow(/model\.nodes\[1\]\.input: add needs inputs of one shape, got image \[1, 6, 6\], a \[2, 4, 4\]/);
    const concatMismatch = () =>
      definePlan({
        ...base,
        model: modelGraph((g) => {
          const a = g.layer('a', { type: 'max_pool2d', kernelSize: 2 }, 'image');
          return g.chain('out', g.concat('cat', ['image', a]), [{ type: 'flatten' }, { type: 'dense', outFeatures: 1 }]);
        }),
      });
    expect(concatMismatch).toThrow(/concat joins channels \(the first axis\): the other axes must agree/);
    const oneInput = () => definePlan({ ...base, model: { nodes: [{ name: 'x', type: 'add', input: ['image'] }], output: 'x' } });
    expect(oneInput).toThrow(/add needs at least two inputs/);
  });

  test('a plan input nobody reads is refused (its data would be loaded for nothing)', () => {
    const spec = mutate(resnetGraphPlan(), (p) => {
      const nodes = p.model.nodes as { name: string; input?: string | string[] }[];
      nodes.find((n) => n.name === 'joined')!.input = ['gap', 'gap'];
      p.model.nodes = nodes.filter((n) => !n.name.startsWith('clin'));
    });
    expect(issues(spec)).toEqual(["model.nodes: no node reads the plan input 'tabular'"]);
  });
});

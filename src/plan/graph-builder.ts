/**
 * Typed builder for graph models (plan version 2). Each call adds named nodes and returns the name to feed to the
 * next ones, so skip connections are variables:
 *
 *   model: modelGraph((g) => {
 *     const stem = g.chain('stem', 'image', [{ type: 'conv2d', outChannels: 8, kernelSize: 3, padding: 'same' }, { type: 'relu' }]);
 *     const res = g.residual('res1', stem, [conv3x3(8), { type: 'batch_norm' }, { type: 'relu' }, conv3x3(8)], { after: [{ type: 'relu' }] });
 *     const features = g.chain('pool', res, [{ type: 'global_avg_pool' }]);
 *     const clinical = g.chain('clin', 'tabular', [{ type: 'dense', outFeatures: 4 }, { type: 'relu' }]);
 *     return g.chain('head', g.concat('joined', [features, clinical]), [{ type: 'dense', outFeatures: 1 }]);
 *   }),
 *
 * Shapes are not known here: definePlan validates the graph (shapes, names, inputs) and names the node at fault.
 * Branch models (`{ image, tabular, head }`) stay the shortest way to write a sequential network.
 */
import { GraphModelSpec, GraphNodeSpec, LayerSpec } from './spec';

/** A plan input ('image', 'tabular') or the name of a node already added. */
export type NodeRef = string;

export class GraphBuilder {
  private readonly nodes: GraphNodeSpec[] = [];

  private push(node: Omit<GraphNodeSpec, 'input'>, inputs: NodeRef[]): NodeRef {
    const previous = this.nodes[this.nodes.length - 1]?.name;
    // The input is left implicit when it is the node just before (the document's default), else written out.
    const input = inputs.length === 1 ? (inputs[0] === previous ? undefined : inputs[0]) : inputs;
    this.nodes.push({ ...node, ...(input === undefined ? {} : { input }) } as GraphNodeSpec);
    return node.name;
  }

  /** One layer node. */
  layer(name: string, layer: LayerSpec, input: NodeRef): NodeRef {
    return this.push({ ...layer, name }, [input]);
  }

  /** Layers one after another, named `<prefix>_0`, `<prefix>_1`, …; returns the last one. */
  chain(prefix: string, input: NodeRef, layers: LayerSpec[]): NodeRef {
    if (layers.length === 0) throw new Error(`chain ${prefix}: needs at least one layer`);
    return layers.reduce((from, layer, i) => this.layer(`${prefix}_${i}`, layer, from), input);
  }

  /** Element-wise sum of inputs of one shape. */
  add(name: string, inputs: NodeRef[]): NodeRef {
    return this.push({ type: 'add', name }, inputs);
  }

  /** Concatenation along channels (features for flat inputs). */
  concat(name: string, inputs: NodeRef[]): NodeRef {
    return this.push({ type: 'concat', name }, inputs);
  }

  /**
   * A residual block: `after(body(input) + shortcut(input))`, the body named `<prefix>_0…`, the shortcut (identity
   * unless given, e.g. a 1×1 conv when channels change) `<prefix>_skip_0…`, the sum `<prefix>_add` and the layers
   * after it `<prefix>_out_0…`.
   */
  residual(prefix: string, input: NodeRef, body: LayerSpec[], options: { shortcut?: LayerSpec[]; after?: LayerSpec[] } = {}): NodeRef {
    const main = this.chain(prefix, input, body);
    const skip = options.shortcut && options.shortcut.length > 0 ? this.chain(`${prefix}_skip`, input, options.shortcut) : input;
    const sum = this.add(`${prefix}_add`, [main, skip]);
    return options.after && options.after.length > 0 ? this.chain(`${prefix}_out`, sum, options.after) : sum;
  }

  /** The model, its output being `output`. */
  build(output: NodeRef): GraphModelSpec {
    return { nodes: this.nodes.map((n) => ({ ...n })), output };
  }
}

/** Builds a graph model with a fresh builder; `define` returns the output node. */
export function modelGraph(define: (g: GraphBuilder) => NodeRef): GraphModelSpec {
  const g = new GraphBuilder();
  return g.build(define(g));
}

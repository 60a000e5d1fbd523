/**
 * Weights at the boundary: a plan model's variables to and from PyTorch-named, PyTorch-layout tensors (the
 * `model_weights` map of Fed-BioMed weight files, see src/serialize). Import checks everything first and names every
 * problem (missing or unexpected key, wrong shape or dtype) before touching a single variable.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DenseArray, TorchTensor } from '../serialize';
import { tfToTorch, torchToTf } from './layout';
import type { PlanModel } from './tfjs-model';
import { FedbiomedTsError } from '../errors';

/** Raised when weights do not fit the model; `problems` lists each key at fault. */
export class WeightsMismatchError extends FedbiomedTsError {
  constructor(
    readonly planName: string,
    readonly problems: string[],
  ) {
    super(`weights do not fit plan ${planName}: ${problems.join('; ')}`);
  }
}

/** The model's weights in PyTorch layout, keyed and ordered like the generated module's state_dict(). */
export function exportWeights(model: PlanModel): Record<string, TorchTensor> {
  const out: Record<string, TorchTensor> = {};
  for (const p of model.parameters()) {
    const { descriptor } = p;
    if (descriptor.dtype === 'int64') {
      const values = p.variable.dataSync() as Int32Array;
      out[p.name] = new TorchTensor('int64', descriptor.torchShape, BigInt64Array.from(values, (v) => BigInt(v)));
    } else {
      const torchLayout = tf.tidy(() => tfToTorch(descriptor.layout, p.variable));
      const data = torchLayout.dataSync() as Float32Array;
      torchLayout.dispose();
      out[p.name] = new TorchTensor('float32', descriptor.torchShape, Float32Array.from(data));
    }
  }
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((n, i) => n === b[i]);
}

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

/** Lists what keeps `weights` from loading into `model` (empty when they fit). */
export function weightProblems(model: PlanModel, weights: Record<string, DenseArray>): string[] {
  const problems: string[] = [];
  if (weights === null || typeof weights !== 'object') return ['weights must be a map of parameter name to tensor'];
  const expected = new Set<string>();
  for (const p of model.parameters()) {
    expected.add(p.name);
    const w = weights[p.name];
    const want = p.descriptor;
    if (w === undefined) {
      problems.push(`missing key '${p.name}' (${want.dtype} ${shapeText(want.torchShape)})`);
      continue;
    }
    if (!(w instanceof DenseArray)) {
      problems.push(`'${p.name}' is not a tensor`);
      continue;
    }
    if (w.dtype !== want.dtype) problems.push(`'${p.name}' has dtype ${w.dtype}, expected ${want.dtype}`);
    if (!sameShape(w.shape, want.torchShape)) {
      problems.push(`'${p.name}' has shape ${shapeText(w.shape)}, expected ${shapeText(want.torchShape)}`);
    }
  }
  for (const key of Object.keys(weights)) {
    if (!expected.has(key)) problems.push(`unexpected key '${key}'`);
  }
  return problems;
}

/** Loads PyTorch-layout weights into the model's variables; throws WeightsMismatchError without changing anything. */
export function importWeights(model: PlanModel, weights: Record<string, DenseArray>): void {
  const problems = weightProblems(model, weights);
  if (problems.length > 0) throw new WeightsMismatchError(model.spec.name, problems);
  for (const p of model.parameters()) {
    const w = weights[p.name];
    const { descriptor } = p;
    if (descriptor.dtype === 'int64') {
      const counts = Int32Array.from(w.data as BigInt64Array, (v) => Number(v));
      const value = tf.tensor(counts, descriptor.tfShape, 'int32');
      p.variable.assign(value);
      value.dispose();
    } else {
      const value = tf.tidy(() => torchToTf(descriptor.layout, tf.tensor(w.data as Float32Array, descriptor.torchShape, 'float32')));
      p.variable.assign(value);
      value.dispose();
    }
  }
}

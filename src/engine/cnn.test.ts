/**
 * End to end on small CNNs (2D and 3D): one training step on wasm gives the same loss and updated weights as on the
 * CPU backend (every project kernel sits on the path), and repeated rounds leave no tensor or heap growth behind.
 * Tolerance: 2e-4 relative on weights after one SGD step (float32 conv sums, different summation orders).
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { initBackend } from './backend';
import { ImageSource, smallCnn, weightsOf } from './testing/models';
import { trainModel, TrainOptions } from './train';

const OPTIONS: TrainOptions = {
  loader: { batchSize: 3 },
  numUpdates: 1,
  loss: 'CrossEntropyLoss',
  optimizer: { name: 'SGD', lr: 0.5, momentum: 0.9 },
  seed: 4,
  logInterval: 1,
};

beforeAll(async () => {
  await initBackend(() => undefined);
});

async function oneStep(backend: string, dims: 2 | 3): Promise<{ loss: number; weights: Record<string, number[]> }> {
  await tf.setBackend(backend);
  const model = smallCnn(dims, 2);
  const data = new ImageSource(3, dims === 2 ? [11, 10, 2] : [7, 8, 7, 2]);
  let loss = NaN;
  await trainModel(model, data, { ...OPTIONS, onProgress: (p) => (loss = p.loss) });
  const weights = weightsOf(model);
  model.dispose();
  return { loss, weights };
}

describe.each([2, 3] as const)('%iD CNN', (dims) => {
  test('a training step on wasm matches the CPU backend', async () => {
    const wasm = await oneStep('wasm', dims);
    const cpu = await oneStep('cpu', dims);
    await tf.setBackend('wasm');
    expect(wasm.loss).toBeCloseTo(cpu.loss, 5);
    for (const [name, values] of Object.entries(cpu.weights)) {
      values.forEach((v, i) => {
        if (Math.abs(wasm.weights[name][i] - v) > 2e-4 * (1 + Math.abs(v))) {
          throw new Error(`${name}[${i}]: wasm ${wasm.weights[name][i]} vs cpu ${v}`);
        }
      });
    }
  });

  test('rounds leave no tensors or wasm heap allocations behind', async () => {
    await tf.setBackend('wasm');
    const model = smallCnn(dims, 2);
    const data = new ImageSource(6, dims === 2 ? [11, 10, 2] : [7, 8, 7, 2]);
    const round = () => trainModel(model, data, { ...OPTIONS, numUpdates: null, epochs: 1, optimizer: { name: 'Adam', lr: 0.01 } });
    await round();
    const before = tf.memory();
    // Backend-level data includes buffers our kernels allocate internally (im2col, folded images): all released.
    const dataIds = tf.engine().backend.numDataIds();
    for (let r = 0; r < 3; r++) {
      await round();
      expect(tf.memory().numTensors).toBe(before.numTensors);
      expect(tf.memory().numBytes).toBe(before.numBytes);
      expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    }
    model.dispose();
  });
});

describe('batch normalisation (as the plan builder computes it: tf.moments + elementwise ops)', () => {
  const shape = [4, 5, 3, 6];
  const x = Float32Array.from({ length: 4 * 5 * 3 * 6 }, (_, i) => Math.sin(0.7 * i) + 0.1 * (i % 6));
  const cot = Float32Array.from({ length: x.length }, (_, i) => Math.cos(0.3 * i));
  const gamma = Float32Array.from([1.2, 0.8, 1, 0.5, 1.5, 0.9]);
  const beta = Float32Array.from([0.1, -0.2, 0, 0.3, 0, 0.05]);
  const objective = (xt: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => {
    const { mean, variance } = tf.moments(xt, [0, 1, 2]);
    const y = tf.add(tf.mul(tf.mul(tf.sub(xt, mean), tf.rsqrt(tf.add(variance, 1e-5))), g), b);
    return tf.sum(tf.mul(y, tf.tensor(cot, shape)));
  };
  const grads = () =>
    tf.tidy(() =>
      tf.grads(objective)([tf.tensor(x, shape), tf.tensor(gamma), tf.tensor(beta)]).map((t) => Array.from(t.dataSync())),
    );

  test('gradients on wasm match the CPU backend and finite differences', async () => {
    await tf.setBackend('wasm');
    const wasm = grads();
    await tf.setBackend('cpu');
    const cpu = grads();
    await tf.setBackend('wasm');
    wasm.forEach((g, k) => g.forEach((v, i) => expect(Math.abs(v - cpu[k][i])).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(cpu[k][i])))));
    // Finite differences on a few input elements (float32 objective, h = 1e-2: tolerance 2e-2 relative).
    for (const i of [0, 17, 63, 119]) {
      const value = (delta: number) =>
        tf.tidy(() => {
          const xp = Float32Array.from(x);
          xp[i] += delta;
          return objective(tf.tensor(xp, shape), tf.tensor(gamma), tf.tensor(beta)).dataSync()[0];
        });
      const fd = (value(1e-2) - value(-1e-2)) / 2e-2;
      expect(Math.abs(wasm[0][i] - fd)).toBeLessThanOrEqual(2e-2 * (1 + Math.abs(fd)));
    }
  });
});

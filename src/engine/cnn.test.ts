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

/**
 * Backend choice: the default here (no tfjs-node installed) is wasm with the project kernels; the environment
 * variable forces a backend and a bad or unavailable one is a clear error.
 */
import * as tf from '@tensorflow/tfjs-core';
import { BACKEND_ENV_VAR, checkBackendSetting } from './backend';

const saved = process.env[BACKEND_ENV_VAR];

async function freshInit(value: string | undefined, log: string[]) {
  if (value === undefined) delete process.env[BACKEND_ENV_VAR];
  else process.env[BACKEND_ENV_VAR] = value;
  let init: typeof import('./backend').initBackend | undefined;
  // A fresh module registry loads tfjs's backends again into tfjs-core's global kernel registry, which warns once
  // per kernel (about 2 000 lines): an artifact of re-loading in this test, silenced here and only here.
  const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    jest.isolateModules(() => {
      init = (require('./backend') as typeof import('./backend')).initBackend;
    });
  } finally {
    warn.mockRestore();
  }
  return (init as NonNullable<typeof init>)((line) => log.push(line));
}

afterAll(async () => {
  if (saved === undefined) delete process.env[BACKEND_ENV_VAR];
  else process.env[BACKEND_ENV_VAR] = saved;
  await tf.setBackend('wasm');
});

test('default: wasm with project kernels, logged once with its reason', async () => {
  const log: string[] = [];
  const choice = await freshInit(undefined, log);
  expect(choice.name).toBe('wasm');
  expect(choice.reason).toMatch(/tfjs-node not loadable/);
  expect(tf.getBackend()).toBe('wasm');
  expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  expect(log).toHaveLength(1);
  expect(log[0]).toMatch(/^\[engine\] tfjs backend: wasm/);
});

test('FEDBIOMED_TS_BACKEND=cpu forces the CPU backend', async () => {
  const choice = await freshInit('cpu', []);
  expect(choice).toMatchObject({ name: 'cpu', tfjsName: 'cpu' });
  expect(choice.reason).toMatch(/forced by FEDBIOMED_TS_BACKEND=cpu/);
  expect(tf.getBackend()).toBe('cpu');
});

test('an unknown value or an unavailable tfjs-node is a clear error', async () => {
  await expect(freshInit('gpu', [])).rejects.toThrow(/FEDBIOMED_TS_BACKEND=gpu is not one of wasm, cpu, node/);
  await expect(freshInit('node', [])).rejects.toThrow(/@tensorflow\/tfjs-node cannot be loaded/);
});

test('a setting that names no backend is refused without starting an engine (a node at start)', () => {
  expect(() => checkBackendSetting({ [BACKEND_ENV_VAR]: 'gpu' })).toThrow(/FEDBIOMED_TS_BACKEND=gpu is not one of wasm, cpu, node/);
  expect(() => checkBackendSetting({ [BACKEND_ENV_VAR]: 'cpu' })).not.toThrow();
  expect(() => checkBackendSetting({})).not.toThrow();
});

/**
 * One place that decides which TensorFlow.js backend trains our models.
 *
 * Order of preference: tfjs-node (native TensorFlow) when it can be loaded; otherwise the wasm backend (SIMD;
 * XNNPACK kernels) with the project-owned gradient kernels registered on top, and the convolutions and max pools
 * replaced by the project's native AVX2+FMA kernels when they were built (src/engine/native); the pure-JS CPU
 * backend only as a
 * last resort (it is 10-100x slower and is meant as the correctness oracle in tests).
 * `FEDBIOMED_TS_BACKEND=wasm|cpu|node` forces a choice; a forced backend that cannot start is an error.
 */
import * as tf from '@tensorflow/tfjs-core';
import { kernelsDetail, registerProjectKernels } from './kernels';

export type BackendName = 'node' | 'wasm' | 'cpu';

export interface BackendChoice {
  /** Our name for the backend (`node` is tfjs-node, registered in tfjs as `tensorflow`). */
  name: BackendName;
  /** Why it was chosen, in one sentence, for logs. */
  reason: string;
  /** The tfjs backend name actually active (`tensorflow`, `wasm`, `cpu`). */
  tfjsName: string;
}

export const BACKEND_ENV_VAR = 'FEDBIOMED_TS_BACKEND';

let chosen: Promise<BackendChoice> | undefined;

/** Initialise once per process; later calls return the same choice (and do not log again). */
export function initBackend(log: (line: string) => void = defaultLog): Promise<BackendChoice> {
  if (!chosen) {
    chosen = chooseBackend().then((choice) => {
      log(backendLogLine(choice));
      return choice;
    });
    // A failed init must not poison later attempts (e.g. after the user fixes the env variable).
    chosen.catch(() => {
      chosen = undefined;
    });
  }
  return chosen;
}

/** The one line a process logs about its engine: which backend trains, and why. */
export function backendLogLine(choice: Pick<BackendChoice, 'name' | 'reason'>): string {
  return `[engine] tfjs backend: ${choice.name} (${choice.reason})`;
}

/**
 * Throws the error {@link initBackend} would throw for a `FEDBIOMED_TS_BACKEND` that names no backend, without
 * loading any engine: for a process (the node's main thread) that leaves training to another thread but should
 * still refuse a bad setting when it starts.
 */
export function checkBackendSetting(env: NodeJS.ProcessEnv = process.env): void {
  parseForced(env[BACKEND_ENV_VAR]);
}

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

function parseForced(value: string | undefined): BackendName | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const v = value.trim().toLowerCase();
  if (v === 'node' || v === 'tensorflow' || v === 'tfjs-node') return 'node';
  if (v === 'wasm' || v === 'cpu') return v;
  throw new Error(`${BACKEND_ENV_VAR}=${value} is not one of wasm, cpu, node`);
}

async function chooseBackend(): Promise<BackendChoice> {
  const forced = parseForced(process.env[BACKEND_ENV_VAR]);
  if (forced) {
    const why = `forced by ${BACKEND_ENV_VAR}=${process.env[BACKEND_ENV_VAR]}`;
    if (forced === 'node') {
      const err = loadTfjsNode();
      if (err) throw new Error(`${why}, but @tensorflow/tfjs-node cannot be loaded: ${err}`);
      return activate('node', why);
    }
    return activate(forced, why);
  }
  const nodeError = loadTfjsNode();
  if (!nodeError) return activate('node', '@tensorflow/tfjs-node is installed (native TensorFlow)');
  try {
    return await activate('wasm', `@tensorflow/tfjs-node not loadable (${nodeError}); using wasm with project kernels`);
  } catch (wasmError) {
    return activate(
      'cpu',
      `neither tfjs-node (${nodeError}) nor wasm (${errorText(wasmError)}) could start; pure-JS CPU is slow`,
    );
  }
}

/** Loads tfjs-node if installed; returns why not otherwise. Kept out of package.json on purpose (native download). */
function loadTfjsNode(): string | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional, loaded only if installed
    require('@tensorflow/tfjs-node');
    return undefined;
  } catch (e) {
    const text = errorText(e);
    return /Cannot find module '@tensorflow\/tfjs-node'/.test(text) ? 'not installed' : text.split('\n')[0];
  }
}

async function activate(name: BackendName, reason: string): Promise<BackendChoice> {
  if (name === 'wasm') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- only the chosen backend is loaded
    require('@tensorflow/tfjs-backend-wasm');
  } else if (name === 'cpu') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- only the chosen backend is loaded
    require('@tensorflow/tfjs-backend-cpu');
  }
  const tfjsName = name === 'node' ? 'tensorflow' : name;
  registerProjectKernels();
  const ok = await tf.setBackend(tfjsName);
  if (!ok) throw new Error(`tfjs backend '${tfjsName}' failed to initialise`);
  await tf.ready();
  return { name, reason: name === 'wasm' ? `${reason}; ${wasmFeatures()}` : reason, tfjsName };
}

function wasmFeatures(): string {
  const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
  // tfjs disables wasm threads under Node (tfjs issue 3830), so the wasm backend runs on one thread here.
  return `SIMD ${simd ? 'on' : 'off'}, XNNPACK ops on 1 thread (tfjs-backend-wasm has no worker threads under Node); ${kernelsDetail()}`;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

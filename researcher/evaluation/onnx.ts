/**
 * Exporting a trained plan to ONNX (channels-first image input, as PyTorch) and checking it: ONNX Runtime must give
 * the same predictions as tfjs. onnxruntime-node is an optional peer dependency of the package (a 290 MB install a
 * hospital node does not need): these functions load it when called and say how to install it when it is missing.
 */
import * as fs from 'fs';
import type * as Ort from 'onnxruntime-node';
import type { PlanDataset } from '../../src/data/plan-dataset';
import { exportPlanToOnnx, ONNX_INPUT_IMAGE, ONNX_INPUT_TABULAR, ONNX_OUTPUT } from '../../src/plan/onnx';
import type { PlanSpec } from '../../src/plan/spec';
import type { DenseArray } from '../../src/serialize';
import { FedbiomedTsError } from '../../src/errors';

/** Largest difference between ONNX Runtime's and tfjs's scores accepted by {@link exportAndCheckOnnx}. */
export const ONNX_TOLERANCE = 1e-4;

export class OnnxRuntimeMissingError extends FedbiomedTsError {
  constructor(cause: string) {
    super(`ONNX Runtime is needed to run an ONNX model: npm install onnxruntime-node (${cause})`);
  }
}

function onnxRuntime(): typeof Ort {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional peer dependency
    return require('onnxruntime-node') as typeof Ort;
  } catch (err) {
    throw new OnnxRuntimeMissingError((err as Error).message.split('\n')[0]);
  }
}

/** ONNX Runtime's score for every sample of `data`, from an exported model's bytes. */
export async function onnxPredictions(modelBytes: Uint8Array, spec: PlanSpec, data: PlanDataset): Promise<Float32Array> {
  const ort = onnxRuntime();
  const session = await ort.InferenceSession.create(modelBytes);
  try {
    const n = data.size;
    const feeds: Record<string, Ort.Tensor> = {};
    if (spec.inputs.image) {
      // Plan samples are channels first ([C, ...size], the PyTorch view): exactly the ONNX NCHW input.
      const imageOf = (i: number) => {
        const x = data.sample(i).image;
        if (!x) throw new Error(`sample ${i} has no image although the plan has an image input`);
        return x;
      };
      const first = imageOf(0);
      const per = first.data.length;
      const batch = new Float32Array(n * per);
      for (let i = 0; i < n; i++) batch.set(imageOf(i).data, i * per);
      feeds[ONNX_INPUT_IMAGE] = new ort.Tensor('float32', batch, [n, ...first.shape]);
    }
    const columns = spec.inputs.tabular?.columns.length ?? 0;
    if (columns > 0) {
      const batch = new Float32Array(n * columns);
      for (let i = 0; i < n; i++) batch.set(data.sample(i).tabular as Float32Array, i * columns);
      feeds[ONNX_INPUT_TABULAR] = new ort.Tensor('float32', batch, [n, columns]);
    }
    const result = await session.run(feeds);
    return Float32Array.from(result[ONNX_OUTPUT].data as Float32Array);
  } finally {
    await session.release();
  }
}

export interface OnnxCheck {
  file: string;
  bytes: number;
  opTypes: string[];
  /** Largest |ONNX Runtime score - tfjs score| over the samples. */
  maxAbsDifference: number;
  tolerance: number;
  samples: number;
  passed: boolean;
}

/**
 * Writes the plan with `weights` to `file` as ONNX (NCHW image input; a sigmoid on the output when the plan trains
 * on logits) and compares ONNX Runtime's scores on `data` with `reference` (tfjs's, from {@link predict}).
 *
 * @example
 * ```ts
 * const scores = predict(plan, weights, heldOut).scores;
 * const check = await exportAndCheckOnnx(plan, weights, heldOut, scores, 'model.onnx');
 * if (!check.passed) throw new Error(`ONNX differs by ${check.maxAbsDifference}`);
 * ```
 */
export async function exportAndCheckOnnx(
  spec: PlanSpec, weights: Record<string, DenseArray>, data: PlanDataset, reference: Float32Array, file: string,
  tolerance = ONNX_TOLERANCE,
): Promise<OnnxCheck> {
  // The output activation defaults to what predict() applies: a sigmoid for plans trained on logits.
  const exported = exportPlanToOnnx(spec, weights, { imageLayout: 'NCHW' });
  fs.writeFileSync(file, exported.bytes);
  const scores = await onnxPredictions(fs.readFileSync(file), spec, data);
  if (scores.length !== reference.length) {
    throw new Error(`ONNX gave ${scores.length} predictions for ${reference.length} reference scores`);
  }
  let maxAbsDifference = 0;
  for (let i = 0; i < scores.length; i++) maxAbsDifference = Math.max(maxAbsDifference, Math.abs(scores[i] - reference[i]));
  return { file, bytes: exported.bytes.length, opTypes: exported.opTypes, maxAbsDifference, tolerance,
    samples: scores.length, passed: maxAbsDifference <= tolerance };
}

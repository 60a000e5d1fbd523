/**
 * Exports the global model to ONNX (NCHW image input, probabilities out) and checks that ONNX Runtime gives the
 * same predictions as tfjs on the held-out patients.
 */
import * as fs from 'fs';
import * as ort from 'onnxruntime-node';
import type { PlanDataset } from '../../src/data/plan-dataset';
import { exportPlanToOnnx, ONNX_INPUT_IMAGE, ONNX_INPUT_TABULAR, ONNX_OUTPUT } from '../../src/plan/onnx';
import type { PlanSpec } from '../../src/plan/spec';
import type { TorchTensor } from '../../src/serialize';
import type { OnnxSummary } from './report';

export const ONNX_TOLERANCE = 1e-4;

/** ONNX Runtime's P(responder) for every sample of `data`. */
export async function onnxPredictions(modelBytes: Uint8Array, spec: PlanSpec, data: PlanDataset): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(modelBytes);
  try {
    const n = data.size;
    const feeds: Record<string, ort.Tensor> = {};
    const image = spec.inputs.image;
    if (image) {
      // Plan samples are channels first ([C, ...size], the PyTorch view): exactly the ONNX NCHW input.
      const imageOf = (i: number) => {
        const x = data.sample(i).image;
        if (!x) throw new Error(`held-out sample ${i} has no image although the plan has an image input`);
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

export async function exportAndCheckOnnx(
  spec: PlanSpec, weights: Record<string, TorchTensor>, heldOut: PlanDataset, tfjsScores: Float32Array, file: string,
): Promise<OnnxSummary> {
  const exported = exportPlanToOnnx(spec, weights, { imageLayout: 'NCHW', outputActivation: 'sigmoid' });
  fs.writeFileSync(file, exported.bytes);
  const onnxScores = await onnxPredictions(fs.readFileSync(file), spec, heldOut);
  if (onnxScores.length !== tfjsScores.length) {
    throw new Error(`ONNX gave ${onnxScores.length} predictions for ${tfjsScores.length} held-out patients`);
  }
  let maxAbsDifference = 0;
  for (let i = 0; i < onnxScores.length; i++) maxAbsDifference = Math.max(maxAbsDifference, Math.abs(onnxScores[i] - tfjsScores[i]));
  return {
    file, bytes: exported.bytes.length, opTypes: exported.opTypes, maxAbsDifference, tolerance: ONNX_TOLERANCE,
    samples: onnxScores.length, passed: maxAbsDifference <= ONNX_TOLERANCE,
  };
}

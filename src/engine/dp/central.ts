/**
 * Central DP as a Fed-BioMed v4.5 node applies it after training (DPController._postprocess_dp): every shared
 * parameter gets Gaussian noise of standard deviation sigma·clip, once, on the node, before upload.
 */
import { TorchTensor } from '../../serialize';
import { DpRandom, secureRandom } from './randomness';

export function addCentralNoise(
  weights: Record<string, TorchTensor>,
  std: number,
  random: DpRandom = secureRandom(),
): Record<string, TorchTensor> {
  if (!(Number.isFinite(std) && std >= 0)) throw new Error(`central DP noise std must be finite and >= 0, got ${std}`);
  const out: Record<string, TorchTensor> = {};
  for (const [name, t] of Object.entries(weights)) {
    if (t.dtype !== 'float32') {
      // torch.randn_like fails on integer tensors on a Python node; no plan under DP has any (batch norm is refused).
      throw new Error(`central DP cannot noise the ${t.dtype} tensor ${name}`);
    }
    const data = t.data as Float32Array;
    const noise = random.gaussian(data.length, std);
    out[name] = new TorchTensor('float32', t.shape, data.map((v, i) => v + noise[i]));
  }
  return out;
}

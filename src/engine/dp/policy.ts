/**
 * Which differential-privacy requests (`training_args.dp_args`) this node can honour, and how. A request this
 * node cannot honour is refused with the reason, never trained with fewer protections than it asked for.
 */
import type { DpArgs } from '../../protocol/training-args';
import { numberOf } from '../../protocol/pyfloat';
import type { DpTrainingOptions } from './step';

/** What a round does for Fed-BioMed's dp_args (fedbiomed/common/privacy/_dp_controller.py, v4.5.0). */
export interface DpPlan {
  type: 'local' | 'central';
  sigma: number;
  clip: number;
  /** Training: DP-SGD with sigma (local) or sigma 0 (central: clipped, unnoised). */
  training: DpTrainingOptions;
  /** Central DP: the standard deviation of the noise added once to every shared parameter after training. */
  finalNoiseStd: number;
}

export type DpDecision = { ok: true; plan: DpPlan | null } | { ok: false; reason: string };

/**
 * Batch norm is not refused here: the node trains the plan as Opacus's ModuleValidator.fix would leave it
 * (src/plan/dp-fix.ts), and the DP engine refuses any layer it has no per-sample rule for.
 */
export function decideDp(dp: DpArgs | null, options: { fedproxMu: number | null }): DpDecision {
  if (dp === null) return { ok: true, plan: null };
  const sigma = numberOf(dp.sigma);
  const clip = numberOf(dp.clip);
  if (!(Number.isFinite(clip) && clip > 0)) return { ok: false, reason: `dp_args.clip must be a finite number > 0, got ${clip}` };
  if (!(Number.isFinite(sigma) && sigma >= 0)) return { ok: false, reason: `dp_args.sigma must be a finite number >= 0, got ${sigma}` };
  if (options.fedproxMu !== null && options.fedproxMu > 0) {
    // Opacus's DPOptimizer replaces each gradient by the noised clipped sum, so a Python node drops the FedProx
    // term without a word; this node refuses the combination instead of choosing one behaviour silently.
    return { ok: false, reason: 'fedprox_mu cannot be combined with dp_args (Opacus discards the FedProx term)' };
  }
  return { ok: true, plan: {
    type: dp.type, sigma, clip,
    training: { noiseMultiplier: dp.type === 'local' ? sigma : 0, maxGradNorm: clip },
    finalNoiseStd: dp.type === 'central' ? sigma * clip : 0,
  } };
}

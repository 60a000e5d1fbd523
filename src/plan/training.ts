/**
 * What the training loop needs from a plan, in the engine's vocabulary (src/engine/losses.ts names and
 * src/engine/optimizers.ts OptimizerSpec), plus the Fed-BioMed rule that the experiment's `optimizer_args`
 * override the plan's optimizer values (the generated PyTorch plan applies the same rule).
 */
import type { OptimizerSpec as EngineOptimizerSpec } from '../engine/optimizers';
import { LossSpec, OptimizerSpec, PlanSpec } from './spec';

export type EngineLossName = 'BCELoss' | 'BCEWithLogitsLoss' | 'CrossEntropyLoss' | 'MSELoss';

/** The engine's optimizer settings, narrowed to the two optimizers a plan can name. */
export type EngineOptimizerSettings = EngineOptimizerSpec & { name: 'SGD' | 'Adam' };

export function engineLossName(loss: LossSpec): EngineLossName {
  switch (loss.type) {
    case 'bce':
      return loss.fromLogits ? 'BCEWithLogitsLoss' : 'BCELoss';
    case 'cross_entropy':
      return 'CrossEntropyLoss';
    case 'mse':
      return 'MSELoss';
  }
}

/** torch.optim keyword → plan field, for applying Fed-BioMed optimizer_args. */
const OVERRIDABLE: Record<string, keyof EngineOptimizerSettings> = {
  lr: 'lr',
  momentum: 'momentum',
  dampening: 'dampening',
  nesterov: 'nesterov',
  weight_decay: 'weightDecay',
  betas: 'betas',
  eps: 'eps',
};

/**
 * The optimizer settings for a round: the plan's, overridden by the experiment's `optimizer_args` for the keys
 * the plan's optimizer has (as the generated plan's init_optimizer does). Other keys are ignored.
 */
export function engineOptimizer(optimizer: OptimizerSpec, optimizerArgs: Record<string, unknown> = {}): EngineOptimizerSettings {
  const { type, ...fields } = optimizer;
  const settings: EngineOptimizerSettings = { name: type === 'sgd' ? 'SGD' : 'Adam', ...fields };
  const present = new Set(Object.keys(fields));
  for (const [key, value] of Object.entries(optimizerArgs)) {
    const field = OVERRIDABLE[key];
    if (!field || !present.has(field)) continue;
    (settings as unknown as Record<string, unknown>)[field] = value;
  }
  return settings;
}

export function trainingSettings(spec: PlanSpec, optimizerArgs: Record<string, unknown> = {}): { loss: EngineLossName; optimizer: EngineOptimizerSettings } {
  return { loss: engineLossName(spec.loss), optimizer: engineOptimizer(spec.optimizer, optimizerArgs) };
}

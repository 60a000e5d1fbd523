/**
 * What the training loop needs from a plan, in the engine's vocabulary (src/engine/losses.ts names and
 * src/engine/optimizers.ts OptimizerSpec), plus the Fed-BioMed rule that the experiment's `optimizer_args`
 * override the plan's optimizer values (the generated PyTorch plan applies the same rule).
 */
import { LossConfig, LossFn, makeLoss } from '../engine/losses';
import type { OptimizerSpec as EngineOptimizerSpec } from '../engine/optimizers';
import { engineImageLoss } from './image-losses';
import { IMAGE_LOSS_TYPES, LossSpec, OptimizerSpec, PlanSpec } from './spec';
import { hasSeveralHeads, headColumns, lossWeight, planHeads, weightedSumLoss } from './heads';
import { validatePlan } from './validate';

export type EngineLossName =
  | 'BCELoss' | 'BCEWithLogitsLoss' | 'CrossEntropyLoss' | 'MSELoss' | 'SigmoidFocalLoss' | 'L1Loss' | 'SoftDiceLoss' | 'SoftDiceWithLogitsLoss'
  | 'WeightedSumLoss';

/** The engine's optimizer settings, narrowed to the optimizers a plan can name. */
export type EngineOptimizerSettings = EngineOptimizerSpec & { name: 'SGD' | 'Adam' | 'AdamW' };

/** torch.optim.AdamW's default weight decay (Adam's is 0). */
const ADAMW_DEFAULT_WEIGHT_DECAY = 0.01;

export function engineLossName(loss: LossSpec): EngineLossName {
  switch (loss.type) {
    case 'bce':
      return loss.fromLogits ? 'BCEWithLogitsLoss' : 'BCELoss';
    case 'cross_entropy':
      return 'CrossEntropyLoss';
    case 'mse':
      return 'MSELoss';
    case 'focal':
      return 'SigmoidFocalLoss';
    case 'l1':
      return 'L1Loss';
    case 'soft_dice':
      return loss.fromLogits ? 'SoftDiceWithLogitsLoss' : 'SoftDiceLoss';
    case 'weighted':
      return 'WeightedSumLoss';
  }
}

/** The engine loss with the plan's options (pos_weight, class weights, focal γ/α; image losses: image-losses.ts). */
export function engineLoss(loss: LossSpec): LossConfig {
  if (IMAGE_LOSS_TYPES.includes(loss.type)) return engineImageLoss(loss, engineLoss);
  const config: LossConfig = { name: engineLossName(loss) };
  if (loss.type === 'bce' && loss.posWeight !== undefined) config.posWeight = loss.posWeight;
  if (loss.type === 'cross_entropy' && loss.classWeights) config.classWeights = loss.classWeights;
  if (loss.type === 'focal') {
    config.gamma = loss.gamma ?? 2;
    config.alpha = loss.alpha ?? 0.25;
  }
  return config;
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
  const name = type === 'sgd' ? 'SGD' : type === 'adamw' ? 'AdamW' : 'Adam';
  const settings: EngineOptimizerSettings = { name, ...fields };
  if (type === 'adamw' && settings.weightDecay === undefined) settings.weightDecay = ADAMW_DEFAULT_WEIGHT_DECAY;
  const present = new Set(Object.keys(fields));
  for (const [key, value] of Object.entries(optimizerArgs)) {
    const field = OVERRIDABLE[key];
    if (!field || !present.has(field)) continue;
    (settings as unknown as Record<string, unknown>)[field] = value;
  }
  return settings;
}

/** The training loss: the plan's loss, or with several heads Σ weight · loss over them (heads.ts). */
export function planLoss(spec: PlanSpec): LossConfig | LossFn {
  if (!hasSeveralHeads(spec)) return engineLoss(spec.loss);
  const columns = headColumns(validatePlan(spec).graph.outputShapes);
  return weightedSumLoss(
    planHeads(spec).map((head, h) => ({
      loss: makeLoss(engineLoss(head.loss)),
      weight: lossWeight(head.loss),
      ...columns[h],
      targetColumn: h,
      integerTarget: head.loss.type === 'cross_entropy',
    })),
  );
}

export function trainingSettings(spec: PlanSpec, optimizerArgs: Record<string, unknown> = {}): { loss: LossConfig | LossFn; optimizer: EngineOptimizerSettings } {
  return { loss: planLoss(spec), optimizer: engineOptimizer(spec.optimizer, optimizerArgs) };
}

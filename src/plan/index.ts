/**
 * Training plans as data: spec, validation, identity, tfjs model, PyTorch weights and code.
 * @module fedbiomed-ts/plan
 */
export * from './spec';
export { PlanValidationError, formatPath } from './errors';
export type { PlanIssue } from './errors';
export { definePlan } from './define';
export { GraphBuilder, modelGraph } from './graph-builder';
export type { NodeRef } from './graph-builder';
export { unet } from './unet';
export { imageLoss, torchImageLoss, maskDice, imageMae, SOFT_DICE_SMOOTH } from './image-losses';
export type { ImageLossSpec } from './image-losses';
export type { UnetOptions } from './unet';
export { checkPlan, validatePlan } from './validate';
export type { PlanCheck } from './validate';
export { canonicalJson, planHash, sha256Hex } from './canonical';
export { resolveGraph } from './graph';
export type { ResolvedGraph, ResolvedLayer, ResolvedBranch } from './graph';
export { describeParameters } from './parameters';
export type { ParameterDescriptor } from './parameters';
export { initialWeights } from './init';
export { buildModel, PlanModel } from './tfjs-model';
export type { BuildModelOptions, PlanParameter } from './tfjs-model';
export { exportWeights, importWeights, weightProblems, WeightsMismatchError } from './weights';
export { generateTorchPlan, generateTorchPlanClass, planDependencies, TORCH_PLAN_DEFAULT_DEPENDENCIES } from './pytorch';
export type { GenerateTorchPlanOptions } from './pytorch';
export { extractPlanFromTorchSource, findEmbeddedPlan, EmbeddedPlanError } from './embed';
export type { EmbeddedPlan } from './embed';
export { loadPlanFile, PlanLoadError } from './load';
export { trainingSettings, engineLossName, engineOptimizer } from './training';
export type { EngineLossName, EngineOptimizerSettings } from './training';
export { imageInput, imageSample, preprocessModality, tabularInput, targetValue, PreprocessError } from './pipeline';
export type { DenseVolume } from './pipeline';
export { imageInputChannels, sliceSelection, storedImageRank } from './preprocess';
export { makeBatch } from './batch';
export { describeTarget, imageTarget, imageTargetChannelCount, targetModalities } from './image-target';
export type { PlanBatch, PlanSample } from './batch';
export { localParameterNamesOf } from './fedbn';
export { augmentBatch, augmentImage, augmentSample } from './augment';
export { planMetrics, METRIC_WIRE_NAMES } from './metrics';

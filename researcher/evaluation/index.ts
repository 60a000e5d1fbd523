/** What a researcher needs around an experiment: held-out evaluation, baselines without federation, ONNX export. */
export { predict } from './predict';
export type { Predictions } from './predict';
export {
  evaluateBinary, evaluateBySite, aucStandardError, aucConfidenceInterval, normalQuantile, DEFAULT_THRESHOLD,
  DEFAULT_CONFIDENCE,
} from './binary';
export type { BinaryEvaluation, BinaryEvaluationOptions, SiteEvaluation } from './binary';
export { trainLocally, trainPooled, pooledSource } from './baselines';
export type { LocalTrainingOptions, LocalTrainingResult } from './baselines';
export { exportAndCheckOnnx, onnxPredictions, OnnxRuntimeMissingError, ONNX_TOLERANCE } from './onnx';
export type { OnnxCheck } from './onnx';
export { stateDictFromWeightMap } from './state-dict';

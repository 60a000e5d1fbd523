/**
 * fedbiomed-ts researcher SDK: run federated experiments on Fed-BioMed v4.5.0 networks (Python nodes, TS nodes,
 * or both) from TypeScript.
 *
 *   import { Experiment } from 'fedbiomed-ts/researcher';
 *   const exp = new Experiment({ tags: ['csv'], plan, trainingArgs: { loader_args: { batch_size: 8 }, epochs: 1 },
 *                                roundLimit: 3, network: { brokerUrl: 'mqtt://localhost:1883',
 *                                                          uploadsUrl: 'http://localhost:8844/upload/' } });
 *   for await (const ev of exp.events()) …      // or exp.on('round-end', …)
 *   const { weights } = await exp.run();
 *
 * @module fedbiomed-ts/researcher
 */
export { Experiment, ExperimentError, DEFAULT_ROUND_TIMEOUT_MS } from './experiment';
export type { ExperimentOptions, ExperimentResult } from './experiment';
export { Researcher, UNKNOWN_RESEARCHER_IDS } from './requests/researcher';
export type { DiscoveryOptions, PingResult, ApprovalResult, PlanStatusResult } from './requests/researcher';
export { RequestRouter, Collection } from './requests/collector';
export type { CollectionSpec, CollectionResult, NodeOutcome, InboundMessage } from './requests/collector';
// One repository client for the whole project; HttpRepository is its former name here, kept for existing code.
export { RepositoryClient, RepositoryClient as HttpRepository, RepositoryError } from '../src/transport/repository';
export { networkFromEnvironment, NetworkConfigError, DEFAULT_DISCOVERY_TIMEOUT_MS } from './network';
export type { NetworkOptions, MqttNetworkOptions, V6NetworkOptions, FileRepository } from './network';
export {
  Aggregator,
  StreamingFedAvg,
  federatedAverage,
  AdaptiveServerOptimizer,
  normaliseAggregator,
  AggregationError,
  compactWeights,
} from './aggregators';
export type { AggregatorConfig, AggregatorInput, AccumulatorPrecision, WeightMap, WeightTensor } from './aggregators';
export { createStrategy, StrategyError } from './strategies';
export type { Strategy, StrategyConfig, StrategyInput } from './strategies';
export { buildTrainingArgs, TrainingArgsError, TRAINING_ARGS_KEYS } from './training-args';
export type { TrainingArgsInput } from './training-args';
export { shippedPlan, PlanSourceError } from './plan-source';
export type { PlanInput, PythonPlan, ShippedPlan } from './plan-source';
export { saveBreakpoint, loadBreakpoint, BreakpointError } from './breakpoint';
export { loadExperimentFile, ExperimentFileError } from './config';
export { encodeAggregatedParams, decodeNodeParams } from './weights-file';
export { streamParams } from './weights-stream';
export { foldReply } from './fold-reply';
export { ConsoleMonitor } from './monitoring/console';
export { JsonLinesHistory, readHistory } from './monitoring/history';
export { TensorBoardWriter, readScalarEvents } from './monitoring/tensorboard';
export { formatRoundSummary } from './monitoring/summary';
export type { ExperimentEvent, RoundSummary, NodeRoundSummary, ScalarRecord } from './events';
export * from './evaluation';
export { privacyEstimates, formatPrivacyEstimates } from './privacy';
export type { NodePrivacyEstimate } from './privacy';

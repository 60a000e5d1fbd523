/**
 * `fedbiomed-ts`: the public API of the package in one import.
 *
 * Like `src/cli/main.ts`, this module is a composition root: it is the one place in `src/` that names both sides
 * (`researcher/` and `node-agent/`); the library code itself keeps the one-way arrows of the design. The subpaths
 * `fedbiomed-ts/researcher`, `/node`, `/plan`, `/network` and `/data` give the same things by side.
 *
 * @example
 * ```ts
 * import { definePlan, Experiment, startEmbeddedNetwork } from 'fedbiomed-ts';
 *
 * const plan = definePlan({ name: 'TourMLP', inputs: { tabular: { columns: ['x1', 'x2'] } }, … });
 * const net = await startEmbeddedNetwork();
 * const exp = new Experiment({ tags: ['csv'], plan, roundLimit: 3,
 *   trainingArgs: { loader_args: { batch_size: 8 }, optimizer_args: { lr: 0.01 }, num_updates: 10 },
 *   network: { brokerUrl: net.mqttUrl, uploadsUrl: net.uploadsUrl } });
 * const { weights } = await exp.run();
 * ```
 *
 * @module fedbiomed-ts
 */
export * from './plan';
export * from './data';
export { openPlanDataset, volumeToDense } from './data/plan-dataset';
export type { PlanDataset, PlanDataSource, OpenPlanDatasetOptions } from './data/plan-dataset';
export * from '../researcher';
export {
  NodeAgent, runNodeUntilSignal, defaultConfig, writeConfig, loadConfig, openNodeStores, ConfigError, DatasetError,
  TrainingPlanError,
} from '../node-agent';
export type { NodeAgentOptions, NodeConfig, NodeStores, DatasetEntry, PlanStatus, TrainingPlanEntry } from '../node-agent';
export {
  startEmbeddedNetwork, startEmbeddedV6Network, startBroker, startRepositoryServer, Messaging, RepositoryClient, consoleLogger, silentLogger,
} from './transport';
export type { EmbeddedNetwork, EmbeddedNetworkOptions, EmbeddedV6Network, EmbeddedV6NetworkOptions, Logger } from './transport';
export {
  readParamsFile, writeParamsFile, encodeParams, decodeParams, modelWeightsOf, aggregatedParamsFile, nodeParamsFile,
  TorchTensor, NdArray, DenseArray, SerializationError,
} from './serialize';
export type { ModelWeights, DType } from './serialize';
export { initBackend, BACKEND_ENV_VAR } from './engine/backend';
export type { BackendChoice, BackendName } from './engine/backend';
export { trainModel } from './engine/train';
export type { Batch, BatchSource, TrainOptions, TrainResult } from './engine/train';
export { rocAuc, rocCurve, binaryConfusion, sensitivity, specificity, accuracy } from './engine/metrics';
export type { Confusion } from './engine/metrics';
/** The base of every error the package throws on purpose: `err instanceof FedbiomedTsError`, `err.errnum`. */
export { FedbiomedTsError } from './errors';
export type { FbErrorNumber } from './errors';

/**
 * `fedbiomed-ts/node`: the hospital node agent as a library (what `fedbiomed-ts node …` runs).
 *
 * @example
 * ```ts
 * import { writeConfig, defaultConfig, openNodeStores, NodeAgent } from 'fedbiomed-ts/node';
 * writeConfig('node_a', defaultConfig({ nodeId: 'node_a', broker: 'mqtt://127.0.0.1:1883' }));
 * await openNodeStores('node_a').datasets.add({ name: 'site-a', dataType: 'csv', tags: ['csv'], description: '',
 *                                               path: '/data/a.csv', parameters: null });
 * const agent = await NodeAgent.start({ dir: 'node_a' });
 * // … later
 * await agent.stop();
 * ```
 *
 * @module fedbiomed-ts/node
 */
export { NodeAgent, runNodeUntilSignal, SIGNAL_STOP_LOG } from './agent';
export type { NodeAgentOptions } from './agent';
export { CONFIG_FILE, CONFIG_VERSION, ConfigError, checkNodeId, defaultConfig, loadConfig, nodePaths, writeConfig, applyEnvironment } from './config';
export type { NodeConfig, NodePaths } from './config';
export { openNodeStores } from './stores';
export type { NodeStores } from './stores';
export { DATA_TYPES, DatasetError, DatasetRegistry, parseDataType } from './datasets';
export type { DataType, DatasetEntry, NewDataset } from './datasets';
export { TrainingPlanStore, TrainingPlanError } from './training-plans';
export type { PlanStatus, TrainingPlanEntry } from './training-plans';
export { readPlanSource, NOT_DECLARATIVE } from './plan-source';
export type { PlanReading } from './plan-source';
export { acquireNodeLock, readLock, lockHeld, processAlive, NodeLockedError, LOCK_FILE } from './lock';
export type { NodeLock, LockOwner } from './lock';
export { nodeStatus, formatNodeStatus, StatusRecorder, STATUS_FILE } from './status';
export type { NodeStatusReport, NodeRuntimeStatus } from './status';
export { RotatingLogFile, DEFAULT_LOG_FILES, DEFAULT_LOG_MAX_BYTES } from './log-file';
export type { RotatingLogOptions } from './log-file';
export { systemdUnit, NODE_ENVIRONMENT } from './service';
export type { SystemdUnit, SystemdUnitOptions } from './service';

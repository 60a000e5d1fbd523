import { PyJsonObject, PyJsonValue } from './python-json-value';

/**
 * TypeScript shapes of the 19 Fed-BioMed v4.5.0 wire messages (schemas/messages/ is the source of truth; these
 * types mirror it). Field names are the wire's snake_case. Conventions:
 *  - `protocol_version` is optional on input to serializeMessage (always overwritten with PROTOCOL_VERSION) and
 *    always present on what parseMessage returns;
 *  - fields the schema declares as Python floats are plain `number`s (serializeMessage writes them as floats,
 *    parseMessage returns them as numbers even when the wire had `0.0`);
 *  - free-form dicts (`model_args`, `timing`, …) are PyJsonObject: a whole float in them is a PyFloat.
 */

export type Direction = 'researcher-to-node' | 'node-to-researcher';
export const DIRECTIONS: readonly Direction[] = ['researcher-to-node', 'node-to-researcher'];

interface Versioned {
  protocol_version?: string;
}

// ---- researcher → node -------------------------------------------------------------------------------------

export interface PingRequest extends Versioned {
  researcher_id: string;
  sequence: number;
  command: 'ping';
}

export interface SearchRequest extends Versioned {
  researcher_id: string;
  tags: string[];
  command: 'search';
}

export interface ListRequest extends Versioned {
  researcher_id: string;
  command: 'list';
}

export type MetricName =
  | 'ACCURACY'
  | 'F1_SCORE'
  | 'PRECISION'
  | 'RECALL'
  | 'MEAN_SQUARE_ERROR'
  | 'MEAN_ABSOLUTE_ERROR'
  | 'EXPLAINED_VARIANCE';

export interface WireDpArgs {
  type?: 'central' | 'local';
  sigma: number;
  clip: number;
}

/** `training_args` of a TrainRequest as it travels: all 17 keys, as a Python researcher sends them (validation and defaults on the node side: training-args.ts). */
export interface WireTrainingArgs {
  optimizer_args: PyJsonObject;
  loader_args: PyJsonObject;
  epochs: number | null;
  num_updates: number | null;
  dry_run: boolean;
  batch_maxnum: number | null;
  /** float in [0, 1] */
  test_ratio: number;
  test_on_local_updates: boolean;
  test_on_global_updates: boolean;
  test_metric: MetricName | null;
  test_metric_args: PyJsonObject;
  log_interval: number;
  /** float or null */
  fedprox_mu: number | null;
  use_gpu: boolean;
  dp_args: WireDpArgs | null;
  share_persistent_buffers: boolean;
  random_seed: number | null;
}

export interface TrainRequest extends Versioned {
  researcher_id: string;
  job_id: string;
  state_id: string | null;
  params_url: string;
  training_args: WireTrainingArgs;
  dataset_id: string;
  training: boolean;
  model_args: PyJsonObject;
  training_plan_url: string;
  training_plan_class: string;
  command: 'train';
  secagg_servkey_id: string | null;
  secagg_biprime_id: string | null;
  /** float or null */
  secagg_random: number | null;
  secagg_clipping_range: number | null;
  round: number;
  aggregator_args: PyJsonObject;
  aux_var_urls: string[] | null;
}

export interface ApprovalRequest extends Versioned {
  researcher_id: string;
  description: string;
  sequence: number;
  training_plan_url: string;
  command: 'approval';
}

export interface TrainingPlanStatusRequest extends Versioned {
  researcher_id: string;
  job_id: string;
  training_plan_url: string;
  command: 'training-plan-status';
}

export interface SecaggRequest extends Versioned {
  researcher_id: string;
  secagg_id: string;
  sequence: number;
  /** 0 = SERVER_KEY, 1 = BIPRIME */
  element: number;
  job_id: string | null;
  parties: string[];
  command: 'secagg';
}

export interface SecaggDeleteRequest extends Versioned {
  researcher_id: string;
  secagg_id: string;
  sequence: number;
  element: number;
  job_id: string | null;
  command: 'secagg-delete';
}

// ---- node → researcher -------------------------------------------------------------------------------------

export interface PongReply extends Versioned {
  researcher_id: string;
  node_id: string;
  success: boolean;
  sequence: number;
  command: 'pong';
}
/** Fed-BioMed's class name for the pong message. */
export type PingReply = PongReply;

/** A dataset entry as nodes publish it (path removed); only dataset_id is relied upon. */
export interface DatasetEntry extends PyJsonObject {
  dataset_id: string;
}

export interface SearchReply extends Versioned {
  researcher_id: string;
  success: boolean;
  databases: DatasetEntry[];
  node_id: string;
  count: number;
  command: 'search';
}

export interface ListReply extends Versioned {
  researcher_id: string;
  success: boolean;
  databases: DatasetEntry[];
  node_id: string;
  count: number;
  command: 'list';
}

export interface TrainReply extends Versioned {
  researcher_id: string;
  job_id: string;
  state_id: string | null;
  success: boolean;
  node_id: string;
  dataset_id: string;
  params_url: string;
  /** `{rtime_training, ptime_training}` (seconds, floats) or `{}` */
  timing: PyJsonObject;
  sample_size: number | null;
  msg: string;
  command: 'train';
}

export interface ApprovalReply extends Versioned {
  researcher_id: string;
  node_id: string;
  sequence: number;
  status: number;
  command: 'approval';
  success: boolean;
}

export type TrainingPlanStatus = 'Approved' | 'Pending' | 'Rejected' | 'Not Registered' | 'Error';

export interface TrainingPlanStatusReply extends Versioned {
  researcher_id: string;
  node_id: string;
  job_id: string;
  success: boolean;
  approval_obligation: boolean;
  /** one of TrainingPlanStatus in practice (the schema only requires a string, as Python does) */
  status: string;
  msg: string;
  training_plan_url: string;
  command: 'training-plan-status';
}

export interface SecaggReply extends Versioned {
  researcher_id: string;
  secagg_id: string;
  sequence: number;
  success: boolean;
  node_id: string;
  msg: string;
  command: 'secagg';
}

export interface SecaggDeleteReply extends Versioned {
  researcher_id: string;
  secagg_id: string;
  sequence: number;
  success: boolean;
  node_id: string;
  msg: string;
  command: 'secagg-delete';
}

export interface AddScalarReply extends Versioned {
  researcher_id: string;
  node_id: string;
  job_id: string;
  train: boolean;
  test: boolean;
  test_on_local_updates: boolean;
  test_on_global_updates: boolean;
  /** metric name → value; a whole float read from the wire is a PyFloat (use numberOf()) */
  metric: Record<string, PyJsonValue>;
  epoch: number | null;
  total_samples: number;
  batch_samples: number;
  num_batches: number;
  num_samples_trained: number | null;
  iteration: number;
  command: 'add_scalar';
}

export interface LogMessage extends Versioned {
  command: 'log';
  level: string;
  /** a JSON-encoded object {asctime, node_id, name, level, message} */
  msg: string;
  node_id: string;
  researcher_id: string;
}

export interface ErrorMessage extends Versioned {
  command: 'error';
  /** the full ErrorNumbers string, see error-numbers.ts */
  errnum: string;
  node_id: string;
  extra_msg: string;
  researcher_id: string;
}

export type ResearcherToNodeMessage =
  | PingRequest
  | SearchRequest
  | ListRequest
  | TrainRequest
  | ApprovalRequest
  | TrainingPlanStatusRequest
  | SecaggRequest
  | SecaggDeleteRequest;

export type NodeToResearcherMessage =
  | PongReply
  | SearchReply
  | ListReply
  | TrainReply
  | ApprovalReply
  | TrainingPlanStatusReply
  | SecaggReply
  | SecaggDeleteReply
  | AddScalarReply
  | LogMessage
  | ErrorMessage;

export type Message = ResearcherToNodeMessage | NodeToResearcherMessage;

export type MessageOf<D extends Direction> = D extends 'researcher-to-node'
  ? ResearcherToNodeMessage
  : NodeToResearcherMessage;

export type ResearcherToNodeCommand = ResearcherToNodeMessage['command'];
export type NodeToResearcherCommand = NodeToResearcherMessage['command'];

export const RESEARCHER_TO_NODE_COMMANDS: readonly ResearcherToNodeCommand[] = [
  'ping',
  'search',
  'list',
  'train',
  'approval',
  'training-plan-status',
  'secagg',
  'secagg-delete',
];

export const NODE_TO_RESEARCHER_COMMANDS: readonly NodeToResearcherCommand[] = [
  'pong',
  'search',
  'list',
  'train',
  'approval',
  'training-plan-status',
  'secagg',
  'secagg-delete',
  'add_scalar',
  'log',
  'error',
];

/**
 * Answers to the researcher requests a node handles at once (everything but `train`): ping, search, list,
 * approval, training-plan-status, secagg and secagg-delete. Each function takes the request and returns the
 * reply (or nothing, for a search with no match), so they are testable without a broker.
 */
import type {
  ApprovalReply, ApprovalRequest, ListReply, ListRequest, PingRequest, PongReply, SearchReply, SearchRequest,
  SecaggDeleteReply, SecaggDeleteRequest, SecaggReply, SecaggRequest, TrainingPlanStatusReply,
  TrainingPlanStatusRequest, DatasetEntry as WireDatasetEntry, NodeToResearcherMessage, ResearcherToNodeMessage,
  TrainRequest,
} from '../src/protocol/messages';
import { listView, searchView } from './datasets';
import { readPlanSource } from './plan-source';
import type { NodeContext } from './node-context';
import { urlForMessage } from '../src/transport/url';
import { RepositoryError } from '../src/transport/repository';

function answerPing(req: PingRequest, ctx: NodeContext): PongReply {
  return { researcher_id: req.researcher_id, node_id: ctx.nodeId, success: true, sequence: req.sequence, command: 'pong' };
}

/** Fed-BioMed nodes stay silent when no dataset matches a search. */
function answerSearch(req: SearchRequest, ctx: NodeContext): SearchReply | undefined {
  const found = ctx.datasets.search(req.tags);
  if (found.length === 0) return undefined;
  return { ...datasetsReply(req, ctx, found.map((d) => searchView(d))), command: 'search' };
}

function answerList(req: ListRequest, ctx: NodeContext): ListReply {
  return { ...datasetsReply(req, ctx, ctx.datasets.list().map((d) => listView(d))), command: 'list' };
}

/** The body of a search or list reply, in the wire key order (command last). */
function datasetsReply(req: SearchRequest | ListRequest, ctx: NodeContext, views: object[]) {
  return {
    researcher_id: req.researcher_id,
    success: true,
    databases: views as WireDatasetEntry[],
    node_id: ctx.nodeId,
    count: views.length,
  };
}

/** An approval reply's `status` once the plan was downloaded: the HTTP status of that download. */
const HTTP_OK = 200;

/** Downloads the plan, identifies it and records it as Pending (unless known). `status` is the download's. */
async function answerApproval(req: ApprovalRequest, ctx: NodeContext): Promise<ApprovalReply> {
  const reply = (status: number, success: boolean): ApprovalReply => ({
    researcher_id: req.researcher_id, node_id: ctx.nodeId, sequence: req.sequence, status, command: 'approval', success,
  });
  // Checked before anything is downloaded or stored: an approval request needs neither approval nor a dataset,
  // so it is what anyone on the broker can send.
  const description = typeof req.description === 'string' ? req.description : '';
  if (description.length > ctx.limits.maxDescriptionChars) {
    ctx.log.warning(`Training plan approval request from ${req.researcher_id} refused: description of ` +
      `${description.length} characters, over this node's limit of ${ctx.limits.maxDescriptionChars}`);
    return reply(0, false);
  }
  const pending = ctx.plans.list().filter((p) => p.training_plan_status === 'Pending').length;
  if (pending >= ctx.limits.maxPendingPlans) {
    ctx.log.warning(`Training plan approval request from ${req.researcher_id} refused: ${pending} plans already ` +
      `wait for a review (this node's limit); review them with "fedbiomed-ts node plan list"`);
    return reply(0, false);
  }
  let text: string;
  try {
    text = (await ctx.download(req.training_plan_url, 'plan')).toString('utf8');
  } catch (err) {
    ctx.log.error(`Cannot download training plan for approval from ${urlForMessage(req.training_plan_url)}: ${(err as Error).message}`);
    return reply(err instanceof RepositoryError ? err.status ?? 0 : 0, false);
  }
  const reading = readPlanSource(text);
  if (!reading.ok) {
    ctx.log.warning(`Training plan approval request from ${req.researcher_id} refused: ${reading.reason}`);
    return reply(HTTP_OK, false);
  }
  try {
    const { entry, created } = ctx.plans.registerRequested({
      hash: reading.hash, source: text, description: req.description, researcherId: req.researcher_id,
    });
    ctx.log.info(created
      ? `Training plan ${entry.training_plan_id} received from ${req.researcher_id}: Pending, waiting for a review ` +
        `("fedbiomed-ts node plan approve ${entry.training_plan_id}")`
      : `Training plan already known as ${entry.training_plan_id}, status ${entry.training_plan_status}`);
    return reply(HTTP_OK, true);
  } catch (err) {
    ctx.log.error(`Cannot store training plan for approval: ${(err as Error).message}`);
    return reply(HTTP_OK, false);
  }
}

const STATUS_MESSAGES: Record<string, string> = {
  Approved: 'Training plan has been approved by the node, training can start',
  Pending: 'Training plan is pending: waiting for a review',
  Rejected: 'Training plan has been rejected by the node, training is not possible',
  'Not Registered': 'Unknown training plan not in database (status Not Registered)',
};
const NO_APPROVAL_MESSAGE = 'This node does not require training plan approval (maybe for debugging purposes).';

async function answerPlanStatus(req: TrainingPlanStatusRequest, ctx: NodeContext): Promise<TrainingPlanStatusReply> {
  const reply = (fields: Pick<TrainingPlanStatusReply, 'success' | 'approval_obligation' | 'status' | 'msg'>):
    TrainingPlanStatusReply => ({
    researcher_id: req.researcher_id, node_id: ctx.nodeId, job_id: req.job_id, ...fields,
    training_plan_url: req.training_plan_url, command: 'training-plan-status',
  });
  let text: string;
  try {
    text = (await ctx.download(req.training_plan_url, 'plan')).toString('utf8');
  } catch (err) {
    return reply({ success: false, approval_obligation: false, status: 'Error',
      msg: `FB604: repository error: cannot download training plan: ${(err as Error).message}` });
  }
  const reading = readPlanSource(text);
  if (!reading.ok) {
    return reply({ success: false, approval_obligation: false, status: 'Error', msg: `FB606: model manager error: ${reading.reason}` });
  }
  const status = ctx.plans.byHash(reading.hash)?.training_plan_status ?? 'Not Registered';
  return reply({
    success: true,
    approval_obligation: ctx.approval,
    status,
    msg: ctx.approval ? STATUS_MESSAGES[status] : NO_APPROVAL_MESSAGE,
  });
}

const SECAGG_UNSUPPORTED =
  'FB318: Secure aggregation setup error: secure aggregation is not supported by this fedbiomed-ts node';

function answerSecagg(req: SecaggRequest, ctx: NodeContext): SecaggReply {
  ctx.log.warning(`Secure aggregation request ${req.secagg_id} refused: not supported by this node`);
  return { researcher_id: req.researcher_id, secagg_id: req.secagg_id, sequence: req.sequence, success: false,
    node_id: ctx.nodeId, msg: SECAGG_UNSUPPORTED, command: 'secagg' };
}

function answerSecaggDelete(req: SecaggDeleteRequest, ctx: NodeContext): SecaggDeleteReply {
  return { researcher_id: req.researcher_id, secagg_id: req.secagg_id, sequence: req.sequence, success: false,
    node_id: ctx.nodeId, msg: 'FB321: Secure aggregation delete error: secure aggregation is not supported by this node',
    command: 'secagg-delete' };
}

/** Every request but `train` (which goes to the task queue): answered at once by the table below. */
export type ImmediateRequest = Exclude<ResearcherToNodeMessage, TrainRequest>;

type Answer<R extends ImmediateRequest> = (req: R, ctx: NodeContext) =>
  NodeToResearcherMessage | undefined | Promise<NodeToResearcherMessage | undefined>;

/**
 * One answer per researcher → node command (the command list is generated from the schemas): a new request message
 * that has no entry here does not compile.
 */
const ANSWERS: { [C in ImmediateRequest['command']]: Answer<Extract<ImmediateRequest, { command: C }>> } = {
  ping: answerPing,
  search: answerSearch,
  list: answerList,
  approval: answerApproval,
  'training-plan-status': answerPlanStatus,
  secagg: answerSecagg,
  'secagg-delete': answerSecaggDelete,
};

/** The reply to `req`, or undefined when the node stays silent (a search with no match). */
export async function answerRequest(req: ImmediateRequest, ctx: NodeContext): Promise<NodeToResearcherMessage | undefined> {
  // The table pairs each command with its request type; TypeScript cannot follow that pairing through an index.
  const answer = ANSWERS[req.command] as Answer<ImmediateRequest>;
  return answer(req, ctx);
}

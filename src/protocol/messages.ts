/**
 * TypeScript shapes of the Fed-BioMed v4.5.0 wire messages. The interfaces, the two unions, the command lists and
 * the schema table are generated from schemas/messages/** (messages.generated.ts, `npm run gen:messages`): the
 * schema is the one definition of a message. This module adds the names derived from them. Conventions:
 *  - `protocol_version` is optional on input to serializeMessage (always overwritten with PROTOCOL_VERSION) and
 *    always present on what parseMessage returns;
 *  - fields the schema declares as Python floats are plain `number`s (serializeMessage writes them as floats,
 *    parseMessage returns them as numbers even when the wire had `0.0`);
 *  - free-form dicts (`model_args`, `timing`, `metric`, …) are PyJsonObject: a whole float in them is a PyFloat.
 */
import type {
  Direction, NodeToResearcherMessage, PingReply, ResearcherToNodeMessage,
} from './messages.generated';

export {
  DIRECTIONS, NODE_TO_RESEARCHER_COMMANDS, RESEARCHER_TO_NODE_COMMANDS,
} from './messages.generated';
export type {
  AddScalarReply, ApprovalReply, ApprovalRequest, DatasetEntry, Direction, ErrorMessage, ListReply, ListRequest,
  LogMessage, NodeToResearcherMessage, PingRequest, ResearcherToNodeMessage, SearchReply, SearchRequest,
  SecaggDeleteReply, SecaggDeleteRequest, SecaggReply, SecaggRequest, TrainReply, TrainRequest,
  TrainingPlanStatusReply, TrainingPlanStatusRequest, WireTrainingArgs,
} from './messages.generated';

/** The reply to `ping`, by its command name (Fed-BioMed's class is PingReply). */
export type PongReply = PingReply;

export type Message = ResearcherToNodeMessage | NodeToResearcherMessage;

export type MessageOf<D extends Direction> = D extends 'researcher-to-node'
  ? ResearcherToNodeMessage
  : NodeToResearcherMessage;

export type NodeToResearcherCommand = NodeToResearcherMessage['command'];

/**
 * MQTT topics and subscriptions exactly as Fed-BioMed v4.5 uses them (fedbiomed/common/messaging.py):
 * a node listens on `general/nodes` (broadcasts) and `general/<node_id>` (requests to it); a researcher listens on
 * `general/researcher` (replies and errors), `general/monitoring` (add_scalar) and `general/logger` (log).
 */
import type { Direction } from './wire';

const TOPIC_PREFIX = 'general/';
export const NODES_TOPIC = 'general/nodes';
export const RESEARCHER_TOPIC = 'general/researcher';
export const MONITORING_TOPIC = 'general/monitoring';
export const LOGGER_TOPIC = 'general/logger';

/** Topic levels under `general/` that have a fixed meaning, so no node may take them as its id. */
const RESERVED_LEVELS = new Set(['nodes', 'researcher', 'monitoring', 'logger']);

export type Role = 'node' | 'researcher';

/** Why `nodeId` cannot be a node id, or undefined when it can. */
export function nodeIdProblem(nodeId: string): string | undefined {
  if (typeof nodeId !== 'string' || nodeId.length === 0) return 'node id must be a non-empty string';
  if (/[/+#\u0000]/.test(nodeId)) {
    return `node id ${JSON.stringify(nodeId)} must be a single MQTT topic level (no "/", "+", "#" or NUL)`;
  }
  if (RESERVED_LEVELS.has(nodeId)) {
    return `node id ${JSON.stringify(nodeId)} is reserved: general/${nodeId} is a Fed-BioMed topic`;
  }
  if (Buffer.byteLength(nodeId, 'utf8') > 1024) return 'node id is longer than 1024 bytes';
  return undefined;
}

export function assertValidNodeId(nodeId: string): void {
  const problem = nodeIdProblem(nodeId);
  if (problem) throw new Error(problem);
}

export function nodeTopic(nodeId: string): string {
  assertValidNodeId(nodeId);
  return TOPIC_PREFIX + nodeId;
}

/** Topics a component subscribes to, in the order Fed-BioMed subscribes them. */
export function subscriptionsFor(role: Role, nodeId?: string): string[] {
  if (role === 'researcher') return [RESEARCHER_TOPIC, MONITORING_TOPIC, LOGGER_TOPIC];
  if (nodeId === undefined) throw new Error('a node needs a node id to subscribe to its own topic');
  return [NODES_TOPIC, nodeTopic(nodeId)];
}

/** Direction of the messages a role receives, and of those it sends. */
export function inboundDirection(role: Role): Direction {
  return role === 'node' ? 'researcher-to-node' : 'node-to-researcher';
}
export function outboundDirection(role: Role): Direction {
  return role === 'node' ? 'node-to-researcher' : 'researcher-to-node';
}

/** Topics nodes publish on; everything else under general/ carries researcher requests. */
const NODE_PUBLISHED_TOPICS = new Set([RESEARCHER_TOPIC, MONITORING_TOPIC, LOGGER_TOPIC]);

/** Which way a message on `topic` travels (used by tools that listen to every topic, such as `network spy`). */
export function directionOfTopic(topic: string): Direction {
  return NODE_PUBLISHED_TOPICS.has(topic) ? 'node-to-researcher' : 'researcher-to-node';
}

/** Why `topic` cannot be published to, or undefined. */
export function publishTopicProblem(topic: string): string | undefined {
  if (typeof topic !== 'string' || topic.length === 0) return 'topic must be a non-empty string';
  if (/[+#\u0000]/.test(topic)) return `topic ${JSON.stringify(topic)} contains a wildcard or NUL`;
  return undefined;
}

/**
 * Public API of the transport layer: MQTT messaging, file repository client, embedded network.
 * @module fedbiomed-ts/network
 */
export { Messaging, parseInbound, payloadExcerpt } from './mqtt';
export type {
  MessagingOptions,
  MessagingRole,
  MessageHandler,
  MessageContext,
  MessagingEvents,
  InvalidMessage,
  NodeTarget,
} from './mqtt';
export { MqttConnection, parseBrokerUrl, redactBrokerUrl } from './connection';
export type { ConnectionOptions, ConnectionEvents } from './connection';
export {
  NODES_TOPIC,
  RESEARCHER_TOPIC,
  MONITORING_TOPIC,
  LOGGER_TOPIC,
  nodeIdProblem,
  assertValidNodeId,
  nodeTopic,
  subscriptionsFor,
  directionOfTopic,
} from './topics';
export type { Role } from './topics';
export { protocolCodec } from './wire';
export type { WireCodec, WireMessage, ParseResult, Direction } from './wire';
export { RepositoryClient, RepositoryError, parseHttpUrl } from './repository';
export type { RepositoryClientOptions, RepositoryErrorKind, DownloadOptions, TransferOptions } from './repository';
export { isValidRepositoryUrl, assertValidRepositoryUrl } from './url';
export { startBroker } from './broker';
export type { EmbeddedBroker, EmbeddedBrokerOptions } from './broker';
export { startRepositoryServer, DEFAULT_MAX_UPLOAD_BYTES } from './repository-server';
export type { RepositoryServer, RepositoryServerOptions } from './repository-server';
export { startEmbeddedNetwork, advertisedHostFor } from './embedded';
export type { EmbeddedNetwork, EmbeddedNetworkOptions } from './embedded';
export { startEmbeddedV6Network } from './embedded-v6';
export type { EmbeddedV6Network, EmbeddedV6NetworkOptions } from './embedded-v6';
export { startSpy, inspectTraffic, formatSpyLine } from './spy';
export type { SpyRecord, SpyOptions } from './spy';
export { consoleLogger, silentLogger, memoryLogger, describeError } from './logger';
export type { Logger, LogLevel, MemoryLogger } from './logger';
export { backoffDelay, DEFAULT_BACKOFF } from './backoff';
export type { BackoffOptions } from './backoff';

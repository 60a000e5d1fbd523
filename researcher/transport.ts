/**
 * The researcher's transport seam: what `Researcher` (and so `Experiment`, the rounds and the aggregators) needs
 * from a network, whatever protocol it speaks. Messages travel in the v4.5 shapes of src/protocol; files go
 * through a `FileRepository`. Two implementations: Fed-BioMed v4.5 (MQTT `Messaging` + HTTP repository, the
 * default) and Fed-BioMed v6 (gRPC server, researcher/v6-link.ts), as node-agent/transport.ts on the node side.
 */
import type { WireMessage } from '../src/transport/wire';
import type { FileRepository } from './network';

export type ResearcherProtocol = 'v4.5' | 'v6';

/** The message side of a network: v4.5 shapes in and out. src/transport's MQTT `Messaging` is one. */
export interface ResearcherBus {
  /** Sends a researcher → node message: to every node when `nodeId` is absent. */
  send(message: WireMessage, nodeId?: string): Promise<void>;
  /** Adds a handler for every valid inbound message; returns a function that removes it. */
  onMessage(handler: (message: WireMessage) => void): () => void;
  /**
   * Connection losses, when the transport can lose what was sent meanwhile (MQTT QoS 0: the round asks again).
   * Absent where nothing is lost silently (v6: nodes poll the researcher's server and replies are streamed).
   */
  on?(event: 'offline', handler: () => void): unknown;
  close(): Promise<void>;
}

/** An open connection: the bus, the file store and, when the network gives one, the researcher's id. */
export interface ResearcherLink {
  bus: ResearcherBus;
  repository: FileRepository;
  /** v6: the id in the researcher's certificate (nodes check it). */
  researcherId?: string;
  protocol: ResearcherProtocol;
}

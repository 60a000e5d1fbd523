/**
 * The one place where the transport layer meets the message layer (src/protocol). Everything in src/transport
 * parses and serialises through a `WireCodec`; the default one is src/protocol's `parseMessage` /
 * `serializeMessage`, so every inbound message is validated against the v4.5 schemas before any handler sees it.
 */
import type { Direction, Message } from '../protocol/messages';

export type { Direction };

/** A validated Fed-BioMed message (one of the 19 v4.5 message shapes; `command` tells which). */
export type WireMessage = Message;

export type ParseResult = { ok: true; message: WireMessage } | { ok: false; error: string; field?: string };

export interface WireCodec {
  /** Never throws: bad input gives `{ ok: false, error }`. */
  parse(payload: string | Uint8Array, direction: Direction): ParseResult;
  /** Throws (ProtocolError) when the message is not valid for `direction`. */
  serialize(message: WireMessage, direction: Direction): string;
}

interface ProtocolModule {
  parseMessage(payload: string | Uint8Array, direction: Direction): ParseResult;
  serializeMessage(message: WireMessage, direction: Direction): string;
}

let protocolModule: ProtocolModule | undefined;

function loadProtocol(): ProtocolModule {
  if (!protocolModule) {
    // Loaded lazily so that a tool that never touches messages (e.g. `network start`) does not load ajv and the
    // schemas.
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    protocolModule = require('../protocol') as ProtocolModule;
  }
  return protocolModule;
}

/** The codec of src/protocol: schema validation, Python-compatible JSON. */
export const protocolCodec: WireCodec = {
  parse(payload, direction) {
    try {
      return loadProtocol().parseMessage(payload, direction);
    } catch (err: unknown) {
      // parseMessage promises never to throw; if it does, the message is still only dropped.
      return { ok: false, error: `message validator failed: ${(err as Error)?.message ?? String(err)}` };
    }
  },
  serialize(message, direction) {
    return loadProtocol().serializeMessage(message, direction);
  },
};

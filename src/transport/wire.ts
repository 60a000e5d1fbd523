/**
 * The one place where the transport layer meets the message layer (src/protocol). Everything in src/transport
 * parses and serialises through a `WireCodec`; the default one is src/protocol's `parseMessage` /
 * `serializeMessage`, so every inbound message is validated against the v4.5 schemas before any handler sees it.
 */
import { parseMessage, serializeMessage } from '../protocol';
import type { Direction, Message } from '../protocol';

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

/** The codec of src/protocol: schema validation, Python-compatible JSON. */
export const protocolCodec: WireCodec = {
  parse(payload, direction) {
    return parseMessage(payload, direction);
  },
  serialize(message, direction) {
    return serializeMessage(message as never, direction);
  },
};

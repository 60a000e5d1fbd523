/**
 * v6 framing: one application message per gRPC call, cut into `TaskResponse` / `TaskResult` chunks of at most
 * 3,999,967 bytes, `size` = number of chunks, `iteration` = 1-based index. Fed-BioMed concatenates until
 * `iteration == size` without checking anything; the assembler here checks every chunk, so a malformed sequence
 * (changed size, a gap, a repeat, too many chunks, too many bytes) is a clear error instead of garbage.
 */
import { FedbiomedTsError } from '../../errors';
import { V6_CHUNK_BYTES, type TaskChunk } from './grpc';

export class ChunkSequenceError extends FedbiomedTsError {}

/** Default ceiling for one reassembled message: 1 GiB (v6 itself has no ceiling; memory does). */
const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024 * 1024;

/** Cuts an encoded message into chunks, views on `bytes` (no copy). An empty message is one empty chunk. */
export function toChunks(bytes: Uint8Array, chunkBytes = V6_CHUNK_BYTES): TaskChunk[] {
  const size = Math.max(1, Math.ceil(bytes.byteLength / chunkBytes));
  const chunks: TaskChunk[] = [];
  for (let i = 0; i < size; i++) {
    const part = bytes.subarray(i * chunkBytes, Math.min(bytes.byteLength, (i + 1) * chunkBytes));
    chunks.push({ size, iteration: i + 1, bytes_: Buffer.from(part.buffer, part.byteOffset, part.byteLength) });
  }
  return chunks;
}

export interface AssemblerLimits {
  /** Largest reassembled message accepted (bytes). */
  maxMessageBytes?: number;
  /** Largest single chunk accepted (bytes); Fed-BioMed never sends more than V6_CHUNK_BYTES. */
  maxChunkBytes?: number;
}

/** Reassembles one message from its chunks, in order. `push` returns the whole message on the last chunk. */
export class ChunkAssembler {
  private parts: Buffer[] = [];
  private total = 0;
  private expectedSize: number | undefined;
  private readonly maxMessage: number;
  private readonly maxChunk: number;

  constructor(limits: AssemblerLimits = {}) {
    this.maxMessage = limits.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxChunk = limits.maxChunkBytes ?? V6_CHUNK_BYTES;
  }

  /** True when a message has started and is not complete. */
  get pending(): boolean {
    return this.expectedSize !== undefined;
  }

  push(chunk: TaskChunk): Buffer | undefined {
    const { size, iteration } = chunk;
    const bytes = chunk.bytes_ ?? Buffer.alloc(0);
    if (!Number.isInteger(size) || size < 1) throw new ChunkSequenceError(`chunk size ${size} is not a positive count`);
    const next = this.parts.length + 1;
    if (this.expectedSize === undefined) {
      if (size > Math.ceil(this.maxMessage / this.maxChunk)) {
        throw new ChunkSequenceError(`a message of ${size} chunks exceeds the ${this.maxMessage}-byte limit`);
      }
      this.expectedSize = size;
    } else if (size !== this.expectedSize) {
      throw new ChunkSequenceError(`chunk ${iteration} says ${size} chunks, the message started with ${this.expectedSize}`);
    }
    if (iteration !== next) {
      throw new ChunkSequenceError(`chunk ${iteration} of ${size} arrived where chunk ${next} was expected`);
    }
    if (bytes.byteLength > this.maxChunk) {
      throw new ChunkSequenceError(`chunk ${iteration} holds ${bytes.byteLength} bytes, more than ${this.maxChunk}`);
    }
    this.total += bytes.byteLength;
    if (this.total > this.maxMessage) {
      throw new ChunkSequenceError(`message exceeds ${this.maxMessage} bytes at chunk ${iteration} of ${size}`);
    }
    this.parts.push(bytes);
    if (iteration < size) return undefined;
    const whole = this.parts.length === 1 ? this.parts[0] : Buffer.concat(this.parts, this.total);
    this.parts = [];
    this.total = 0;
    this.expectedSize = undefined;
    return whole;
  }

  /** Throws when a stream ended in the middle of a message. */
  finish(): void {
    if (this.expectedSize !== undefined) {
      throw new ChunkSequenceError(
        `stream ended after chunk ${this.parts.length} of ${this.expectedSize}: the message is incomplete`);
    }
  }
}

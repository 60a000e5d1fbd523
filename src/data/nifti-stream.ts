/**
 * The uncompressed bytes of a `.nii` or `.nii.gz` file, read front to back on demand: a reader asks for the header
 * first, then skips to the voxels it wants, so memory holds one compressed chunk and the bytes asked for, never a
 * copy of the whole file. Gzip is recognised by its magic, whatever the file name.
 *
 * Inflation is fflate's streaming Gunzip (maintained, made for incremental inflation, synchronous): Node's zlib has
 * no synchronous streaming API, and the readers are synchronous. Nothing is inflated past what the reader asks
 * for, so a gzip bomb costs no more than the bytes its header announces.
 */
import * as fs from 'fs';
import { Gunzip } from 'fflate';
import { DataReadError } from './errors';

/** Compressed (or plain) bytes read from disk at a time. */
const CHUNK_BYTES = 1 << 20;
/**
 * Compressed bytes inflated at a time: deflate expands at most ~1032:1, so one step holds at most ~64 MiB even for
 * a gzip bomb, and the reader stops asking once it has what it needs (smaller steps cost time: fflate copies its
 * 32 KiB window at every step).
 */
const INFLATE_STEP = 64 * 1024;

export class NiftiByteStream {
  /** Uncompressed chunks not consumed yet (the first from `offset`). */
  private readonly pending: Uint8Array[] = [];
  private offset = 0;
  private buffered = 0;
  /** Uncompressed bytes consumed so far (read or skipped). */
  position = 0;
  private filePosition = 0;
  /** The compressed chunk read last, and how far it has been inflated. */
  private compressed: Uint8Array = new Uint8Array(0);
  private inflated = 0;
  private ended = false;
  private readonly gunzip: Gunzip | null;

  private constructor(readonly path: string, private readonly fd: number, readonly gzip: boolean, readonly fileSize: number) {
    this.gunzip = gzip ? new Gunzip((data) => this.keep(data)) : null;
  }

  /**
   * The most uncompressed bytes the file can hold: its size, or for gzip its size times deflate's largest expansion
   * (1032:1), so a header announcing more than that is refused before anything is allocated for it.
   */
  get maxBytes(): number {
    return this.gzip ? this.fileSize * 1032 + 1024 : this.fileSize;
  }

  /** Opens `path`; call close() when done (withNiftiStream does). */
  static open(path: string): NiftiByteStream {
    let fd: number;
    let magic: Buffer;
    let size: number;
    try {
      fd = fs.openSync(path, 'r');
      size = fs.fstatSync(fd).size;
      magic = Buffer.alloc(2);
      fs.readSync(fd, magic, 0, 2, 0);
    } catch (error) {
      throw new DataReadError(path, `cannot read NIfTI file (${(error as Error).message})`);
    }
    return new NiftiByteStream(path, fd, magic[0] === 0x1f && magic[1] === 0x8b, size);
  }

  close(): void {
    fs.closeSync(this.fd);
  }

  private keep(data: Uint8Array): void {
    if (data.length === 0) return;
    this.pending.push(data);
    this.buffered += data.length;
  }

  /** Reads the next chunk of the file from disk (into a fresh buffer: kept or inflated later). */
  private readChunk(): Uint8Array {
    const chunk = new Uint8Array(CHUNK_BYTES);
    let got: number;
    try {
      got = fs.readSync(this.fd, chunk, 0, CHUNK_BYTES, this.filePosition);
    } catch (error) {
      throw new DataReadError(this.path, `cannot read NIfTI file (${(error as Error).message})`);
    }
    this.filePosition += got;
    this.ended = got < CHUNK_BYTES;
    return got < CHUNK_BYTES ? chunk.slice(0, got) : chunk;
  }

  /** Makes more uncompressed bytes available; false at the end of the file. */
  private pull(): boolean {
    if (!this.gunzip) {
      if (this.ended) return false;
      const chunk = this.readChunk();
      this.keep(chunk);
      return chunk.length > 0;
    }
    if (this.inflated === this.compressed.length) {
      if (this.ended) return false;
      this.compressed = this.readChunk();
      this.inflated = 0;
    }
    const step = this.compressed.subarray(this.inflated, this.inflated + INFLATE_STEP);
    this.inflated += step.length;
    try {
      this.gunzip.push(step, this.ended && this.inflated === this.compressed.length);
    } catch (error) {
      throw new DataReadError(this.path, `corrupt or truncated gzip data (${(error as Error).message})`);
    }
    return true;
  }

  /** Makes `count` bytes available when the file holds them; returns how many are. */
  private fill(count: number): number {
    while (this.buffered - this.offset < count && this.pull()) { /* pulled */ }
    return Math.min(count, this.buffered - this.offset);
  }

  /**
   * The next `count` bytes (fewer only at the end of the file), as a Uint8Array at offset 0 of its own buffer when
   * copied, so typed views over it are aligned.
   */
  read(count: number): Uint8Array {
    const available = this.fill(count);
    const first = this.pending[0];
    if (first && this.offset + available <= first.length && (first.byteOffset + this.offset) % 8 === 0) {
      const view = first.subarray(this.offset, this.offset + available);
      this.consume(available);
      return view;
    }
    const out = new Uint8Array(available);
    let at = 0;
    while (at < available) {
      const head = this.pending[0];
      const take = Math.min(head.length - this.offset, available - at);
      out.set(head.subarray(this.offset, this.offset + take), at);
      at += take;
      this.consume(take);
    }
    return out;
  }

  /** Skips `count` bytes (inflating them without keeping them); returns how many the file held. */
  skip(count: number): number {
    let left = count;
    while (left > 0) {
      const available = this.fill(Math.min(left, CHUNK_BYTES));
      if (available === 0) break;
      this.consume(available);
      left -= available;
    }
    return count - left;
  }

  private consume(count: number): void {
    this.offset += count;
    this.position += count;
    while (this.pending.length > 0 && this.offset >= this.pending[0].length) {
      this.offset -= this.pending[0].length;
      this.buffered -= this.pending[0].length;
      this.pending.shift();
    }
  }
}

/** Runs `read` on the file's byte stream and closes it, whatever happens. */
export function withNiftiStream<T>(path: string, read: (stream: NiftiByteStream) => T): T {
  const stream = NiftiByteStream.open(path);
  try {
    return read(stream);
  } finally {
    stream.close();
  }
}

/**
 * The uncompressed bytes of a `.nii` or `.nii.gz` file, read front to back on demand: a reader asks for the header
 * first, then skips to the voxels it wants, so memory holds a few chunks and the bytes asked for, never a copy of the
 * whole file. Gzip is recognised by its magic, whatever the file name.
 *
 * Gzip is inflated by Node's native zlib in a worker, handed over chunk by chunk to this synchronous reader
 * (gunzip-stream.ts; the readers are synchronous). Only a few chunks are inflated past what the reader asks for, so a
 * gzip bomb costs no more than the bytes its header announces.
 */
import * as fs from 'fs';
import { DataReadError } from './errors';
import { GunzipStream, GunzipStreamError } from './gunzip-stream';

/** Plain (.nii) bytes read from disk at a time (into one reused buffer). */
const CHUNK_BYTES = 1 << 20;

export class NiftiByteStream {
  /** The chunk read last (a view of a reused buffer or of the inflating ring) and how much of it was consumed. */
  private chunk: Uint8Array = new Uint8Array(0);
  private at = 0;
  /** Where read() assembles bytes that span chunks; reused, so what read() returns lasts until the next call. */
  private scratch: Uint8Array = new Uint8Array(0);
  /** Uncompressed bytes consumed so far (read or skipped). */
  position = 0;
  private filePosition = 0;
  private readonly plain: Uint8Array | null;
  private readonly gunzip: GunzipStream | null;

  private constructor(readonly path: string, private readonly fd: number, readonly gzip: boolean, readonly fileSize: number) {
    this.gunzip = gzip ? GunzipStream.open(path) : null;
    this.plain = gzip ? null : new Uint8Array(Math.min(CHUNK_BYTES, fileSize));
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
    try {
      return new NiftiByteStream(path, fd, magic[0] === 0x1f && magic[1] === 0x8b, size);
    } catch (error) {
      fs.closeSync(fd);
      throw error;
    }
  }

  close(): void {
    this.gunzip?.close();
    fs.closeSync(this.fd);
  }

  /** Moves to the next chunk of uncompressed bytes; false at the end of the file. */
  private nextChunk(): boolean {
    const chunk = this.gunzip ? this.inflated() : this.readPlain();
    if (!chunk || chunk.length === 0) return false;
    this.chunk = chunk;
    this.at = 0;
    return true;
  }

  private inflated(): Uint8Array | null {
    try {
      return (this.gunzip as GunzipStream).next();
    } catch (error) {
      if (!(error instanceof GunzipStreamError)) throw error;
      throw new DataReadError(this.path, error.kind === 'gzip' ? `corrupt or truncated gzip data (${error.message})`
        : `cannot read NIfTI file (${error.message})`);
    }
  }

  private readPlain(): Uint8Array {
    const buffer = this.plain as Uint8Array;
    let got: number;
    try {
      got = fs.readSync(this.fd, buffer, 0, buffer.length, this.filePosition);
    } catch (error) {
      throw new DataReadError(this.path, `cannot read NIfTI file (${(error as Error).message})`);
    }
    this.filePosition += got;
    return buffer.subarray(0, got);
  }

  /**
   * The next `count` bytes (fewer only at the end of the file). They are valid until the next read() or skip() (they
   * may be a view of a reused buffer): decode or copy them at once. 8-byte aligned, so typed views over them work.
   */
  read(count: number): Uint8Array {
    if (this.at === this.chunk.length) this.nextChunk();
    if (this.chunk.length - this.at >= count && (this.chunk.byteOffset + this.at) % 8 === 0) {
      const view = this.chunk.subarray(this.at, this.at + count);
      this.consume(count);
      return view;
    }
    if (this.scratch.length < count) this.scratch = new Uint8Array(count);
    let got = 0;
    while (got < count && (this.at < this.chunk.length || this.nextChunk())) {
      const take = Math.min(this.chunk.length - this.at, count - got);
      this.scratch.set(this.chunk.subarray(this.at, this.at + take), got);
      got += take;
      this.consume(take);
    }
    return this.scratch.subarray(0, got);
  }

  /** Skips `count` bytes (inflating them without keeping them); returns how many the file held. */
  skip(count: number): number {
    let left = count;
    while (left > 0 && (this.at < this.chunk.length || this.nextChunk())) {
      const take = Math.min(this.chunk.length - this.at, left);
      this.consume(take);
      left -= take;
    }
    return count - left;
  }

  private consume(count: number): void {
    this.at += count;
    this.position += count;
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

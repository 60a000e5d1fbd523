/**
 * POST /upload/ of the embedded repository: the `file` part of a multipart body streamed to a temporary file with
 * the size limit enforced as bytes arrive, then linked to its final name under media/uploads/YYYY/MM/DD/.
 */
import { randomUUID } from 'crypto';
import * as fs from 'fs';
import type * as http from 'http';
import * as path from 'path';
import { asHttpError, headerValue, HttpError } from './repository-http';
import { describeError } from './logger';
import { MultipartParser, type PartHeaders } from './multipart';
import { candidatePaths, uploadDirectory, UploadNameError, validUploadName } from './upload-names';

/** Room for the multipart framing around the file (boundaries, part headers, small extra fields). */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;

export interface ReceivedFile {
  tempPath: string;
  name: string;
  size: number;
}

export class UploadStore {
  constructor(
    private readonly mediaRoot: string,
    private readonly incomingDir: string,
    readonly maxUploadBytes: number,
  ) {}

  /** The refusal decided from the headers alone (so the body is never read), if any. */
  refusalFromHeaders(req: http.IncomingMessage): HttpError | undefined {
    const length = Number(headerValue(req, 'content-length') ?? NaN);
    if (Number.isFinite(length) && length > this.maxUploadBytes + MULTIPART_OVERHEAD_BYTES) {
      return this.tooLarge(`Content-Length ${length} bytes`);
    }
    return undefined;
  }

  private tooLarge(what: string): HttpError {
    return new HttpError(413, {
      detail: `Upload too large: ${what} exceeds this repository's limit of ${this.maxUploadBytes} bytes per file.`,
    });
  }

  /** Streams the `file` part of the body to a temporary file, enforcing the limits as bytes arrive. */
  receive(req: http.IncomingMessage, boundary: string): Promise<ReceivedFile> {
    return new Promise((resolve, reject) => {
      const tempPath = path.join(this.incomingDir, `${randomUUID()}.part`);
      let out: fs.WriteStream | undefined;
      let name: string | undefined;
      let inFilePart = false;
      let size = 0;
      let bodyBytes = 0;
      let failed = false;

      const fail = (err: HttpError) => {
        if (failed) return;
        failed = true;
        req.pause();
        const removeTemp = () => fs.rm(tempPath, { force: true }, () => undefined);
        if (out) {
          // Remove the partial file only once the stream has let go of it (it may still be opening).
          out.once('close', removeTemp);
          out.destroy();
        } else {
          removeTemp();
        }
        reject(err);
      };

      const parser = new MultipartParser(boundary, {
        onPartBegin(headers: PartHeaders) {
          if (headers.name !== 'file') return;
          if (out) throw new HttpError(400, { file: ['Send exactly one "file" part.'] });
          if (headers.filename === undefined) {
            throw new HttpError(400, {
              file: ['The submitted data was not a file. Check the encoding type on the form.'],
            });
          }
          try {
            name = validUploadName(headers.filename);
          } catch (err) {
            if (err instanceof UploadNameError) throw new HttpError(400, { file: [err.message] });
            throw err;
          }
          inFilePart = true;
          out = fs.createWriteStream(tempPath, { flags: 'wx' });
          out.on('error', (err) => fail(new HttpError(500, { detail: `cannot store the upload: ${describeError(err)}` })));
        },
        onPartData: (chunk: Buffer) => {
          if (!inFilePart || !out) return;
          size += chunk.length;
          if (size > this.maxUploadBytes) throw this.tooLarge('the file');
          if (!out.write(chunk)) {
            req.pause();
            out.once('drain', () => {
              if (!failed) req.resume();
            });
          }
        },
        onPartEnd() {
          inFilePart = false;
        },
      });

      const feed = (chunk: Buffer) => {
        if (failed) return;
        bodyBytes += chunk.length;
        try {
          if (bodyBytes > this.maxUploadBytes + MULTIPART_OVERHEAD_BYTES) throw this.tooLarge('the request body');
          parser.write(chunk);
        } catch (err) {
          fail(asHttpError(err));
        }
      };

      req.on('data', feed);
      req.on('aborted', () => fail(new HttpError(400, { detail: 'upload aborted by the client' })));
      req.on('error', (err) => fail(new HttpError(400, { detail: `upload failed: ${describeError(err)}` })));
      req.on('end', () => {
        if (failed) return;
        try {
          parser.end();
        } catch (err) {
          return fail(asHttpError(err));
        }
        if (!out || name === undefined) return fail(new HttpError(400, { file: ['No file was submitted.'] }));
        if (size === 0) return fail(new HttpError(400, { file: ['The submitted file is empty.'] }));
        const storedName = name;
        out.end(() => {
          if (!failed) resolve({ tempPath, name: storedName, size });
        });
      });
    });
  }

  /**
   * Links the received file to its final name (and removes the temporary one); a hard link fails when the name
   * exists, so two uploads never share one. Returns the path below the media folder.
   */
  async store(received: ReceivedFile, now: Date): Promise<string> {
    try {
      const directory = uploadDirectory(now);
      await fs.promises.mkdir(path.join(this.mediaRoot, directory), { recursive: true });
      for (const candidate of candidatePaths(directory, received.name)) {
        try {
          await fs.promises.link(received.tempPath, path.join(this.mediaRoot, candidate));
          return candidate;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
      throw new Error('unreachable: candidate names are endless');
    } finally {
      await fs.promises.rm(received.tempPath, { force: true });
    }
  }
}

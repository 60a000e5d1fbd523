/**
 * Client of a Fed-BioMed v4.5 file repository (Fed-BioMed's Django server, or ours): uploads with
 * `POST <uploadsUrl>` (multipart field `file`) and downloads any http(s) URL. Both retry with backoff on network
 * errors and 5xx answers (never on 4xx: asking again cannot help); downloads stop at a size cap, before reading
 * when Content-Length already says too much. Every failure is a RepositoryError naming the URL and the cause.
 */
import axios, { AxiosError, type AxiosResponse } from 'axios';
import FormData from 'form-data';
import { once } from 'events';
import * as fs from 'fs';
import * as https from 'https';
import * as tlsRoots from 'tls';
import * as path from 'path';
import { Readable } from 'stream';
import { backoffDelay, sleep, type BackoffOptions } from './backoff';
import { describeError, silentLogger, type Logger } from './logger';
import { isValidRepositoryUrl, urlForMessage } from './url';
import { FedbiomedTsError } from '../errors';

/** What went wrong, coarsely: callers map it to Fed-BioMed error numbers or replies. */
export type RepositoryErrorKind =
  | 'bad-url' // not an http(s) URL
  | 'foreign-origin' // downloads restricted to the repository: another origin, or a redirect (not followed)
  | 'unreachable' // connection refused / reset / DNS failure
  | 'timeout'
  | 'http-status' // the server answered with a status other than the expected one
  | 'too-large' // over the size cap
  | 'bad-response' // upload answer not the JSON a repository gives
  | 'local-file'; // the file to upload cannot be read

export class RepositoryError extends FedbiomedTsError {
  override readonly errnum = 'FB200' as const;
  constructor(
    message: string,
    readonly kind: RepositoryErrorKind,
    readonly url: string,
    readonly status?: number,
  ) {
    super(message);
  }

  /** Fed-BioMed's error number for this failure (FB201 unreachable, FB202 404, FB203 other status, FB200 other). */
  get errorCode(): 'FB200' | 'FB201' | 'FB202' | 'FB203' {
    if (this.kind === 'unreachable' || this.kind === 'timeout') return 'FB201';
    if (this.kind === 'http-status') return this.status === 404 ? 'FB202' : 'FB203';
    return 'FB200';
  }

  /** Worth asking again: the network or the server may get better. */
  get retryable(): boolean {
    return (
      this.kind === 'unreachable' ||
      this.kind === 'timeout' ||
      (this.kind === 'http-status' && this.status !== undefined && this.status >= 500)
    );
  }
}

interface TlsFiles {
  /** PEM file of the certificate authority to trust (besides the system's). */
  caFile?: string;
  /** PEM client certificate and key. */
  certFile?: string;
  keyFile?: string;
}

/** An https agent trusting `tls.caFile` and presenting the client certificate, or undefined when none is given. */
function httpsAgentFor(tls: TlsFiles | undefined): https.Agent | undefined {
  if (!tls || (!tls.caFile && !tls.certFile && !tls.keyFile)) return undefined;
  const read = (file: string, what: string) => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new RepositoryError(`cannot read the ${what} file ${file}: ${describeError(err)}`, 'local-file', file);
    }
  };
  return new https.Agent({
    // Node's `ca` replaces the system's trust store: keep the system's authorities next to the network's.
    ...(tls.caFile ? { ca: [...tlsRoots.rootCertificates, read(tls.caFile, 'CA')] } : {}),
    ...(tls.certFile ? { cert: read(tls.certFile, 'client certificate') } : {}),
    ...(tls.keyFile ? { key: read(tls.keyFile, 'client key') } : {}),
  });
}

export interface TransferOptions {
  /** Deadline of one attempt, whole body included, in ms. */
  timeoutMs?: number;
  /** Retries after the first attempt (network errors and 5xx only). */
  retries?: number;
}

export interface DownloadOptions extends TransferOptions {
  /** Largest body accepted, in bytes. */
  maxBytes?: number;
  /**
   * Time for the whole download, every retry and backoff included (ms); each attempt gets what is left, at most
   * its own timeout. Without it, retries multiply the attempt timeout.
   */
  deadlineMs?: number;
}

export interface RepositoryClientOptions {
  /** Fed-BioMed's UPLOADS_URL, e.g. http://localhost:8844/upload/ */
  uploadsUrl: string;
  /** Upload deadline per attempt. Default 10 min. */
  uploadTimeoutMs?: number;
  /** Download deadline per attempt. Default 10 min. */
  downloadTimeoutMs?: number;
  /** Download size cap. Default 2 GiB. */
  maxDownloadBytes?: number;
  /** Retries after a failed attempt. Default 3. */
  retries?: number;
  /**
   * 'uploads': download only from the origin (scheme, host, port) of `uploadsUrl`, and follow no redirect: a URL
   * received from the network cannot make us fetch anything else (other ports, loopback aliases, internal
   * services). The error then names neither the foreign host nor anything it answered. Default 'any'.
   */
  downloadFrom?: 'uploads' | 'any';
  /** For https: the CA that signed the repository's certificate, and a client certificate when it requires one. */
  tls?: TlsFiles;
  retryBackoff?: BackoffOptions;
  logger?: Logger;
}

const DEFAULTS = {
  uploadTimeoutMs: 10 * 60_000,
  downloadTimeoutMs: 10 * 60_000,
  maxDownloadBytes: 2 * 1024 * 1024 * 1024,
  retries: 3,
  retryBackoff: { initialDelayMs: 500, maxDelayMs: 8000, factor: 2 },
};
/** An upload answer is a few hundred bytes of JSON. */
const MAX_UPLOAD_ANSWER_BYTES = 1024 * 1024;

/** Parses `url` and checks it is http(s), or throws a 'bad-url' RepositoryError. */
export function parseHttpUrl(url: string, what: string): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RepositoryError(`${what} ${JSON.stringify(urlForMessage(url))} is not a URL`, 'bad-url', String(url));
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new RepositoryError(`${what} ${urlForMessage(url)} is not an http(s) URL`, 'bad-url', url);
  }
  return parsed;
}

export class RepositoryClient {
  readonly uploadsUrl: string;
  private readonly logger: Logger;
  private readonly settings: typeof DEFAULTS;
  private readonly onlyOrigin: string | undefined;
  private readonly httpsAgent: https.Agent | undefined;

  constructor(options: RepositoryClientOptions) {
    parseHttpUrl(options.uploadsUrl, 'uploads URL');
    this.uploadsUrl = options.uploadsUrl;
    this.logger = options.logger ?? silentLogger;
    this.onlyOrigin = options.downloadFrom === 'uploads' ? new URL(options.uploadsUrl).origin : undefined;
    this.httpsAgent = httpsAgentFor(options.tls);
    this.settings = {
      uploadTimeoutMs: options.uploadTimeoutMs ?? DEFAULTS.uploadTimeoutMs,
      downloadTimeoutMs: options.downloadTimeoutMs ?? DEFAULTS.downloadTimeoutMs,
      maxDownloadBytes: options.maxDownloadBytes ?? DEFAULTS.maxDownloadBytes,
      retries: options.retries ?? DEFAULTS.retries,
      retryBackoff: options.retryBackoff ?? DEFAULTS.retryBackoff,
    };
  }

  /**
   * Uploads `file` (bytes; chunks to be concatenated, sent as they are so a model's tensors are not copied into one
   * buffer; or the path of a local file) under `fileName` (default: the path's base name) and
   * returns the absolute URL of the stored file (the `file` field of the repository's answer), which is what
   * goes into `params_url` / `training_plan_url`.
   */
  async upload(file: Uint8Array | readonly Uint8Array[] | string, fileName?: string, options: TransferOptions = {}): Promise<string> {
    const name = fileName ?? (typeof file === 'string' ? path.basename(file) : undefined);
    if (!name || /[/\\]/.test(name) || name === '.' || name === '..') {
      throw new RepositoryError(
        `upload needs a plain file name (no directory part), got ${JSON.stringify(name ?? '')}`,
        'bad-url',
        this.uploadsUrl,
      );
    }
    const size = typeof file === 'string' ? await localFileSize(file, this.uploadsUrl)
      : file instanceof Uint8Array ? file.byteLength : file.reduce((n, part) => n + part.byteLength, 0);
    const url = await this.withRetries('upload', this.uploadsUrl, options.retries, () =>
      this.uploadOnce(file, name, size, options.timeoutMs ?? this.settings.uploadTimeoutMs),
    );
    if (!isValidRepositoryUrl(url)) {
      this.logger.warn(
        `the repository returned ${urlForMessage(url)}: Fed-BioMed v4.5 Python peers reject this URL (validators.url); ` +
          'give the repository a host name they accept (localhost, an IP address or a dotted DNS name)',
      );
    }
    return url;
  }

  /**
   * The body of `url` as a stream of chunks with real backpressure (a chunk is read from the socket only when the
   * consumer asks), so a big file is never held whole; same checks, cap and deadline as download(). Retries cover
   * opening the transfer only: once chunks were handed out, a break-off throws (the consumer decides whether to
   * start again, as it must undo what it did with them).
   */
  async *downloadChunks(url: string, options: DownloadOptions = {}): AsyncIterable<Uint8Array> {
    this.checkDownloadUrl(url);
    const maxBytes = options.maxBytes ?? this.settings.maxDownloadBytes;
    const attemptTimeout = this.attemptTimeout(options);
    let timeoutMs = 0;
    const opened = await this.withRetries('download', url, options.retries, () => {
      timeoutMs = attemptTimeout();
      return this.openDownload(url, maxBytes, timeoutMs);
    }, options.deadlineMs);
    let total = 0;
    try {
      for await (const chunk of opened.body) {
        const buffer = chunk as Buffer;
        total += buffer.length;
        if (total > maxBytes) {
          throw new RepositoryError(`download of ${urlForMessage(url)} stopped: more than ${maxBytes} bytes`, 'too-large', url);
        }
        yield buffer;
      }
    } catch (err) {
      if (err instanceof RepositoryError) throw err;
      if (opened.timedOut()) throw new RepositoryError(`download of ${urlForMessage(url)} timed out after ${timeoutMs} ms`, 'timeout', url);
      throw new RepositoryError(`download of ${urlForMessage(url)} broke off: ${describeError(err)}`, 'unreachable', url);
    } finally {
      // Also stops the transfer when the consumer gave up early (e.g. a bad tensor was found).
      opened.close();
    }
  }

  /** Downloads `url` into memory, within the size cap and deadline. Requires status 200, like Fed-BioMed. */
  async download(url: string, options: DownloadOptions = {}): Promise<Buffer> {
    this.checkDownloadUrl(url);
    const maxBytes = options.maxBytes ?? this.settings.maxDownloadBytes;
    const attemptTimeout = this.attemptTimeout(options);
    return this.withRetries('download', url, options.retries, async () => {
      const chunks: Buffer[] = [];
      const total = await this.downloadOnce(url, maxBytes, attemptTimeout(), (chunk) => void chunks.push(chunk));
      return Buffer.concat(chunks, total);
    }, options.deadlineMs);
  }

  /** The http(s) check, and the origin check when downloads are restricted to the repository. */
  private checkDownloadUrl(url: string): void {
    const parsed = parseHttpUrl(url, 'download URL');
    if (this.onlyOrigin !== undefined && parsed.origin !== this.onlyOrigin) {
      throw new RepositoryError(`download refused: the URL is not on this side's file repository (${this.onlyOrigin})`,
        'foreign-origin', this.onlyOrigin);
    }
  }

  /** Each attempt's timeout: its own, cut to what is left of the overall deadline. */
  private attemptTimeout(options: DownloadOptions): () => number {
    const own = options.timeoutMs ?? this.settings.downloadTimeoutMs;
    if (options.deadlineMs === undefined) return () => own;
    const end = Date.now() + options.deadlineMs;
    return () => Math.max(1, Math.min(own, end - Date.now()));
  }

  /**
   * Downloads `url` into the file `destination` (streamed, never held in memory), within the size cap and
   * deadline. The file appears only when complete: bytes go to a temporary name first.
   */
  async downloadToFile(url: string, destination: string, options: DownloadOptions = {}): Promise<{ path: string; bytes: number }> {
    this.checkDownloadUrl(url);
    const maxBytes = options.maxBytes ?? this.settings.maxDownloadBytes;
    const attemptTimeout = this.attemptTimeout(options);
    const bytes = await this.withRetries('download', url, options.retries, async () => {
      const partial = `${destination}.part-${process.pid}-${Date.now()}`;
      let out: fs.WriteStream;
      try {
        out = fs.createWriteStream(partial, { flags: 'wx' });
        await once(out, 'open');
      } catch (err) {
        throw new RepositoryError(`cannot write ${destination}: ${describeError(err)}`, 'local-file', url);
      }
      try {
        const total = await this.downloadOnce(url, maxBytes, attemptTimeout(), async (chunk) => {
          if (!out.write(chunk)) await once(out, 'drain');
        });
        await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
        await fs.promises.rename(partial, destination);
        return total;
      } catch (err) {
        out.destroy();
        await fs.promises.rm(partial, { force: true });
        if (err instanceof RepositoryError) throw err;
        throw new RepositoryError(`cannot write ${destination}: ${describeError(err)}`, 'local-file', url);
      }
    }, options.deadlineMs);
    return { path: destination, bytes };
  }

  private async withRetries<T>(what: string, url: string, retries: number | undefined, attempt: () => Promise<T>,
    deadlineMs?: number): Promise<T> {
    const allowed = retries ?? this.settings.retries;
    const end = deadlineMs === undefined ? Infinity : Date.now() + deadlineMs;
    for (let n = 0; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        const error = err instanceof RepositoryError ? err : new RepositoryError(describeError(err), 'unreachable', url);
        const delay = backoffDelay(n, this.settings.retryBackoff);
        const outOfTime = Date.now() + delay >= end;
        if (!error.retryable || n >= allowed || outOfTime) {
          if (n > 0) error.message += ` (after ${n + 1} attempts)`;
          if (outOfTime && error.retryable && n < allowed) error.message += ` (no time left within ${deadlineMs} ms)`;
          throw error;
        }
        this.logger.warn(`${what} failed (${error.message}); retry ${n + 1} of ${allowed} in ${delay} ms`);
        await sleep(delay);
      }
    }
  }

  private async uploadOnce(file: Uint8Array | readonly Uint8Array[] | string, name: string, size: number,
    timeoutMs: number): Promise<string> {
    const form = new FormData();
    // A new stream per attempt: a retry sends the same bytes again. Buffer views, not copies, of the caller's chunks.
    const content = typeof file === 'string' ? fs.createReadStream(file)
      : file instanceof Uint8Array ? asBuffer(file) : Readable.from(file.map(asBuffer));
    form.append('file', content, { filename: name, knownLength: size, contentType: 'application/octet-stream' });
    let response: AxiosResponse<string>;
    try {
      response = await axios.post<string>(this.uploadsUrl, form, {
        headers: { ...form.getHeaders(), 'Content-Length': String(form.getLengthSync()) },
        timeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
        httpsAgent: this.httpsAgent,
        maxBodyLength: Infinity,
        maxContentLength: MAX_UPLOAD_ANSWER_BYTES,
        responseType: 'text',
        transformResponse: (data: string) => data,
        validateStatus: () => true,
      });
    } catch (err) {
      throw networkError(err, 'upload to', this.uploadsUrl, timeoutMs);
    } finally {
      if (!Buffer.isBuffer(content)) content.destroy();
    }
    if (response.status < 200 || response.status >= 300) {
      throw new RepositoryError(
        `upload of ${name} to ${urlForMessage(this.uploadsUrl)} failed: HTTP ${response.status}${answerExcerpt(response.data)}`,
        'http-status',
        this.uploadsUrl,
        response.status,
      );
    }
    let answer: unknown;
    try {
      answer = JSON.parse(response.data);
    } catch {
      throw new RepositoryError(
        `upload to ${urlForMessage(this.uploadsUrl)} answered HTTP ${response.status} with something that is not JSON${answerExcerpt(response.data)}`,
        'bad-response',
        this.uploadsUrl,
        response.status,
      );
    }
    const fileUrl = (answer as { file?: unknown } | null)?.file;
    if (typeof fileUrl !== 'string') {
      throw new RepositoryError(
        `upload to ${urlForMessage(this.uploadsUrl)} answered without a "file" URL${answerExcerpt(response.data)}`,
        'bad-response',
        this.uploadsUrl,
        response.status,
      );
    }
    try {
      parseHttpUrl(fileUrl, 'returned file URL');
    } catch {
      throw new RepositoryError(
        `upload to ${urlForMessage(this.uploadsUrl)} returned ${JSON.stringify(fileUrl)}, which is not an absolute http(s) URL`,
        'bad-response',
        this.uploadsUrl,
        response.status,
      );
    }
    return fileUrl;
  }

  /** One GET of `url`, each chunk of the body handed to `sink`; returns the byte count. */
  private async downloadOnce(
    url: string,
    maxBytes: number,
    timeoutMs: number,
    sink: (chunk: Buffer) => void | Promise<void>,
  ): Promise<number> {
    const opened = await this.openDownload(url, maxBytes, timeoutMs);
    try {
      return await pumpCapped(opened.body, maxBytes, url, sink, () => (opened.timedOut() ? timeoutMs : undefined));
    } finally {
      opened.close();
    }
  }

  /**
   * Starts one GET of `url` and checks its status and announced size; the body is left to the caller, who must
   * call close() (which also ends the attempt's timer). The timer covers the whole body, not just the headers.
   */
  private async openDownload(url: string, maxBytes: number, timeoutMs: number):
    Promise<{ body: Readable; timedOut: () => boolean; close: () => void }> {
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeoutMs);
    try {
      let response: AxiosResponse<Readable>;
      try {
        response = await axios.get<Readable>(url, {
          responseType: 'stream',
          signal: controller.signal,
          httpsAgent: this.httpsAgent,
          validateStatus: () => true,
          // Restricted to the repository: a redirect could point anywhere, so none is followed.
          maxRedirects: this.onlyOrigin === undefined ? 5 : 0,
        });
      } catch (err) {
        throw networkError(err, 'download of', url, timeoutMs, timedOut);
      }
      const body = response.data;
      if (this.onlyOrigin !== undefined && response.status >= 300 && response.status < 400) {
        body.destroy();
        // Where it points is not said: that would reflect the foreign host into our messages.
        throw new RepositoryError(`download of ${urlForMessage(url)} refused: the repository answered a redirect ` +
          `(HTTP ${response.status}), not followed as downloads stay on ${this.onlyOrigin}`, 'foreign-origin', url, response.status);
      }
      if (response.status !== 200) {
        body.destroy();
        throw new RepositoryError(`download of ${urlForMessage(url)} failed: HTTP ${response.status}`, 'http-status', url, response.status);
      }
      const declared = Number(response.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxBytes) {
        body.destroy();
        throw new RepositoryError(
          `download of ${urlForMessage(url)} refused: the server announces ${declared} bytes, over the limit of ${maxBytes}`,
          'too-large',
          url,
        );
      }
      return {
        body,
        timedOut: () => timedOut,
        close: () => {
          clearTimeout(timer);
          body.destroy();
        },
      };
    } catch (err) {
      clearTimeout(timer);
      throw err;
    }
  }
}

async function pumpCapped(
  body: Readable,
  maxBytes: number,
  url: string,
  sink: (chunk: Buffer) => void | Promise<void>,
  timedOutAfter: () => number | undefined,
): Promise<number> {
  let total = 0;
  try {
    for await (const chunk of body) {
      const buffer = chunk as Buffer;
      total += buffer.length;
      if (total > maxBytes) {
        body.destroy();
        throw new RepositoryError(`download of ${urlForMessage(url)} stopped: more than ${maxBytes} bytes`, 'too-large', url);
      }
      try {
        await sink(buffer);
      } catch (err) {
        body.destroy();
        // A failure to store (e.g. a full disk), not of the network: not worth retrying.
        throw new RepositoryError(`download of ${urlForMessage(url)} could not be stored: ${describeError(err)}`, 'local-file', url);
      }
    }
  } catch (err) {
    if (err instanceof RepositoryError) throw err;
    const after = timedOutAfter();
    if (after !== undefined) {
      throw new RepositoryError(`download of ${urlForMessage(url)} timed out after ${after} ms`, 'timeout', url);
    }
    throw new RepositoryError(`download of ${urlForMessage(url)} broke off: ${describeError(err)}`, 'unreachable', url);
  }
  return total;
}

function networkError(err: unknown, what: string, url: string, timeoutMs: number, timedOut = false): RepositoryError {
  const code = err instanceof AxiosError ? err.code : undefined;
  if (timedOut || code === 'ECONNABORTED' || code === 'ETIMEDOUT' || code === 'ERR_CANCELED') {
    return new RepositoryError(`${what} ${urlForMessage(url)} timed out after ${timeoutMs} ms`, 'timeout', url);
  }
  return new RepositoryError(`${what} ${urlForMessage(url)} failed: server not reachable (${describeError(err)})`, 'unreachable', url);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function answerExcerpt(data: unknown): string {
  const text = typeof data === 'string' ? data.trim() : '';
  if (!text) return '';
  return `: ${text.length > 300 ? `${text.slice(0, 300)}…` : text}`;
}

async function localFileSize(file: string, uploadsUrl: string): Promise<number> {
  try {
    const stat = await fs.promises.stat(file);
    if (!stat.isFile()) throw new Error('not a regular file');
    return stat.size;
  } catch (err) {
    throw new RepositoryError(`cannot upload ${file}: ${describeError(err)}`, 'local-file', uploadsUrl);
  }
}

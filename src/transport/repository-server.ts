/**
 * The embedded file repository: an HTTP server that Fed-BioMed v4.5 peers (Python or ours) can use in place of
 * Fed-BioMed's Django "restful" server.
 *   POST /upload/   multipart field `file` → 201, Location, JSON {"url", "file", "created_at"} where `file` is
 *                   http://HOST[:PORT]/media/uploads/YYYY/MM/DD/NAME, HOST taken from the request like Django does
 *                   (X-Forwarded-Host, then Host)
 *   GET  /media/... the stored bytes (streamed)
 *   GET  /upload/<id>/  the record of one upload
 * Differences, on purpose: GET /upload/ does not list every upload (Django's lists all files to anyone); no
 * PUT/PATCH/DELETE; an upload larger than the limit gets 413 (a Content-Length over it without reading a byte);
 * a file name with a directory part gets 400. Binds 127.0.0.1 unless told otherwise.
 */
import { randomUUID } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { formatHostForUrl } from './broker';
import { describeError, silentLogger, type Logger } from './logger';
import { MultipartError, MultipartParser, multipartBoundary, type PartHeaders } from './multipart';
import { candidatePaths, uploadDirectory, UploadNameError, validUploadName } from './upload-names';
import { FedbiomedTsError } from '../errors';

export interface RepositoryServerOptions {
  /** Interface to bind. Default 127.0.0.1. */
  host?: string;
  /** TCP port; 0 picks a free one. Default 0. */
  port?: number;
  /** Where files are kept (`media/uploads/...` below it). Default: a new temporary directory, removed on close. */
  dataDir?: string;
  /** Largest file accepted, in bytes. Default 2 GiB. */
  maxUploadBytes?: number;
  /** Host name or address for `uploadsUrl` and for URLs answering a request without a Host header. Default: the bound address. */
  advertisedHost?: string;
  logger?: Logger;
}

export interface RepositoryServer {
  /** `http://HOST:PORT/upload/`, the value of Fed-BioMed's UPLOADS_URL. */
  readonly uploadsUrl: string;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  close(): Promise<void>;
}

export const DEFAULT_MAX_UPLOAD_BYTES = 2 * 1024 * 1024 * 1024;
/** Room for the multipart framing around the file (boundaries, part headers, small extra fields). */
const MULTIPART_OVERHEAD_BYTES = 64 * 1024;
/** Django's check of the Host header (django.http.request.host_validation_re). */
const VALID_HOST = /^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$/i;

interface UploadRecord {
  id: string;
  storedPath: string;
  createdAt: string;
}

class HttpError extends FedbiomedTsError {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(typeof body === 'object' ? JSON.stringify(body) : String(body));
  }
}

const MEDIA_TYPES: Record<string, string> = {
  '.py': 'text/x-python',
  '.mpk': 'application/octet-stream',
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.csv': 'text/csv',
  '.onnx': 'application/octet-stream',
};

/** DRF's timestamp format: ISO 8601 with microseconds and Z. */
function djangoTimestamp(date: Date): string {
  return date.toISOString().replace('Z', '000Z');
}

/** Python's urllib.parse.quote(path, safe="/~!*()'"), used by Django for media URLs. */
function quotePath(storedPath: string): string {
  return storedPath.split('/').map((s) => encodeURIComponent(s)).join('/');
}

/** How long an idle keep-alive connection is kept (longer than Node's and browsers' client idle timeouts). */
const KEEP_ALIVE_MS = 65_000;

export async function startRepositoryServer(options: RepositoryServerOptions = {}): Promise<RepositoryServer> {
  const host = options.host ?? '127.0.0.1';
  const logger = options.logger ?? silentLogger;
  const maxUploadBytes = options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  const ownsDataDir = options.dataDir === undefined;
  const dataDir = path.resolve(options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fedbiomed-ts-repository-')));
  const mediaRoot = path.join(dataDir, 'media');
  const incomingDir = path.join(dataDir, 'incoming');
  fs.mkdirSync(mediaRoot, { recursive: true });
  fs.mkdirSync(incomingDir, { recursive: true });
  const records = new Map<string, UploadRecord>();
  let advertised = options.advertisedHost ?? '';

  const server = http.createServer((req, res) => {
    route(req, res).catch((err: unknown) => sendError(res, err));
  });
  // Node's default (5 min for a whole request) would cut big uploads on slow hospital links.
  server.requestTimeout = 60 * 60_000;
  // Node's default keep-alive timeout (5 s) equals its clients' idle-socket timeout: a client reusing an idle
  // connection the moment the server drops it gets ECONNRESET (uploads after a round training longer than ~5 s
  // failed once each). The server keeps idle connections longer than any client does, so the client closes first.
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  server.headersTimeout = KEEP_ALIVE_MS + 5_000;
  // Answer a client that waits for "100 Continue" before sending a big body: refuse at once when it would be
  // refused anyway, so nothing is sent for nothing.
  server.on('checkContinue', (req, res) => {
    const early = earlyUploadRefusal(req);
    if (early) return sendError(res, early, true);
    res.writeContinue();
    server.emit('request', req, res);
  });

  async function route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const urlPath = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    if (urlPath === '/upload/') {
      if (method === 'POST') return handleUpload(req, res);
      if (method === 'GET' || method === 'HEAD') {
        throw new HttpError(403, {
          detail: 'Listing uploads is disabled on this server. Use the "file" URL returned by POST /upload/.',
        });
      }
      throw methodNotAllowed(method, 'POST');
    }
    const detail = /^\/upload\/([0-9a-f-]{36})\/$/.exec(urlPath);
    if (detail) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method, 'GET, HEAD');
      const record = records.get(detail[1]);
      if (!record) throw new HttpError(404, { detail: 'Not found.' });
      return sendJson(res, 200, recordJson(req, record), method === 'HEAD');
    }
    if (urlPath.startsWith('/media/')) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method, 'GET, HEAD');
      return serveMedia(urlPath.slice('/media/'.length), res, method === 'HEAD');
    }
    if (urlPath === '/' && (method === 'GET' || method === 'HEAD')) {
      return sendJson(res, 200, { upload: `${origin(req)}/upload/` }, method === 'HEAD');
    }
    throw new HttpError(404, { detail: 'Not found.' });
  }

  function origin(req: http.IncomingMessage): string {
    const forwarded = headerValue(req, 'x-forwarded-host')?.split(',')[0].trim();
    const hostHeader = forwarded || headerValue(req, 'host') || advertised;
    if (!VALID_HOST.test(hostHeader)) {
      throw new HttpError(400, { detail: `Invalid Host header ${JSON.stringify(hostHeader.slice(0, 100))}.` });
    }
    const scheme = headerValue(req, 'x-forwarded-proto')?.split(',')[0].trim() === 'https' ? 'https' : 'http';
    return `${scheme}://${hostHeader}`;
  }

  function recordJson(req: http.IncomingMessage, record: UploadRecord): Record<string, string> {
    const base = origin(req);
    return {
      url: `${base}/upload/${record.id}/`,
      file: `${base}/media/${quotePath(record.storedPath)}`,
      created_at: record.createdAt,
    };
  }

  /** Refusals decided from the headers alone (so the body is never read). */
  function earlyUploadRefusal(req: http.IncomingMessage): HttpError | undefined {
    const urlPath = (req.url ?? '/').split('?')[0];
    if (req.method !== 'POST' || urlPath !== '/upload/') return undefined;
    const length = Number(headerValue(req, 'content-length') ?? NaN);
    if (Number.isFinite(length) && length > maxUploadBytes + MULTIPART_OVERHEAD_BYTES) {
      return tooLarge(`Content-Length ${length} bytes`);
    }
    return undefined;
  }

  function tooLarge(what: string): HttpError {
    return new HttpError(413, {
      detail: `Upload too large: ${what} exceeds this repository's limit of ${maxUploadBytes} bytes per file.`,
    });
  }

  async function handleUpload(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const early = earlyUploadRefusal(req);
    if (early) throw early;
    const base = origin(req); // validates the Host header before any byte is stored
    const boundary = multipartBoundary(headerValue(req, 'content-type'));
    if (!boundary) {
      const type = headerValue(req, 'content-type') ?? '';
      throw new HttpError(415, {
        detail: `Unsupported media type ${JSON.stringify(type)} in request: send multipart/form-data with a "file" part.`,
      });
    }
    const received = await receiveFile(req, boundary);
    const createdAt = new Date();
    let storedPath: string;
    try {
      storedPath = await storeFile(received.tempPath, received.name, createdAt);
    } finally {
      await fs.promises.rm(received.tempPath, { force: true });
    }
    const record: UploadRecord = { id: randomUUID(), storedPath, createdAt: djangoTimestamp(createdAt) };
    records.set(record.id, record);
    const body = { url: `${base}/upload/${record.id}/`, file: `${base}/media/${quotePath(storedPath)}`, created_at: record.createdAt };
    res.setHeader('Location', body.url);
    sendJson(res, 201, body);
    logger.info(`stored ${storedPath} (${received.size} bytes)`);
  }

  /** Streams the `file` part of the body to a temporary file, enforcing the limits as bytes arrive. */
  function receiveFile(
    req: http.IncomingMessage,
    boundary: string,
  ): Promise<{ tempPath: string; name: string; size: number }> {
    return new Promise((resolve, reject) => {
      const tempPath = path.join(incomingDir, `${randomUUID()}.part`);
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
        onPartData(chunk: Buffer) {
          if (!inFilePart || !out) return;
          size += chunk.length;
          if (size > maxUploadBytes) throw tooLarge('the file');
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
          if (bodyBytes > maxUploadBytes + MULTIPART_OVERHEAD_BYTES) throw tooLarge('the request body');
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

  /** Links the received file to its final name; a hard link fails when the name exists, so two uploads never share one. */
  async function storeFile(tempPath: string, name: string, now: Date): Promise<string> {
    const directory = uploadDirectory(now);
    await fs.promises.mkdir(path.join(mediaRoot, directory), { recursive: true });
    for (const candidate of candidatePaths(directory, name)) {
      try {
        await fs.promises.link(tempPath, path.join(mediaRoot, candidate));
        return candidate;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    throw new Error('unreachable: candidate names are endless');
  }

  async function serveMedia(rawPath: string, res: http.ServerResponse, headOnly: boolean): Promise<void> {
    const notFound = new HttpError(404, { detail: 'Not found.' });
    let segments: string[];
    try {
      segments = rawPath.split('/').map((s) => decodeURIComponent(s));
    } catch {
      throw notFound;
    }
    if (segments.some((s) => s === '' || s === '.' || s === '..' || /[/\\\0]/.test(s))) throw notFound;
    const filePath = path.join(mediaRoot, ...segments);
    if (!filePath.startsWith(mediaRoot + path.sep)) throw notFound;
    let stat: fs.Stats;
    try {
      stat = await fs.promises.stat(filePath);
    } catch {
      throw notFound;
    }
    if (!stat.isFile()) throw notFound;
    res.writeHead(200, {
      'Content-Type': MEDIA_TYPES[path.extname(filePath).toLowerCase()] ?? 'application/octet-stream',
      'Content-Length': stat.size,
      'Last-Modified': stat.mtime.toUTCString(),
    });
    if (headOnly) return void res.end();
    await new Promise<void>((resolve) => {
      const stream = fs.createReadStream(filePath);
      stream.on('error', (err) => {
        logger.error(`cannot read ${filePath}: ${describeError(err)}`);
        res.destroy();
        resolve();
      });
      stream.on('end', resolve);
      stream.pipe(res);
    });
  }

  function sendError(res: http.ServerResponse, err: unknown, bodyUnread = false): void {
    const httpError = asHttpError(err);
    if (httpError.status >= 500) logger.error(`repository: ${describeError(err)}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const req = res.req;
    // When the body was not read to the end, close the connection once the answer is out instead of reading
    // (possibly gigabytes) to keep it alive.
    const unread = bodyUnread || (req !== undefined && !req.readableEnded);
    if (unread) {
      res.setHeader('Connection', 'close');
      res.on('finish', () => req?.socket.destroy());
    }
    if (httpError.status === 405) res.setHeader('Allow', (httpError.body as { allow: string }).allow);
    const body = httpError.status === 405 ? { detail: (httpError.body as { detail: string }).detail } : httpError.body;
    sendJson(res, httpError.status, body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new Error(`cannot start the repository server on ${host}:${options.port ?? 0}: ${describeError(err)}`)));
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  advertised = `${formatHostForUrl(advertised || host)}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    uploadsUrl: `http://${advertised}/upload/`,
    host,
    port,
    dataDir,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }).then(() => {
        if (ownsDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
      });
      return closing;
    },
  };
}

function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function methodNotAllowed(method: string, allow: string): HttpError {
  return new HttpError(405, { detail: `Method "${method}" not allowed.`, allow });
}

function asHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof MultipartError) return new HttpError(400, { detail: `Multipart form parse error - ${err.message}` });
  return new HttpError(500, { detail: `internal error: ${describeError(err)}` });
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(headOnly ? undefined : text);
}

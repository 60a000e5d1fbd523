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
import { multipartBoundary } from './multipart';
import { headerValue, HttpError, methodNotAllowed, notFound, sendError, sendJson } from './repository-http';
import { serveMedia } from './repository-media';
import { UploadStore } from './repository-upload';

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
/** Django's check of the Host header (django.http.request.host_validation_re). */
const VALID_HOST = /^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9.:]+\])(:[0-9]+)?$/i;

interface UploadRecord {
  id: string;
  storedPath: string;
  createdAt: string;
}

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
  const repository = new EmbeddedRepository(options);
  await repository.listen(options.port ?? 0);
  return repository;
}

/** The server: its routes, the upload records, its lifecycle. Uploads: repository-upload.ts; media: repository-media.ts. */
class EmbeddedRepository implements RepositoryServer {
  readonly host: string;
  readonly dataDir: string;
  private readonly logger: Logger;
  private readonly ownsDataDir: boolean;
  private readonly mediaRoot: string;
  private readonly uploads: UploadStore;
  private readonly records = new Map<string, UploadRecord>();
  private readonly server: http.Server;
  /** HOST:PORT for URLs answering a request without a Host header (set once listening). */
  private advertised: string;
  private boundPort = 0;
  private closing: Promise<void> | undefined;

  constructor(options: RepositoryServerOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.logger = options.logger ?? silentLogger;
    this.ownsDataDir = options.dataDir === undefined;
    this.dataDir = path.resolve(options.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'fedbiomed-ts-repository-')));
    this.mediaRoot = path.join(this.dataDir, 'media');
    const incomingDir = path.join(this.dataDir, 'incoming');
    fs.mkdirSync(this.mediaRoot, { recursive: true });
    fs.mkdirSync(incomingDir, { recursive: true });
    this.uploads = new UploadStore(this.mediaRoot, incomingDir, options.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES);
    this.advertised = options.advertisedHost ?? '';
    this.server = this.createServer();
  }

  get port(): number {
    return this.boundPort;
  }

  /** `http://HOST:PORT/upload/`, the value of Fed-BioMed's UPLOADS_URL. */
  get uploadsUrl(): string {
    return `http://${this.advertised}/upload/`;
  }

  private createServer(): http.Server {
    const server = http.createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => sendError(res, err, this.logger));
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
      const early = this.earlyUploadRefusal(req);
      if (early) return sendError(res, early, this.logger, true);
      res.writeContinue();
      server.emit('request', req, res);
    });
    return server;
  }

  async listen(port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err) => reject(new Error(`cannot start the repository server on ${this.host}:${port}: ${describeError(err)}`)));
      this.server.listen(port, this.host, () => resolve());
    });
    this.boundPort = (this.server.address() as { port: number }).port;
    this.advertised = `${formatHostForUrl(this.advertised || this.host)}:${this.boundPort}`;
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    }).then(() => {
      if (this.ownsDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
    });
    return this.closing;
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const urlPath = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    if (urlPath === '/upload/') {
      if (method === 'POST') return this.handleUpload(req, res);
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
      const record = this.records.get(detail[1]);
      if (!record) throw notFound();
      return sendJson(res, 200, this.recordJson(this.origin(req), record), method === 'HEAD');
    }
    if (urlPath.startsWith('/media/')) {
      if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method, 'GET, HEAD');
      return serveMedia(this.mediaRoot, urlPath.slice('/media/'.length), res, method === 'HEAD', this.logger);
    }
    if (urlPath === '/' && (method === 'GET' || method === 'HEAD')) {
      return sendJson(res, 200, { upload: `${this.origin(req)}/upload/` }, method === 'HEAD');
    }
    throw notFound();
  }

  /** scheme://host of the request, as Django builds it (X-Forwarded-Host, then Host), validated. */
  private origin(req: http.IncomingMessage): string {
    const forwarded = headerValue(req, 'x-forwarded-host')?.split(',')[0].trim();
    const hostHeader = forwarded || headerValue(req, 'host') || this.advertised;
    if (!VALID_HOST.test(hostHeader)) {
      throw new HttpError(400, { detail: `Invalid Host header ${JSON.stringify(hostHeader.slice(0, 100))}.` });
    }
    const scheme = headerValue(req, 'x-forwarded-proto')?.split(',')[0].trim() === 'https' ? 'https' : 'http';
    return `${scheme}://${hostHeader}`;
  }

  private recordJson(base: string, record: UploadRecord): { url: string; file: string; created_at: string } {
    return {
      url: `${base}/upload/${record.id}/`,
      file: `${base}/media/${quotePath(record.storedPath)}`,
      created_at: record.createdAt,
    };
  }

  /** Refusals decided from the headers alone (so the body is never read). */
  private earlyUploadRefusal(req: http.IncomingMessage): HttpError | undefined {
    const urlPath = (req.url ?? '/').split('?')[0];
    if (req.method !== 'POST' || urlPath !== '/upload/') return undefined;
    return this.uploads.refusalFromHeaders(req);
  }

  private async handleUpload(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const early = this.earlyUploadRefusal(req);
    if (early) throw early;
    const base = this.origin(req); // validates the Host header before any byte is stored
    const boundary = multipartBoundary(headerValue(req, 'content-type'));
    if (!boundary) {
      const type = headerValue(req, 'content-type') ?? '';
      throw new HttpError(415, {
        detail: `Unsupported media type ${JSON.stringify(type)} in request: send multipart/form-data with a "file" part.`,
      });
    }
    const received = await this.uploads.receive(req, boundary);
    const createdAt = new Date();
    const storedPath = await this.uploads.store(received, createdAt);
    const record: UploadRecord = { id: randomUUID(), storedPath, createdAt: djangoTimestamp(createdAt) };
    this.records.set(record.id, record);
    const body = this.recordJson(base, record);
    res.setHeader('Location', body.url);
    sendJson(res, 201, body);
    this.logger.info(`stored ${storedPath} (${received.size} bytes)`);
  }
}

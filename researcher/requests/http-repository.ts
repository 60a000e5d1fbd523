/**
 * Minimal Fed-BioMed file repository client: `POST <uploadsUrl>` multipart field `file` (streamed from the
 * caller's chunks) → JSON `{"file": <download URL>}`; downloads are plain GETs that must answer 200, also
 * available as a stream of chunks.
 * Used until/unless a richer client is injected through `NetworkOptions.repository`.
 */
import { randomUUID } from 'crypto';
import * as http from 'http';
import * as https from 'https';
import type { FileRepository } from '../network';
import { urlForMessage } from '../../src/transport/url';

/** GET with redirects followed (as python-requests does), up to 5. */
function getResponse(url: string, agent: https.Agent | undefined, redirects = 5): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const req = (secure ? https : http).get(target, secure && agent ? { agent } : {}, (res) => {
      const location = res.headers.location;
      if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && location && redirects > 0) {
        res.resume();
        resolve(getResponse(new URL(location, target).toString(), agent, redirects - 1));
        return;
      }
      resolve(res);
    });
    req.on('error', reject);
  });
}

/** POSTs `chunks` (Content-Length `length`) with backpressure; resolves to the status and the body text. */
function postStream(url: string, contentType: string, length: number, chunks: readonly Uint8Array[],
  agent: https.Agent | undefined): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const secure = target.protocol === 'https:';
    const req = (secure ? https : http).request(target, { method: 'POST', ...(secure && agent ? { agent } : {}),
      headers: { 'content-type': contentType, 'content-length': length } }, (res) => {
      const body: Buffer[] = [];
      res.on('data', (c: Buffer) => body.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(body).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    let i = 0;
    const pump = (): void => {
      while (i < chunks.length) {
        const c = chunks[i++];
        if (!req.write(c)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

export class RepositoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepositoryError';
  }
}

export class HttpRepository implements FileRepository {
  /** `agent`: for an https repository, the network's CA and a client certificate (see httpsAgentFor). */
  constructor(readonly uploadsUrl: string, private readonly agent?: https.Agent) {}

  /**
   * Streams the multipart body straight from `data`'s chunks (for weight files: views on the tensors' memory), so
   * uploading a model costs no copy of it.
   */
  async upload(data: Uint8Array | readonly Uint8Array[], fileName: string): Promise<string> {
    const parts = data instanceof Uint8Array ? [data] : [...data];
    const boundary = `----fedbiomed-ts-${randomUUID()}`;
    const safeName = fileName.replace(/["\\\r\n]/g, '_');
    const head = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${safeName}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    );
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    const length = head.length + tail.length + parts.reduce((n, p) => n + p.byteLength, 0);
    let res: { status: number; text: string };
    try {
      res = await postStream(this.uploadsUrl, `multipart/form-data; boundary=${boundary}`, length, [head, ...parts, tail], this.agent);
    } catch (err) {
      throw new RepositoryError(`FB201: cannot reach the file repository at ${this.uploadsUrl}: ${(err as Error).message}`);
    }
    const text = res.text;
    if (res.status < 200 || res.status >= 300) {
      const code = res.status === 404 ? 'FB202' : 'FB203';
      throw new RepositoryError(`${code}: upload of ${fileName} to ${this.uploadsUrl} failed with HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new RepositoryError(`upload of ${fileName}: the repository answered non-JSON: ${text.slice(0, 200)}`);
    }
    const url = (body as { file?: unknown })?.file;
    if (typeof url !== 'string' || url === '') {
      throw new RepositoryError(`upload of ${fileName}: the repository reply has no "file" URL: ${text.slice(0, 200)}`);
    }
    return url;
  }

  /**
   * The file as a stream of chunks with real backpressure (node's http client: a chunk is read from the socket
   * only when the consumer asks), so a big file never piles up in memory.
   */
  async *downloadChunks(url: string): AsyncIterable<Uint8Array> {
    let res: http.IncomingMessage;
    try {
      res = await getResponse(url, this.agent);
    } catch (err) {
      throw new RepositoryError(`FB201: cannot download ${urlForMessage(url)}: ${(err as Error).message}`);
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw new RepositoryError(`${res.statusCode === 404 ? 'FB202' : 'FB203'}: download of ${urlForMessage(url)} failed with HTTP ${res.statusCode}`);
    }
    const expected = Number(res.headers['content-length'] ?? NaN);
    let received = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        received += chunk.length;
        yield chunk;
      }
    } catch (err) {
      throw new RepositoryError(`download of ${urlForMessage(url)} broke off: ${(err as Error).message}`);
    } finally {
      // Stops the transfer when the consumer gave up early (a bad tensor was found).
      res.destroy();
    }
    if (Number.isFinite(expected) && received !== expected) {
      throw new RepositoryError(`download of ${urlForMessage(url)} broke off after ${received} of ${expected} bytes`);
    }
  }

  /** The whole file (through the same client as downloadChunks, so the network's CA applies). */
  async download(url: string): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of this.downloadChunks(url)) chunks.push(chunk);
    return Buffer.concat(chunks);
  }
}

/**
 * Minimal Fed-BioMed file repository client on Node's built-in fetch: `POST <uploadsUrl>` multipart field
 * `file` → JSON `{"file": <download URL>}`; downloads are plain GETs that must answer 200.
 * Used until/unless a richer client is injected through `NetworkOptions.repository`.
 */
import type { FileRepository } from '../network';

export class RepositoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RepositoryError';
  }
}

export class HttpRepository implements FileRepository {
  constructor(readonly uploadsUrl: string) {}

  async upload(data: Uint8Array | readonly Uint8Array[], fileName: string): Promise<string> {
    const parts = (data instanceof Uint8Array ? [data] : data).map((c) => new Uint8Array(c.buffer as ArrayBuffer, c.byteOffset, c.byteLength));
    const form = new FormData();
    form.append('file', new Blob(parts), fileName);
    let res: Response;
    try {
      res = await fetch(this.uploadsUrl, { method: 'POST', body: form });
    } catch (err) {
      throw new RepositoryError(`FB201: cannot reach the file repository at ${this.uploadsUrl}: ${(err as Error).cause ?? (err as Error).message}`);
    }
    const text = await res.text();
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

  async *downloadChunks(url: string): AsyncIterable<Uint8Array> {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (err) {
      throw new RepositoryError(`FB201: cannot download ${url}: ${(err as Error).cause ?? (err as Error).message}`);
    }
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      throw new RepositoryError(`${res.status === 404 ? 'FB202' : 'FB203'}: download of ${url} failed with HTTP ${res.status}`);
    }
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield value;
      }
    } catch (err) {
      throw new RepositoryError(`download of ${url} broke off: ${(err as Error).message}`);
    } finally {
      reader.releaseLock();
      // Stops the transfer when the consumer gave up early (a bad tensor was found).
      await res.body.cancel().catch(() => undefined);
    }
  }

  async download(url: string): Promise<Buffer> {
    let res: Response;
    try {
      res = await fetch(url);
    } catch (err) {
      throw new RepositoryError(`FB201: cannot download ${url}: ${(err as Error).cause ?? (err as Error).message}`);
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new RepositoryError(`${res.status === 404 ? 'FB202' : 'FB203'}: download of ${url} failed with HTTP ${res.status}`);
    }
    return Buffer.from(await res.arrayBuffer());
  }
}

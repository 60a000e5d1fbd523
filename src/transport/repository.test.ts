import * as crypto from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { memoryLogger } from './logger';
import { RepositoryClient, RepositoryError } from './repository';
import { freePort } from './testing/brokers';

const FAST = { initialDelayMs: 10, maxDelayMs: 50, factor: 2 };
const openServers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(openServers.splice(0).map((s) => s.close()));
});

/** A test HTTP server whose behaviour is scripted per request number. */
async function scriptedServer(
  handler: (n: number, req: http.IncomingMessage, res: http.ServerResponse) => void,
): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let count = 0;
  const server = http.createServer((req, res) => handler(++count, req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const scripted = {
    url: `http://127.0.0.1:${port}`,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
  openServers.push(scripted);
  return scripted;
}

/** A repository whose first upload fails with HTTP 503 and the next get `answer(its url)`; every request body is kept. */
async function uploadServerFailingOnce(answer: (url: string) => { status: number; headers?: http.OutgoingHttpHeaders; body: string }) {
  const bodies: Buffer[] = [];
  const server = await scriptedServer((n, req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(parts));
      if (n === 1) return void res.writeHead(503).end();
      const { status, headers, body } = answer(server.url);
      res.writeHead(status, headers).end(body);
    });
  });
  return { server, bodies };
}

describe('repository client downloads', () => {
  test('retries on 5xx with backoff and succeeds when the server recovers (fails twice, then 200)', async () => {
    const payload = Buffer.from('weights after two failures');
    const server = await scriptedServer((n, _req, res) => {
      if (n <= 2) {
        res.writeHead(n === 1 ? 503 : 500).end('try later');
        return;
      }
      res.writeHead(200, { 'Content-Length': payload.length }).end(payload);
    });
    const logger = memoryLogger();
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 3, retryBackoff: FAST, logger });
    const body = await client.download(`${server.url}/media/x.mpk`);
    expect(body.equals(payload)).toBe(true);
    expect(server.requests()).toBe(3);
    const retries = logger.lines.filter((l) => l.level === 'warn').map((l) => l.message);
    expect(retries).toHaveLength(2);
    expect(retries[0]).toMatch(/HTTP 503\); retry 1 of 3 in \d+ ms$/);
  });

  test('gives up after the allowed retries with the last status, FB203', async () => {
    const server = await scriptedServer((_n, _req, res) => void res.writeHead(502).end());
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 2, retryBackoff: FAST });
    const error = await client.download(`${server.url}/media/x.mpk`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RepositoryError);
    expect(error).toMatchObject({ kind: 'http-status', status: 502, errorCode: 'FB203' });
    expect((error as Error).message).toMatch(/HTTP 502 \(after 3 attempts\)/);
    expect(server.requests()).toBe(3);
  });

  test('does not retry a 4xx: a 404 fails at once with FB202', async () => {
    const server = await scriptedServer((_n, _req, res) => void res.writeHead(404).end('{"detail":"Not found."}'));
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 3, retryBackoff: FAST });
    await expect(client.download(`${server.url}/media/missing.mpk`)).rejects.toMatchObject({
      kind: 'http-status',
      status: 404,
      errorCode: 'FB202',
    });
    expect(server.requests()).toBe(1);
  });

  test('requires status 200 exactly, like Fed-BioMed nodes', async () => {
    const server = await scriptedServer((_n, _req, res) => void res.writeHead(204).end());
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 0 });
    await expect(client.download(`${server.url}/media/x`)).rejects.toMatchObject({ kind: 'http-status', status: 204 });
  });

  test('refuses a body announced over the cap before reading it, and cuts off one that grows over it', async () => {
    let bytesSent = 0;
    const server = await scriptedServer((n, _req, res) => {
      if (n === 1) {
        // Announces 10 GB; sends a little, then would keep going.
        res.writeHead(200, { 'Content-Length': String(10 * 1024 ** 3) });
        res.write(Buffer.alloc(1024));
        return;
      }
      // No Content-Length: chunked, 64 KiB at a time, 10 MiB in all unless the client hangs up.
      res.writeHead(200);
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (bytesSent < 10 * 1024 * 1024) {
          bytesSent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => undefined);
      pump();
    });
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 3, retryBackoff: FAST });
    await expect(client.download(`${server.url}/media/big.mpk`, { maxBytes: 1024 * 1024 })).rejects.toMatchObject({
      kind: 'too-large',
      message: expect.stringMatching(/announces 10737418240 bytes, over the limit of 1048576/),
    });
    await expect(client.download(`${server.url}/media/big.mpk`, { maxBytes: 1024 * 1024 })).rejects.toMatchObject({
      kind: 'too-large',
      message: expect.stringMatching(/more than 1048576 bytes/),
    });
    expect(server.requests()).toBe(2); // too-large is never retried
    expect(bytesSent).toBeLessThan(10 * 1024 * 1024);
  });

  test('a server that never answers gives a timeout error, retried like a network error', async () => {
    const server = await scriptedServer(() => undefined);
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 1, retryBackoff: FAST });
    await expect(client.download(`${server.url}/media/slow.mpk`, { timeoutMs: 200 })).rejects.toMatchObject({
      kind: 'timeout',
      errorCode: 'FB201',
      message: expect.stringMatching(/timed out after 200 ms \(after 2 attempts\)/),
    });
    expect(server.requests()).toBe(2);
  });

  test('a server that is not there: unreachable after the retries, FB201', async () => {
    const port = await freePort();
    const client = new RepositoryClient({ uploadsUrl: `http://127.0.0.1:${port}/upload/`, retries: 2, retryBackoff: FAST });
    await expect(client.download(`http://127.0.0.1:${port}/media/x.mpk`)).rejects.toMatchObject({
      kind: 'unreachable',
      errorCode: 'FB201',
      message: expect.stringMatching(/server not reachable .*ECONNREFUSED.* \(after 3 attempts\)/),
    });
  });

  test('non-http URLs are refused without a request', async () => {
    const client = new RepositoryClient({ uploadsUrl: 'http://127.0.0.1:1/upload/' });
    await expect(client.download('file:///etc/passwd')).rejects.toMatchObject({ kind: 'bad-url' });
    await expect(client.download('not a url')).rejects.toMatchObject({ kind: 'bad-url' });
    expect(() => new RepositoryClient({ uploadsUrl: 'ftp://x.org/upload/' })).toThrow(/not an http\(s\) URL/);
  });
});

describe('repository client restricted to its repository (downloadFrom: uploads)', () => {
  test('follows no redirect: a redirect to another server fails without reaching it', async () => {
    const elsewhere = await scriptedServer((_n, _req, res) => res.end('secret of another service'));
    const repository = await scriptedServer((_n, _req, res) => {
      res.writeHead(302, { location: `${elsewhere.url}/admin` });
      res.end();
    });
    const client = new RepositoryClient({ uploadsUrl: `${repository.url}/upload/`, downloadFrom: 'uploads', retries: 0 });
    await expect(client.download(`${repository.url}/media/plan.py`)).rejects.toMatchObject({ kind: 'foreign-origin', status: 302 });
    expect(elsewhere.requests()).toBe(0);
  });

  test('refuses another origin before connecting (port, loopback alias), naming only its own repository', async () => {
    const elsewhere = await scriptedServer((_n, _req, res) => res.end('x'));
    const repository = await scriptedServer((_n, _req, res) => res.end('plan'));
    const client = new RepositoryClient({ uploadsUrl: `${repository.url}/upload/`, downloadFrom: 'uploads', retries: 0 });
    const port = new URL(elsewhere.url).port;
    for (const url of [`${elsewhere.url}/x`, `http://[::1]:${port}/x`, `http://0x7f000001:${port}/x`, `http://localhost:${port}/x`]) {
      const err = await client.download(url).catch((e: unknown) => e as RepositoryError);
      expect(err).toBeInstanceOf(RepositoryError);
      expect((err as RepositoryError).message).toBe(`download refused: the URL is not on this side's file repository (${repository.url})`);
    }
    expect(elsewhere.requests()).toBe(0);
    // The same server under its hexadecimal name is the same origin once normalised: allowed.
    const hex = repository.url.replace('127.0.0.1', '0x7f000001');
    expect((await client.download(`${hex}/media/plan.py`)).toString()).toBe('plan');
  });

  test('one overall deadline for a download, retries included', async () => {
    const silent = await scriptedServer(() => undefined);
    const client = new RepositoryClient({ uploadsUrl: `${silent.url}/upload/`, retries: 5, retryBackoff: FAST });
    const started = Date.now();
    const err = await client.download(`${silent.url}/media/x`, { timeoutMs: 10_000, deadlineMs: 600 })
      .catch((e: unknown) => e as RepositoryError);
    expect((err as RepositoryError).kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe('repository client downloads to a file', () => {
  test('streams into the destination, which appears only when complete; a capped download leaves no file', async () => {
    const payload = crypto.randomBytes(200_000);
    const server = await scriptedServer((n, _req, res) => {
      if (n === 1) return void res.writeHead(503).end();
      res.writeHead(200);
      res.end(payload);
    });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dl-'));
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 2, retryBackoff: FAST });
    const target = path.join(dir, 'training_plan_x.py');
    await expect(client.downloadToFile(`${server.url}/media/x`, target)).resolves.toEqual({ path: target, bytes: payload.length });
    expect(fs.readFileSync(target).equals(payload)).toBe(true);
    expect(fs.readdirSync(dir)).toEqual(['training_plan_x.py']);

    const capped = path.join(dir, 'capped.mpk');
    await expect(client.downloadToFile(`${server.url}/media/x`, capped, { maxBytes: 1000 })).rejects.toMatchObject({ kind: 'too-large' });
    expect(fs.readdirSync(dir)).toEqual(['training_plan_x.py']);
    await expect(client.downloadToFile(`${server.url}/media/x`, path.join(dir, 'no', 'such', 'dir.mpk'))).rejects.toMatchObject({
      kind: 'local-file',
    });
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('repository client uploads', () => {
  test('retries a 5xx upload, sends the multipart field "file" with the name, returns the "file" URL', async () => {
    const { server, bodies } = await uploadServerFailingOnce(() => ({ status: 201, headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.0.0.1:8844/upload/abc/', file: 'http://127.0.0.1:8844/media/uploads/2023/11/09/p.mpk', created_at: 'x' }) }));
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 2, retryBackoff: FAST });
    const url = await client.upload(Buffer.from('PAYLOAD-BYTES'), 'p.mpk');
    expect(url).toBe('http://127.0.0.1:8844/media/uploads/2023/11/09/p.mpk');
    expect(bodies).toHaveLength(2);
    expect(bodies[1].toString('latin1')).toMatch(/Content-Disposition: form-data; name="file"; filename="p\.mpk"\r\n[^]*\r\n\r\nPAYLOAD-BYTES\r\n/);
  });

  test('an answer without a usable "file" URL is a clear error; a URL Python peers reject is a warning', async () => {
    const answers = ['<html>oops</html>', '{"url": "x"}', '{"file": "/media/relative.mpk"}', '{"file": "http://restful:8000/media/a.mpk"}'];
    const server = await scriptedServer((n, req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(201).end(answers[n - 1]));
    });
    const logger = memoryLogger();
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 0, logger });
    await expect(client.upload(Buffer.from('x'), 'a.mpk')).rejects.toMatchObject({ kind: 'bad-response', message: expect.stringMatching(/not JSON: <html>oops/) });
    await expect(client.upload(Buffer.from('x'), 'a.mpk')).rejects.toThrow(/without a "file" URL/);
    await expect(client.upload(Buffer.from('x'), 'a.mpk')).rejects.toThrow(/not an absolute http\(s\) URL/);
    await expect(client.upload(Buffer.from('x'), 'a.mpk')).resolves.toBe('http://restful:8000/media/a.mpk');
    expect(logger.lines.some((l) => l.level === 'warn' && /Python peers reject this URL/.test(l.message))).toBe(true);
  });

  test('local problems are reported before any request', async () => {
    const client = new RepositoryClient({ uploadsUrl: 'http://127.0.0.1:1/upload/' });
    await expect(client.upload('/nonexistent/file.mpk')).rejects.toMatchObject({ kind: 'local-file', message: expect.stringMatching(/cannot upload \/nonexistent\/file.mpk/) });
    await expect(client.upload(Buffer.from('x'))).rejects.toThrow(/plain file name/);
    await expect(client.upload(Buffer.from('x'), '../x.mpk')).rejects.toThrow(/plain file name/);
  });
});

describe('repository client streaming downloads (downloadChunks, used by the researcher\'s aggregation)', () => {
  test('retries opening (503 then 200) and yields the exact bytes in several chunks', async () => {
    const payload = crypto.randomBytes(1_000_000);
    const server = await scriptedServer((n, _req, res) => {
      if (n === 1) return void res.writeHead(503).end();
      res.writeHead(200, { 'Content-Length': payload.length }).end(payload);
    });
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 2, retryBackoff: FAST });
    const chunks: Uint8Array[] = [];
    for await (const chunk of client.downloadChunks(`${server.url}/media/x.mpk`)) chunks.push(chunk);
    expect(chunks.length).toBeGreaterThan(1);
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    expect(server.requests()).toBe(2);
  });

  test('stops at the size cap mid-stream, and a consumer that leaves early ends the transfer', async () => {
    const payload = crypto.randomBytes(300_000);
    let closed = 0;
    const server = await scriptedServer((_n, _req, res) => {
      res.on('close', () => void (closed += 1));
      res.writeHead(200); // no Content-Length: the cap has to be enforced while reading
      res.end(payload);
    });
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 0 });
    const read = async (maxBytes?: number): Promise<number> => {
      let n = 0;
      for await (const chunk of client.downloadChunks(`${server.url}/media/x`, { maxBytes })) {
        n += chunk.byteLength;
        if (maxBytes === undefined) break;
      }
      return n;
    };
    await expect(read(100_000)).rejects.toMatchObject({ kind: 'too-large' });
    expect(await read()).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(closed).toBe(2);
  });

  test('restricted to the repository: another port is refused unfetched, a redirect is not followed', async () => {
    const elsewhere = await scriptedServer((_n, _req, res) => res.end('secret'));
    const repository = await scriptedServer((_n, _req, res) => res.writeHead(307, { location: `${elsewhere.url}/x` }).end());
    const client = new RepositoryClient({ uploadsUrl: `${repository.url}/upload/`, downloadFrom: 'uploads', retries: 2, retryBackoff: FAST });
    const drain = async (url: string) => {
      for await (const chunk of client.downloadChunks(url)) void chunk;
    };
    await expect(drain(`${elsewhere.url}/x`)).rejects.toMatchObject({ kind: 'foreign-origin',
      message: `download refused: the URL is not on this side's file repository (${repository.url})` });
    const redirected = await drain(`${repository.url}/media/x`).catch((e: unknown) => e as RepositoryError);
    expect(redirected).toMatchObject({ kind: 'foreign-origin', status: 307 });
    expect((redirected as Error).message).not.toContain(elsewhere.url);
    expect(repository.requests()).toBe(1); // not retried: asking again cannot help
    expect(elsewhere.requests()).toBe(0);
  });
});

describe('repository client chunked uploads', () => {
  test('sends the chunks as one file (views, not copies) and sends them again on a retry', async () => {
    const { server, bodies } = await uploadServerFailingOnce((url) => ({ status: 200, body: JSON.stringify({ file: `${url}/media/f.mpk` }) }));
    const backing = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const chunks = [backing.subarray(2, 5), Buffer.from('middle'), backing.subarray(7)];
    const client = new RepositoryClient({ uploadsUrl: `${server.url}/upload/`, retries: 1, retryBackoff: FAST });
    expect(await client.upload(chunks, 'f.mpk')).toBe(`${server.url}/media/f.mpk`);
    expect(bodies).toHaveLength(2);
    const expected = Buffer.concat([Buffer.from([2, 3, 4]), Buffer.from('middle'), Buffer.from([7, 8, 9])]);
    for (const body of bodies) expect(body.includes(Buffer.concat([Buffer.from('\r\n\r\n'), expected, Buffer.from('\r\n--')]))).toBe(true);
  });
});

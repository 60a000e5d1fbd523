import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { RepositoryClient } from './repository';
import { startRepositoryServer, type RepositoryServer } from './repository-server';
import { multipartBody, rawExchange, request } from './testing/http';
import { uploadDirectory } from './upload-names';

const BOUNDARY = 'test-boundary-7d1f';
const MULTIPART = `multipart/form-data; boundary=${BOUNDARY}`;

function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

describe('embedded repository server', () => {
  let server: RepositoryServer;
  let client: RepositoryClient;
  let dataDir: string;
  const LIMIT = 1024 * 1024;

  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'repo-test-'));
    server = await startRepositoryServer({ dataDir, maxUploadBytes: LIMIT });
    client = new RepositoryClient({ uploadsUrl: server.uploadsUrl, retries: 0 });
  });
  afterAll(async () => {
    await server.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const mediaPrefix = () => `http://127.0.0.1:${server.port}/media/${uploadDirectory(new Date())}/`;

  test('binds 127.0.0.1 and advertises the upload URL Fed-BioMed calls UPLOADS_URL', () => {
    expect(server.host).toBe('127.0.0.1');
    expect(server.uploadsUrl).toBe(`http://127.0.0.1:${server.port}/upload/`);
  });

  test('POST /upload/ answers 201 like Django REST framework: Location, {url, file, created_at}', async () => {
    const content = Buffer.from('import torch\n');
    const res = await request(server.uploadsUrl, {
      method: 'POST',
      headers: { 'Content-Type': MULTIPART },
      body: multipartBody(BOUNDARY, 'my_model_1234.py', content),
    });
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toBe('application/json');
    const answer = JSON.parse(res.body) as Record<string, string>;
    expect(Object.keys(answer)).toEqual(['url', 'file', 'created_at']);
    expect(answer.file).toBe(`${mediaPrefix()}my_model_1234.py`);
    expect(answer.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/upload/[0-9a-f-]{36}/$`));
    expect(res.headers.location).toBe(answer.url);
    expect(answer.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    const media = await request(answer.file);
    expect(media.status).toBe(200);
    expect(media.headers['content-type']).toBe('text/x-python');
    expect(media.body).toBe('import torch\n');
    const record = await request(answer.url);
    expect(JSON.parse(record.body)).toEqual(answer);
  });

  test('the client uploads bytes and files and downloads exactly what was stored', async () => {
    const bytes = crypto.randomBytes(300_000);
    const url = await client.upload(bytes, 'node_params_1.mpk');
    expect(url).toBe(`${mediaPrefix()}node_params_1.mpk`);
    expect((await client.download(url)).equals(bytes)).toBe(true);

    // A file streamed from disk, with bytes that look like multipart framing inside it.
    const tricky = Buffer.concat([crypto.randomBytes(200_000), Buffer.from(`\r\n--${BOUNDARY}\r\n\r\n--`), crypto.randomBytes(5)]);
    const local = path.join(dataDir, 'local-aggregated_params.mpk');
    fs.writeFileSync(local, tricky);
    const fileUrl = await client.upload(local);
    expect(fileUrl).toBe(`${mediaPrefix()}local-aggregated_params.mpk`);
    expect((await client.download(fileUrl)).equals(tricky)).toBe(true);
  });

  test('a taken name gets "_" + 7 random letters/digits before the extension, and Django-valid names', async () => {
    const first = await client.upload(Buffer.from('one'), 'same_name.mpk');
    const second = await client.upload(Buffer.from('two'), 'same_name.mpk');
    expect(first).toBe(`${mediaPrefix()}same_name.mpk`);
    expect(second).toMatch(new RegExp(`^${mediaPrefix().replace(/[.]/g, '\\.')}same_name_[A-Za-z0-9]{7}\\.mpk$`));
    expect((await client.download(first)).toString()).toBe('one');
    expect((await client.download(second)).toString()).toBe('two');
    // Django's get_valid_filename: spaces become "_", other characters outside [-\w.] are dropped.
    const odd = await client.upload(Buffer.from('x'), ' my plan (v2)!.py ');
    expect(odd).toBe(`${mediaPrefix()}my_plan_v2.py`);
  });

  test('the file URL takes its host from X-Forwarded-Host or Host, and a bad Host is refused', async () => {
    const body = multipartBody(BOUNDARY, 'hosted.mpk', Buffer.from('h'));
    const viaHost = await request(server.uploadsUrl, { method: 'POST', headers: { 'Content-Type': MULTIPART, Host: 'files.example.org:8844' }, body });
    expect(JSON.parse(viaHost.body).file).toMatch(/^http:\/\/files\.example\.org:8844\/media\/uploads\/.*\/hosted(_[A-Za-z0-9]{7})?\.mpk$/);
    const forwarded = await request(server.uploadsUrl, {
      method: 'POST',
      headers: { 'Content-Type': MULTIPART, 'X-Forwarded-Host': 'repo.hospital.org', 'X-Forwarded-Proto': 'https' },
      body,
    });
    expect(JSON.parse(forwarded.body).file).toMatch(/^https:\/\/repo\.hospital\.org\/media\/uploads\//);
    const bad = await request(server.uploadsUrl, { method: 'POST', headers: { 'Content-Type': MULTIPART, Host: 'evil.org/x?' }, body });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).detail).toMatch(/Invalid Host header/);
  });

  test('names with a directory part are refused with 400 and nothing is stored', async () => {
    const before = listFiles(dataDir);
    for (const name of ['../escape.mpk', '../../etc/cron.d/x', '/etc/passwd', 'sub/dir.mpk', '..\\win.mpk', '..', '']) {
      const res = await request(server.uploadsUrl, {
        method: 'POST',
        headers: { 'Content-Type': MULTIPART },
        body: multipartBody(BOUNDARY, name, Buffer.from('payload')),
      });
      expect(res.status).toBe(400);
      const error = (JSON.parse(res.body) as { file: string[] }).file[0];
      expect(error).toMatch(/directory part|not a file name|no name/);
    }
    expect(listFiles(dataDir)).toEqual(before);
    expect(fs.existsSync(path.join(dataDir, '..', 'escape.mpk'))).toBe(false);
  });

  test('a 10 GB Content-Length is refused at once with 413, without reading the body', async () => {
    const started = Date.now();
    const answer = await rawExchange(
      server.port,
      `POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: ${MULTIPART}\r\nContent-Length: 10737418240\r\n\r\n`,
      Buffer.from(`--${BOUNDARY}\r\n`),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toMatch(/Connection: close/i);
    expect(answer).toContain('Content-Length 10737418240 bytes exceeds');
    expect(Date.now() - started).toBeLessThan(5000);

    // A client that waits for "100 Continue" gets the refusal instead, and sends nothing.
    const expecting = await rawExchange(
      server.port,
      `POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: ${MULTIPART}\r\nContent-Length: 10737418240\r\nExpect: 100-continue\r\n\r\n`,
    );
    expect(expecting).toMatch(/^HTTP\/1\.1 413 /);
    expect(expecting).not.toContain('100 Continue');

    // The server is still fine.
    const url = await client.upload(Buffer.from('still alive'), 'after_refusal.txt');
    expect((await client.download(url)).toString()).toBe('still alive');
  });

  test('a body that grows past the limit without a Content-Length is cut off with 413 and leaves no file', async () => {
    const before = listFiles(dataDir);
    const answer = await rawExchange(
      server.port,
      `POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: ${MULTIPART}\r\nTransfer-Encoding: chunked\r\n\r\n`,
      (() => {
        const body = multipartBody(BOUNDARY, 'too_big.mpk', Buffer.alloc(3 * LIMIT, 7));
        return Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from('\r\n0\r\n\r\n')]);
      })(),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toMatch(/Connection: close/i);
    expect(answer).toContain('exceeds this repository\'s limit of 1048576 bytes');
    // The partial file is removed once its stream has closed.
    for (let i = 0; i < 50 && listFiles(path.join(dataDir, 'incoming')).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(listFiles(dataDir)).toEqual(before);
  });

  test('malformed or incomplete uploads get 4xx answers that say what is wrong', async () => {
    const post = (headers: Record<string, string>, body: Buffer) => request(server.uploadsUrl, { method: 'POST', headers, body });
    const notMultipart = await post({ 'Content-Type': 'application/json' }, Buffer.from('{"file": "x"}'));
    expect(notMultipart.status).toBe(415);
    expect(JSON.parse(notMultipart.body).detail).toMatch(/multipart\/form-data/);

    const empty = await post({ 'Content-Type': MULTIPART }, multipartBody(BOUNDARY, 'empty.mpk', Buffer.alloc(0)));
    expect(empty.status).toBe(400);
    expect(JSON.parse(empty.body)).toEqual({ file: ['The submitted file is empty.'] });

    const otherField = await post({ 'Content-Type': MULTIPART }, multipartBody(BOUNDARY, 'x.mpk', Buffer.from('x'), 'document'));
    expect(JSON.parse(otherField.body)).toEqual({ file: ['No file was submitted.'] });

    const notAFile = await post({ 'Content-Type': MULTIPART }, multipartBody(BOUNDARY, undefined, Buffer.from('x')));
    expect(JSON.parse(notAFile.body).file[0]).toMatch(/not a file/);

    const full = multipartBody(BOUNDARY, 'cut.mpk', Buffer.from('abcdef'));
    const truncated = await post({ 'Content-Type': MULTIPART }, full.subarray(0, full.length - 12));
    expect(truncated.status).toBe(400);
    expect(JSON.parse(truncated.body).detail).toMatch(/before its closing boundary/);

    const wrongBoundary = await post({ 'Content-Type': 'multipart/form-data; boundary=other' }, full);
    expect(wrongBoundary.status).toBe(400);
    expect(JSON.parse(wrongBoundary.body).detail).toMatch(/no boundary line/);

    const longName = await post({ 'Content-Type': MULTIPART }, multipartBody(BOUNDARY, `${'n'.repeat(101)}.mpk`, Buffer.from('x')));
    expect(JSON.parse(longName.body).file[0]).toMatch(/at most 100 characters/);
  });

  test('no listing of uploads, no path escapes from /media/, 404 for unknown files', async () => {
    const list = await request(server.uploadsUrl);
    expect(list.status).toBe(403);
    expect(JSON.parse(list.body).detail).toMatch(/Listing uploads is disabled/);
    expect(list.body).not.toContain('/media/');

    const secret = path.join(dataDir, 'secret.txt');
    fs.writeFileSync(secret, 'outside media');
    for (const p of ['/media/../secret.txt', '/media/%2e%2e/secret.txt', '/media/uploads/..%2f..%2fsecret.txt', '/media/%2Fetc%2Fpasswd', '/media/uploads/']) {
      const res = await request(server.uploadsUrl, { path: p });
      expect([p, res.status]).toEqual([p, 404]);
      expect(res.body).not.toContain('outside media');
    }
    expect((await request(`${mediaPrefix()}missing.mpk`)).status).toBe(404);
    const put = await request(server.uploadsUrl, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('POST');
  });

  test('the client reports an upload the server refuses, without retrying a 4xx', async () => {
    const huge = new RepositoryClient({ uploadsUrl: server.uploadsUrl, retries: 3 });
    await expect(huge.upload(Buffer.alloc(LIMIT + 70 * 1024), 'huge.mpk')).rejects.toMatchObject({
      kind: 'http-status',
      status: 413,
      message: expect.stringMatching(/HTTP 413.*exceeds this repository's limit/),
    });
  });
});

describe('embedded repository server lifecycle', () => {
  test('a temporary data directory is removed on close; a given one is kept', async () => {
    const temp = await startRepositoryServer();
    const tempDir = temp.dataDir;
    await new RepositoryClient({ uploadsUrl: temp.uploadsUrl }).upload(Buffer.from('x'), 'x.bin');
    await temp.close();
    expect(fs.existsSync(tempDir)).toBe(false);

    const kept = fs.mkdtempSync(path.join(os.tmpdir(), 'repo-kept-'));
    const server = await startRepositoryServer({ dataDir: kept });
    const url = await new RepositoryClient({ uploadsUrl: server.uploadsUrl }).upload(Buffer.from('kept'), 'kept.bin');
    await server.close();
    const relative = new URL(url).pathname.replace(/^\/media\//, '');
    expect(fs.readFileSync(path.join(kept, 'media', relative), 'utf8')).toBe('kept');
    fs.rmSync(kept, { recursive: true, force: true });
  });
});

describe('keep-alive connections', () => {
  it('stay open longer than a client keeps them idle (no ECONNRESET when a client reuses one after 5 s)', async () => {
    const http = await import('http');
    const { startRepositoryServer } = await import('./repository-server');
    const server = await startRepositoryServer({ port: 0 });
    const agent = new http.Agent({ keepAlive: true, timeout: 30_000 });
    const { RepositoryClient } = await import('./repository');
    const url = await new RepositoryClient({ uploadsUrl: server.uploadsUrl, retries: 0 }).upload(Buffer.from('w'), 'w.mpk');
    const get = () => new Promise<{ reused: boolean; status: number }>((resolve, reject) => {
      const req = http.get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ reused: req.reusedSocket, status: res.statusCode ?? 0 }));
      });
      req.on('error', reject);
    });
    try {
      expect((await get()).reused).toBe(false);
      await new Promise((r) => setTimeout(r, 5500));
      expect(await get()).toEqual({ reused: true, status: 200 });
    } finally {
      agent.destroy();
      await server.close();
    }
  }, 20_000);
});

/** Raw HTTP helpers for repository tests: requests a well-behaved client library would refuse to make. */
import * as http from 'http';
import * as net from 'net';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A multipart/form-data body with one file part, the file name written verbatim. */
export function multipartBody(
  boundary: string,
  fileName: string | undefined,
  content: Buffer,
  field = 'file',
): Buffer {
  const disposition = fileName === undefined ? `form-data; name="${field}"` : `form-data; name="${field}"; filename="${fileName}"`;
  return Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: ${disposition}\r\nContent-Type: application/octet-stream\r\n\r\n`),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
}

export function request(
  url: string,
  options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer; path?: string } = {},
): Promise<RawResponse> {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: options.path ?? target.pathname + target.search,
        method: options.method ?? 'GET',
        headers: options.headers,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

/**
 * Sends raw request bytes on a TCP socket and returns what the server answered before closing, plus how long
 * it took. Used to send headers that promise a huge body which never comes.
 */
export function rawExchange(port: number, head: string, bodyStart: Buffer = Buffer.alloc(0), timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms; got: ${Buffer.concat(chunks).toString('utf8')}`));
    }, timeoutMs);
    socket.on('connect', () => {
      socket.write(head);
      if (bodyStart.length) socket.write(bodyStart);
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined); // a reset after the answer is expected
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

/**
 * The HTTP answers of the embedded repository (repository-server.ts): errors as DRF-style JSON bodies, and the
 * rule that an answer given before the body was read closes the connection rather than reading gigabytes.
 */
import type * as http from 'http';
import { describeError, type Logger } from './logger';
import { MultipartError } from './multipart';
import { FedbiomedTsError } from '../errors';

/** An answer other than success: its status and its JSON body. */
export class HttpError extends FedbiomedTsError {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(typeof body === 'object' ? JSON.stringify(body) : String(body));
  }
}

export const notFound = (): HttpError => new HttpError(404, { detail: 'Not found.' });

export function headerValue(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function methodNotAllowed(method: string, allow: string): HttpError {
  return new HttpError(405, { detail: `Method "${method}" not allowed.`, allow });
}

export function asHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof MultipartError) return new HttpError(400, { detail: `Multipart form parse error - ${err.message}` });
  return new HttpError(500, { detail: `internal error: ${describeError(err)}` });
}

export function sendJson(res: http.ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(headOnly ? undefined : text);
}

export function sendError(res: http.ServerResponse, err: unknown, logger: Logger, bodyUnread = false): void {
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

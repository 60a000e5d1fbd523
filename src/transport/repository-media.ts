/** GET /media/…: the embedded repository's stored files, streamed, never a path outside the media folder. */
import * as fs from 'fs';
import type * as http from 'http';
import * as path from 'path';
import { notFound } from './repository-http';
import { describeError, type Logger } from './logger';

const MEDIA_TYPES: Record<string, string> = {
  '.py': 'text/x-python',
  '.mpk': 'application/octet-stream',
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.csv': 'text/csv',
  '.onnx': 'application/octet-stream',
};

/** Streams the file at `rawPath` (URL-encoded, below `mediaRoot`); 404 for anything that is not a file there. */
export async function serveMedia(
  mediaRoot: string, rawPath: string, res: http.ServerResponse, headOnly: boolean, logger: Logger,
): Promise<void> {
  let segments: string[];
  try {
    segments = rawPath.split('/').map((s) => decodeURIComponent(s));
  } catch {
    throw notFound();
  }
  if (segments.some((s) => s === '' || s === '.' || s === '..' || /[/\\\0]/.test(s))) throw notFound();
  const filePath = path.join(mediaRoot, ...segments);
  if (!filePath.startsWith(mediaRoot + path.sep)) throw notFound();
  let stat: fs.Stats;
  try {
    stat = await fs.promises.stat(filePath);
  } catch {
    throw notFound();
  }
  if (!stat.isFile()) throw notFound();
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

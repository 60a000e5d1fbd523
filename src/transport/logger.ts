/**
 * The transport layer reports what it drops or retries through a small pluggable logger, so the node agent, the
 * researcher and the CLI can route these lines wherever they keep their own logs (and tests can assert on them).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** Writes warnings and errors to stderr, prefixed by a tag; info and debug only when asked for. */
export function consoleLogger(tag = 'fedbiomed-ts', minLevel: LogLevel = 'warn'): Logger {
  const order: LogLevel[] = ['debug', 'info', 'warn', 'error'];
  const min = order.indexOf(minLevel);
  const write = (level: LogLevel) => (message: string) => {
    if (order.indexOf(level) >= min) process.stderr.write(`[${tag}] ${level.toUpperCase()} ${message}\n`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A logger that keeps every line, for tests and for tools that show recent transport events. */
export interface MemoryLogger extends Logger {
  readonly lines: Array<{ level: LogLevel; message: string }>;
}

export function memoryLogger(): MemoryLogger {
  const lines: Array<{ level: LogLevel; message: string }> = [];
  const push = (level: LogLevel) => (message: string) => void lines.push({ level, message });
  return { lines, debug: push('debug'), info: push('info'), warn: push('warn'), error: push('error') };
}

/** Error text for any thrown value (libraries throw strings, objects and AggregateErrors). */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map(describeError).join('; ');
  }
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const text = err.message || err.name;
    return code && !text.includes(code) ? `${code}: ${text}` : text;
  }
  return String(err);
}

/**
 * Node logging: every line goes to the local console; INFO and above also go to researchers on `general/logger`
 * in the Python node's format (a `log` message whose `msg` is itself JSON text with asctime, node_id, name, level,
 * message), so a Python researcher prints them as it prints a Python node's.
 */
import { pythonJsonDumps } from '../src/protocol/python-json-writer';
import { printable } from '../src/protocol/printable';
import type { LogMessage } from '../src/protocol/messages';

export type NodeLogLevel = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL';

const RANK: Record<NodeLogLevel, number> = { DEBUG: 10, INFO: 20, WARNING: 30, ERROR: 40, CRITICAL: 50 };

/** Python logging's default asctime: `2026-11-22 03:56:29,443` in local time. */
function pythonAsctime(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`;
}

function buildLogMessage(nodeId: string, level: NodeLogLevel, message: string, when = new Date()): LogMessage {
  return {
    command: 'log',
    level,
    msg: pythonJsonDumps({ asctime: pythonAsctime(when), node_id: nodeId, name: 'fedbiomed', level, message }),
    node_id: nodeId,
    researcher_id: '<unknown>',
  };
}

export class NodeLog {
  private remote: ((m: LogMessage) => void) | undefined;

  constructor(private readonly nodeId: string,
    private readonly local: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
    private readonly localMin: NodeLogLevel = 'INFO') {}

  /** Starts forwarding INFO+ records to researchers (once the MQTT connection is up). */
  forwardTo(send: ((m: LogMessage) => void) | undefined): void {
    this.remote = send;
  }

  debug(m: string): void { this.log('DEBUG', m); }
  info(m: string): void { this.log('INFO', m); }
  warning(m: string): void { this.log('WARNING', m); }
  error(m: string): void { this.log('ERROR', m); }
  critical(m: string): void { this.log('CRITICAL', m); }

  /** A line for the node's operator only, never forwarded (what the node runs on is not the researchers' business). */
  localOnly(level: NodeLogLevel, message: string): void {
    this.write(level, message, false);
  }

  log(level: NodeLogLevel, message: string): void {
    this.write(level, message, true);
  }

  private write(level: NodeLogLevel, message: string, forward: boolean): void {
    const now = new Date();
    // Messages quote researcher ids, descriptions and URLs from the wire: printed as text on the operator's console.
    if (RANK[level] >= RANK[this.localMin]) this.local(`${pythonAsctime(now)} ${this.nodeId} ${level} ${printable(message)}`);
    if (forward && this.remote && RANK[level] >= RANK.INFO) {
      try {
        this.remote(buildLogMessage(this.nodeId, level, message, now));
      } catch (err) {
        this.local(`${pythonAsctime()} ${this.nodeId} WARNING could not forward a log line: ${(err as Error).message}`);
      }
    }
  }
}

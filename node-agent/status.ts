/**
 * What a running node is doing, for `fedbiomed-ts node status`: the agent keeps `status.json` in its folder (broker
 * connection, last message seen, round in progress), written atomically; the status command joins it with the lock
 * (is the process alive?) and the registries (datasets, plans and their approval state). Nothing here is sent to
 * researchers.
 */
import * as fs from 'fs';
import * as path from 'path';
import { redactBrokerUrl } from '../src/transport/connection';
import { lockHeld, readLock, type LockOwner } from './lock';
import { openNodeStores } from './stores';

export const STATUS_FILE = 'status.json';
/** Message-driven updates are written at most this often (a researcher pinging in a loop must not hammer the disk). */
const MESSAGE_WRITE_INTERVAL_MS = 1000;

export interface NodeRuntimeStatus {
  nodeId: string;
  pid: number;
  startedAt: string;
  /** Set when the agent stopped cleanly. */
  stoppedAt?: string;
  broker: { url: string; connected: boolean; since: string };
  lastMessage?: { command: string; researcherId?: string; at: string };
  round?: { jobId: string; round: number | null; researcherId: string; since: string };
}

export class StatusRecorder {
  private readonly file: string;
  private readonly status: NodeRuntimeStatus;
  private timer: NodeJS.Timeout | undefined;

  constructor(dir: string, nodeId: string, brokerUrl: string) {
    this.file = path.join(dir, STATUS_FILE);
    const now = new Date().toISOString();
    this.status = { nodeId, pid: process.pid, startedAt: now, broker: { url: redactBrokerUrl(brokerUrl), connected: false, since: now } };
    this.write();
  }

  brokerConnected(connected: boolean): void {
    if (this.status.broker.connected === connected) return;
    this.status.broker = { ...this.status.broker, connected, since: new Date().toISOString() };
    this.write();
  }

  messageSeen(command: string, researcherId: string | undefined): void {
    this.status.lastMessage = { command, ...(researcherId ? { researcherId } : {}), at: new Date().toISOString() };
    this.timer ??= setTimeout(() => this.write(), MESSAGE_WRITE_INTERVAL_MS).unref();
  }

  roundStarted(jobId: string, round: number | null, researcherId: string): void {
    this.status.round = { jobId, round, researcherId, since: new Date().toISOString() };
    this.write();
  }

  roundEnded(): void {
    delete this.status.round;
    this.write();
  }

  stopped(): void {
    this.status.stoppedAt = new Date().toISOString();
    this.status.broker = { ...this.status.broker, connected: false, since: this.status.stoppedAt };
    this.write();
  }

  private write(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const temporary = `${this.file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(temporary, `${JSON.stringify(this.status, null, 2)}\n`);
      fs.renameSync(temporary, this.file);
    } catch {
      // A status file that cannot be written (disk full) must not stop the node: the status command says "unknown".
    }
  }
}

export interface NodeStatusReport {
  dir: string;
  nodeId: string;
  running: boolean;
  pid?: number;
  /** The lock names a process that is gone: the node died without cleaning up (the next start takes over). */
  staleLock?: LockOwner;
  runtime?: NodeRuntimeStatus;
  datasets: { id: string; name: string; type: string; tags: string[] }[];
  plans: { id: string; name: string; status: string; hash: string }[];
}

export function nodeStatus(dir: string): NodeStatusReport {
  const stores = openNodeStores(dir);
  const owner = readLock(stores.paths.dir);
  const running = lockHeld(owner);
  let runtime: NodeRuntimeStatus | undefined;
  try {
    runtime = JSON.parse(fs.readFileSync(path.join(stores.paths.dir, STATUS_FILE), 'utf8')) as NodeRuntimeStatus;
  } catch {
    runtime = undefined;
  }
  return {
    dir: stores.paths.dir,
    nodeId: stores.config.nodeId,
    running,
    ...(running ? { pid: owner.pid } : {}),
    ...(!running && owner ? { staleLock: owner } : {}),
    // The runtime part describes the process that holds the lock, or the last one that ran.
    ...(runtime ? { runtime } : {}),
    datasets: stores.datasets.list().map((d) => ({ id: d.dataset_id, name: d.name, type: d.data_type, tags: d.tags })),
    plans: stores.plans.list().map((p) => ({ id: p.training_plan_id, name: p.name, status: p.training_plan_status, hash: p.hash })),
  };
}

/** The report as lines for a terminal. */
export function formatNodeStatus(r: NodeStatusReport, now = Date.now()): string {
  const ago = (iso: string) => `${Math.max(0, Math.round((now - Date.parse(iso)) / 1000))} s ago`;
  const lines = [`node ${r.nodeId} (${r.dir})`];
  if (r.running) lines.push(`  state        running (pid ${r.pid})`);
  else if (r.staleLock) lines.push(`  state        not running: pid ${r.staleLock.pid} died without stopping (stale lock, cleared at next start)`);
  else lines.push(`  state        not running${r.runtime?.stoppedAt ? ` (stopped ${r.runtime.stoppedAt})` : ''}`);
  const rt = r.runtime;
  if (rt && r.running) {
    lines.push(`  broker       ${rt.broker.url} ${rt.broker.connected ? 'connected' : 'DISCONNECTED'} since ${ago(rt.broker.since)}`);
    lines.push(`  last message ${rt.lastMessage ? `${rt.lastMessage.command}${rt.lastMessage.researcherId ? ` from ${rt.lastMessage.researcherId}` : ''}, ${ago(rt.lastMessage.at)}` : 'none yet'}`);
    lines.push(`  round        ${rt.round ? `job ${rt.round.jobId} round ${rt.round.round ?? '?'} for ${rt.round.researcherId}, running for ${ago(rt.round.since).replace(' ago', '')}` : 'none in progress'}`);
  }
  lines.push(`  datasets     ${r.datasets.length === 0 ? 'none' : ''}`);
  for (const d of r.datasets) lines.push(`    ${d.id}  ${d.name}  ${d.type}  [${d.tags.join(', ')}]`);
  lines.push(`  plans        ${r.plans.length === 0 ? 'none received' : ''}`);
  for (const p of r.plans) lines.push(`    ${p.status.padEnd(8)}  ${p.id}  ${p.name}  ${p.hash.slice(0, 12)}`);
  return lines.map((l) => l.trimEnd()).join('\n');
}

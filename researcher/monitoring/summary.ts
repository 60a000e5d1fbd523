/** The per-round summary table printed after each round (plain text, fixed-width columns). */
import { printable } from '../../src/protocol/printable';
import type { RoundSummary } from '../events';

function fmt(v: number | null, digits = 4): string {
  if (v === null) return '-';
  if (!Number.isFinite(v)) return String(v);
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

function metrics(m: Record<string, number> | null): string {
  if (!m || Object.keys(m).length === 0) return '-';
  return Object.entries(m)
    .map(([k, v]) => `${k}=${fmt(v)}`)
    .join(' ');
}

export function formatTable(header: string[], rawRows: string[][]): string {
  // Cells come from the wire (node ids, messages): printed as text, never as terminal commands or extra lines.
  const rows = rawRows.map((r) => r.map((c) => printable(c)));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatRoundSummary(s: RoundSummary): string {
  const title =
    `Round ${s.round}${s.training ? '' : ' (validation only)'}: ` +
    `${s.nodes.filter((n) => n.status === 'ok').length}/${s.nodes.length} nodes ok, ${s.durationMs} ms` +
    (s.aggregationReadyMs !== null ? `, aggregated in ${s.aggregationReadyMs} ms` : '') +
    (s.training && !s.aggregated ? ', NOT aggregated' : '');
  const rows = s.nodes.map((n) => [
    n.nodeId,
    n.status,
    n.sampleSize === null ? '-' : String(n.sampleSize),
    fmt(n.lastLoss),
    metrics(n.validationGlobal),
    metrics(n.validationLocal),
    n.trainingSeconds === null ? '-' : n.trainingSeconds.toFixed(3),
    n.replyMs === null ? '-' : String(n.replyMs),
    n.message.length > 60 ? n.message.slice(0, 57) + '...' : n.message,
  ]);
  return (
    title +
    '\n' +
    formatTable(['node', 'status', 'samples', 'loss', 'val(global)', 'val(local)', 'train s', 'reply ms', 'message'], rows)
  );
}

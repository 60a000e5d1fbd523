/**
 * Live progress of the federated run: a bar per round (hospitals done / total, latest training loss of each)
 * redrawn in place on a terminal, and one table row per round (mean training loss per site, held-out score (AUC,
 * Dice) of the new global model, wall time). Without a terminal (CI, pipes, tests) only whole lines are printed.
 */
import type { ExperimentEvent } from 'fedbiomed-ts';

export interface RoundRow {
  round: number;
  /** Mean training loss of the round per site (sample-weighted over the reported batches). */
  lossBySite: Record<string, number>;
  /** Score (AUC, Dice) of the round's global model on the held-out patients (display only: never used to pick a model). */
  heldOutScore: number;
  seconds: number;
}

export interface ProgressOptions {
  out: NodeJS.WritableStream & { isTTY?: boolean };
  sites: { nodeId: string; site: string }[];
  rounds: number;
  /** Name of the held-out score column (default 'AUC'). */
  scoreName?: string;
}

const BAR_WIDTH = 24;

export class FederatedProgress {
  private readonly siteOf = new Map<string, string>();
  private readonly tty: boolean;
  private round = 0;
  private done = 0;
  private started = Date.now();
  private readonly latest = new Map<string, number>();
  private readonly sums = new Map<string, { loss: number; samples: number }>();
  private barShown = false;

  constructor(private readonly options: ProgressOptions) {
    for (const s of options.sites) this.siteOf.set(s.nodeId, s.site);
    this.tty = Boolean(options.out.isTTY);
  }

  /** Feed every experiment event here. */
  handle(ev: ExperimentEvent): void {
    switch (ev.type) {
      case 'round-start':
        if (!ev.training) return;
        this.round = ev.round;
        this.done = 0;
        this.started = Date.now();
        this.latest.clear();
        this.sums.clear();
        this.draw();
        break;
      case 'scalar': {
        if (ev.phase !== 'training' || typeof ev.metric['Loss'] !== 'number') return;
        const site = this.siteOf.get(ev.nodeId) ?? ev.nodeId;
        const loss = ev.metric['Loss'];
        this.latest.set(site, loss);
        const s = this.sums.get(site) ?? { loss: 0, samples: 0 };
        s.loss += loss * ev.batchSamples;
        s.samples += ev.batchSamples;
        this.sums.set(site, s);
        if (this.tty) this.draw();
        break;
      }
      case 'node-reply':
      case 'node-failed':
        this.done = ev.done;
        if (ev.type === 'node-failed') this.line(`  ${this.siteOf.get(ev.nodeId) ?? ev.nodeId}: ${ev.reason}: ${ev.message}`);
        else if (!this.tty) this.line(`  round ${ev.round + 1}: ${this.siteOf.get(ev.nodeId) ?? ev.nodeId} done (${ev.done}/${ev.total})`);
        this.draw();
        break;
      case 'log':
        if (ev.level === 'ERROR' || ev.level === 'CRITICAL') this.line(`  [${this.siteOf.get(ev.nodeId) ?? ev.nodeId}] ${ev.level}: ${ev.message}`);
        break;
      default:
        break;
    }
  }

  /** Mean training loss per site of the current round. */
  roundLosses(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.options.sites) {
      const sum = this.sums.get(s.site);
      out[s.site] = sum && sum.samples > 0 ? sum.loss / sum.samples : Number.NaN;
    }
    return out;
  }

  roundSeconds(): number {
    return (Date.now() - this.started) / 1000;
  }

  header(): void {
    const sites = this.options.sites.map((s) => pad(`${s.site} loss`, 11)).join(' | ');
    const text = `round | ${sites} | ${`held-out ${this.options.scoreName ?? 'AUC'}`.padEnd(12)} | time`;
    this.line(text);
    this.line('-'.repeat(text.length + 2));
  }

  row(r: RoundRow): void {
    const sites = this.options.sites.map((s) => pad(fmt(r.lossBySite[s.site]), 11)).join(' | ');
    this.line(`${pad(`${r.round}/${this.options.rounds}`, 5)} | ${sites} | ${pad(fmt(r.heldOutScore), 12)} | ${r.seconds.toFixed(1)} s`);
  }

  /** Prints a whole line (clearing the bar first on a terminal). */
  line(text: string): void {
    if (this.tty && this.barShown) this.options.out.write('\r\x1b[K');
    this.barShown = false;
    this.options.out.write(`${text}\n`);
  }

  private draw(): void {
    if (!this.tty) return;
    const total = this.options.sites.length;
    const filled = Math.round((this.done / total) * BAR_WIDTH);
    const losses = [...this.latest].map(([site, l]) => `${site} ${l.toFixed(3)}`).join('  ');
    const text = `round ${this.round + 1}/${this.options.rounds} [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ` +
      `${this.done}/${total} hospitals  ${losses}`;
    this.options.out.write(`\r\x1b[K${text}`);
    this.barShown = true;
  }
}

function fmt(x: number | undefined): string {
  return x === undefined || Number.isNaN(x) ? '-' : x.toFixed(3);
}

function pad(text: string, width: number): string {
  return text.padStart(width);
}

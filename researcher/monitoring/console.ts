/**
 * Console monitor: a progress bar per round (nodes done / total, latest loss per node) redrawn in place on a
 * TTY, plain lines otherwise (CI logs, pipes); node logs; the summary table after each round.
 */
import { printable } from '../../src/protocol/printable';
import type { ExperimentEvent } from '../events';
import { formatPrivacyEstimates } from '../privacy';
import { formatRoundSummary } from './summary';

export interface ConsoleMonitorOptions {
  out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Defaults to `out.isTTY`. */
  tty?: boolean;
  /** Minimum node log level shown: DEBUG < INFO < WARNING < ERROR < CRITICAL. */
  logLevel?: string;
  barWidth?: number;
}

const LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'];

export function progressBar(done: number, total: number, width: number): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return '[' + '#'.repeat(filled) + '-'.repeat(width - filled) + ']';
}

export class ConsoleMonitor {
  private readonly out: NonNullable<ConsoleMonitorOptions['out']>;
  private readonly tty: boolean;
  private readonly minLevel: number;
  private readonly barWidth: number;
  private round = 0;
  private total = 0;
  private done = 0;
  private training = true;
  private readonly losses = new Map<string, number>();
  private barShown = false;

  constructor(options: ConsoleMonitorOptions = {}) {
    this.out = options.out ?? process.stdout;
    this.tty = options.tty ?? Boolean(this.out.isTTY);
    this.minLevel = Math.max(0, LEVELS.indexOf((options.logLevel ?? 'INFO').toUpperCase()));
    this.barWidth = options.barWidth ?? 20;
  }

  handle(ev: ExperimentEvent): void {
    switch (ev.type) {
      case 'experiment-start':
        this.println(`Experiment ${ev.jobId} (researcher ${ev.researcherId}): ${ev.roundLimit} round(s) on ${ev.nodes.join(', ')}`);
        break;
      case 'privacy-estimate':
        this.println(formatPrivacyEstimates(ev.nodes));
        break;
      case 'round-start':
        this.round = ev.round;
        this.total = ev.nodes.length;
        this.done = 0;
        this.training = ev.training;
        this.losses.clear();
        this.drawBar();
        break;
      case 'node-reply':
      case 'node-failed':
        this.done = ev.done;
        if (ev.type === 'node-failed') this.println(`  ${printable(ev.nodeId)}: ${ev.reason}: ${printable(ev.message)}`);
        this.drawBar(this.tty ? undefined : `${ev.nodeId} ${ev.type === 'node-reply' && ev.success ? 'done' : 'failed'}`);
        break;
      case 'scalar':
        if (ev.phase === 'training' && typeof ev.metric.Loss === 'number') {
          this.losses.set(ev.nodeId, ev.metric.Loss);
          if (this.tty) this.drawBar();
        }
        break;
      case 'log':
        if (Math.max(0, LEVELS.indexOf(ev.level)) >= this.minLevel) this.println(`  [${printable(ev.level)}] ${printable(ev.nodeId)}: ${printable(ev.message)}`);
        break;
      case 'round-end':
        this.endBar();
        this.println(formatRoundSummary(ev.summary));
        break;
      case 'round-retried':
        this.println(`  round ${ev.round} asked again: ${ev.reason}`);
        break;
      case 'node-skipped':
        this.println(`  ${printable(ev.nodeId)}: skipped: ${ev.reason}`);
        break;
      case 'reply-dropped':
        this.println(`  ${printable(ev.nodeId)}: reply dropped: ${ev.reason}`);
        break;
      case 'breakpoint':
        this.println(`  breakpoint saved: ${ev.dir}`);
        break;
      case 'experiment-end':
        this.println(`Experiment finished after ${ev.roundsCompleted} round(s)`);
        break;
      default:
        break;
    }
  }

  private barText(): string {
    const losses = [...this.losses].map(([n, l]) => `${n} loss=${Number.isFinite(l) ? l.toFixed(4) : String(l)}`).join(' ');
    const label = this.training ? `Round ${this.round}` : `Validation ${this.round}`;
    return `${label} ${progressBar(this.done, this.total, this.barWidth)} ${this.done}/${this.total} nodes${losses ? '  ' + losses : ''}`;
  }

  private drawBar(note?: string): void {
    if (this.tty) {
      const cols = this.out.columns ?? 120;
      this.out.write('\r\x1b[K' + this.barText().slice(0, cols - 1));
      this.barShown = true;
    } else {
      this.out.write(this.barText() + (note ? `  (${note})` : '') + '\n');
    }
  }

  private endBar(): void {
    if (this.tty && this.barShown) {
      this.out.write('\n');
      this.barShown = false;
    }
  }

  private println(raw: string): void {
    // Everything printed here carries wire text (node ids, log lines, error messages): neutralised once, here.
    const text = printable(raw, { multiline: true });
    if (this.tty && this.barShown) {
      this.out.write('\r\x1b[K' + text + '\n');
      this.out.write(this.barText());
    } else {
      this.out.write(text + '\n');
    }
  }
}

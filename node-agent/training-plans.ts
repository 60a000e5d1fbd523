/**
 * Training-plan approval records, in Fed-BioMed's `TrainingPlans` table format. A TS node identifies a plan by the
 * SHA-256 of its canonical plan JSON (DESIGN.md: a plan is data), not by a hash of Python source.
 */
import * as fs from 'fs';
import * as path from 'path';
import { randomUUID } from 'crypto';
import { JsonDb, Document, appendDocument } from './json-db';
import { FedbiomedTsError } from '../src/errors';

const TRAINING_PLANS_TABLE = 'TrainingPlans';

export type PlanStatus = 'Approved' | 'Rejected' | 'Pending';

export interface TrainingPlanEntry {
  name: string;
  description: string;
  hash: string;
  training_plan_path: string;
  training_plan_id: string;
  training_plan_type: 'requested' | 'registered' | 'default';
  training_plan_status: PlanStatus;
  algorithm: 'SHA256';
  date_created: string;
  date_modified: string;
  date_registered: string;
  date_last_action: string;
  researcher_id: string | null;
  notes: string | null;
}

export class TrainingPlanError extends FedbiomedTsError {}

/** Fed-BioMed's date format `%d-%m-%Y %H:%M:%S.%f` (local time). */
function fedbiomedDate(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getDate())}-${p(d.getMonth() + 1)}-${d.getFullYear()} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
}

/** Shortest id or hash prefix accepted on the command line. */
const MIN_PREFIX_CHARS = 4;

export class TrainingPlanStore {
  constructor(private readonly db: JsonDb, private readonly plansDir: string) {}

  list(): TrainingPlanEntry[] {
    return this.db.all(TRAINING_PLANS_TABLE) as unknown as TrainingPlanEntry[];
  }

  byHash(hash: string): TrainingPlanEntry | undefined {
    return this.list().find((p) => p.hash === hash);
  }

  /** Finds a plan by id, or by a unique prefix of its id or hash (convenient on the command line). */
  lookup(idOrPrefix: string): TrainingPlanEntry {
    // A prefix must say something: "" (or a few characters) would silently pick whichever plan happens to be alone.
    if (idOrPrefix.trim().length < MIN_PREFIX_CHARS) {
      throw new TrainingPlanError(`give a training plan id, or at least ${MIN_PREFIX_CHARS} characters of its id or hash ` +
        `(got ${JSON.stringify(idOrPrefix)})`);
    }
    const matches = this.list().filter(
      (p) => p.training_plan_id === idOrPrefix || p.training_plan_id.startsWith(idOrPrefix) || p.hash.startsWith(idOrPrefix),
    );
    if (matches.length === 0) throw new TrainingPlanError(`no training plan matches "${idOrPrefix}"`);
    if (matches.length > 1) {
      throw new TrainingPlanError(`"${idOrPrefix}" matches ${matches.length} training plans; give more characters`);
    }
    return matches[0];
  }

  /**
   * Records a plan received in an approval request as Pending, unless a plan with the same hash is known.
   * Returns the (new or existing) entry and whether it was new.
   */
  registerRequested(args: {
    hash: string;
    source: string;
    description: string;
    researcherId: string;
  }): { entry: TrainingPlanEntry; created: boolean } {
    const known = this.byHash(args.hash);
    if (known) return { entry: known, created: false };
    const id = `training_plan_${randomUUID()}`;
    const file = path.join(this.plansDir, `${id}.py`);
    fs.mkdirSync(this.plansDir, { recursive: true });
    fs.writeFileSync(file, args.source);
    const now = fedbiomedDate();
    const entry: TrainingPlanEntry = {
      name: id,
      description: args.description,
      hash: args.hash,
      training_plan_path: file,
      training_plan_id: id,
      training_plan_type: 'requested',
      training_plan_status: 'Pending',
      algorithm: 'SHA256',
      date_created: now,
      date_modified: now,
      date_registered: now,
      date_last_action: now,
      researcher_id: args.researcherId,
      notes: null,
    };
    let created = true;
    this.db.update((tables) => {
      const rows = (tables[TRAINING_PLANS_TABLE] ??= {});
      const existing = Object.values(rows).find((p) => p['hash'] === args.hash);
      if (existing) {
        created = false;
        return;
      }
      appendDocument(rows, entry as unknown as Document);
    });
    if (!created) {
      fs.rmSync(file, { force: true });
      return { entry: this.byHash(args.hash) as TrainingPlanEntry, created: false };
    }
    return { entry, created: true };
  }

  setStatus(idOrPrefix: string, status: PlanStatus, notes?: string): TrainingPlanEntry {
    const target = this.lookup(idOrPrefix);
    const now = fedbiomedDate();
    this.db.modify(
      TRAINING_PLANS_TABLE,
      (p) => p['training_plan_id'] === target.training_plan_id,
      (p) => ({ ...p, training_plan_status: status, date_last_action: now, notes: notes ?? p['notes'] ?? null }),
    );
    return { ...target, training_plan_status: status, date_last_action: now, notes: notes ?? target.notes };
  }
}

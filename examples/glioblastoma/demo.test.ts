/**
 * The quick demo's responder part end to end, as a user runs it (`fedbiomed-ts demo --quick --task responder`, in a child process; the evolution part: evolution-demo.test.ts and the demo itself): cohort, embedded
 * network, three TS nodes with approval, FedAvg, baselines, held-out evaluation, ONNX check, report. Then the
 * report is read back: files present, metrics numeric and consistent, federated AUC above every single-site AUC.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { QUICK_DEMO } from './demo-config';
import { REPORT_FILES } from './report';

jest.setTimeout(240_000);

const ROOT = path.join(__dirname, '..', '..');

interface MetricsModel {
  name: string;
  kind: 'federated' | 'single-site' | 'centralised';
  auc: number;
  sensitivity: number;
  specificity: number;
  accuracy: number;
  confusion: { tp: number; fp: number; tn: number; fn: number };
}

interface Metrics {
  heldOut: { patients: number; responders: number };
  models: MetricsModel[];
  rounds: { round: number; lossBySite: Record<string, number>; heldOutScore: number }[];
  onnx: { passed: boolean; maxAbsDifference: number; samples: number };
}

describe('fedbiomed-ts demo --quick', () => {
  let out: string;
  let run: ReturnType<typeof spawnSync>;

  beforeAll(() => {
    out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fbts-demo-')), 'demo-output');
    run = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'fedbiomed-ts.js'), 'demo', '--quick', '--task', 'responder', '--out', out], {
      cwd: ROOT, encoding: 'utf8', timeout: 230_000, env: { ...process.env, FORCE_COLOR: '0' },
    });
  });

  afterAll(() => {
    if (out) fs.rmSync(path.dirname(out), { recursive: true, force: true });
  });

  test('runs to the end and says where the report is', () => {
    expect(run.error).toBeUndefined();
    if (run.status !== 0) throw new Error(`demo exited with ${run.status}:\n${String(run.stdout).slice(-3000)}\n${String(run.stderr).slice(-3000)}`);
    const stdout = String(run.stdout);
    for (const site of ['Caen', 'Rouen', 'Nice']) expect(stdout).toContain(`[${site}] hospital operator reviews the plan and approves it`);
    expect(stdout).toContain(`report: ${path.join(out, 'report', REPORT_FILES.markdown)}`);
  });

  test('writes report.md, metrics.json, the plots, the ONNX model and the generated PyTorch plan', () => {
    const report = path.join(out, 'report');
    for (const f of Object.values(REPORT_FILES)) expect(fs.existsSync(path.join(report, f))).toBe(true);
    const md = fs.readFileSync(path.join(report, REPORT_FILES.markdown), 'utf8');
    expect(md).toMatch(/\| Federated \(FedAvg\) \| .* \| 0\.\d{3} \| \d\.\d{3} \| \d\.\d{3} \|/);
    for (const svg of [REPORT_FILES.loss, REPORT_FILES.roc, REPORT_FILES.roundAuc]) {
      const text = fs.readFileSync(path.join(report, svg), 'utf8');
      expect(text.startsWith('<svg')).toBe(true);
      expect(text).toMatch(/<path d="M[\d.]+,[\d.]+ L/);
      expect(md).toContain(`](${svg})`);
    }
    expect(fs.statSync(path.join(report, 'GlioResponsePlan.onnx')).size).toBeGreaterThan(1000);
    expect(fs.readFileSync(path.join(report, 'GlioResponsePlan.py'), 'utf8')).toContain('class GlioResponsePlan(TorchTrainingPlan)');
  });

  test('metrics are numeric and consistent; federated AUC beats every site trained alone (default seed)', () => {
    const metrics = JSON.parse(fs.readFileSync(path.join(out, 'report', REPORT_FILES.metrics), 'utf8')) as Metrics;
    expect(metrics.heldOut.patients).toBe(QUICK_DEMO.heldOut);
    expect(metrics.models.map((m) => m.kind)).toEqual(['federated', 'single-site', 'single-site', 'single-site', 'centralised']);
    for (const m of metrics.models) {
      for (const v of [m.auc, m.sensitivity, m.specificity, m.accuracy]) {
        expect(Number.isFinite(v)).toBe(true);
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
      const c = m.confusion;
      expect(c.tp + c.fn).toBe(metrics.heldOut.responders);
      expect(c.tp + c.fn + c.fp + c.tn).toBe(metrics.heldOut.patients);
      expect(m.sensitivity).toBeCloseTo(c.tp / (c.tp + c.fn), 10);
    }
    const federated = metrics.models[0];
    const singles = metrics.models.filter((m) => m.kind === 'single-site');
    for (const s of singles) expect(federated.auc).toBeGreaterThan(s.auc);
    expect(metrics.rounds).toHaveLength(QUICK_DEMO.rounds);
    for (const r of metrics.rounds) {
      expect(Object.keys(r.lossBySite).sort()).toEqual(['Caen', 'Nice', 'Rouen']);
      for (const loss of Object.values(r.lossBySite)) expect(loss).toBeGreaterThan(0);
    }
    // The federated model learned: its training loss fell at every site.
    for (const site of ['Caen', 'Rouen', 'Nice']) {
      expect(metrics.rounds[metrics.rounds.length - 1].lossBySite[site]).toBeLessThan(metrics.rounds[0].lossBySite[site]);
    }
    expect(metrics.onnx.passed).toBe(true);
    expect(metrics.onnx.samples).toBe(metrics.heldOut.patients);
    expect(metrics.onnx.maxAbsDifference).toBeLessThan(1e-4);
  });
});

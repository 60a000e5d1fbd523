/**
 * Round learning-rate schedules against PyTorch 1.13's own schedulers (StepLR, CosineAnnealingLR,
 * ReduceLROnPlateau) stepped once per round on the same validation values, and the checks of a schedule.
 */
import { spawnSync } from 'child_process';
import { findTorchPython } from '../src/plan/testing/python';
import type { RoundSummary } from './events';
import { checkLrSchedule, LrSchedule, scheduledLr } from './lr-schedule';

const ROUNDS = 14;
// A validation loss that improves, stalls, improves a little (below the threshold), then again.
const LOSSES = [1.0, 0.8, 0.7, 0.69995, 0.71, 0.7, 0.72, 0.6, 0.61, 0.62, 0.63, 0.64, 0.5, 0.5];

function summaries(): RoundSummary[] {
  return LOSSES.map((loss, round) => ({
    round,
    training: true,
    durationMs: 0,
    aggregationReadyMs: null,
    aggregated: true,
    paramsUrl: null,
    nodes: [
      // two nodes: the round value is their sample-weighted mean (3·(loss - 0.1) + 1·(loss + 0.3)) / 4 = loss
      { nodeId: 'a', status: 'ok', sampleSize: 30, lastLoss: null, validationGlobal: { LOSS: loss - 0.1 }, validationLocal: null, trainingSeconds: null, replyMs: null, message: '' },
      { nodeId: 'b', status: 'ok', sampleSize: 10, lastLoss: null, validationGlobal: { LOSS: loss + 0.3 }, validationLocal: null, trainingSeconds: null, replyMs: null, message: '' },
    ],
  })) as unknown as RoundSummary[];
}

/** lr of rounds 0..ROUNDS-1 from torch: round r uses the rate after r scheduler steps (plateau: on losses 0..r-1). */
function torchRates(): Record<string, number[]> {
  const script = `
import json, torch
losses = ${JSON.stringify(LOSSES)}
def run(make, metric=False):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    sched = make(opt)
    out = []
    for r in range(${ROUNDS}):
        out.append(opt.param_groups[0]['lr'])
        if metric: sched.step(losses[r])
        else: sched.step()
    return out
print(json.dumps({
  'step': run(lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
  'cosine': run(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.01)),
  'plateau': run(lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.3, patience=1, threshold=1e-3, cooldown=1, min_lr=0.02), True),
}))
`;
  const python = findTorchPython();
  const run = spawnSync(python.executable, ['-c', script], { encoding: 'utf8', timeout: 60000 });
  if (run.status !== 0) throw new Error(run.stderr);
  return JSON.parse(run.stdout) as Record<string, number[]>;
}

test('step, cosine and plateau give PyTorch’s rates round by round', () => {
  const torch = torchRates();
  const schedules: Record<string, LrSchedule> = {
    step: { type: 'step', stepSize: 3, gamma: 0.5 },
    cosine: { type: 'cosine', tMax: 10, etaMin: 0.01 },
    plateau: { type: 'plateau', factor: 0.3, patience: 1, threshold: 1e-3, cooldown: 1, minLr: 0.02 },
  };
  const history = summaries();
  for (const [name, schedule] of Object.entries(schedules)) {
    const ours = Array.from({ length: ROUNDS }, (_, r) => scheduledLr(schedule, 0.5, r, history));
    ours.forEach((lr, r) => expect([name, r, lr]).toEqual([name, r, expect.closeTo(torch[name][r], 9)]));
  }
  // the plateau case really reduces, more than once, and stops at minLr
  expect(new Set(torch.plateau).size).toBeGreaterThan(2);
});

test('bad schedules are refused with the field named', () => {
  expect(() => checkLrSchedule({ type: 'exponential' })).toThrow(/type must be one of step, cosine, plateau/);
  expect(() => checkLrSchedule({ type: 'step' })).toThrow(/stepSize is required/);
  expect(() => checkLrSchedule({ type: 'step', stepSize: 0 })).toThrow(/stepSize must be an integer >= 1/);
  expect(() => checkLrSchedule({ type: 'cosine', tMax: 5, gamma: 0.1 })).toThrow(/unknown field 'gamma' for type cosine/);
  expect(() => checkLrSchedule({ type: 'plateau', factor: 2 })).toThrow(/factor must be in \(0, 1\)/);
  expect(checkLrSchedule({ type: 'plateau', metric: 'AUC', mode: 'max' })).toEqual({ type: 'plateau', metric: 'AUC', mode: 'max' });
});

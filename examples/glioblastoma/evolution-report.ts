/**
 * The evolution task's section of the demo report: federated vs each centre alone vs centralised on the held-out
 * patients (tumour Dice, error of the tumour-area change, responder / non-responder from the predicted change),
 * the counterfactual check against the generative model, the PyTorch reproduction, and the PNG panels.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { EvolutionDemoResult } from './evolution-demo';
import { RESPONSE_CHANGE } from './evolution-demo';
import { INJURY_DICE_SMOOTH } from './evolution-model';
import { RT_TYPES } from './sites';

/** Copies the panels next to the report (so the markdown's image links work) and returns the section. */
export function evolutionMarkdown(result: EvolutionDemoResult, runDir: string, reportDir: string): string[] {
  const panelsDir = path.join(reportDir, 'evolution-panels');
  fs.mkdirSync(panelsDir, { recursive: true });
  const panels = result.panels.map((p) => {
    fs.copyFileSync(path.join(runDir, p), path.join(panelsDir, path.basename(p)));
    return `evolution-panels/${path.basename(p)}`;
  });
  const c = result.counterfactual;
  const cfg = result.config;
  const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;
  return [
    '## Second model: tumour evolution under each radiotherapy technique',
    '',
    `Plan \`${result.plan.name}\` (sha256 ${result.plan.hash.slice(0, 16)}…): a U-Net conditioned on the technique (one-hot ` +
      'broadcast to channels at the input, the bottleneck and every decoder level) reads the pre-treatment T1ce, FLAIR, T2, ' +
      'T1, the planning dose (centred on 54 Gy, given again to the last decoder level) and the baseline delineation, ' +
      `and predicts the follow-up tumour, necrotic-core and radiation-injury masks on a ${result.plan.grid.join('×')} grid ` +
      '(a 96 mm box centred on the pre-treatment tumour by its delineation, the axial slice through the tumour\'s centre: ' +
      'masks are cross-sections, the tumour "volume" is its area on that slice, where RANO measures). ' +
      `Loss: BCE + a soft Dice per mask, the injury's weighted 2 and smoothed by ${INJURY_DICE_SMOOTH} pixels (a weighted sum declared in the plan). ` +
      `Configuration \`${cfg.name}\`: ${cfg.volumeSize.join('×')} voxels, ${cfg.rounds} FedAvg rounds × ${cfg.epochsPerRound} epochs, ` +
      `the three centres' TS nodes each training on their own NIfTI medical folder over the network (plan approval on); ` +
      'baselines with the same plan and budget.',
    '',
    `On the ${result.heldOut} held-out patients (own technique; responder called when the predicted area change ≤ ${RESPONSE_CHANGE * 100}%):`,
    '',
    '| model | tumour Dice | mean abs. error of the area change | sensitivity | specificity | AUC (responder from predicted change) |',
    '|---|---:|---:|---:|---:|---:|',
    ...Object.entries(result.scores).map(([name, s]) =>
      `| ${name} | ${s.dice.toFixed(3)} | ${s.changeError.toFixed(3)} | ${s.sensitivity.toFixed(2)} | ${s.specificity.toFixed(2)} | ${s.auc.toFixed(3)} |`),
    '',
    'Counterfactuals: every held-out patient predicted under the three techniques (the same pre-treatment MRI with ' +
      'that technique\'s dose), against the generative model\'s simulated follow-up for that technique (mean areas in grid pixels):',
    '',
    '| technique | predicted necrotic core | real | predicted radiation injury | real | tumour Dice |',
    '|---|---:|---:|---:|---:|---:|',
    ...RT_TYPES.map((rt) => `| ${rt} | ${c.predicted[rt].necrosis.toFixed(1)} | ${c.real[rt].necrosis.toFixed(1)} | ` +
      `${c.predicted[rt].injury.toFixed(1)} | ${c.real[rt].injury.toFixed(1)} | ${c.diceByRt[rt].toFixed(3)} |`),
    '',
    `- Carbon's predicted necrotic core is no larger than conventional RT's for ${pct(c.carbonCoreNoLarger)} of patients; ` +
      `proton therapy's predicted radiation injury is no larger than conventional RT's for ${pct(c.protonInjuryNoLarger)}.`,
    `- The generative model's two directions (carbon: smaller necrotic core; proton: less injured healthy brain) ` +
      `${c.directionsHold ? 'hold' : '**do not both hold**'} on average in the federated model's predictions.`,
    result.torch.maxAbsDiff !== undefined
      ? `- The generated PyTorch plan, loaded with the federated weights, reproduces the tfjs logits on the held-out patients: max |difference| ${result.torch.maxAbsDiff.toExponential(2)}.`
      : `- The generated PyTorch plan check did not run: ${result.torch.error ?? ''}`,
    '',
    'Panels (pre-treatment | predicted under conventional RT, proton therapy, carbon ions | real follow-up; * marks the technique given):',
    '',
    ...panels.flatMap((p) => [`![${path.basename(p, '.png')}](${p})`, '']),
    `Evolution run timings (s): ${Object.entries(result.seconds).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}.`,
    '',
  ];
}

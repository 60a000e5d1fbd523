import { samplePatient } from './patient-model';
import { LABEL, relativeDose, renderPatient } from './phantom';
import { Prng } from './prng';
import { RT_TYPES, SITE_PROFILES } from './sites';
import { diagnosisState, evolutionParameters, EVOLUTION, FollowUp, simulateFollowUp } from './tumour-evolution';

// 60 patients from the three sites, each simulated under the three techniques (a few ms each).
const cases = ['Caen', 'Rouen', 'Nice'].flatMap((site) => Array.from({ length: 20 }, (_, i) => {
  const sample = samplePatient(5, SITE_PROFILES[site], site, i);
  const params = evolutionParameters(sample, 5, site, i);
  const diagnosis = diagnosisState(sample, params);
  const under = Object.fromEntries(RT_TYPES.map((rt) => [rt, simulateFollowUp(sample, diagnosis, rt)])) as Record<(typeof RT_TYPES)[number], FollowUp>;
  return { site, i, sample, params, diagnosis, under };
}));

/** Healthy brain injured (ml) around a spherical tumour: ∫ injury(dose(r)) 4πr² dr outside the tumour. */
function injuredMl(c: (typeof cases)[number], rt: (typeof RT_TYPES)[number]): number {
  const f = c.under[rt];
  let ml = 0;
  for (let r = c.sample.tumour.radiusMm; r < c.sample.tumour.radiusMm + 80; r += 0.5) {
    const dose = c.sample.clinical.rtDoseGy * relativeDose(rt, r - c.sample.tumour.radiusMm);
    ml += f.injury(dose) * 4 * Math.PI * r * r * 0.5 / 1000;
  }
  return ml;
}

describe('tumour-evolution model', () => {
  test('carbon ions shrink the necrotic core more than photons and protons (lower OER on the hypoxic shell)', () => {
    for (const c of cases) {
      expect(c.under.carbon.necrosisAfterMl).toBeLessThanOrEqual(c.under.conventional.necrosisAfterMl + 1e-9);
      expect(c.under.carbon.necrosisAfterMl).toBeLessThanOrEqual(c.under.proton.necrosisAfterMl + 1e-9);
    }
    const strictly = cases.filter((c) => c.under.carbon.necrosisAfterMl < c.under.conventional.necrosisAfterMl - 1e-6).length;
    expect(strictly).toBeGreaterThan(cases.length * 0.6);
  });

  test('protons and carbon ions spare healthy brain: less radiation injury than conventional radiotherapy', () => {
    for (const c of cases) {
      expect(injuredMl(c, 'proton')).toBeLessThan(injuredMl(c, 'conventional'));
      expect(injuredMl(c, 'carbon')).toBeLessThan(injuredMl(c, 'conventional'));
    }
  });

  test('treatment shrinks tumours that grow untreated, and the volume change tracks the responder label', () => {
    for (const c of cases.slice(0, 10)) {
      const untreated = simulateFollowUp(c.sample, diagnosisState(c.sample, { ...c.params, alpha: 0 }), 'conventional');
      expect(untreated.volumeChange).toBeGreaterThan(0);
      expect(c.under.conventional.volumeChange).toBeLessThanOrEqual(untreated.volumeChange);
      // Growth is capped (EVOLUTION.maxGrowthMm); below the cap, treatment makes a difference.
      if (untreated.tumour.radiusMm < c.sample.tumour.radiusMm + EVOLUTION.maxGrowthMm) {
        expect(c.under.conventional.volumeChange).toBeLessThan(untreated.volumeChange);
      }
    }
    const own = cases.map((x) => ({ change: x.under[x.sample.clinical.rtType].volumeChange, responder: x.sample.outcome.responder }));
    let wins = 0;
    let pairs = 0;
    for (const r of own.filter((x) => x.responder)) {
      for (const n of own.filter((x) => !x.responder)) { pairs++; wins += r.change < n.change ? 1 : r.change === n.change ? 0.5 : 0; }
    }
    expect(wins / pairs).toBeGreaterThan(0.75);
    expect(own.some((x) => x.change > 0)).toBe(true); // some tumours progress
    expect(own.some((x) => x.change < -0.5)).toBe(true);
  });

  test('deterministic, technique-independent patient parameters, follow-up day after the last fraction', () => {
    const c = cases[7];
    expect(evolutionParameters(c.sample, 5, c.site, c.i)).toEqual(c.params);
    expect(simulateFollowUp(c.sample, diagnosisState(c.sample, c.params), 'proton').volumeAfterMl).toBe(c.under.proton.volumeAfterMl);
    const fractions = c.sample.clinical.rtDoseGy >= 60 ? 30 : 15;
    expect(c.under.carbon.day).toBe(fractions - 1 + 2 * Math.floor((fractions - 1) / 5) + EVOLUTION.assessmentDaysAfterRt);
  });

  test('the rendered follow-up shows the simulated tumour: registered anatomy, labels of the new size', () => {
    const c = cases.find((x) => x.under.conventional.volumeChange < -0.4)!;
    const scanner = SITE_PROFILES[c.site].scanner;
    const render = (rt?: (typeof RT_TYPES)[number]) => renderPatient(c.sample, scanner, [32, 32, 16], new Prng(5, c.site, c.i, 'render'),
      rt ? { rtType: rt, tumour: c.under[rt].tumour, injury: c.under[rt].injury, noise: new Prng(5, 'noise', rt) } : {});
    const before = render();
    const after = render('conventional');
    const tumourVoxels = (labels: Float32Array): number => labels.filter((l) => l === LABEL.necrosis || l === LABEL.enhancing).length;
    const voxelMl = (6 * 6 * 9) / 1000;
    expect(tumourVoxels(after.labels.data)).toBeLessThan(tumourVoxels(before.labels.data));
    // Label volume within partial-volume error of the ellipsoid's volume (lobulation and the grid add a little).
    expect(Math.abs(tumourVoxels(after.labels.data) * voxelMl - c.under.conventional.volumeAfterMl))
      .toBeLessThan(0.35 * c.under.conventional.volumeAfterMl + 3 * voxelMl * 10);
    // Same anatomy: outside the tumour region and its dose, the T1 stays within scanner noise.
    let same = 0;
    let total = 0;
    before.images.T1.data.forEach((v, j) => {
      if (before.dose.data[j] > 1 || before.labels.data[j] !== 0 || v < 200) return;
      total++;
      if (Math.abs(v - after.images.T1.data[j]) < 6 * scanner.noise) same++;
    });
    expect(same / total).toBeGreaterThan(0.95);
    expect(Array.from(after.dose.data)).toEqual(Array.from(before.dose.data)); // its own (conventional?) plan
  });
});

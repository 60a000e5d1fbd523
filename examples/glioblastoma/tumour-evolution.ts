/**
 * The tumour-evolution model: what the response-assessment MRI shows after radiotherapy, for a given patient and
 * technique. README.md ("Tumour evolution after radiotherapy") states it in words and formulas; keep the two in step.
 *
 * A proliferation–invasion (Fisher–Kolmogorov) model of the viable tumour-cell density c(r, t) (fraction of the
 * carrying capacity) on the tumour's radial profile, dc/dt = D ∇²c + ρ c (1 − c), with each radiotherapy fraction
 * killing cells by the linear–quadratic model: c ← c · exp(−(α d + β d²)), where the dose per fraction d(r) follows
 * the technique's planning dose (phantom.ts `relativeDose`), and hypoxic cells near the necrotic core are protected
 * by the oxygen enhancement ratio (OER): α/m, β/m² with m = 1 + h (OER − 1). Carbon ions have a much lower OER
 * than photons and protons. The follow-up image is read from the profile with Swanson's detection thresholds
 * (T1-gadolinium edge at c = 0.8, T2/FLAIR edge at c = 0.16); the necrotic core is resorbed unless surviving
 * perinecrotic cells sustain it; healthy brain receiving a high dose shows radiation injury (FLAIR bright).
 */
import { PatientSample, TumourFeatures, WEIGHTS } from './patient-model';
import { relativeDose } from './phantom';
import { clamp, Prng } from './prng';
import { RtType } from './sites';

/** Model constants (README.md, "Tumour evolution after radiotherapy"). */
export const EVOLUTION = {
  /** Swanson's imaging detection thresholds of the cell density (fraction of carrying capacity). */
  t1GdThreshold: 0.5, // Swanson uses 0.8; see README.md for why 0.5 here
  t2Threshold: 0.16,
  /** Median net proliferation rate ρ (per day) and its log-normal spread between patients. */
  rhoMedian: 0.006,
  rhoLogSd: 0.4,
  /** Median radiosensitivity α (per Gy) of well-oxygenated tumour cells; α/β = 10 Gy. */
  alphaMedian: 0.015,
  alphaOverBeta: 10,
  /** How strongly the patient's latent response (the responder model) moves α (log scale per logit unit). */
  alphaResponse: 0.32,
  /** Oxygen enhancement ratio by technique (photons and protons ≈ 2.8, carbon ions ≈ 1.6). */
  oer: { conventional: 2.8, proton: 2.8, carbon: 1.6 } as Record<RtType, number>,
  /** Reach (mm) of the hypoxic shell around the necrotic core. */
  hypoxicReachMm: 5,
  /** Fraction of the necrotic core left when no perinecrotic tumour survives to sustain it (resorption). */
  necrosisKept: 0.55,
  /** Largest growth of the tumour radius (mm) by the follow-up. */
  maxGrowthMm: 12,
  /** Response assessment: this many days after the last fraction. */
  assessmentDaysAfterRt: 56,
  /** Radiation injury of healthy brain: logistic in the planned dose (Gy) as EQD2 with α/β = 2 Gy. */
  injuryEqd2Gy: 50,
  injuryWidthGy: 5,
  injuryMax: 0.7,
};

export interface FollowUp {
  rtType: RtType;
  /** Day of the response-assessment MRI, from the first fraction. */
  day: number;
  /** The tumour at follow-up (same centre and shape as before treatment). */
  tumour: TumourFeatures;
  /** Tumour volumes (necrotic core + enhancing tumour, ml) before and at follow-up, on the sphere of mean radius. */
  volumeBeforeMl: number;
  volumeAfterMl: number;
  /** Necrotic core volume (ml) before and at follow-up. */
  necrosisBeforeMl: number;
  necrosisAfterMl: number;
  /** Relative change of the tumour volume: after / before − 1. */
  volumeChange: number;
  /** Radiation injury of healthy brain as a function of the planned dose (Gy); the renderer uses it. */
  injury: (doseGy: number) => number;
}

/** Patient-specific growth and radiosensitivity: the same whatever the technique (counterfactuals share them). */
export interface EvolutionParameters {
  /** Net proliferation rate, per day. */
  rho: number;
  /** Diffusion (invasion) coefficient, mm² per day. */
  diffusion: number;
  /** Radiosensitivity of oxygenated cells, per Gy. */
  alpha: number;
}

const sphereMl = (radiusMm: number): number => (4 / 3) * Math.PI * radiusMm ** 3 / 1000;

/**
 * The patient's latent response score without the technique: the responder model's logit with its random draw
 * (the label is responder exactly when logit / noiseScale − logit(u) > 0), minus the technique's own term, which
 * the physics below (dose shape, OER) replaces.
 */
export function responseLatent(sample: PatientSample, seed: number | string, stream: string, index: number): number {
  const u = new Prng(seed, stream, index, 'outcome').next(); // the draw sampleOutcome made
  const rtTerm = sample.clinical.rtType === 'proton' ? WEIGHTS.proton : sample.clinical.rtType === 'carbon' ? WEIGHTS.carbon : 0;
  const safeU = clamp(u, 1e-9, 1 - 1e-9);
  return (sample.outcome.logit - rtTerm) / WEIGHTS.noiseScale - Math.log(safeU / (1 - safeU));
}

export function evolutionParameters(sample: PatientSample, seed: number | string, stream: string, index: number): EvolutionParameters {
  const rng = new Prng(seed, stream, index, 'evolution');
  const t = sample.tumour;
  const rho = EVOLUTION.rhoMedian * Math.exp(rng.normal(0, EVOLUTION.rhoLogSd));
  // The infiltration tail c ≈ exp(−x / λ), λ = √(D/ρ), reaches the T2 threshold at the oedema edge.
  const lambda = (t.oedemaExtent * t.radiusMm) / Math.log(1 / EVOLUTION.t2Threshold);
  const latent = clamp(responseLatent(sample, seed, stream, index), -5, 5);
  const alpha = EVOLUTION.alphaMedian * Math.exp(EVOLUTION.alphaResponse * latent + rng.normal(0, 0.1));
  return { rho, diffusion: lambda * lambda * rho, alpha };
}

/** Days (from the first fraction) of the fractions: five a week, Monday to Friday. */
export function fractionDays(fractions: number): number[] {
  return Array.from({ length: fractions }, (_, f) => f + 2 * Math.floor(f / 5));
}

/** One explicit Euler step of dc/dt = D (c'' + (2/r) c') + ρ c (1 − c) on r = (k + ½) h, from index `first` on. */
function diffuseGrow(c: Float64Array, next: Float64Array, first: number, h: number, dt: number, params: EvolutionParameters): void {
  const points = c.length;
  for (let k = first; k < points; k++) {
    const r = (k + 0.5) * h;
    const left = k === first ? c[k] : c[k - 1]; // reflecting: the centre, or the edge of the necrotic core
    const right = k === points - 1 ? 0 : c[k + 1];
    const laplacian = (right - 2 * c[k] + left) / (h * h) + (right - left) / (h * r);
    next[k] = clamp(c[k] + dt * (params.diffusion * laplacian + params.rho * c[k] * (1 - c[k])), 0, 1);
  }
  c.set(next);
}

/**
 * The profile at diagnosis: grown untreated from a small seed until its T1-Gd edge reaches the tumour radius (as
 * Swanson's patient-specific models do), so the front has the shape the model itself gives; then the necrotic
 * core is emptied. Hypoxia (1 = fully hypoxic) is highest at the necrotic core and fades outwards.
 */
function diagnosisProfiles(t: TumourFeatures, params: EvolutionParameters, h: number, points: number, dt: number) {
  const radius = t.radiusMm;
  const necrosisRadius = radius * Math.cbrt(t.necrosisFraction);
  const viable = new Float64Array(points);
  const hypoxia = new Float64Array(points);
  for (let k = 0; k < points; k++) viable[k] = Math.exp(-(((k + 0.5) * h) ** 2) / 8);
  const next = new Float64Array(points);
  for (let day = 0; edgeAt(viable, h, EVOLUTION.t1GdThreshold) < radius && day < 20000; day += dt) {
    diffuseGrow(viable, next, 0, h, dt, params);
  }
  for (let k = 0; k < points; k++) {
    const r = (k + 0.5) * h;
    if (r < necrosisRadius) viable[k] = 0;
    hypoxia[k] = r < necrosisRadius ? 1 : Math.exp(-(r - necrosisRadius) / EVOLUTION.hypoxicReachMm);
  }
  return { viable, hypoxia, t2Edge: edgeAt(viable, h, EVOLUTION.t2Threshold) };
}

/** Outermost radius (mm, interpolated) where the profile is at least `threshold`; 0 when nowhere. */
function edgeAt(c: Float64Array, h: number, threshold: number): number {
  for (let k = c.length - 1; k >= 0; k--) {
    if (c[k] >= threshold) {
      if (k === c.length - 1) return (k + 0.5) * h;
      const frac = (c[k] - threshold) / (c[k] - c[k + 1]);
      return (k + 0.5 + frac) * h;
    }
  }
  return 0;
}

/** The patient's state at diagnosis on the radial grid (the same for every technique; compute it once). */
export interface Diagnosis {
  params: EvolutionParameters;
  /** Grid step (mm) and time step (days). */
  h: number;
  dt: number;
  viable: Float64Array;
  hypoxia: Float64Array;
  t2Edge: number;
}

export function diagnosisState(sample: PatientSample, params: EvolutionParameters): Diagnosis {
  const t = sample.tumour;
  const h = 1; // mm (the MRI voxels are 4 mm and more)
  const points = Math.ceil((t.radiusMm * (2 + t.oedemaExtent) + 30) / h);
  // Explicit finite differences, stable for dt ≤ h² / (2D).
  const dt = Math.min(0.25, (0.4 * h * h) / params.diffusion);
  return { params, h, dt, ...diagnosisProfiles(t, params, h, points, dt) };
}

/** Simulates treatment with `rtType` from the state at diagnosis and reads the follow-up tumour from the profile. */
export function simulateFollowUp(sample: PatientSample, diagnosis: Diagnosis, rtType: RtType): FollowUp {
  const t = sample.tumour;
  const { params, h, dt, hypoxia } = diagnosis;
  const c = Float64Array.from(diagnosis.viable);
  const points = c.length;
  const t2EdgeBefore = diagnosis.t2Edge;
  const necrosisRadius = t.radiusMm * Math.cbrt(t.necrosisFraction);
  const fractions = sample.clinical.rtDoseGy >= 60 ? 30 : 15;
  const perFraction = sample.clinical.rtDoseGy / fractions;
  const days = fractionDays(fractions);
  const endDay = days[days.length - 1] + EVOLUTION.assessmentDaysAfterRt;
  const oer = EVOLUTION.oer[rtType];
  const beta = params.alpha / EVOLUTION.alphaOverBeta;
  const survival = new Float64Array(points);
  for (let k = 0; k < points; k++) {
    const d = perFraction * relativeDose(rtType, (k + 0.5) * h - t.radiusMm);
    const m = 1 + hypoxia[k] * (oer - 1);
    survival[k] = Math.exp(-((params.alpha / m) * d + (beta / (m * m)) * d * d));
  }
  const next = new Float64Array(points); // stays 0 inside the necrotic core
  // The necrotic core is occupied, dead tissue: cells neither grow nor diffuse into it (reflecting boundary).
  const first = Math.min(points - 1, Math.max(0, Math.ceil(necrosisRadius / h - 0.5)));
  // Mean density over the hypoxic shell around the necrotic core.
  const shellMean = (): number => {
    let sum = 0;
    let n = 0;
    for (let k = 0; k < points; k++) {
      const r = (k + 0.5) * h;
      if (r >= necrosisRadius && r < necrosisRadius + EVOLUTION.hypoxicReachMm) { sum += c[k]; n++; }
    }
    return n > 0 ? sum / n : 0;
  };
  const shellBefore = shellMean();
  let shellAfterRt = shellBefore;
  let fraction = 0;
  for (let time = 0; time < endDay; time += dt) {
    while (fraction < days.length && days[fraction] <= time) {
      for (let k = 0; k < points; k++) c[k] *= survival[k];
      fraction++;
      if (fraction === days.length) shellAfterRt = shellMean();
    }
    diffuseGrow(c, next, first, h, dt, params);
  }

  const enhancingEdge = edgeAt(c, h, EVOLUTION.t1GdThreshold);
  const t2Edge = edgeAt(c, h, EVOLUTION.t2Threshold);
  // Perinecrotic hypoxic cells that survived the radiotherapy sustain the necrotic core; without them it shrinks.
  const sustained = shellBefore > 0 ? clamp(shellAfterRt / shellBefore, 0, 1) : 0;
  const necrosisAfter = necrosisRadius * Math.cbrt(EVOLUTION.necrosisKept + (1 - EVOLUTION.necrosisKept) * sustained);
  // A necrotic cavity without enhancing tumour keeps a thin, faint rim.
  // Growth is bounded (mass effect, and the model has no anatomy): at most EVOLUTION.maxGrowthMm wider.
  const radiusAfter = Math.min(Math.max(enhancingEdge, necrosisAfter + 1, 2), t.radiusMm + EVOLUTION.maxGrowthMm);
  let rimDensity = 0;
  let rimPoints = 0;
  for (let k = 0; k < points; k++) {
    const r = (k + 0.5) * h;
    if (r >= necrosisAfter && r < radiusAfter) { rimDensity += c[k]; rimPoints++; }
  }
  const rimEnhancement = t.rimEnhancement * (enhancingEdge > necrosisAfter + 1 ? clamp(rimDensity / Math.max(1, rimPoints), 0.3, 1) : 0.25);
  const tumour: TumourFeatures = {
    ...t,
    radiusMm: radiusAfter,
    necrosisFraction: clamp((necrosisAfter / radiusAfter) ** 3, 0, 0.95),
    rimEnhancement,
    // The T2 edge moves as the model's T2 edge moved since diagnosis (at diagnosis this gives back the drawn oedema).
    oedemaExtent: clamp((t.radiusMm * (1 + t.oedemaExtent) + t2Edge - t2EdgeBefore) / radiusAfter - 1, 0.1, 2.5),
  };
  const volumeBeforeMl = sphereMl(t.radiusMm);
  const volumeAfterMl = sphereMl(radiusAfter);
  const injury = (doseGy: number): number => {
    // EQD2 = D (d + α/β) / (2 + α/β) with d = D / fractions and α/β = 2 Gy for late brain effects.
    const eqd2 = (doseGy * (doseGy / fractions + 2)) / 4;
    return EVOLUTION.injuryMax / (1 + Math.exp(-(eqd2 - EVOLUTION.injuryEqd2Gy) / EVOLUTION.injuryWidthGy));
  };
  return {
    rtType,
    day: endDay,
    tumour,
    volumeBeforeMl,
    volumeAfterMl,
    necrosisBeforeMl: sphereMl(necrosisRadius),
    necrosisAfterMl: sphereMl(necrosisAfter),
    volumeChange: volumeAfterMl / volumeBeforeMl - 1,
    injury,
  };
}

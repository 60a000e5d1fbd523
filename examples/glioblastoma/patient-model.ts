/**
 * The generative model of a patient: clinical variables, tumour characteristics and the responder label.
 * README.md states the same model in words and formulas; keep the two in step.
 */
import { clamp, Prng } from './prng';
import { RT_TYPES, RtType, SiteProfile } from './sites';

export interface ClinicalRecord {
  age: number;
  sex: 'M' | 'F';
  kps: number;
  mgmtMethylated: boolean;
  idhMutant: boolean;
  rtType: RtType;
  rtDoseGy: number;
}

export interface TumourFeatures {
  /** Centre, in millimetres from the centre of the field of view (x to the left, y posterior, z superior). */
  centreMm: [number, number, number];
  /** Mean radius of the enhancing tumour (necrosis + rim), mm. */
  radiusMm: number;
  /** Relative semi-axes (their product is 1). */
  axes: [number, number, number];
  /** Rotation about z, radians. */
  angle: number;
  /** Fraction of the tumour volume that is necrotic core. */
  necrosisFraction: number;
  /** Strength of rim enhancement on T1ce (1 = typical). */
  rimEnhancement: number;
  /** Oedema reaches (1 + oedemaExtent) tumour radii. */
  oedemaExtent: number;
}

export interface ResponderModel {
  logit: number;
  probability: number;
  responder: boolean;
}

export interface PatientSample {
  clinical: ClinicalRecord;
  tumour: TumourFeatures;
  outcome: ResponderModel;
}

/** Reference values used to standardise features in the label model. */
export const REFERENCE = {
  age: { mean: 62, sd: 10 },
  kps: { mean: 80, sd: 10 },
  logRadius: { mean: Math.log(17), sd: 0.25 },
  necrosis: { mean: 0.33, sd: 0.13 },
  rim: { mean: 0.95, sd: 0.28 },
  oedema: { mean: 0.9, sd: 0.35 },
};

/** Weights of the responder logit (README.md, "Responder model"). */
export const WEIGHTS = {
  intercept: -0.75,
  mgmtMethylated: 1.3,
  idhMutant: 0.9,
  age: -0.45,
  kps: 0.45,
  necrosis: -1.0,
  oedema: -0.7,
  size: -0.5,
  rim: -0.35,
  proton: 0.25,
  carbon: 0.45,
  hypofractionated: -0.3,
  /** Scale of the logistic noise: P(responder) = sigmoid(logit / noiseScale). */
  noiseScale: 0.8,
};

export function sampleClinical(site: SiteProfile, rng: Prng): ClinicalRecord {
  const mix = site.caseMix;
  const age = Math.round(clamp(rng.normal(mix.ageMean, mix.ageSd), 22, 88));
  const sex = rng.bernoulli(0.6) ? 'M' : 'F';
  const idhOdds = age < 45 ? 3 : age < 55 ? 1.6 : age < 65 ? 1 : 0.4;
  const idhMutant = rng.bernoulli(clamp(mix.pIdhMutant * idhOdds, 0, 0.6));
  const mgmtMethylated = rng.bernoulli(clamp(mix.pMgmtMethylated + (idhMutant ? 0.25 : 0), 0, 0.95));
  const kps = clamp(Math.round(rng.normal(mix.kpsMean - 0.25 * (age - 60), 9) / 10) * 10, 50, 100);
  const rtType = RT_TYPES[rng.categorical(mix.rtMix)];
  // Elderly or frail patients get the hypofractionated 40 Gy / 15 fractions schedule, the others 60 Gy / 30.
  const rtDoseGy = age >= 70 || kps <= 60 ? 40 : 60;
  return { age, sex, kps, mgmtMethylated, idhMutant, rtType, rtDoseGy };
}

export function sampleTumour(site: SiteProfile, clinical: ClinicalRecord, rng: Prng): TumourFeatures {
  const logRadius = rng.normal(REFERENCE.logRadius.mean + site.caseMix.tumourSizeShift * REFERENCE.logRadius.sd, REFERENCE.logRadius.sd);
  const radiusMm = clamp(Math.exp(logRadius), 9, 32);
  const necrosisFraction = clamp(rng.normal(0.35 - (clinical.idhMutant ? 0.15 : 0), 0.13), 0.02, 0.75);
  const rimEnhancement = clamp(rng.normal(1.0 - (clinical.idhMutant ? 0.35 : 0), 0.27), 0.2, 1.9);
  const oedemaExtent = clamp(rng.normal(0.9, 0.35), 0.2, 2);
  const ax = rng.uniform(0.8, 1.25);
  const ay = rng.uniform(0.8, 1.25);
  const az = 1 / (ax * ay);
  // Inside the brain, off the midline, away from the skull: a hemisphere, then a point in a smaller ellipsoid.
  const side = rng.bernoulli(0.5) ? 1 : -1;
  const centreMm: [number, number, number] = [
    side * rng.uniform(12, 38),
    rng.uniform(-45, 40),
    rng.uniform(-15, 30),
  ];
  return {
    centreMm, radiusMm, axes: [ax, ay, az], angle: rng.uniform(0, Math.PI), necrosisFraction, rimEnhancement, oedemaExtent,
  };
}

/** The responder logit and the noisy label drawn from it. */
export function sampleOutcome(clinical: ClinicalRecord, tumour: TumourFeatures, rng: Prng): ResponderModel {
  const logit = responderLogit(clinical, tumour);
  const probability = 1 / (1 + Math.exp(-logit / WEIGHTS.noiseScale));
  return { logit, probability, responder: rng.next() < probability };
}

export function responderLogit(clinical: ClinicalRecord, tumour: TumourFeatures): number {
  const z = (x: number, r: { mean: number; sd: number }): number => (x - r.mean) / r.sd;
  const w = WEIGHTS;
  return w.intercept
    + w.mgmtMethylated * (clinical.mgmtMethylated ? 1 : 0)
    + w.idhMutant * (clinical.idhMutant ? 1 : 0)
    + w.age * z(clinical.age, REFERENCE.age)
    + w.kps * z(clinical.kps, REFERENCE.kps)
    + w.necrosis * z(tumour.necrosisFraction, REFERENCE.necrosis)
    + w.oedema * z(tumour.oedemaExtent, REFERENCE.oedema)
    + w.size * z(Math.log(tumour.radiusMm), REFERENCE.logRadius)
    + w.rim * z(tumour.rimEnhancement, REFERENCE.rim)
    + (clinical.rtType === 'proton' ? w.proton : clinical.rtType === 'carbon' ? w.carbon : 0)
    + (clinical.rtDoseGy < 60 ? w.hypofractionated : 0);
}

/** The imaging part of the logit alone (what the images can tell), used to check the cohort carries image signal. */
export function imagingLogit(tumour: TumourFeatures): number {
  const z = (x: number, r: { mean: number; sd: number }): number => (x - r.mean) / r.sd;
  const w = WEIGHTS;
  return w.necrosis * z(tumour.necrosisFraction, REFERENCE.necrosis)
    + w.oedema * z(tumour.oedemaExtent, REFERENCE.oedema)
    + w.size * z(Math.log(tumour.radiusMm), REFERENCE.logRadius)
    + w.rim * z(tumour.rimEnhancement, REFERENCE.rim);
}

/** Draws a whole patient from its own random streams (clinical, tumour, outcome independent of rendering). */
export function samplePatient(seed: number | string, site: SiteProfile, stream: string, index: number): PatientSample {
  const clinical = sampleClinical(site, new Prng(seed, stream, index, 'clinical'));
  const tumour = sampleTumour(site, clinical, new Prng(seed, stream, index, 'tumour'));
  const outcome = sampleOutcome(clinical, tumour, new Prng(seed, stream, index, 'outcome'));
  return { clinical, tumour, outcome };
}

/**
 * The three cancer centres of the synthetic cohort. Each has its own scanner (intensity gain, contrast curve,
 * offset, noise, bias field, series naming habits) and its own case mix (age, performance status, molecular
 * markers, tumour size, radiotherapy techniques): the data are not identically distributed across sites, which is
 * what makes a model trained at one centre transfer badly and federation worthwhile.
 */

export const MODALITY_ORDER = ['T1', 'T1ce', 'T2', 'FLAIR'] as const;
export type Modality = (typeof MODALITY_ORDER)[number];
export const RT_TYPES = ['conventional', 'proton', 'carbon'] as const;
export type RtType = (typeof RT_TYPES)[number];

export interface ScannerProfile {
  manufacturer: string;
  fieldStrength: number;
  /** Multiplicative gain per modality (T1, T1ce, T2, FLAIR). */
  gain: [number, number, number, number];
  /** Contrast curve: stored = gain * 1000 * (signal / 1000) ^ gamma + offset (inside the head). */
  gamma: [number, number, number, number];
  offset: number;
  /** Standard deviation of the (Rician) noise. */
  noise: number;
  /** Amplitude of the smooth multiplicative bias field. */
  bias: number;
  /** SeriesDescription of each modality, in MODALITY_ORDER, and of the dose. */
  seriesNames: [string, string, string, string];
  doseSeriesName: string;
}

export interface CaseMix {
  ageMean: number;
  ageSd: number;
  /** Mean KPS for a 60-year-old (it falls 0.25 point per year of age). */
  kpsMean: number;
  pMgmtMethylated: number;
  /** Probability of an IDH mutation at age 50-60 (higher in the young, lower in the old). */
  pIdhMutant: number;
  /** Weights of conventional, proton, carbon radiotherapy. */
  rtMix: [number, number, number];
  /** Shift (in standard deviations) of the log tumour radius: later diagnosis means larger tumours. */
  tumourSizeShift: number;
}

export interface SiteProfile {
  name: string;
  /** Patient id prefix. */
  code: string;
  institution: string;
  scanner: ScannerProfile;
  caseMix: CaseMix;
}

export const SITE_PROFILES: Record<string, SiteProfile> = {
  Caen: {
    name: 'Caen',
    code: 'CAEN',
    institution: 'Centre Francois Baclesse (synthetic)',
    scanner: {
      manufacturer: 'SIEMENS',
      fieldStrength: 1.5,
      gain: [1.0, 1.0, 1.0, 1.0],
      gamma: [1.0, 1.0, 1.0, 1.0],
      offset: 0,
      noise: 22,
      bias: 0.08,
      seriesNames: ['T1 SE', 'T1 GADO', 'T2 TSE', 'FLAIR'],
      doseSeriesName: 'RTDOSE plan',
    },
    caseMix: {
      ageMean: 63, ageSd: 9, kpsMean: 80, pMgmtMethylated: 0.42, pIdhMutant: 0.08,
      rtMix: [0.55, 0.3, 0.15], tumourSizeShift: 0,
    },
  },
  Rouen: {
    name: 'Rouen',
    code: 'ROUEN',
    institution: 'Centre Henri Becquerel (synthetic)',
    scanner: {
      manufacturer: 'GE MEDICAL SYSTEMS',
      fieldStrength: 3,
      gain: [1.3, 1.35, 1.15, 1.25],
      gamma: [0.85, 0.9, 1.1, 0.9],
      offset: 60,
      noise: 45,
      bias: 0.2,
      seriesNames: ['t1_se_tra', 't1_se_tra_post_gd', 't2_tse_tra', 't2_flair_tra'],
      doseSeriesName: 'Dose RT',
    },
    caseMix: {
      ageMean: 67, ageSd: 8, kpsMean: 75, pMgmtMethylated: 0.3, pIdhMutant: 0.05,
      rtMix: [0.9, 0.1, 0], tumourSizeShift: 0.5,
    },
  },
  Nice: {
    name: 'Nice',
    code: 'NICE',
    institution: 'Centre Antoine Lacassagne (synthetic)',
    scanner: {
      manufacturer: 'Philips',
      fieldStrength: 3,
      gain: [0.8, 0.85, 0.95, 0.75],
      gamma: [1.15, 1.1, 0.95, 1.2],
      offset: 140,
      noise: 32,
      bias: 0.14,
      seriesNames: ['AX T1', 'AX T1 C+', 'AX T2', 'AX T2 FLAIR'],
      doseSeriesName: 'RT Dose proton plan',
    },
    caseMix: {
      ageMean: 58, ageSd: 10, kpsMean: 82, pMgmtMethylated: 0.46, pIdhMutant: 0.12,
      rtMix: [0.3, 0.6, 0.1], tumourSizeShift: -0.3,
    },
  },
};

export const DEFAULT_SITES: { name: string; patients: number }[] = [
  { name: 'Caen', patients: 50 },
  { name: 'Rouen', patients: 40 },
  { name: 'Nice', patients: 60 },
];

export function siteProfile(name: string): SiteProfile {
  const profile = SITE_PROFILES[name];
  if (!profile) throw new Error(`unknown site "${name}" (known: ${Object.keys(SITE_PROFILES).join(', ')})`);
  return profile;
}

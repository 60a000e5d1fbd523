/** The synthetic glioblastoma cohort: generator, generative model, site profiles, clinical feature encoding. */
export { generateCohort, DEFAULT_SEED, DEFAULT_HELD_OUT, DEFAULT_VOLUME_SIZE, HELD_OUT_DIR, CLINICAL_CSV, DEMOGRAPHICS_CSV, DOSE_MODALITY } from './cohort';
export type { CohortOptions, CohortSummary, SplitSummary } from './cohort';
export { CLINICAL_FEATURES, encodeClinical } from './clinical-features';
export { DEFAULT_SITES, MODALITY_ORDER, RT_TYPES, SITE_PROFILES, siteProfile } from './sites';
export type { Modality, RtType, SiteProfile } from './sites';
export { imagingLogit, responderLogit, samplePatient, REFERENCE, WEIGHTS } from './patient-model';
export { FIELD_OF_VIEW_MM, geometryFor, renderPatient } from './phantom';

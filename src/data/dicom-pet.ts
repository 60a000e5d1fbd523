/**
 * PET standardized uptake value, body-weight normalised (SUVbw), from the DICOM tags, following the QIBA / UPICT
 * vendor-neutral definition:
 *
 *   SUVbw = activity concentration (Bq/mL, the rescaled pixel value) x body weight (g) / injected dose decayed to
 *           the time the image is decay-corrected to (Bq)
 *   decayed dose = RadionuclideTotalDose x 2^(-(scan start - RadiopharmaceuticalStartTime) / RadionuclideHalfLife)
 *
 * with scan start = SeriesDate/SeriesTime when DecayCorrection is START. Anything that would make the number wrong
 * (units other than BQML, no weight, no dose or half-life, DecayCorrection NONE, an injection after the scan start)
 * is refused with the reason instead of guessed.
 */
import type * as dicomParser from 'dicom-parser';
import { numberTag, sequenceItem, stringTag } from './dicom-file';
import { FedbiomedTsError } from '../errors';

export class SuvError extends FedbiomedTsError {}

/** Seconds since midnight of a DICOM TM ("HHMMSS.ffffff", also "HH:MM:SS" from old writers). */
export function dicomTimeSeconds(tm: string): number | null {
  const t = tm.trim().replace(/:/g, '');
  const match = /^(\d{2})(\d{2})?(\d{2})?(\.\d+)?$/.exec(t);
  if (!match) return null;
  const [h, m, s] = [Number(match[1]), Number(match[2] ?? 0), Number(match[3] ?? 0)];
  if (h > 23 || m > 59 || s > 60) return null;
  return h * 3600 + m * 60 + s + Number(match[4] ?? 0);
}

/** Seconds since the epoch (UTC arithmetic; only differences matter) of a DICOM DA + TM, or a DT. */
function dateTimeSeconds(date: string, time: string): number | null {
  const d = /^(\d{4})(\d{2})(\d{2})$/.exec(date.trim());
  const t = dicomTimeSeconds(time);
  if (!d || t === null) return null;
  return Date.UTC(Number(d[1]), Number(d[2]) - 1, Number(d[3])) / 1000 + t;
}

export interface SuvParameters {
  weightKg: number;
  injectedDoseBq: number;
  halfLifeSeconds: number;
  /** Seconds from injection to the time the image is decay-corrected to. */
  decaySeconds: number;
}

/** Reads the SUVbw inputs from a PET image's data set; throws SuvError saying what is missing or inconsistent. */
export function suvParameters(dataSet: dicomParser.DataSet): SuvParameters {
  const units = stringTag(dataSet, 0x0054, 0x1001).toUpperCase();
  if (units !== 'BQML') throw new SuvError(`PET Units are "${units || '(none)'}", SUV needs BQML (activity concentration)`);
  const correction = stringTag(dataSet, 0x0054, 0x1102).toUpperCase();
  if (correction !== 'START' && correction !== 'ADMIN') {
    throw new SuvError(`PET DecayCorrection is "${correction || '(none)'}": only START and ADMIN give an SUV without per-frame timing`);
  }
  const weightKg = numberTag(dataSet, 0x0010, 0x1030)?.[0];
  if (!weightKg || weightKg <= 0) throw new SuvError('PatientWeight (0010,1030) is missing or not positive');
  const drug = sequenceItem(dataSet, 0x0054, 0x0016);
  if (!drug) throw new SuvError('RadiopharmaceuticalInformationSequence (0054,0016) is missing');
  const injectedDoseBq = numberTag(drug, 0x0018, 0x1074)?.[0];
  const halfLifeSeconds = numberTag(drug, 0x0018, 0x1075)?.[0];
  if (!injectedDoseBq || injectedDoseBq <= 0) throw new SuvError('RadionuclideTotalDose (0018,1074) is missing or not positive');
  if (!halfLifeSeconds || halfLifeSeconds <= 0) throw new SuvError('RadionuclideHalfLife (0018,1075) is missing or not positive');
  if (correction === 'ADMIN') return { weightKg, injectedDoseBq, halfLifeSeconds, decaySeconds: 0 };

  const seriesDate = stringTag(dataSet, 0x0008, 0x0021) || stringTag(dataSet, 0x0008, 0x0022);
  const seriesTime = stringTag(dataSet, 0x0008, 0x0031);
  const start = dateTimeSeconds(seriesDate, seriesTime);
  if (start === null) throw new SuvError(`SeriesDate/SeriesTime "${seriesDate} ${seriesTime}" cannot be read`);
  const injectionDateTime = stringTag(drug, 0x0018, 0x1078);
  let injection: number | null;
  if (injectionDateTime) {
    injection = dateTimeSeconds(injectionDateTime.slice(0, 8), injectionDateTime.slice(8).replace(/[+-]\d{4}$/, ''));
  } else {
    // Time only: the injection is on the series day (or the day before when the time is later, past midnight scans).
    const time = dicomTimeSeconds(stringTag(drug, 0x0018, 0x1072));
    injection = time === null ? null : start - ((((start % 86400) - time) % 86400) + 86400) % 86400;
  }
  if (injection === null) throw new SuvError('RadiopharmaceuticalStartTime/StartDateTime is missing or cannot be read');
  const decaySeconds = start - injection;
  if (decaySeconds < 0) throw new SuvError(`injection is ${-decaySeconds} s after the series start`);
  if (decaySeconds > 24 * 3600) throw new SuvError(`injection is ${(decaySeconds / 3600).toFixed(1)} h before the series start (dates inconsistent?)`);
  return { weightKg, injectedDoseBq, halfLifeSeconds, decaySeconds };
}

/** The factor turning Bq/mL into SUVbw: weight (g) / decayed dose (Bq). */
export function suvBodyWeightFactor(p: SuvParameters): number {
  const decayedDose = p.injectedDoseBq * 2 ** (-p.decaySeconds / p.halfLifeSeconds);
  return (p.weightKg * 1000) / decayedDose;
}

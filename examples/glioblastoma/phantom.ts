/**
 * Renders a patient's MRI (T1, T1ce, T2, FLAIR) and radiotherapy dose map from the generative model's features,
 * through the site's scanner. Anatomy is defined in millimetres, so any `volumeSize` shows the same head; partial
 * volume is modelled with soft tissue boundaries about half a voxel wide.
 *
 * Head model (mm, origin at the centre of the 192 x 192 x 144 mm field of view): brain ellipsoid with a cortical
 * grey-matter band and two lateral ventricles, a thin CSF layer, skull and scalp. Tumour: a lobulated ellipsoid
 * with a necrotic core, an enhancing rim, and surrounding oedema that fades outwards.
 */
import { AXIAL_ORIENTATION, Vec3, Volume } from 'fedbiomed-ts';
import { Prng } from './prng';
import { PatientSample } from './patient-model';
import { Modality, MODALITY_ORDER, RtType, ScannerProfile } from './sites';

export const FIELD_OF_VIEW_MM: Vec3 = [192, 192, 144];
const BRAIN_RADII: Vec3 = [68, 85, 58];
const MEAN_BRAIN_RADIUS = 70;
const VENTRICLES: { centre: Vec3; radii: Vec3 }[] = [
  { centre: [9, -5, 8], radii: [6, 20, 12] },
  { centre: [-9, -5, 8], radii: [6, 20, 12] },
];

const TISSUES = ['wm', 'gm', 'csf', 'skull', 'scalp', 'oedema', 'rim', 'necrosis'] as const;
type Tissue = (typeof TISSUES)[number];
const [WM, GM, CSF, SKULL, SCALP, OEDEMA, RIM, NECROSIS] = TISSUES.map((_, i) => i);
/** Reference signal of each tissue in T1, T1ce, T2, FLAIR (the rim's T1ce value also grows with enhancement). */
const SIGNAL: Record<Tissue, [number, number, number, number]> = {
  wm: [850, 870, 550, 650],
  gm: [620, 650, 800, 800],
  csf: [250, 260, 1900, 180],
  skull: [120, 120, 100, 100],
  scalp: [1100, 1100, 900, 700],
  oedema: [560, 580, 1350, 1350],
  rim: [520, 520, 1100, 1150],
  necrosis: [320, 300, 1700, 650],
};
const RIM_ENHANCEMENT_SIGNAL = 900;
/** Treatment-planning margin, dose fall-off (sd of the penumbra) and low-dose bath, by technique. */
const DOSE_SHAPE: Record<RtType, { marginMm: number; falloffMm: number; bath: number }> = {
  conventional: { marginMm: 15, falloffMm: 8, bath: 0.15 },
  proton: { marginMm: 12, falloffMm: 4, bath: 0.03 },
  carbon: { marginMm: 10, falloffMm: 3, bath: 0.02 },
};

export interface RenderedPatient {
  images: Record<Modality, Volume>;
  dose: Volume;
  /** Tumour centre in voxel coordinates. */
  tumourCentreVoxel: Vec3;
}

export interface Geometry {
  dims: Vec3;
  spacing: Vec3;
  origin: Vec3;
}

export function geometryFor(volumeSize: Vec3): Geometry {
  const spacing = FIELD_OF_VIEW_MM.map((f, a) => f / volumeSize[a]) as Vec3;
  // Voxel centres are symmetric about 0: voxel i sits at -FOV/2 + (i + 0.5) * spacing.
  const origin = FIELD_OF_VIEW_MM.map((f, a) => -f / 2 + spacing[a] / 2) as Vec3;
  return { dims: [...volumeSize], spacing, origin };
}

function sigmoid(x: number): number {
  return x > 40 ? 1 : x < -40 ? 0 : 1 / (1 + Math.exp(-x));
}

/** Standard normal cumulative distribution (Abramowitz-Stegun 7.1.26 through erf). */
function normalCdf(x: number): number {
  const t = 1 / (1 + 0.3275911 * Math.abs(x) / Math.SQRT2);
  const erf = 1 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    * Math.exp(-(x * x) / 2);
  return x >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/**
 * A smooth random field in about [-1, 1] sampled on the voxel grid: four random plane waves (wavelengths 25-70 mm).
 * cos(kx x + (ky y + kz z + phase)) is expanded with the angle-sum identity so each voxel costs a few products.
 */
function smoothField(rng: Prng, g: Geometry): Float32Array {
  const [nx, ny, nz] = g.dims;
  const field = new Float32Array(nx * ny * nz);
  for (let wave = 0; wave < 4; wave++) {
    const theta = rng.uniform(0, Math.PI);
    const phi = rng.uniform(0, 2 * Math.PI);
    const k = (2 * Math.PI) / rng.uniform(25, 70);
    const kx = k * Math.sin(theta) * Math.cos(phi);
    const ky = k * Math.sin(theta) * Math.sin(phi);
    const kz = k * Math.cos(theta);
    const phase = rng.uniform(0, 2 * Math.PI);
    const amplitude = rng.uniform(0.3, 0.5) / 1.6;
    const cx = Float32Array.from({ length: nx }, (_, i) => Math.cos(kx * (g.origin[0] + i * g.spacing[0])));
    const sx = Float32Array.from({ length: nx }, (_, i) => Math.sin(kx * (g.origin[0] + i * g.spacing[0])));
    for (let z = 0, at = 0; z < nz; z++) {
      for (let y = 0; y < ny; y++) {
        const beta = ky * (g.origin[1] + y * g.spacing[1]) + kz * (g.origin[2] + z * g.spacing[2]) + phase;
        const cb = amplitude * Math.cos(beta);
        const sb = amplitude * Math.sin(beta);
        for (let x = 0; x < nx; x++, at++) field[at] += cx[x] * cb - sx[x] * sb;
      }
    }
  }
  return field;
}

/**
 * Renders one patient. `rng` drives anatomy variation, bias field and noise; the tumour and outcome come from
 * `sample` so the label never depends on the rendering.
 */
export function renderPatient(
  sample: PatientSample, scanner: ScannerProfile, volumeSize: Vec3, rng: Prng,
): RenderedPatient {
  const g = geometryFor(volumeSize);
  const [nx, ny, nz] = g.dims;
  const n = nx * ny * nz;
  const width = 0.3 * (g.spacing[0] + g.spacing[1] + g.spacing[2]) / 3 + 0.5; // soft boundary, mm
  const anatomy = smoothField(rng, g);
  const texture = smoothField(rng, g);
  const lobulation = smoothField(rng, g);
  const brainScale = rng.uniform(0.93, 1.05);
  const radii = BRAIN_RADII.map((r) => r * brainScale) as Vec3;
  const biasCoefficients = [rng.normal(0, 0.5), rng.normal(0, 0.5), rng.normal(0, 0.5), rng.normal(0, 0.5)];
  const gains = MODALITY_ORDER.map((_, m) => scanner.gain[m] * rng.normal(1, 0.04));
  const t = sample.tumour;
  const cos = Math.cos(t.angle);
  const sin = Math.sin(t.angle);
  const necrosisRadius = Math.cbrt(t.necrosisFraction);
  const dose = DOSE_SHAPE[sample.clinical.rtType];

  const images = MODALITY_ORDER.map(() => new Float32Array(n));
  const doseData = new Float32Array(n);
  // Signal of each tissue (TISSUES order) for each modality, with this patient's rim enhancement on T1ce.
  const signalTable = new Float64Array(4 * TISSUES.length);
  TISSUES.forEach((tissue, ti) => {
    for (let m = 0; m < 4; m++) {
      signalTable[m * TISSUES.length + ti] = SIGNAL[tissue][m] + (tissue === 'rim' && m === 1 ? RIM_ENHANCEMENT_SIGNAL * t.rimEnhancement : 0);
    }
  });
  const weights = new Float64Array(TISSUES.length);
  const noise: [number, number] = [0, 0];
  const airBeyondMm = 11 + 40 * width; // past this, every tissue weight is below e^-40
  const scale = [t.radiusMm * t.axes[0], t.radiusMm * t.axes[1], t.radiusMm * t.axes[2]];

  for (let k = 0, i = 0; k < nz; k++) {
    const pz = g.origin[2] + k * g.spacing[2];
    for (let j = 0; j < ny; j++) {
      const py = g.origin[1] + j * g.spacing[1];
      for (let x = 0; x < nx; x++, i++) {
        const px = g.origin[0] + x * g.spacing[0];
        // Signed distance (mm, approximate) outside the brain surface.
        const s = (Math.sqrt((px / radii[0]) ** 2 + (py / radii[1]) ** 2 + (pz / radii[2]) ** 2) - 1) * MEAN_BRAIN_RADIUS;
        if (s > airBeyondMm) {
          // Air: only the scanner's Rician noise floor.
          for (let m = 0; m < 4; m++) {
            rng.normalPair(noise);
            images[m][i] = Math.min(4095, Math.round(scanner.noise * Math.sqrt(noise[0] * noise[0] + noise[1] * noise[1])));
          }
          continue;
        }
        const a = anatomy[i];
        const inBrain = sigmoid(-s / width);
        const inCsf = sigmoid(-(s - 3) / width);
        const inSkull = sigmoid(-(s - 8) / width);
        const inHead = sigmoid(-(s - 11) / width);

        // Tumour: rotate into the tumour frame, normalise by its semi-axes, lobulate.
        const dx = px - t.centreMm[0];
        const dy = py - t.centreMm[1];
        const dz = pz - t.centreMm[2];
        const u = (cos * dx + sin * dy) / scale[0];
        const v = (-sin * dx + cos * dy) / scale[1];
        const w = dz / scale[2];
        const dt = Math.sqrt(u * u + v * v + w * w) * (1 + 0.12 * lobulation[i]);
        const surfaceMm = (dt - 1) * t.radiusMm;
        const inTumour = sigmoid(-surfaceMm / width);
        const inNecrosis = sigmoid(-((dt - necrosisRadius) * t.radiusMm) / width);
        const oedemaReach = (1 + t.oedemaExtent - dt) / t.oedemaExtent;
        const oedema = oedemaReach <= 0 ? 0
          : (1 - inTumour) * Math.pow(Math.min(1, oedemaReach), 0.7) * sigmoid((a + 0.6) * 3);

        // Healthy brain composition: ventricles, cortical grey matter band, white matter.
        let vent = 0;
        for (const ventricle of VENTRICLES) {
          const d = Math.sqrt(((px - ventricle.centre[0]) / ventricle.radii[0]) ** 2
            + ((py - ventricle.centre[1]) / ventricle.radii[1]) ** 2 + ((pz - ventricle.centre[2]) / ventricle.radii[2]) ** 2);
          vent = Math.max(vent, sigmoid(-((d - 1) * 8) / width));
        }
        const gm = (1 - vent) * sigmoid((s + 10 + 4 * a) / width);
        const wm = Math.max(0, 1 - vent - gm);
        const healthy = inBrain * Math.max(0, 1 - inTumour - oedema);
        weights[WM] = healthy * wm;
        weights[GM] = healthy * gm;
        weights[CSF] = healthy * vent + (inCsf - inBrain) + inBrain * oedema * vent;
        weights[SKULL] = inSkull - inCsf;
        weights[SCALP] = inHead - inSkull;
        weights[OEDEMA] = inBrain * oedema * (1 - vent);
        weights[NECROSIS] = inBrain * inNecrosis;
        weights[RIM] = inBrain * Math.max(0, inTumour - inNecrosis);

        const grain = 1 + 0.04 * texture[i];
        const bias = 1 + scanner.bias * (biasCoefficients[0] * px / 96 + biasCoefficients[1] * py / 96
          + biasCoefficients[2] * pz / 72 + biasCoefficients[3] * (px * px) / (96 * 96));
        for (let m = 0; m < 4; m++) {
          let signal = 0;
          for (let ti = 0; ti < TISSUES.length; ti++) signal += weights[ti] * signalTable[m * TISSUES.length + ti];
          signal *= grain * bias;
          const contrast = scanner.gamma[m] === 1 ? signal / 1000 : Math.pow(Math.max(signal, 0) / 1000, scanner.gamma[m]);
          const stored = gains[m] * 1000 * contrast + scanner.offset * inHead;
          rng.normalPair(noise);
          const real = stored + scanner.noise * noise[0];
          const imaginary = scanner.noise * noise[1];
          images[m][i] = Math.min(4095, Math.round(Math.sqrt(real * real + imaginary * imaginary)));
        }

        // Dose: prescription over the planning volume, falling off with the technique's penumbra.
        const beyondMargin = surfaceMm - dose.marginMm;
        const core = normalCdf(-beyondMargin / dose.falloffMm);
        const bath = dose.bath * Math.exp(-Math.max(0, beyondMargin) / 35);
        doseData[i] = sample.clinical.rtDoseGy * Math.min(1, core + bath) * inHead;
      }
    }
  }

  const volume = (data: Float32Array): Volume => ({
    data, dims: [...g.dims], spacing: [...g.spacing], orientation: [...AXIAL_ORIENTATION], origin: [...g.origin],
  });
  const centre = t.centreMm.map((c, a) => (c - g.origin[a]) / g.spacing[a]) as Vec3;
  return {
    images: { T1: volume(images[0]), T1ce: volume(images[1]), T2: volume(images[2]), FLAIR: volume(images[3]) },
    dose: volume(doseData),
    tumourCentreVoxel: centre,
  };
}

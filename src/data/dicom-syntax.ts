/**
 * The DICOM transfer syntaxes a grayscale MR/CT/PET/RT-dose object can use, and how each one is decoded.
 */

/** How the pixel data of a transfer syntax is stored. */
export type PixelEncoding =
  | 'native' // uncompressed, little or big endian (deflate is undone while parsing)
  | 'rle' // DICOM RLE (PS3.5 Annex G)
  | 'jpeg-baseline' // JPEG process 1 (8-bit lossy)
  | 'jpeg-extended' // JPEG process 2 & 4 (12-bit lossy)
  | 'jpeg-lossless' // JPEG process 14 (any predictor, SV1 included)
  | 'jpeg-ls' // JPEG-LS lossless and near-lossless
  | 'jpeg-2000' // JPEG 2000 part 1, reversible or not
  | 'htj2k'; // High-Throughput JPEG 2000

export interface TransferSyntax {
  uid: string;
  name: string;
  encoding: PixelEncoding;
  /** Decoding gives back exactly the stored values (so we check bit-identity against the uncompressed original). */
  lossless: boolean;
  bigEndian?: boolean;
  deflated?: boolean;
  /** Implicit VR (the parser needs to know). */
  implicit?: boolean;
}

const SYNTAXES: TransferSyntax[] = [
  { uid: '1.2.840.10008.1.2', name: 'Implicit VR Little Endian', encoding: 'native', lossless: true, implicit: true },
  { uid: '1.2.840.10008.1.2.1', name: 'Explicit VR Little Endian', encoding: 'native', lossless: true },
  { uid: '1.2.840.10008.1.2.1.99', name: 'Deflated Explicit VR Little Endian', encoding: 'native', lossless: true, deflated: true },
  { uid: '1.2.840.10008.1.2.2', name: 'Explicit VR Big Endian', encoding: 'native', lossless: true, bigEndian: true },
  { uid: '1.2.840.10008.1.2.5', name: 'RLE Lossless', encoding: 'rle', lossless: true },
  { uid: '1.2.840.10008.1.2.4.50', name: 'JPEG Baseline (Process 1)', encoding: 'jpeg-baseline', lossless: false },
  { uid: '1.2.840.10008.1.2.4.51', name: 'JPEG Extended (Process 2 & 4)', encoding: 'jpeg-extended', lossless: false },
  { uid: '1.2.840.10008.1.2.4.57', name: 'JPEG Lossless (Process 14)', encoding: 'jpeg-lossless', lossless: true },
  { uid: '1.2.840.10008.1.2.4.70', name: 'JPEG Lossless SV1 (Process 14, Selection Value 1)', encoding: 'jpeg-lossless', lossless: true },
  { uid: '1.2.840.10008.1.2.4.80', name: 'JPEG-LS Lossless', encoding: 'jpeg-ls', lossless: true },
  { uid: '1.2.840.10008.1.2.4.81', name: 'JPEG-LS Near-Lossless', encoding: 'jpeg-ls', lossless: false },
  { uid: '1.2.840.10008.1.2.4.90', name: 'JPEG 2000 Lossless', encoding: 'jpeg-2000', lossless: true },
  { uid: '1.2.840.10008.1.2.4.91', name: 'JPEG 2000', encoding: 'jpeg-2000', lossless: false },
  { uid: '1.2.840.10008.1.2.4.201', name: 'HTJ2K Lossless', encoding: 'htj2k', lossless: true },
  { uid: '1.2.840.10008.1.2.4.202', name: 'HTJ2K Lossless RPCL', encoding: 'htj2k', lossless: true },
  { uid: '1.2.840.10008.1.2.4.203', name: 'HTJ2K', encoding: 'htj2k', lossless: false },
];

const BY_UID = new Map(SYNTAXES.map((s) => [s.uid, s]));

/** Every transfer syntax the readers decode. */
export const TRANSFER_SYNTAXES: readonly TransferSyntax[] = SYNTAXES;

/** The syntax with this UID, or undefined when the readers do not support it. */
export function transferSyntax(uid: string): TransferSyntax | undefined {
  return BY_UID.get(uid.replace(/\0/g, '').trim());
}

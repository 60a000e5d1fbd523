/**
 * Dataset readers (CSV, DICOM via dicom-parser + maintained codecs, NIfTI-1/2, Fed-BioMed medical folder), our DICOM
 * writer, preprocessing.
 * @module fedbiomed-ts/data
 */
export * from './errors';
export * from './volume';
export * from './csv';
export * from './nifti';
export * from './dicom-writer';
export * from './dicom-series';
export { TRANSFER_SYNTAXES, transferSyntax } from './dicom-syntax';
export type { TransferSyntax } from './dicom-syntax';
export { stopPixelDecoder } from './pixel-decoder';
export * from './orientation';
export * from './dicom-patient';
export * from './dicom-pet';
export * from './dicom-rtstruct';
export { NoPixelDataError, NotDicomFileError, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS } from './dicom-file';
export * from './dicom-site';
export * from './medical-folder';
export * from './png';
export * from './image-folder';
export * from './preprocess';
export * from './registry-info';

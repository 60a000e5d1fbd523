/**
 * Dataset readers (CSV, DICOM via daikon, NIfTI, Fed-BioMed medical folder), our DICOM writer, preprocessing.
 * @module fedbiomed-ts/data
 */
export * from './errors';
export * from './volume';
export * from './csv';
export * from './nifti';
export * from './dicom-writer';
export * from './dicom-series';
export * from './dicom-patient';
export * from './dicom-site';
export * from './medical-folder';
export * from './png';
export * from './image-folder';
export * from './preprocess';
export * from './registry-info';

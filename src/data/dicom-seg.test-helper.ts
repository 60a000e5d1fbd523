/**
 * DICOM Segmentation objects for tests, written by pydicom and numpy (not by our code): a BINARY SEG whose frames are
 * one segment on one slice of a reference MR series (only the slices where the segment is present, last frame
 * first, as frame order is free), bit-packed least significant bit first.
 */
import * as fs from 'fs';
import * as path from 'path';
import { runPython } from './python-oracle.test-helper';
import type { Volume } from './volume';

const SEG_SCRIPT = `
import sys, json, glob
import numpy as np, pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
out, reference, labels_file, info = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
refs = [pydicom.dcmread(f) for f in glob.glob(reference + '/*.dcm')]
iop = np.array(refs[0].ImageOrientationPatient, dtype=float)
normal = np.cross(iop[:3], iop[3:])
refs.sort(key=lambda d: float(np.dot(normal, np.array(d.ImagePositionPatient, dtype=float))))
nx, ny, nz = info['dims']
labels = np.fromfile(labels_file, dtype=np.float32).reshape(nz, ny, nx)  # x fastest: [slice, row, column]
masks, where = [], []
for segment in info['segments']:
    for k in range(nz):
        m = labels[k] == segment['value']
        if m.any():
            masks.append(m)
            where.append((segment['number'], refs[k].ImagePositionPatient))
masks, where = masks[::-1], where[::-1]
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.66.4'
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = FileDataset(out, {}, file_meta=meta, preamble=b'\\0' * 128)
ds.is_little_endian, ds.is_implicit_VR = True, False
ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
ds.Modality, ds.PatientID, ds.StudyInstanceUID = 'SEG', refs[0].PatientID, refs[0].StudyInstanceUID
ds.SeriesInstanceUID, ds.FrameOfReferenceUID, ds.SeriesDescription = generate_uid(), refs[0].FrameOfReferenceUID, info['description']
ds.SegmentationType = info.get('type', 'BINARY')
ds.Rows, ds.Columns, ds.NumberOfFrames = ny, nx, len(masks)
ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, 'MONOCHROME2', 0
ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
segments = []
for segment in info['segments']:
    s = Dataset(); s.SegmentNumber, s.SegmentLabel, s.SegmentAlgorithmType = segment['number'], segment['label'], 'MANUAL'
    segments.append(s)
ds.SegmentSequence = Sequence(segments)
orientation = Dataset(); orientation.ImageOrientationPatient = refs[0].ImageOrientationPatient
measures = Dataset(); measures.PixelSpacing, measures.SliceThickness = refs[0].PixelSpacing, refs[0].SliceThickness
shared = Dataset(); shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orientation]), Sequence([measures])
ds.SharedFunctionalGroupsSequence = Sequence([shared])
frames = []
for number, position in where:
    identification = Dataset(); identification.ReferencedSegmentNumber = number
    plane = Dataset(); plane.ImagePositionPatient = position
    frame = Dataset(); frame.SegmentIdentificationSequence, frame.PlanePositionSequence = Sequence([identification]), Sequence([plane])
    frames.append(frame)
ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
series = Dataset(); series.SeriesInstanceUID = refs[0].SeriesInstanceUID
ds.ReferencedSeriesSequence = Sequence([series])
ds.PixelData = np.packbits(np.stack(masks).reshape(-1).astype(np.uint8), bitorder='little').tobytes()
ds['PixelData'].VR = 'OB'
ds.save_as(out, write_like_original=False)
`;

export interface SegmentSpec {
  /** Segment number in the SEG (1, 2, …). */
  number: number;
  label: string;
  /** The label-map value whose voxels form the segment. */
  value: number;
}

/** Writes `out`: the segments of `labelMap` (on the grid of the series in `referenceDir`) as a BINARY SEG. */
export function writeSegmentation(out: string, referenceDir: string, labelMap: Volume, segments: SegmentSpec[], options: { description?: string; type?: string } = {}): void {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const labels = `${out}.labels.f32`;
  fs.writeFileSync(labels, Buffer.from(labelMap.data.buffer, labelMap.data.byteOffset, labelMap.data.byteLength));
  try {
    const info = { dims: labelMap.dims, segments, description: options.description ?? 'tumour segmentation', type: options.type };
    runPython(SEG_SCRIPT, [out, referenceDir, labels, JSON.stringify(info)], ['pydicom', 'numpy']);
  } finally {
    fs.rmSync(labels, { force: true });
  }
}

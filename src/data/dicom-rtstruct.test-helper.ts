/**
 * RT structure sets for tests, written by pydicom (not by our code): closed planar contours per ROI, referencing
 * the series of one of its image files (frame of reference, study, series).
 */
import * as fs from 'fs';
import * as path from 'path';
import { runPython } from './python-oracle.test-helper';

const RTSTRUCT_SCRIPT = `
import sys, json, pydicom
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
out, ref, rois = sys.argv[1], pydicom.dcmread(sys.argv[2]), json.loads(sys.argv[3])
meta = FileMetaDataset()
meta.MediaStorageSOPClassUID = '1.2.840.10008.5.1.4.1.1.481.3'
meta.MediaStorageSOPInstanceUID = generate_uid()
meta.TransferSyntaxUID = ExplicitVRLittleEndian
ds = FileDataset(out, {}, file_meta=meta, preamble=b'\\0' * 128)
ds.is_little_endian, ds.is_implicit_VR = True, False
ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
ds.Modality, ds.PatientID, ds.StudyInstanceUID = 'RTSTRUCT', ref.PatientID, ref.StudyInstanceUID
ds.SeriesInstanceUID, ds.FrameOfReferenceUID = generate_uid(), ref.FrameOfReferenceUID
series = Dataset(); series.SeriesInstanceUID = ref.SeriesInstanceUID
study = Dataset(); study.RTReferencedSeriesSequence = Sequence([series])
frame = Dataset(); frame.FrameOfReferenceUID = ref.FrameOfReferenceUID; frame.RTReferencedStudySequence = Sequence([study])
ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
ds.StructureSetROISequence, ds.ROIContourSequence = Sequence(), Sequence()
for number, (name, contours) in enumerate(rois.items(), 1):
    r = Dataset(); r.ROINumber, r.ROIName = number, name; ds.StructureSetROISequence.append(r)
    rc = Dataset(); rc.ReferencedROINumber = number; rc.ContourSequence = Sequence()
    for points in contours:
        c = Dataset(); c.ContourGeometricType = 'CLOSED_PLANAR'; c.NumberOfContourPoints = len(points) // 3
        c.ContourData = [round(v, 4) for v in points]; rc.ContourSequence.append(c)
    ds.ROIContourSequence.append(rc)
ds.save_as(out, write_like_original=False)
`;

/** Writes `out`: one ROI per entry of `rois` (name → contours, each a flat x, y, z list in mm, LPS). */
export function writeRtStruct(out: string, referenceFile: string, rois: Record<string, number[][]>): void {
  fs.mkdirSync(path.dirname(out), { recursive: true });
  runPython(RTSTRUCT_SCRIPT, [out, referenceFile, JSON.stringify(rois)], ['pydicom']);
}

/** The part of daikon's (untyped) API that src/data/dicom.test.ts uses (an independent reader of our writer's files). */
declare module 'daikon' {
  namespace daikon {
    interface DaikonTag {
      value: unknown[] | null;
    }
    interface DaikonImage {
      littleEndian: boolean;
      getTag(group: number, element: number): DaikonTag | undefined;
      getCols(): number | null;
      getRows(): number | null;
      getSeriesDescription(): string | null;
      getSeriesInstanceUID(): string | null;
      getSeriesNumber(): number | null;
      getImagePosition(): number[] | null;
      getImageDirections(): number[] | null;
      getModality(): string | null;
      getImageNumber(): number | null;
      getSliceThickness(): number | null;
      getPixelSpacing(): number[] | null;
      getBitsAllocated(): number | null;
      getBitsStored(): number | null;
      getPixelRepresentation(): number | null;
      getDataScaleSlope(): number | null;
      getDataScaleIntercept(): number | null;
      getNumberOfFrames(): number;
      getNumberOfSamplesPerPixel(): number;
      getPatientID(): string | null;
      getTransferSyntax(): string | null;
      hasPixelData(): boolean;
      getRawData(): ArrayBuffer;
      getInterpretedData(asArray?: boolean, asObject?: boolean, frameIndex?: number): Float32Array;
    }
    const Series: {
      parseImage(data: DataView): DaikonImage | null;
      parserError: unknown;
    };
    const Parser: { verbose: boolean };
  }
  export = daikon;
}

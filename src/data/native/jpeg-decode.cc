/*
 * fbts-jpeg-decode: decodes JPEG lossless (process 14, any predictor incl. SV1) and JPEG extended (process 2 & 4,
 * 8 and 12 bits) frames with DCMTK's IJG libraries (libijg8/12/16 through DCMTK's DJDecompressIJG*Bit classes),
 * for src/data/native-decoder.ts.
 *
 * Why DCMTK: Debian's libjpeg-turbo 2.1 has no lossless mode and one sample precision per build; no maintained npm
 * decoder has 12-bit DCT (see dicom-codecs.ts). DCMTK's dcmjpeg module (Debian libdcmtk-dev) ships IJG 6b with the
 * lossless patches built three times (8, 12 and 16 bits) and a decoder class per build whose whole interface is
 * init() + decode(codestream, output buffer): the least glue of the options measured (2026-12):
 *   - the libijg* libraries themselves: Debian installs no jpeglib*.h for them (only DCMTK's wrappers), so calling
 *     them directly would mean copying IJG headers into this project;
 *   - GDCM's gdcmjpeg8/12/16 (libgdcm-dev): also no IJG headers, and gdcm::JPEGCodec wants a DICOM DataElement;
 *   - DJDecompressIJG*Bit (used here): the very code `dcmdjpeg` runs, chosen by the same rule (DJDecoder*::
 *     createDecoderInstance: lossless >12 bits ijg16, >8 ijg12, else ijg8; DCT >8 bits ijg12, else ijg8), with the
 *     same defaults (no predictor-6 or Cornell workaround), so the pixels are dcmdjpeg's by construction
 *     (jpeg-native.test.ts checks them against dcmdjpeg and against pydicom+GDCM).
 * Speed (256x256 16-bit MR slices of bench/dicom.ts, loaded 2-core machine): ~0.5 ms of CPU per SV1 frame here vs
 * ~1.8 ms for jpeg-lossless-decoder-js, the JavaScript decoder it replaces; series reads went from 0.90x pydicom+GDCM
 * to 1.46x (SV1) and 1.54x (process 14), 12-bit extended 1.81x.
 * Colour: samples are returned as coded (EDC_never, no YCbCr->RGB), as the JavaScript decoder did; the readers apply
 * PhotometricInterpretation as for every other syntax.
 *
 * Why a separate process and not the addon: the codestreams come from files no one here wrote, and a crash in native
 * code inside the node's process would take the node down. Here a crash, a loop or a runaway allocation costs one
 * frame: the parent sees the pipe close (or kills us at its deadline), reports that file's error and starts a fresh
 * helper.
 *
 * Protocol: frame-server.h's (in: a JPEG codestream, SOI ... EOI; out: the image, `signed` always 0 as the caller
 * applies PixelRepresentation, or why not), with its limits (address space, seconds per frame).
 */
#include "frame-server.h"

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmjpeg/djcparam.h"
#include "dcmtk/dcmjpeg/djdijg12.h"
#include "dcmtk/dcmjpeg/djdijg16.h"
#include "dcmtk/dcmjpeg/djdijg8.h"
#include "dcmtk/oflog/oflog.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the reply carries IJG's native 16-bit samples as little endian"
#endif

static int reply_error(const char *what, const char *why) {
  char message[400];
  if (why && why[0]) snprintf(message, sizeof message, "%s (%s)", what, why);
  else snprintf(message, sizeof message, "%s", what);
  return frame_server_refuse(message);
}

/* The first frame header (SOFn) of a codestream: what DCMTK's scanJpegDataForBitDepth reads, plus the size. */
struct frame_header {
  bool lossless;
  uint32_t precision, height, width, components;
};

static uint32_t be16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }

/* Walks the markers from SOI to the first SOF; returns an error message, or NULL with `out` filled. */
static const char *read_frame_header(const uint8_t *data, size_t length, frame_header *out) {
  if (length < 4 || data[0] != 0xff || data[1] != 0xd8) return "not a JPEG codestream (no SOI marker)";
  size_t at = 2;
  while (at + 4 <= length) {
    if (data[at] != 0xff) return "corrupt JPEG data (no marker where one was expected)";
    uint8_t marker = data[at + 1];
    if (marker == 0xff) { /* fill byte */
      at++;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xd0 && marker <= 0xd8)) { /* TEM, RSTn, SOI: no length */
      at += 2;
      continue;
    }
    uint32_t segment = be16(data + at + 2);
    if (segment < 2 || at + 2 + segment > length) return "corrupt JPEG data (a marker segment runs past the end)";
    bool sof = marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc;
    if (sof) {
      if (segment < 8) return "corrupt JPEG data (short frame header)";
      const uint8_t *p = data + at + 4;
      out->lossless = marker == 0xc3 || marker == 0xc7 || marker == 0xcb || marker == 0xcf;
      out->precision = p[0];
      out->height = be16(p + 1);
      out->width = be16(p + 3);
      out->components = p[5];
      if (out->height == 0) return "JPEG frame whose height is set by a DNL marker (not supported)";
      if (out->width == 0 || out->components < 1 || out->components > 4) return "corrupt JPEG frame header";
      if (out->precision < 2 || out->precision > 16) return "corrupt JPEG frame header (sample precision)";
      return NULL;
    }
    if (marker == 0xda || marker == 0xd9) break; /* SOS or EOI before any frame header */
    at += 2 + segment;
  }
  return "corrupt JPEG data (no frame header)";
}

/* Decoding parameters as dcmdjpeg's defaults, except colour: samples as coded (see the header). */
static const DJCodecParameter parameters(ECC_lossyYCbCr, EDC_never, EUC_default, EPC_default);

static int decode_frame(uint8_t *data, size_t length) {
  frame_header header;
  const char *refused = read_frame_header(data, length, &header);
  if (refused) return reply_error(refused, NULL);
  /* dcmdjpeg's choice of library (DJDecoderLossless/SV1: >12 ijg16, >8 ijg12; DJDecoderExtended and the other DCT
     processes: >8 ijg12), so a 16-bit DCT stream gets IJG's own refusal from ijg12. */
  DJDecoder *decoder;
  if (header.precision > 12 && header.lossless) decoder = new DJDecompressIJG16Bit(parameters, OFFalse);
  else if (header.precision > 8) decoder = new DJDecompressIJG12Bit(parameters, OFFalse);
  else decoder = new DJDecompressIJG8Bit(parameters, OFFalse);
  const uint64_t bytes = decoder->bytesPerSample();
  const uint64_t size = (uint64_t)header.width * header.height * header.components * bytes;
  int status;
  uint8_t *out = size <= UINT32_MAX ? (uint8_t *)calloc(size, 1) : NULL;
  if (!out) {
    status = reply_error(size > UINT32_MAX ? "decoded frame too large" : "not enough memory for the decoded frame", NULL);
  } else {
    OFCondition result = decoder->init();
    if (result.good()) result = decoder->decode(data, (Uint32)length, out, (Uint32)size, OFFalse);
    if (result == EJ_Suspension) {
      status = reply_error("corrupt JPEG data (the codestream ends before the image does)", NULL);
    } else if (result.bad()) {
      status = reply_error("corrupt JPEG data", result.text());
    } else {
      status = frame_server_reply(header.width, header.height, header.components, header.precision, 0, (uint32_t)bytes, out, (uint32_t)size);
    }
  }
  free(out);
  delete decoder;
  return status;
}

int main(int argc, char **argv) {
  /* IJG's warnings (corrupt data it recovers from, as dcmdjpeg does) would go to DCMTK's logger on stderr. */
  OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
  return frame_server_run(argc, argv, decode_frame);
}

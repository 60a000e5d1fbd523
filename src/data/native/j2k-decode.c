/*
 * fbts-j2k-decode: decodes JPEG 2000 frames with the system's OpenJPEG (libopenjp2), for src/data/native-decoder.ts.
 *
 * Why a separate process and not the addon: the codestreams come from files no one here wrote, and a crash in native
 * code inside the node's process would take the node down. Here a crash, a loop or a runaway allocation costs one
 * frame: the parent sees the pipe close (or kills us at its deadline), reports that file's error and starts a fresh
 * helper. Why native at all: OpenJPEG compiled to wasm takes ~3x the CPU time per lossless frame (bench/dicom.ts).
 *
 * Protocol: frame-server.h's (in: a J2K codestream or a JP2 file; out: the image or why not), with its limits
 * (address space, seconds per frame).
 */
#include "frame-server.h"

#include <openjpeg.h>

struct source {
  const uint8_t *data;
  size_t length;
  size_t offset;
};

static OPJ_SIZE_T read_source(void *buffer, OPJ_SIZE_T count, void *user) {
  struct source *s = user;
  if (s->offset >= s->length) return (OPJ_SIZE_T)-1;
  size_t n = s->length - s->offset < count ? s->length - s->offset : count;
  memcpy(buffer, s->data + s->offset, n);
  s->offset += n;
  return n;
}

static OPJ_OFF_T skip_source(OPJ_OFF_T count, void *user) {
  struct source *s = user;
  if (count < 0) {
    if ((size_t)(-count) > s->offset) return -1;
  } else if ((size_t)count > s->length - s->offset) {
    count = (OPJ_OFF_T)(s->length - s->offset);
  }
  s->offset = (size_t)((OPJ_OFF_T)s->offset + count);
  return count;
}

static OPJ_BOOL seek_source(OPJ_OFF_T position, void *user) {
  struct source *s = user;
  if (position < 0 || (size_t)position > s->length) return OPJ_FALSE;
  s->offset = (size_t)position;
  return OPJ_TRUE;
}

/* OpenJPEG's first error message for the current frame (its default handlers would print to stderr). */
static char first_error[256];

static void on_error(const char *message, void *user) {
  (void)user;
  if (first_error[0]) return;
  snprintf(first_error, sizeof first_error, "%s", message);
  size_t n = strlen(first_error);
  while (n > 0 && (first_error[n - 1] == '\n' || first_error[n - 1] == '\r')) first_error[--n] = '\0';
}

static void on_warning(const char *message, void *user) {
  (void)message;
  (void)user;
}

static int reply_error(const char *what) {
  char message[400];
  if (first_error[0]) snprintf(message, sizeof message, "%s (%s)", what, first_error);
  else snprintf(message, sizeof message, "%s", what);
  return frame_server_refuse(message);
}

/* Writes the decoded image as interleaved little-endian samples; refuses what a DICOM frame cannot be. */
static int reply_image(const opj_image_t *image) {
  if (image->numcomps < 1 || image->numcomps > 4) return reply_error("unsupported number of components");
  const opj_image_comp_t *c0 = &image->comps[0];
  uint32_t width = c0->w, height = c0->h, precision = c0->prec, is_signed = c0->sgnd;
  for (uint32_t c = 0; c < image->numcomps; c++) {
    const opj_image_comp_t *comp = &image->comps[c];
    if (!comp->data || comp->w != width || comp->h != height || comp->dx != 1 || comp->dy != 1 || comp->prec != precision
        || comp->sgnd != is_signed) {
      return reply_error("components differ in size, subsampling or precision (not a DICOM frame)");
    }
  }
  if (precision < 1 || precision > 16) return reply_error("samples of more than 16 bits");
  uint32_t bytes = precision > 8 ? 2 : 1;
  uint64_t count = (uint64_t)width * height * image->numcomps;
  if (count * bytes > UINT32_MAX) return reply_error("decoded frame too large");
  uint8_t *out = malloc(count > 0 ? count * bytes : 1);
  if (!out) return reply_error("not enough memory for the decoded frame");
  const int32_t low = is_signed ? -(1 << (precision - 1)) : 0;
  const int32_t high = is_signed ? (1 << (precision - 1)) - 1 : (int32_t)((1u << precision) - 1);
  const uint64_t pixels = (uint64_t)width * height;
  for (uint32_t c = 0; c < image->numcomps; c++) {
    const OPJ_INT32 *data = image->comps[c].data;
    for (uint64_t i = 0; i < pixels; i++) {
      int32_t v = data[i] < low ? low : data[i] > high ? high : data[i]; /* OpenJPEG clamps already; a guard */
      uint64_t at = (i * image->numcomps + c) * bytes;
      out[at] = (uint8_t)v;
      if (bytes == 2) out[at + 1] = (uint8_t)((uint32_t)v >> 8);
    }
  }
  int status = frame_server_reply(width, height, image->numcomps, precision, is_signed, bytes, out, (uint32_t)(count * bytes));
  free(out);
  return status;
}

static int decode_frame(uint8_t *data, size_t length) {
  static const uint8_t jp2_signature[] = {0, 0, 0, 0x0c, 'j', 'P', ' ', ' '};
  first_error[0] = '\0';
  OPJ_CODEC_FORMAT format;
  if (length >= 4 && data[0] == 0xff && data[1] == 0x4f && data[2] == 0xff && data[3] == 0x51) format = OPJ_CODEC_J2K;
  else if (length >= 8 && memcmp(data, jp2_signature, 8) == 0) format = OPJ_CODEC_JP2;
  else return reply_error("not a JPEG 2000 codestream (no SOC and SIZ markers)");

  struct source source = {data, length, 0};
  opj_stream_t *stream = opj_stream_create(length < 65536 ? length : 65536, OPJ_TRUE);
  opj_codec_t *codec = opj_create_decompress(format);
  opj_image_t *image = NULL;
  int status;
  if (!stream || !codec) {
    status = reply_error("not enough memory for the decoder");
    goto done;
  }
  opj_stream_set_user_data(stream, &source, NULL);
  opj_stream_set_user_data_length(stream, length);
  opj_stream_set_read_function(stream, read_source);
  opj_stream_set_skip_function(stream, skip_source);
  opj_stream_set_seek_function(stream, seek_source);
  opj_set_error_handler(codec, on_error, NULL);
  opj_set_warning_handler(codec, on_warning, NULL);
  opj_set_info_handler(codec, on_warning, NULL);
  opj_dparameters_t parameters;
  opj_set_default_decoder_parameters(&parameters);
  if (!opj_setup_decoder(codec, &parameters)) {
    status = reply_error("decoder setup failed");
  } else if (!opj_read_header(stream, codec, &image)) {
    status = reply_error("corrupt JPEG 2000 header");
  } else if (!opj_decode(codec, stream, image) || !opj_end_decompress(codec, stream)) {
    status = reply_error("corrupt JPEG 2000 data");
  } else {
    status = reply_image(image);
  }
done:
  if (image) opj_image_destroy(image);
  if (codec) opj_destroy_codec(codec);
  if (stream) opj_stream_destroy(stream);
  return status;
}

int main(int argc, char **argv) {
  return frame_server_run(argc, argv, decode_frame);
}

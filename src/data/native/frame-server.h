/*
 * The frame protocol both decoding helpers serve (j2k-decode.c, jpeg-decode.cc; their client is
 * src/data/native-decoder.ts), one frame at a time, for as long as stdin stays open. All integers are unsigned 32-bit
 * little endian:
 *   in:  length, then `length` bytes of a codestream
 *   out: 0, width, height, components, precision, signed, bytes per sample (1 or 2), payload length, payload
 *        (samples interleaved by component, little endian, two's complement when signed), or
 *        1, message length, message (why the frame cannot be decoded)
 * Nothing is written to disk. Usage of a helper: PROGRAM [memory limit in MiB (address space, default 1024)
 * [seconds per frame (default 30)]]. A frame that runs out of time ends the process (SIGALRM): the parent kills the
 * helper at its own deadline too, but the alarm also ends a helper whose parent thread was stopped mid-frame.
 * Valid C11 and C++17 (the helpers are one of each).
 */
#ifndef FBTS_FRAME_SERVER_H
#define FBTS_FRAME_SERVER_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1 /* F_SETPIPE_SZ */
#endif
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* A frame larger than this is refused before it is read (the parent checks sizes first; this guards the pipe). */
#define FRAME_SERVER_MAX_INPUT_BYTES (512u * 1024u * 1024u)

static inline void frame_server_put_u32(uint32_t value) {
  uint8_t b[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16), (uint8_t)(value >> 24)};
  fwrite(b, 1, 4, stdout);
}

/* Replies that the frame cannot be decoded, and why. Returns 0, or -1 when the reply could not be written. */
static inline int frame_server_refuse(const char *message) {
  frame_server_put_u32(1);
  frame_server_put_u32((uint32_t)strlen(message));
  fwrite(message, 1, strlen(message), stdout);
  return fflush(stdout) == 0 ? 0 : -1;
}

/* Replies a decoded frame. Returns 0, or -1 when the reply could not be written. */
static inline int frame_server_reply(uint32_t width, uint32_t height, uint32_t components, uint32_t precision,
                                     uint32_t is_signed, uint32_t bytes_per_sample, const uint8_t *samples, uint32_t length) {
  const uint32_t head[] = {0, width, height, components, precision, is_signed, bytes_per_sample, length};
  for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) frame_server_put_u32(head[i]);
  fwrite(samples, 1, length, stdout);
  return fflush(stdout) == 0 ? 0 : -1;
}

static inline int frame_server_read_exactly(uint8_t *buffer, size_t length) {
  return fread(buffer, 1, length, stdin) == length ? 0 : -1;
}

/*
 * Sets the limits from the arguments, then hands every frame that arrives to `decode`, which replies (refuse or
 * reply) and returns 0, or -1 when its reply could not be written. Returns the process's exit code: 0 when the parent
 * closed the pipe, 2 when the protocol is broken or a frame cannot be held in memory (the parent restarts us),
 * 3 when the limits cannot be set.
 */
static inline int frame_server_run(int argc, char **argv, int (*decode)(uint8_t *data, size_t length)) {
  unsigned long memory_mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
  unsigned long frame_seconds = argc > 2 ? strtoul(argv[2], NULL, 10) : 30;
  if (memory_mb > 0) {
    /* The address-space limit turns a runaway allocation into a failed malloc (an error reply), not a machine OOM. */
    struct rlimit limit = {(rlim_t)memory_mb << 20, (rlim_t)memory_mb << 20};
    if (setrlimit(RLIMIT_AS, &limit) != 0) return 3;
  }
#ifdef F_SETPIPE_SZ
  /* Room for several frames both ways when stdin/stdout are pipes: the parent queues the next frames and collects
     replies when it gets the CPU, and we never wait for it in between (best effort: Node's stdio pipes are socket
     pairs, which keep the system's socket buffer sizes). */
  (void)fcntl(0, F_SETPIPE_SZ, 1 << 20);
  (void)fcntl(1, F_SETPIPE_SZ, 1 << 20);
#endif
  uint8_t *buffer = NULL;
  size_t capacity = 0;
  int code = 0;
  for (;;) {
    uint8_t header[4];
    if (frame_server_read_exactly(header, 4) != 0) break; /* the parent closed the pipe: done */
    uint32_t length = (uint32_t)header[0] | (uint32_t)header[1] << 8 | (uint32_t)header[2] << 16 | (uint32_t)header[3] << 24;
    if (length == 0 || length > FRAME_SERVER_MAX_INPUT_BYTES) {
      code = 2;
      break;
    }
    if (length > capacity) {
      free(buffer);
      buffer = (uint8_t *)malloc(length);
      capacity = buffer ? length : 0;
      if (!buffer) {
        code = 2;
        break;
      }
    }
    if (frame_server_read_exactly(buffer, length) != 0) break;
    alarm((unsigned)frame_seconds);
    int written = decode(buffer, length);
    alarm(0);
    if (written != 0) break;
  }
  free(buffer);
  return code;
}

#endif

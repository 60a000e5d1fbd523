/* See pool.h. */
#include "pool.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HOT __attribute__((target("avx2,fma")))

size_t pool_input_size(const pool_geometry *g) {
  return (size_t)g->batch * g->in_d * g->in_h * g->in_w * g->channels;
}
size_t pool_output_size(const pool_geometry *g) {
  return (size_t)g->batch * g->out_d * g->out_h * g->out_w * g->channels;
}

static int max_int(int a, int b) { return a > b ? a : b; }
static int min_int(int a, int b) { return a < b ? a : b; }

/* The in-bounds part of one window along each axis: [lo, hi). */
typedef struct {
  int d_lo, d_hi, h_lo, h_hi, w_lo, w_hi;
} window_bounds;

static window_bounds window_at(const pool_geometry *g, int od, int oh, int ow) {
  const int d0 = od * g->stride_d - g->pad_front, h0 = oh * g->stride_h - g->pad_top;
  const int w0 = ow * g->stride_w - g->pad_left;
  window_bounds b = {max_int(0, d0), min_int(g->in_d, d0 + g->k_d), max_int(0, h0), min_int(g->in_h, h0 + g->k_h),
                     max_int(0, w0), min_int(g->in_w, w0 + g->k_w)};
  return b;
}

HOT int max_pool_forward(const pool_geometry *g, const float *x, float *y) {
  const size_t C = (size_t)g->channels;
  float *out = y;
  for (int n = 0; n < g->batch; n++) {
    for (int od = 0; od < g->out_d; od++) {
      for (int oh = 0; oh < g->out_h; oh++) {
        for (int ow = 0; ow < g->out_w; ow++, out += C) {
          const window_bounds b = window_at(g, od, oh, ow);
          for (size_t c = 0; c < C; c++) out[c] = -INFINITY;
          for (int d = b.d_lo; d < b.d_hi; d++) {
            for (int h = b.h_lo; h < b.h_hi; h++) {
              for (int w = b.w_lo; w < b.w_hi; w++) {
                const float *tap = x + ((((size_t)n * g->in_d + d) * g->in_h + h) * g->in_w + w) * C;
                /* Once NaN, always NaN: v > NaN is false, and a NaN tap replaces any number. */
                for (size_t c = 0; c < C; c++) out[c] = (tap[c] > out[c] || tap[c] != tap[c]) ? tap[c] : out[c];
              }
            }
          }
        }
      }
    }
  }
  return 0;
}

HOT int max_pool_backprop(const pool_geometry *g, const float *x, const float *y, const float *dy, float *dx) {
  const size_t C = (size_t)g->channels;
  /* Per channel: 1 once this window's maximum has been found (later equal taps get nothing). */
  float *found = (float *)malloc((C + 8) * sizeof(float));
  if (!found) return -1;
  memset(dx, 0, pool_input_size(g) * sizeof(float));
  size_t o = 0;
  for (int n = 0; n < g->batch; n++) {
    for (int od = 0; od < g->out_d; od++) {
      for (int oh = 0; oh < g->out_h; oh++) {
        for (int ow = 0; ow < g->out_w; ow++, o += C) {
          const window_bounds b = window_at(g, od, oh, ow);
          const float *m = y + o, *grad = dy + o;
          for (size_t c = 0; c < C; c++) found[c] = 0.0f;
          for (int d = b.d_lo; d < b.d_hi; d++) {
            for (int h = b.h_lo; h < b.h_hi; h++) {
              for (int w = b.w_lo; w < b.w_hi; w++) {
                const size_t at = ((((size_t)n * g->in_d + d) * g->in_h + h) * g->in_w + w) * C;
                const float *tap = x + at;
                float *out = dx + at;
                /* Selects, not products: an infinite or NaN dy must not leak NaN (dy * 0) onto other taps. */
                for (size_t c = 0; c < C; c++) {
                  const int hit = found[c] == 0.0f && tap[c] == m[c];
                  out[c] += hit ? grad[c] : 0.0f;
                  found[c] = hit ? 1.0f : found[c];
                }
              }
            }
          }
        }
      }
    }
  }
  free(found);
  return 0;
}

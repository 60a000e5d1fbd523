/* See pool.h. */
#include "pool.h"

#include "parallel.h"

#include <immintrin.h>
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

/* Elements read by a pass over every window: the work measure for splitting over threads. */
static size_t window_reads(const pool_geometry *g) {
  return pool_output_size(g) * (size_t)g->k_d * g->k_h * g->k_w;
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

typedef struct {
  const pool_geometry *g;
  const float *x, *y, *dy;
  float *out; /* y for the forward, dx for the gradient */
} pool_job;

/* Samples [begin, end): samples share no window, so workers write disjoint memory. */
static HOT int forward_samples(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const pool_job *job = (const pool_job *)context;
  const pool_geometry *g = job->g;
  const size_t C = (size_t)g->channels, per_sample = (size_t)g->out_d * g->out_h * g->out_w * C;
  const float *x = job->x;
  float *out = job->out + begin * per_sample;
  for (size_t n = begin; n < end; n++) {
    for (int od = 0; od < g->out_d; od++) {
      for (int oh = 0; oh < g->out_h; oh++) {
        for (int ow = 0; ow < g->out_w; ow++, out += C) {
          const window_bounds b = window_at(g, od, oh, ow);
          for (size_t c = 0; c < C; c++) out[c] = -INFINITY;
          for (int d = b.d_lo; d < b.d_hi; d++) {
            for (int h = b.h_lo; h < b.h_hi; h++) {
              for (int w = b.w_lo; w < b.w_hi; w++) {
                const float *tap = x + (((n * g->in_d + d) * g->in_h + h) * g->in_w + w) * C;
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

int max_pool_forward(const pool_geometry *g, const float *x, float *y) {
  pool_job job = {g, x, NULL, NULL, y};
  return parallel_ranges((size_t)g->batch, window_reads(g), forward_samples, &job);
}

/* True when the windows tile the input exactly (no padding, no overlap, no gap): every input element is in one
 * window, so each dx element is written once and needs no zero fill. */
static int windows_tile_input(const pool_geometry *g) {
  return g->pad_front == 0 && g->pad_top == 0 && g->pad_left == 0 && g->stride_d == g->k_d &&
         g->stride_h == g->k_h && g->stride_w == g->k_w && g->out_d * g->k_d == g->in_d &&
         g->out_h * g->k_h == g->in_h && g->out_w * g->k_w == g->in_w;
}

static HOT int backprop_samples(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const pool_job *job = (const pool_job *)context;
  const pool_geometry *g = job->g;
  const float *x = job->x, *y = job->y, *dy = job->dy;
  float *dx = job->out;
  const size_t C = (size_t)g->channels, vector_end = C / 8 * 8;
  const size_t image = (size_t)g->in_d * g->in_h * g->in_w * C, per_sample = (size_t)g->out_d * g->out_h * g->out_w * C;
  const int tiled = windows_tile_input(g);
  if (!tiled) memset(dx + begin * image, 0, (end - begin) * image * sizeof(float));
  size_t o = begin * per_sample;
  for (size_t n = begin; n < end; n++) {
    for (int od = 0; od < g->out_d; od++) {
      for (int oh = 0; oh < g->out_h; oh++) {
        for (int ow = 0; ow < g->out_w; ow++, o += C) {
          const window_bounds b = window_at(g, od, oh, ow);
          /* Eight channels at a time, with the "already found" flags kept in a register as a lane mask. Masks
           * select dy (bitwise and), never multiply it, so an infinite or NaN dy cannot leak onto other taps. */
          for (size_t c = 0; c < vector_end; c += 8) {
            const __m256 m = _mm256_loadu_ps(y + o + c), grad = _mm256_loadu_ps(dy + o + c);
            __m256 found = _mm256_setzero_ps();
            for (int d = b.d_lo; d < b.d_hi; d++) {
              for (int h = b.h_lo; h < b.h_hi; h++) {
                for (int w = b.w_lo; w < b.w_hi; w++) {
                  const size_t at = (((n * g->in_d + d) * g->in_h + h) * g->in_w + w) * C + c;
                  const __m256 hit = _mm256_andnot_ps(found, _mm256_cmp_ps(_mm256_loadu_ps(x + at), m, _CMP_EQ_OQ));
                  found = _mm256_or_ps(found, hit);
                  const __m256 routed = _mm256_and_ps(hit, grad);
                  _mm256_storeu_ps(dx + at, tiled ? routed : _mm256_add_ps(_mm256_loadu_ps(dx + at), routed));
                }
              }
            }
          }
          for (size_t c = vector_end; c < C; c++) {
            int found = 0;
            for (int d = b.d_lo; d < b.d_hi; d++) {
              for (int h = b.h_lo; h < b.h_hi; h++) {
                for (int w = b.w_lo; w < b.w_hi; w++) {
                  const size_t at = (((n * g->in_d + d) * g->in_h + h) * g->in_w + w) * C + c;
                  const int hit = !found && x[at] == y[o + c];
                  const float routed = hit ? dy[o + c] : 0.0f;
                  dx[at] = tiled ? routed : dx[at] + routed;
                  found |= hit;
                }
              }
            }
          }
        }
      }
    }
  }
  return 0;
}

int max_pool_backprop(const pool_geometry *g, const float *x, const float *y, const float *dy, float *dx) {
  pool_job job = {g, x, y, dy, dx};
  return parallel_ranges((size_t)g->batch, window_reads(g), backprop_samples, &job);
}

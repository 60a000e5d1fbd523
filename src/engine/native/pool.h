/*
 * Max pooling (2D as 3D with depth 1), channels-last, forward and gradient. Channels are the inner loop, so each
 * window tap is a contiguous run the compiler vectorises.
 */
#ifndef FBTS_POOL_H
#define FBTS_POOL_H

#include <stddef.h>

/* Geometry in the order the JavaScript side passes it (Int32Array of POOL_GEOMETRY_FIELDS). */
typedef struct {
  int batch, in_d, in_h, in_w, channels;
  int out_d, out_h, out_w;
  int k_d, k_h, k_w;
  int stride_d, stride_h, stride_w;
  int pad_front, pad_top, pad_left;
} pool_geometry;

#define POOL_GEOMETRY_FIELDS 17

size_t pool_input_size(const pool_geometry *g);
size_t pool_output_size(const pool_geometry *g);

/* y = max over each window (taps in the padding ignored; NaN propagates, as in tfjs's CPU backend). */
int max_pool_forward(const pool_geometry *g, const float *x, float *y);

/* dx = dy routed to the first tap of each window, in window order, equal to the forward output y (the tie rule
 * of tfjs's CPU backend and PyTorch); overlapping windows add up. */
int max_pool_backprop(const pool_geometry *g, const float *x, const float *y, const float *dy, float *dx);

#endif

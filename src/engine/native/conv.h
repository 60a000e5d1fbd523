/*
 * Convolutions (2D as 3D with depth 1), channels-last (NDHWC), filters DHWIO, on x86-64 with AVX2 + FMA.
 * Forward, filter gradient and input gradient, each an im2col / col2im over cache-sized blocks of output
 * positions feeding a 12x16 register-tiled matrix product (AVX-512 where the CPU has it, else two 6x16 AVX2 tiles). Split by sample over parallel_threads() workers
 * (parallel.h; 1 unless set), each writing only its own samples' outputs.
 */
#ifndef FBTS_CONV_H
#define FBTS_CONV_H

#include <stddef.h>

/* Geometry in the order the JavaScript side passes it (Int32Array of CONV_GEOMETRY_FIELDS). */
typedef struct {
  int batch, in_d, in_h, in_w, in_c;
  int out_d, out_h, out_w, out_c;
  int k_d, k_h, k_w;
  int stride_d, stride_h, stride_w;
  int dil_d, dil_h, dil_w;
  int pad_front, pad_top, pad_left;
} conv_geometry;

#define CONV_GEOMETRY_FIELDS 21

/* 1 when this CPU can run the kernels (AVX2 and FMA), else 0. */
int conv_cpu_supported(void);

/* 1 when the register tiles run on AVX-512 (CPU support, unless FEDBIOMED_TS_NATIVE_AVX512=0), else 0 (AVX2). */
int conv_tiles_avx512(void);

/* Element counts the buffers must hold; the binding checks them before any kernel touches memory. */
size_t conv_input_size(const conv_geometry *g);
size_t conv_output_size(const conv_geometry *g);
size_t conv_filter_size(const conv_geometry *g);

/* Return 0 on success, -1 when a scratch buffer could not be allocated (outputs are then left untouched
 * or partially written, never freed memory). */
int conv_forward(const conv_geometry *g, const float *x, const float *w, float *y);
/* y = max(conv(x, w) + bias, 0) (bias: out_c floats), the same bits as conv_forward then bias_relu_forward. */
int conv_forward_bias_relu(const conv_geometry *g, const float *x, const float *w, const float *bias, float *y);
int conv_backprop_filter(const conv_geometry *g, const float *x, const float *dy, float *dw);
int conv_backprop_input(const conv_geometry *g, const float *dy, const float *w, float *dx);

#endif

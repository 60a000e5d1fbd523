/*
 * Per-sample gradients for differential privacy (DP-SGD, src/engine/dp/per-sample.ts): each sample's conv filter
 * and bias gradient with its squared L2 norm, in one call split by sample over the kernels' threads, and the
 * clip-weighted sum over samples. The same products as the batch kernels, sample by sample: on CPUs with AVX-512,
 * register tiles that also sum the bias gradient in the same pass over dy (float along each output row, float64
 * across rows); elsewhere, or for padded/dilated geometry, conv_backprop_filter on one sample's slice and float64
 * column sums for the bias.
 */
#ifndef FBTS_DP_H
#define FBTS_DP_H

#include <stddef.h>

#include "conv.h"

/*
 * g describes the whole batch (g->batch samples; x and dy sized by conv_input_size / conv_output_size).
 * filter_grads: [batch x conv_filter_size(g with batch 1)], each sample's filter gradient (DHWIO);
 * bias_grads: [batch x out_c], each sample's sum of dy over its positions, or NULL when the layer has no bias;
 * norm_sq: [batch], each sample's squared norm over both (float64 accumulation).
 * Each sample is computed by one worker: the results have the same bits on any thread count.
 * Returns 0, or -1 when scratch memory could not be allocated.
 */
int dp_conv_per_sample(const conv_geometry *g, const float *x, const float *dy, float *filter_grads,
                       float *bias_grads, float *norm_sq);

/* out[k] = sum over i < rows, in order, of factors[i] * m[i * cols + k] (float64 accumulation): the clipped
 * gradient sum of a parameter from its per-sample gradients [rows x cols] and the clipping factors. */
void dp_weighted_row_sum(const float *m, const float *factors, size_t rows, size_t cols, float *out);

#endif

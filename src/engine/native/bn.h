/*
 * Batch normalisation in training mode over a [rows x cols] channels-last activation (cols = channels, rows = every
 * sample and position), optionally followed by a ReLU, as PyTorch's BatchNorm{1,2,3}d computes it: per channel the
 * batch mean and biased variance, y = (x - mean) * gamma / sqrt(var + eps) + beta. Forward in two passes (statistics,
 * then normalisation), backward in two (the per-channel sums, then the input gradient), instead of the dozen
 * elementwise passes and reductions of the composed ops.
 *
 * Statistics and gradient sums use float64 accumulators in one partial per fixed chunk of rows, added in chunk order:
 * the same bits on any thread count.
 */
#ifndef FBTS_BN_H
#define FBTS_BN_H

#include <stddef.h>

/* y = max?((x - mean) * scale + beta, 0), scale = gamma / sqrt(variance + eps); writes the batch mean and biased
 * variance. Returns -1 when the partial sums cannot be allocated (outputs then untouched). */
int batch_norm_forward(const float *x, const float *gamma, const float *beta, double eps, int relu, size_t rows,
                       size_t cols, float *y, float *mean, float *variance);

/* Gradients of the forward above given dy (the ReLU's mask recomputed from x with the same arithmetic, so it is the
 * forward's): dbeta = sum dz, dgamma = sum dz * xhat, dx = scale * (dz - dbeta / M - xhat * dgamma / M), where
 * dz = dy (where the output was positive, with relu; +0 elsewhere, even for an infinite or NaN dy) and M = rows.
 * mean and variance are the forward's outputs. Returns -1 when the partial sums cannot be allocated. */
int batch_norm_backward(const float *dy, const float *x, const float *gamma, const float *beta, const float *mean,
                        const float *variance, double eps, int relu, size_t rows, size_t cols, float *dx,
                        float *dgamma, float *dbeta);

/* Group norm (nn.GroupNorm; instance norm with groups = cols, layer norm's normalisation with 1 group) over
 * `samples` samples of [positions x cols] channels-last values: per sample and group of cols / groups consecutive
 * channels, the mean and biased variance over positions x channels; y = (x - mean) * gamma / sqrt(var + eps) + beta
 * with per-channel gamma and beta, then a ReLU when `relu`. mean and variance: [samples x groups]. Same passes and
 * float64 partial sums as batch norm. Returns -1 when out of memory, -2 for an empty or indivisible shape (outputs untouched). */
int group_norm_forward(const float *x, const float *gamma, const float *beta, double eps, int relu, size_t samples,
                       size_t positions, size_t cols, size_t groups, float *y, float *mean, float *variance);

/* Its gradients: dbeta = sum dz, dgamma = sum dz * xhat over samples and positions; per sample and group, with
 * g = gamma * dz, dx = inv * (g - mean(g) - xhat * mean(g * xhat)); dz as in batch_norm_backward. */
int group_norm_backward(const float *dy, const float *x, const float *gamma, const float *beta, const float *mean,
                        const float *variance, double eps, int relu, size_t samples, size_t positions, size_t cols,
                        size_t groups, float *dx, float *dgamma, float *dbeta);

#endif

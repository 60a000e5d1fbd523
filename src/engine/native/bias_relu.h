/*
 * relu(x + bias) over a [rows x cols] channels-last activation (bias broadcast along rows), forward and gradient,
 * one pass each: what a conv layer followed by a ReLU needs, instead of add, relu, step, multiply and sum passes
 * over the whole activation.
 */
#ifndef FBTS_BIAS_RELU_H
#define FBTS_BIAS_RELU_H

#include <stddef.h>

/* y = max(x + bias, 0). */
int bias_relu_forward(const float *x, const float *bias, float *y, size_t rows, size_t cols);

/* y = x + bias (a layer's bias without a ReLU after it; its gradients are dy and dy's column sums). */
int bias_add_forward(const float *x, const float *bias, float *y, size_t rows, size_t cols);

/* dx = dy where y > 0, else 0; dbias = column sums of dx (float64 partials over fixed row chunks, added in order:
 * the same bits on any thread count). Returns -1 when the partial sums cannot be allocated. */
int bias_relu_backward(const float *dy, const float *y, float *dx, float *dbias, size_t rows, size_t cols);

#endif

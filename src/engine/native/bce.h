/*
 * Binary cross-entropy with logits, element-wise, for the loss BCEWithLogitsLoss (src/engine/losses.ts): the terms
 * max(x, 0) - x y + log1p(exp(-|x|)) forward (the composed tfjs form, float32 with the C library's expf and log1pf)
 * and, backward, dy (sigmoid(x) - y) for x -- PyTorch's own gradient formula -- and -dy x for y. One pass each instead
 * of about twenty tfjs kernels over the prediction.
 */
#ifndef FBTS_BCE_H
#define FBTS_BCE_H

#include <stddef.h>

void bce_logits_forward(const float *x, const float *y, float *terms, size_t n);

/* dx and dy_target may each be NULL when not wanted. */
void bce_logits_backward(const float *dy, const float *x, const float *y, float *dx, float *dy_target, size_t n);

#endif

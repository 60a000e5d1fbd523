/* See bce.h. Scalar loops: expf and log1pf dominate, and the same code runs on every x86-64. */
#include "bce.h"

#include <math.h>

void bce_logits_forward(const float *x, const float *y, float *terms, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const float v = x[i];
    const float relu = v > 0.0f ? v : 0.0f;
    terms[i] = (relu - v * y[i]) + log1pf(expf(-fabsf(v)));
  }
}

void bce_logits_backward(const float *dy, const float *x, const float *y, float *dx, float *dy_target, size_t n) {
  for (size_t i = 0; i < n; i++) {
    const float v = x[i];
    if (dx) {
      /* sigmoid(v) without overflow: exp of a non-positive number only. */
      const float e = expf(-fabsf(v));
      const float sigmoid = v >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
      dx[i] = dy[i] * (sigmoid - y[i]);
    }
    if (dy_target) dy_target[i] = -dy[i] * v;
  }
}

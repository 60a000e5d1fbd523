/*
 * One Adam / AdamW step over a parameter tensor, as the optimizer (src/engine/optimizers.ts) composes it from tfjs
 * kernels: every float32 operation the composed path runs, in the same order, each rounded to float32 (no fused
 * multiply-adds), so both paths give the same bits (tested in optimizers.test.ts). One pass instead of a dozen kernels
 * and their tensors.
 */
#ifndef FBTS_ADAM_H
#define FBTS_ADAM_H

#include <stddef.h>

typedef enum { ADAM_NO_DECAY = 0, ADAM_L2 = 1, ADAM_DECOUPLED = 2 } adam_decay_mode;

/* The step's constants, already rounded to float32 as tfjs rounds a scalar operand. */
typedef struct {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float sqrt_bias_correction2; /* sqrt(1 - beta2^t) */
  float eps;
  float step_size;    /* lr / (1 - beta1^t) */
  float weight_decay; /* the L2 term's factor (ADAM_L2) */
  float decay;        /* 1 - lr * weight_decay (ADAM_DECOUPLED) */
  adam_decay_mode mode;
  int first; /* no moments yet: m and v are read as absent (m' = (1 - beta1) g, v' = (1 - beta2) g^2) */
} adam_step;

/*
 * p' = p0 - (m' / (sqrt(v') / sqrt_bias_correction2 + eps)) * step_size, with
 *   p0 = p * decay (decoupled) or p;   g0 = g + p * weight_decay (L2) or g;
 *   m' = m * beta1 + g0 * (1 - beta1);   v' = v * beta2 + (g0 * g0) * (1 - beta2)   (without the first terms when first).
 * m and v may be NULL when `first`. Outputs may not alias inputs.
 */
void adam_update(const adam_step *s, size_t n, const float *p, const float *g, const float *m, const float *v,
                 float *p_out, float *m_out, float *v_out);

#endif

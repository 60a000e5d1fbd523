/* See adam.h. Eight lanes at a time with AVX2, the rest one at a time: the same float32 operations either way.
 * fp-contract=off: a compiler must not fuse a multiply and an add here (the composed path rounds between them). */
#include "adam.h"

#include <immintrin.h>
#include <math.h>

#define HOT __attribute__((target("avx2"), optimize("fp-contract=off")))

static inline HOT float one(const adam_step *s, float p, float g, float m, float v, float *m_out, float *v_out) {
  const float p0 = s->mode == ADAM_DECOUPLED ? p * s->decay : p;
  const float g0 = s->mode == ADAM_L2 ? g + p * s->weight_decay : g;
  const float gm = g0 * s->one_minus_beta1;
  const float gv = (g0 * g0) * s->one_minus_beta2;
  const float m1 = s->first ? gm : m * s->beta1 + gm;
  const float v1 = s->first ? gv : v * s->beta2 + gv;
  *m_out = m1;
  *v_out = v1;
  return p0 - (m1 / (sqrtf(v1) / s->sqrt_bias_correction2 + s->eps)) * s->step_size;
}

HOT void adam_update(const adam_step *s, size_t n, const float *p, const float *g, const float *m, const float *v,
                     float *p_out, float *m_out, float *v_out) {
  const __m256 beta1 = _mm256_set1_ps(s->beta1), omb1 = _mm256_set1_ps(s->one_minus_beta1);
  const __m256 beta2 = _mm256_set1_ps(s->beta2), omb2 = _mm256_set1_ps(s->one_minus_beta2);
  const __m256 bc2 = _mm256_set1_ps(s->sqrt_bias_correction2), eps = _mm256_set1_ps(s->eps);
  const __m256 step = _mm256_set1_ps(s->step_size), wd = _mm256_set1_ps(s->weight_decay);
  const __m256 decay = _mm256_set1_ps(s->decay);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 pv = _mm256_loadu_ps(p + i);
    __m256 gv = _mm256_loadu_ps(g + i);
    const __m256 p0 = s->mode == ADAM_DECOUPLED ? _mm256_mul_ps(pv, decay) : pv;
    if (s->mode == ADAM_L2) gv = _mm256_add_ps(gv, _mm256_mul_ps(pv, wd));
    __m256 m1 = _mm256_mul_ps(gv, omb1);
    __m256 v1 = _mm256_mul_ps(_mm256_mul_ps(gv, gv), omb2);
    if (!s->first) {
      m1 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), beta1), m1);
      v1 = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), beta2), v1);
    }
    _mm256_storeu_ps(m_out + i, m1);
    _mm256_storeu_ps(v_out + i, v1);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(v1), bc2), eps);
    _mm256_storeu_ps(p_out + i, _mm256_sub_ps(p0, _mm256_mul_ps(_mm256_div_ps(m1, denom), step)));
  }
  for (; i < n; i++) {
    p_out[i] = one(s, p[i], g[i], s->first ? 0.0f : m[i], s->first ? 0.0f : v[i], &m_out[i], &v_out[i]);
  }
}

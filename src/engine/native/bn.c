/* See bn.h. */
#include "bn.h"

#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

#include "parallel.h"

#define HOT __attribute__((target("avx2,fma")))

/* Rows per partial sum: fixed, so that the chunks -- and the bits of the result -- do not depend on the threads. */
#define CHUNK_ROWS 512

/* Elementwise passes are memory-bound: an element costs about as much as a few multiply-adds of a convolution
 * (parallel.h's unit of work). */
#define WORK_PER_ELEMENT 8

typedef struct {
  const float *x, *dy, *beta;
  float *out;
  /* per channel, floats padded to a multiple of 8 (8-wide loads never leave them): */
  const float *mean, *scale;
  const float *a, *b, *c; /* backward: dx = a dz - (b (x - mean) + c) */
  const double *shift64;  /* statistics: the per-channel data shift */
  double *partials; /* chunk k: 2 * stride doubles (two sums per channel) */
  size_t rows, cols, stride;
  /* Group norm: the rows are `rows / sample_rows` samples of sample_rows rows each; chunks never cross a sample,
   * and the per-channel vectors above (and shift64) hold one padded row of `stride` per sample. Batch norm: one
   * sample of every row. */
  size_t sample_rows;
  int relu;
} bn_job;

static size_t padded(size_t cols) { return (cols + 7) / 8 * 8; }
static size_t chunk_count(size_t rows) { return rows == 0 ? 1 : (rows + CHUNK_ROWS - 1) / CHUNK_ROWS; }
static size_t samples_of(const bn_job *job) { return job->sample_rows == 0 ? 1 : job->rows / job->sample_rows; }
static size_t job_chunks(const bn_job *job) { return samples_of(job) * chunk_count(job->sample_rows); }

/* Chunk k's rows [*first, *last) and its sample. */
static size_t chunk_rows(const bn_job *job, size_t chunk, size_t *first, size_t *last) {
  const size_t per_sample = chunk_count(job->sample_rows), sample = chunk / per_sample, local = chunk % per_sample;
  const size_t base = sample * job->sample_rows, end = (local + 1) * CHUNK_ROWS;
  *first = base + local * CHUNK_ROWS;
  *last = base + (end < job->sample_rows ? end : job->sample_rows);
  return sample;
}

/* The job with its per-channel vectors moved to `sample`'s row. */
static bn_job at_sample(const bn_job *job, size_t sample) {
  bn_job s = *job;
  const size_t o = sample * job->stride;
  if (s.mean) s.mean += o;
  if (s.scale) s.scale += o;
  if (s.beta) s.beta += o;
  if (s.a) s.a += o;
  if (s.b) s.b += o;
  if (s.c) s.c += o;
  if (s.shift64) s.shift64 += o;
  return s;
}

/* Statistics pass: sums of d and d^2, d = x - shift64 (the channel's first value: a shift that keeps the one-pass
 * variance S2/M - (S1/M)^2 free of cancellation when the mean is large against the spread). */
static HOT int stats_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const bn_job *all = (const bn_job *)context;
  const size_t cols = all->cols, vector_end = cols / 4 * 4;
  for (size_t chunk = begin; chunk < end; chunk++) {
    size_t first, last;
    const bn_job sample = at_sample(all, chunk_rows(all, chunk, &first, &last)), *job = &sample;
    double *s1 = job->partials + chunk * 2 * job->stride, *s2 = s1 + job->stride;
    size_t r = first;
    /* Four rows summed in registers before each update of the partials: a quarter of the load-add-store chains
     * through memory, which bound this loop otherwise. */
    for (; r + 4 <= last; r += 4) {
      const float *x = job->x + r * cols;
      for (size_t c = 0; c < vector_end; c += 4) {
        const __m256d shift = _mm256_loadu_pd(job->shift64 + c);
        const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + c)), shift);
        const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + cols + c)), shift);
        const __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + 2 * cols + c)), shift);
        const __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + 3 * cols + c)), shift);
        const __m256d sum = _mm256_add_pd(_mm256_add_pd(d0, d1), _mm256_add_pd(d2, d3));
        const __m256d squares = _mm256_fmadd_pd(d3, d3, _mm256_fmadd_pd(d2, d2, _mm256_fmadd_pd(d1, d1, _mm256_mul_pd(d0, d0))));
        _mm256_storeu_pd(s1 + c, _mm256_add_pd(_mm256_loadu_pd(s1 + c), sum));
        _mm256_storeu_pd(s2 + c, _mm256_add_pd(_mm256_loadu_pd(s2 + c), squares));
      }
      for (size_t c = vector_end; c < cols; c++) {
        for (size_t k = 0; k < 4; k++) {
          const double d = (double)x[k * cols + c] - job->shift64[c];
          s1[c] += d;
          s2[c] = fma(d, d, s2[c]);
        }
      }
    }
    for (; r < last; r++) {
      const float *x = job->x + r * cols;
      for (size_t c = 0; c < vector_end; c += 4) {
        const __m256d d = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + c)), _mm256_loadu_pd(job->shift64 + c));
        _mm256_storeu_pd(s1 + c, _mm256_add_pd(_mm256_loadu_pd(s1 + c), d));
        _mm256_storeu_pd(s2 + c, _mm256_fmadd_pd(d, d, _mm256_loadu_pd(s2 + c)));
      }
      for (size_t c = vector_end; c < cols; c++) {
        const double d = (double)x[c] - job->shift64[c];
        s1[c] += d;
        s2[c] = fma(d, d, s2[c]);
      }
    }
  }
  return 0;
}

/* z = (x - mean) * scale + beta, the same instructions in the forward and in the backward's ReLU mask. */
static inline HOT __m256 affine8(const bn_job *job, const float *x, size_t c) {
  return _mm256_fmadd_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(job->mean + c)),
                         _mm256_loadu_ps(job->scale + c), _mm256_loadu_ps(job->beta + c));
}
static inline float affine1(const bn_job *job, const float *x, size_t c) {
  return fmaf(x[c] - job->mean[c], job->scale[c], job->beta[c]);
}

static HOT int normalise_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const bn_job *all = (const bn_job *)context;
  const size_t cols = all->cols, vector_end = cols / 8 * 8;
  const __m256 zero = _mm256_setzero_ps();
  for (size_t chunk = begin; chunk < end; chunk++) {
    size_t first, last;
    const bn_job sample = at_sample(all, chunk_rows(all, chunk, &first, &last)), *job = &sample;
    for (size_t r = first; r < last; r++) {
      const float *x = job->x + r * cols;
      float *y = job->out + r * cols;
      for (size_t c = 0; c < vector_end; c += 8) {
        const __m256 z = affine8(job, x, c);
        _mm256_storeu_ps(y + c, job->relu ? _mm256_max_ps(z, zero) : z);
      }
      for (size_t c = vector_end; c < cols; c++) {
        const float z = affine1(job, x, c);
        y[c] = job->relu ? (z > 0.0f ? z : 0.0f) : z;
      }
    }
  }
  return 0;
}

/* dz: dy where the forward's output was positive (relu), else dy. Mask, not multiply: an infinite or NaN dy where
 * the output is 0 gives 0, as PyTorch's ReLU backward does. */
static inline HOT __m256 masked_dy8(const bn_job *job, const float *x, const float *dy, size_t c) {
  const __m256 g = _mm256_loadu_ps(dy + c);
  if (!job->relu) return g;
  return _mm256_and_ps(_mm256_cmp_ps(affine8(job, x, c), _mm256_setzero_ps(), _CMP_GT_OQ), g);
}
static inline float masked_dy1(const bn_job *job, const float *x, const float *dy, size_t c) {
  return !job->relu || affine1(job, x, c) > 0.0f ? dy[c] : 0.0f;
}

/* Backward sums: sum dz and sum dz * (x - mean), per channel. */
static HOT int gradient_sums_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const bn_job *all = (const bn_job *)context;
  const size_t cols = all->cols, vector_end = cols / 8 * 8;
  for (size_t chunk = begin; chunk < end; chunk++) {
    size_t first, last;
    const bn_job sample = at_sample(all, chunk_rows(all, chunk, &first, &last)), *job = &sample;
    double *s1 = job->partials + chunk * 2 * job->stride, *s2 = s1 + job->stride;
    size_t r = first;
    /* Four rows summed in registers before each update of the partials, as in stats_chunks. */
    for (; r + 4 <= last; r += 4) {
      const float *x = job->x + r * cols, *dy = job->dy + r * cols;
      for (size_t c = 0; c < vector_end; c += 8) {
        __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
        __m256d dot_lo = _mm256_setzero_pd(), dot_hi = _mm256_setzero_pd();
        for (size_t k = 0; k < 4; k++) {
          const __m256 dz = masked_dy8(job, x + k * cols, dy + k * cols, c);
          const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + k * cols + c), _mm256_loadu_ps(job->mean + c));
          const __m256d dz_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(dz));
          const __m256d dz_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(dz, 1));
          sum_lo = _mm256_add_pd(sum_lo, dz_lo);
          sum_hi = _mm256_add_pd(sum_hi, dz_hi);
          dot_lo = _mm256_fmadd_pd(dz_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(t)), dot_lo);
          dot_hi = _mm256_fmadd_pd(dz_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1)), dot_hi);
        }
        _mm256_storeu_pd(s1 + c, _mm256_add_pd(_mm256_loadu_pd(s1 + c), sum_lo));
        _mm256_storeu_pd(s1 + c + 4, _mm256_add_pd(_mm256_loadu_pd(s1 + c + 4), sum_hi));
        _mm256_storeu_pd(s2 + c, _mm256_add_pd(_mm256_loadu_pd(s2 + c), dot_lo));
        _mm256_storeu_pd(s2 + c + 4, _mm256_add_pd(_mm256_loadu_pd(s2 + c + 4), dot_hi));
      }
      for (size_t c = vector_end; c < cols; c++) {
        for (size_t k = 0; k < 4; k++) {
          const double dz = masked_dy1(job, x + k * cols, dy + k * cols, c);
          s1[c] += dz;
          s2[c] = fma(dz, (double)(x[k * cols + c] - job->mean[c]), s2[c]);
        }
      }
    }
    for (; r < last; r++) {
      const float *x = job->x + r * cols, *dy = job->dy + r * cols;
      for (size_t c = 0; c < vector_end; c += 8) {
        const __m256 dz = masked_dy8(job, x, dy, c);
        const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(job->mean + c));
        const __m256d dz_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(dz));
        const __m256d dz_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(dz, 1));
        const __m256d t_lo = _mm256_cvtps_pd(_mm256_castps256_ps128(t));
        const __m256d t_hi = _mm256_cvtps_pd(_mm256_extractf128_ps(t, 1));
        _mm256_storeu_pd(s1 + c, _mm256_add_pd(_mm256_loadu_pd(s1 + c), dz_lo));
        _mm256_storeu_pd(s1 + c + 4, _mm256_add_pd(_mm256_loadu_pd(s1 + c + 4), dz_hi));
        _mm256_storeu_pd(s2 + c, _mm256_fmadd_pd(dz_lo, t_lo, _mm256_loadu_pd(s2 + c)));
        _mm256_storeu_pd(s2 + c + 4, _mm256_fmadd_pd(dz_hi, t_hi, _mm256_loadu_pd(s2 + c + 4)));
      }
      for (size_t c = vector_end; c < cols; c++) {
        const double dz = masked_dy1(job, x, dy, c);
        s1[c] += dz;
        s2[c] = fma(dz, (double)(x[c] - job->mean[c]), s2[c]);
      }
    }
  }
  return 0;
}

/* dx = a * dz - (b * (x - mean) + c). */
static HOT int input_gradient_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const bn_job *all = (const bn_job *)context;
  const size_t cols = all->cols, vector_end = cols / 8 * 8;
  for (size_t chunk = begin; chunk < end; chunk++) {
    size_t first, last;
    const bn_job sample = at_sample(all, chunk_rows(all, chunk, &first, &last)), *job = &sample;
    for (size_t r = first; r < last; r++) {
      const float *x = job->x + r * cols, *dy = job->dy + r * cols;
      float *dx = job->out + r * cols;
      for (size_t c = 0; c < vector_end; c += 8) {
        const __m256 dz = masked_dy8(job, x, dy, c);
        const __m256 t = _mm256_sub_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(job->mean + c));
        const __m256 rest = _mm256_fmadd_ps(_mm256_loadu_ps(job->b + c), t, _mm256_loadu_ps(job->c + c));
        _mm256_storeu_ps(dx + c, _mm256_fmsub_ps(_mm256_loadu_ps(job->a + c), dz, rest));
      }
      for (size_t c = vector_end; c < cols; c++) {
        const float dz = masked_dy1(job, x, dy, c);
        dx[c] = fmaf(job->a[c], dz, -fmaf(job->b[c], x[c] - job->mean[c], job->c[c]));
      }
    }
  }
  return 0;
}

/* Runs `task` over the chunks with zeroed partials, then adds each sample's in chunk order into
 * totals[sample][2][cols]. */
static int summed(bn_job *job, range_task task, double *totals) {
  const size_t chunks = job_chunks(job), per_sample = chunk_count(job->sample_rows);
  job->partials = (double *)calloc(chunks * 2 * job->stride, sizeof(double));
  if (!job->partials) return -1;
  parallel_ranges(chunks, job->rows * job->cols * WORK_PER_ELEMENT, task, job);
  for (size_t n = 0; n < samples_of(job); n++) {
    for (size_t i = 0; i < 2; i++) {
      for (size_t c = 0; c < job->cols; c++) {
        double total = 0;
        for (size_t k = n * per_sample; k < (n + 1) * per_sample; k++) total += job->partials[(k * 2 + i) * job->stride + c];
        totals[(n * 2 + i) * job->cols + c] = total;
      }
    }
  }
  free(job->partials);
  job->partials = NULL;
  return 0;
}

/* Per-channel scale = gamma / sqrt(variance + eps), from the float variance the forward returns (so that the
 * backward recomputes the very same scale). */
static float channel_scale(float gamma, float variance, double eps) {
  return gamma * (float)(1.0 / sqrt((double)variance + eps));
}

/* Scratch for per-channel vectors: `count` arrays of padded(cols) floats, zeroed (8-wide loads read the padding). */
static float *channel_scratch(size_t cols, size_t count) { return (float *)calloc(count * padded(cols), sizeof(float)); }

int batch_norm_forward(const float *x, const float *gamma, const float *beta, double eps, int relu, size_t rows,
                       size_t cols, float *y, float *mean, float *variance) {
  const size_t p = padded(cols);
  float *scratch = channel_scratch(cols, 3);
  double *totals = (double *)calloc(2 * cols + 4, sizeof(double));
  double *shift = (double *)calloc(p, sizeof(double));
  if (!scratch || !totals || !shift) goto out_of_memory;
  float *mean_p = scratch, *scale_p = scratch + p, *beta_p = scratch + 2 * p;
  for (size_t c = 0; c < cols; c++) shift[c] = rows > 0 ? x[c] : 0.0;
  bn_job job = {.x = x, .shift64 = shift, .rows = rows, .cols = cols, .stride = p, .sample_rows = rows, .relu = relu};
  if (summed(&job, stats_chunks, totals) != 0) goto out_of_memory;
  const double m = rows > 0 ? (double)rows : 1.0;
  for (size_t c = 0; c < cols; c++) {
    const double d = totals[c] / m;
    const double var = totals[cols + c] / m - d * d;
    mean[c] = (float)(shift[c] + d);
    variance[c] = (float)(var > 0 ? var : 0);
    mean_p[c] = mean[c];
    scale_p[c] = channel_scale(gamma[c], variance[c], eps);
    beta_p[c] = beta[c];
  }
  job.mean = mean_p;
  job.scale = scale_p;
  job.beta = beta_p;
  job.out = y;
  parallel_ranges(job_chunks(&job), rows * cols * WORK_PER_ELEMENT, normalise_chunks, &job);
  free(scratch);
  free(totals);
  free(shift);
  return 0;
out_of_memory:
  free(scratch);
  free(totals);
  free(shift);
  return -1;
}

int batch_norm_backward(const float *dy, const float *x, const float *gamma, const float *beta, const float *mean,
                        const float *variance, double eps, int relu, size_t rows, size_t cols, float *dx,
                        float *dgamma, float *dbeta) {
  const size_t p = padded(cols);
  float *scratch = channel_scratch(cols, 6);
  double *totals = (double *)calloc(2 * cols + 4, sizeof(double));
  if (!scratch || !totals) {
    free(scratch);
    free(totals);
    return -1;
  }
  float *mean_p = scratch, *scale_p = scratch + p, *beta_p = scratch + 2 * p;
  float *a = scratch + 3 * p, *b = scratch + 4 * p, *c_term = scratch + 5 * p;
  for (size_t c = 0; c < cols; c++) {
    mean_p[c] = mean[c];
    scale_p[c] = channel_scale(gamma[c], variance[c], eps);
    beta_p[c] = beta[c];
  }
  bn_job job = {.x = x, .dy = dy, .beta = beta_p, .mean = mean_p, .scale = scale_p, .rows = rows, .cols = cols,
                .stride = p, .sample_rows = rows, .relu = relu};
  if (summed(&job, gradient_sums_chunks, totals) != 0) {
    free(scratch);
    free(totals);
    return -1;
  }
  const double m = rows > 0 ? (double)rows : 1.0;
  for (size_t c = 0; c < cols; c++) {
    const double inv = 1.0 / sqrt((double)variance[c] + eps);
    const double sum_dz = totals[c], dgamma_c = totals[cols + c] * inv;
    dbeta[c] = (float)sum_dz;
    dgamma[c] = (float)dgamma_c;
    a[c] = scale_p[c];
    b[c] = (float)((double)scale_p[c] * inv * dgamma_c / m);
    c_term[c] = (float)((double)scale_p[c] * sum_dz / m);
  }
  job.a = a;
  job.b = b;
  job.c = c_term;
  job.out = dx;
  parallel_ranges(job_chunks(&job), rows * cols * WORK_PER_ELEMENT, input_gradient_chunks, &job);
  free(scratch);
  free(totals);
  return 0;
}

/* Group norm: the batch-norm passes above with one row of per-channel vectors per sample (sample_rows =
 * positions); the per-channel sums are combined into each group's statistics between the passes. */

int group_norm_forward(const float *x, const float *gamma, const float *beta, double eps, int relu, size_t samples,
                       size_t positions, size_t cols, size_t groups, float *y, float *mean, float *variance) {
  if (samples == 0 || positions == 0 || groups == 0 || cols % groups != 0) return -2;
  const size_t p = padded(cols), per_group = cols / groups, rows = samples * positions;
  float *scratch = channel_scratch(samples * p, 3);
  double *totals = (double *)calloc(samples * 2 * cols, sizeof(double));
  double *shift = (double *)calloc(samples * p, sizeof(double));
  if (!scratch || !totals || !shift) goto out_of_memory;
  const size_t sp = samples * p;
  float *mean_p = scratch, *scale_p = scratch + sp, *beta_p = scratch + 2 * sp;
  for (size_t n = 0; n < samples; n++) {
    for (size_t c = 0; c < cols; c++) shift[n * p + c] = x[n * positions * cols + c];
  }
  bn_job job = {.x = x, .shift64 = shift, .rows = rows, .cols = cols, .stride = p, .sample_rows = positions,
                .relu = relu};
  if (summed(&job, stats_chunks, totals) != 0) goto out_of_memory;
  const double m = (double)positions;
  for (size_t n = 0; n < samples; n++) {
    const double *s1 = totals + n * 2 * cols, *s2 = s1 + cols;
    for (size_t g = 0; g < groups; g++) {
      const size_t c0 = g * per_group;
      /* Each channel's mean and centred sum of squares, combined over the group's channels (Chan et al.). */
      double group_mean = 0;
      for (size_t c = c0; c < c0 + per_group; c++) group_mean += shift[n * p + c] + s1[c] / m;
      group_mean /= (double)per_group;
      double squares = 0;
      for (size_t c = c0; c < c0 + per_group; c++) {
        const double offset = shift[n * p + c] + s1[c] / m - group_mean;
        const double centred = s2[c] - s1[c] * (s1[c] / m);
        squares += (centred > 0 ? centred : 0) + m * offset * offset;
      }
      const double var = squares / (m * (double)per_group);
      mean[n * groups + g] = (float)group_mean;
      variance[n * groups + g] = (float)var;
      for (size_t c = c0; c < c0 + per_group; c++) {
        mean_p[n * p + c] = mean[n * groups + g];
        scale_p[n * p + c] = channel_scale(gamma[c], variance[n * groups + g], eps);
        beta_p[n * p + c] = beta[c];
      }
    }
  }
  job.mean = mean_p;
  job.scale = scale_p;
  job.beta = beta_p;
  job.out = y;
  parallel_ranges(job_chunks(&job), rows * cols * WORK_PER_ELEMENT, normalise_chunks, &job);
  free(scratch);
  free(totals);
  free(shift);
  return 0;
out_of_memory:
  free(scratch);
  free(totals);
  free(shift);
  return -1;
}

int group_norm_backward(const float *dy, const float *x, const float *gamma, const float *beta, const float *mean,
                        const float *variance, double eps, int relu, size_t samples, size_t positions, size_t cols,
                        size_t groups, float *dx, float *dgamma, float *dbeta) {
  if (samples == 0 || positions == 0 || groups == 0 || cols % groups != 0) return -2;
  const size_t p = padded(cols), sp = samples * p, per_group = cols / groups, rows = samples * positions;
  float *scratch = channel_scratch(sp, 6);
  double *totals = (double *)calloc(samples * 2 * cols + 2 * cols, sizeof(double));
  if (!scratch || !totals) {
    free(scratch);
    free(totals);
    return -1;
  }
  float *mean_p = scratch, *scale_p = scratch + sp, *beta_p = scratch + 2 * sp;
  float *a = scratch + 3 * sp, *b = scratch + 4 * sp, *c_term = scratch + 5 * sp;
  for (size_t n = 0; n < samples; n++) {
    for (size_t c = 0; c < cols; c++) {
      const size_t k = n * groups + c / per_group;
      mean_p[n * p + c] = mean[k];
      scale_p[n * p + c] = channel_scale(gamma[c], variance[k], eps);
      beta_p[n * p + c] = beta[c];
    }
  }
  bn_job job = {.x = x, .dy = dy, .beta = beta_p, .mean = mean_p, .scale = scale_p, .rows = rows, .cols = cols,
                .stride = p, .sample_rows = positions, .relu = relu};
  if (summed(&job, gradient_sums_chunks, totals) != 0) {
    free(scratch);
    free(totals);
    return -1;
  }
  /* totals[n] = (sum dz, sum dz * (x - mean)) per channel (dz: dy through the ReLU's mask); the parameter gradients add them over the samples in
   * sample order. */
  double *dbeta64 = totals + samples * 2 * cols, *dgamma64 = dbeta64 + cols;
  const double count = (double)positions * (double)per_group;
  for (size_t n = 0; n < samples; n++) {
    const double *sum_dy = totals + n * 2 * cols, *sum_dy_t = sum_dy + cols;
    for (size_t g = 0; g < groups; g++) {
      const size_t c0 = g * per_group;
      const double inv = 1.0 / sqrt((double)variance[n * groups + g] + eps);
      /* With dxhat = gamma * dz: the group's sum of dxhat and of dxhat * xhat. */
      double sum_g = 0, sum_gx = 0;
      for (size_t c = c0; c < c0 + per_group; c++) {
        sum_g += (double)gamma[c] * sum_dy[c];
        sum_gx += (double)gamma[c] * sum_dy_t[c];
        dbeta64[c] += sum_dy[c];
        dgamma64[c] += sum_dy_t[c] * inv;
      }
      sum_gx *= inv;
      for (size_t c = c0; c < c0 + per_group; c++) {
        a[n * p + c] = scale_p[n * p + c];
        b[n * p + c] = (float)(inv * inv * sum_gx / count);
        c_term[n * p + c] = (float)(inv * sum_g / count);
      }
    }
  }
  for (size_t c = 0; c < cols; c++) {
    dbeta[c] = (float)dbeta64[c];
    dgamma[c] = (float)dgamma64[c];
  }
  job.a = a;
  job.b = b;
  job.c = c_term;
  job.out = dx;
  parallel_ranges(job_chunks(&job), rows * cols * WORK_PER_ELEMENT, input_gradient_chunks, &job);
  free(scratch);
  free(totals);
  return 0;
}

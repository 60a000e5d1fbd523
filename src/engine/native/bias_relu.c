/* See bias_relu.h. */
#include "bias_relu.h"

#include <immintrin.h>
#include <stdlib.h>

#include "parallel.h"
#include "reduce.h"

#define HOT __attribute__((target("avx2,fma")))

/* Rows per partial bias sum: fixed, so that the result does not depend on the thread count. */
#define CHUNK_ROWS 1024

typedef struct {
  const float *x, *bias, *dy, *y;
  float *out;
  double *partials; /* backward: see partial_sums_new */
  size_t rows, cols;
  int relu; /* forward: 0 for the bias add alone */
} bias_relu_job;

static HOT int forward_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const bias_relu_job *job = (const bias_relu_job *)context;
  const size_t cols = job->cols, vector_end = cols / 8 * 8;
  const __m256 zero = _mm256_setzero_ps();
  for (size_t r = begin * CHUNK_ROWS; r < end * CHUNK_ROWS && r < job->rows; r++) {
    const float *x = job->x + r * cols;
    float *y = job->out + r * cols;
    if (!job->relu) {
      for (size_t c = 0; c < vector_end; c += 8) {
        _mm256_storeu_ps(y + c, _mm256_add_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(job->bias + c)));
      }
      for (size_t c = vector_end; c < cols; c++) y[c] = x[c] + job->bias[c];
      continue;
    }
    for (size_t c = 0; c < vector_end; c += 8) {
      _mm256_storeu_ps(y + c, _mm256_max_ps(_mm256_add_ps(_mm256_loadu_ps(x + c), _mm256_loadu_ps(job->bias + c)), zero));
    }
    for (size_t c = vector_end; c < cols; c++) {
      const float v = x[c] + job->bias[c];
      y[c] = v > 0.0f ? v : 0.0f;
    }
  }
  return 0;
}

static HOT int backward_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const bias_relu_job *job = (const bias_relu_job *)context;
  const size_t cols = job->cols, vector_end = cols / 8 * 8;
  const __m256 zero = _mm256_setzero_ps();
  for (size_t chunk = begin; chunk < end; chunk++) {
    double *sums = partial_sums_chunk(job->partials, chunk, cols);
    for (size_t r = chunk * CHUNK_ROWS; r < (chunk + 1) * CHUNK_ROWS && r < job->rows; r++) {
      const float *dy = job->dy + r * cols, *y = job->y + r * cols;
      float *dx = job->out + r * cols;
      for (size_t c = 0; c < vector_end; c += 8) {
        /* Mask, not multiply: an infinite or NaN dy where y == 0 must give 0, as PyTorch's ReLU backward does. */
        const __m256 active = _mm256_cmp_ps(_mm256_loadu_ps(y + c), zero, _CMP_GT_OQ);
        _mm256_storeu_ps(dx + c, _mm256_and_ps(active, _mm256_loadu_ps(dy + c)));
      }
      for (size_t c = vector_end; c < cols; c++) dx[c] = y[c] > 0.0f ? dy[c] : 0.0f;
      partial_sums_add_row(sums, dx, cols); /* the row just written, still in L1 */
    }
  }
  return 0;
}

static size_t chunk_count(size_t rows) { return rows == 0 ? 1 : (rows + CHUNK_ROWS - 1) / CHUNK_ROWS; }

int bias_relu_forward(const float *x, const float *bias, float *y, size_t rows, size_t cols) {
  bias_relu_job job = {x, bias, NULL, NULL, y, NULL, rows, cols, 1};
  return parallel_ranges(chunk_count(rows), rows * cols, forward_chunks, &job);
}

int bias_add_forward(const float *x, const float *bias, float *y, size_t rows, size_t cols) {
  bias_relu_job job = {x, bias, NULL, NULL, y, NULL, rows, cols, 0};
  return parallel_ranges(chunk_count(rows), rows * cols, forward_chunks, &job);
}

int bias_relu_backward(const float *dy, const float *y, float *dx, float *dbias, size_t rows, size_t cols) {
  const size_t chunks = chunk_count(rows);
  double *partials = partial_sums_new(chunks, cols);
  if (!partials) return -1;
  bias_relu_job job = {NULL, NULL, dy, y, dx, partials, rows, cols, 0};
  parallel_ranges(chunks, rows * cols, backward_chunks, &job);
  partial_sums_finish(partials, chunks, cols, dbias);
  return 0;
}

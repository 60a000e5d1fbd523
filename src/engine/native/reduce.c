/* See reduce.h. */
#include "reduce.h"

#include "parallel.h"

#include <immintrin.h>
#include <stdlib.h>

#define HOT __attribute__((target("avx2,fma")))

typedef struct {
  const float *x;
  size_t cols;
  double *accumulators; /* one row of cols + 4 per worker */
} sum_job;

static HOT int sum_rows(void *context, size_t begin, size_t end, int worker) {
  const sum_job *job = (const sum_job *)context;
  const size_t cols = job->cols, vector_end = cols / 4 * 4;
  double *acc = job->accumulators + (size_t)worker * (cols + 4);
  for (size_t r = begin; r < end; r++) {
    const float *row = job->x + r * cols;
    /* Each 4-column chunk is its own dependency chain, so several adds are in flight at once. */
    for (size_t c = 0; c < vector_end; c += 4) {
      _mm256_storeu_pd(acc + c, _mm256_add_pd(_mm256_loadu_pd(acc + c), _mm256_cvtps_pd(_mm_loadu_ps(row + c))));
    }
    for (size_t c = vector_end; c < cols; c++) acc[c] += row[c];
  }
  return 0;
}

int column_sums(const float *x, size_t rows, size_t cols, float *out) {
  const int workers = parallel_workers(rows, rows * cols);
  double *accumulators = (double *)calloc((size_t)workers * (cols + 4), sizeof(double));
  if (!accumulators) return -1;
  sum_job job = {x, cols, accumulators};
  parallel_ranges(rows, rows * cols, sum_rows, &job);
  /* Workers' partial sums added in worker order: the same result for the same thread count. */
  for (size_t c = 0; c < cols; c++) {
    double total = 0;
    for (int w = 0; w < workers; w++) total += accumulators[(size_t)w * (cols + 4) + c];
    out[c] = (float)total;
  }
  free(accumulators);
  return 0;
}

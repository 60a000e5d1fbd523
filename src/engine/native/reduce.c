/* See reduce.h. */
#include "reduce.h"

#include "parallel.h"

#include <immintrin.h>
#include <stdlib.h>

#define HOT __attribute__((target("avx2,fma")))

/* Rows summed together before partial sums are combined. Fixed, so that the chunks -- and the bits of the result
 * -- do not depend on how many threads share them. */
#define CHUNK_ROWS 4096

typedef struct {
  const float *x;
  size_t rows, cols;
  double *partials; /* one row of cols + 4 per chunk */
} sum_job;

static HOT int sum_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const sum_job *job = (const sum_job *)context;
  const size_t cols = job->cols, vector_end = cols / 4 * 4;
  for (size_t chunk = begin; chunk < end; chunk++) {
    double *acc = job->partials + chunk * (cols + 4);
    const size_t last = (chunk + 1) * CHUNK_ROWS < job->rows ? (chunk + 1) * CHUNK_ROWS : job->rows;
    for (size_t r = chunk * CHUNK_ROWS; r < last; r++) {
      const float *row = job->x + r * cols;
      /* Each 4-column chunk is its own dependency chain, so several adds are in flight at once. */
      for (size_t c = 0; c < vector_end; c += 4) {
        _mm256_storeu_pd(acc + c, _mm256_add_pd(_mm256_loadu_pd(acc + c), _mm256_cvtps_pd(_mm_loadu_ps(row + c))));
      }
      for (size_t c = vector_end; c < cols; c++) acc[c] += row[c];
    }
  }
  return 0;
}

int column_sums(const float *x, size_t rows, size_t cols, float *out) {
  const size_t chunks = rows == 0 ? 1 : (rows + CHUNK_ROWS - 1) / CHUNK_ROWS;
  double *partials = (double *)calloc(chunks * (cols + 4), sizeof(double));
  if (!partials) return -1;
  sum_job job = {x, rows, cols, partials};
  parallel_ranges(chunks, rows * cols, sum_chunks, &job);
  for (size_t c = 0; c < cols; c++) {
    double total = 0;
    for (size_t k = 0; k < chunks; k++) total += partials[k * (cols + 4) + c];
    out[c] = (float)total;
  }
  free(partials);
  return 0;
}

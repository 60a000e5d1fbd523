/* See reduce.h. */
#include "reduce.h"

#include "parallel.h"

#include <immintrin.h>
#include <stdlib.h>

#define HOT __attribute__((target("avx2,fma")))

/* Rows summed together before partial sums are combined. Fixed, so that the chunks -- and the bits of the result
 * -- do not depend on how many threads share them. */
#define CHUNK_ROWS 4096

/* Each chunk's row has 4 spare doubles, so a 4-wide store at the last full group never touches the next chunk. */
static size_t chunk_stride(size_t cols) { return cols + 4; }

double *partial_sums_new(size_t chunks, size_t cols) {
  return (double *)calloc(chunks * chunk_stride(cols), sizeof(double));
}

double *partial_sums_chunk(double *partials, size_t chunk, size_t cols) {
  return partials + chunk * chunk_stride(cols);
}

HOT void partial_sums_add_row(double *chunk_sums, const float *row, size_t cols) {
  const size_t vector_end = cols / 4 * 4;
  /* Each 4-column group is its own dependency chain, so several adds are in flight at once. */
  for (size_t c = 0; c < vector_end; c += 4) {
    _mm256_storeu_pd(chunk_sums + c,
                     _mm256_add_pd(_mm256_loadu_pd(chunk_sums + c), _mm256_cvtps_pd(_mm_loadu_ps(row + c))));
  }
  for (size_t c = vector_end; c < cols; c++) chunk_sums[c] += row[c];
}

void partial_sums_finish(double *partials, size_t chunks, size_t cols, float *out) {
  for (size_t c = 0; c < cols; c++) {
    double total = 0;
    for (size_t k = 0; k < chunks; k++) total += partials[k * chunk_stride(cols) + c];
    out[c] = (float)total;
  }
  free(partials);
}

typedef struct {
  const float *x;
  size_t rows, cols;
  double *partials;
} sum_job;

static int sum_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const sum_job *job = (const sum_job *)context;
  for (size_t chunk = begin; chunk < end; chunk++) {
    double *sums = partial_sums_chunk(job->partials, chunk, job->cols);
    const size_t last = (chunk + 1) * CHUNK_ROWS < job->rows ? (chunk + 1) * CHUNK_ROWS : job->rows;
    for (size_t r = chunk * CHUNK_ROWS; r < last; r++) partial_sums_add_row(sums, job->x + r * job->cols, job->cols);
  }
  return 0;
}

int column_sums(const float *x, size_t rows, size_t cols, float *out) {
  const size_t chunks = rows == 0 ? 1 : (rows + CHUNK_ROWS - 1) / CHUNK_ROWS;
  double *partials = partial_sums_new(chunks, cols);
  if (!partials) return -1;
  sum_job job = {x, rows, cols, partials};
  parallel_ranges(chunks, rows * cols, sum_chunks, &job);
  partial_sums_finish(partials, chunks, cols, out);
  return 0;
}

/* See reduce.h. */
#include "reduce.h"

#include <immintrin.h>
#include <stdlib.h>

#define HOT __attribute__((target("avx2,fma")))

HOT int column_sums(const float *x, size_t rows, size_t cols, float *out) {
  double *acc = (double *)calloc(cols + 4, sizeof(double));
  if (!acc) return -1;
  const size_t vector_end = cols / 4 * 4;
  for (size_t r = 0; r < rows; r++) {
    const float *row = x + r * cols;
    /* Each 4-column chunk is its own dependency chain, so several adds are in flight at once. */
    for (size_t c = 0; c < vector_end; c += 4) {
      _mm256_storeu_pd(acc + c, _mm256_add_pd(_mm256_loadu_pd(acc + c), _mm256_cvtps_pd(_mm_loadu_ps(row + c))));
    }
    for (size_t c = vector_end; c < cols; c++) acc[c] += row[c];
  }
  for (size_t c = 0; c < cols; c++) out[c] = (float)acc[c];
  free(acc);
  return 0;
}

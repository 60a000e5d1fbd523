/* See copy.h. */
#include "copy.h"

#include <string.h>

#include "parallel.h"

/* Rows per unit of work: enough to amortise the per-range bookkeeping. */
#define CHUNK_ROWS 256

typedef struct {
  const float *src;
  float *dst;
  size_t src_cols, src_offset, dst_cols, dst_offset, width, rows;
} copy_job;

static int copy_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const copy_job *job = (const copy_job *)context;
  const size_t last = end * CHUNK_ROWS < job->rows ? end * CHUNK_ROWS : job->rows;
  const float *src = job->src + job->src_offset;
  float *dst = job->dst + job->dst_offset;
  if (job->width == job->src_cols && job->width == job->dst_cols) {
    memcpy(dst + begin * CHUNK_ROWS * job->width, src + begin * CHUNK_ROWS * job->width,
           (last - begin * CHUNK_ROWS) * job->width * sizeof(float));
    return 0;
  }
  for (size_t r = begin * CHUNK_ROWS; r < last; r++) {
    memcpy(dst + r * job->dst_cols, src + r * job->src_cols, job->width * sizeof(float));
  }
  return 0;
}

void copy_columns(const float *src, size_t src_cols, size_t src_offset, float *dst, size_t dst_cols,
                  size_t dst_offset, size_t width, size_t rows) {
  if (rows == 0 || width == 0) return;
  copy_job job = {src, dst, src_cols, src_offset, dst_cols, dst_offset, width, rows};
  /* A copied float costs about as much as a few multiply-adds (parallel.h's unit). */
  parallel_ranges((rows + CHUNK_ROWS - 1) / CHUNK_ROWS, rows * width * 4, copy_chunks, &job);
}

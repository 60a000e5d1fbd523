/*
 * See conv.h. Layout facts the code relies on:
 *  - the patch of an output position is (kd, kh, kw, ci) in that order, which is also the row order of a DHWIO
 *    filter, so the filter is a [patch x out_c] row-major matrix and y = patches @ filter;
 *  - output positions (n, od, oh, ow) enumerate dy / y rows in memory order (NDHWC).
 * Hot functions are compiled for AVX2 + FMA through target attributes, so the library loads on any x86-64 and
 * conv_cpu_supported() decides whether they may run.
 */
#include "conv.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define HOT __attribute__((target("avx2,fma")))
#define MR 6  /* rows of a register tile */
#define NR 16 /* columns of a register tile: two 8-float vectors */

/* Scratch blocks sized to stay in the 256 KB - 1 MB L2 of current x86 cores while the tiles stream over them. */
#define FORWARD_BLOCK_FLOATS (32 * 1024)
#define FILTER_BLOCK_FLOATS (64 * 1024)
#define INPUT_BLOCK_FLOATS (32 * 1024)

int conv_cpu_supported(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static size_t patch_length(const conv_geometry *g) { return (size_t)g->k_d * g->k_h * g->k_w * g->in_c; }
static size_t positions(const conv_geometry *g) { return (size_t)g->batch * g->out_d * g->out_h * g->out_w; }
size_t conv_input_size(const conv_geometry *g) {
  return (size_t)g->batch * g->in_d * g->in_h * g->in_w * g->in_c;
}
size_t conv_output_size(const conv_geometry *g) { return positions(g) * g->out_c; }
size_t conv_filter_size(const conv_geometry *g) { return patch_length(g) * g->out_c; }

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }
static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

static float *scratch(size_t floats) {
  /* aligned_alloc wants a size that is a multiple of the alignment; one spare vector keeps tail loads in bounds. */
  return (float *)aligned_alloc(64, round_up((floats + 16) * sizeof(float), 64));
}

/*
 * c[6 x 16] (row stride ldc) = (or +=, when add) sum over k < K of a(i, k) * b(k, 0..15), where
 * a(i, k) = a[i * a_row + k * a_k] and row k of b starts at b + k * ldb.
 * The two strides let one tile serve patches @ filter (a_row = patch length, a_k = 1) and
 * patches^T @ dy (a_row = 1, a_k = patch row stride).
 */
static inline HOT void tile_6x16(size_t K, const float *a, size_t a_row, size_t a_k, const float *b, size_t ldb,
                                 float *c, size_t ldc, int add) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps();
  __m256 c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps();
  __m256 c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  const size_t r1 = a_row, r2 = 2 * a_row, r3 = 3 * a_row, r4 = 4 * a_row, r5 = 5 * a_row;
  for (size_t k = 0; k < K; k++) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
    __m256 v = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(v, b0, c00);
    c01 = _mm256_fmadd_ps(v, b1, c01);
    v = _mm256_broadcast_ss(a + r1);
    c10 = _mm256_fmadd_ps(v, b0, c10);
    c11 = _mm256_fmadd_ps(v, b1, c11);
    v = _mm256_broadcast_ss(a + r2);
    c20 = _mm256_fmadd_ps(v, b0, c20);
    c21 = _mm256_fmadd_ps(v, b1, c21);
    v = _mm256_broadcast_ss(a + r3);
    c30 = _mm256_fmadd_ps(v, b0, c30);
    c31 = _mm256_fmadd_ps(v, b1, c31);
    v = _mm256_broadcast_ss(a + r4);
    c40 = _mm256_fmadd_ps(v, b0, c40);
    c41 = _mm256_fmadd_ps(v, b1, c41);
    v = _mm256_broadcast_ss(a + r5);
    c50 = _mm256_fmadd_ps(v, b0, c50);
    c51 = _mm256_fmadd_ps(v, b1, c51);
    a += a_k;
    b += ldb;
  }
#define STORE_ROW(i, lo, hi)                                                                 \
  do {                                                                                       \
    float *row = c + (i) * ldc;                                                              \
    if (add) {                                                                               \
      _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), lo));                        \
      _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), hi));                \
    } else {                                                                                 \
      _mm256_storeu_ps(row, lo);                                                             \
      _mm256_storeu_ps(row + 8, hi);                                                         \
    }                                                                                        \
  } while (0)
  STORE_ROW(0, c00, c01);
  STORE_ROW(1, c10, c11);
  STORE_ROW(2, c20, c21);
  STORE_ROW(3, c30, c31);
  STORE_ROW(4, c40, c41);
  STORE_ROW(5, c50, c51);
#undef STORE_ROW
}

/* A tile whose destination may be smaller than 6 x 16: computed whole into a local tile, then the valid part
 * stored (or added). */
static HOT void tile_partial(size_t K, const float *a, size_t a_row, size_t a_k, const float *b, size_t ldb, float *c,
                             size_t ldc, size_t rows, size_t cols, int add) {
  if (rows == MR && cols == NR) {
    tile_6x16(K, a, a_row, a_k, b, ldb, c, ldc, add);
    return;
  }
  float t[MR * NR];
  tile_6x16(K, a, a_row, a_k, b, ldb, t, NR, 0);
  for (size_t i = 0; i < rows; i++) {
    for (size_t j = 0; j < cols; j++) c[i * ldc + j] = add ? c[i * ldc + j] + t[i * NR + j] : t[i * NR + j];
  }
}

/* Where the next output position is; advanced one position at a time (no divisions in the loops). */
typedef struct {
  size_t n;
  int od, oh, ow;
} position_cursor;

static void cursor_next(const conv_geometry *g, position_cursor *p) {
  if (++p->ow < g->out_w) return;
  p->ow = 0;
  if (++p->oh < g->out_h) return;
  p->oh = 0;
  if (++p->od < g->out_d) return;
  p->od = 0;
  p->n++;
}

/*
 * The patches of `count` consecutive output positions, one row of `row_stride` floats each (patch length floats
 * used): gathered from the input into `rows` (im2col; taps in the padding are zeros, columns past the patch are
 * zeroed), or, when `scatter`, added from `rows` into the input gradient (col2im; taps in the padding dropped).
 */
static inline HOT void patch_rows(const conv_geometry *g, float *image, position_cursor *cursor, size_t count,
                                  float *rows, size_t row_stride, int scatter) {
  const size_t C = (size_t)g->in_c, R = patch_length(g);
  const size_t kw_floats = (size_t)g->k_w * C, kh_floats = (size_t)g->k_h * kw_floats;
  for (size_t i = 0; i < count; i++, cursor_next(g, cursor)) {
    float *dst = rows + i * row_stride;
    const size_t n = cursor->n;
    for (int kd = 0; kd < g->k_d; kd++) {
      const int id = cursor->od * g->stride_d - g->pad_front + kd * g->dil_d;
      if (id < 0 || id >= g->in_d) {
        if (!scatter) memset(dst, 0, kh_floats * sizeof(float));
        dst += kh_floats;
        continue;
      }
      for (int kh = 0; kh < g->k_h; kh++, dst += kw_floats) {
        const int ih = cursor->oh * g->stride_h - g->pad_top + kh * g->dil_h;
        if (ih < 0 || ih >= g->in_h) {
          if (!scatter) memset(dst, 0, kw_floats * sizeof(float));
          continue;
        }
        const int iw0 = cursor->ow * g->stride_w - g->pad_left;
        float *line = image + (((n * g->in_d + id) * g->in_h + ih) * (size_t)g->in_w) * C;
        if (g->dil_w == 1 && iw0 >= 0 && iw0 + g->k_w <= g->in_w) {
          /* The whole filter row is inside the image: one contiguous run of k_w * C floats. */
          float *src = line + (size_t)iw0 * C;
          if (scatter) {
            for (size_t t = 0; t < kw_floats; t++) src[t] += dst[t];
          } else {
            for (size_t t = 0; t < kw_floats; t++) dst[t] = src[t];
          }
          continue;
        }
        for (int kw = 0; kw < g->k_w; kw++) {
          const int iw = iw0 + kw * g->dil_w;
          float *tap = dst + (size_t)kw * C;
          if (iw < 0 || iw >= g->in_w) {
            if (!scatter) memset(tap, 0, C * sizeof(float));
            continue;
          }
          float *src = line + (size_t)iw * C;
          if (scatter) {
            for (size_t t = 0; t < C; t++) src[t] += tap[t];
          } else {
            for (size_t t = 0; t < C; t++) tap[t] = src[t];
          }
        }
      }
    }
    if (!scatter && row_stride > R) memset(rows + i * row_stride + R, 0, (row_stride - R) * sizeof(float));
  }
}

static size_t block_rows(size_t budget_floats, size_t row_floats, size_t multiple) {
  size_t rows = budget_floats / row_floats / multiple * multiple;
  return rows < multiple ? multiple : rows;
}

HOT int conv_forward(const conv_geometry *g, const float *x, const float *w, float *y) {
  const size_t R = patch_length(g), CO = (size_t)g->out_c, P = positions(g);
  const size_t panels = (CO + NR - 1) / NR;
  const size_t block = block_rows(FORWARD_BLOCK_FLOATS, R, MR);
  float *packed = scratch(panels * R * NR);
  float *patches = scratch(block * R);
  if (!packed || !patches) {
    free(packed);
    free(patches);
    return -1;
  }
  /* Filter columns in panels of 16, zero-padded: panel j holds rows r -> w[r, 16j .. 16j+15]. */
  for (size_t j = 0; j < panels; j++) {
    for (size_t r = 0; r < R; r++) {
      for (size_t t = 0; t < NR; t++) {
        const size_t co = j * NR + t;
        packed[(j * R + r) * NR + t] = co < CO ? w[r * CO + co] : 0.0f;
      }
    }
  }
  position_cursor cursor = {0, 0, 0, 0};
  for (size_t p0 = 0; p0 < P; p0 += block) {
    const size_t m = min_size(block, P - p0);
    patch_rows(g, (float *)x, &cursor, m, patches, R, 0);
    /* Rows past the last position of a partial block feed only discarded tile rows; keep them finite. */
    const size_t padded = min_size(round_up(m, MR), block);
    if (padded > m) memset(patches + m * R, 0, (padded - m) * R * sizeof(float));
    for (size_t j = 0; j < panels; j++) {
      const size_t cols = min_size(NR, CO - j * NR);
      for (size_t i0 = 0; i0 < m; i0 += MR) {
        tile_partial(R, patches + i0 * R, R, 1, packed + j * R * NR, NR, y + (p0 + i0) * CO + j * NR, CO,
                     min_size(MR, m - i0), cols, 0);
      }
    }
  }
  free(packed);
  free(patches);
  return 0;
}

HOT int conv_backprop_filter(const conv_geometry *g, const float *x, const float *dy, float *dw) {
  const size_t R = patch_length(g), CO = (size_t)g->out_c, P = positions(g);
  const size_t RS = round_up(R, MR), COP = round_up(CO, NR);
  const size_t block = block_rows(FILTER_BLOCK_FLOATS, RS, 1);
  float *patches = scratch(block * RS);
  float *acc = scratch(RS * COP);
  /* dy is read in place when its rows are whole panels; otherwise each block is copied with zero-padded rows. */
  float *padded_dy = CO == COP ? NULL : scratch(block * COP);
  if (!patches || !acc || (CO != COP && !padded_dy)) {
    free(patches);
    free(acc);
    free(padded_dy);
    return -1;
  }
  memset(acc, 0, RS * COP * sizeof(float));
  position_cursor cursor = {0, 0, 0, 0};
  for (size_t p0 = 0; p0 < P; p0 += block) {
    const size_t m = min_size(block, P - p0);
    patch_rows(g, (float *)x, &cursor, m, patches, RS, 0);
    const float *b = dy + p0 * CO;
    size_t ldb = CO;
    if (padded_dy) {
      for (size_t i = 0; i < m; i++) {
        memcpy(padded_dy + i * COP, dy + (p0 + i) * CO, CO * sizeof(float));
        memset(padded_dy + i * COP + CO, 0, (COP - CO) * sizeof(float));
      }
      b = padded_dy;
      ldb = COP;
    }
    for (size_t r0 = 0; r0 < RS; r0 += MR) {
      for (size_t j = 0; j < COP; j += NR) tile_6x16(m, patches + r0, 1, RS, b + j, ldb, acc + r0 * COP + j, COP, 1);
    }
  }
  for (size_t r = 0; r < R; r++) memcpy(dw + r * CO, acc + r * COP, CO * sizeof(float));
  free(patches);
  free(acc);
  free(padded_dy);
  return 0;
}

HOT int conv_backprop_input(const conv_geometry *g, const float *dy, const float *w, float *dx) {
  const size_t R = patch_length(g), CO = (size_t)g->out_c, P = positions(g);
  const size_t panels = (R + NR - 1) / NR, RP = panels * NR;
  const size_t block = block_rows(INPUT_BLOCK_FLOATS, RP, MR);
  float *packed = scratch(panels * CO * NR);
  float *dpatches = scratch(block * RP);
  float *tail = scratch(MR * CO);
  if (!packed || !dpatches || !tail) {
    free(packed);
    free(dpatches);
    free(tail);
    return -1;
  }
  /* The filter transposed, in panels of 16 patch entries: panel j holds rows co -> w[16j .. 16j+15, co]. */
  for (size_t j = 0; j < panels; j++) {
    for (size_t co = 0; co < CO; co++) {
      for (size_t t = 0; t < NR; t++) {
        const size_t r = j * NR + t;
        packed[(j * CO + co) * NR + t] = r < R ? w[r * CO + co] : 0.0f;
      }
    }
  }
  memset(dx, 0, conv_input_size(g) * sizeof(float));
  position_cursor cursor = {0, 0, 0, 0};
  for (size_t p0 = 0; p0 < P; p0 += block) {
    const size_t m = min_size(block, P - p0);
    for (size_t i0 = 0; i0 < m; i0 += MR) {
      const size_t rows = min_size(MR, m - i0);
      const float *a = dy + (p0 + i0) * CO;
      if (rows < MR) {
        /* Never read past the end of dy: the last rows go through a zero-padded copy. */
        memset(tail, 0, MR * CO * sizeof(float));
        memcpy(tail, a, rows * CO * sizeof(float));
        a = tail;
      }
      for (size_t j = 0; j < panels; j++) {
        tile_6x16(CO, a, CO, 1, packed + j * CO * NR, NR, dpatches + i0 * RP + j * NR, RP, 0);
      }
    }
    patch_rows(g, dx, &cursor, m, dpatches, RP, 1);
  }
  free(packed);
  free(dpatches);
  free(tail);
  return 0;
}

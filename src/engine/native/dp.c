/* See dp.h. */
#include "dp.h"

#include <immintrin.h>
#include <stdlib.h>

#include "parallel.h"
#include "reduce.h"

#define HOT __attribute__((target("avx2,fma")))

typedef struct {
  const conv_geometry *g;
  const float *x, *dy;
  float *filter_grads, *bias_grads, *norm_sq;
  int avx512; /* the AVX-512 filter gradient below applies */
} per_sample_job;

/* Sum of squares of n floats, float64 accumulators. */
static HOT double squared_norm(const float *v, size_t n) {
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(v + i)), hi = _mm256_cvtps_pd(_mm_loadu_ps(v + i + 4));
    a0 = _mm256_fmadd_pd(lo, lo, a0);
    a1 = _mm256_fmadd_pd(hi, hi, a1);
  }
  double lanes[4];
  _mm256_storeu_pd(lanes, _mm256_add_pd(a0, a1));
  double total = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < n; i++) total += (double)v[i] * v[i];
  return total;
}

/*
 * AVX-512 per-sample filter gradient for the layout the DP engine always passes (a valid conv of an already padded
 * input: no padding, no dilation, every window inside the image). dw[r, co] = sum over positions p of
 * X[p, r] * dy[p, co], where patch entry r = (kd, kh, kw, ci) sits at a fixed offset from the window's first element.
 * A register tile of MR patch entries x Z vectors of 16 output channels stays in registers over all the sample's
 * positions and is stored once: no accumulator traffic, and twice the AVX2 kernels' lanes. Columns past out_c are
 * masked. The same products as conv_backprop_filter, summed in position order per tile.
 */
#define AVX512 __attribute__((target("avx512f,avx2,fma")))

static int avx512_supported(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f");
}

/* No padding, no dilation, every window inside: the patches can be read in place. */
static int plain_valid(const conv_geometry *g) {
  return g->pad_front == 0 && g->pad_top == 0 && g->pad_left == 0 && g->dil_d == 1 && g->dil_h == 1 && g->dil_w == 1 &&
         (size_t)(g->out_d - 1) * g->stride_d + (size_t)g->k_d <= (size_t)g->in_d &&
         (size_t)(g->out_h - 1) * g->stride_h + (size_t)g->k_h <= (size_t)g->in_h &&
         (size_t)(g->out_w - 1) * g->stride_w + (size_t)g->k_w <= (size_t)g->in_w;
}

typedef struct {
  const conv_geometry *g;
  const float *x, *dy; /* one sample's */
  size_t R, CO, run;   /* patch length, out channels, floats per filter row (k_w * in_c) */
  const size_t *row_offsets;
} sample_filter;

/* Offset of patch entry r from the window's first element (entries past R read entry 0; their rows are dropped). */
static size_t entry_offset(const sample_filter *s, size_t r) {
  return r < s->R ? s->row_offsets[r / s->run] + r % s->run : 0;
}

/* First element of the window of output position (od, oh, ow = 0) of one sample. */
static const float *window_row(const conv_geometry *g, const float *x, int od, int oh) {
  return x + (((size_t)od * g->stride_d * g->in_h + (size_t)oh * g->stride_h) * g->in_w) * (size_t)g->in_c;
}

/* Accumulators of tile row i, vector z: named variables (an array of vectors would live in memory); rows and
 * vectors past the tile's size are removed at compile time. */
#define ROW_DECLARE(i) __m512 a##i##0 = zero, a##i##1 = zero, a##i##2 = zero, a##i##3 = zero;
#define ROW_FMA(i)                                                  \
  if (i < TMR) {                                                    \
    const __m512 b = _mm512_set1_ps(xp[e##i]);                      \
    a##i##0 = _mm512_fmadd_ps(b, v0, a##i##0);                      \
    if (TZ > 1) a##i##1 = _mm512_fmadd_ps(b, v1, a##i##1);           \
    if (TZ > 2) a##i##2 = _mm512_fmadd_ps(b, v2, a##i##2);           \
    if (TZ > 3) a##i##3 = _mm512_fmadd_ps(b, v3, a##i##3);           \
  }
#define ROW_STORE(i)                                                \
  if (i < TMR && r0 + i < s->R) {                                   \
    float *out = dw + (r0 + i) * s->CO + col;                       \
    store_vector(out, a##i##0, TZ == 1 ? last : 0xFFFF);             \
    if (TZ > 1) store_vector(out + 16, a##i##1, TZ == 2 ? last : 0xFFFF); \
    if (TZ > 2) store_vector(out + 32, a##i##2, TZ == 3 ? last : 0xFFFF); \
    if (TZ > 3) store_vector(out + 48, a##i##3, last);               \
  }

static inline AVX512 __m512 load_vector(const float *p, __mmask16 mask) {
  return mask == 0xFFFF ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask, p);
}

static inline AVX512 void store_vector(float *p, __m512 v, __mmask16 mask) {
  if (mask == 0xFFFF) {
    _mm512_storeu_ps(p, v);
  } else {
    _mm512_mask_storeu_ps(p, mask, v);
  }
}

/* Adds the 16 floats of v to acc[0..15] in float64 (a row's float partial sums into the bias accumulators). */
static inline AVX512 void add_to_doubles(double *acc, __m512 v) {
  const __m256 lo = _mm512_castps512_ps256(v);
  const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
  _mm512_storeu_pd(acc, _mm512_add_pd(_mm512_loadu_pd(acc), _mm512_cvtps_pd(lo)));
  _mm512_storeu_pd(acc + 8, _mm512_add_pd(_mm512_loadu_pd(acc + 8), _mm512_cvtps_pd(hi)));
}

/*
 * tile_<Z>: MRZ patch entries from r0 x Z vectors of channels from col. tile_<Z>_bias (the panel's first tile)
 * also sums dy over the positions, the sample's bias gradient: float sums along each output row (dy is in
 * registers already), added to float64 accumulators row by row, as precise as the separate pass it replaces.
 * Returns the patch entries it covered.
 */
#define DEFINE_TILE(NAME, Z, MRZ, B)                                                                         \
  static AVX512 size_t NAME(const sample_filter *s, size_t r0, size_t col, __mmask16 last, float *dw,       \
                            float *db) {                                                                     \
    enum { TZ = Z, TMR = MRZ, TB = B };                                                                      \
    const conv_geometry *g = s->g;                                                                           \
    const size_t e0 = entry_offset(s, r0), e1 = entry_offset(s, r0 + 1), e2 = entry_offset(s, r0 + 2);      \
    const size_t e3 = entry_offset(s, r0 + 3), e4 = entry_offset(s, r0 + 4), e5 = entry_offset(s, r0 + 5);  \
    const size_t e6 = entry_offset(s, r0 + 6), e7 = entry_offset(s, r0 + 7), e8 = entry_offset(s, r0 + 8);  \
    const size_t e9 = entry_offset(s, r0 + 9), e10 = entry_offset(s, r0 + 10), e11 = entry_offset(s, r0 + 11); \
    const __m512 zero = _mm512_setzero_ps();                                                                 \
    ROW_DECLARE(0) ROW_DECLARE(1) ROW_DECLARE(2) ROW_DECLARE(3)                                              \
    ROW_DECLARE(4) ROW_DECLARE(5) ROW_DECLARE(6) ROW_DECLARE(7)                                              \
    ROW_DECLARE(8) ROW_DECLARE(9) ROW_DECLARE(10) ROW_DECLARE(11)                                            \
    double bias[64] = {0};                                                                                   \
    const size_t OW = (size_t)g->out_w, a_k = (size_t)g->stride_w * g->in_c, CO = s->CO;                     \
    const float *d = s->dy + col;                                                                            \
    for (int od = 0; od < g->out_d; od++) {                                                                  \
      for (int oh = 0; oh < g->out_h; oh++) {                                                                \
        const float *xp = window_row(g, s->x, od, oh);                                                       \
        __m512 b0 = zero, b1 = zero, b2 = zero, b3 = zero;                                                   \
        for (size_t ow = 0; ow < OW; ow++, xp += a_k, d += CO) {                                             \
          const __m512 v0 = load_vector(d, Z == 1 ? last : 0xFFFF);                                          \
          const __m512 v1 = Z > 1 ? load_vector(d + 16, Z == 2 ? last : 0xFFFF) : zero;                      \
          const __m512 v2 = Z > 2 ? load_vector(d + 32, Z == 3 ? last : 0xFFFF) : zero;                      \
          const __m512 v3 = Z > 3 ? load_vector(d + 48, last) : zero;                                        \
          ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5) ROW_FMA(6) ROW_FMA(7)             \
          ROW_FMA(8) ROW_FMA(9) ROW_FMA(10) ROW_FMA(11)                                                      \
          if (TB) {                                                                                          \
            b0 = _mm512_add_ps(b0, v0);                                                                      \
            if (TZ > 1) b1 = _mm512_add_ps(b1, v1);                                                          \
            if (TZ > 2) b2 = _mm512_add_ps(b2, v2);                                                          \
            if (TZ > 3) b3 = _mm512_add_ps(b3, v3);                                                          \
          }                                                                                                  \
        }                                                                                                    \
        if (TB) {                                                                                            \
          add_to_doubles(bias, b0);                                                                          \
          if (TZ > 1) add_to_doubles(bias + 16, b1);                                                         \
          if (TZ > 2) add_to_doubles(bias + 32, b2);                                                         \
          if (TZ > 3) add_to_doubles(bias + 48, b3);                                                         \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
    ROW_STORE(0) ROW_STORE(1) ROW_STORE(2) ROW_STORE(3) ROW_STORE(4) ROW_STORE(5) ROW_STORE(6) ROW_STORE(7)  \
    ROW_STORE(8) ROW_STORE(9) ROW_STORE(10) ROW_STORE(11)                                                    \
    if (TB) {                                                                                                \
      for (size_t j = 0; j < 64 && col + j < CO; j++) db[col + j] = (float)bias[j];                          \
    }                                                                                                        \
    return TMR;                                                                                              \
  }

/* Rows per tile: at least 8 independent FMA chains (4-cycle latency, 2 per cycle) and at most 24 accumulators (of
 * 32 vector registers: the rest hold dy, a broadcast and, in the first tile, Z bias sums). */
DEFINE_TILE(tile_1, 1, 12, 0)
DEFINE_TILE(tile_2, 2, 12, 0)
DEFINE_TILE(tile_3, 3, 8, 0)
DEFINE_TILE(tile_4, 4, 6, 0)
DEFINE_TILE(tile_1_bias, 1, 12, 1)
DEFINE_TILE(tile_2_bias, 2, 12, 1)
DEFINE_TILE(tile_3_bias, 3, 8, 1)
DEFINE_TILE(tile_4_bias, 4, 5, 1)

/* One tile of z vectors at r0: the bias-summing variant when db is given. */
static size_t tile(int z, const sample_filter *s, size_t r0, size_t col, __mmask16 last, float *dw, float *db) {
  switch (z) {
    case 1: return db ? tile_1_bias(s, r0, col, last, dw, db) : tile_1(s, r0, col, last, dw, db);
    case 2: return db ? tile_2_bias(s, r0, col, last, dw, db) : tile_2(s, r0, col, last, dw, db);
    case 3: return db ? tile_3_bias(s, r0, col, last, dw, db) : tile_3(s, r0, col, last, dw, db);
    default: return db ? tile_4_bias(s, r0, col, last, dw, db) : tile_4(s, r0, col, last, dw, db);
  }
}

/* One sample's filter gradient [R x CO] into dw and, when db is given, its bias gradient [CO]; returns -1 when the
 * row offsets cannot be allocated. */
static int filter_avx512(const conv_geometry *g, const float *x, const float *dy, float *dw, float *db) {
  const size_t segments = (size_t)g->k_d * g->k_h;
  size_t *offsets = (size_t *)malloc(segments * sizeof(size_t));
  if (!offsets) return -1;
  for (int kd = 0; kd < g->k_d; kd++) {
    for (int kh = 0; kh < g->k_h; kh++) {
      offsets[kd * g->k_h + kh] = (((size_t)kd * g->in_h + (size_t)kh) * g->in_w) * (size_t)g->in_c;
    }
  }
  const sample_filter s = {g, x, dy, (size_t)g->k_d * g->k_h * g->k_w * g->in_c, (size_t)g->out_c,
                           (size_t)g->k_w * g->in_c, offsets};
  /* Panels of up to 64 channels (4 vectors); the last panel's last vector is masked past out_c. */
  for (size_t col = 0; col < s.CO; col += 64) {
    const size_t width = s.CO - col < 64 ? s.CO - col : 64;
    const int z = (int)((width + 15) / 16);
    const __mmask16 last = (__mmask16)(width % 16 == 0 ? 0xFFFF : (1u << (width % 16)) - 1);
    size_t r0 = tile(z, &s, 0, col, last, dw, db);
    while (r0 < s.R) r0 += tile(z, &s, r0, col, last, dw, NULL);
  }
  free(offsets);
  return 0;
}

/* Samples [begin, end): each one's filter gradient (the AVX-512 tiles, else the batch kernel on that sample alone,
 * run on this thread: a batch of 1 is never split) and bias gradient, read back for the norm while in cache. */
static int per_sample_range(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const per_sample_job *job = (const per_sample_job *)context;
  conv_geometry one = *job->g;
  one.batch = 1;
  const size_t x_size = conv_input_size(&one), dy_size = conv_output_size(&one), k = conv_filter_size(&one);
  const size_t cols = (size_t)one.out_c, rows = dy_size / cols;
  for (size_t n = begin; n < end; n++) {
    float *dw = job->filter_grads + n * k;
    float *db = job->bias_grads ? job->bias_grads + n * cols : NULL;
    const float *dy = job->dy + n * dy_size;
    const float *x = job->x + n * x_size;
    if (job->avx512) {
      /* The bias gradient comes out of the same pass. */
      if (filter_avx512(&one, x, dy, dw, db) != 0) return -1;
    } else {
      if (conv_backprop_filter(&one, x, dy, dw) != 0) return -1;
      if (db) {
        double *sums = partial_sums_new(1, cols);
        if (!sums) return -1;
        for (size_t r = 0; r < rows; r++) partial_sums_add_row(sums, dy + r * cols, cols);
        partial_sums_finish(sums, 1, cols, db);
      }
    }
    const double norm = squared_norm(dw, k) + (db ? squared_norm(db, cols) : 0.0);
    job->norm_sq[n] = (float)norm;
  }
  return 0;
}

int dp_conv_per_sample(const conv_geometry *g, const float *x, const float *dy, float *filter_grads,
                       float *bias_grads, float *norm_sq) {
  per_sample_job job = {g, x, dy, filter_grads, bias_grads, norm_sq, avx512_supported() && plain_valid(g)};
  const size_t work = conv_output_size(g) * ((size_t)g->k_d * g->k_h * g->k_w * g->in_c);
  return parallel_ranges((size_t)g->batch, work, per_sample_range, &job);
}

/* Columns per unit of work: fixed, so that each output element is summed by one worker in row order whatever the
 * thread count (the same bits on any split). */
#define COLUMN_CHUNK 2048

typedef struct {
  const float *m, *factors;
  size_t rows, cols;
  float *out;
} weighted_job;

static HOT int weighted_chunks(void *context, size_t begin, size_t end, int worker) {
  (void)worker;
  const weighted_job *job = (const weighted_job *)context;
  for (size_t chunk = begin; chunk < end; chunk++) {
    const size_t first = chunk * COLUMN_CHUNK;
    const size_t last = first + COLUMN_CHUNK < job->cols ? first + COLUMN_CHUNK : job->cols;
    size_t c = first;
    /* 16 columns at a time: four independent FMA chains over the rows. */
    for (; c + 16 <= last; c += 16) {
      __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd(), a2 = _mm256_setzero_pd(), a3 = _mm256_setzero_pd();
      for (size_t r = 0; r < job->rows; r++) {
        const float *row = job->m + r * job->cols + c;
        const __m256d f = _mm256_set1_pd((double)job->factors[r]);
        a0 = _mm256_fmadd_pd(f, _mm256_cvtps_pd(_mm_loadu_ps(row)), a0);
        a1 = _mm256_fmadd_pd(f, _mm256_cvtps_pd(_mm_loadu_ps(row + 4)), a1);
        a2 = _mm256_fmadd_pd(f, _mm256_cvtps_pd(_mm_loadu_ps(row + 8)), a2);
        a3 = _mm256_fmadd_pd(f, _mm256_cvtps_pd(_mm_loadu_ps(row + 12)), a3);
      }
      _mm_storeu_ps(job->out + c, _mm256_cvtpd_ps(a0));
      _mm_storeu_ps(job->out + c + 4, _mm256_cvtpd_ps(a1));
      _mm_storeu_ps(job->out + c + 8, _mm256_cvtpd_ps(a2));
      _mm_storeu_ps(job->out + c + 12, _mm256_cvtpd_ps(a3));
    }
    for (; c < last; c++) {
      double acc = 0;
      /* fma, as the vector lanes do: the same bits for a column whichever loop sums it. */
      for (size_t r = 0; r < job->rows; r++) acc = __builtin_fma((double)job->factors[r], job->m[r * job->cols + c], acc);
      job->out[c] = (float)acc;
    }
  }
  return 0;
}

void dp_weighted_row_sum(const float *m, const float *factors, size_t rows, size_t cols, float *out) {
  weighted_job job = {m, factors, rows, cols, out};
  const size_t chunks = cols == 0 ? 0 : (cols + COLUMN_CHUNK - 1) / COLUMN_CHUNK;
  if (chunks > 0) parallel_ranges(chunks, rows * cols, weighted_chunks, &job);
}

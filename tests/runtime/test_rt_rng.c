/*
** test_rt_rng.c: Philox4x32-10 against Random123's known-answer vectors,
** the uniform and normal streams (moments, range, element formula),
** independence from the thread count, the parallel-for split and the
** arena's alignment.
*/
#include "rt_test.h"

#include <math.h>

/* Random123 kat_vectors, philox4x32 10: ctr[4] key[2] -> out[4]. */
static const uint32_t kat[3][10] = {
    {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
    {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
     0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
    {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
     0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};

static void test_philox_kat(void **state) {
  for (int k = 0; k < 3; k++) {
    const uint32_t *v = kat[k];
    uint64_t lo = (uint64_t)v[1] << 32 | v[0], hi = (uint64_t)v[3] << 32 | v[2];
    uint64_t key = (uint64_t)v[5] << 32 | v[4];
    uint32_t out[4];
    nnrt_philox(key, hi, lo, out);
    for (int i = 0; i < 4; i++) assert_int_equal(out[i], v[6 + i]);
  }
}

/* Element i is word i%4 of block i/4, top 24 bits. */
static void test_uniform_formula(void **state) {
  uint64_t key = nnrt_rng_key(42, 7);
  assert_true(key == (42ull ^ (7ull << 32)));
  for (uint64_t i = 0; i < 64; i++) {
    uint32_t r[4];
    nnrt_philox(key, 3, i / 4, r);
    float u = nnrt_uniform(key, 3, i);
    assert_true(u == (float)(r[i % 4] >> 8) / 16777216.0f);
    assert_true(u >= 0 && u < 1);
  }
}

static void test_uniform_moments(void **state) {
  int64_t n = 1 << 20;
  float *x = malloc((size_t)n * sizeof *x);
  nnrt_fill_uniform(x, n, nnrt_rng_key(1, 2), 0, 0, 1);
  double s = 0, s2 = 0;
  float lo = 1, hi = 0;
  for (int64_t i = 0; i < n; i++) {
    s += x[i];
    s2 += (double)x[i] * x[i];
    lo = fminf(lo, x[i]);
    hi = fmaxf(hi, x[i]);
  }
  double mean = s / (double)n, var = s2 / (double)n - mean * mean;
  assert_true(fabs(mean - 0.5) < 0.003);
  assert_true(fabs(var - 1.0 / 12) < 0.001);
  assert_true(lo >= 0 && lo < 1e-4 && hi < 1 && hi > 1 - 1e-4);
  /* [low, high) scaling stays below high even when rounding would hit it. */
  nnrt_fill_uniform(x, 4096, nnrt_rng_key(1, 2), 0, -3, 5);
  for (int i = 0; i < 4096; i++) assert_true(x[i] >= -3 && x[i] < 5);
  free(x);
}

static void test_normal_moments(void **state) {
  int64_t n = 1 << 20;
  float *x = malloc((size_t)n * sizeof *x);
  nnrt_fill_normal(x, n, nnrt_rng_key(9, 0), 0, 1.5, 2.0);
  double s = 0, s2 = 0, s4 = 0;
  for (int64_t i = 0; i < n; i++) {
    double z = (x[i] - 1.5) / 2.0;
    s += z;
    s2 += z * z;
    s4 += z * z * z * z;
  }
  double m = s / (double)n, v = s2 / (double)n;
  assert_true(fabs(m) < 0.005);
  assert_true(fabs(v - 1) < 0.01);
  assert_true(fabs(s4 / (double)n - 3) < 0.05); /* Gaussian kurtosis */
  /* Element formula: Box-Muller of the pair's two words. */
  uint32_t r[4];
  nnrt_philox(nnrt_rng_key(9, 0), 0, 1, r);
  double u1 = ((r[2] >> 8) + 1.0) / 16777216.0, u2 = (r[3] >> 8) / 16777216.0;
  double z6 = sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
  double z7 = sqrt(-2 * log(u1)) * sin(2 * M_PI * u2);
  assert_true(fabsf(nnrt_normal(nnrt_rng_key(9, 0), 0, 6) - (float)z6) < 1e-6);
  assert_true(fabsf(nnrt_normal(nnrt_rng_key(9, 0), 0, 7) - (float)z7) < 1e-6);
  assert_true(fabsf(x[7] - (float)(1.5 + 2 * z7)) < 1e-5);
  free(x);
}

static void test_threads_determinism(void **state) {
  int64_t n = 100003;
  float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
  int64_t dims[2] = {317, 311};
  nnrt_set_threads(1);
  assert_int_equal(nnrt_get_threads(), 1);
  nnrt_fill_normal(a, n, 77, 5, 0, 1);
  nnrt_set_threads(2);
  assert_int_equal(nnrt_get_threads(), 2);
  nnrt_fill_normal(b, n, 77, 5, 0, 1);
  assert_memory_equal(a, b, (size_t)n * 4);
  nnrt_set_threads(1);
  assert_int_equal(nnrt_init_tensor(a, dims, 2, "glorot_uniform", NULL, 0, 3, 4,
                                    NULL), 0);
  nnrt_set_threads(2);
  assert_int_equal(nnrt_init_tensor(b, dims, 2, "glorot_uniform", NULL, 0, 3, 4,
                                    NULL), 0);
  assert_memory_equal(a, b, (size_t)(317 * 311) * 4);
  /* and another stream differs */
  assert_int_equal(nnrt_init_tensor(b, dims, 2, "glorot_uniform", NULL, 0, 3, 5,
                                    NULL), 0);
  assert_true(memcmp(a, b, 4 * 100) != 0);
  nnrt_set_threads(0);
  free(a);
  free(b);
}

/* Each iteration visited once; chunks contiguous, ordered by thread. */
typedef struct Cover {
  int *hits;
  int64_t lo[64], hi[64];
  int nchunks;
} Cover;

static void cover_body(int64_t b, int64_t e, void *ctx) {
  Cover *c = ctx;
  for (int64_t i = b; i < e; i++) c->hits[i]++;
  int k;
#pragma omp atomic capture
  k = c->nchunks++;
  if (k < 64) c->lo[k] = b, c->hi[k] = e;
}

static void test_parallel_for(void **state) {
  int64_t ns[] = {0, 1, 2, 3, 17, 1000};
  for (int th = 1; th <= 2; th++) {
    nnrt_set_threads(th);
    for (size_t k = 0; k < sizeof ns / sizeof *ns; k++) {
      Cover c = {calloc((size_t)ns[k] + 1, sizeof(int)), {0}, {0}, 0};
      nnrt_parallel_for(ns[k], cover_body, &c);
      for (int64_t i = 0; i < ns[k]; i++) assert_int_equal(c.hits[i], 1);
      int want = ns[k] == 0 ? 0 : ns[k] < 2 ? 1 : th;
      assert_int_equal(c.nchunks, want);
      free(c.hits);
    }
    /* grain: 10 iterations with grain 8 run as one chunk */
    Cover c = {calloc(11, sizeof(int)), {0}, {0}, 0};
    nnrt_parallel_for_grain(10, 8, cover_body, &c);
    assert_int_equal(c.nchunks, 1);
    free(c.hits);
  }
  /* two threads split 17 into [0,8) and [8,17) */
  nnrt_set_threads(2);
  Cover c = {calloc(18, sizeof(int)), {0}, {0}, 0};
  nnrt_parallel_for(17, cover_body, &c);
  int a = c.lo[0] == 0 ? 0 : 1;
  assert_int_equal(c.lo[a], 0);
  assert_int_equal(c.hi[a], 8);
  assert_int_equal(c.lo[1 - a], 8);
  assert_int_equal(c.hi[1 - a], 17);
  free(c.hits);
  nnrt_set_threads(0);
}

static void nested_body(int64_t b, int64_t e, void *ctx) {
  Cover *c = ctx;
  for (int64_t i = b; i < e; i++) c->hits[i]++;
}

typedef struct Outer {
  Cover *inner;
} Outer;

static void outer_body(int64_t b, int64_t e, void *ctx) {
  Outer *o = ctx;
  for (int64_t i = b; i < e; i++) {
    Cover c = {o->inner[i].hits, {0}, {0}, 0};
    nnrt_parallel_for(5, nested_body, &c); /* serial inside a region */
  }
}

static void test_parallel_nested(void **state) {
  nnrt_set_threads(2);
  Cover in[4];
  for (int i = 0; i < 4; i++) in[i].hits = calloc(5, sizeof(int));
  Outer o = {in};
  nnrt_parallel_for(4, outer_body, &o);
  for (int i = 0; i < 4; i++) {
    for (int k = 0; k < 5; k++) assert_int_equal(in[i].hits[k], 1);
    free(in[i].hits);
  }
  nnrt_set_threads(0);
}

static void test_arena(void **state) {
  size_t sizes[] = {0, 1, 63, 64, 65, 1 << 20};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    unsigned char *p = nnrt_arena_new(sizes[k]);
    assert_non_null(p);
    assert_int_equal((uintptr_t)p % 64, 0);
    for (size_t i = 0; i < sizes[k]; i++) assert_int_equal(p[i], 0);
    memset(p, 1, sizes[k]);
    nnrt_arena_free(p);
  }
  assert_null(nnrt_arena_new(SIZE_MAX));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_philox_kat),
      cmocka_unit_test(test_uniform_formula),
      cmocka_unit_test(test_uniform_moments),
      cmocka_unit_test(test_normal_moments),
      cmocka_unit_test(test_threads_determinism),
      cmocka_unit_test(test_parallel_for),
      cmocka_unit_test(test_parallel_nested),
      cmocka_unit_test(test_arena),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

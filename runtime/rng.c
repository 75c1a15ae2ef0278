/*
** rng.c: counter-based random numbers.  Philox4x32-10 (Salmon, Moraes,
** Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC 2011) maps
** (key, 128-bit counter) to four 32-bit words, so element i of a stream is
** a pure function of (key, counter_hi, i): fills are the same for any
** thread count.  The word packing and the uniform mapping are those of
** the reference interpreter's rand (ir/interp.c), see nnrt.h.
*/
#include "internal.h"

#include <math.h>

void nnrt_philox(uint64_t key, uint64_t counter_hi, uint64_t counter_lo,
                 uint32_t out[4]) {
  uint32_t c0 = (uint32_t)counter_lo, c1 = (uint32_t)(counter_lo >> 32);
  uint32_t c2 = (uint32_t)counter_hi, c3 = (uint32_t)(counter_hi >> 32);
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += 0x9E3779B9u; /* Weyl constants: the key bump between rounds */
      k1 += 0xBB67AE85u;
    }
    uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

uint64_t nnrt_rng_key(uint64_t seed, uint64_t stream) {
  return seed ^ ((uint64_t)(uint32_t)stream << 32);
}

float nnrt_uniform(uint64_t key, uint64_t counter_hi, uint64_t i) {
  uint32_t r[4];
  nnrt_philox(key, counter_hi, i / 4, r);
  return (float)(r[i % 4] >> 8) * 0x1p-24f;
}

static double normal_of(const uint32_t r[4], uint64_t i) {
  unsigned p = (unsigned)(i / 2 % 2);
  double u1 = ((double)(r[2 * p] >> 8) + 1.0) * 0x1p-24; /* (0, 1] */
  double u2 = (double)(r[2 * p + 1] >> 8) * 0x1p-24;    /* [0, 1) */
  double rad = sqrt(-2.0 * log(u1)), ang = 2.0 * M_PI * u2;
  return i % 2 ? rad * sin(ang) : rad * cos(ang);
}

float nnrt_normal(uint64_t key, uint64_t counter_hi, uint64_t i) {
  uint32_t r[4];
  nnrt_philox(key, counter_hi, i / 4, r);
  return (float)normal_of(r, i);
}

typedef struct Fill {
  float *dst;
  uint64_t key, hi;
  double a, b; /* low, high or mean, std */
  int normal;
} Fill;

/* Fills [begin, end), one Philox block per four elements. */
static void fill_body(int64_t begin, int64_t end, void *ctx) {
  const Fill *f = ctx;
  uint32_t r[4];
  uint64_t blk = UINT64_MAX;
  float top = nextafterf((float)f->b, -INFINITY);
  for (int64_t i = begin; i < end; i++) {
    if ((uint64_t)i / 4 != blk) {
      blk = (uint64_t)i / 4;
      nnrt_philox(f->key, f->hi, blk, r);
    }
    if (f->normal) {
      f->dst[i] = (float)(f->a + f->b * normal_of(r, (uint64_t)i));
    } else {
      double u = (double)(r[i % 4] >> 8) * 0x1p-24;
      float v = (float)(f->a + (f->b - f->a) * u);
      f->dst[i] = f->b > f->a && v >= (float)f->b ? top : v;
    }
  }
}

void nnrt_fill_uniform(float *dst, int64_t n, uint64_t key,
                       uint64_t counter_hi, double low, double high) {
  Fill f = {dst, key, counter_hi, low, high, 0};
  nnrt_parallel_for_grain(n, 4096, fill_body, &f);
}

void nnrt_fill_normal(float *dst, int64_t n, uint64_t key,
                      uint64_t counter_hi, double mean, double std) {
  Fill f = {dst, key, counter_hi, mean, std, 1};
  nnrt_parallel_for_grain(n, 4096, fill_body, &f);
}

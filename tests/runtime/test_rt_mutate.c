/*
** test_rt_mutate.c: random damage to good files of every format
** (safetensors, NPY, NPZ, IDX plain and gzip, CSV): flipped bytes,
** overwritten length fields, cuts.  Under ASan no reader may touch memory
** it does not own; a failure must carry a message naming the file, and a
** success must return tensors whose byte counts match their shapes.
** The damage is drawn from Philox, so every run is the same.
*/
#include "rt_test.h"

#include <zlib.h>

typedef int Reader(const char *path, NnrtErr *e);

static int check_tensor(const NnrtTensor *t) {
  int64_t n = nnrt_numel(t->dims, t->rank);
  assert_true(n >= 0);
  assert_int_equal((uint64_t)n * nnrt_dtype_size(t->dtype), t->nbytes);
  if (t->nbytes) { /* touch every byte */
    volatile unsigned char s = 0;
    for (size_t i = 0; i < t->nbytes; i++) s ^= ((unsigned char *)t->data)[i];
  }
  return 0;
}

static int rd_st(const char *p, NnrtErr *e) {
  NnrtTensorFile f;
  int rc = nnrt_st_read(p, &f, e);
  for (int i = 0; !rc && i < f.n; i++) check_tensor(&f.t[i]);
  if (!rc) nnrt_tf_free(&f);
  return rc;
}

static int rd_npz(const char *p, NnrtErr *e) {
  NnrtTensorFile f;
  int rc = nnrt_npz_read(p, &f, e);
  for (int i = 0; !rc && i < f.n; i++) check_tensor(&f.t[i]);
  if (!rc) nnrt_tf_free(&f);
  return rc;
}

static int rd_npy(const char *p, NnrtErr *e) {
  NnrtTensor t;
  int rc = nnrt_npy_read(p, &t, e);
  if (!rc) check_tensor(&t), nnrt_tensor_free(&t);
  return rc;
}

static int rd_idx(const char *p, NnrtErr *e) {
  NnrtTensor t;
  int rc = nnrt_idx_read(p, &t, e);
  if (!rc) check_tensor(&t), nnrt_tensor_free(&t);
  return rc;
}

static int rd_csv(const char *p, NnrtErr *e) {
  NnrtCsv c;
  int rc = nnrt_csv_read(p, 1, &c, e);
  if (!rc) nnrt_csv_free(&c);
  return rc;
}

/* Applies `rounds` random mutations to good (n bytes) and reads each. */
static void mutate(Tmp *t, const char *name, const unsigned char *good,
                   size_t n, Reader *rd, uint64_t stream) {
  const char *p = tpath(t, name);
  unsigned char *b = malloc(n + 16);
  int failures = 0;
  for (uint64_t r = 0; r < 200; r++) {
    uint32_t w[4];
    nnrt_philox(nnrt_rng_key(2024, stream), 0, r, w);
    memcpy(b, good, n);
    size_t len = n;
    switch (w[0] % 4) {
    case 0: b[w[1] % n] ^= (unsigned char)(1u << (w[2] % 8)); break;
    case 1: b[w[1] % n] = (unsigned char)w[2]; break;
    case 2: /* a 4-byte field set to an extreme value */
      if (n >= 4) memset(b + w[1] % (n - 3), w[2] % 2 ? 0xff : 0x7f, 4);
      break;
    default: len = w[1] % n; break;
    }
    write_bytes(p, b, len);
    NnrtErr e = {0};
    if (rd(p, &e)) {
      failures++;
      assert_contains(e.msg, name);
    }
  }
  assert_true(failures > 0); /* the damage was seen */
  free(b);
}

static void test_mutations(void **state) {
  Tmp *t = *state;
  float f[12];
  for (int i = 0; i < 12; i++) f[i] = (float)i;
  NnrtTensor ts[2] = {
      {.name = "w", .dtype = NNRT_F32, .rank = 2, .dims = {3, 4}, .data = f,
       .nbytes = 48},
      {.name = "b", .dtype = NNRT_U8, .rank = 1, .dims = {5}, .data = f,
       .nbytes = 5}};
  const char *meta[2] = {"k", "v"};
  const char *g = tpath(t, "good");
  size_t n;
  unsigned char *raw;

  assert_int_equal(nnrt_st_write(g, ts, 2, meta, 1, NULL), 0);
  raw = (unsigned char *)read_bytes(g, &n);
  mutate(t, "m.safetensors", raw, n, rd_st, 1);
  free(raw);

  assert_int_equal(nnrt_npy_write(g, &ts[0], NULL), 0);
  raw = (unsigned char *)read_bytes(g, &n);
  mutate(t, "m.npy", raw, n, rd_npy, 2);
  free(raw);

  assert_int_equal(nnrt_npz_write(g, ts, 2, NULL), 0);
  raw = (unsigned char *)read_bytes(g, &n);
  mutate(t, "m.npz", raw, n, rd_npz, 3);
  free(raw);
  raw = (unsigned char *)read_bytes(NNRT_TEST_DATA "/numpy_style.npz", &n);
  mutate(t, "d.npz", raw, n, rd_npz, 4); /* deflated + zip64 extras */
  free(raw);

  NnrtTensor img = {.dtype = NNRT_U8, .rank = 3, .dims = {2, 3, 4}, .data = f,
                    .nbytes = 24};
  assert_int_equal(nnrt_idx_write(g, &img, NULL), 0);
  raw = (unsigned char *)read_bytes(g, &n);
  mutate(t, "m.idx", raw, n, rd_idx, 5);
  gzFile z = gzopen(g, "wb");
  gzwrite(z, raw, (unsigned)n);
  gzclose(z);
  free(raw);
  raw = (unsigned char *)read_bytes(g, &n);
  mutate(t, "m.idx.gz", raw, n, rd_idx, 6);
  free(raw);

  const char *csv = "a,b,c\n1,2,3\n4.5,-6,7e3\n";
  mutate(t, "m.csv", (const unsigned char *)csv, strlen(csv), rd_csv, 7);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_mutations, tmp_setup, tmp_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

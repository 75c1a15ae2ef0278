/*
** test_rt_npy.c: NPY round trips of every dtype and of scalars and empty
** arrays; malformed NPY (bad magic, bad header, fortran order, big-endian,
** truncated data, trailing bytes, every truncation of a good file); NPZ
** round trips, an archive built here with a stored and a deflated member
** (zlib raw deflate), the fixture data/numpy_style.npz (written by
** Python's zipfile exactly as numpy.savez does, zip64 local headers), a
** bad central directory, a bad CRC, and a failed NPZ write that keeps the
** old file.
*/
#include "rt_test.h"

#include <zlib.h>

static void test_npy_every_dtype(void **state) {
  Tmp *t = *state;
  float f32[6] = {1, -2, 3.5f, 0, 1e-30f, 6};
  double f64[6] = {1e300, -0.5, 2, 3, 4, 5};
  uint16_t f16[6] = {0x3c00, 0xc000, 0, 1, 0x7bff, 0x8000};
  int32_t i32[6] = {INT32_MIN, -1, 0, 1, 2, INT32_MAX};
  int64_t i64[6] = {INT64_MIN, -1, 0, 1, 2, INT64_MAX};
  uint8_t u8[6] = {0, 1, 127, 128, 254, 255}, b1[6] = {0, 1, 1, 0, 0, 1};
  struct {
    NnrtDType dt;
    void *p;
  } cases[] = {{NNRT_F32, f32}, {NNRT_F64, f64}, {NNRT_F16, f16},
               {NNRT_I32, i32}, {NNRT_I64, i64}, {NNRT_U8, u8},
               {NNRT_BOOL, b1}};
  const char *p = tpath(t, "x.npy");
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    int64_t shapes[3][2] = {{2, 3}, {6, 0}, {0, 3}};
    int ranks[3] = {2, 1, 2};
    for (int s = 0; s < 3; s++) {
      NnrtTensor a = {.dtype = cases[c].dt, .data = cases[c].p};
      memset(&a.dims, 0, sizeof a.dims);
      a.rank = ranks[s];
      a.dims[0] = shapes[s][0];
      a.dims[1] = shapes[s][1];
      a.nbytes = (size_t)nnrt_numel(a.dims, a.rank) * nnrt_dtype_size(a.dtype);
      NnrtErr e = {0};
      assert_int_equal(nnrt_npy_write(p, &a, &e), 0);
      size_t n;
      char *raw = read_bytes(p, &n);
      unsigned hl = (unsigned char)raw[8] | (unsigned char)raw[9] << 8;
      assert_int_equal((10 + hl) % 64, 0);
      assert_int_equal(raw[10 + hl - 1], '\n');
      free(raw);
      NnrtTensor r;
      assert_int_equal(nnrt_npy_read(p, &r, &e), 0);
      assert_int_equal(r.dtype, a.dtype);
      assert_int_equal(r.rank, a.rank);
      assert_memory_equal(r.dims, a.dims, sizeof(int64_t) * (size_t)a.rank);
      assert_int_equal(r.nbytes, a.nbytes);
      if (a.nbytes) assert_memory_equal(r.data, a.data, a.nbytes);
      nnrt_tensor_free(&r);
    }
  }
  /* a scalar, written as shape () */
  NnrtTensor s = {.dtype = NNRT_F64, .rank = 0, .data = f64, .nbytes = 8};
  assert_int_equal(nnrt_npy_write(p, &s, NULL), 0);
  char *raw = read_bytes(p, NULL);
  assert_contains(raw + 10, /* after magic, version and length */
                  "{'descr': '<f8', 'fortran_order': False, 'shape': (), }");
  free(raw);
  NnrtTensor r;
  assert_int_equal(nnrt_npy_read(p, &r, NULL), 0);
  assert_int_equal(r.rank, 0);
  assert_true(*(double *)r.data == 1e300);
  nnrt_tensor_free(&r);
  /* bf16 has no NPY code */
  NnrtTensor bf = {.dtype = NNRT_BF16, .rank = 1, .dims = {1}, .data = f16,
                   .nbytes = 2};
  NnrtErr e = {0};
  assert_int_equal(nnrt_npy_write(p, &bf, &e), NNRT_E_UNSUPPORTED);
  assert_contains(e.msg, "NPY has no bf16 dtype");
}

/* An NPY v1 image with header dict h and ndata data bytes. */
static void make_npy(const char *path, const char *h, size_t ndata) {
  size_t hl = strlen(h);
  unsigned char *b = calloc(10 + hl + ndata, 1);
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (unsigned char)hl;
  b[9] = (unsigned char)(hl >> 8);
  memcpy(b + 10, h, hl);
  write_bytes(path, b, 10 + hl + ndata);
  free(b);
}

static void expect_npy_bad(const char *path, int code, const char *want) {
  NnrtTensor r;
  NnrtErr e = {0};
  int rc = nnrt_npy_read(path, &r, &e);
  if (rc != code) fail_msg("status %d (%s), expected %d", rc, e.msg, code);
  assert_contains(e.msg, want);
  assert_null(r.data);
}

static void test_npy_malformed(void **state) {
  Tmp *t = *state;
  const char *p = tpath(t, "bad.npy");
  write_bytes(p, "PK\3\4 not numpy", 15);
  expect_npy_bad(p, NNRT_E_FORMAT, "bad.npy: not an NPY file (bad magic)");
  make_npy(p, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }\n", 24);
  expect_npy_bad(p, NNRT_E_UNSUPPORTED, "fortran_order is True");
  make_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n", 10);
  expect_npy_bad(p, NNRT_E_TRUNCATED, "bad.npy: truncated: header says <f4 "
                 "[2,3] (24 bytes), file holds 10 bytes of data");
  make_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 12);
  expect_npy_bad(p, NNRT_E_FORMAT, "trailing bytes");
  make_npy(p, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8);
  expect_npy_bad(p, NNRT_E_UNSUPPORTED, "unsupported NPY dtype '>f4'");
  make_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", 8);
  expect_npy_bad(p, NNRT_E_FORMAT, "bad NPY shape");
  make_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
              "'extra': 1}\n", 8);
  expect_npy_bad(p, NNRT_E_FORMAT, "unexpected NPY header key 'extra'");
  make_npy(p, "{'descr': '<f4', 'shape': (2,), }\n", 8);
  expect_npy_bad(p, NNRT_E_FORMAT, "malformed NPY header");
  make_npy(p, "garbage", 8);
  expect_npy_bad(p, NNRT_E_FORMAT, "malformed NPY header 'garbage'");
  write_bytes(p, "\x93NUMPY\x01\x00\xff\x00{'descr'", 18);
  expect_npy_bad(p, NNRT_E_TRUNCATED, "truncated: NPY header of 255 bytes");
  write_bytes(p, "\x93NUMPY\x09\x00\x10\x00", 10);
  expect_npy_bad(p, NNRT_E_UNSUPPORTED, "NPY version 9.0");
  /* every truncation of a good file fails cleanly */
  float v[3] = {1, 2, 3};
  NnrtTensor a = {.dtype = NNRT_F32, .rank = 1, .dims = {3}, .data = v,
                  .nbytes = 12};
  const char *good = tpath(t, "good.npy");
  assert_int_equal(nnrt_npy_write(good, &a, NULL), 0);
  size_t n;
  char *raw = read_bytes(good, &n);
  for (size_t k = 0; k < n; k++) {
    write_bytes(p, raw, k);
    NnrtTensor r;
    NnrtErr e = {0};
    assert_int_not_equal(nnrt_npy_read(p, &r, &e), 0);
    assert_true(e.msg[0] != 0);
  }
  free(raw);
}

/* ------------------------------------------------------------ NPZ */

/* A zip built by hand: members with name, bytes, method (0 or 8). */
typedef struct Zip {
  unsigned char b[8192], cd[2048];
  size_t n, ncd;
  int count;
} Zip;

static void le(unsigned char *p, uint64_t v, int k) {
  for (int i = 0; i < k; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void zip_add(Zip *z, const char *name, const void *data, size_t n,
                    int method) {
  unsigned char comp[4096];
  size_t cn = n;
  if (method == 8) {
    z_stream s = {0};
    assert_int_equal(deflateInit2(&s, 9, Z_DEFLATED, -15, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)n;
    s.next_out = comp;
    s.avail_out = sizeof comp;
    assert_int_equal(deflate(&s, Z_FINISH), Z_STREAM_END);
    cn = s.total_out;
    deflateEnd(&s);
  } else {
    memcpy(comp, data, n);
  }
  uint32_t crc = (uint32_t)crc32(0, data, (uInt)n);
  size_t nl = strlen(name), off = z->n;
  unsigned char *h = z->b + z->n;
  memset(h, 0, 30);
  le(h, 0x04034b50, 4);
  le(h + 4, 20, 2);
  le(h + 8, (uint64_t)method, 2);
  le(h + 14, crc, 4);
  le(h + 18, cn, 4);
  le(h + 22, n, 4);
  le(h + 26, nl, 2);
  memcpy(h + 30, name, nl);
  memcpy(h + 30 + nl, comp, cn);
  z->n += 30 + nl + cn;
  unsigned char *c = z->cd + z->ncd;
  memset(c, 0, 46);
  le(c, 0x02014b50, 4);
  le(c + 4, 20, 2);
  memcpy(c + 6, h + 4, 26);
  le(c + 42, off, 4);
  memcpy(c + 46, name, nl);
  z->ncd += 46 + nl;
  z->count++;
}

/* Appends the central directory and its end record. */
static size_t zip_finish(Zip *z) {
  size_t cdoff = z->n;
  memcpy(z->b + z->n, z->cd, z->ncd);
  z->n += z->ncd;
  unsigned char *e = z->b + z->n;
  memset(e, 0, 22);
  le(e, 0x06054b50, 4);
  le(e + 8, (uint64_t)z->count, 2);
  le(e + 10, (uint64_t)z->count, 2);
  le(e + 12, z->ncd, 4);
  le(e + 16, cdoff, 4);
  z->n += 22;
  return cdoff;
}

/* The NPY image of t (through the writer). */
static char *npy_image(Tmp *t, const NnrtTensor *a, size_t *n) {
  const char *p = tpath(t, "member.npy");
  assert_int_equal(nnrt_npy_write(p, a, NULL), 0);
  char *raw = read_bytes(p, n);
  unlink(p);
  return raw;
}

static void test_npz_stored_and_deflated(void **state) {
  Tmp *t = *state;
  float x[64];
  int32_t y[8];
  for (int i = 0; i < 64; i++) x[i] = (float)(i % 7);
  for (int i = 0; i < 8; i++) y[i] = i * 3 - 4;
  NnrtTensor xa = {.dtype = NNRT_F32, .rank = 2, .dims = {8, 8}, .data = x,
                   .nbytes = sizeof x};
  NnrtTensor ya = {.dtype = NNRT_I32, .rank = 1, .dims = {8}, .data = y,
                   .nbytes = sizeof y};
  size_t nx, ny;
  char *ix = npy_image(t, &xa, &nx), *iy = npy_image(t, &ya, &ny);
  Zip *z = calloc(1, sizeof *z);
  zip_add(z, "x.npy", ix, nx, 8);
  zip_add(z, "y.npy", iy, ny, 0);
  size_t cdoff = zip_finish(z);
  assert_true(z->n < nx + ny); /* the deflated member did shrink */
  const char *p = tpath(t, "d.npz");
  write_bytes(p, z->b, z->n);
  NnrtTensorFile f;
  NnrtErr e = {0};
  assert_int_equal(nnrt_npz_read(p, &f, &e), 0);
  assert_int_equal(f.n, 2);
  const NnrtTensor *rx = nnrt_tf_find(&f, "x"), *ry = nnrt_tf_find(&f, "y");
  assert_non_null(rx);
  assert_non_null(ry);
  assert_int_equal(rx->dims[0], 8);
  assert_memory_equal(rx->data, x, sizeof x);
  assert_memory_equal(ry->data, y, sizeof y);
  nnrt_tf_free(&f);
  /* bad central directory: its offset points past its end */
  unsigned char *end = z->b + z->n - 22;
  le(end + 16, z->n, 4);
  write_bytes(p, z->b, z->n);
  assert_int_equal(nnrt_npz_read(p, &f, &e), NNRT_E_FORMAT);
  assert_contains(e.msg, "bad zip central directory");
  /* central entry signature broken */
  le(end + 16, cdoff, 4);
  z->b[cdoff] = 'X';
  write_bytes(p, z->b, z->n);
  assert_int_equal(nnrt_npz_read(p, &f, &e), NNRT_E_FORMAT);
  assert_contains(e.msg, "bad zip central directory entry at byte");
  z->b[cdoff] = 'P';
  /* CRC mismatch: flip a byte of the stored member's data */
  z->b[cdoff - 1] ^= 0x55;
  write_bytes(p, z->b, z->n);
  assert_int_equal(nnrt_npz_read(p, &f, &e), NNRT_E_FORMAT);
  assert_contains(e.msg, "member 'y.npy': CRC mismatch");
  z->b[cdoff - 1] ^= 0x55;
  /* corrupt deflate data */
  z->b[30 + 5 + 3] ^= 0xff;
  write_bytes(p, z->b, z->n);
  assert_int_not_equal(nnrt_npz_read(p, &f, &e), 0);
  assert_contains(e.msg, "member 'x.npy'");
  /* not a zip at all; a truncated zip */
  write_bytes(p, "hello", 5);
  assert_int_equal(nnrt_npz_read(p, &f, &e), NNRT_E_FORMAT);
  assert_contains(e.msg, "no valid end of central directory");
  write_bytes(p, z->b, z->n / 2);
  assert_int_equal(nnrt_npz_read(p, &f, &e), NNRT_E_FORMAT);
  free(z);
  free(ix);
  free(iy);
}

static void test_npz_numpy_fixture(void **state) {
  NnrtTensorFile f;
  NnrtErr e = {0};
  assert_int_equal(nnrt_npz_read(NNRT_TEST_DATA "/numpy_style.npz", &f, &e), 0);
  assert_int_equal(f.n, 2);
  const NnrtTensor *a = nnrt_tf_find(&f, "a"), *b = nnrt_tf_find(&f, "b");
  assert_non_null(a);
  assert_non_null(b);
  assert_int_equal(a->dtype, NNRT_F32);
  assert_int_equal(a->rank, 2);
  assert_int_equal(a->dims[1], 3);
  float av[6] = {0.5f, -1, 2, 3.25f, 4, 1e-3f};
  assert_memory_equal(a->data, av, sizeof av);
  int64_t bv[3] = {-5, 0, 1ll << 40};
  assert_int_equal(b->dtype, NNRT_I64);
  assert_memory_equal(b->data, bv, sizeof bv);
  nnrt_tf_free(&f);
}

static void test_npz_roundtrip_and_atomic(void **state) {
  Tmp *t = *state;
  float x[3] = {1, 2, 3};
  uint8_t m[2] = {1, 0};
  NnrtTensor ts[2] = {
      {.name = "x", .dtype = NNRT_F32, .rank = 1, .dims = {3}, .data = x,
       .nbytes = 12},
      {.name = "mask", .dtype = NNRT_BOOL, .rank = 2, .dims = {1, 2}, .data = m,
       .nbytes = 2}};
  const char *p = tpath(t, "w.npz");
  NnrtErr e = {0};
  assert_int_equal(nnrt_npz_write(p, ts, 2, &e), 0);
  NnrtTensorFile f;
  assert_int_equal(nnrt_npz_read(p, &f, &e), 0);
  assert_int_equal(f.n, 2);
  assert_memory_equal(nnrt_tf_find(&f, "x")->data, x, 12);
  assert_memory_equal(nnrt_tf_find(&f, "mask")->data, m, 2);
  nnrt_tf_free(&f);
  /* Every truncation of the archive fails cleanly. */
  size_t n0;
  char *before = read_bytes(p, &n0);
  const char *q = tpath(t, "cut.npz");
  for (size_t k = 0; k < n0; k++) {
    write_bytes(q, before, k);
    assert_int_not_equal(nnrt_npz_read(q, &f, &e), 0);
  }
  unlink(q);
  /* The second member is malformed: the write fails after the first
  ** member is written; the old archive stays and no temporary is left. */
  NnrtTensor bad[2] = {ts[0], ts[1]};
  bad[1].nbytes = 7;
  assert_int_equal(nnrt_npz_write(p, bad, 2, &e), NNRT_E_ARG);
  size_t n1;
  char *after = read_bytes(p, &n1);
  assert_int_equal(n0, n1);
  assert_memory_equal(before, after, n0);
  assert_int_equal(tmp_count(t), 1);
  free(before);
  free(after);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_npy_every_dtype, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_npy_malformed, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_npz_stored_and_deflated, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test(test_npz_numpy_fixture),
      cmocka_unit_test_setup_teardown(test_npz_roundtrip_and_atomic, tmp_setup,
                                      tmp_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

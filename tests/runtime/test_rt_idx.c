/*
** test_rt_idx.c: IDX files built here (u8 images and labels, i32, f32,
** f64 with their big-endian byte order; plain and gzip), wrong magic,
** truncated headers and data (plain and gzip), trailing bytes, a label
** count that disagrees with the images, and the Fashion-MNIST files of
** /usr/share/datasets/fashion-mnist when they are installed.
*/
#include "rt_test.h"

#include <zlib.h>

#define FMNIST "/usr/share/datasets/fashion-mnist"

static void gz_file(const char *path, const void *p, size_t n) {
  gzFile g = gzopen(path, "wb");
  assert_non_null(g);
  assert_int_equal(gzwrite(g, p, (unsigned)n), (int)n);
  assert_int_equal(gzclose(g), Z_OK);
}

static void expect_idx_bad(const char *path, int code, const char *want) {
  NnrtTensor r;
  NnrtErr e = {0};
  int rc = nnrt_idx_read(path, &r, &e);
  if (rc != code) fail_msg("status %d (%s), expected %d", rc, e.msg, code);
  assert_contains(e.msg, want);
  assert_null(r.data);
}

static void test_idx_images_labels(void **state) {
  Tmp *t = *state;
  enum { N = 5 };
  uint8_t img[N * 4 * 3], lab[N];
  for (int i = 0; i < N * 12; i++) img[i] = (uint8_t)(i * 7);
  for (int i = 0; i < N; i++) lab[i] = (uint8_t)(i % 10);
  NnrtTensor x = {.dtype = NNRT_U8, .rank = 3, .dims = {N, 4, 3}, .data = img,
                  .nbytes = sizeof img};
  NnrtTensor y = {.dtype = NNRT_U8, .rank = 1, .dims = {N}, .data = lab,
                  .nbytes = N};
  const char *px = tpath(t, "img.idx"), *py = tpath(t, "lab.idx");
  NnrtErr e = {0};
  assert_int_equal(nnrt_idx_write(px, &x, &e), 0);
  assert_int_equal(nnrt_idx_write(py, &y, &e), 0);
  size_t n;
  char *raw = read_bytes(px, &n);
  assert_int_equal(n, 4 + 12 + sizeof img);
  assert_memory_equal(raw, "\0\0\x08\x03\0\0\0\x05\0\0\0\x04\0\0\0\x03", 16);
  /* the same bytes gzip-compressed */
  const char *gx = tpath(t, "img.idx.gz");
  gz_file(gx, raw, n);
  free(raw);
  raw = read_bytes(py, &n);
  assert_memory_equal(raw, "\0\0\x08\x01\0\0\0\x05", 8);
  free(raw);
  const char *paths[2] = {px, gx};
  for (int k = 0; k < 2; k++) {
    NnrtTensor r;
    assert_int_equal(nnrt_idx_read(paths[k], &r, &e), 0);
    assert_int_equal(r.dtype, NNRT_U8);
    assert_int_equal(r.rank, 3);
    assert_int_equal(r.dims[0], N);
    assert_int_equal(r.dims[1], 4);
    assert_int_equal(r.dims[2], 3);
    assert_memory_equal(r.data, img, sizeof img);
    NnrtTensor l;
    assert_int_equal(nnrt_idx_read(py, &l, &e), 0);
    assert_int_equal(nnrt_idx_check_pair(&r, paths[k], &l, py, &e), 0);
    l.dims[0] = N - 1; /* a label file one short */
    assert_int_equal(nnrt_idx_check_pair(&r, paths[k], &l, py, &e),
                     NNRT_E_MISMATCH);
    assert_contains(e.msg, "lab.idx holds 4 labels but");
    assert_contains(e.msg, "holds 5 images");
    nnrt_tensor_free(&l);
    nnrt_tensor_free(&r);
  }
}

static void test_idx_wide_types(void **state) {
  Tmp *t = *state;
  int32_t i4[3] = {-2, 0x01020304, INT32_MAX};
  float f4[2] = {1.5f, -0.25f};
  double f8[2] = {1e-300, 3};
  NnrtTensor ts[3] = {
      {.dtype = NNRT_I32, .rank = 1, .dims = {3}, .data = i4, .nbytes = 12},
      {.dtype = NNRT_F32, .rank = 2, .dims = {1, 2}, .data = f4, .nbytes = 8},
      {.dtype = NNRT_F64, .rank = 1, .dims = {2}, .data = f8, .nbytes = 16}};
  const char *p = tpath(t, "w.idx");
  for (int k = 0; k < 3; k++) {
    assert_int_equal(nnrt_idx_write(p, &ts[k], NULL), 0);
    NnrtTensor r;
    assert_int_equal(nnrt_idx_read(p, &r, NULL), 0);
    assert_int_equal(r.dtype, ts[k].dtype);
    assert_memory_equal(r.data, ts[k].data, ts[k].nbytes);
    nnrt_tensor_free(&r);
  }
  size_t n;
  char *raw = read_bytes(p, &n); /* big-endian 3.0 */
  assert_memory_equal(raw + 4 + 4 + 8, "\x40\x08\0\0\0\0\0\0", 8);
  free(raw);
}

static void test_idx_malformed(void **state) {
  Tmp *t = *state;
  const char *p = tpath(t, "bad.idx"), *g = tpath(t, "bad.idx.gz");
  write_bytes(p, "\x1f\x00\x08\x01\0\0\0\1x", 9);
  expect_idx_bad(p, NNRT_E_FORMAT, "bad.idx: not an IDX file: bad magic "
                 "0x1f000801");
  write_bytes(p, "\0\0\x09\x01\0\0\0\1x", 9); /* i8: unsupported type */
  expect_idx_bad(p, NNRT_E_FORMAT, "bad magic 0x00000901");
  write_bytes(p, "\0\0", 2);
  expect_idx_bad(p, NNRT_E_TRUNCATED, "truncated: 2 bytes, no IDX header");
  write_bytes(p, "\0\0\x08\x03\0\0\0\x05\0\0", 10);
  expect_idx_bad(p, NNRT_E_TRUNCATED, "header needs 3 dimensions");
  /* 60000 images of 28x28 with 123 bytes of data, plain and gzip */
  unsigned char h[16 + 123] = {0, 0, 8, 3, 0, 0, 0xea, 0x60, 0, 0, 0, 28,
                               0, 0, 0, 28};
  write_bytes(p, h, sizeof h);
  expect_idx_bad(p, NNRT_E_TRUNCATED, "bad.idx: truncated: header says 60000 "
                 "images of 28x28, file holds 123 bytes of data");
  gz_file(g, h, sizeof h);
  expect_idx_bad(g, NNRT_E_TRUNCATED, "bad.idx.gz: truncated: header says "
                 "60000 images of 28x28, file holds 123 bytes of data");
  /* a gzip stream cut in the middle */
  unsigned char full[16 + 2 * 28 * 28] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28,
                                          0, 0, 0, 28};
  for (size_t i = 16; i < sizeof full; i++) full[i] = (unsigned char)(i * 31);
  gz_file(g, full, sizeof full);
  size_t n;
  char *raw = read_bytes(g, &n);
  write_bytes(g, raw, n / 2);
  free(raw);
  NnrtTensor r;
  NnrtErr e = {0};
  assert_int_not_equal(nnrt_idx_read(g, &r, &e), 0);
  assert_contains(e.msg, "bad.idx.gz: ");
  /* trailing bytes */
  unsigned char tr[10] = {0, 0, 8, 1, 0, 0, 0, 1, 7, 7};
  write_bytes(p, tr, sizeof tr);
  expect_idx_bad(p, NNRT_E_FORMAT, "trailing bytes after 1 items");
  expect_idx_bad(tpath(t, "absent.idx"), NNRT_E_IO, "absent.idx");
}

static void test_fashion_mnist(void **state) {
  if (access(FMNIST "/train-images-idx3-ubyte.gz", R_OK)) skip();
  const char *f[4] = {FMNIST "/train-images-idx3-ubyte.gz",
                      FMNIST "/train-labels-idx1-ubyte.gz",
                      FMNIST "/t10k-images-idx3-ubyte.gz",
                      FMNIST "/t10k-labels-idx1-ubyte.gz"};
  int64_t count[2] = {60000, 10000};
  for (int k = 0; k < 2; k++) {
    NnrtTensor x, y;
    NnrtErr e = {0};
    assert_int_equal(nnrt_idx_read(f[2 * k], &x, &e), 0);
    assert_int_equal(nnrt_idx_read(f[2 * k + 1], &y, &e), 0);
    assert_int_equal(x.dtype, NNRT_U8);
    assert_int_equal(x.rank, 3);
    assert_int_equal(x.dims[0], count[k]);
    assert_int_equal(x.dims[1], 28);
    assert_int_equal(x.dims[2], 28);
    assert_int_equal(y.rank, 1);
    assert_int_equal(y.dims[0], count[k]);
    assert_int_equal(nnrt_idx_check_pair(&x, f[2 * k], &y, f[2 * k + 1], &e), 0);
    int64_t hist[10] = {0};
    for (int64_t i = 0; i < count[k]; i++) {
      uint8_t l = ((uint8_t *)y.data)[i];
      assert_true(l < 10);
      hist[l]++;
    }
    for (int c = 0; c < 10; c++) assert_int_equal(hist[c], count[k] / 10);
    nnrt_tensor_free(&x);
    nnrt_tensor_free(&y);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_idx_images_labels, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_idx_wide_types, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_idx_malformed, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test(test_fashion_mnist),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

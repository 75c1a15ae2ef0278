/*
** test_rt_safetensors.c: safetensors round trips (every dtype, metadata,
** names that need JSON escapes, empty tensors) and malformed files, each
** with its message: truncated, header length past the end, overlapping or
** out-of-bounds offsets, sizes that disagree with shapes, bad JSON,
** unknown dtypes, duplicate names, negative shapes.  Also the atomic
** writer: a failed write leaves the old file and no temporary file.
*/
#include "rt_test.h"

#include <signal.h>
#include <sys/resource.h>

/* Writes a safetensors file with header json and ndata zero bytes. */
static void make_st(const char *path, const char *json, size_t ndata) {
  size_t hl = strlen(json);
  unsigned char *b = calloc(8 + hl + ndata, 1);
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  memcpy(b + 8, json, hl);
  write_bytes(path, b, 8 + hl + ndata);
  free(b);
}

/* Reading path fails with code and a message containing want. */
static void expect_bad(const char *path, int code, const char *want) {
  NnrtTensorFile f;
  NnrtErr e = {0};
  int rc = nnrt_st_read(path, &f, &e);
  if (rc != code) fail_msg("status %d (%s), expected %d", rc, e.msg, code);
  assert_contains(e.msg, want);
  assert_int_equal(f.n, 0);
}

static void test_roundtrip(void **state) {
  Tmp *t = *state;
  float w[6] = {1, -2, 3.5f, 4, 5, 6};
  double d[2] = {1e300, -0.25};
  int64_t l[3] = {-1, 0, INT64_MAX};
  uint8_t u[5] = {0, 1, 2, 254, 255};
  uint16_t h[4] = {0x3c00, 0xc000, 0x7bff, 1};
  int32_t i4[1] = {-7};
  NnrtTensor ts[] = {
      {.name = "fc1.w", .dtype = NNRT_F32, .rank = 2, .dims = {2, 3},
       .data = w, .nbytes = sizeof w},
      {.name = "d", .dtype = NNRT_F64, .rank = 1, .dims = {2}, .data = d,
       .nbytes = sizeof d},
      {.name = "q\"uote\\back\n", .dtype = NNRT_I64, .rank = 1, .dims = {3},
       .data = l, .nbytes = sizeof l},
      {.name = "u", .dtype = NNRT_U8, .rank = 1, .dims = {5}, .data = u,
       .nbytes = 5},
      {.name = "h", .dtype = NNRT_F16, .rank = 2, .dims = {2, 2}, .data = h,
       .nbytes = 8},
      {.name = "b", .dtype = NNRT_BF16, .rank = 0, .data = h, .nbytes = 2},
      {.name = "s", .dtype = NNRT_I32, .rank = 0, .data = i4, .nbytes = 4},
      {.name = "empty", .dtype = NNRT_BOOL, .rank = 2, .dims = {0, 4},
       .data = NULL, .nbytes = 0},
  };
  int n = (int)(sizeof ts / sizeof *ts);
  const char *meta[] = {"format", "nnc", "step", "12"};
  NnrtErr e = {0};
  const char *p = tpath(t, "w.safetensors");
  assert_int_equal(nnrt_st_write(p, ts, n, meta, 2, &e), 0);
  assert_int_equal(tmp_count(t), 1);
  size_t sz;
  char *raw = read_bytes(p, &sz);
  uint64_t hl = 0;
  for (int i = 0; i < 8; i++) hl |= (uint64_t)(unsigned char)raw[i] << (8 * i);
  assert_int_equal(hl % 8, 0);
  assert_int_equal(raw[8], '{');
  free(raw);
  NnrtTensorFile f;
  assert_int_equal(nnrt_st_read(p, &f, &e), 0);
  assert_int_equal(f.n, n);
  for (int i = 0; i < n; i++) {
    const NnrtTensor *r = nnrt_tf_find(&f, ts[i].name);
    assert_non_null(r);
    assert_int_equal(r->dtype, ts[i].dtype);
    assert_int_equal(r->rank, ts[i].rank);
    assert_memory_equal(r->dims, ts[i].dims, sizeof(int64_t) * (size_t)r->rank);
    assert_int_equal(r->nbytes, ts[i].nbytes);
    if (r->nbytes) assert_memory_equal(r->data, ts[i].data, r->nbytes);
  }
  assert_null(nnrt_tf_find(&f, "nope"));
  assert_string_equal(nnrt_tf_meta(&f, "step"), "12");
  assert_string_equal(nnrt_tf_meta(&f, "format"), "nnc");
  assert_int_equal((uintptr_t)f.buf % 64, 0);
  nnrt_tf_free(&f);
}

static void test_json_details(void **state) {
  Tmp *t = *state;
  const char *p = tpath(t, "j.safetensors");
  NnrtTensorFile f;
  NnrtErr e = {0};
  /* escapes (\u00e9, a surrogate pair), blanks, padding spaces */
  make_st(p, " { \"caf\\u00e9\\ud83d\\ude00\" : { \"shape\" : [ 1 ] , "
             "\"data_offsets\" : [0,4], \"dtype\":\"I32\" } ,"
             "\"__metadata__\":{}}    ", 4);
  assert_int_equal(nnrt_st_read(p, &f, &e), 0);
  assert_int_equal(f.n, 1);
  assert_string_equal(f.t[0].name, "caf\xc3\xa9\xf0\x9f\x98\x80");
  nnrt_tf_free(&f);
  make_st(p, "{}", 0);
  assert_int_equal(nnrt_st_read(p, &f, &e), 0);
  assert_int_equal(f.n, 0);
  nnrt_tf_free(&f);
}

static void test_malformed(void **state) {
  Tmp *t = *state;
  const char *p = tpath(t, "bad.safetensors");
  write_bytes(p, "\x10\0\0", 3);
  expect_bad(p, NNRT_E_TRUNCATED, "shorter than the 8-byte header length");
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
          8);
  write_bytes(p, "\xff\0\0\0\0\0\0\0{}", 10); /* length 255, 2 bytes follow */
  expect_bad(p, NNRT_E_TRUNCATED, "header length 255 past the end of the file");
  /* offsets past the data section */
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
          4);
  expect_bad(p, NNRT_E_FORMAT,
             "tensor 'a': data_offsets [0,8] outside the data section of 4 bytes");
  /* size mismatch */
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}",
          12);
  expect_bad(p, NNRT_E_FORMAT,
             "tensor 'a': F32 [3] needs 12 bytes, data_offsets [0,8] hold 8");
  /* begin > end */
  make_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}",
          8);
  expect_bad(p, NNRT_E_FORMAT, "outside the data section");
  /* overlap, also across an empty tensor */
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
             "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
          16);
  expect_bad(p, NNRT_E_FORMAT, "tensors 'a' [0,16] and 'b' [8,16] overlap");
  /* bad JSON */
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}",
          8);
  expect_bad(p, NNRT_E_FORMAT, "bad JSON header");
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,],\"data_offsets\":[0,8]}}",
          8);
  expect_bad(p, NNRT_E_FORMAT, "bad JSON header at byte 31: expected a non-negative integer");
  make_st(p, "[1,2]   ", 0);
  expect_bad(p, NNRT_E_FORMAT, "the header must be a JSON object");
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}x",
          8);
  expect_bad(p, NNRT_E_FORMAT, "trailing characters");
  make_st(p, "{\"a\x01\":{}}", 0);
  expect_bad(p, NNRT_E_FORMAT, "control character");
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8.0]}}",
          8);
  expect_bad(p, NNRT_E_FORMAT, "expected an integer");
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
             "\"data_offsets\":[0,8]}}", 8);
  expect_bad(p, NNRT_E_FORMAT, "integer too large");
  /* negative shape */
  make_st(p, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}",
          8);
  expect_bad(p, NNRT_E_FORMAT, "expected a non-negative integer");
  /* unknown dtype */
  make_st(p, "{\"a\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
  expect_bad(p, NNRT_E_FORMAT, "tensor 'a' has unknown dtype 'F8'");
  /* duplicate names */
  make_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2);
  expect_bad(p, NNRT_E_FORMAT, "duplicate tensor name 'a'");
  /* missing and unknown keys */
  make_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1);
  expect_bad(p, NNRT_E_FORMAT, "tensor 'a' lacks data_offsets");
  make_st(p, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],"
             "\"x\":1}}", 1);
  expect_bad(p, NNRT_E_FORMAT, "unexpected or repeated key 'x'");
  make_st(p, "{\"__metadata__\":{\"k\":1}}", 0);
  expect_bad(p, NNRT_E_FORMAT, "expected a string");
  make_st(p, "{\"\\ud800\":{}}", 0);
  expect_bad(p, NNRT_E_FORMAT, "lone surrogate");
  NnrtTensorFile f;
  NnrtErr e = {0};
  assert_int_equal(nnrt_st_read(tpath(t, "missing"), &f, &e), NNRT_E_IO);
  assert_contains(e.msg, "missing: No such file or directory");
}

/* Truncating a valid file at every length never crashes and fails. */
static void test_every_truncation(void **state) {
  Tmp *t = *state;
  float w[4] = {1, 2, 3, 4};
  NnrtTensor ts = {.name = "w", .dtype = NNRT_F32, .rank = 1, .dims = {4},
                   .data = w, .nbytes = 16};
  const char *p = tpath(t, "ok.safetensors"), *q = tpath(t, "cut.safetensors");
  assert_int_equal(nnrt_st_write(p, &ts, 1, NULL, 0, NULL), 0);
  size_t n;
  char *raw = read_bytes(p, &n);
  for (size_t k = 0; k < n; k++) {
    write_bytes(q, raw, k);
    NnrtTensorFile f;
    NnrtErr e = {0};
    assert_int_not_equal(nnrt_st_read(q, &f, &e), 0);
    assert_true(e.msg[0] != 0);
  }
  free(raw);
}

static void test_write_rejects(void **state) {
  Tmp *t = *state;
  float w[2] = {1, 2};
  NnrtTensor ts[2] = {
      {.name = "a", .dtype = NNRT_F32, .rank = 1, .dims = {2}, .data = w,
       .nbytes = 8},
      {.name = "a", .dtype = NNRT_F32, .rank = 1, .dims = {2}, .data = w,
       .nbytes = 8}};
  NnrtErr e = {0};
  assert_int_equal(nnrt_st_write(tpath(t, "x"), ts, 2, NULL, 0, &e), NNRT_E_ARG);
  assert_contains(e.msg, "duplicate tensor name 'a'");
  ts[0].nbytes = 4;
  assert_int_equal(nnrt_st_write(tpath(t, "x"), ts, 1, NULL, 0, &e), NNRT_E_ARG);
  assert_contains(e.msg, "malformed");
  assert_int_equal(tmp_count(t), 0);
}

/* A write that fails half way (file size limit) keeps the old file. */
static void test_atomic_failure(void **state) {
  Tmp *t = *state;
  const char *p = tpath(t, "keep.safetensors");
  float small[1] = {42};
  NnrtTensor a = {.name = "a", .dtype = NNRT_F32, .rank = 1, .dims = {1},
                  .data = small, .nbytes = 4};
  assert_int_equal(nnrt_st_write(p, &a, 1, NULL, 0, NULL), 0);
  size_t n0;
  char *before = read_bytes(p, &n0);
  static float big[1 << 16];
  NnrtTensor b = {.name = "b", .dtype = NNRT_F32, .rank = 1, .dims = {1 << 16},
                  .data = big, .nbytes = sizeof big};
  struct rlimit old, lim;
  getrlimit(RLIMIT_FSIZE, &old);
  lim = old;
  lim.rlim_cur = 4096;
  signal(SIGXFSZ, SIG_IGN);
  assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
  NnrtErr e = {0};
  int rc = nnrt_st_write(p, &b, 1, NULL, 0, &e);
  setrlimit(RLIMIT_FSIZE, &old);
  assert_int_equal(rc, NNRT_E_IO);
  assert_contains(e.msg, "write failed");
  size_t n1;
  char *after = read_bytes(p, &n1);
  assert_int_equal(n0, n1);
  assert_memory_equal(before, after, n0);
  assert_int_equal(tmp_count(t), 1); /* no PATH.tmp.XXXXXX left */
  free(before);
  free(after);
  /* A folder that does not exist: a clear error, nothing created. */
  assert_int_equal(nnrt_st_write(tpath(t, "no/such/dir/w.safetensors"), &a, 1,
                                 NULL, 0, &e), NNRT_E_IO);
  assert_contains(e.msg, "cannot create a temporary file");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_roundtrip, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_json_details, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_malformed, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_every_truncation, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_write_rejects, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_atomic_failure, tmp_setup,
                                      tmp_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

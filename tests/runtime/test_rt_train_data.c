/*
** test_rt_train_data.c: nnrt_data_load and nnrt_data_gather, the data of
** the train and eval commands: each source kind (NPZ members, CSV columns
** with and without a header, text blocks shifted by one, IDX u8 into an
** f32 input of another per-sample shape), the kind guessed from a file
** name, relative paths, dtype conversion and each malformed case's
** message.
*/
#include "rt_test.h"

static NnrtTensorDesc two_inputs[2] = {
    {.name = "a", .dtype = NNRT_F32, .rank = 2, .dims = {2, 3}, .batch_dim = 0},
    {.name = "b", .dtype = NNRT_I32, .rank = 1, .dims = {2}, .batch_dim = 0}};

static NnrtModel model_of(NnrtTensorDesc *in, int n) {
  return (NnrtModel){.abi_version = NNRT_ABI_VERSION, .name = "dm",
                     .ntrain_inputs = n, .train_inputs = in};
}

static const char *const ab[2] = {"a", "b"};

/* NPZ members f64 [5,3] and i64 [5] into f32 [B,3] and i32 [B]. */
static void test_npz(void **state) {
  Tmp *t = *state;
  double feat[15];
  int64_t lab[5] = {4, 3, 2, 1, 0};
  for (int i = 0; i < 15; i++) feat[i] = i * 0.5;
  NnrtTensor ts[2] = {
      {.name = "feat", .dtype = NNRT_F64, .rank = 2, .dims = {5, 3}, .data = feat,
       .nbytes = sizeof feat},
      {.name = "lab", .dtype = NNRT_I64, .rank = 1, .dims = {5}, .data = lab,
       .nbytes = sizeof lab}};
  const char *path = tpath(t, "d.npz");
  assert_int_equal(nnrt_npz_write(path, ts, 2, NULL), 0);
  const char *files[1] = {path}, *keys[2] = {"feat", "lab"};
  NnrtDataSource src = {.kind = NNRT_DATA_NPZ, .nnames = 2, .names = ab,
                        .nfiles = 1, .files = files, .keys = keys};
  NnrtModel m = model_of(two_inputs, 2);
  NnrtData d;
  NnrtErr e = {0};
  if (nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e)) fail_msg("%s", e.msg);
  assert_int_equal(d.n, 5);
  int64_t idx[2] = {4, 1};
  float a[6];
  int32_t b[2];
  nnrt_data_gather(&d, 0, idx, 2, a);
  nnrt_data_gather(&d, 1, idx, 2, b);
  float wa[6] = {6, 6.5, 7, 1.5, 2, 2.5};
  assert_memory_equal(a, wa, sizeof a);
  assert_int_equal(b[0], 0);
  assert_int_equal(b[1], 3);
  nnrt_data_free(&d);
  /* a missing member */
  keys[1] = "labels";
  assert_int_equal(nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e),
                   NNRT_E_NOTFOUND);
  assert_contains(e.msg, "d.npz: no array 'labels' for input 'b' (the file "
                         "has: feat lab)");
  /* the kind from the name; the member is the input's name */
  ts[0].name = "a", ts[1].name = "b";
  const char *p2 = tpath(t, "e.npz");
  assert_int_equal(nnrt_npz_write(p2, ts, 2, NULL), 0);
  char oa[300], ob[300];
  snprintf(oa, sizeof oa, "a=%s", p2);
  snprintf(ob, sizeof ob, "b=%s", p2);
  const char *over[2] = {oa, ob};
  if (nnrt_data_load(&m, NULL, over, 2, "eval data", &d, &e)) fail_msg("%s", e.msg);
  assert_int_equal(d.n, 5);
  nnrt_data_free(&d);
  assert_int_equal(nnrt_data_load(&m, NULL, over, 1, "eval data", &d, &e), NNRT_E_ARG);
  assert_string_equal(e.msg, "eval data: nothing fills input 'b' (pass "
                             "--eval-data b=FILE)");
  const char *odd[1] = {"a=file.bin"};
  assert_int_equal(nnrt_data_load(&m, NULL, odd, 1, "eval data", &d, &e), NNRT_E_ARG);
  assert_contains(e.msg, "cannot tell the format of 'file.bin' for input 'a'");
}

/* CSV: three columns fill a, the fourth b; a header row is detected. */
static void test_csv(void **state) {
  Tmp *t = *state;
  const char *path = tpath(t, "d.csv");
  const char *files[1] = {path};
  NnrtDataSource src = {.kind = NNRT_DATA_CSV, .nnames = 2, .names = ab,
                        .nfiles = 1, .files = files};
  NnrtModel m = model_of(two_inputs, 2);
  NnrtData d;
  NnrtErr e = {0};
  const char *text = "f0,f1,f2,label\n1,2,3,0\n4,5,6,1\n7,8,9,2\n";
  write_bytes(path, text, strlen(text));
  if (nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e)) fail_msg("%s", e.msg);
  assert_int_equal(d.n, 3);
  int64_t idx[2] = {2, 0};
  float a[6];
  int32_t b[2];
  nnrt_data_gather(&d, 0, idx, 2, a);
  nnrt_data_gather(&d, 1, idx, 2, b);
  float wa[6] = {7, 8, 9, 1, 2, 3};
  assert_memory_equal(a, wa, sizeof a);
  assert_true(b[0] == 2 && b[1] == 0);
  nnrt_data_free(&d);
  /* a label that is not an integer */
  text = "1,2,3,0\n4,5,6,1.5\n";
  write_bytes(path, text, strlen(text));
  assert_int_equal(nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e), NNRT_E_FORMAT);
  assert_contains(e.msg, "d.csv: sample 1: value 1.5 for input 'b' is not an "
                         "integer of its dtype i32");
  /* too many columns */
  text = "1,2,3,0,9\n";
  write_bytes(path, text, strlen(text));
  assert_int_equal(nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e), NNRT_E_MISMATCH);
  assert_contains(e.msg, "d.csv: 5 columns, the inputs it fills take 4");
  /* a bad number below the first row is reported as such */
  text = "1,2,3,0\n1,x,3,0\n";
  write_bytes(path, text, strlen(text));
  assert_int_equal(nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e), NNRT_E_FORMAT);
  assert_contains(e.msg, "d.csv:2:3: bad number 'x'");
  /* a range limit */
  int64_t lim[2] = {0, 2};
  m.train_input_limits = lim;
  text = "1,2,3,0\n1,2,3,2\n";
  write_bytes(path, text, strlen(text));
  assert_int_equal(nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e), NNRT_E_FORMAT);
  assert_contains(e.msg, "d.csv: sample 1: 'b' is 2, outside [0, 2)");
}

/* Text blocks: x = ids[k, k+3), y = ids[k+1, k+4); a relative path. */
static void test_text(void **state) {
  Tmp *t = *state;
  NnrtTensorDesc in[2] = {
      {.name = "x", .dtype = NNRT_I32, .rank = 2, .dims = {2, 3}, .batch_dim = 0},
      {.name = "y", .dtype = NNRT_I64, .rank = 2, .dims = {2, 3}, .batch_dim = 0}};
  NnrtModel m = model_of(in, 2);
  const char *names[2] = {"x", "y"}, *files[1] = {"corpus.txt"};
  NnrtDataSource src = {.kind = NNRT_DATA_TEXT, .nnames = 2, .names = names,
                        .nfiles = 1, .files = files, .block = 3};
  write_bytes(tpath(t, "corpus.txt"), "hello world", 11);
  char cwd[512];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(t->dir), 0);
  NnrtData d;
  NnrtErr e = {0};
  int rc = nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e);
  assert_int_equal(chdir(cwd), 0);
  if (rc) fail_msg("%s", e.msg);
  assert_int_equal(d.n, 8);
  /* vocabulary " dehlorw": h=3 e=2 l=4 o=5 ' '=0 w=7 r=6 d=1 */
  int64_t idx[2] = {0, 4};
  int32_t x[6];
  int64_t y[6];
  nnrt_data_gather(&d, 0, idx, 2, x);
  nnrt_data_gather(&d, 1, idx, 2, y);
  int32_t wx[6] = {3, 2, 4, 5, 0, 7};
  int64_t wy[6] = {2, 4, 4, 0, 7, 5};
  assert_memory_equal(x, wx, sizeof x);
  assert_memory_equal(y, wy, sizeof y);
  nnrt_data_free(&d);
  int64_t lim[2] = {4, 4};
  m.train_input_limits = lim;
  char over[300], over2[300];
  snprintf(over, sizeof over, "x=%s", tpath(t, "corpus.txt"));
  snprintf(over2, sizeof over2, "y=%s", tpath(t, "corpus.txt"));
  const char *ov[2] = {over, over2};
  assert_int_equal(nnrt_data_load(&m, &src, ov, 2, "train data", &d, &e), NNRT_E_FORMAT);
  assert_contains(e.msg, "corpus.txt: 8 distinct symbols, input 'x' takes ids below 4");
  /* a block length that does not fit the input */
  m.train_input_limits = NULL;
  src.block = 5;
  assert_int_equal(nnrt_data_load(&m, &src, ov, 2, "train data", &d, &e), NNRT_E_MISMATCH);
  assert_contains(e.msg, "text blocks of 5 ids do not fit input 'x'");
}

/* IDX u8 [3,2,2] images into an f32 [B,4] input, labels u8 into i32. */
static void test_idx_convert(void **state) {
  Tmp *t = *state;
  NnrtTensorDesc in[2] = {
      {.name = "image", .dtype = NNRT_F32, .rank = 2, .dims = {2, 4}, .batch_dim = 0},
      {.name = "label", .dtype = NNRT_I32, .rank = 1, .dims = {2}, .batch_dim = 0}};
  NnrtModel m = model_of(in, 2);
  uint8_t img[12], lab[3] = {9, 0, 255};
  for (int i = 0; i < 12; i++) img[i] = (uint8_t)(i * 20);
  NnrtTensor ti = {.dtype = NNRT_U8, .rank = 3, .dims = {3, 2, 2}, .data = img,
                   .nbytes = 12};
  NnrtTensor tl = {.dtype = NNRT_U8, .rank = 1, .dims = {3}, .data = lab,
                   .nbytes = 3};
  const char *pi = tpath(t, "i-ubyte"), *pl = tpath(t, "l-ubyte");
  assert_int_equal(nnrt_idx_write(pi, &ti, NULL), 0);
  assert_int_equal(nnrt_idx_write(pl, &tl, NULL), 0);
  const char *names[2] = {"image", "label"}, *files[2] = {pi, pl};
  NnrtDataSource src = {.kind = NNRT_DATA_IDX, .nnames = 2, .names = names,
                        .nfiles = 2, .files = files};
  NnrtData d;
  NnrtErr e = {0};
  if (nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e)) fail_msg("%s", e.msg);
  int64_t idx[2] = {2, 0};
  float x[8];
  int32_t y[2];
  nnrt_data_gather(&d, 0, idx, 2, x);
  nnrt_data_gather(&d, 1, idx, 2, y);
  float wx[8] = {160, 180, 200, 220, 0, 20, 40, 60};
  assert_memory_equal(x, wx, sizeof x);
  assert_true(y[0] == 255 && y[1] == 9);
  nnrt_data_free(&d);
  /* a u8 input keeps the bytes; a 3-value image does not fit */
  in[0].dtype = NNRT_U8;
  if (nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e)) fail_msg("%s", e.msg);
  uint8_t xb[8];
  nnrt_data_gather(&d, 0, idx, 2, xb);
  assert_memory_equal(xb, img + 8, 4);
  assert_memory_equal(xb + 4, img, 4);
  nnrt_data_free(&d);
  in[0].dims[1] = 3;
  assert_int_equal(nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e), NNRT_E_MISMATCH);
  assert_contains(e.msg, "i-ubyte: array of shape [3,2,2] does not fit input "
                         "'image' u8[2,3] (samples of shape [3] expected)");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_npz, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_csv, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_text, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_idx_convert, tmp_setup, tmp_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
** test_rt_driver.c: nnrt_main end to end on a model descriptor written by
** hand, with a forward function in C standing in for generated code:
**   inputs  x f32[2,3]
**   outputs y f32[2,3] = x * s + b,  sum f32[2] = row sums of y
**   params  b f32[3] = normal(std: 0.5), s f32[] = ones
**   state   count i32[1] = zeros (incremented by each forward)
** Checks info's lines, init --save (deterministic, any thread count),
** predict on NPY inputs, the descriptor checks, and every bad input's
** message and exit status.
*/
#include "rt_test.h"

static int fake_forward(void *ctx, void *const *in, void *const *out) {
  NnrtInstance *inst = ctx;
  const NnrtModel *m = inst->model;
  const float *b = NNRT_PARAM_PTR(inst, &m->params[0]);
  const float *s = NNRT_PARAM_PTR(inst, &m->params[1]);
  int32_t *count = NNRT_PARAM_PTR(inst, &m->states[0]);
  const float *x = in[0];
  float *y = out[0], *sum = out[1];
  if ((uintptr_t)x % 64 || (uintptr_t)y % 64 || !inst->arena) return 7;
  for (int i = 0; i < 2; i++) {
    sum[i] = 0;
    for (int j = 0; j < 3; j++) {
      y[i * 3 + j] = x[i * 3 + j] * *s + b[j];
      sum[i] += y[i * 3 + j];
    }
  }
  (*count)++;
  return 0;
}

static const NnrtInitArg b_args[1] = {{"std", 0.5}};
static const NnrtTensorDesc inputs[1] = {
    {.name = "x", .dtype = NNRT_F32, .rank = 2, .dims = {2, 3}, .batch_dim = 0}};
static const NnrtTensorDesc outputs[2] = {
    {.name = "y", .dtype = NNRT_F32, .rank = 2, .dims = {2, 3}, .batch_dim = 0},
    {.name = "sum", .dtype = NNRT_F32, .rank = 1, .dims = {2}, .batch_dim = 0}};
static const NnrtTensorDesc params[2] = {
    {.name = "b", .dtype = NNRT_F32, .rank = 1, .dims = {3}, .batch_dim = -1,
     .init = "normal", .init_args = b_args, .ninit_args = 1, .offset = 0},
    {.name = "s", .dtype = NNRT_F32, .rank = 0, .batch_dim = -1,
     .init = "ones", .offset = 64}};
static const NnrtTensorDesc states[1] = {
    {.name = "count", .dtype = NNRT_I32, .rank = 1, .dims = {1},
     .batch_dim = -1, .init = "zeros", .offset = 128}};

static const NnrtModel fake = {
    .abi_version = NNRT_ABI_VERSION, .name = "fake", .arena_bytes = 1024,
    .param_bytes = 192, .ninputs = 1, .noutputs = 2, .nparams = 2,
    .nstates = 1, .inputs = inputs, .outputs = outputs, .params = params,
    .states = states, .forward = fake_forward, .flops_forward = 24,
    .seed = 1};

#define RUN(...) run_main(&fake, "./fake", (const char *[]){__VA_ARGS__, NULL})

static void test_info(void **state) {
  Run r = RUN("info");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.out,
                      "model: fake\n"
                      "inputs:\n"
                      "  x: f32[2,3] (batch axis 0)\n"
                      "outputs:\n"
                      "  y: f32[2,3] (batch axis 0)\n"
                      "  sum: f32[2] (batch axis 0)\n"
                      "parameters: 2 tensors, 4 values\n"
                      "  b: f32[3] = normal(std: 0.5)\n"
                      "  s: f32[] = ones\n"
                      "states: 1 tensors, 1 values\n"
                      "  count: i32[1] = zeros\n"
                      "arena bytes: 1024\n"
                      "parameter bytes: 192\n"
                      "flops per forward: 24\n");
  assert_string_equal(r.err, "");
  run_free(&r);
  r = RUN("--help");
  assert_int_equal(r.status, 0);
  assert_contains(r.out, "usage: fake [--threads N] COMMAND [OPTIONS]");
  assert_contains(r.out, "init --save W.safetensors [--seed S]");
  assert_contains(r.out, "predict --weights W.safetensors --input [NAME=]FILE.npy");
  run_free(&r);
}

static void test_init(void **state) {
  Tmp *t = *state;
  const char *w = tpath(t, "w.safetensors"), *w2 = tpath(t, "w2.safetensors");
  Run r = RUN("init", "--save", w, "--seed", "5");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err, "");
  run_free(&r);
  NnrtTensorFile f;
  NnrtErr e = {0};
  assert_int_equal(nnrt_st_read(w, &f, &e), 0);
  assert_int_equal(f.n, 3);
  assert_string_equal(nnrt_tf_meta(&f, "model"), "fake");
  float b[3];
  int64_t d3[1] = {3};
  assert_int_equal(nnrt_init_tensor(b, d3, 1, "normal", b_args, 1, 5, 0, NULL), 0);
  const NnrtTensor *tb = nnrt_tf_find(&f, "b"), *ts = nnrt_tf_find(&f, "s"),
                   *tc = nnrt_tf_find(&f, "count");
  assert_memory_equal(tb->data, b, sizeof b);
  assert_true(b[0] != 0 && b[0] != b[1]);
  float one;
  memcpy(&one, ts->data, 4);
  assert_true(one == 1);
  assert_int_equal(tc->dtype, NNRT_I32);
  assert_int_equal(*(int32_t *)tc->data, 0);
  nnrt_tf_free(&f);
  /* the same seed on 2 threads gives the same file; another seed differs */
  r = RUN("--threads", "2", "init", "--save", w2, "--seed", "5");
  assert_int_equal(r.status, 0);
  run_free(&r);
  size_t n1, n2;
  char *a = read_bytes(w, &n1), *c = read_bytes(w2, &n2);
  assert_int_equal(n1, n2);
  assert_memory_equal(a, c, n1);
  free(c);
  r = RUN("init", "--save", w2, "--threads", "1");
  assert_int_equal(r.status, 0);
  run_free(&r);
  c = read_bytes(w2, &n2);
  assert_true(n1 == n2 && memcmp(a, c, n1) != 0);
  free(a);
  free(c);
  nnrt_set_threads(0);
  r = RUN("init");
  assert_int_equal(r.status, 2);
  assert_string_equal(r.err, "fake: init: --save W.safetensors is required\n");
  run_free(&r);
  r = RUN("init", "--save", w, "--seed", "-3");
  assert_int_equal(r.status, 2);
  assert_contains(r.err, "--seed needs a non-negative integer, got '-3'");
  run_free(&r);
}

/* Weights with b = {10, 20, 30}, s = 2 (and extra or changed tensors). */
static void write_weights(const char *path, int variant) {
  float b[4] = {10, 20, 30, 40}, s = 2;
  double sd = 2;
  int32_t count = 0;
  NnrtTensor ts[4] = {
      {.name = "b", .dtype = NNRT_F32, .rank = 1, .dims = {3}, .data = b,
       .nbytes = 12},
      {.name = "s", .dtype = NNRT_F32, .rank = 0, .data = &s, .nbytes = 4},
      {.name = "count", .dtype = NNRT_I32, .rank = 1, .dims = {1},
       .data = &count, .nbytes = 4},
      {.name = "zz", .dtype = NNRT_U8, .rank = 1, .dims = {2}, .data = b,
       .nbytes = 2}};
  int n = 3;
  if (variant == 1) ts[0].dims[0] = 4, ts[0].nbytes = 16; /* wrong shape */
  if (variant == 2) ts[1] = ts[2], n = 2;                 /* 's' missing */
  if (variant == 3) n = 4;                                /* extra 'zz' */
  if (variant == 4) ts[1].dtype = NNRT_F64, ts[1].data = &sd, ts[1].nbytes = 8;
  if (variant == 5) { /* everything at once */
    ts[0].dims[0] = 4, ts[0].nbytes = 16;
    ts[1] = ts[3];
    n = 2;
  }
  assert_int_equal(nnrt_st_write(path, ts, n, NULL, 0, NULL), 0);
}

static void write_input(const char *path, int rows, NnrtDType dt) {
  float x[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9}; /* room for f64 */
  NnrtTensor t = {.dtype = dt, .rank = 2, .dims = {rows, 3}, .data = x,
                  .nbytes = (size_t)rows * 3 * nnrt_dtype_size(dt)};
  assert_int_equal(nnrt_npy_write(path, &t, NULL), 0);
}

static void test_predict(void **state) {
  Tmp *t = *state;
  const char *w = tpath(t, "w.safetensors"), *x = tpath(t, "x.npy"),
             *y = tpath(t, "y.npy"), *s = tpath(t, "s.npy");
  write_weights(w, 0);
  write_input(x, 2, NNRT_F32);
  char xi[300], yo[300], so[300];
  snprintf(xi, sizeof xi, "x=%s", x);
  snprintf(yo, sizeof yo, "y=%s", y);
  snprintf(so, sizeof so, "sum=%s", s);
  Run r = RUN("predict", "--weights", w, "--input", xi, "--output", yo,
              "--output", so, "--threads", "2");
  assert_int_equal(r.status, 0);
  assert_string_equal(r.err, "");
  run_free(&r);
  nnrt_set_threads(0);
  NnrtTensor ty, tsum;
  assert_int_equal(nnrt_npy_read(y, &ty, NULL), 0);
  assert_int_equal(ty.rank, 2);
  float want[6] = {12, 24, 36, 18, 30, 42}, wsum[2] = {72, 90};
  assert_memory_equal(ty.data, want, sizeof want);
  assert_int_equal(nnrt_npy_read(s, &tsum, NULL), 0);
  assert_memory_equal(tsum.data, wsum, sizeof wsum);
  nnrt_tensor_free(&ty);
  nnrt_tensor_free(&tsum);
  /* one input may go without its name; outputs not asked for are skipped */
  unlink(y);
  r = RUN("predict", "--weights", w, "--input", x, "--output", so);
  assert_int_equal(r.status, 0);
  assert_int_equal(access(y, F_OK), -1);
  run_free(&r);
  /* two outputs: a bare file name is ambiguous */
  r = RUN("predict", "--weights", w, "--input", x, "--output", y);
  assert_int_equal(r.status, 2);
  assert_contains(r.err, "does not name an output of model 'fake' (y, sum); "
                         "write --output NAME=FILE.npy");
  run_free(&r);
}

static void expect_fail(Run r, int status, const char *want) {
  if (r.status != status)
    fail_msg("status %d, expected %d; stderr: %s", r.status, status, r.err);
  assert_contains(r.err, want);
  assert_string_equal(r.out, "");
  run_free(&r);
}

static void test_bad_inputs(void **state) {
  Tmp *t = *state;
  const char *w = tpath(t, "w.safetensors"), *x = tpath(t, "x.npy"),
             *y = tpath(t, "y.npy"), *nw = tpath(t, "none.safetensors");
  char buf[400], yo[300];
  snprintf(yo, sizeof yo, "y=%s", y);
  write_input(x, 2, NNRT_F32);
  expect_fail(RUN("predict", "--weights", nw, "--input", x, "--output", yo), 1,
              "none.safetensors: No such file or directory");
  write_weights(w, 1);
  snprintf(buf, sizeof buf, "fake: %s: tensor 'b' has shape [4], the model "
           "expects [3]\n", w);
  Run r = RUN("predict", "--weights", w, "--input", x, "--output", yo);
  assert_int_equal(r.status, 1);
  assert_string_equal(r.err, buf);
  run_free(&r);
  write_weights(w, 2);
  expect_fail(RUN("predict", "--weights", w, "--input", x, "--output", yo), 1,
              "missing tensor 's' (the model expects f32[])");
  write_weights(w, 3);
  expect_fail(RUN("predict", "--weights", w, "--input", x, "--output", yo), 1,
              "extra tensor 'zz' (u8[2]) is not in model 'fake'");
  write_weights(w, 4);
  expect_fail(RUN("predict", "--weights", w, "--input", x, "--output", yo), 1,
              "tensor 's' has dtype F64, the model expects F32");
  write_weights(w, 5); /* every difference, one line each */
  r = RUN("predict", "--weights", w, "--input", x, "--output", yo);
  assert_int_equal(r.status, 1);
  snprintf(buf, sizeof buf,
           "fake: %s: tensor 'b' has shape [4], the model expects [3]\n"
           "%s: missing tensor 's' (the model expects f32[])\n"
           "%s: missing tensor 'count' (the model expects i32[1])\n"
           "%s: extra tensor 'zz' (u8[2]) is not in model 'fake'\n", w, w, w, w);
  assert_string_equal(r.err, buf);
  run_free(&r);
  /* wrong input shape, then dtype */
  write_weights(w, 0);
  write_input(x, 3, NNRT_F32);
  snprintf(buf, sizeof buf, "fake: %s: input 'x' has shape [3,3], the model "
           "expects [2,3]\n", x);
  r = RUN("predict", "--weights", w, "--input", x, "--output", yo);
  assert_int_equal(r.status, 1);
  assert_string_equal(r.err, buf);
  run_free(&r);
  write_input(x, 2, NNRT_F64);
  expect_fail(RUN("predict", "--weights", w, "--input", x, "--output", yo), 1,
              "input 'x' has dtype f64, the model expects f32");
  write_bytes(x, "garbage", 7);
  expect_fail(RUN("predict", "--weights", w, "--input", x, "--output", yo), 1,
              "x.npy: not an NPY file (bad magic)");
  /* a truncated weights file */
  write_weights(w, 0);
  size_t n;
  char *raw = read_bytes(w, &n);
  write_bytes(w, raw, n - 3);
  free(raw);
  write_input(x, 2, NNRT_F32);
  expect_fail(RUN("predict", "--weights", w, "--input", x, "--output", yo), 1,
              "outside the data section");
  assert_int_equal(access(y, F_OK), -1); /* no output on failure */
  /* usage errors */
  expect_fail(RUN("predict", "--input", x, "--output", yo), 2,
              "predict: --weights W.safetensors is required");
  expect_fail(RUN("predict", "--weights", w, "--output", yo), 2,
              "predict: missing --input x=FILE.npy");
  expect_fail(RUN("predict", "--weights", w, "--input", x), 2,
              "predict: --output [NAME=]FILE.npy is required");
  expect_fail(RUN("frobnicate"), 2, "unknown command 'frobnicate'");
  expect_fail(RUN("train"), 2, "'train' is not available");
  expect_fail(RUN("--threads", "0", "info"), 2,
              "--threads needs a positive integer, got '0'");
  expect_fail(RUN("--bogus"), 2, "unknown option '--bogus'");
  r = RUN("info", "extra");
  assert_int_equal(r.status, 2);
  run_free(&r);
  char *none[] = {"./fake", NULL};
  FILE *o = tmpfile(), *er = tmpfile();
  assert_int_equal(nnrt_main_io(&fake, 1, none, o, er), 2);
  char *eo = slurp(er);
  assert_contains(eo, "usage: fake");
  free(eo);
  fclose(o);
}

static void test_descriptor_checks(void **state) {
  NnrtModel m = fake;
  NnrtTensorDesc p[2] = {params[0], params[1]};
  NnrtErr e = {0};
  assert_int_equal(nnrt_model_check(&fake, &e), 0);
  m.params = p;
  p[1].offset = 8; /* overlaps b (12 bytes at 0) */
  assert_int_equal(nnrt_model_check(&m, &e), NNRT_E_ARG);
  assert_string_equal(e.msg, "model 'fake': 'b' and 's' overlap in the "
                             "parameter block");
  p[1].offset = 190; /* past the block and misaligned */
  assert_int_equal(nnrt_model_check(&m, &e), NNRT_E_ARG);
  assert_contains(e.msg, "parameter 's' at offset 190");
  p[1] = params[1];
  p[1].name = "b";
  assert_int_equal(nnrt_model_check(&m, &e), NNRT_E_ARG);
  assert_contains(e.msg, "duplicate parameter 'b'");
  m = fake;
  m.abi_version = 99;
  assert_int_equal(nnrt_model_check(&m, &e), NNRT_E_ARG);
  assert_contains(e.msg, "ABI version 99");
  Run r = run_main(&m, "./fake", (const char *[]){"info", NULL});
  assert_int_equal(r.status, 1);
  run_free(&r);
  /* an unknown initialiser surfaces at init with the tensor's name */
  m = fake;
  p[0] = params[0];
  p[1] = params[1];
  p[1].init = "golden";
  m.params = p;
  NnrtInstance inst;
  assert_int_equal(nnrt_instance_new(&m, &inst, &e), 0);
  assert_int_equal((uintptr_t)inst.params % 64, 0);
  assert_int_equal(nnrt_instance_init(&inst, 1, &e), NNRT_E_ARG);
  assert_string_equal(e.msg, "parameter 's': unknown initialiser 'golden'");
  nnrt_instance_free(&inst);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_info),
      cmocka_unit_test_setup_teardown(test_init, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_predict, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_bad_inputs, tmp_setup, tmp_teardown),
      cmocka_unit_test(test_descriptor_checks),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

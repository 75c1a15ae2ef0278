/*
** test_rt_example_data.c: the NPZ files shipped for the examples, read by
** the runtime as the examples' train blocks read them:
**   examples/data/shapes.npz          (examples/unet.nn, gen_shapes.py)
**   examples/data/selective_copy.npz  (examples/mamba_copy.nn,
**                                      gen_selective_copy.py)
** Each file: exactly the members x and y with the dtypes and per-sample
** shapes the model's inputs declare (batch axis first, equal sample
** counts), the values the task defines (pixel values in [0, 1] and classes
** below 4, brighter shapes than background in every image; the data tokens
** of every sequence, in order, are its target), and nnrt_data_load filling
** a descriptor with the model's train inputs and label limits.
*/
#include "rt_test.h"

/* NNRT_TEST_DATA is tests/runtime/data */
#define EXAMPLE_DATA NNRT_TEST_DATA "/../../../examples/data"

/* Fails unless t is dtype dt of rank `rank` with dims[1..] = want[1..]
** (dims[0], the sample count, is returned; want[0] is ignored). */
static int64_t check_member(const NnrtTensor *t, const char *name,
                            NnrtDType dt, int rank, const int64_t *want) {
  char got[96], exp[96];
  int64_t w[NNRT_MAX_RANK];
  if (!t) fail_msg("no member '%s'", name);
  memcpy(w, want, (size_t)rank * sizeof *w);
  w[0] = t->dims[0];
  if (t->dtype != dt)
    fail_msg("member '%s': dtype %s, expected %s", name,
             nnrt_dtype_name(t->dtype), nnrt_dtype_name(dt));
  nnrt_shape_str(got, sizeof got, t->dims, t->rank);
  nnrt_shape_str(exp, sizeof exp, w, rank);
  if (t->rank != rank) fail_msg("member '%s': shape %s, expected %s", name, got, exp);
  for (int i = 1; i < rank; i++)
    if (t->dims[i] != want[i])
      fail_msg("member '%s': shape %s, expected %s", name, got, exp);
  assert_int_equal(t->nbytes, (size_t)nnrt_numel(t->dims, t->rank) *
                                  nnrt_dtype_size(dt));
  return t->dims[0];
}

/* Loads path's members x and y as `src` does for the descriptor in[0..1]
** (each input's dims[0] is the batch) with label limits lim; returns the
** sample count. */
static int64_t load_as_model(const char *path, NnrtTensorDesc *in,
                             const int64_t *lim) {
  static const char *const keys[2] = {"x", "y"};
  const char *names[2] = {in[0].name, in[1].name}, *files[1] = {path};
  NnrtDataSource src = {.kind = NNRT_DATA_NPZ, .nnames = 2, .names = names,
                        .nfiles = 1, .files = files, .keys = keys};
  NnrtModel m = {.abi_version = NNRT_ABI_VERSION, .name = "example",
                 .ntrain_inputs = 2, .train_inputs = in,
                 .train_input_limits = lim, .batch = in[0].dims[0]};
  NnrtData d;
  NnrtErr e = {0};
  if (nnrt_data_load(&m, &src, NULL, 0, "train data", &d, &e))
    fail_msg("%s", e.msg);
  int64_t n = d.n;
  assert_int_equal(d.ncols, 2);
  assert_int_equal(d.cols[0].row, (size_t)nnrt_numel(in[0].dims + 1, in[0].rank - 1) *
                                      nnrt_dtype_size(in[0].dtype));
  nnrt_data_free(&d);
  return n;
}

/* examples/unet.nn: input image: f32[B, 1, S, S], input mask: i32[B, S, S]
** with S = 32, K = 4 classes; batch 16. */
static void test_shapes(void **state) {
  (void)state;
  enum { S = 32, K = 4, BATCH = 16 };
  const char *path = EXAMPLE_DATA "/shapes.npz";
  NnrtTensorFile f;
  NnrtErr e = {0};
  if (nnrt_npz_read(path, &f, &e)) fail_msg("%s", e.msg);
  assert_int_equal(f.n, 2);
  const NnrtTensor *x = nnrt_tf_find(&f, "x"), *y = nnrt_tf_find(&f, "y");
  int64_t wx[4] = {0, 1, S, S}, wy[3] = {0, S, S};
  int64_t n = check_member(x, "x", NNRT_F32, 4, wx);
  assert_int_equal(check_member(y, "y", NNRT_I32, 3, wy), n);
  assert_true(n >= 8 * BATCH);

  float *px = malloc(x->nbytes);
  int32_t *py = malloc(y->nbytes);
  assert_non_null(px);
  assert_non_null(py);
  memcpy(px, x->data, x->nbytes); /* the data may be unaligned */
  memcpy(py, y->data, y->nbytes);
  int64_t count[K] = {0};
  for (int64_t s = 0; s < n; s++) {
    const float *img = px + s * S * S;
    const int32_t *lab = py + s * S * S;
    double fg = 0, bg = 0;
    int64_t nfg = 0;
    for (int i = 0; i < S * S; i++) {
      if (!(img[i] >= 0.0f && img[i] <= 1.0f))
        fail_msg("x[%lld]: pixel %d is %g", (long long)s, i, (double)img[i]);
      if (lab[i] < 0 || lab[i] >= K)
        fail_msg("y[%lld]: pixel %d has class %d", (long long)s, i, lab[i]);
      count[lab[i]]++;
      if (lab[i]) fg += img[i], nfg++;
      else bg += img[i];
    }
    /* every image has a shape, drawn brighter than its background (the
    ** levels are at least 0.25 apart): x and y are the same samples */
    if (nfg == 0) fail_msg("y[%lld]: no shape", (long long)s);
    if (!(fg / (double)nfg > bg / (double)(S * S - nfg) + 0.15))
      fail_msg("sample %lld: shapes %g, background %g", (long long)s,
               fg / (double)nfg, bg / (double)(S * S - nfg));
  }
  for (int k = 0; k < K; k++)
    if (count[k] < n * S * S / 100)
      fail_msg("class %d covers %lld of %lld pixels", k, (long long)count[k],
               (long long)(n * S * S));
  free(px);
  free(py);
  nnrt_tf_free(&f);

  NnrtTensorDesc in[2] = {
      {.name = "image", .dtype = NNRT_F32, .rank = 4, .dims = {BATCH, 1, S, S},
       .batch_dim = 0},
      {.name = "mask", .dtype = NNRT_I32, .rank = 3, .dims = {BATCH, S, S},
       .batch_dim = 0}};
  int64_t lim[2] = {0, K};
  assert_int_equal(load_as_model(path, in, lim), n);
}

/* examples/mamba_copy.nn: input x: i32[B, L], input y: i32[B, K] with
** V = 16 (0 noise, 1..14 data, 15 marker), L = 256, K = 16; batch 32. */
static void test_selective_copy(void **state) {
  (void)state;
  enum { V = 16, L = 256, K = 16, BATCH = 32 };
  const char *path = EXAMPLE_DATA "/selective_copy.npz";
  NnrtTensorFile f;
  NnrtErr e = {0};
  if (nnrt_npz_read(path, &f, &e)) fail_msg("%s", e.msg);
  assert_int_equal(f.n, 2);
  const NnrtTensor *x = nnrt_tf_find(&f, "x"), *y = nnrt_tf_find(&f, "y");
  int64_t wx[2] = {0, L}, wy[2] = {0, K};
  int64_t n = check_member(x, "x", NNRT_I32, 2, wx);
  assert_int_equal(check_member(y, "y", NNRT_I32, 2, wy), n);
  assert_true(n >= 100 * BATCH);

  int32_t *px = malloc(x->nbytes), *py = malloc(y->nbytes);
  assert_non_null(px);
  assert_non_null(py);
  memcpy(px, x->data, x->nbytes);
  memcpy(py, y->data, y->nbytes);
  int64_t first_pos_sum = 0;
  for (int64_t s = 0; s < n; s++) {
    const int32_t *seq = px + s * L, *tgt = py + s * K;
    int k = 0;
    for (int i = 0; i < L - K; i++) {
      if (seq[i] == 0) continue;
      if (seq[i] < 1 || seq[i] > V - 2)
        fail_msg("x[%lld, %d] = %d: not noise nor data", (long long)s, i, seq[i]);
      if (k == K) fail_msg("x[%lld]: more than %d data tokens", (long long)s, K);
      if (seq[i] != tgt[k])
        fail_msg("x[%lld]: data token %d is %d, y says %d", (long long)s, k,
                 seq[i], tgt[k]);
      if (k == 0) first_pos_sum += i;
      k++;
    }
    if (k != K) fail_msg("x[%lld]: %d data tokens", (long long)s, k);
    for (int i = L - K; i < L; i++)
      if (seq[i] != V - 1)
        fail_msg("x[%lld, %d] = %d: not the marker", (long long)s, i, seq[i]);
  }
  /* the positions are spread: the first data token is not always at the
  ** start (its mean over uniform positions is about (L - K) / (K + 1)) */
  double mean_first = (double)first_pos_sum / (double)n;
  assert_true(mean_first > 8.0 && mean_first < 20.0);
  free(px);
  free(py);
  nnrt_tf_free(&f);

  NnrtTensorDesc in[2] = {
      {.name = "x", .dtype = NNRT_I32, .rank = 2, .dims = {BATCH, L}, .batch_dim = 0},
      {.name = "y", .dtype = NNRT_I32, .rank = 2, .dims = {BATCH, K}, .batch_dim = 0}};
  int64_t lim[2] = {V, V};
  assert_int_equal(load_as_model(path, in, lim), n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_shapes),
      cmocka_unit_test(test_selective_copy),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

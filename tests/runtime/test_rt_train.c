/*
** test_rt_train.c: the `train` and `eval` commands of nnrt_main on model
** descriptors written by hand, with entry points in C standing in for
** generated code.  Model "lin" is a linear regression trained by SGD:
**   train inputs x f32[4,2], y f32[4]; params w f32[2], b f32[];
**   states opt.step i64[], avg.w f32[2], avg.b f32[] (polyak means);
**   train_step: r = x w + b - y (per sample, in a parallel-for), loss =
**   mean r^2, mae = mean |r|, lr = 0.1 / (1 + 0.1 epoch) * (1 - 0.5
**   step / total_steps), w -= lr dloss/dw, b -= lr dloss/db;
**   eval_step: loss and mae; average: the polyak means.
** Model "cls" reads IDX images u8[4,2,2] and labels i32[4].
** Checks convergence, the closed form of full-batch steps, running means,
** the shuffle, thread independence, resume after a failure and after
** SIGINT (bit-identical files), malformed data with the checkpoint left
** intact, the CSV log and eval.
*/
#include "rt_test.h"

#include <math.h>
#include <signal.h>
#include <stdbool.h>

/* What the fake train_step does besides training (test settings). */
static struct {
  int64_t raise_at, fail_at, nan_at; /* 1-based step numbers, 0 = never */
  int nseen;
  float seen[1024];          /* x0 of the first sample of each batch */
  int bad_epoch;             /* an epoch argument that was not an integer */
} cfg;

typedef struct Lin {
  float *w, *b, *aw, *ab;
  int64_t *step;
} Lin;

static Lin lin_of(NnrtInstance *inst) {
  const NnrtModel *m = inst->model;
  return (Lin){NNRT_PARAM_PTR(inst, &m->params[0]), NNRT_PARAM_PTR(inst, &m->params[1]),
               NNRT_PARAM_PTR(inst, &m->states[1]), NNRT_PARAM_PTR(inst, &m->states[2]),
               NNRT_PARAM_PTR(inst, &m->states[0])};
}

typedef struct Resid {
  const float *x, *y, *w, *b;
  float *r;
} Resid;

static void resid_body(int64_t begin, int64_t end, void *ctx) {
  Resid *c = ctx;
  for (int64_t i = begin; i < end; i++)
    c->r[i] = c->x[2 * i] * c->w[0] + c->x[2 * i + 1] * c->w[1] + *c->b - c->y[i];
}

/* loss and mae of the batch, and the gradients. */
static void lin_batch(NnrtInstance *inst, const float *x, const float *y,
                      float *loss, float *mae, float g[3]) {
  Lin p = lin_of(inst);
  Resid c = {x, y, p.w, p.b, inst->arena};
  nnrt_parallel_for(4, resid_body, &c);
  float l = 0, a = 0;
  g[0] = g[1] = g[2] = 0;
  for (int i = 0; i < 4; i++) {
    l += c.r[i] * c.r[i];
    a += fabsf(c.r[i]);
    g[0] += 2 * c.r[i] * x[2 * i] / 4;
    g[1] += 2 * c.r[i] * x[2 * i + 1] / 4;
    g[2] += 2 * c.r[i] / 4;
  }
  *loss = l / 4, *mae = a / 4;
}

static int lin_train(void *ctx, void *const *in, void *const *out) {
  NnrtInstance *inst = ctx;
  Lin p = lin_of(inst);
  const float *x = in[0], *y = in[1];
  float epoch = *(const float *)in[2], total = *(const float *)in[3], g[3];
  if ((uintptr_t)x % 64 || (uintptr_t)y % 64 || (uint64_t)*p.step != inst->step)
    return 7;
  if (epoch != floorf(epoch)) cfg.bad_epoch = 1;
  if (cfg.nseen < 1024) cfg.seen[cfg.nseen++] = x[0];
  float *o = out[0];
  lin_batch(inst, x, y, &o[0], out[2], g);
  float lr = 0.1f / (1 + 0.1f * epoch) * (1 - 0.5f * (float)*p.step / total);
  *(float *)out[1] = lr;
  p.w[0] -= lr * g[0], p.w[1] -= lr * g[1], *p.b -= lr * g[2];
  float t = (float)(++*p.step);
  p.aw[0] += (p.w[0] - p.aw[0]) / t, p.aw[1] += (p.w[1] - p.aw[1]) / t;
  *p.ab += (*p.b - *p.ab) / t;
  if (*p.step == cfg.raise_at) raise(SIGINT);
  if (*p.step == cfg.nan_at) o[0] = NAN;
  return *p.step == cfg.fail_at ? 9 : 0;
}

static int lin_eval(void *ctx, void *const *in, void *const *out) {
  float g[3];
  lin_batch(ctx, in[0], in[1], out[0], out[1], g);
  return 0;
}

static int lin_average(void *ctx, void *const *in, void *const *out) {
  Lin p = lin_of(ctx);
  if (in) return 5;
  float *w = out[0], *b = out[1];
  bool t0 = *p.step == 0;
  w[0] = t0 ? p.w[0] : p.aw[0], w[1] = t0 ? p.w[1] : p.aw[1];
  *b = t0 ? *p.b : *p.ab;
  return 0;
}

static int lin_forward(void *ctx, void *const *in, void *const *out) {
  Lin p = lin_of(ctx);
  const float *x = in[0];
  float *yh = out[0];
  for (int i = 0; i < 4; i++) yh[i] = x[2 * i] * p.w[0] + x[2 * i + 1] * p.w[1] + *p.b;
  return 0;
}

static const NnrtTensorDesc lin_inputs[2] = {
    {.name = "x", .dtype = NNRT_F32, .rank = 2, .dims = {4, 2}, .batch_dim = 0},
    {.name = "y", .dtype = NNRT_F32, .rank = 1, .dims = {4}, .batch_dim = 0}};
static const NnrtTensorDesc lin_outputs[1] = {
    {.name = "yhat", .dtype = NNRT_F32, .rank = 1, .dims = {4}, .batch_dim = 0}};
static const NnrtTensorDesc lin_params[2] = {
    {.name = "w", .dtype = NNRT_F32, .rank = 1, .dims = {2}, .batch_dim = -1, .offset = 0},
    {.name = "b", .dtype = NNRT_F32, .rank = 0, .batch_dim = -1, .offset = 64}};
static const NnrtTensorDesc lin_states[3] = {
    {.name = "opt.step", .dtype = NNRT_I64, .rank = 0, .batch_dim = -1, .offset = 128},
    {.name = "avg.w", .dtype = NNRT_F32, .rank = 1, .dims = {2}, .batch_dim = -1, .offset = 192},
    {.name = "avg.b", .dtype = NNRT_F32, .rank = 0, .batch_dim = -1, .offset = 256}};
static const char *const lin_metrics[1] = {"mae"};
static const char *const lin_names[2] = {"x", "y"};
static const char *const lin_files[2] = {"x.npy", "y.npy"};
static const NnrtDataSource lin_data = {.kind = NNRT_DATA_NPY, .nnames = 2,
                                        .names = lin_names, .nfiles = 2,
                                        .files = lin_files};

static const NnrtModel lin = {
    .abi_version = NNRT_ABI_VERSION, .name = "lin", .arena_bytes = 64,
    .param_bytes = 320, .ninputs = 1, .noutputs = 1, .nparams = 2,
    .nstates = 3, .inputs = lin_inputs, .outputs = lin_outputs,
    .params = lin_params, .states = lin_states, .forward = lin_forward,
    .train_step = lin_train, .eval_step = lin_eval, .flops_forward = 16,
    .seed = 3, .ntrain_inputs = 2, .train_inputs = lin_inputs,
    .average = lin_average, .nmetrics = 1, .metric_names = lin_metrics,
    .train_metrics = 1, .data = &lin_data, .batch = 4, .epochs = 5};

/* ---------------------------------------------------------------- cls */

static int cls_train(void *ctx, void *const *in, void *const *out) {
  NnrtInstance *inst = ctx;
  const uint8_t *img = in[0];
  const int32_t *label = in[1];
  float *w = NNRT_PARAM_PTR(inst, &inst->model->params[0]), s = 0;
  for (int i = 0; i < 4; i++)
    if (label[i] < 0 || label[i] >= 3) return NNRT_STEP_E_INDEX;
  for (int i = 0; i < 16; i++) s += img[i];
  *w += s / 1000;
  *(float *)out[0] = s;
  *(float *)out[1] = 0.5f;
  return 0;
}

static const NnrtTensorDesc cls_inputs[2] = {
    {.name = "image", .dtype = NNRT_U8, .rank = 3, .dims = {4, 2, 2}, .batch_dim = 0},
    {.name = "label", .dtype = NNRT_I32, .rank = 1, .dims = {4}, .batch_dim = 0}};
static const NnrtTensorDesc cls_params[1] = {
    {.name = "w", .dtype = NNRT_F32, .rank = 0, .batch_dim = -1, .offset = 0}};
static const char *const cls_names[2] = {"image", "label"};
static const char *const cls_files[2] = {"img.idx", "lab.idx"};
static const NnrtDataSource cls_data = {.kind = NNRT_DATA_IDX, .nnames = 2,
                                        .names = cls_names, .nfiles = 2,
                                        .files = cls_files};
static const int64_t cls_limits[2] = {0, 3};

static const NnrtModel cls = {
    .abi_version = NNRT_ABI_VERSION, .name = "cls", .arena_bytes = 64,
    .param_bytes = 64, .ninputs = 1, .noutputs = 0, .nparams = 1,
    .inputs = cls_inputs, .params = cls_params, .forward = lin_forward,
    .train_step = cls_train, .ntrain_inputs = 2, .train_inputs = cls_inputs,
    .data = &cls_data, .batch = 4, .train_input_limits = cls_limits};

/* ---------------------------------------------------------------- runs */

/* A run of lin's command line; the thread count is reset after it. */
static Run run_args(const NnrtModel *m, const char **args) {
  cfg.nseen = 0;
  Run r = run_main(m, "./lin", args);
  nnrt_set_threads(0);
  return r;
}

#define RUN(m, ...) run_args(m, (const char *[]){__VA_ARGS__, NULL})

static void expect_ok(Run r) {
  if (r.status != 0) fail_msg("status %d; stderr: %s", r.status, r.err);
}

/* The data of lin: y = 3 x0 - 2 x1 + 1, n samples. */
static float x_of(int k, int j) {
  return j ? cosf(1.3f * (float)k) : 2 * sinf(0.7f * (float)k);
}

static void write_lin_data(Tmp *t, int n, char *xarg, char *yarg) {
  float x[2 * 256], y[256];
  assert_true(n <= 256);
  for (int k = 0; k < n; k++) {
    x[2 * k] = x_of(k, 0), x[2 * k + 1] = x_of(k, 1);
    y[k] = 3 * x[2 * k] - 2 * x[2 * k + 1] + 1;
  }
  NnrtTensor tx = {.dtype = NNRT_F32, .rank = 2, .dims = {n, 2}, .data = x,
                   .nbytes = (size_t)n * 8};
  NnrtTensor ty = {.dtype = NNRT_F32, .rank = 1, .dims = {n}, .data = y,
                   .nbytes = (size_t)n * 4};
  const char *px = tpath(t, "x.npy"), *py = tpath(t, "y.npy");
  assert_int_equal(nnrt_npy_write(px, &tx, NULL), 0);
  assert_int_equal(nnrt_npy_write(py, &ty, NULL), 0);
  sprintf(xarg, "x=%s", px);
  sprintf(yarg, "y=%s", py);
}

/* Reads tensor `name` of a safetensors file as floats. */
static void read_floats(const char *path, const char *name, float *dst, int n) {
  NnrtTensorFile f;
  assert_int_equal(nnrt_st_read(path, &f, NULL), 0);
  const NnrtTensor *t = nnrt_tf_find(&f, name);
  assert_non_null(t);
  assert_int_equal(t->nbytes, (size_t)n * 4);
  memcpy(dst, t->data, t->nbytes);
  nnrt_tf_free(&f);
}

static void assert_files_equal(const char *a, const char *b) {
  size_t na, nb;
  char *pa = read_bytes(a, &na), *pb = read_bytes(b, &nb);
  assert_int_equal(na, nb);
  assert_memory_equal(pa, pb, na);
  free(pa);
  free(pb);
}

/* ---------------------------------------------------------------- tests */

/* Loss goes down to the threshold, the weights reach (3, -2, 1), and the
** epoch lines print the running means of the log's rows. */
static void test_converges(void **state) {
  Tmp *t = *state;
  char xa[300], ya[300];
  write_lin_data(t, 64, xa, ya);
  const char *w = tpath(t, "w.safetensors"), *log = tpath(t, "log.csv");
  Run r = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", w, "--log", log);
  expect_ok(r);
  assert_contains(r.out, "train lin: 64 samples, batch 4, 16 steps per epoch "
                         "(0 samples dropped), steps 1..80 of 80, seed 3\n");
  assert_contains(r.out, "epoch 5 step 80/80: loss ");
  assert_contains(r.out, "saved ");
  float wv[2], b;
  read_floats(w, "w", wv, 2);
  read_floats(w, "b", &b, 1);
  assert_true(fabsf(wv[0] - 3) < 0.05f && fabsf(wv[1] + 2) < 0.05f &&
              fabsf(b - 1) < 0.05f);
  /* the epoch means are the means of the log's train rows */
  char *csv = read_bytes(log, NULL), *line = strchr(csv, '\n') + 1;
  double sum[6] = {0}, msum[6] = {0};
  int rows = 0;
  for (; *line; line = strchr(line, '\n') + 1, rows++) {
    int ep;
    long long step;
    double loss, mae;
    assert_int_equal(sscanf(line, "train,%d,%lld,%lf,%lf,", &ep, &step, &loss, &mae), 4);
    assert_int_equal(step, rows + 1);
    sum[ep] += loss, msum[ep] += mae;
  }
  assert_int_equal(rows, 80);
  for (int ep = 1; ep <= 5; ep++) {
    char want[64], *at;
    snprintf(want, sizeof want, "epoch %d step %d/80: loss ", ep, 16 * ep);
    assert_non_null(at = strstr(r.out, want));
    double l, mae;
    assert_int_equal(sscanf(at + strlen(want), "%lf mae %lf", &l, &mae), 2);
    assert_true(fabs(l - sum[ep] / 16) <= 1e-6 * fmax(1, l));
    assert_true(fabs(mae - msum[ep] / 16) <= 1e-6 * fmax(1, mae));
  }
  assert_true(sum[5] / 16 < 1e-3 && sum[5] < sum[1] / 100);
  free(csv);
  run_free(&r);
}

/* One batch per epoch (4 samples, batch 4): every step is a full-batch
** gradient step, so theta_t - theta* = prod_k (I - lr_k H)(theta_0 -
** theta*), H = (2/4) sum [x;1][x;1]^T, computed here in double. */
static void test_closed_form(void **state) {
  Tmp *t = *state;
  char xa[300], ya[300];
  write_lin_data(t, 4, xa, ya);
  const char *w = tpath(t, "w.safetensors");
  Run r = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", w, "--steps", "6");
  expect_ok(r);
  run_free(&r);
  double H[3][3] = {{0}}, d[3] = {-3, 2, -1}; /* theta_0 - theta* */
  for (int k = 0; k < 4; k++) {
    double v[3] = {x_of(k, 0), x_of(k, 1), 1};
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) H[i][j] += 0.5 * v[i] * v[j];
  }
  for (int s = 0; s < 6; s++) {
    double lr = 0.1 / (1 + 0.1 * s) * (1 - 0.5 * s / 6.0), nd[3];
    for (int i = 0; i < 3; i++)
      nd[i] = d[i] - lr * (H[i][0] * d[0] + H[i][1] * d[1] + H[i][2] * d[2]);
    memcpy(d, nd, sizeof d);
  }
  float wv[2], b;
  read_floats(w, "w", wv, 2);
  read_floats(w, "b", &b, 1);
  assert_true(fabs(wv[0] - (3 + d[0])) < 1e-5 && fabs(wv[1] - (-2 + d[1])) < 1e-5 &&
              fabs(b - (1 + d[2])) < 1e-5);
  assert_true(fabs(d[0]) > 0.1); /* six steps are not yet converged */
}

/* nnrt_shuffle is a permutation, a function of (seed, epoch); the batches
** follow it epoch by epoch. */
static void test_shuffle(void **state) {
  Tmp *t = *state;
  enum { N = 1000 };
  int64_t *p = malloc(N * sizeof *p), *q = malloc(N * sizeof *q);
  int *seen = calloc(N, sizeof *seen);
  nnrt_shuffle(p, N, 7, 2);
  int fixed = 0;
  for (int i = 0; i < N; i++) {
    assert_true(p[i] >= 0 && p[i] < N && !seen[p[i]]);
    seen[p[i]] = 1;
    fixed += p[i] == i;
  }
  assert_true(fixed < 10);
  nnrt_shuffle(q, N, 7, 2);
  assert_memory_equal(p, q, N * sizeof *p);
  nnrt_shuffle(q, N, 7, 3);
  assert_true(memcmp(p, q, N * sizeof *p) != 0);
  nnrt_shuffle(q, N, 8, 2);
  assert_true(memcmp(p, q, N * sizeof *p) != 0);
  /* element 0 moves to each of 4 places about equally often */
  int hist[4] = {0};
  for (uint64_t e = 0; e < 4000; e++) {
    int64_t s[4];
    nnrt_shuffle(s, 4, 1, e);
    for (int i = 0; i < 4; i++) hist[i] += s[i] == 0;
  }
  for (int i = 0; i < 4; i++) assert_true(hist[i] > 850 && hist[i] < 1150);
  nnrt_shuffle(q, 1, 5, 0);
  assert_int_equal(q[0], 0);
  /* the batches of a run: epoch e takes perm(seed, e) in order */
  char xa[300], ya[300];
  write_lin_data(t, 64, xa, ya);
  Run r = RUN(&lin, "train", "--data", xa, "--data", ya, "--epochs", "3", "--seed", "11");
  expect_ok(r);
  assert_int_equal(cfg.nseen, 48);
  assert_int_equal(cfg.bad_epoch, 0);
  for (int e = 0; e < 3; e++) {
    nnrt_shuffle(p, 64, 11, (uint64_t)e);
    for (int s = 0; s < 16; s++)
      assert_true(cfg.seen[16 * e + s] == x_of((int)p[4 * s], 0));
  }
  run_free(&r);
  free(p);
  free(q);
  free(seen);
}

/* The same files at 1 and 2 threads, and with an evaluation each epoch
** (which swaps the averaged weights in and out). */
static void test_threads(void **state) {
  Tmp *t = *state;
  char xa[300], ya[300], ex[300], ey[300];
  write_lin_data(t, 64, xa, ya);
  snprintf(ex, sizeof ex, "x=%s", xa + 2);
  snprintf(ey, sizeof ey, "y=%s", ya + 2);
  const char *a = tpath(t, "a.safetensors"), *b = tpath(t, "b.safetensors"),
             *c = tpath(t, "c.safetensors");
  Run r = RUN(&lin, "--threads", "1", "train", "--data", xa, "--data", ya, "--save", a);
  expect_ok(r);
  run_free(&r);
  r = RUN(&lin, "train", "--threads", "2", "--data", xa, "--data", ya, "--save", b);
  expect_ok(r);
  run_free(&r);
  assert_files_equal(a, b);
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", c, "--eval-data",
          ex, "--eval-data", ey);
  expect_ok(r);
  assert_contains(r.out, "  eval: loss ");
  assert_contains(r.out, " (64 samples)\n");
  run_free(&r);
  assert_files_equal(a, c);
}

/* The means printed at the end of an epoch: "epoch E step S/T: ... " up
** to the samples/s (which vary). */
static char *epoch_line(const char *out, const char *head) {
  const char *p = strstr(out, head);
  if (!p) fail_msg("no '%s' in:\n%s", head, out);
  const char *q = strchr(p, '|');
  assert_non_null(q);
  char *s = calloc((size_t)(q - p) + 1, 1);
  memcpy(s, p, (size_t)(q - p));
  return s;
}

static void assert_same_epoch_line(const char *a, const char *b, const char *head) {
  char *x = epoch_line(a, head), *y = epoch_line(b, head);
  assert_string_equal(x, y);
  free(x);
  free(y);
}

/* Uninterrupted 40 steps (2.5 epochs) against: a failure at step 30 with
** checkpoints every 12 steps, then --resume; and SIGINT at step 21, then
** --resume.  Every file is identical, metadata included. */
static void test_resume(void **state) {
  Tmp *t = *state;
  char xa[300], ya[300];
  write_lin_data(t, 64, xa, ya);
  const char *a = tpath(t, "a.safetensors"), *b = tpath(t, "b.safetensors"),
             *c = tpath(t, "c.safetensors");
  Run full = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", a, "--steps", "40");
  expect_ok(full);
  cfg.fail_at = 30;
  Run r;
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", b, "--steps",
          "40", "--save-every", "12");
  cfg.fail_at = 0;
  assert_int_equal(r.status, 1);
  assert_contains(r.err, "lin: model 'lin': train_step failed (status 9) at "
                         "step 30 (epoch 2, batch 14 of the epoch)\n");
  run_free(&r);
  NnrtTensorFile f;
  assert_int_equal(nnrt_st_read(b, &f, NULL), 0);
  assert_string_equal(nnrt_tf_meta(&f, "step"), "24");
  assert_string_equal(nnrt_tf_meta(&f, "epoch"), "1");
  int64_t st;
  memcpy(&st, nnrt_tf_find(&f, "opt.step")->data, 8);
  assert_int_equal(st, 24);
  nnrt_tf_free(&f);
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--resume", b, "--save", b,
          "--steps", "40");
  expect_ok(r);
  assert_contains(r.out, "steps 25..40 of 40");
  assert_same_epoch_line(full.out, r.out, "epoch 2 step 32/40: ");
  assert_same_epoch_line(full.out, r.out, "epoch 3 step 40/40: ");
  run_free(&r);
  assert_files_equal(a, b);
  /* Ctrl-C inside step 21: the step finishes, is saved, status 130 */
  cfg.raise_at = 21;
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", c, "--steps", "40");
  cfg.raise_at = 0;
  assert_int_equal(r.status, 130);
  assert_contains(r.err, "interrupted after step 21; saved ");
  run_free(&r);
  assert_int_equal(nnrt_st_read(c, &f, NULL), 0);
  assert_string_equal(nnrt_tf_meta(&f, "step"), "21");
  nnrt_tf_free(&f);
  /* without --steps: the checkpoint's total_steps, not the 5 epochs */
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--resume", c, "--save", c);
  expect_ok(r);
  assert_contains(r.out, "steps 22..40 of 40");
  assert_same_epoch_line(full.out, r.out, "epoch 2 step 32/40: ");
  run_free(&r);
  run_free(&full);
  assert_files_equal(a, c);
  /* resuming a finished run does nothing; another seed is refused */
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--resume", c, "--steps", "40");
  expect_ok(r);
  assert_contains(r.out, "nothing to do");
  run_free(&r);
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--resume", c, "--seed", "4");
  assert_int_equal(r.status, 2);
  assert_contains(r.err, "--seed 4 differs from the seed 3 of ");
  run_free(&r);
  /* a file from `init` (no position) starts at step 0 from its weights */
  const char *i0 = tpath(t, "i0.safetensors");
  r = RUN(&lin, "init", "--save", i0);
  expect_ok(r);
  run_free(&r);
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--resume", i0, "--save",
          i0, "--steps", "40");
  expect_ok(r);
  assert_contains(r.out, "steps 1..40 of 40");
  run_free(&r);
  assert_files_equal(a, i0);
  assert_int_equal(tmp_count(t), 6); /* no temporary file left */
}

/* Writes IDX images u8[n,2,2] and labels i32[m] (label k % 3, or `bad`
** at sample 5). */
static void write_cls(Tmp *t, int n, int m, int bad) {
  uint8_t img[64];
  int32_t lab[16];
  for (int i = 0; i < 4 * n; i++) img[i] = (uint8_t)(i * 7);
  for (int i = 0; i < m; i++) lab[i] = i == 5 && bad ? bad : i % 3;
  NnrtTensor ti = {.dtype = NNRT_U8, .rank = 3, .dims = {n, 2, 2}, .data = img,
                   .nbytes = (size_t)n * 4};
  NnrtTensor tl = {.dtype = NNRT_I32, .rank = 1, .dims = {m}, .data = lab,
                   .nbytes = (size_t)m * 4};
  assert_int_equal(nnrt_idx_write(tpath(t, "img.idx"), &ti, NULL), 0);
  assert_int_equal(nnrt_idx_write(tpath(t, "lab.idx"), &tl, NULL), 0);
}

/* Runs cls train on the folder's img.idx and lab.idx, saving to ck. */
static Run run_cls(Tmp *t, const NnrtModel *m) {
  char im[300], lb[300];
  snprintf(im, sizeof im, "image=%s", tpath(t, "img.idx"));
  snprintf(lb, sizeof lb, "label=%s", tpath(t, "lab.idx"));
  return RUN(m, "train", "--data", im, "--data", lb, "--save", tpath(t, "ck"));
}

static void expect_fail_intact(Tmp *t, Run r, const char *want, const char *ck,
                               const char *orig, size_t n) {
  if (r.status != 1) fail_msg("status %d; stderr: %s", r.status, r.err);
  assert_contains(r.err, want);
  run_free(&r);
  size_t n2;
  char *now = read_bytes(ck, &n2);
  assert_int_equal(n, n2);
  assert_memory_equal(orig, now, n);
  free(now);
  (void)t;
}

/* Each malformed file: its message, status 1, the checkpoint untouched. */
static void test_malformed(void **state) {
  Tmp *t = *state;
  char ck[300]; /* (tpath's buffers are reused) */
  snprintf(ck, sizeof ck, "%s", tpath(t, "ck"));
  write_cls(t, 8, 8, 0);
  Run r = run_cls(t, &cls);
  expect_ok(r);
  assert_contains(r.out, "train cls: 8 samples, batch 4, 2 steps per epoch");
  run_free(&r);
  size_t nck, nraw;
  char *orig = read_bytes(ck, &nck);
  /* truncated IDX */
  char *raw = read_bytes(tpath(t, "img.idx"), &nraw);
  write_bytes(tpath(t, "img.idx"), raw, nraw - 5);
  expect_fail_intact(t, run_cls(t, &cls), "img.idx: truncated", ck, orig, nck);
  free(raw);
  /* images and labels disagree */
  write_cls(t, 8, 7, 0);
  expect_fail_intact(t, run_cls(t, &cls), "train data: 'image' has 8 samples (",
                     ck, orig, nck);
  /* a label out of the model's range, found on load */
  write_cls(t, 8, 8, 5);
  expect_fail_intact(t, run_cls(t, &cls), "lab.idx: sample 5: 'label' is 5, "
                     "outside [0, 3) (the model's range for it)", ck, orig, nck);
  /* found by the generated code instead: reported with its step */
  NnrtModel nolim = cls;
  nolim.train_input_limits = NULL;
  expect_fail_intact(t, run_cls(t, &nolim), "model 'cls': train_step a label "
                     "or index of the batch is out of range (status 2) at step ",
                     ck, orig, nck);
  /* NPY of the wrong shape */
  char xa[300], ya[300];
  write_lin_data(t, 8, xa, ya);
  float bad[24] = {0};
  NnrtTensor tb = {.dtype = NNRT_F32, .rank = 2, .dims = {8, 3}, .data = bad,
                   .nbytes = sizeof bad};
  assert_int_equal(nnrt_npy_write(xa + 2, &tb, NULL), 0);
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", ck);
  expect_fail_intact(t, r, "x.npy: array of shape [8,3] does not fit input 'x' "
                     "f32[4,2] (samples of shape [2] expected)", ck, orig, nck);
  /* a missing file and an unknown name */
  r = RUN(&lin, "train", "--data", ya, "--save", ck);
  expect_fail_intact(t, r, "lin: x.npy: No such file or directory", ck, orig, nck);
  r = RUN(&lin, "train", "--data", "z=q.npy");
  assert_int_equal(r.status, 1);
  assert_contains(r.err, "train data: 'z=q.npy' does not name an input of "
                         "model 'lin' (x, y); write NAME=FILE");
  run_free(&r);
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", "/nonexistent/dir/w");
  assert_int_equal(r.status, 1);
  assert_string_equal(r.err, "lin: /nonexistent/dir/w: cannot write in folder "
                             "'/nonexistent/dir': No such file or directory\n");
  run_free(&r);
  r = RUN(&lin, "train", "--epochs", "2", "--steps", "3");
  assert_int_equal(r.status, 2);
  run_free(&r);
  /* a diverged loss stops the run without saving */
  write_lin_data(t, 8, xa, ya);
  cfg.nan_at = 3;
  r = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", ck, "--save-every", "5");
  cfg.nan_at = 0;
  expect_fail_intact(t, r, "model 'lin': the loss is nan at step 3 (epoch 2, "
                     "batch 1 of the epoch); stopping (nothing saved)", ck, orig, nck);
  free(orig);
}

/* --log: header, one row per step and per evaluation. */
static void test_log(void **state) {
  Tmp *t = *state;
  char xa[300], ya[300], ex[300], ey[300];
  write_lin_data(t, 64, xa, ya);
  snprintf(ex, sizeof ex, "x=%s", xa + 2);
  snprintf(ey, sizeof ey, "y=%s", ya + 2);
  const char *log = tpath(t, "log.csv");
  Run r = RUN(&lin, "train", "--data", xa, "--data", ya, "--eval-data", ex,
              "--eval-data", ey, "--epochs", "2", "--batch-limit", "3",
              "--log", log);
  expect_ok(r);
  run_free(&r);
  char *csv = read_bytes(log, NULL);
  assert_true(!strncmp(csv, "phase,epoch,step,loss,mae,lr,samples_per_s,elapsed_s\n", 53));
  const char *want[] = {"train,1,1,", "train,1,2,", "train,1,3,", "eval,1,3,",
                        "train,2,4,", "train,2,5,", "train,2,6,", "eval,2,6,"};
  char *line = strchr(csv, '\n') + 1;
  for (int i = 0; i < 8; i++, line = strchr(line, '\n') + 1) {
    if (strncmp(line, want[i], strlen(want[i]))) fail_msg("row %d: %s", i, line);
    int commas = 0;
    for (char *p = line; *p != '\n'; p++) commas += *p == ',';
    assert_int_equal(commas, 7);
    if (i == 3) assert_non_null(strstr(line, ",,")); /* eval rows: no lr */
  }
  assert_int_equal(*line, 0);
  /* the first row's lr: 0.1 at step 0 of epoch 0 */
  double loss, mae, lr;
  assert_int_equal(sscanf(csv + 53, "train,1,1,%lf,%lf,%lf", &loss, &mae, &lr), 3);
  assert_true(fabs(lr - 0.1) < 1e-7 && loss > 1);
  free(csv);
}

/* eval: the means over full batches with the averaged weights. */
static void test_eval(void **state) {
  Tmp *t = *state;
  char xa[300], ya[300];
  write_lin_data(t, 66, xa, ya);
  const char *w = tpath(t, "w.safetensors");
  Run r = RUN(&lin, "train", "--data", xa, "--data", ya, "--save", w, "--epochs", "1");
  expect_ok(r);
  assert_contains(r.out, "(2 samples dropped)");
  run_free(&r);
  r = RUN(&lin, "eval", "--weights", w, "--data", xa, "--data", ya);
  expect_ok(r);
  double loss, mae;
  assert_int_equal(sscanf(r.out, "eval lin: loss %lf mae %lf", &loss, &mae), 2);
  assert_contains(r.out, "(64 of 66 samples, batch 4)\n");
  run_free(&r);
  float aw[2], ab, pw[2];
  read_floats(w, "avg.w", aw, 2);
  read_floats(w, "avg.b", &ab, 1);
  read_floats(w, "w", pw, 2);
  assert_true(fabsf(aw[0] - pw[0]) > 0.01f); /* the average differs */
  double want = 0, wmae = 0;
  for (int bt = 0; bt < 16; bt++) {
    float l = 0, a = 0;
    for (int i = 4 * bt; i < 4 * bt + 4; i++) {
      float x0 = x_of(i, 0), x1 = x_of(i, 1);
      float rr = x0 * aw[0] + x1 * aw[1] + ab - (3 * x0 - 2 * x1 + 1);
      l += rr * rr, a += fabsf(rr);
    }
    want += l / 4, wmae += a / 4;
  }
  assert_true(fabs(loss - want / 16) < 1e-5 * fmax(1, loss));
  assert_true(fabs(mae - wmae / 16) < 1e-5 * fmax(1, mae));
  /* predict uses the averaged weights too */
  float xs[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  NnrtTensor tx = {.dtype = NNRT_F32, .rank = 2, .dims = {4, 2}, .data = xs,
                   .nbytes = sizeof xs};
  const char *pin = tpath(t, "in.npy"), *pout = tpath(t, "out.npy");
  assert_int_equal(nnrt_npy_write(pin, &tx, NULL), 0);
  r = RUN(&lin, "predict", "--weights", w, "--input", pin, "--output", pout);
  expect_ok(r);
  run_free(&r);
  NnrtTensor ty;
  assert_int_equal(nnrt_npy_read(pout, &ty, NULL), 0);
  for (int i = 0; i < 4; i++)
    assert_true(((float *)ty.data)[i] == xs[2 * i] * aw[0] + xs[2 * i + 1] * aw[1] + ab);
  nnrt_tensor_free(&ty);
  r = RUN(&lin, "eval", "--data", xa);
  assert_int_equal(r.status, 2);
  assert_contains(r.err, "eval: --weights W.safetensors is required");
  run_free(&r);
  r = RUN(&lin, "eval", "--weights", w, "--data", xa);
  assert_int_equal(r.status, 1);
  assert_contains(r.err, "lin: y.npy: No such file or directory");
  run_free(&r);
  NnrtModel nodata = lin;
  nodata.data = NULL;
  r = RUN(&nodata, "eval", "--weights", w, "--data", xa);
  assert_int_equal(r.status, 1);
  assert_contains(r.err, "data: nothing fills input 'y' (pass --data y=FILE)");
  run_free(&r);
  /* an ABI 1 descriptor still runs info but cannot train */
  NnrtModel v1;
  memset(&v1, 0xff, sizeof v1); /* what follows an ABI 1 struct: not read */
  memcpy(&v1, &lin, NNRT_MODEL_V1_SIZE);
  v1.abi_version = 1;
  v1.train_step = NULL;
  r = RUN(&v1, "info");
  expect_ok(r);
  run_free(&r);
}

/* The checks of the training fields; commands a model lacks. */
static void test_descriptor(void **state) {
  (void)state;
  NnrtErr e = {0};
  NnrtModel m = lin;
  assert_int_equal(nnrt_model_check(&m, &e), 0);
  static const char *const bad_names[2] = {"x", "z"};
  NnrtDataSource src = lin_data;
  src.names = bad_names;
  m.eval_data = &src;
  assert_int_equal(nnrt_model_check(&m, &e), NNRT_E_ARG);
  assert_string_equal(e.msg, "model 'lin': eval_data source: 'z' is not a train input");
  src = lin_data;
  src.nfiles = 1;
  assert_int_equal(nnrt_model_check(&m, &e), NNRT_E_ARG);
  assert_string_equal(e.msg, "model 'lin': bad eval_data source");
  m = lin;
  m.steps = 10;
  assert_int_equal(nnrt_model_check(&m, &e), NNRT_E_ARG);
  assert_string_equal(e.msg, "model 'lin': bad training settings");
  m = lin;
  m.batch = 8;
  assert_int_equal(nnrt_model_check(&m, &e), NNRT_E_ARG);
  assert_contains(e.msg, "train input 'x' has no batch axis 0 of the batch size");
  m = lin;
  m.ntrain_inputs = 0;
  assert_int_equal(nnrt_model_check(&m, &e), NNRT_E_ARG);
  assert_contains(e.msg, "train_step or eval_step without train inputs");
  m = lin;
  m.train_step = NULL;
  m.eval_step = NULL;
  Run r = RUN(&m, "train");
  assert_int_equal(r.status, 2);
  assert_string_equal(r.err, "lin: 'train' is not available in this build of "
                             "model 'lin' (it has no train block)\n");
  run_free(&r);
  r = RUN(&m, "eval", "--weights", "w");
  assert_int_equal(r.status, 2);
  assert_contains(r.err, "(it has no loss)");
  run_free(&r);
  r = RUN(&lin, "train", "--help");
  assert_int_equal(r.status, 0);
  assert_contains(r.out, "usage: lin train [--epochs N | --steps N]");
  run_free(&r);
  r = RUN(&lin, "train", "--save-every", "3");
  assert_int_equal(r.status, 2);
  assert_contains(r.err, "--save-every needs --save W");
  run_free(&r);
  r = RUN(&lin, "train", "--steps", "0");
  assert_int_equal(r.status, 2);
  assert_contains(r.err, "train: --steps needs an integer >= 1, got '0'");
  run_free(&r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_converges, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_closed_form, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_shuffle, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_threads, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_resume, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_malformed, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_log, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_eval, tmp_setup, tmp_teardown),
      cmocka_unit_test(test_descriptor),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

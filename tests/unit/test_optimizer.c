/*
** This file contains the unit tests of the optimizer pass
** (passes/optimizer.c).  Each test builds a module with a @loss_grad (hand
** written .nnir whose gradients are inputs, or a .nn model compiled by the
** frontend with its true gradient built here), runs the pass, then runs
** @train_step again and again through the reference interpreter in f64,
** writing the results named @x back into the globals as the runtime will.
** The trajectories are compared with the oracles of
** ../shared/reference/algorithms.md (section 5: Adam vs Adam+L2 vs AdamW;
** section 9: incremental mean and EMA), with hand-computed values (SGD
** momentum and nesterov, clipping, the schedules) and with direct
** transcriptions of PyTorch's update formulas (rmsprop, adagrad, lion).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../frontend/frontend.h"
#include "../../ir/arena.h"
#include "../../ir/diag.h"
#include "../../ir/ir.h"
#include "../../passes/pass.h"

#ifndef NNC_SOURCE_DIR
#define NNC_SOURCE_DIR "."
#endif

#define MAXG 64

/* |got - want| <= tol, with both values in the message (cmocka 1.x has no
** double comparison). */
#define assert_double_equal(got, want, tol) \
  near((got), (want), (tol), #got, __FILE__, __LINE__)

static void near(double got, double want, double tol, const char *what,
                 const char *file, int line) {
  if (fabs(got - want) <= tol) return;
  fail_msg("%s:%d: %s = %.17g, want %.17g (tol %g)", file, line, what, got,
           want, tol);
}

typedef struct Fx {
  Arena *a;        /* host tensors, texts */
  IrModule *m;
  FILE *errf;      /* diagnostics */
  Diag *d;
  IrTensor glob[MAXG]; /* current values of the globals, module order */
  int nglob;
  double loss, lr; /* of the last step */
  bool f32;        /* run the interpreter in f32 (default f64) */
  char dir[64];
} Fx;

static int fx_setup(void **state) {
  Arena *a = arena_new();
  Fx *fx = ARENA_NEW(a, Fx);
  fx->a = a;
  fx->errf = tmpfile();
  fx->d = diag_new(fx->errf);
  snprintf(fx->dir, sizeof fx->dir, "/tmp/nnc_opt_XXXXXX");
  if (!mkdtemp(fx->dir)) return -1;
  *state = fx;
  return 0;
}

static int fx_teardown(void **state) {
  Fx *fx = *state;
  if (fx->m) ir_module_free(fx->m);
  diag_free(fx->d);
  fclose(fx->errf);
  char p[96];
  snprintf(p, sizeof p, "%s/t.nn", fx->dir);
  remove(p);
  rmdir(fx->dir);
  arena_free(fx->a);
  return 0;
}

/* Everything the diagnostics printed so far. */
static const char *fx_errors(Fx *fx) {
  fflush(fx->errf);
  long n = ftell(fx->errf);
  char *s = arena_alloc(fx->a, (size_t)n + 1, 1);
  rewind(fx->errf);
  size_t got = fread(s, 1, (size_t)n, fx->errf);
  s[got] = 0;
  return s;
}

/* ------------------------------------------------------ host tensors */

/* Float elements are doubles in f64 mode, floats otherwise. */
static bool dbl(const Fx *fx, DType t) {
  return ir_dtype_is_float(t) && !fx->f32;
}

static double elem(const Fx *fx, const IrTensor *t, int64_t i) {
  DType d = t->type.dtype;
  if (dbl(fx, d)) return ((double *)t->data)[i];
  if (ir_dtype_is_float(d)) return ((float *)t->data)[i];
  if (d == DT_I64) return (double)((int64_t *)t->data)[i];
  if (d == DT_I32) return ((int32_t *)t->data)[i];
  return ((uint8_t *)t->data)[i];
}

static void set_elem(const Fx *fx, IrTensor *t, int64_t i, double x) {
  DType d = t->type.dtype;
  if (dbl(fx, d)) ((double *)t->data)[i] = x;
  else if (ir_dtype_is_float(d)) ((float *)t->data)[i] = (float)x;
  else if (d == DT_I64) ((int64_t *)t->data)[i] = (int64_t)x;
  else if (d == DT_I32) ((int32_t *)t->data)[i] = (int32_t)x;
  else ((uint8_t *)t->data)[i] = (uint8_t)x;
}

static size_t tensor_bytes(const Fx *fx, const IrType *t) {
  int64_t n = ir_type_numel(t);
  return (size_t)(n ? n : 1) * (size_t)ir_interp_elem_size(t->dtype, !fx->f32);
}

static IrTensor zeros(Fx *fx, IrType t) {
  IrTensor h = {t, arena_zalloc(fx->a, tensor_bytes(fx, &t), 8)};
  return h;
}

/* --------------------------------------------------------- the module */

/* Run pipeline `list` with verification; expect success. */
static void run_passes(Fx *fx, const char *list) {
  Arena *scratch = arena_new();
  PassOpts po = {.verify = true};
  PassCtx cx = {scratch, fx->d, &po};
  bool ok = pass_run_pipeline(fx->m, list, &cx);
  arena_free(scratch);
  if (!ok) fail_msg("pipeline '%s' failed:\n%s", list, fx_errors(fx));
  assert_true(ir_verify(fx->m, stderr));
}

/* Run the optimizer pass and expect it to fail; returns the messages. */
static const char *run_pass_fails(Fx *fx) {
  Arena *scratch = arena_new();
  PassOpts po = {.verify = true};
  PassCtx cx = {scratch, fx->d, &po};
  bool ok = pass_run_pipeline(fx->m, "optimizer", &cx);
  arena_free(scratch);
  assert_false(ok);
  return fx_errors(fx);
}

/* Zero tensors for every global of the (transformed) module. */
static void init_globals(Fx *fx) {
  fx->nglob = 0;
  for (IrGlobal *g = fx->m->globals; g; g = g->next) {
    assert_true(fx->nglob < MAXG);
    fx->glob[fx->nglob++] = zeros(fx, g->type);
  }
}

static IrTensor *glob(Fx *fx, const char *name) {
  int i = 0;
  for (IrGlobal *g = fx->m->globals; g; g = g->next, i++)
    if (!strcmp(g->name, name)) return &fx->glob[i];
  fail_msg("no global '%s'", name);
  return NULL;
}

static double gv(Fx *fx, const char *name, int64_t i) {
  return elem(fx, glob(fx, name), i);
}

static void set_global(Fx *fx, const char *name, int n, const double *v) {
  IrTensor *t = glob(fx, name);
  assert_int_equal(ir_type_numel(&t->type), n);
  for (int i = 0; i < n; i++) set_elem(fx, t, i, v[i]);
}

/* fx->m as .nnir text. */
static const char *print_module(Fx *fx) {
  FILE *f = tmpfile();
  assert_non_null(f);
  IrPrintOpts po = {0};
  ir_print_module(f, fx->m, &po);
  long n = ftell(f);
  char *s = arena_alloc(fx->a, (size_t)n + 1, 1);
  rewind(f);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = 0;
  fclose(f);
  return s;
}

/* Parse .nnir text into fx->m. */
static void load(Fx *fx, const char *text) {
  const char *err = NULL;
  fx->m = ir_parse("t.nnir", text, strlen(text), fx->a, &err);
  if (!fx->m) fail_msg("parse: %s", err ? err : "?");
  assert_true(ir_verify(fx->m, stderr));
}

/* Run f (f64) on the model inputs in[k] (arrays of doubles, in argument
** order); epoch and total_steps are added for @train_step.  Results named
** @x are written back into the globals; loss and lr are kept. */
static IrTensor *call(Fx *fx, const char *fname, const double *const *in,
                      double epoch, double total) {
  IrFunc *f = ir_func_find(fx->m, fname);
  assert_non_null(f);
  IrBlock *b = f->body;
  IrTensor *ins = ARENA_ARRAY(fx->a, IrTensor, b->nargs + 1);
  bool ts = !strcmp(fname, "train_step");
  int nmodel = ts ? b->nargs - 2 : b->nargs;
  for (int i = 0; i < b->nargs; i++) {
    ins[i] = zeros(fx, b->args[i]->type);
    int64_t n = ir_type_numel(&b->args[i]->type);
    double one = i == nmodel ? epoch : total;
    const double *src = i < nmodel ? in[i] : &one;
    for (int64_t k = 0; k < n; k++) set_elem(fx, &ins[i], k, src[k]);
  }
  IrTensor *outs = ARENA_ARRAY(fx->a, IrTensor, b->nrets + 1);
  IrInterpOpts o = {.f64 = !fx->f32, .training = true, .seed = 1};
  const char *err = NULL;
  if (!ir_interp(fx->m, f, ins, fx->glob, outs, &o, fx->a, &err))
    fail_msg("@%s: %s", fname, err ? err : "?");
  for (int i = 0; i < b->nrets; i++) {
    const char *rn = f->ret_names[i];
    if (!strcmp(rn, "loss")) fx->loss = elem(fx, &outs[i], 0);
    if (!strcmp(rn, "lr")) fx->lr = elem(fx, &outs[i], 0);
    if (rn[0] != '@' || !strcmp(fname, "average")) continue;
    IrTensor *t = glob(fx, rn + 1);
    assert_true(ir_type_eq(&t->type, &outs[i].type));
    memcpy(t->data, outs[i].data, tensor_bytes(fx, &t->type));
  }
  return outs;
}

static void train_step(Fx *fx, const double *const *in) {
  call(fx, "train_step", in, 0, 100);
}

/* ---------------------------------------------- hand-written @loss_grad */

/* Two params: @w (rank 2: decayed) and @b (rank 1: never decayed); their
** gradients are the inputs %gw and %gb (loss = sum(gw w) + sum(gb b)). */
static const char two_params[] =
    "module @t\n"
    "param @w : f32[1,2] = zeros\n"
    "param @b : f32[2] = zeros\n"
    "func @loss(%%gw: f32[1,2], %%gb: f32[2]) -> (loss: f32[]) {\n"
    "  %%0 = mul %%gw, @w : f32[1,2]\n"
    "  %%1 = sum %%0 : f32[]\n"
    "  %%2 = mul %%gb, @b : f32[2]\n"
    "  %%3 = sum %%2 : f32[]\n"
    "  %%4 = add %%1, %%3 : f32[]\n"
    "  return %%4\n"
    "}\n"
    "func @loss_grad(%%gw: f32[1,2], %%gb: f32[2]) -> (loss: f32[], "
    "grad.w: f32[1,2], grad.b: f32[2]) {\n"
    "  %%0 = mul %%gw, @w : f32[1,2]\n"
    "  %%1 = sum %%0 : f32[]\n"
    "  %%2 = mul %%gb, @b : f32[2]\n"
    "  %%3 = sum %%2 : f32[]\n"
    "  %%4 = add %%1, %%3 : f32[]\n"
    "  return %%4, %%gw, %%gb\n"
    "}\n"
    "%s\n"
    "train @t {\n%s\n}\n";

/* An @lr returning the constant c. */
static const char *const_lr(Fx *fx, double c) {
  return arena_printf(fx->a,
                      "func @lr(%%step: f32[], %%epoch: f32[], "
                      "%%total_steps: f32[]) -> (lr: f32[]) {\n"
                      "  %%0 = constant {value = %.17g} : f32[]\n"
                      "  return %%0\n}\n", c);
}

/* Load two_params with extra functions and train settings, run the pass,
** zero the globals and set w = b = (w0, w0). */
static void setup_two(Fx *fx, const char *funcs, const char *settings,
                      double w0) {
  load(fx, arena_printf(fx->a, two_params, funcs, settings));
  run_passes(fx, "optimizer");
  init_globals(fx);
  double v[2] = {w0, w0};
  set_global(fx, "w", 2, v);
  set_global(fx, "b", 2, v);
}

/* One step with gradient gw = (g, g2) for w and gb = (h, h2) for b. */
static void step2(Fx *fx, double g, double g2, double h, double h2) {
  double gw[2] = {g, g2}, gb[2] = {h, h2};
  const double *in[2] = {gw, gb};
  train_step(fx, in);
}

/* --------------------------------------------------- structure, errors */

static void test_train_step_contract(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "optimizer = adamw {lr = 0.001}\naverage = polyak", 1);
  assert_null(ir_func_find(fx->m, "loss_grad"));
  IrFunc *f = ir_func_find(fx->m, "train_step");
  assert_non_null(f);
  IrBlock *b = f->body;
  assert_int_equal(b->nargs, 4);
  assert_string_equal(b->args[2]->name, "epoch");
  assert_string_equal(b->args[3]->name, "total_steps");
  static const char *const want[] = {
      "loss", "lr", "@w", "@b", "@opt.step", "@opt.m.w", "@opt.v.w",
      "@opt.m.b", "@opt.v.b", "@avg.w", "@avg.b"};
  int n = (int)(sizeof want / sizeof want[0]);
  assert_int_equal(b->nrets, n);
  for (int i = 0; i < n; i++) assert_string_equal(f->ret_names[i], want[i]);
  IrGlobal *s = ir_global_find(fx->m, "opt.step");
  assert_non_null(s);
  assert_int_equal(s->kind, IRG_STATE);
  assert_int_equal(s->type.dtype, DT_I64);
  assert_int_equal(s->type.rank, 0);
  assert_int_equal(ir_global_find(fx->m, "opt.m.w")->kind, IRG_STATE);
  assert_non_null(ir_func_find(fx->m, "average"));
  /* the step counter counts the calls */
  for (int i = 0; i < 3; i++) step2(fx, 0.1, 0.1, 0.1, 0.1);
  assert_int_equal((int)gv(fx, "opt.step", 0), 3);
}

/* @loss's state updates stay, after loss and lr and before the params. */
static void test_state_updates_kept(void **state) {
  Fx *fx = *state;
  load(fx, "module @t\n"
           "param @w : f32[3,2] = zeros\n"
           "state @run : f32[2] = zeros\n"
           "func @loss_grad(%x: f32[3,2]) -> (loss: f32[], @run: f32[2], "
           "grad.w: f32[3,2]) {\n"
           "  %0 = mul %x, @w : f32[3,2]\n"
           "  %1 = sum %0 : f32[]\n"
           "  %2 = sum %x {axes = [0]} : f32[2]\n"
           "  return %1, %2, %x\n}\n"
           "train @t {\n  optimizer = sgd {lr = 0.5}\n}\n");
  run_passes(fx, "optimizer");
  IrFunc *f = ir_func_find(fx->m, "train_step");
  assert_non_null(f);
  assert_int_equal(f->body->nrets, 5);
  assert_string_equal(f->ret_names[2], "@run");
  assert_string_equal(f->ret_names[3], "@w");
  assert_string_equal(f->ret_names[4], "@opt.step");
  assert_null(ir_global_find(fx->m, "opt.momentum.w")); /* momentum = 0 */
  assert_null(ir_func_find(fx->m, "average"));
  init_globals(fx);
  double x[6] = {1, 2, 3, 4, 5, 6};
  const double *in[1] = {x};
  train_step(fx, in);
  assert_double_equal(gv(fx, "run", 0), 9, 0);
  assert_double_equal(gv(fx, "run", 1), 12, 0);
  assert_double_equal(gv(fx, "w", 5), -3, 0);
}

static void test_no_train_block_no_change(void **state) {
  Fx *fx = *state;
  load(fx, "module @t\nparam @w : f32[2] = zeros\n"
           "func @loss_grad(%g: f32[2]) -> (loss: f32[], grad.w: f32[2]) {\n"
           "  %0 = sum %g : f32[]\n  return %0, %g\n}\n");
  run_passes(fx, "optimizer");
  assert_non_null(ir_func_find(fx->m, "loss_grad"));
  assert_null(ir_func_find(fx->m, "train_step"));
  assert_null(ir_global_find(fx->m, "opt.step"));
}

static void test_no_loss_grad_no_change(void **state) {
  Fx *fx = *state;
  load(fx, "module @t\nparam @w : f32[2] = zeros\n"
           "func @loss(%g: f32[2]) -> (loss: f32[]) {\n"
           "  %0 = sum %g : f32[]\n  return %0\n}\n"
           "train @t {\n  optimizer = sgd {lr = 0.5}\n}\n");
  run_passes(fx, "optimizer");
  assert_null(ir_func_find(fx->m, "train_step"));
  assert_null(ir_global_find(fx->m, "opt.step"));
}

static void expect_error(Fx *fx, const char *settings, const char *msg) {
  load(fx, arena_printf(fx->a, two_params, "", settings));
  const char *e = run_pass_fails(fx);
  if (!strstr(e, msg)) fail_msg("expected '%s' in:\n%s", msg, e);
  ir_module_free(fx->m);
  fx->m = NULL;
}

static void test_errors(void **state) {
  Fx *fx = *state;
  expect_error(fx, "optimizer = adamax {lr = 0.1}",
               "unknown optimizer 'adamax'");
  expect_error(fx, "optimizer = sgd {betas = [0.9, 0.99]}",
               "unknown argument 'betas' of optimizer 'sgd'");
  expect_error(fx, "optimizer = sgd {lr = 0.1, nesterov = true}",
               "nesterov needs momentum > 0 and dampening = 0");
  expect_error(fx, "optimizer = adam {betas = [0.9, 1.5]}",
               "betas must be in [0, 1)");
  expect_error(fx, "batch = 4", "the train block has no 'optimizer' setting");
  expect_error(fx, "optimizer = sgd {}\nclip = -1.0",
               "'clip' must be a number > 0");
  expect_error(fx, "optimizer = sgd {}\naverage = ema {decay = 1.5}",
               "invalid train setting 'average'");
}

/* A gradient whose type is not the param's is the autodiff contract broken. */
static void test_missing_grad(void **state) {
  Fx *fx = *state;
  load(fx, "module @t\nparam @w : f32[2] = zeros\nparam @v : f32[2] = zeros\n"
           "func @loss_grad(%g: f32[2]) -> (loss: f32[], grad.w: f32[2]) {\n"
           "  %0 = sum %g : f32[]\n  return %0, %g\n}\n"
           "train @t {\n  optimizer = sgd {lr = 0.5}\n}\n");
  const char *e = run_pass_fails(fx);
  assert_non_null(strstr(e, "@loss_grad has no result 'grad.v'"));
}

/* ------------------------------------------------ Adam family oracles */

/* algorithms.md section 5: theta_0 = 1, grads 0.5, -0.2, 0.1, lr 1e-3,
** wd 0.01 (printed by oracles.py, section 7). */
static const double grads3[3] = {0.5, -0.2, 0.1};
static const double adamw_oracle[3] = {0.998990000020, 0.998634404281,
                                       0.998245026164};
static const double adam_l2_oracle[3] = {0.999000000020, 0.998632053779,
                                         0.998226622860};

/* torch.optim.Adam with no weight decay on theta_0 = 1 (the oracle of @b,
** which opts out of decay). */
static double adam_ref(int steps, const double *g, double lr) {
  double th = 1, m = 0, v = 0;
  for (int t = 1; t <= steps; t++) {
    m = 0.9 * m + 0.1 * g[t - 1];
    v = 0.999 * v + 0.001 * g[t - 1] * g[t - 1];
    double mh = m / (1 - pow(0.9, t)), vh = v / (1 - pow(0.999, t));
    th -= lr * mh / (sqrt(vh) + 1e-8);
  }
  return th;
}

static void test_adamw_oracle(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "optimizer = adamw {betas = [0.9, 0.999], eps = 1e-08, "
            "lr = 0.001, weight_decay = 0.01}", 1);
  for (int t = 0; t < 3; t++) {
    step2(fx, grads3[t], grads3[t], grads3[t], grads3[t]);
    assert_double_equal(gv(fx, "w", 0), adamw_oracle[t], 1e-11);
    assert_double_equal(gv(fx, "w", 1), adamw_oracle[t], 1e-11);
    assert_double_equal(gv(fx, "b", 0), adam_ref(t + 1, grads3, 1e-3), 1e-12);
  }
  /* the bias (rank 1) is not decayed, so it differs from w */
  assert_true(fabs(gv(fx, "b", 0) - gv(fx, "w", 0)) > 1e-6);
}

static void test_adam_l2_oracle(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "optimizer = adam {lr = 0.001, weight_decay = 0.01}", 1);
  for (int t = 0; t < 3; t++) {
    step2(fx, grads3[t], grads3[t], grads3[t], grads3[t]);
    assert_double_equal(gv(fx, "w", 0), adam_l2_oracle[t], 1e-11);
    assert_double_equal(gv(fx, "b", 0), adam_ref(t + 1, grads3, 1e-3), 1e-12);
  }
  /* Adam+L2 and AdamW agree at step 1 and differ from step 2 on */
  assert_true(fabs(adam_l2_oracle[1] - adamw_oracle[1]) > 1e-6);
}

/* The same in the f32 interpreter (what generated code computes): within
** f32 rounding of the oracle. */
static void test_adamw_oracle_f32(void **state) {
  Fx *fx = *state;
  fx->f32 = true;
  setup_two(fx, "", "optimizer = adamw {lr = 0.001, weight_decay = 0.01}", 1);
  for (int t = 0; t < 3; t++) {
    step2(fx, grads3[t], grads3[t], grads3[t], grads3[t]);
    assert_double_equal(gv(fx, "w", 0), adamw_oracle[t], 2e-7);
    assert_double_equal(gv(fx, "b", 0), adam_ref(t + 1, grads3, 1e-3), 2e-7);
  }
  assert_int_equal((int)gv(fx, "opt.step", 0), 3);
}

/* Zero gradients: AdamW gives (1 - lr wd)^t; the bias keeps its value. */
static void test_adamw_zero_grad(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "optimizer = adamw {lr = 0.001, weight_decay = 0.01}", 1);
  for (int t = 1; t <= 3; t++) {
    step2(fx, 0, 0, 0, 0);
    assert_double_equal(gv(fx, "w", 0), pow(1 - 1e-5, t), 1e-15);
    assert_double_equal(gv(fx, "b", 1), 1, 0);
  }
}

/* The paper's AdamW: decay scaled by the schedule multiplier lr_t / lr only.
** With lr_t = 5e-4 and lr = 1e-3 (multiplier 0.5), wd 0.01 and zero
** gradients, theta_t = (1 - 0.5 * 0.01)^t; PyTorch's form gives
** (1 - 5e-4 * 0.01)^t on the same schedule. */
static void test_adamw_paper(void **state) {
  Fx *fx = *state;
  setup_two(fx, const_lr(fx, 5e-4), "lr = @lr\noptimizer = adamw_paper "
            "{lr = 0.001, weight_decay = 0.01}", 1);
  for (int t = 1; t <= 3; t++) {
    step2(fx, 0, 0, 0, 0);
    assert_double_equal(gv(fx, "w", 0), pow(0.995, t), 1e-15);
  }
  /* one step with a gradient: theta_1 = theta_0 - eta (alpha mh/(sqrt(vh) +
  ** eps) + wd theta_0) with mh = g, vh = g^2 */
  init_globals(fx);
  double one[2] = {1, 1};
  set_global(fx, "w", 2, one);
  step2(fx, 0.5, 0.5, 0, 0);
  double want = 1 - 0.5 * (1e-3 * 0.5 / (0.5 + 1e-8) + 0.01 * 1);
  assert_double_equal(gv(fx, "w", 0), want, 1e-15);
  assert_double_equal(fx->lr, 5e-4, 0);
  ir_module_free(fx->m);
  fx->m = NULL;
  setup_two(fx, const_lr(fx, 5e-4), "lr = @lr\noptimizer = adamw "
            "{lr = 0.001, weight_decay = 0.01}", 1);
  for (int t = 1; t <= 3; t++) {
    step2(fx, 0, 0, 0, 0);
    assert_double_equal(gv(fx, "w", 0), pow(1 - 5e-6, t), 1e-15);
  }
}

/* amsgrad: the denominator uses the running max of v.  Reference: PyTorch's
** formulas transcribed. */
static void test_adam_amsgrad(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "optimizer = adam {amsgrad = true, lr = 0.01}", 1);
  const double g[4] = {1.0, 0.01, -0.01, 0.02};
  double th = 1, m = 0, v = 0, vmax = 0;
  for (int t = 1; t <= 4; t++) {
    step2(fx, g[t - 1], g[t - 1], g[t - 1], g[t - 1]);
    m = 0.9 * m + 0.1 * g[t - 1];
    v = 0.999 * v + 0.001 * g[t - 1] * g[t - 1];
    vmax = fmax(vmax, v);
    th -= 0.01 / (1 - pow(0.9, t)) * m /
          (sqrt(vmax) / sqrt(1 - pow(0.999, t)) + 1e-8);
    assert_double_equal(gv(fx, "w", 0), th, 1e-13);
    assert_double_equal(gv(fx, "opt.vmax.w", 0), vmax, 1e-15);
  }
  assert_true(gv(fx, "opt.v.w", 0) < vmax); /* the max matters here */
}

/* --------------------------------------------------------------- sgd */

static void run_sgd(Fx *fx, const char *settings, const double *want) {
  setup_two(fx, "", settings, 0);
  for (int t = 0; t < 3; t++) {
    step2(fx, t + 1, t + 1, 0, 0);
    assert_double_equal(gv(fx, "w", 0), want[t], 1e-14);
  }
  ir_module_free(fx->m);
  fx->m = NULL;
}

/* Grads 1, 2, 3 on w_0 = 0 with lr 0.1, momentum 0.9 (PyTorch: buf = g at
** the first step, then buf = mu buf + (1 - d) g; nesterov g + mu buf):
**   plain:     buf 1, 2.9, 5.61        w -0.1, -0.39, -0.951
**   nesterov:  g' 1.9, 4.61, 8.049     w -0.19, -0.651, -1.4559
**   dampening 0.5: buf 1, 1.9, 3.21    w -0.1, -0.29, -0.611 */
static void test_sgd_momentum(void **state) {
  Fx *fx = *state;
  static const double plain[3] = {-0.1, -0.39, -0.951};
  static const double nest[3] = {-0.19, -0.651, -1.4559};
  static const double damp[3] = {-0.1, -0.29, -0.611};
  static const double none[3] = {-0.1, -0.3, -0.6};
  run_sgd(fx, "optimizer = sgd {lr = 0.1, momentum = 0.9}", plain);
  run_sgd(fx, "optimizer = sgd {lr = 0.1, momentum = 0.9, nesterov = true}",
          nest);
  run_sgd(fx, "optimizer = sgd {dampening = 0.5, lr = 0.1, momentum = 0.9}",
          damp);
  run_sgd(fx, "optimizer = sgd {lr = 0.1}", none);
}

/* Weight decay 0.1, lr 0.1, zero grads: w = 0.99^t; the bias stays. */
static void test_sgd_weight_decay(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "optimizer = sgd {lr = 0.1, weight_decay = 0.1}", 1);
  for (int t = 1; t <= 3; t++) {
    step2(fx, 0, 0, 0, 0);
    assert_double_equal(gv(fx, "w", 0), pow(0.99, t), 1e-15);
    assert_double_equal(gv(fx, "b", 0), 1, 0);
  }
}

/* ---------------------------------------------------------- clipping */

/* Global norm over both params: |(6, 0, 8, 0)| = 10, clip 1: every gradient
** times 1 / (10 + 1e-6); a norm below clip leaves them alone. */
static void test_clip_global_norm(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "clip = 1.0\noptimizer = sgd {lr = 1.0}", 0);
  step2(fx, 6, 0, 8, 0);
  double k = 1 / (10 + 1e-6);
  assert_double_equal(gv(fx, "w", 0), -6 * k, 1e-15);
  assert_double_equal(gv(fx, "b", 0), -8 * k, 1e-15);
  double nw = hypot(gv(fx, "w", 0), gv(fx, "b", 0));
  assert_double_equal(nw, 1, 1e-6);
  init_globals(fx);
  step2(fx, 0.3, 0, 0.4, 0);
  assert_double_equal(gv(fx, "w", 0), -0.3, 1e-15);
  assert_double_equal(gv(fx, "b", 0), -0.4, 1e-15);
}

/* ----------------------------------------------------- other optimizers */

/* torch.optim.RMSprop, alpha 0.9, eps 1e-8, lr 0.01, (centered, momentum
** 0.5) against its formulas transcribed. */
static void test_rmsprop(void **state) {
  Fx *fx = *state;
  for (int c = 0; c < 2; c++) {
    setup_two(fx, "", c ? "optimizer = rmsprop {alpha = 0.9, centered = true, "
                          "lr = 0.01, momentum = 0.5}"
                        : "optimizer = rmsprop {alpha = 0.9, lr = 0.01}", 1);
    double th = 1, sq = 0, ga = 0, buf = 0;
    const double g[3] = {0.5, -1.0, 0.25};
    for (int t = 0; t < 3; t++) {
      step2(fx, g[t], g[t], 0, 0);
      sq = 0.9 * sq + 0.1 * g[t] * g[t];
      double avg = sqrt(sq) + 1e-8;
      if (c) {
        ga = 0.9 * ga + 0.1 * g[t];
        avg = sqrt(sq - ga * ga) + 1e-8;
        buf = 0.5 * buf + g[t] / avg;
        th -= 0.01 * buf;
      } else {
        th -= 0.01 * g[t] / avg;
      }
      assert_double_equal(gv(fx, "w", 0), th, 1e-14);
    }
    assert_non_null(ir_global_find(fx->m, "opt.square_avg.w"));
    assert_true((ir_global_find(fx->m, "opt.grad_avg.w") != NULL) == (c == 1));
    ir_module_free(fx->m);
    fx->m = NULL;
  }
}

/* torch.optim.Adagrad, lr 0.1, lr_decay 0.5, weight decay 0.1 (w only). */
static void test_adagrad(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "optimizer = adagrad {lr = 0.1, lr_decay = 0.5, "
            "weight_decay = 0.1}", 1);
  double th = 1, sum = 0;
  const double g[3] = {0.5, -1.0, 0.25};
  for (int t = 1; t <= 3; t++) {
    step2(fx, g[t - 1], g[t - 1], 0, 0);
    double gg = g[t - 1] + 0.1 * th;
    double clr = 0.1 / (1 + (t - 1) * 0.5);
    sum += gg * gg;
    th -= clr * gg / (sqrt(sum) + 1e-10);
    assert_double_equal(gv(fx, "w", 0), th, 1e-14);
  }
}

/* Lion (Chen et al. 2023), lr 0.01, betas (0.9, 0.99), wd 0.1. */
static void test_lion(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "optimizer = lion {betas = [0.9, 0.99], lr = 0.01, "
            "weight_decay = 0.1}", 1);
  double th = 1, m = 0;
  const double g[4] = {0.5, -1.0, 0.25, 0.3};
  for (int t = 0; t < 4; t++) {
    step2(fx, g[t], g[t], 0, 0);
    th *= 1 - 0.01 * 0.1;
    double c = 0.9 * m + 0.1 * g[t];
    th -= 0.01 * (c > 0 ? 1 : c < 0 ? -1 : 0);
    m = 0.99 * m + 0.01 * g[t];
    assert_double_equal(gv(fx, "w", 0), th, 1e-15);
  }
}

/* ------------------------------------------------------------ averaging */

/* algorithms.md section 9: the stream 3, 1, 4, 1, 5, 9, 2, 6.  sgd with
** lr 1 and gradient w - x moves w to x exactly at each step. */
static const double stream[8] = {3, 1, 4, 1, 5, 9, 2, 6};

static void feed_stream(Fx *fx) {
  for (int i = 0; i < 8; i++) {
    double w = gv(fx, "w", 0), b = gv(fx, "b", 0);
    step2(fx, w - stream[i], w - stream[i], b - stream[i], b - stream[i]);
    assert_double_equal(gv(fx, "w", 0), stream[i], 1e-15);
  }
}

static void test_polyak(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "average = polyak\noptimizer = sgd {lr = 1.0}", 0);
  /* before any step the evaluation weights are the params */
  double w0[2] = {7, 8};
  set_global(fx, "w", 2, w0);
  IrTensor *av = call(fx, "average", NULL, 0, 0);
  assert_double_equal(elem(fx, &av[0], 1), 8, 0);
  set_global(fx, "w", 2, (double[]){0, 0});
  feed_stream(fx);
  assert_double_equal(gv(fx, "avg.w", 0), 3.875, 1e-14);
  assert_double_equal(gv(fx, "avg.b", 1), 3.875, 1e-14);
  av = call(fx, "average", NULL, 0, 0);
  assert_double_equal(elem(fx, &av[0], 0), 3.875, 1e-14);
  assert_double_equal(elem(fx, &av[1], 0), 3.875, 1e-14);
  assert_double_equal(gv(fx, "w", 0), 6, 0); /* the params are untouched */
}

static void test_ema(void **state) {
  Fx *fx = *state;
  setup_two(fx, "", "average = ema {decay = 0.9}\noptimizer = sgd {lr = 1.0}",
            0);
  feed_stream(fx);
  assert_double_equal(gv(fx, "avg.w", 0), 2.371939170, 1e-9);
  IrTensor *av = call(fx, "average", NULL, 0, 0);
  assert_double_equal(elem(fx, &av[0], 0), 4.164710464, 1e-9);
  assert_double_equal(elem(fx, &av[1], 1), 4.164710464, 1e-9);
}

/* -------------------------------------- schedules through the frontend */

/* Compile .nn text whose model is p = x @ fc.w (x f32[B,2], w f32[2,1]),
** loss mse(p, y), with the given train settings (batch 1 unless given). */
static void compile_model(Fx *fx, const char *train) {
  char path[96];
  snprintf(path, sizeof path, "%s/t.nn", fx->dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "layer lin(x: f32[B, 2]) -> f32[B, 1] {\n"
          "    param w: f32[2, 1] = zeros\n"
          "    return x @ w\n"
          "}\n"
          "model q {\n"
          "    input x: f32[B, 2]\n"
          "    input y: f32[B, 1]\n"
          "    let p = lin(x) as fc\n"
          "    output p\n"
          "    loss mse(p, y)\n"
          "}\n"
          "train q {\n"
          "%s\n"
          "}\n", train);
  fclose(f);
  FrontendOpts o = {0};
  const char *inc[] = {NNC_SOURCE_DIR "/std"};
  o.incdirs = inc;
  o.nincdirs = 1;
  fx->m = frontend_compile(fx->d, path, &o);
  if (!fx->m) fail_msg("frontend:\n%s", fx_errors(fx));
}

/* compile_model, plus the model's true @loss_grad written here (batch 1):
** grad = 2 x^T (x w - y); then the optimizer pass. */
static void compile_nn(Fx *fx, const char *train) {
  compile_model(fx, arena_printf(fx->a, "    batch 1\n%s", train));
  IrModule *m = fx->m;
  IrFunc *loss = ir_func_find(m, "loss");
  IrFunc *lg = ir_func_new(m, "loss_grad");
  IrBlock *b = lg->body;
  IrValue *x = ir_block_add_arg(m, b, loss->body->args[0]->type, "x");
  IrValue *y = ir_block_add_arg(m, b, loss->body->args[1]->type, "y");
  IrValue *w = ir_global_find(m, "fc.w")->value;
  const char *err = NULL;
  IrValue *a2[2] = {x, w};
  IrValue *p = ir_build(m, b, IR_OP_MATMUL, 2, a2, NULL, NULL, (SrcLoc){0},
                        &err, NULL);
  IrValue *a3[2] = {p, y};
  IrValue *l = ir_build(m, b, IR_OP_MSE, 2, a3, NULL, NULL, (SrcLoc){0}, &err,
                        NULL);
  IrValue *d = ir_build(m, b, IR_OP_SUB, 2, a3, NULL, NULL, (SrcLoc){0}, &err,
                        NULL);
  IrAttrs at = {0};
  int64_t perm[2] = {1, 0};
  ir_attr_set_ints(m, &at, "perm", 2, perm);
  IrValue *xt = ir_build(m, b, IR_OP_TRANSPOSE, 1, &x, &at, NULL, (SrcLoc){0},
                         &err, NULL);
  IrValue *a4[2] = {xt, d};
  IrValue *gm = ir_build(m, b, IR_OP_MATMUL, 2, a4, NULL, NULL, (SrcLoc){0},
                         &err, NULL);
  IrAttrs ct = {0};
  ir_attr_set_float(m, &ct, "value", 2.0);
  IrType st = ir_type_scalar(DT_F32);
  IrValue *two = ir_build(m, b, IR_OP_CONSTANT, 0, NULL, &ct, &st,
                          (SrcLoc){0}, &err, NULL);
  IrValue *a5[2] = {gm, two};
  IrValue *g = ir_build(m, b, IR_OP_MUL, 2, a5, NULL, NULL, (SrcLoc){0}, &err,
                        NULL);
  assert_non_null(g);
  IrValue *rets[2] = {l, g};
  const char *names[2] = {"loss", "grad.fc.w"};
  ir_func_set_rets(m, lg, 2, rets, names);
  assert_true(ir_verify(m, stderr));
  run_passes(fx, "optimizer,canonicalize");
  init_globals(fx);
}

/* Run one step at step s (setting @opt.step) with x = (1, 2), y = 0 and
** w = (1, 1); check lr and w_new = w - lr * (6, 12) (sgd, lr from @lr). */
static double lr_at(Fx *fx, double s, double total) {
  set_global(fx, "opt.step", 1, &s);
  set_global(fx, "fc.w", 2, (double[]){1, 1});
  double x[2] = {1, 2}, y[1] = {0};
  const double *in[2] = {x, y};
  call(fx, "train_step", in, 0, total);
  assert_double_equal(fx->loss, 9, 1e-15);
  assert_double_equal(gv(fx, "fc.w", 0), 1 - fx->lr * 6, 1e-15);
  assert_double_equal(gv(fx, "fc.w", 1), 1 - fx->lr * 12, 1e-15);
  assert_double_equal(gv(fx, "opt.step", 0), s + 1, 0);
  return fx->lr;
}

static void reset(Fx *fx) {
  ir_module_free(fx->m);
  fx->m = NULL;
}

/* warmup_cosine(step, warmup: 10, total: 110):
**   (step + 1) / 10 below 10, else 0.5 (1 + cos(pi (step - 10) / 100)). */
static void test_schedule_warmup_cosine(void **state) {
  Fx *fx = *state;
  compile_nn(fx, "optimizer sgd(lr: 1.0)\n"
                 "lr 1e-3 * warmup_cosine(step, warmup: 10, total: total_steps)");
  assert_double_equal(lr_at(fx, 0, 110), 1e-4, 1e-15);
  assert_double_equal(lr_at(fx, 4, 110), 5e-4, 1e-15);
  assert_double_equal(lr_at(fx, 10, 110), 1e-3, 1e-15);
  assert_double_equal(lr_at(fx, 60, 110), 5e-4, 1e-15);
  assert_double_equal(lr_at(fx, 35, 110), 1e-3 * 0.5 * (1 + sqrt(0.5)), 1e-15);
  assert_double_equal(lr_at(fx, 110, 110), 0, 1e-15);
  assert_double_equal(lr_at(fx, 500, 110), 0, 1e-15);
}

/* linear_decay(step, total) = clamp(1 - step / total, 0, 1). */
static void test_schedule_linear_decay(void **state) {
  Fx *fx = *state;
  compile_nn(fx, "optimizer sgd(lr: 1.0)\n"
                 "lr 0.1 * linear_decay(step, total: total_steps)");
  assert_double_equal(lr_at(fx, 0, 100), 0.1, 1e-15);
  assert_double_equal(lr_at(fx, 25, 100), 0.075, 1e-15);
  assert_double_equal(lr_at(fx, 99, 100), 0.001, 1e-15);
  assert_double_equal(lr_at(fx, 150, 100), 0, 0);
}

/* step_decay(step, every: 10, gamma: 0.5) = 0.5 ** floor(step / 10). */
static void test_schedule_step_decay(void **state) {
  Fx *fx = *state;
  compile_nn(fx, "optimizer sgd(lr: 1.0)\n"
                 "lr 0.2 * step_decay(step, every: 10, gamma: 0.5)");
  assert_double_equal(lr_at(fx, 0, 100), 0.2, 1e-15);
  assert_double_equal(lr_at(fx, 9, 100), 0.2, 1e-15);
  assert_double_equal(lr_at(fx, 10, 100), 0.1, 1e-15);
  assert_double_equal(lr_at(fx, 25, 100), 0.05, 1e-15);
}

/* inverse_sqrt(step, warmup: 4): (step + 1) / 4 below 4, else
** sqrt(4 / step). */
static void test_schedule_inverse_sqrt(void **state) {
  Fx *fx = *state;
  compile_nn(fx, "optimizer sgd(lr: 1.0)\n"
                 "lr 0.01 * inverse_sqrt(step, warmup: 4)");
  assert_double_equal(lr_at(fx, 0, 100), 0.0025, 1e-15);
  assert_double_equal(lr_at(fx, 3, 100), 0.01, 1e-15);
  assert_double_equal(lr_at(fx, 4, 100), 0.01, 1e-12);
  assert_double_equal(lr_at(fx, 16, 100), 0.005, 1e-12);
  assert_double_equal(lr_at(fx, 100, 100), 0.002, 1e-12);
}

/* Robbins-Monro: lr = 0.5 / (1 + step) ** 0.6; without an lr expression
** the optimizer's lr is used. */
static void test_schedule_robbins_monro(void **state) {
  Fx *fx = *state;
  compile_nn(fx, "optimizer sgd(lr: 1.0)\nlr 0.5 / (1 + step) ** 0.6");
  assert_double_equal(lr_at(fx, 0, 100), 0.5, 1e-15);
  assert_double_equal(lr_at(fx, 3, 100), 0.5 / pow(4, 0.6), 1e-15);
  assert_double_equal(lr_at(fx, 99, 100), 0.5 / pow(100, 0.6), 1e-15);
  reset(fx);
  compile_nn(fx, "optimizer sgd(lr: 0.125)");
  assert_double_equal(lr_at(fx, 0, 100), 0.125, 0);
  assert_double_equal(lr_at(fx, 57, 100), 0.125, 0);
}

/* The epoch argument reaches @lr. */
static void test_schedule_epoch(void **state) {
  Fx *fx = *state;
  compile_nn(fx, "optimizer sgd(lr: 1.0)\nlr 0.1 * 0.5 ** epoch");
  set_global(fx, "fc.w", 2, (double[]){1, 1});
  double x[2] = {1, 2}, y[1] = {0};
  const double *in[2] = {x, y};
  call(fx, "train_step", in, 3, 100);
  assert_double_equal(fx->lr, 0.0125, 1e-15);
}

/* With the autodiff pass (when it is registered): the same model, batch 4,
** through canonicalize,autodiff,optimizer,canonicalize.  One sgd step
** against grad = (2/N) x^T (x w - y) computed here, then adamw on a
** noiseless linear target must drive the loss below 1e-4. */
static void test_with_autodiff(void **state) {
  Fx *fx = *state;
  if (!pass_lookup("autodiff")) skip();
  compile_model(fx, "    batch 4\n    optimizer sgd(lr: 0.1)");
  run_passes(fx, "canonicalize,autodiff,optimizer,canonicalize");
  init_globals(fx);
  double w[2] = {0.5, -1}, x[8] = {1, 2, -1, 0.5, 3, -2, 0, 1},
         y[4] = {1, 0, -1, 2};
  set_global(fx, "fc.w", 2, w);
  const double *in[2] = {x, y};
  call(fx, "train_step", in, 0, 100);
  double g[2] = {0, 0}, loss = 0;
  for (int i = 0; i < 4; i++) {
    double d = x[2 * i] * w[0] + x[2 * i + 1] * w[1] - y[i];
    loss += d * d / 4;
    g[0] += 2 * x[2 * i] * d / 4;
    g[1] += 2 * x[2 * i + 1] * d / 4;
  }
  assert_double_equal(fx->loss, loss, 1e-12);
  assert_double_equal(fx->lr, 0.1, 0);
  assert_double_equal(gv(fx, "fc.w", 0), w[0] - 0.1 * g[0], 1e-12);
  assert_double_equal(gv(fx, "fc.w", 1), w[1] - 0.1 * g[1], 1e-12);
  reset(fx);
  compile_model(fx, "    batch 4\n    optimizer adamw(lr: 0.05)\n"
                    "    lr 0.05 * linear_decay(step, total: total_steps)");
  run_passes(fx, "canonicalize,autodiff,optimizer,canonicalize");
  init_globals(fx);
  double yt[4];
  for (int i = 0; i < 4; i++) yt[i] = 1.5 * x[2 * i] - 0.5 * x[2 * i + 1];
  const double *in2[2] = {x, yt};
  double first = 0;
  for (int s = 0; s < 400; s++) {
    call(fx, "train_step", in2, 0, 400);
    if (s == 0) first = fx->loss;
  }
  assert_true(first > 1);
  if (!(fx->loss < 1e-4)) fail_msg("loss %g after 400 steps", fx->loss);
  assert_double_equal(gv(fx, "fc.w", 0), 1.5, 0.05);
}

/* The module printed after autodiff,optimizer, parsed and put through the
** same passes again, prints the same (the round trip of the default
** pipeline): the re-derived @loss_grad is dropped. */
static void test_pipeline_idempotent(void **state) {
  Fx *fx = *state;
  if (!pass_lookup("autodiff")) skip();
  compile_model(fx, "    batch 4\n    optimizer adamw(lr: 0.05)\n"
                    "    average ema(0.99)\n    clip 1.0\n"
                    "    lr 0.05 * linear_decay(step, total: total_steps)");
  const char *list = "canonicalize,autodiff,optimizer,canonicalize";
  run_passes(fx, list);
  const char *a = print_module(fx);
  ir_module_free(fx->m);
  fx->m = NULL;
  load(fx, a);
  run_passes(fx, list);
  assert_null(ir_func_find(fx->m, "loss_grad"));
  assert_string_equal(print_module(fx), a);
}

/* Params of other float dtypes (f64, bf16, f16): every optimizer builds a
** well-typed step (scalars cast to the param's dtype), and a positive
** gradient lowers every param. */
static void test_param_dtypes(void **state) {
  Fx *fx = *state;
  static const char *const opts[] = {
      "sgd {dampening = 0.1, lr = 0.1, momentum = 0.9, weight_decay = 0.1}",
      "sgd {lr = 0.1, momentum = 0.9, nesterov = true}",
      "adam {amsgrad = true, lr = 0.01, weight_decay = 0.1}",
      "adamw {lr = 0.01}",
      "adamw_paper {lr = 0.01, weight_decay = 0.1}",
      "rmsprop {centered = true, lr = 0.01, momentum = 0.5, weight_decay = 0.1}",
      "adagrad {lr = 0.1, lr_decay = 0.1, weight_decay = 0.1}",
      "lion {lr = 0.01, weight_decay = 0.1}"};
  for (int k = 0; k < (int)(sizeof opts / sizeof opts[0]); k++) {
    load(fx, arena_printf(fx->a,
        "module @t\n"
        "param @a : f64[2,2] = zeros\nparam @h : bf16[2,2] = zeros\n"
        "param @c : f16[2] = zeros\n"
        "func @loss_grad(%%ga: f64[2,2], %%gh: bf16[2,2], %%gc: f16[2]) -> "
        "(loss: f32[], grad.a: f64[2,2], grad.h: bf16[2,2], grad.c: f16[2]) {\n"
        "  %%0 = constant {value = 0.0} : f32[]\n"
        "  return %%0, %%ga, %%gh, %%gc\n}\n"
        "train @t {\n  average = ema {decay = 0.5}\n  clip = 10.0\n"
        "  optimizer = %s\n}\n", opts[k]));
    run_passes(fx, "optimizer,canonicalize");
    init_globals(fx);
    double one[4] = {1, 1, 1, 1};
    set_global(fx, "a", 4, one);
    set_global(fx, "h", 4, one);
    set_global(fx, "c", 2, one);
    double ga[4] = {0.5, 0.5, 0.5, 0.5};
    const double *in[3] = {ga, ga, ga};
    for (int t = 0; t < 2; t++) call(fx, "train_step", in, 0, 10);
    const char *names[3] = {"a", "h", "c"};
    for (int i = 0; i < 3; i++) {
      double v = gv(fx, names[i], 0);
      if (!(v < 1 && v > 0.5)) fail_msg("%s: @%s = %g", opts[k], names[i], v);
    }
    call(fx, "average", NULL, 0, 0);
    ir_module_free(fx->m);
    fx->m = NULL;
  }
}

/* examples/mlp_tiny.nn (sgd on a Robbins-Monro lr, polyak averaging)
** trained for its 100 steps on examples/data/tiny.csv through the
** interpreter: the mean loss over the data must fall well below its start,
** and the polyak weights of @average must classify the data. */
static double tiny_eval(Fx *fx, const double *rows, int n, double *acc) {
  double loss = 0, hits = 0;
  for (int i = 0; i + 4 <= n; i += 4) {
    double x[16], y[4];
    for (int r = 0; r < 4; r++) {
      for (int c = 0; c < 4; c++) x[4 * r + c] = rows[5 * (i + r) + c];
      y[r] = rows[5 * (i + r) + 4];
    }
    const double *in[2] = {x, y};
    IrTensor *o = call(fx, "eval_step", in, 0, 0);
    loss += elem(fx, &o[0], 0);
    hits += elem(fx, &o[1], 0);
  }
  *acc = hits / (n / 4);
  return loss / (n / 4);
}

static void test_tiny_model_trains(void **state) {
  Fx *fx = *state;
  if (!pass_lookup("autodiff")) skip();
  FILE *f = fopen(NNC_SOURCE_DIR "/examples/data/tiny.csv", "r");
  assert_non_null(f);
  double rows[300];
  int n = 0;
  while (n < 60 && fscanf(f, "%lf,%lf,%lf,%lf,%lf", &rows[5 * n],
                          &rows[5 * n + 1], &rows[5 * n + 2],
                          &rows[5 * n + 3], &rows[5 * n + 4]) == 5)
    n++;
  fclose(f);
  assert_int_equal(n, 60);
  FrontendOpts o = {0};
  const char *inc[] = {NNC_SOURCE_DIR "/std"};
  o.incdirs = inc;
  o.nincdirs = 1;
  fx->m = frontend_compile(fx->d, NNC_SOURCE_DIR "/examples/mlp_tiny.nn", &o);
  if (!fx->m) fail_msg("frontend:\n%s", fx_errors(fx));
  run_passes(fx, "canonicalize,autodiff,optimizer,canonicalize");
  init_globals(fx);
  uint64_t seed = 0x9E3779B97F4A7C15ULL;
  int gi = 0;
  for (IrGlobal *g = fx->m->globals; g; g = g->next, gi++) {
    if (g->kind != IRG_PARAM || g->type.rank < 2) continue;
    for (int64_t k = 0; k < ir_type_numel(&g->type); k++) {
      seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
      set_elem(fx, &fx->glob[gi], k, (double)(seed >> 11) * 0x1p-53 - 0.5);
    }
  }
  double acc0, loss0 = tiny_eval(fx, rows, n, &acc0);
  for (int s = 0; s < 100; s++) {
    int i = (s % 15) * 4;
    double x[16], y[4];
    for (int r = 0; r < 4; r++) {
      for (int c = 0; c < 4; c++) x[4 * r + c] = rows[5 * (i + r) + c];
      y[r] = rows[5 * (i + r) + 4];
    }
    const double *in[2] = {x, y};
    call(fx, "train_step", in, s / 15, 100);
  }
  double acc, loss = tiny_eval(fx, rows, n, &acc);
  /* evaluate with the polyak weights in place of the params */
  IrTensor *avg = call(fx, "average", NULL, 0, 0);
  IrTensor saved[MAXG];
  memcpy(saved, fx->glob, sizeof saved);
  gi = 0;
  int k = 0;
  for (IrGlobal *g = fx->m->globals; g; g = g->next, gi++)
    if (g->kind == IRG_PARAM) fx->glob[gi] = avg[k++];
  double acc_avg, loss_avg = tiny_eval(fx, rows, n, &acc_avg);
  memcpy(fx->glob, saved, sizeof saved);
  print_message("mlp_tiny: loss %.4f -> %.4f (polyak %.4f), accuracy %.3f -> "
                "%.3f (polyak %.3f)\n", loss0, loss, loss_avg, acc0, acc,
                acc_avg);
  assert_true(loss < 0.5 * loss0);
  assert_true(acc >= 0.9);
  assert_true(acc_avg >= 0.9);
  assert_true(loss_avg < 0.5 * loss0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, fx_setup, fx_teardown)
      T(test_train_step_contract),
      T(test_state_updates_kept),
      T(test_no_train_block_no_change),
      T(test_no_loss_grad_no_change),
      T(test_errors),
      T(test_missing_grad),
      T(test_adamw_oracle),
      T(test_adam_l2_oracle),
      T(test_adamw_oracle_f32),
      T(test_adamw_zero_grad),
      T(test_adamw_paper),
      T(test_adam_amsgrad),
      T(test_sgd_momentum),
      T(test_sgd_weight_decay),
      T(test_clip_global_norm),
      T(test_rmsprop),
      T(test_adagrad),
      T(test_lion),
      T(test_polyak),
      T(test_ema),
      T(test_schedule_warmup_cosine),
      T(test_schedule_linear_decay),
      T(test_schedule_step_decay),
      T(test_schedule_inverse_sqrt),
      T(test_schedule_robbins_monro),
      T(test_schedule_epoch),
      T(test_with_autodiff),
      T(test_param_dtypes),
      T(test_pipeline_idempotent),
      T(test_tiny_model_trains),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

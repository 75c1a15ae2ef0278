/*
** This file contains the unit tests of the autodiff pass
** (passes/autodiff.c, passes/autodiff_rules.c): the rule table against
** ops.def, and a gradient check of every differentiable op.
**
** Each case is a small module in .nnir whose parameters feed the op (odd
** sizes, broadcasting where the op broadcasts) and whose @loss is
** sum(op(...) * r) for a random input r.  The pass builds @loss_grad; the
** test checks that the module verifies, then compares every element of
** every grad.<param> (f64 interpreter) with the central difference
** (L(p + eps) - L(p - eps)) / 2 eps of @loss, eps = 1e-6, and requires
** |analytic - numeric| <= 1e-6 * max(1, |numeric|).  Parameters are
** seeded normals (times `scale`; |p| + 0.5 for ops defined on positives);
** with eps 1e-6 a kink (relu at 0, max ties) is practically never crossed.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../../ir/arena.h"
#include "../../ir/diag.h"
#include "../../ir/ir.h"
#include "../../passes/autodiff_int.h"
#include "../../passes/pass.h"

/* ---------------------------------------------------------- harness */

typedef struct Case {
  const char *name;
  const char *text;   /* params and @loss */
  double scale;       /* parameter std */
  bool positive;      /* parameters |p| + 0.5 */
  int64_t int_range;  /* integer inputs uniform in [0, int_range) */
} Case;

typedef struct Rng {
  uint64_t s;
} Rng;

static double rnd_u(Rng *r) {
  r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (double)(r->s >> 11) * 0x1p-53;
}

static double rnd_n(Rng *r) {
  double u = rnd_u(r), v = rnd_u(r);
  return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

/* A host tensor of type t for the f64 interpreter, filled by kind. */
static IrTensor make_tensor(Arena *a, const IrType *t, Rng *r, const Case *c,
                            bool param) {
  IrTensor x = {*t, NULL};
  int64_t n = ir_type_numel(t);
  int sz = ir_interp_elem_size(t->dtype, true);
  x.data = arena_zalloc(a, (size_t)(n ? n : 1) * (size_t)sz, 8);
  for (int64_t i = 0; i < n; i++) {
    if (ir_dtype_is_float(t->dtype)) {
      double v = rnd_n(r) * (param ? c->scale : 1);
      if (param && c->positive) v = fabs(v) + 0.5;
      ((double *)x.data)[i] = v;
    } else if (t->dtype == DT_BOOL) {
      ((uint8_t *)x.data)[i] = rnd_u(r) < 0.5;
    } else {
      int64_t k = (int64_t)(rnd_u(r) * (double)c->int_range);
      if (t->dtype == DT_I32) ((int32_t *)x.data)[i] = (int32_t)k;
      else if (t->dtype == DT_I64) ((int64_t *)x.data)[i] = k;
      else ((uint8_t *)x.data)[i] = (uint8_t)k;
    }
  }
  return x;
}

static double run_loss(const IrModule *m, const IrFunc *f, const IrTensor *in,
                       const IrTensor *gl, Arena *a) {
  IrInterpOpts o = {.f64 = true, .training = true, .seed = 1, .step = 0};
  IrTensor *outs = ARENA_ARRAY(a, IrTensor, f->body->nrets + 1);
  const char *err = NULL;
  if (!ir_interp(m, f, in, gl, outs, &o, a, &err)) fail_msg("interp: %s", err);
  return ((double *)outs[0].data)[0];
}

/* Parse, differentiate, verify, and compare every gradient element. */
static void check_case(const Case *c) {
  Arena *a = arena_new();
  const char *err = NULL;
  IrModule *m = ir_parse(c->name, c->text, strlen(c->text), a, &err);
  if (!m) fail_msg("%s: %s", c->name, err ? err : "parse failed");
  Diag *d = diag_new(stderr);
  Arena *scratch = arena_new();
  PassOpts po = {.verify = true};
  PassCtx cx = {.scratch = scratch, .diag = d, .opt = &po};
  if (!pass_run_pipeline(m, "autodiff", &cx)) fail_msg("%s: autodiff failed", c->name);
  if (!ir_verify(m, stderr)) fail_msg("%s: output does not verify", c->name);
  IrFunc *loss = ir_func_find(m, "loss"), *lg = ir_func_find(m, "loss_grad");
  assert_non_null(lg);
  Rng r = {0x9e3779b97f4a7c15ULL ^ (uint64_t)strlen(c->name)};
  int nin = loss->body->nargs, ng = 0;
  IrTensor *in = ARENA_ARRAY(a, IrTensor, nin + 1);
  for (int i = 0; i < nin; i++)
    in[i] = make_tensor(a, &loss->body->args[i]->type, &r, c, false);
  for (IrGlobal *g = m->globals; g; g = g->next) ng++;
  IrTensor *gl = ARENA_ARRAY(a, IrTensor, ng + 1);
  int gi = 0;
  for (IrGlobal *g = m->globals; g; g = g->next) gl[gi++] = make_tensor(a, &g->type, &r, c, true);
  IrInterpOpts o = {.f64 = true, .training = true, .seed = 1, .step = 0};
  IrTensor *outs = ARENA_ARRAY(a, IrTensor, lg->body->nrets + 1);
  if (!ir_interp(m, lg, in, gl, outs, &o, a, &err)) fail_msg("%s: interp: %s", c->name, err);
  double l0 = run_loss(m, loss, in, gl, a);
  assert_true(fabs(((double *)outs[0].data)[0] - l0) <= 1e-12 * fmax(1, fabs(l0)));
  int k = loss->body->nrets, checked = 0;
  gi = 0;
  for (IrGlobal *g = m->globals; g; g = g->next, gi++) {
    if (g->kind != IRG_PARAM) continue;
    const double *an = outs[k++].data;
    double *p = gl[gi].data;
    for (int64_t i = 0; i < ir_type_numel(&g->type); i++) {
      double keep = p[i], eps = 1e-6;
      p[i] = keep + eps;
      double lp = run_loss(m, loss, in, gl, a);
      p[i] = keep - eps;
      double lm = run_loss(m, loss, in, gl, a);
      p[i] = keep;
      double num = (lp - lm) / (2 * eps);
      if (!(fabs(an[i] - num) <= 1e-6 * fmax(1, fabs(num))))
        fail_msg("%s: grad.%s[%lld] = %.12g, central difference %.12g", c->name,
                 g->name, (long long)i, an[i], num);
      checked++;
    }
  }
  assert_true(checked > 0);
  arena_free(scratch);
  diag_free(d);
  ir_module_free(m);
  arena_free(a);
}

static void test_autodiff_case(void **state) { check_case(*state); }

/* ------------------------------------------------------------ the table */

/* Every OPF_DIFF op has a rule, and no OPF_NOGRAD op has one; scan
** (OPF_REGION) is differentiated by autodiff.c itself. */
static void test_autodiff_rule_table(void **state) {
  (void)state;
  for (int op = 0; op < IR_OP_COUNT; op++) {
    unsigned fl = ir_op_info[op].flags;
    bool has = autodiff_rule((IrOp)op) != NULL;
    if ((fl & OPF_DIFF) && !(fl & OPF_REGION) && !has)
      fail_msg("differentiable op '%s' has no gradient rule", ir_op_info[op].name);
    if ((fl & OPF_NOGRAD) && has)
      fail_msg("op '%s' is OPF_NOGRAD but has a gradient rule", ir_op_info[op].name);
    if (!(fl & OPF_DIFF) && has)
      fail_msg("op '%s' is not differentiable but has a rule", ir_op_info[op].name);
  }
}

/* A module without @loss is left alone. */
static void test_autodiff_no_loss(void **state) {
  (void)state;
  const char *t = "func @forward(%x: f32[3]) -> (y: f32[3]) {\n"
                  "  %0 = exp %x : f32[3]\n  return %0\n}\n";
  Arena *a = arena_new();
  const char *err = NULL;
  IrModule *m = ir_parse("t", t, strlen(t), a, &err);
  assert_non_null(m);
  Diag *d = diag_new(stderr);
  PassOpts po = {.verify = true};
  PassCtx cx = {.scratch = arena_new(), .diag = d, .opt = &po};
  assert_true(pass_run_pipeline(m, "autodiff", &cx));
  assert_null(ir_func_find(m, "loss_grad"));
  arena_free(cx.scratch);
  diag_free(d);
  ir_module_free(m);
  arena_free(a);
}

/* The signature: loss, state updates, grad.<param> in module order, and
** a zero gradient for an unused parameter. */
static void test_autodiff_signature(void **state) {
  (void)state;
  const char *t =
      "param @a : f32[3] = zeros\n"
      "state @s : f32[3] = zeros\n"
      "param @unused : f32[2] = zeros\n"
      "func @loss(%x: f32[3]) -> (loss: f32[], @s: f32[3]) {\n"
      "  %0 = mul @a, %x : f32[3]\n"
      "  %1 = sum %0 : f32[]\n"
      "  %2 = add @s, %x : f32[3]\n"
      "  return %1, %2\n}\n";
  Arena *a = arena_new();
  const char *err = NULL;
  IrModule *m = ir_parse("t", t, strlen(t), a, &err);
  if (!m) fail_msg("%s", err);
  Diag *d = diag_new(stderr);
  PassOpts po = {.verify = true};
  PassCtx cx = {.scratch = arena_new(), .diag = d, .opt = &po};
  assert_true(pass_run_pipeline(m, "autodiff", &cx));
  IrFunc *f = ir_func_find(m, "loss_grad");
  assert_non_null(f);
  assert_int_equal(f->body->nrets, 4);
  assert_string_equal(f->ret_names[0], "loss");
  assert_string_equal(f->ret_names[1], "@s");
  assert_string_equal(f->ret_names[2], "grad.a");
  assert_string_equal(f->ret_names[3], "grad.unused");
  assert_int_equal(f->body->rets[3]->def->op, IR_OP_CONSTANT);
  assert_non_null(ir_func_find(m, "loss"));
  arena_free(cx.scratch);
  diag_free(d);
  ir_module_free(m);
  arena_free(a);
}

/* ------------------------------------------------ max_pool2d ties */

/* max_pool2d's gradient where windows tie (the central difference does not
** apply): x holds small integers, some -inf and a NaN; dx must be dy at the
** first tap (kh, then kw) inside the input equal to the window maximum
** (padding never takes it, even when the maximum is -inf), no gradient
** where the maximum is NaN.  The reference follows the interpreter's
** max_pool2d.  Disjoint windows (stride = kernel), overlapping, strided
** past the kernel and dilated ones; `ninf` is the share of -inf in x. */
typedef struct PoolTie {
  const char *name;
  int64_t P, H, W, k[2], s[2], p[2], d[2];
  double ninf;
} PoolTie;

static void check_pool_ties(const PoolTie *c) {
  int64_t OH = (c->H + 2 * c->p[0] - c->d[0] * (c->k[0] - 1) - 1) / c->s[0] + 1;
  int64_t OW = (c->W + 2 * c->p[1] - c->d[1] * (c->k[1] - 1) - 1) / c->s[1] + 1;
  char text[1024];
  snprintf(text, sizeof text,
           "param @x : f32[%lld,%lld,%lld] = zeros\n"
           "func @loss(%%r: f32[%lld,%lld,%lld]) -> (loss: f32[]) {\n"
           "  %%y = max_pool2d @x {dilation = [%lld, %lld], kernel = [%lld, %lld], "
           "padding = [%lld, %lld], stride = [%lld, %lld]} : f32[%lld,%lld,%lld]\n"
           "  %%l0 = mul %%y, %%r : f32[%lld,%lld,%lld]\n"
           "  %%l1 = sum %%l0 : f32[]\n  return %%l1\n}\n",
           (long long)c->P, (long long)c->H, (long long)c->W, (long long)c->P,
           (long long)OH, (long long)OW, (long long)c->d[0], (long long)c->d[1],
           (long long)c->k[0], (long long)c->k[1], (long long)c->p[0],
           (long long)c->p[1], (long long)c->s[0], (long long)c->s[1],
           (long long)c->P, (long long)OH, (long long)OW, (long long)c->P,
           (long long)OH, (long long)OW);
  Arena *a = arena_new();
  const char *err = NULL;
  IrModule *m = ir_parse(c->name, text, strlen(text), a, &err);
  if (!m) fail_msg("%s: %s", c->name, err ? err : "parse failed");
  Diag *dg = diag_new(stderr);
  PassOpts po = {.verify = true};
  PassCtx cx = {.scratch = arena_new(), .diag = dg, .opt = &po};
  if (!pass_run_pipeline(m, "autodiff", &cx)) fail_msg("%s: autodiff failed", c->name);
  IrFunc *lg = ir_func_find(m, "loss_grad");
  assert_non_null(lg);
  Rng r = {0x2545f4914f6cdd1dULL ^ (uint64_t)strlen(c->name)};
  Case kind = {.scale = 1};
  IrTensor in = make_tensor(a, &lg->body->args[0]->type, &r, &kind, false);
  IrTensor xg = make_tensor(a, &m->globals->type, &r, &kind, true);
  int64_t nx = c->P * c->H * c->W;
  double *x = xg.data, *dy = in.data;
  for (int64_t i = 0; i < nx; i++) {
    double u = rnd_u(&r);
    x[i] = u < c->ninf ? -INFINITY : floor((u - c->ninf) / (1 - c->ninf) * 3);
  }
  x[nx / 2] = NAN;
  double *want = arena_zalloc(a, (size_t)nx * sizeof(double), 8);
  for (int64_t q = 0; q < c->P; q++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        double mx = -INFINITY;
        int64_t first = -1; /* first tap at the maximum; -1: none (NaN) */
        bool found = false;
        for (int pass = 0; pass < 2; pass++)
          for (int64_t kh = 0; kh < c->k[0]; kh++)
            for (int64_t kw = 0; kw < c->k[1]; kw++) {
              int64_t ih = oh * c->s[0] - c->p[0] + kh * c->d[0];
              int64_t iw = ow * c->s[1] - c->p[1] + kw * c->d[1];
              bool inb = ih >= 0 && ih < c->H && iw >= 0 && iw < c->W;
              int64_t at = inb ? (q * c->H + ih) * c->W + iw : -1;
              double v = inb ? x[at] : -INFINITY;
              if (pass == 0 && inb && (v > mx || isnan(v))) mx = v;
              if (pass == 1 && !found && inb && v == mx) {
                found = true;
                first = at;
              }
            }
        if (first >= 0) want[first] += dy[(q * OH + oh) * OW + ow];
      }
  IrInterpOpts o = {.f64 = true, .training = true, .seed = 1, .step = 0};
  IrTensor outs[2];
  if (!ir_interp(m, lg, &in, &xg, outs, &o, a, &err)) fail_msg("%s: interp: %s", c->name, err);
  const double *got = outs[1].data;
  for (int64_t i = 0; i < nx; i++)
    if (!(fabs(got[i] - want[i]) <= 1e-12))
      fail_msg("%s: grad.x[%lld] = %.12g, want %.12g (x = %g)", c->name,
               (long long)i, got[i], want[i], x[i]);
  arena_free(cx.scratch);
  diag_free(dg);
  ir_module_free(m);
  arena_free(a);
}

static void test_autodiff_pool_ties(void **state) {
  (void)state;
  static const PoolTie ties[] = {
      {"disjoint 2x2", 3, 6, 8, {2, 2}, {2, 2}, {0, 0}, {1, 1}, 0.05},
      {"disjoint odd, padded", 4, 7, 5, {2, 3}, {2, 3}, {1, 1}, {1, 1}, 0.05},
      {"disjoint last window in the padding", 2, 4, 7, {2, 3}, {2, 3}, {1, 1}, {1, 1}, 0.05},
      {"disjoint uncovered rows", 3, 8, 5, {3, 3}, {3, 3}, {0, 1}, {1, 1}, 0.05},
      {"overlapping", 3, 7, 6, {3, 2}, {2, 1}, {1, 0}, {1, 1}, 0.05},
      {"dilated", 2, 9, 8, {2, 2}, {2, 2}, {1, 0}, {2, 2}, 0.05},
      {"stride past the kernel", 3, 10, 11, {2, 2}, {3, 3}, {1, 0}, {1, 1}, 0.05},
      {"-inf windows at the padding", 4, 7, 7, {2, 2}, {2, 2}, {1, 1}, {1, 1}, 0.7},
      {"-inf windows, overlapping", 4, 7, 7, {3, 3}, {2, 1}, {1, 1}, {1, 1}, 0.7},
  };
  for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++) check_pool_ties(&ties[i]);
}

#define UNARY(OP, ATTRS, SCALE, POS)                                          \
  {"unary " OP, "param @x : f32[3,5] = zeros\n"                              \
   "func @loss(%r: f32[3,5]) -> (loss: f32[]) {\n"                           \
   "  %0 = " OP " @x " ATTRS " : f32[3,5]\n"                                 \
   "  %1 = mul %0, %r : f32[3,5]\n  %2 = sum %1 : f32[]\n  return %2\n}\n",  \
   SCALE, POS, 2}

/* loss = sum(BODY-result %y * %r) where %y has type T. */
#define LOSS_TAIL(T) \
  "  %l0 = mul %y, %r : " T "\n  %l1 = sum %l0 : f32[]\n  return %l1\n}\n"

static const Case cases[] = {
    UNARY("neg", "", 1, false), UNARY("exp", "", 1, false),
    UNARY("log", "", 1, true), UNARY("sqrt", "", 1, true),
    UNARY("rsqrt", "", 1, true), UNARY("abs", "", 1, false),
    UNARY("sin", "", 1, false), UNARY("cos", "", 1, false),
    UNARY("erf", "", 1, false),
    UNARY("clamp", "{hi = 0.5, lo = -0.5}", 1, false),
    UNARY("clamp", "{lo = 0.1}", 1, false),
    UNARY("sigmoid", "", 2, false), UNARY("tanh", "", 1, false),
    UNARY("relu", "", 1, false), UNARY("relu6", "", 5, false),
    UNARY("leaky_relu", "{alpha = 0.2}", 1, false),
    UNARY("elu", "{alpha = 1.5}", 1, false), UNARY("selu", "", 1, false),
    UNARY("gelu", "", 2, false), UNARY("gelu_tanh", "", 2, false),
    UNARY("silu", "", 2, false), UNARY("mish", "", 2, false),
    UNARY("softplus", "", 2, false),
    UNARY("softplus", "{beta = 2.0, threshold = 1.0}", 1, false),
    UNARY("softsign", "", 2, false), UNARY("hard_sigmoid", "", 4, false),
    UNARY("hard_swish", "", 4, false),
    UNARY("softmax", "{axis = 0}", 1, false),
    UNARY("log_softmax", "", 1, false),
    {"cast f32->f64",
     "param @x : f32[3,5] = zeros\n"
     "func @loss(%r: f64[3,5]) -> (loss: f64[]) {\n"
     "  %0 = cast @x : f64[3,5]\n  %1 = mul %0, %r : f64[3,5]\n"
     "  %2 = sum %1 : f64[]\n  return %2\n}\n", 1, false, 2},
    {"glu", "param @x : f32[3,6] = zeros\nfunc @loss(%r: f32[3,3]) -> (loss: f32[]) {\n"
     "  %y = glu @x : f32[3,3]\n" LOSS_TAIL("f32[3,3]"), 1, false, 2},
    {"glu axis 0", "param @x : f32[4,5] = zeros\nfunc @loss(%r: f32[2,5]) -> (loss: f32[]) {\n"
     "  %y = glu @x {axis = 0} : f32[2,5]\n" LOSS_TAIL("f32[2,5]"), 1, false, 2},
    {"swiglu", "param @x : f32[3,6] = zeros\nfunc @loss(%r: f32[3,3]) -> (loss: f32[]) {\n"
     "  %y = swiglu @x : f32[3,3]\n" LOSS_TAIL("f32[3,3]"), 1, false, 2},
    {"geglu", "param @x : f32[3,6] = zeros\nfunc @loss(%r: f32[3,3]) -> (loss: f32[]) {\n"
     "  %y = geglu @x : f32[3,3]\n" LOSS_TAIL("f32[3,3]"), 1, false, 2},
#define BIN(OP, TB, POS)                                                      \
  {"binary " OP " bcast " TB, "param @a : f32[3,5] = zeros\nparam @b : " TB  \
   " = zeros\nfunc @loss(%r: f32[3,5]) -> (loss: f32[]) {\n"                 \
   "  %y = " OP " @a, @b : f32[3,5]\n" LOSS_TAIL("f32[3,5]"), 1, POS, 2}
    BIN("add", "f32[5]", false), BIN("sub", "f32[3,1]", false),
    BIN("mul", "f32[3,5]", false), BIN("mul", "f32[]", false),
    BIN("div", "f32[1,5]", true), BIN("pow", "f32[5]", true),
    BIN("maximum", "f32[3,5]", false), BIN("minimum", "f32[5]", false),
    {"where", "param @a : f32[3,5] = zeros\nparam @b : f32[1,5] = zeros\n"
     "func @loss(%r: f32[3,5], %s: f32[3,5]) -> (loss: f32[]) {\n"
     "  %z = constant {value = 0.0} : f32[]\n  %c = gt %s, %z : bool[3,5]\n"
     "  %y = where %c, @a, @b : f32[3,5]\n" LOSS_TAIL("f32[3,5]"), 1, false, 2},
    {"mul same value twice (accumulation)",
     "param @a : f32[3,5] = zeros\nfunc @loss(%r: f32[3,5]) -> (loss: f32[]) {\n"
     "  %t = tanh @a : f32[3,5]\n  %y = mul %t, %t : f32[3,5]\n"
     LOSS_TAIL("f32[3,5]"), 1, false, 2},
#define RED(OP, ATTRS, T)                                                     \
  {"reduce " OP " " ATTRS, "param @x : f32[3,4,5] = zeros\n"                 \
   "func @loss(%r: " T ") -> (loss: f32[]) {\n"                              \
   "  %y = " OP " @x " ATTRS " : " T "\n" LOSS_TAIL(T), 1, false, 2}
    RED("sum", "{axes = [1]}", "f32[3,5]"),
    RED("mean", "{axes = [0], keepdims = true}", "f32[1,4,5]"),
    RED("max", "{axes = [1]}", "f32[3,5]"), RED("min", "{axes = [2]}", "f32[3,4]"),
    RED("max", "", "f32[]"),
    RED("logsumexp", "{axes = [1]}", "f32[3,5]"),
    RED("var", "{axes = [0, 2]}", "f32[4]"),
    RED("var", "{axes = [1], correction = 0.0}", "f32[3,5]"),
    {"reshape", "param @x : f32[3,5] = zeros\nfunc @loss(%r: f32[5,3]) -> (loss: f32[]) {\n"
     "  %y = reshape @x : f32[5,3]\n" LOSS_TAIL("f32[5,3]"), 1, false, 2},
    {"transpose", "param @x : f32[2,3,4] = zeros\nfunc @loss(%r: f32[4,2,3]) -> (loss: f32[]) {\n"
     "  %y = transpose @x {perm = [2, 0, 1]} : f32[4,2,3]\n" LOSS_TAIL("f32[4,2,3]"), 1, false, 2},
    {"broadcast", "param @x : f32[3,1] = zeros\nfunc @loss(%r: f32[2,3,4]) -> (loss: f32[]) {\n"
     "  %y = broadcast @x : f32[2,3,4]\n" LOSS_TAIL("f32[2,3,4]"), 1, false, 2},
    {"concat", "param @a : f32[3,2] = zeros\nparam @b : f32[3,3] = zeros\n"
     "func @loss(%r: f32[3,5]) -> (loss: f32[]) {\n"
     "  %y = concat @a, @b {axis = 1} : f32[3,5]\n" LOSS_TAIL("f32[3,5]"), 1, false, 2},
    {"slice step 2", "param @x : f32[3,9] = zeros\nfunc @loss(%r: f32[3,3]) -> (loss: f32[]) {\n"
     "  %y = slice @x {axis = 1, end = 7, start = 1, step = 2} : f32[3,3]\n"
     LOSS_TAIL("f32[3,3]"), 1, false, 2},
    {"slice", "param @x : f32[3,7] = zeros\nfunc @loss(%r: f32[3,4]) -> (loss: f32[]) {\n"
     "  %y = slice @x {axis = -1, end = -1, start = 2} : f32[3,4]\n"
     LOSS_TAIL("f32[3,4]"), 1, false, 2},
    {"pad", "param @x : f32[3,4] = zeros\nfunc @loss(%r: f32[6,5]) -> (loss: f32[]) {\n"
     "  %y = pad @x {pads = [1, 2, 0, 1], value = 1.5} : f32[6,5]\n"
     LOSS_TAIL("f32[6,5]"), 1, false, 2},
    {"stack", "param @a : f32[3,4] = zeros\nparam @b : f32[3,4] = zeros\n"
     "func @loss(%r: f32[3,2,4]) -> (loss: f32[]) {\n"
     "  %y = stack @a, @b {axis = 1} : f32[3,2,4]\n" LOSS_TAIL("f32[3,2,4]"), 1, false, 2},
    {"gather", "param @t : f32[5,3] = zeros\n"
     "func @loss(%r: f32[2,4,3], %i: i32[2,4]) -> (loss: f32[]) {\n"
     "  %y = gather @t, %i : f32[2,4,3]\n" LOSS_TAIL("f32[2,4,3]"), 1, false, 5},
#define MM(TA, TB, TY)                                                        \
  {"matmul " TA " x " TB, "param @a : " TA " = zeros\nparam @b : " TB        \
   " = zeros\nfunc @loss(%r: " TY ") -> (loss: f32[]) {\n"                   \
   "  %y = matmul @a, @b : " TY "\n" LOSS_TAIL(TY), 1, false, 2}
    MM("f32[3,4]", "f32[4,5]", "f32[3,5]"),
    MM("f32[2,3,4]", "f32[4,5]", "f32[2,3,5]"),
    MM("f32[4]", "f32[4,5]", "f32[5]"), MM("f32[3,4]", "f32[4]", "f32[3]"),
    MM("f32[2,1,3,4]", "f32[3,4,5]", "f32[2,3,3,5]"),
    {"attention", "param @q : f32[2,3,4] = zeros\nparam @k : f32[2,5,4] = zeros\n"
     "param @v : f32[2,5,3] = zeros\nfunc @loss(%r: f32[2,3,3]) -> (loss: f32[]) {\n"
     "  %y = attention @q, @k, @v : f32[2,3,3]\n" LOSS_TAIL("f32[2,3,3]"), 1, false, 2},
    {"attention causal mask", "param @q : f32[2,4,4] = zeros\nparam @k : f32[2,4,4] = zeros\n"
     "param @v : f32[2,4,3] = zeros\nparam @m : f32[4,4] = zeros\n"
     "func @loss(%r: f32[2,4,3]) -> (loss: f32[]) {\n"
     "  %y = attention @q, @k, @v, @m {causal = true, scale = 0.3} : f32[2,4,3]\n"
     LOSS_TAIL("f32[2,4,3]"), 1, false, 2},
    {"attention bool mask", "param @q : f32[3,4] = zeros\nparam @k : f32[5,4] = zeros\n"
     "param @v : f32[5,2] = zeros\nfunc @loss(%r: f32[3,2], %s: f32[3,5]) -> (loss: f32[]) {\n"
     "  %z = constant {value = -0.5} : f32[]\n  %m = gt %s, %z : bool[3,5]\n"
     "  %y = attention @q, @k, @v, %m : f32[3,2]\n" LOSS_TAIL("f32[3,2]"), 1, false, 2},
    {"conv1d", "param @x : f32[2,3,7] = zeros\nparam @w : f32[4,3,3] = zeros\n"
     "param @b : f32[4] = zeros\nfunc @loss(%r: f32[2,4,4]) -> (loss: f32[]) {\n"
     "  %y = conv1d @x, @w, @b {padding = 1, stride = 2} : f32[2,4,4]\n"
     LOSS_TAIL("f32[2,4,4]"), 1, false, 2},
    {"conv2d", "param @x : f32[2,3,7,6] = zeros\nparam @w : f32[4,3,3,2] = zeros\n"
     "param @b : f32[4] = zeros\nfunc @loss(%r: f32[2,4,4,4]) -> (loss: f32[]) {\n"
     "  %y = conv2d @x, @w, @b {dilation = [1, 2], padding = [1, 0], stride = [2, 1]} : f32[2,4,4,4]\n"
     LOSS_TAIL("f32[2,4,4,4]"), 1, false, 2},
    {"conv2d groups", "param @x : f32[1,4,5,5] = zeros\nparam @w : f32[6,2,3,3] = zeros\n"
     "func @loss(%r: f32[1,6,3,3]) -> (loss: f32[]) {\n"
     "  %y = conv2d @x, @w {groups = 2} : f32[1,6,3,3]\n" LOSS_TAIL("f32[1,6,3,3]"), 1, false, 2},
    {"conv_transpose2d", "param @x : f32[2,4,3,3] = zeros\nparam @w : f32[4,3,3,3] = zeros\n"
     "param @b : f32[3] = zeros\nfunc @loss(%r: f32[2,3,6,6]) -> (loss: f32[]) {\n"
     "  %y = conv_transpose2d @x, @w, @b {output_padding = [1, 1], padding = [1, 1], stride = [2, 2]} : f32[2,3,6,6]\n"
     LOSS_TAIL("f32[2,3,6,6]"), 1, false, 2},
    {"conv_transpose2d groups", "param @x : f32[1,4,3,4] = zeros\nparam @w : f32[4,2,2,3] = zeros\n"
     "func @loss(%r: f32[1,4,4,6]) -> (loss: f32[]) {\n"
     "  %y = conv_transpose2d @x, @w {groups = 2} : f32[1,4,4,6]\n" LOSS_TAIL("f32[1,4,4,6]"), 1, false, 2},
    {"max_pool2d", "param @x : f32[2,3,7,6] = zeros\nfunc @loss(%r: f32[2,3,4,3]) -> (loss: f32[]) {\n"
     "  %y = max_pool2d @x {kernel = [3, 2], padding = [1, 0], stride = [2, 2]} : f32[2,3,4,3]\n"
     LOSS_TAIL("f32[2,3,4,3]"), 1, false, 2},
    {"max_pool2d default stride", "param @x : f32[2,4,6] = zeros\nfunc @loss(%r: f32[2,2,3]) -> (loss: f32[]) {\n"
     "  %y = max_pool2d @x {kernel = 2} : f32[2,2,3]\n" LOSS_TAIL("f32[2,2,3]"), 1, false, 2},
    {"max_pool2d disjoint, odd sizes, padded", "param @x : f32[2,3,7,5] = zeros\n"
     "func @loss(%r: f32[2,3,4,2]) -> (loss: f32[]) {\n"
     "  %y = max_pool2d @x {kernel = [2, 3], padding = [1, 1]} : f32[2,3,4,2]\n"
     LOSS_TAIL("f32[2,3,4,2]"), 1, false, 2},
    {"max_pool2d disjoint, last window in the padding", "param @x : f32[2,3,4,7] = zeros\n"
     "func @loss(%r: f32[2,3,3,3]) -> (loss: f32[]) {\n"
     "  %y = max_pool2d @x {kernel = [2, 3], padding = [1, 1], stride = [2, 3]} : f32[2,3,3,3]\n"
     LOSS_TAIL("f32[2,3,3,3]"), 1, false, 2},
    {"max_pool2d disjoint, uncovered rows", "param @x : f32[1,2,7,5] = zeros\n"
     "func @loss(%r: f32[1,2,2,1]) -> (loss: f32[]) {\n"
     "  %y = max_pool2d @x {kernel = 3} : f32[1,2,2,1]\n"
     LOSS_TAIL("f32[1,2,2,1]"), 1, false, 2},
    {"max_pool2d dilated", "param @x : f32[2,2,7,6] = zeros\n"
     "func @loss(%r: f32[2,2,3,2]) -> (loss: f32[]) {\n"
     "  %y = max_pool2d @x {dilation = 2, kernel = 2, stride = 2} : f32[2,2,3,2]\n"
     LOSS_TAIL("f32[2,2,3,2]"), 1, false, 2},
    {"max_pool2d stride past the kernel", "param @x : f32[2,2,10,11] = zeros\n"
     "func @loss(%r: f32[2,2,4,4]) -> (loss: f32[]) {\n"
     "  %y = max_pool2d @x {kernel = 2, padding = 1, stride = 3} : f32[2,2,4,4]\n"
     LOSS_TAIL("f32[2,2,4,4]"), 1, false, 2},
    {"max_pool2d overlapping, stride 1", "param @x : f32[1,3,6,5] = zeros\n"
     "func @loss(%r: f32[1,3,6,5]) -> (loss: f32[]) {\n"
     "  %y = max_pool2d @x {kernel = 3, padding = 1, stride = 1} : f32[1,3,6,5]\n"
     LOSS_TAIL("f32[1,3,6,5]"), 1, false, 2},
    {"avg_pool2d", "param @x : f32[2,3,7,6] = zeros\nfunc @loss(%r: f32[2,3,4,3]) -> (loss: f32[]) {\n"
     "  %y = avg_pool2d @x {kernel = [3, 2], padding = [1, 0], stride = [2, 2]} : f32[2,3,4,3]\n"
     LOSS_TAIL("f32[2,3,4,3]"), 1, false, 2},
    {"avg_pool2d exclude pad", "param @x : f32[1,2,5,5] = zeros\nfunc @loss(%r: f32[1,2,3,3]) -> (loss: f32[]) {\n"
     "  %y = avg_pool2d @x {count_include_pad = false, kernel = 3, padding = 1, stride = 2} : f32[1,2,3,3]\n"
     LOSS_TAIL("f32[1,2,3,3]"), 1, false, 2},
    {"upsample_nearest", "param @x : f32[1,2,3,4] = zeros\nfunc @loss(%r: f32[1,2,7,5]) -> (loss: f32[]) {\n"
     "  %y = upsample_nearest @x {size = [7, 5]} : f32[1,2,7,5]\n" LOSS_TAIL("f32[1,2,7,5]"), 1, false, 2},
    {"upsample_bilinear", "param @x : f32[2,3,4] = zeros\nfunc @loss(%r: f32[2,5,7]) -> (loss: f32[]) {\n"
     "  %y = upsample_bilinear @x {size = [5, 7]} : f32[2,5,7]\n" LOSS_TAIL("f32[2,5,7]"), 1, false, 2},
    {"upsample_bilinear align_corners", "param @x : f32[2,3,4] = zeros\n"
     "func @loss(%r: f32[2,6,2]) -> (loss: f32[]) {\n"
     "  %y = upsample_bilinear @x {align_corners = true, size = [6, 2]} : f32[2,6,2]\n"
     LOSS_TAIL("f32[2,6,2]"), 1, false, 2},
    {"pixel_shuffle", "param @x : f32[1,8,2,3] = zeros\nfunc @loss(%r: f32[1,2,4,6]) -> (loss: f32[]) {\n"
     "  %y = pixel_shuffle @x {r = 2} : f32[1,2,4,6]\n" LOSS_TAIL("f32[1,2,4,6]"), 1, false, 2},
    {"pixel_unshuffle", "param @x : f32[1,2,4,6] = zeros\nfunc @loss(%r: f32[1,8,2,3]) -> (loss: f32[]) {\n"
     "  %y = pixel_unshuffle @x {r = 2} : f32[1,8,2,3]\n" LOSS_TAIL("f32[1,8,2,3]"), 1, false, 2},
#define LOSS(NAME, OP, ATTRS, TX, TL, TLP, RANGE)                              \
  {"loss " NAME, "param @x : " TX " = zeros\n" TLP                             \
   "func @loss(%r: f32[], %l: " TL ") -> (loss: f32[]) {\n"                    \
   "  %y = " OP " @x, %l " ATTRS " : f32[]\n" LOSS_TAIL("f32[]"), 1, false, RANGE}
    LOSS("cross_entropy", "cross_entropy", "", "f32[4,5]", "i32[4]", "", 5),
    LOSS("cross_entropy smoothing", "cross_entropy", "{label_smoothing = 0.1}",
         "f32[2,3,5]", "i32[2,3]", "", 5),
    LOSS("nll", "nll", "", "f32[4,5]", "i32[4]", "", 5),
    LOSS("bce_with_logits", "bce_with_logits", "", "f32[3,4]", "f32[3,4]", "", 2),
    LOSS("mse", "mse", "", "f32[3,4]", "f32[3,4]", "", 2),
    LOSS("l1", "l1", "", "f32[3,4]", "f32[3,4]", "", 2),
    LOSS("huber", "huber", "{delta = 0.5}", "f32[3,4]", "f32[3,4]", "", 2),
    LOSS("soft_accuracy", "soft_accuracy", "", "f32[4,5]", "i32[4]", "", 5),
    LOSS("soft_accuracy binary", "soft_accuracy", "", "f32[6]", "i32[6]", "", 2),
    LOSS("soft_f1 macro", "soft_f1", "", "f32[6,3]", "i32[6]", "", 3),
    LOSS("soft_f1 binary", "soft_f1", "", "f32[7]", "i32[7]", "", 2),
    {"loss mse both params", "param @a : f32[3,4] = zeros\nparam @b : f32[3,4] = zeros\n"
     "func @loss(%r: f32[]) -> (loss: f32[]) {\n"
     "  %y = mse @a, @b : f32[]\n" LOSS_TAIL("f32[]"), 1, false, 2},
    {"loss bce float target param", "param @a : f32[3,4] = zeros\nparam @b : f32[3,4] = zeros\n"
     "func @loss(%r: f32[]) -> (loss: f32[]) {\n"
     "  %y = bce_with_logits @a, @b : f32[]\n" LOSS_TAIL("f32[]"), 1, false, 2},
    {"loss soft_f1 binary float target param", "param @a : f32[5] = zeros\nparam @b : f32[5] = zeros\n"
     "func @loss(%r: f32[]) -> (loss: f32[]) {\n"
     "  %s = sigmoid @b : f32[5]\n"
     "  %y = soft_f1 @a, %s : f32[]\n" LOSS_TAIL("f32[]"), 1, false, 2},
    /* scan: h = h * a + x_t, emitting h; x, h0 and a all parameters */
    {"scan linear recurrence", "param @h0 : f32[3] = zeros\nparam @a : f32[3] = zeros\n"
     "param @x : f32[5,3] = zeros\n"
     "func @loss(%r: f32[5,3], %r2: f32[3]) -> (loss: f32[]) {\n"
     "  %s:2 = scan @h0, @x {axes = [0], ncarry = 1} : f32[3], f32[5,3] {\n"
     "  ^(%h: f32[3], %xt: f32[3]):\n"
     "    %m = mul %h, @a : f32[3]\n    %n = add %m, %xt : f32[3]\n"
     "    yield %n, %n\n  }\n"
     "  %e = mul %s#1, %r : f32[5,3]\n  %f = sum %e : f32[]\n"
     "  %g = mul %s#0, %r2 : f32[3]\n  %k = sum %g : f32[]\n"
     "  %y = add %f, %k : f32[]\n  return %y\n}\n", 0.8, false, 2},
    {"scan reverse, sequence on axis 1", "param @h0 : f32[2] = zeros\nparam @a : f32[2] = zeros\n"
     "param @x : f32[2,4] = zeros\n"
     "func @loss(%r: f32[2,4]) -> (loss: f32[]) {\n"
     "  %s:2 = scan @h0, @x {axes = [1], ncarry = 1, reverse = true} : f32[2], f32[2,4] {\n"
     "  ^(%h: f32[2], %xt: f32[2]):\n"
     "    %m = mul %h, @a : f32[2]\n    %t = tanh %m : f32[2]\n    %n = add %t, %xt : f32[2]\n"
     "    yield %n, %m\n  }\n"
     "  %e = mul %s#1, %r : f32[2,4]\n  %y = sum %e : f32[]\n  return %y\n}\n", 1, false, 2},
    /* an LSTM cell over x [B=2, T=4, D=3], hidden 5 */
    {"scan lstm", "param @x : f32[2,4,3] = zeros\nparam @h0 : f32[2,5] = zeros\n"
     "param @wx : f32[3,20] = zeros\nparam @wh : f32[5,20] = zeros\nparam @b : f32[20] = zeros\n"
     "func @loss(%r: f32[2,4,5], %r2: f32[2,5]) -> (loss: f32[]) {\n"
     "  %c0 = constant {value = 0.0} : f32[2,5]\n"
     "  %s:3 = scan @h0, %c0, @x {axes = [1], ncarry = 2} : f32[2,5], f32[2,5], f32[2,4,5] {\n"
     "  ^(%h: f32[2,5], %c: f32[2,5], %xt: f32[2,3]):\n"
     "    %a = matmul %xt, @wx : f32[2,20]\n    %b = matmul %h, @wh : f32[2,20]\n"
     "    %s1 = add %a, %b : f32[2,20]\n    %s2 = add %s1, @b : f32[2,20]\n"
     "    %i0 = slice %s2 {axis = 1, end = 5, start = 0} : f32[2,5]\n"
     "    %f0 = slice %s2 {axis = 1, end = 10, start = 5} : f32[2,5]\n"
     "    %g0 = slice %s2 {axis = 1, end = 15, start = 10} : f32[2,5]\n"
     "    %o0 = slice %s2 {axis = 1, end = 20, start = 15} : f32[2,5]\n"
     "    %i = sigmoid %i0 : f32[2,5]\n    %f = sigmoid %f0 : f32[2,5]\n"
     "    %g = tanh %g0 : f32[2,5]\n    %o = sigmoid %o0 : f32[2,5]\n"
     "    %fc = mul %f, %c : f32[2,5]\n    %ig = mul %i, %g : f32[2,5]\n"
     "    %c2 = add %fc, %ig : f32[2,5]\n    %tc = tanh %c2 : f32[2,5]\n"
     "    %h2 = mul %o, %tc : f32[2,5]\n"
     "    yield %h2, %c2, %h2\n  }\n"
     "  %e = mul %s#2, %r : f32[2,4,5]\n  %f1 = sum %e : f32[]\n"
     "  %g1 = mul %s#1, %r2 : f32[2,5]\n  %k = sum %g1 : f32[]\n"
     "  %y = add %f1, %k : f32[]\n  return %y\n}\n", 0.7, false, 2},
    /* nested scans: an inner recurrence inside the outer body */
    {"scan nested", "param @x : f32[3,2,2] = zeros\nparam @w : f32[2] = zeros\n"
     "func @loss(%r: f32[2]) -> (loss: f32[]) {\n"
     "  %z = constant {value = 0.0} : f32[2]\n"
     "  %s:1 = scan %z, @x {axes = [0], ncarry = 1} : f32[2] {\n"
     "  ^(%h: f32[2], %xt: f32[2,2]):\n"
     "    %u:1 = scan %h, %xt {axes = [0], ncarry = 1} : f32[2] {\n"
     "    ^(%q: f32[2], %v: f32[2]):\n"
     "      %m = mul %q, @w : f32[2]\n      %t = sin %m : f32[2]\n"
     "      %n = add %t, %v : f32[2]\n      yield %n\n    }\n"
     "    yield %u#0\n  }\n"
     "  %e = mul %s#0, %r : f32[2]\n  %y = sum %e : f32[]\n  return %y\n}\n", 1, false, 2},
};

int main(void) {
  enum { N = sizeof cases / sizeof cases[0] };
  struct CMUnitTest tests[N + 4];
  tests[0] = (struct CMUnitTest)cmocka_unit_test(test_autodiff_rule_table);
  tests[1] = (struct CMUnitTest)cmocka_unit_test(test_autodiff_no_loss);
  tests[2] = (struct CMUnitTest)cmocka_unit_test(test_autodiff_signature);
  tests[3] = (struct CMUnitTest)cmocka_unit_test(test_autodiff_pool_ties);
  for (int i = 0; i < N; i++) {
    tests[4 + i] = (struct CMUnitTest)cmocka_unit_test_prestate(test_autodiff_case,
                                                                (void *)&cases[i]);
    tests[4 + i].name = cases[i].name;
  }
  return cmocka_run_group_tests(tests, NULL, NULL);
}

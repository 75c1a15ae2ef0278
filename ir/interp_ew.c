/*
** This file contains the elementwise part of the reference interpreter:
** rounding to a dtype, the scalar function of every OPF_FUSABLE op (shared
** by the tensor kernels and by ir_interp_scalar, which constant folding
** uses), the unary/binary/where/cast kernels with NumPy broadcasting, the
** gated activations (glu, swiglu, geglu), the reductions and argmax.
** Definitions follow PyTorch (algorithms.md section 8).
*/
#include <float.h>
#include <math.h>
#include <string.h>

#include "interp_int.h"

/* ----------------------------------------------------------- rounding */

/* x rounded to a binary floating-point format with p significant bits
** (implicit bit included), minimum normal exponent emin and maximum
** exponent emax: round to nearest, ties to even, gradual underflow,
** overflow to infinity. */
static double round_fmt(double x, int p, int emin, int emax) {
  if (isnan(x) || isinf(x) || x == 0) return x;
  double ax = fabs(x);
  int e;
  frexp(ax, &e); /* ax in [2^(e-1), 2^e) */
  int qe = (e - 1 > emin ? e - 1 : emin) - (p - 1);
  double r = ldexp(nearbyint(ldexp(ax, -qe)), qe);
  if (r > ldexp(2.0 - ldexp(1.0, 1 - p), emax)) r = INFINITY;
  return copysign(r, x);
}

static double saturate(double x, double lo, double hi) {
  if (isnan(x)) return 0;
  x = trunc(x);
  return x < lo ? lo : x > hi ? hi : x;
}

double interp_round(DType t, bool f64, double x) {
  switch (t) {
  case DT_F32: return f64 ? x : (double)(float)x;
  case DT_F16: return f64 ? x : round_fmt(x, 11, -14, 15);
  case DT_BF16: return f64 ? x : round_fmt(x, 8, -126, 127);
  case DT_F64: return x;
  case DT_I32: return saturate(x, -2147483648.0, 2147483647.0);
  case DT_I64: return saturate(x, -9223372036854775808.0, 9223372036854774784.0);
  case DT_U8: return saturate(x, 0, 255);
  case DT_BOOL: return x != 0;
  default: return x;
  }
}

double ir_interp_round(DType t, double x) { return interp_round(t, false, x); }

/* ------------------------------------------------------ scalar functions */

/* Attributes of the scalar ops, read once per node. */
typedef struct SParams {
  double alpha, beta, threshold, lo, hi;
} SParams;

typedef double ScalarFn(const SParams *p, const double *x);

static void sparams_read(IrOp op, const IrAttrs *a, SParams *p) {
  p->alpha = ir_attr_float(a, "alpha", op == IR_OP_LEAKY_RELU ? 0.01 : 1.0);
  p->beta = ir_attr_float(a, "beta", 1.0);
  p->threshold = ir_attr_float(a, "threshold", op == IR_OP_SOFTPLUS ? 20 : 0);
  p->lo = ir_attr_float(a, "lo", -INFINITY);
  p->hi = ir_attr_float(a, "hi", INFINITY);
}

double interp_sigmoid(double x) {
  if (x >= 0) return 1 / (1 + exp(-x));
  double e = exp(x);
  return e / (1 + e);
}

/* log(1 + e^(beta x)) / beta, linear when beta x > threshold. */
double interp_softplus(double x, double beta, double threshold) {
  if (beta * x > threshold) return x;
  return log1p(exp(beta * x)) / beta;
}

double interp_gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
double interp_silu(double x) { return x * interp_sigmoid(x); }

static double hsig(double x) { return x <= -3 ? 0 : x >= 3 ? 1 : x / 6 + 0.5; }
/* NaN-propagating max/min (PyTorch maximum/minimum). */
static double nmax(double a, double b) { return isnan(a) || a > b ? a : b; }
static double nmin(double a, double b) { return isnan(a) || a < b ? a : b; }

static double s_neg(const SParams *p, const double *x) { return -x[0]; }
static double s_exp(const SParams *p, const double *x) { return exp(x[0]); }
static double s_log(const SParams *p, const double *x) { return log(x[0]); }
static double s_sqrt(const SParams *p, const double *x) { return sqrt(x[0]); }
static double s_rsqrt(const SParams *p, const double *x) { return 1 / sqrt(x[0]); }
static double s_abs(const SParams *p, const double *x) { return fabs(x[0]); }
static double s_sign(const SParams *p, const double *x) {
  return x[0] > 0 ? 1 : x[0] < 0 ? -1 : x[0]; /* 0 and NaN pass through */
}
static double s_sin(const SParams *p, const double *x) { return sin(x[0]); }
static double s_cos(const SParams *p, const double *x) { return cos(x[0]); }
static double s_erf(const SParams *p, const double *x) { return erf(x[0]); }
static double s_clamp(const SParams *p, const double *x) {
  if (isnan(x[0])) return x[0];
  return fmin(fmax(x[0], p->lo), p->hi);
}
static double s_not(const SParams *p, const double *x) { return x[0] == 0; }
static double s_step(const SParams *p, const double *x) { return x[0] > p->threshold; }
static double s_sigmoid(const SParams *p, const double *x) { return interp_sigmoid(x[0]); }
static double s_tanh(const SParams *p, const double *x) { return tanh(x[0]); }
static double s_relu(const SParams *p, const double *x) { return x[0] < 0 ? 0 : x[0]; }
static double s_relu6(const SParams *p, const double *x) {
  return x[0] < 0 ? 0 : x[0] > 6 ? 6 : x[0];
}
static double s_leaky_relu(const SParams *p, const double *x) {
  return x[0] >= 0 ? x[0] : p->alpha * x[0];
}
static double s_elu(const SParams *p, const double *x) {
  return x[0] > 0 ? x[0] : p->alpha * expm1(x[0]);
}
static double s_selu(const SParams *p, const double *x) {
  const double alpha = 1.6732632423543772848170429916717;
  const double scale = 1.0507009873554804934193349852946;
  return scale * (x[0] > 0 ? x[0] : alpha * expm1(x[0]));
}
static double s_gelu(const SParams *p, const double *x) { return interp_gelu(x[0]); }
static double s_gelu_tanh(const SParams *p, const double *x) {
  double v = x[0], k = sqrt(2 / M_PI);
  return 0.5 * v * (1 + tanh(k * (v + 0.044715 * v * v * v)));
}
static double s_silu(const SParams *p, const double *x) { return interp_silu(x[0]); }
static double s_mish(const SParams *p, const double *x) {
  return x[0] * tanh(interp_softplus(x[0], 1, 20));
}
static double s_softplus(const SParams *p, const double *x) {
  return interp_softplus(x[0], p->beta, p->threshold);
}
static double s_softsign(const SParams *p, const double *x) {
  return x[0] / (1 + fabs(x[0]));
}
static double s_hard_sigmoid(const SParams *p, const double *x) { return hsig(x[0]); }
static double s_hard_swish(const SParams *p, const double *x) { return x[0] * hsig(x[0]); }
static double s_add(const SParams *p, const double *x) { return x[0] + x[1]; }
static double s_sub(const SParams *p, const double *x) { return x[0] - x[1]; }
static double s_mul(const SParams *p, const double *x) { return x[0] * x[1]; }
static double s_div(const SParams *p, const double *x) { return x[0] / x[1]; }
static double s_pow(const SParams *p, const double *x) { return pow(x[0], x[1]); }
static double s_maximum(const SParams *p, const double *x) { return nmax(x[0], x[1]); }
static double s_minimum(const SParams *p, const double *x) { return nmin(x[0], x[1]); }
static double s_eq(const SParams *p, const double *x) { return x[0] == x[1]; }
static double s_ne(const SParams *p, const double *x) { return x[0] != x[1]; }
static double s_lt(const SParams *p, const double *x) { return x[0] < x[1]; }
static double s_le(const SParams *p, const double *x) { return x[0] <= x[1]; }
static double s_gt(const SParams *p, const double *x) { return x[0] > x[1]; }
static double s_ge(const SParams *p, const double *x) { return x[0] >= x[1]; }
static double s_and(const SParams *p, const double *x) { return x[0] != 0 && x[1] != 0; }
static double s_or(const SParams *p, const double *x) { return x[0] != 0 || x[1] != 0; }
static double s_where(const SParams *p, const double *x) { return x[0] != 0 ? x[1] : x[2]; }

/* ORDER OP: the scalar function of every OPF_FUSABLE op but cast. */
static ScalarFn *const scalar_fns[IR_OP_COUNT] = {
    [IR_OP_NEG] = s_neg, [IR_OP_EXP] = s_exp, [IR_OP_LOG] = s_log,
    [IR_OP_SQRT] = s_sqrt, [IR_OP_RSQRT] = s_rsqrt, [IR_OP_ABS] = s_abs,
    [IR_OP_SIGN] = s_sign, [IR_OP_SIN] = s_sin, [IR_OP_COS] = s_cos,
    [IR_OP_ERF] = s_erf, [IR_OP_CLAMP] = s_clamp, [IR_OP_NOT] = s_not,
    [IR_OP_STEP] = s_step, [IR_OP_SIGMOID] = s_sigmoid, [IR_OP_TANH] = s_tanh,
    [IR_OP_RELU] = s_relu, [IR_OP_RELU6] = s_relu6,
    [IR_OP_LEAKY_RELU] = s_leaky_relu, [IR_OP_ELU] = s_elu,
    [IR_OP_SELU] = s_selu, [IR_OP_GELU] = s_gelu,
    [IR_OP_GELU_TANH] = s_gelu_tanh, [IR_OP_SILU] = s_silu,
    [IR_OP_MISH] = s_mish, [IR_OP_SOFTPLUS] = s_softplus,
    [IR_OP_SOFTSIGN] = s_softsign, [IR_OP_HARD_SIGMOID] = s_hard_sigmoid,
    [IR_OP_HARD_SWISH] = s_hard_swish, [IR_OP_ADD] = s_add,
    [IR_OP_SUB] = s_sub, [IR_OP_MUL] = s_mul, [IR_OP_DIV] = s_div,
    [IR_OP_POW] = s_pow, [IR_OP_MAXIMUM] = s_maximum,
    [IR_OP_MINIMUM] = s_minimum, [IR_OP_EQ] = s_eq, [IR_OP_NE] = s_ne,
    [IR_OP_LT] = s_lt, [IR_OP_LE] = s_le, [IR_OP_GT] = s_gt, [IR_OP_GE] = s_ge,
    [IR_OP_AND] = s_and, [IR_OP_OR] = s_or, [IR_OP_WHERE] = s_where,
};

/* Cast is not covered: its result depends on the target dtype, which the
** caller applies with ir_interp_round(). */
bool ir_interp_scalar(IrOp op, const IrAttrs *attrs, int nargs,
                      const double *x, double *out) {
  if (op < 0 || op >= IR_OP_COUNT || !scalar_fns[op]) return false;
  if (nargs != ir_op_info[op].min_args) return false;
  SParams p;
  IrAttrs none = {NULL, 0};
  sparams_read(op, attrs ? attrs : &none, &p);
  *out = scalar_fns[op](&p, x);
  return true;
}

/* ------------------------------------------------------ integer arithmetic */

static int64_t to_i64(double x) {
  return (int64_t)saturate(x, -9223372036854775808.0, 9223372036854774784.0);
}

/* v wrapped to the width of integer dtype t (two's complement). */
static int64_t wrap_int(DType t, int64_t v) {
  if (t == DT_I32) return (int32_t)(uint32_t)(uint64_t)v;
  if (t == DT_U8) return (int64_t)((uint64_t)v & 0xff);
  return v;
}

static bool is_int_arith(IrOp op) {
  return op == IR_OP_ADD || op == IR_OP_SUB || op == IR_OP_MUL ||
         op == IR_OP_DIV || op == IR_OP_POW || op == IR_OP_NEG ||
         op == IR_OP_ABS;
}

/* Integer a op b (b unused for unary ops), wrapping on overflow; division
** truncates toward 0.  False on division by zero or a negative exponent. */
static bool int_arith(IrOp op, int64_t a, int64_t b, int64_t *r) {
  uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
  switch (op) {
  case IR_OP_ADD: *r = (int64_t)(ua + ub); return true;
  case IR_OP_SUB: *r = (int64_t)(ua - ub); return true;
  case IR_OP_MUL: *r = (int64_t)(ua * ub); return true;
  case IR_OP_NEG: *r = (int64_t)(0 - ua); return true;
  case IR_OP_ABS: *r = a < 0 ? (int64_t)(0 - ua) : a; return true;
  case IR_OP_DIV:
    if (b == 0) return false;
    *r = (b == -1) ? (int64_t)(0 - ua) : a / b;
    return true;
  case IR_OP_POW: {
    if (b < 0) return false;
    uint64_t acc = 1;
    for (; b > 0; b >>= 1, ua *= ua)
      if (b & 1) acc *= ua;
    *r = (int64_t)acc;
    return true;
  }
  default: return false;
  }
}

/* ------------------------------------------------------ tensor kernels */

/* The operands of an elementwise node seen through broadcasting to y. */
static void ew_apply(Interp *in, const IrNode *n, Ten *const *x, Ten *y,
                     ScalarFn *fn, const SParams *p) {
  int64_t st[4][IR_MAX_RANK];
  for (int j = 0; j < n->nargs; j++)
    interp_bcast_strides(&x[j]->type, &y->type, st[j]);
  for (int64_t i = 0; i < y->n; i++) {
    double v[4];
    for (int j = 0; j < n->nargs; j++)
      v[j] = x[j]->d[interp_bcast_off(i, &y->type, st[j])];
    y->d[i] = fn(p, v);
  }
}

static bool int_apply(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int64_t st[2][IR_MAX_RANK];
  for (int j = 0; j < n->nargs; j++)
    interp_bcast_strides(&x[j]->type, &y->type, st[j]);
  DType t = y->type.dtype;
  for (int64_t i = 0; i < y->n; i++) {
    int64_t a = to_i64(x[0]->d[interp_bcast_off(i, &y->type, st[0])]), b = 0;
    if (n->nargs > 1) b = to_i64(x[1]->d[interp_bcast_off(i, &y->type, st[1])]);
    int64_t r;
    if (!int_arith(n->op, a, b, &r))
      return interp_fail(in, "%s: %s at index %lld", ir_op_info[n->op].name,
                         n->op == IR_OP_POW ? "negative integer exponent"
                                            : "integer division by zero",
                         (long long)i);
    y->d[i] = (double)wrap_int(t, r);
  }
  return true;
}

static bool run_ew(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  if (n->nargs > 4 || !scalar_fns[n->op])
    return interp_fail(in, "%s: not elementwise", ir_op_info[n->op].name);
  for (int j = 0; j < n->nargs; j++)
    if (!interp_bcast_ok(&x[j]->type, &y->type))
      return interp_fail(in, "%s: operand %d does not broadcast to the result",
                         ir_op_info[n->op].name, j);
  if (ir_dtype_is_int(y->type.dtype) && is_int_arith(n->op))
    return int_apply(in, n, x, y);
  SParams p;
  sparams_read(n->op, &n->attrs, &p);
  ew_apply(in, n, x, y, scalar_fns[n->op], &p);
  return true;
}

bool interp_run_unary(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  return run_ew(in, n, x, y);
}

bool interp_run_binary(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  return run_ew(in, n, x, y);
}

bool interp_run_where(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  return run_ew(in, n, x, y);
}

/* cast: float -> int truncates toward 0 (saturating, NaN -> 0); int -> int
** wraps; -> bool is x != 0; -> float rounds (done by the caller). */
bool interp_run_cast(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  DType to = y->type.dtype, from = x[0]->type.dtype;
  if (x[0]->n != y->n) return interp_fail(in, "cast: element counts differ");
  for (int64_t i = 0; i < y->n; i++) {
    double v = x[0]->d[i];
    if (ir_dtype_is_int(to) && !ir_dtype_is_float(from))
      v = (double)wrap_int(to, to_i64(v));
    y->d[i] = interp_round(to, in->o->f64, v);
  }
  return true;
}

/* glu / swiglu / geglu: x[..., 2H, ...] split along axis into halves a, b:
**   glu = a * sigmoid(b), swiglu = silu(a) * b, geglu = gelu(a) * b. */
bool interp_run_glu(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  const Ten *t = x[0];
  int ax;
  if (!interp_axis(in, n, ir_attr_int(&n->attrs, "axis", -1), t->type.rank, &ax))
    return false;
  int64_t outer = interp_dims(&t->type, 0, ax), len = t->type.dim[ax];
  int64_t inner = interp_dims(&t->type, ax + 1, t->type.rank), h = len / 2;
  if (len % 2 || y->n != outer * h * inner)
    return interp_fail(in, "%s: axis of size %lld does not split in halves",
                       ir_op_info[n->op].name, (long long)len);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < h; j++)
      for (int64_t i = 0; i < inner; i++) {
        double a = t->d[(o * len + j) * inner + i];
        double b = t->d[(o * len + j + h) * inner + i], r;
        if (n->op == IR_OP_GLU) r = a * interp_sigmoid(b);
        else if (n->op == IR_OP_SWIGLU) r = interp_silu(a) * b;
        else r = interp_gelu(a) * b;
        y->d[(o * h + j) * inner + i] = r;
      }
  return true;
}

/* ---------------------------------------------------------- reductions */

/* Mark the reduced axes (absent = all); returns the number of elements
** reduced into each output and fills ost, the strides of the output seen
** from the input's index (0 on reduced axes). */
static bool reduce_map(Interp *in, const IrNode *n, const IrType *t,
                       int64_t *ost, int64_t *count) {
  bool red[IR_MAX_RANK] = {false};
  const IrAttr *a = ir_attr_get(&n->attrs, "axes");
  if (!a) {
    for (int k = 0; k < t->rank; k++) red[k] = true;
  } else {
    int m = a->kind == ATTR_INTS ? a->n : 1;
    for (int j = 0; j < m; j++) {
      int ax;
      int64_t v = a->kind == ATTR_INTS ? a->ints[j] : a->i;
      if (!interp_axis(in, n, v, t->rank, &ax)) return false;
      red[ax] = true;
    }
  }
  int64_t s = 1;
  *count = 1;
  for (int k = t->rank - 1; k >= 0; k--) {
    ost[k] = red[k] ? 0 : s;
    if (red[k]) *count *= t->dim[k];
    else s *= t->dim[k];
  }
  return true;
}

/* sum mean max min logsumexp var over `axes` (keepdims only changes the
** result type, not the layout).  logsumexp is max + log sum exp(x - max);
** var divides by count - correction (default 1). */
bool interp_run_reduce(Interp *in, const IrNode *n, Ten *const *xs, Ten *y) {
  const Ten *x = xs[0];
  int64_t ost[IR_MAX_RANK], count;
  if (!reduce_map(in, n, &x->type, ost, &count)) return false;
  if (y->n * count != x->n)
    return interp_fail(in, "%s: result type disagrees with axes",
                       ir_op_info[n->op].name);
  IrOp op = n->op;
  double init = op == IR_OP_MAX || op == IR_OP_LOGSUMEXP ? -INFINITY
                : op == IR_OP_MIN ? INFINITY : 0;
  for (int64_t o = 0; o < y->n; o++) y->d[o] = init;
  for (int64_t i = 0; i < x->n; i++) {
    double v = x->d[i], *r = &y->d[interp_bcast_off(i, &x->type, ost)];
    if (op == IR_OP_MAX || op == IR_OP_LOGSUMEXP) *r = nmax(*r, v);
    else if (op == IR_OP_MIN) *r = nmin(*r, v);
    else *r += v;
  }
  if (op == IR_OP_MEAN || op == IR_OP_VAR)
    for (int64_t o = 0; o < y->n; o++) y->d[o] /= (double)count;
  if (op != IR_OP_LOGSUMEXP && op != IR_OP_VAR) return true;
  double *acc = interp_alloc(in, y->n);
  for (int64_t i = 0; i < x->n; i++) {
    int64_t o = interp_bcast_off(i, &x->type, ost);
    double c = y->d[o], v = x->d[i] - c;
    if (op == IR_OP_VAR) acc[o] += v * v;
    else if (!isinf(c)) acc[o] += exp(v);
  }
  double corr = ir_attr_float(&n->attrs, "correction", 1);
  for (int64_t o = 0; o < y->n; o++) {
    if (op == IR_OP_VAR) y->d[o] = acc[o] / fmax(0.0, (double)count - corr);
    else if (!isinf(y->d[o])) y->d[o] += log(acc[o]);
  }
  return true;
}

/* argmax along axis (default -1): the first maximum; a NaN counts as the
** maximum (PyTorch). */
bool interp_run_argmax(Interp *in, const IrNode *n, Ten *const *xs, Ten *y) {
  const Ten *x = xs[0];
  int ax;
  if (!interp_axis(in, n, ir_attr_int(&n->attrs, "axis", -1), x->type.rank, &ax))
    return false;
  int64_t outer = interp_dims(&x->type, 0, ax), len = x->type.dim[ax];
  int64_t inner = interp_dims(&x->type, ax + 1, x->type.rank);
  if (y->n != outer * inner || len < 1)
    return interp_fail(in, "argmax: result type disagrees");
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      int64_t best = 0;
      double bv = x->d[o * len * inner + i];
      for (int64_t j = 1; j < len && !isnan(bv); j++) {
        double v = x->d[(o * len + j) * inner + i];
        if (v > bv || isnan(v)) {
          bv = v;
          best = j;
        }
      }
      y->d[o * inner + i] = (double)best;
    }
  return true;
}

/*
** This file contains the shape and dtype rule of every op of ops.def
** (PyTorch semantics): ir_infer dispatches through a table indexed by IrOp,
** one static function per op family.  Messages are short lowercase phrases
** without the op name (the caller prefixes it) that name the disagreement
** and the dimensions involved; the operand at fault goes to *bad_arg.
**
** Dimension symbols: a result dimension that comes straight from an operand
** keeps that operand's symbol (matmul f32[B,784] x f32[784,512] gives
** f32[B,512] with B kept; broadcasting keeps the non-1 side's symbol).
*/
#include "ir.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* Larger dimensions (and conv-like attributes larger than ATTR_MAX) are
** rejected so that the size arithmetic below cannot overflow int64. */
#define DIM_MAX ((int64_t)1 << 40)
#define ATTR_MAX ((int64_t)1 << 20)

typedef struct Cx {
  const IrModule *m;
  IrOp op;
  int n;              /* number of operands */
  const IrType *a;    /* operand types */
  const IrAttrs *at;
  IrType *res;
  int maxres;
  Arena *ar;
  const char *err;
  int bad;
} Cx;

typedef int (*InferFn)(Cx *x);

static int fail(Cx *x, int bad, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(Cx *x, int bad, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  x->err = arena_vprintf(x->ar, fmt, ap);
  va_end(ap);
  x->bad = bad;
  return 0;
}

static int one(Cx *x, IrType t) {
  x->res[0] = t;
  return 1;
}

static const char *tstr(Cx *x, const IrType *t) {
  return ir_type_str(x->ar, x->m, t);
}

/* The shape of t as "[2,B,3]" (for the few messages that need a shape). */
static const char *sstr(Cx *x, const IrType *t) {
  const char *s = tstr(x, t);
  return strchr(s, '[');
}

bool ir_axis(int64_t axis, int rank, int *out) {
  if (axis < -(int64_t)rank || axis >= rank) return false;
  *out = (int)(axis < 0 ? axis + rank : axis);
  return true;
}

/* Result dimension i of a broadcast between da (symbol sa) and db (sb). */
static void bdim(int64_t da, int sa, int64_t db, int sb, int64_t *d, int16_t *s) {
  if (da == 1 && db != 1) {
    *d = db;
    *s = (int16_t)sb;
  } else if (db == 1 && da != 1) {
    *d = da;
    *s = (int16_t)sa;
  } else {
    *d = da;
    *s = (int16_t)(sa != IR_NO_SYM ? sa : sb);
  }
}

/* Broadcast a and b; on failure *bad_dim is the (result) dimension. */
static bool bcast(const IrType *a, const IrType *b, IrType *out, int *bad_dim) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  IrType t = ir_type_scalar(a->dtype);
  t.rank = r;
  for (int i = 0; i < r; i++) {
    int ia = i - (r - a->rank), ib = i - (r - b->rank);
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    int sa = ia >= 0 ? a->sym[ia] : IR_NO_SYM;
    int sb = ib >= 0 ? b->sym[ib] : IR_NO_SYM;
    if (da != db && da != 1 && db != 1) {
      if (bad_dim) *bad_dim = i;
      return false;
    }
    bdim(da, sa, db, sb, &t.dim[i], &t.sym[i]);
  }
  *out = t;
  return true;
}

bool ir_broadcast(const IrType *a, const IrType *b, IrType *out) {
  return bcast(a, b, out, NULL);
}

/* The size of dimension i (right-aligned in a result of rank r) of t. */
static int64_t rdim(const IrType *t, int r, int i) {
  int j = i - (r - t->rank);
  return j >= 0 ? t->dim[j] : 1;
}

static int bcast_fail(Cx *x, const IrType *a, const IrType *b, int i, int bad) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  return fail(x, bad, "shapes cannot be broadcast (dimension %d: %lld vs %lld)",
              i, (long long)rdim(a, r, i), (long long)rdim(b, r, i));
}

/* ------------------------------------------------------ attribute access */

static const IrAttr *attr(Cx *x, const char *name) {
  return ir_attr_get(x->at, name);
}

static bool missing(Cx *x, const char *name) {
  fail(x, -1, "missing attribute '%s'", name);
  return false;
}

/* An int attribute (a bool or a one-element list is accepted too). */
static bool get_int(Cx *x, const char *name, bool required, int64_t dflt,
                    int64_t *out) {
  const IrAttr *a = attr(x, name);
  *out = dflt;
  if (!a) return required ? missing(x, name) : true;
  if (a->kind == ATTR_INT || a->kind == ATTR_BOOL) {
    *out = a->i;
    return true;
  }
  if (a->kind == ATTR_INTS && a->n == 1) {
    *out = a->ints[0];
    return true;
  }
  fail(x, -1, "attribute '%s' must be an int", name);
  return false;
}

static bool get_bool(Cx *x, const char *name, bool dflt, bool *out) {
  const IrAttr *a = attr(x, name);
  *out = dflt;
  if (!a) return true;
  if (a->kind == ATTR_BOOL || a->kind == ATTR_INT) {
    *out = a->i != 0;
    return true;
  }
  fail(x, -1, "attribute '%s' must be a bool", name);
  return false;
}

static bool get_float(Cx *x, const char *name, bool required, double dflt,
                      double *out) {
  const IrAttr *a = attr(x, name);
  *out = dflt;
  if (!a) return required ? missing(x, name) : true;
  if (a->kind == ATTR_FLOAT) {
    *out = a->f;
    return true;
  }
  if (a->kind == ATTR_INT) {
    *out = (double)a->i;
    return true;
  }
  fail(x, -1, "attribute '%s' must be a number", name);
  return false;
}

typedef struct Ints {
  int n;
  const int64_t *v;
  bool present;
} Ints;

/* An ints attribute; a single int counts as a one-element list. */
static bool get_ints(Cx *x, const char *name, bool required, Ints *out) {
  const IrAttr *a = attr(x, name);
  out->n = 0;
  out->v = NULL;
  out->present = a != NULL;
  if (!a) return required ? missing(x, name) : true;
  if (a->kind == ATTR_INTS) {
    out->n = a->n;
    out->v = a->ints;
    return true;
  }
  if (a->kind == ATTR_INT) {
    out->n = 1;
    out->v = &a->i;
    return true;
  }
  fail(x, -1, "attribute '%s' must be a list of ints", name);
  return false;
}

/* ------------------------------------------------------------ dtype checks */

static int need_float(Cx *x, int i) {
  if (ir_dtype_is_float(x->a[i].dtype)) return 1;
  return fail(x, i, "expected a floating-point tensor, got %s",
              ir_dtype_name(x->a[i].dtype));
}

static int need_numeric(Cx *x, int i) {
  if (x->a[i].dtype != DT_BOOL) return 1;
  return fail(x, i, "expected a numeric tensor, got bool");
}

static int need_int(Cx *x, int i) {
  if (ir_dtype_is_int(x->a[i].dtype)) return 1;
  return fail(x, i, "expected an integer tensor, got %s",
              ir_dtype_name(x->a[i].dtype));
}

static int need_bool(Cx *x, int i) {
  if (x->a[i].dtype == DT_BOOL) return 1;
  return fail(x, i, "expected a bool tensor, got %s",
              ir_dtype_name(x->a[i].dtype));
}

static int need_same_dtype(Cx *x, int i, int j) {
  if (x->a[i].dtype == x->a[j].dtype) return 1;
  return fail(x, j, "operand dtypes differ (%s vs %s)",
              ir_dtype_name(x->a[i].dtype), ir_dtype_name(x->a[j].dtype));
}

static int need_rank(Cx *x, int i, int rank) {
  if (x->a[i].rank == rank) return 1;
  return fail(x, i, "expected a rank-%d tensor, got rank %d", rank,
              x->a[i].rank);
}

static int need_result_rank(Cx *x, int rank) {
  if (rank <= IR_MAX_RANK) return 1;
  return fail(x, -1, "result rank %d exceeds the maximum %d", rank,
              IR_MAX_RANK);
}

/* The axis attribute `name` normalised against rank. */
static bool get_axis(Cx *x, const char *name, bool required, int64_t dflt,
                     int rank, int bad, int *out) {
  int64_t v;
  if (!get_int(x, name, required, dflt, &v)) return false;
  if (ir_axis(v, rank, out)) return true;
  fail(x, bad, "axis %lld is out of range for rank %d", (long long)v, rank);
  return false;
}

/* ------------------------------------------------------ typed (given) ops */

static int check_given(Cx *x) {
  const IrType *r = &x->res[0];
  if (r->rank < 0 || r->rank > IR_MAX_RANK)
    return fail(x, -1, "result rank %d is out of range", r->rank);
  if ((unsigned)r->dtype >= DT_COUNT) return fail(x, -1, "invalid dtype");
  for (int i = 0; i < r->rank; i++)
    if (r->dim[i] < 0 || r->dim[i] > DIM_MAX)
      return fail(x, -1, "result dimension %d has invalid size %lld", i,
                  (long long)r->dim[i]);
  return 1;
}

static int infer_constant(Cx *x) {
  const IrAttr *a = attr(x, "value");
  if (!a) return fail(x, -1, "missing attribute 'value'");
  if (a->kind != ATTR_FLOAT && a->kind != ATTR_INT && a->kind != ATTR_BOOL)
    return fail(x, -1, "attribute 'value' must be a number");
  return 1;
}

static int infer_causal_mask(Cx *x) {
  const IrType *r = &x->res[0];
  if (!ir_dtype_is_float(r->dtype))
    return fail(x, -1, "expected a floating-point result, got %s",
                ir_dtype_name(r->dtype));
  if (r->rank != 2 || r->dim[0] != r->dim[1])
    return fail(x, -1, "result must be a square matrix [T,T], got %s",
                sstr(x, r));
  return 1;
}

static int infer_rand(Cx *x) {
  if (!ir_dtype_is_float(x->res[0].dtype))
    return fail(x, -1, "expected a floating-point result, got %s",
                ir_dtype_name(x->res[0].dtype));
  int64_t seed;
  return get_int(x, "seed", false, 0, &seed);
}

static int infer_iota(Cx *x) {
  const IrType *r = &x->res[0];
  if (r->dtype == DT_BOOL) return fail(x, -1, "expected a numeric result, got bool");
  int ax;
  if (r->rank > 0 && !get_axis(x, "axis", false, 0, r->rank, -1, &ax))
    return 0;
  return 1;
}

/* Overflow-checked element count; false when it does not fit. */
static bool numel(const IrType *t, int64_t *out) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++)
    if (__builtin_mul_overflow(n, t->dim[i], &n)) return false;
  *out = n;
  return true;
}

static int infer_reshape(Cx *x) {
  const IrType *r = &x->res[0];
  int64_t na, nr;
  if (r->dtype != x->a[0].dtype)
    return fail(x, 0, "dtype changes from %s to %s",
                ir_dtype_name(x->a[0].dtype), ir_dtype_name(r->dtype));
  if (!numel(&x->a[0], &na) || !numel(r, &nr))
    return fail(x, 0, "element count overflows");
  if (na != nr)
    return fail(x, 0, "element counts differ (%lld vs %lld)", (long long)na,
                (long long)nr);
  return 1;
}

static int infer_broadcast(Cx *x) {
  const IrType *a = &x->a[0], *r = &x->res[0];
  if (r->dtype != a->dtype)
    return fail(x, 0, "dtype changes from %s to %s", ir_dtype_name(a->dtype),
                ir_dtype_name(r->dtype));
  if (a->rank > r->rank)
    return fail(x, 0, "cannot broadcast rank %d to rank %d", a->rank, r->rank);
  for (int i = 0; i < a->rank; i++) {
    int j = i + r->rank - a->rank;
    if (a->dim[i] != 1 && a->dim[i] != r->dim[j])
      return fail(x, 0, "cannot broadcast dimension %d of size %lld to %lld",
                  i, (long long)a->dim[i], (long long)r->dim[j]);
  }
  return 1;
}

static int infer_cast(Cx *x) {
  if (!ir_shape_eq(&x->a[0], &x->res[0]))
    return fail(x, 0, "shapes differ (%s vs %s)", sstr(x, &x->a[0]),
                sstr(x, &x->res[0]));
  return 1;
}

/* ----------------------------------------------------- elementwise unary */

static int infer_float_unary(Cx *x) {
  if (!need_float(x, 0)) return 0;
  return one(x, x->a[0]);
}

static int infer_numeric_unary(Cx *x) {
  if (!need_numeric(x, 0)) return 0;
  if (x->op == IR_OP_CLAMP) {
    double lo, hi;
    if (!get_float(x, "lo", false, -INFINITY, &lo) ||
        !get_float(x, "hi", false, INFINITY, &hi))
      return 0;
    if (lo > hi) return fail(x, -1, "lo %g is greater than hi %g", lo, hi);
  }
  return one(x, x->a[0]);
}

static int infer_not(Cx *x) {
  if (!need_bool(x, 0)) return 0;
  return one(x, x->a[0]);
}

/* glu, swiglu, geglu: halves along `axis` (default -1). */
static int infer_glu(Cx *x) {
  int ax;
  if (!need_float(x, 0)) return 0;
  if (!get_axis(x, "axis", false, -1, x->a[0].rank, 0, &ax)) return 0;
  IrType t = x->a[0];
  if (t.dim[ax] % 2 != 0)
    return fail(x, 0, "axis %d has odd size %lld", ax, (long long)t.dim[ax]);
  t.dim[ax] /= 2;
  t.sym[ax] = IR_NO_SYM;
  return one(x, t);
}

/* ---------------------------------------------------- broadcasting binary */

static int infer_binary(Cx *x) {
  IrOp op = x->op;
  if (!need_same_dtype(x, 0, 1)) return 0;
  bool logic = op == IR_OP_AND || op == IR_OP_OR;
  bool cmp = op >= IR_OP_EQ && op <= IR_OP_GE;
  if (logic && !need_bool(x, 0)) return 0;
  if (!logic && op != IR_OP_EQ && op != IR_OP_NE && !need_numeric(x, 0))
    return 0;
  IrType t;
  int d;
  if (!bcast(&x->a[0], &x->a[1], &t, &d))
    return bcast_fail(x, &x->a[0], &x->a[1], d, 1);
  if (cmp) t.dtype = DT_BOOL;
  return one(x, t);
}

static int infer_where(Cx *x) {
  if (!need_bool(x, 0) || !need_same_dtype(x, 1, 2)) return 0;
  IrType t, u;
  int d;
  if (!bcast(&x->a[1], &x->a[2], &t, &d))
    return bcast_fail(x, &x->a[1], &x->a[2], d, 2);
  if (!bcast(&x->a[0], &t, &u, &d)) return bcast_fail(x, &x->a[0], &t, d, 0);
  u.dtype = x->a[1].dtype;
  return one(x, u);
}

/* ------------------------------------------------------------ reductions */

/* Mark the reduced axes of `axes` (absent: all) in red[]. */
static bool reduced_axes(Cx *x, int rank, bool red[IR_MAX_RANK]) {
  Ints ax;
  if (!get_ints(x, "axes", false, &ax)) return false;
  for (int i = 0; i < rank; i++) red[i] = !ax.present;
  for (int i = 0; i < ax.n; i++) {
    int a;
    if (!ir_axis(ax.v[i], rank, &a)) {
      fail(x, 0, "axis %lld is out of range for rank %d", (long long)ax.v[i],
           rank);
      return false;
    }
    if (red[a]) {
      fail(x, 0, "axis %d appears twice", a);
      return false;
    }
    red[a] = true;
  }
  return true;
}

static IrType reduce_type(const IrType *in, const bool *red, bool keep) {
  IrType t = ir_type_scalar(in->dtype);
  for (int i = 0; i < in->rank; i++) {
    if (red[i] && !keep) continue;
    t.dim[t.rank] = red[i] ? 1 : in->dim[i];
    t.sym[t.rank] = red[i] ? IR_NO_SYM : in->sym[i];
    t.rank++;
  }
  return t;
}

static int infer_reduce(Cx *x) {
  IrOp op = x->op;
  bool red[IR_MAX_RANK], keep;
  if (op == IR_OP_MEAN || op == IR_OP_LOGSUMEXP || op == IR_OP_VAR) {
    if (!need_float(x, 0)) return 0;
  } else if (!need_numeric(x, 0)) {
    return 0;
  }
  if (!reduced_axes(x, x->a[0].rank, red) || !get_bool(x, "keepdims", false, &keep))
    return 0;
  return one(x, reduce_type(&x->a[0], red, keep));
}

static int infer_argmax(Cx *x) {
  bool red[IR_MAX_RANK] = {false}, keep;
  int ax;
  if (!need_numeric(x, 0)) return 0;
  if (!get_axis(x, "axis", false, -1, x->a[0].rank, 0, &ax) ||
      !get_bool(x, "keepdims", false, &keep))
    return 0;
  red[ax] = true;
  IrType t = reduce_type(&x->a[0], red, keep);
  t.dtype = DT_I32;
  return one(x, t);
}

/* ------------------------------------------------------------------ shape */

static int infer_transpose(Cx *x) {
  const IrType *a = &x->a[0];
  Ints p;
  bool seen[IR_MAX_RANK] = {false};
  if (!get_ints(x, "perm", true, &p)) return 0;
  if (p.n != a->rank)
    return fail(x, 0, "perm has %d entries for rank %d", p.n, a->rank);
  IrType t = *a;
  for (int i = 0; i < p.n; i++) {
    if (p.v[i] < 0 || p.v[i] >= a->rank || seen[p.v[i]])
      return fail(x, -1, "perm is not a permutation of %d axes", a->rank);
    seen[p.v[i]] = true;
    t.dim[i] = a->dim[p.v[i]];
    t.sym[i] = a->sym[p.v[i]];
  }
  return one(x, t);
}

static int infer_concat(Cx *x) {
  const IrType *a = &x->a[0];
  int ax;
  if (!get_axis(x, "axis", true, 0, a->rank, 0, &ax)) return 0;
  IrType t = *a;
  for (int k = 1; k < x->n; k++) {
    const IrType *b = &x->a[k];
    if (!need_same_dtype(x, 0, k)) return 0;
    if (b->rank != a->rank)
      return fail(x, k, "ranks differ (%d vs %d)", a->rank, b->rank);
    for (int i = 0; i < a->rank; i++)
      if (i != ax && b->dim[i] != a->dim[i])
        return fail(x, k, "dimension %d differs (%lld vs %lld)", i,
                    (long long)a->dim[i], (long long)b->dim[i]);
    t.dim[ax] += b->dim[ax];
    t.sym[ax] = IR_NO_SYM;
    if (t.dim[ax] > DIM_MAX) return fail(x, k, "concatenated size is too large");
  }
  return one(x, t);
}

static int infer_stack(Cx *x) {
  const IrType *a = &x->a[0];
  int ax;
  if (!need_result_rank(x, a->rank + 1)) return 0;
  if (!get_axis(x, "axis", true, 0, a->rank + 1, 0, &ax)) return 0;
  for (int k = 1; k < x->n; k++) {
    if (!need_same_dtype(x, 0, k)) return 0;
    if (!ir_shape_eq(a, &x->a[k]))
      return fail(x, k, "shapes differ (%s vs %s)", sstr(x, a),
                  sstr(x, &x->a[k]));
  }
  IrType t = ir_type_scalar(a->dtype);
  t.rank = a->rank + 1;
  for (int i = 0, j = 0; i < t.rank; i++) {
    if (i == ax) {
      t.dim[i] = x->n;
      continue;
    }
    t.dim[i] = a->dim[j];
    t.sym[i] = a->sym[j];
    j++;
  }
  return one(x, t);
}

/* Python slice bound: negative counts from the end, clamped to [0, n]. */
static int64_t slice_bound(int64_t v, int64_t n) {
  if (v < 0) v += n;
  if (v < 0) v = 0;
  if (v > n) v = n;
  return v;
}

static int infer_slice(Cx *x) {
  const IrType *a = &x->a[0];
  int ax;
  int64_t start, end, step;
  if (!get_axis(x, "axis", true, 0, a->rank, 0, &ax) ||
      !get_int(x, "start", true, 0, &start) ||
      !get_int(x, "end", true, 0, &end) || !get_int(x, "step", false, 1, &step))
    return 0;
  if (step <= 0)
    return fail(x, -1, "step must be positive, got %lld", (long long)step);
  int64_t n = a->dim[ax];
  int64_t s = slice_bound(start, n), e = slice_bound(end, n);
  int64_t len = e > s ? e - s : 0;
  IrType t = *a;
  t.dim[ax] = len / step + (len % step != 0);
  if (t.dim[ax] != n) t.sym[ax] = IR_NO_SYM;
  return one(x, t);
}

static int infer_pad(Cx *x) {
  const IrType *a = &x->a[0];
  Ints p;
  double value;
  if (!get_ints(x, "pads", true, &p) || !get_float(x, "value", false, 0, &value))
    return 0;
  if (p.n != 2 * a->rank)
    return fail(x, -1, "pads has %d entries, expected %d (2 per axis)", p.n,
                2 * a->rank);
  IrType t = *a;
  for (int i = 0; i < p.n; i++)
    if (p.v[i] < 0 || p.v[i] > DIM_MAX)
      return fail(x, -1, "invalid padding %lld on axis %d",
                  (long long)p.v[i], i / 2);
  for (int i = 0; i < a->rank; i++) {
    if (p.v[2 * i] || p.v[2 * i + 1]) t.sym[i] = IR_NO_SYM;
    t.dim[i] += p.v[2 * i] + p.v[2 * i + 1];
  }
  return one(x, t);
}

static int infer_one_hot(Cx *x) {
  const IrType *a = &x->a[0];
  int64_t c;
  if (!need_int(x, 0) || !need_result_rank(x, a->rank + 1)) return 0;
  if (!get_int(x, "classes", true, 0, &c)) return 0;
  if (c < 1 || c > DIM_MAX)
    return fail(x, -1, "classes must be at least 1, got %lld", (long long)c);
  IrType t = *a;
  t.dtype = DT_F32;
  t.dim[t.rank] = c;
  t.sym[t.rank] = IR_NO_SYM;
  t.rank++;
  return one(x, t);
}

static int infer_gather(Cx *x) {
  const IrType *tab = &x->a[0], *idx = &x->a[1];
  if (tab->rank < 1)
    return fail(x, 0, "expected a table of rank >= 1, got a scalar");
  if (!need_int(x, 1)) return 0;
  if (!need_result_rank(x, idx->rank + tab->rank - 1)) return 0;
  IrType t = *idx;
  t.dtype = tab->dtype;
  for (int i = 1; i < tab->rank; i++) {
    t.dim[t.rank] = tab->dim[i];
    t.sym[t.rank] = tab->sym[i];
    t.rank++;
  }
  return one(x, t);
}

/* --------------------------------------------------------- linear algebra */

/* NumPy matmul: 1-D operands are promoted ([K] -> [1,K] on the left, [K,1]
** on the right) and the added dimension removed from the result; leading
** (batch) dimensions broadcast. */
static int infer_matmul(Cx *x) {
  IrType a = x->a[0], b = x->a[1];
  if (!need_same_dtype(x, 0, 1) || !need_numeric(x, 0)) return 0;
  if (a.rank == 0) return fail(x, 0, "expected a tensor of rank >= 1, got a scalar");
  if (b.rank == 0) return fail(x, 1, "expected a tensor of rank >= 1, got a scalar");
  bool va = a.rank == 1, vb = b.rank == 1;
  if (va) {
    a.rank = 2;
    a.dim[1] = a.dim[0], a.sym[1] = a.sym[0];
    a.dim[0] = 1, a.sym[0] = IR_NO_SYM;
  }
  if (vb) {
    b.rank = 2;
    b.dim[1] = 1, b.sym[1] = IR_NO_SYM;
  }
  int64_t ka = a.dim[a.rank - 1], kb = b.dim[b.rank - 2];
  if (ka != kb)
    return fail(x, 1, "inner dimensions differ (%lld vs %lld)", (long long)ka,
                (long long)kb);
  IrType ba = a, bb = b, t;
  ba.rank -= 2;
  bb.rank -= 2;
  int d;
  if (!bcast(&ba, &bb, &t, &d)) {
    int r = ba.rank > bb.rank ? ba.rank : bb.rank;
    return fail(x, 1,
                "batch dimensions cannot be broadcast (dimension %d: %lld vs "
                "%lld)",
                d, (long long)rdim(&ba, r, d), (long long)rdim(&bb, r, d));
  }
  if (!va) {
    t.dim[t.rank] = a.dim[a.rank - 2];
    t.sym[t.rank++] = a.sym[a.rank - 2];
  }
  if (!vb) {
    t.dim[t.rank] = b.dim[b.rank - 1];
    t.sym[t.rank++] = b.sym[b.rank - 1];
  }
  for (int i = t.rank; i < IR_MAX_RANK; i++) t.dim[i] = 0, t.sym[i] = IR_NO_SYM;
  return one(x, t);
}

static int infer_softmax(Cx *x) {
  int ax;
  if (!need_float(x, 0)) return 0;
  if (!get_axis(x, "axis", false, -1, x->a[0].rank, 0, &ax)) return 0;
  return one(x, x->a[0]);
}

/* attention q[...,Tq,D] k[...,Tk,D] v[...,Tk,Dv] [mask] -> [...,Tq,Dv] */
static int infer_attention(Cx *x) {
  const IrType *q = &x->a[0], *k = &x->a[1], *v = &x->a[2];
  int r = q->rank;
  double scale;
  bool causal;
  if (!need_float(x, 0) || !need_same_dtype(x, 0, 1) || !need_same_dtype(x, 0, 2))
    return 0;
  if (r < 2) return fail(x, 0, "expected a tensor of rank >= 2, got rank %d", r);
  if (k->rank != r) return fail(x, 1, "ranks differ (%d vs %d)", r, k->rank);
  if (v->rank != r) return fail(x, 2, "ranks differ (%d vs %d)", r, v->rank);
  for (int i = 0; i < r - 2; i++) {
    if (k->dim[i] != q->dim[i])
      return fail(x, 1, "batch dimension %d differs (%lld vs %lld)", i,
                  (long long)q->dim[i], (long long)k->dim[i]);
    if (v->dim[i] != q->dim[i])
      return fail(x, 2, "batch dimension %d differs (%lld vs %lld)", i,
                  (long long)q->dim[i], (long long)v->dim[i]);
  }
  if (k->dim[r - 1] != q->dim[r - 1])
    return fail(x, 1, "key dimensions differ (%lld vs %lld)",
                (long long)q->dim[r - 1], (long long)k->dim[r - 1]);
  if (v->dim[r - 2] != k->dim[r - 2])
    return fail(x, 2, "key and value lengths differ (%lld vs %lld)",
                (long long)k->dim[r - 2], (long long)v->dim[r - 2]);
  if (!get_float(x, "scale", false, 0, &scale) ||
      !get_bool(x, "causal", false, &causal))
    return 0;
  IrType t = *q;
  t.dim[r - 1] = v->dim[r - 1];
  t.sym[r - 1] = v->sym[r - 1];
  if (x->n == 4) {
    const IrType *mk = &x->a[3];
    IrType s = *q;
    s.dim[r - 1] = k->dim[r - 2];
    if (mk->dtype != DT_BOOL && !ir_dtype_is_float(mk->dtype))
      return fail(x, 3, "expected a floating-point or bool mask, got %s",
                  ir_dtype_name(mk->dtype));
    if (mk->rank > r)
      return fail(x, 3, "mask rank %d exceeds the rank %d of the scores",
                  mk->rank, r);
    for (int i = 0; i < mk->rank; i++) {
      int j = i + r - mk->rank;
      if (mk->dim[i] != 1 && mk->dim[i] != s.dim[j])
        return fail(x, 3, "mask cannot be broadcast (dimension %d: %lld vs %lld)",
                    j, (long long)mk->dim[i], (long long)s.dim[j]);
    }
  }
  return one(x, t);
}

/* ------------------------------------------------------------------ vision */

/* A conv-like ints attribute with one value or one per spatial dimension,
** each in [lo, ATTR_MAX]; out[] gets nsp values. */
static bool spatial(Cx *x, const char *name, bool required, int64_t dflt,
                    int64_t lo, int nsp, int64_t *out) {
  Ints v;
  if (!get_ints(x, name, required, &v)) return false;
  if (!v.present) {
    for (int i = 0; i < nsp; i++) out[i] = dflt;
    return true;
  }
  if (v.n != 1 && v.n != nsp) {
    fail(x, -1, "%s has %d values, expected 1 or %d", name, v.n, nsp);
    return false;
  }
  for (int i = 0; i < nsp; i++) {
    out[i] = v.v[v.n == 1 ? 0 : i];
    if (out[i] < lo || out[i] > ATTR_MAX) {
      fail(x, -1, "%s must be %s, got %lld", name,
           lo > 0 ? "positive" : "non-negative", (long long)out[i]);
      return false;
    }
  }
  return true;
}

typedef struct ConvP {
  int nsp;
  int64_t stride[2], pad[2], dil[2], opad[2], groups;
} ConvP;

static bool conv_params(Cx *x, int nsp, bool transposed, ConvP *p) {
  p->nsp = nsp;
  if (!spatial(x, "stride", false, 1, 1, nsp, p->stride) ||
      !spatial(x, "padding", false, 0, 0, nsp, p->pad) ||
      !spatial(x, "dilation", false, 1, 1, nsp, p->dil) ||
      !get_int(x, "groups", false, 1, &p->groups))
    return false;
  if (p->groups < 1 || p->groups > ATTR_MAX) {
    fail(x, -1, "groups must be positive, got %lld", (long long)p->groups);
    return false;
  }
  if (transposed) {
    if (!spatial(x, "output_padding", false, 0, 0, nsp, p->opad)) return false;
    for (int i = 0; i < nsp; i++) {
      int64_t lim = p->stride[i] > p->dil[i] ? p->stride[i] : p->dil[i];
      if (p->opad[i] >= lim) {
        fail(x, -1,
             "output_padding %lld must be smaller than stride or dilation "
             "(%lld)",
             (long long)p->opad[i], (long long)lim);
        return false;
      }
    }
  }
  return true;
}

static int check_bias(Cx *x, int64_t o) {
  if (x->n < 3) return 1;
  if (!need_same_dtype(x, 0, 2)) return 0;
  if (x->a[2].rank != 1 || x->a[2].dim[0] != o)
    return fail(x, 2, "bias shape %s does not match %lld output channels",
                sstr(x, &x->a[2]), (long long)o);
  return 1;
}

static int out_size_fail(Cx *x, int i, int64_t out, int64_t in, int64_t k) {
  return fail(x, 0,
              "spatial dimension %d: output size %lld is not positive (input "
              "%lld, kernel %lld)",
              i, (long long)out, (long long)in, (long long)k);
}

/* conv1d x[N,C,L] w[O,C/g,K]; conv2d x[N,C,H,W] w[O,C/g,KH,KW]; [b[O]] */
static int infer_conv(Cx *x) {
  int nsp = x->op == IR_OP_CONV1D ? 1 : 2;
  const IrType *in = &x->a[0], *w = &x->a[1];
  ConvP p;
  if (!need_float(x, 0) || !need_same_dtype(x, 0, 1)) return 0;
  if (!need_rank(x, 0, nsp + 2) || !need_rank(x, 1, nsp + 2)) return 0;
  if (!conv_params(x, nsp, false, &p)) return 0;
  int64_t c = in->dim[1], o = w->dim[0], g = p.groups;
  if (c % g) return fail(x, 0, "groups %lld does not divide input channels %lld",
                         (long long)g, (long long)c);
  if (o % g) return fail(x, 1, "groups %lld does not divide output channels %lld",
                         (long long)g, (long long)o);
  if (w->dim[1] * g != c)
    return fail(x, 1,
                "input channels %lld do not match weight's %lld*groups (%lld)",
                (long long)c, (long long)w->dim[1], (long long)(w->dim[1] * g));
  if (!check_bias(x, o)) return 0;
  IrType t = *in;
  t.dim[1] = o;
  t.sym[1] = w->sym[0];
  for (int i = 0; i < nsp; i++) {
    int64_t n = in->dim[2 + i], k = w->dim[2 + i];
    int64_t num = n + 2 * p.pad[i] - p.dil[i] * (k - 1) - 1, s = p.stride[i];
    int64_t out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
    if (out < 1) return out_size_fail(x, i, out, n, k);
    t.dim[2 + i] = out;
    t.sym[2 + i] = IR_NO_SYM;
  }
  return one(x, t);
}

/* conv_transpose2d x[N,C,H,W] w[C,O/g,KH,KW] [b[O]] */
static int infer_conv_transpose(Cx *x) {
  const IrType *in = &x->a[0], *w = &x->a[1];
  ConvP p;
  if (!need_float(x, 0) || !need_same_dtype(x, 0, 1)) return 0;
  if (!need_rank(x, 0, 4) || !need_rank(x, 1, 4)) return 0;
  if (!conv_params(x, 2, true, &p)) return 0;
  int64_t c = in->dim[1], g = p.groups;
  if (w->dim[0] != c)
    return fail(x, 1, "input channels %lld do not match weight's %lld",
                (long long)c, (long long)w->dim[0]);
  if (c % g) return fail(x, 0, "groups %lld does not divide input channels %lld",
                         (long long)g, (long long)c);
  int64_t o = w->dim[1] * g;
  if (!check_bias(x, o)) return 0;
  IrType t = *in;
  t.dim[1] = o;
  t.sym[1] = IR_NO_SYM;
  for (int i = 0; i < 2; i++) {
    int64_t n = in->dim[2 + i], k = w->dim[2 + i];
    int64_t out = (n - 1) * p.stride[i] - 2 * p.pad[i] +
                  p.dil[i] * (k - 1) + p.opad[i] + 1;
    if (out < 1) return out_size_fail(x, i, out, n, k);
    t.dim[2 + i] = out;
    t.sym[2 + i] = IR_NO_SYM;
  }
  return one(x, t);
}

/* The result type of pooling operand 0 ([N,C,H,W] or [C,H,W]) by the
** node's kernel*, stride (= kernel), padding, dilation; 0 on error. */
static int pool_out(Cx *x, IrType *t) {
  const IrType *in = &x->a[0];
  int64_t k[2], s[2], pd[2], d[2];
  bool cip;
  if (in->rank != 3 && in->rank != 4)
    return fail(x, 0, "expected a rank-4 tensor, got rank %d", in->rank);
  if (!spatial(x, "kernel", true, 1, 1, 2, k) ||
      !spatial(x, "stride", false, 1, 1, 2, s) ||
      !spatial(x, "padding", false, 0, 0, 2, pd) ||
      !spatial(x, "dilation", false, 1, 1, 2, d) ||
      !get_bool(x, "count_include_pad", true, &cip))
    return 0;
  if (x->op == IR_OP_AVG_POOL2D && attr(x, "dilation"))
    return fail(x, -1, "avg_pool2d takes no dilation");
  if (!attr(x, "stride")) s[0] = k[0], s[1] = k[1];
  *t = *in;
  for (int i = 0; i < 2; i++) {
    if (2 * pd[i] > k[i])
      return fail(x, -1, "padding %lld must be at most half the kernel %lld",
                  (long long)pd[i], (long long)k[i]);
    int r = in->rank - 2 + i;
    int64_t num = in->dim[r] + 2 * pd[i] - d[i] * (k[i] - 1) - 1;
    if (num < 0)
      return out_size_fail(x, i, -((-num + s[i] - 1) / s[i]) + 1, in->dim[r],
                           k[i]);
    t->dim[r] = num / s[i] + 1; /* PyTorch: (H + 2p - d(k-1) - 1)/s + 1 */
    t->sym[r] = IR_NO_SYM;
  }
  return 1;
}

/* max_pool2d / avg_pool2d on [N,C,H,W] (or [C,H,W]). */
static int infer_pool(Cx *x) {
  IrType t = x->a[0];
  if (x->op == IR_OP_AVG_POOL2D ? !need_float(x, 0) : !need_numeric(x, 0))
    return 0;
  return pool_out(x, &t) && one(x, t);
}

/* max_pool2d_grad x, dy -> dx (x's type): dy has max_pool2d's result shape. */
static int infer_max_pool_grad(Cx *x) {
  IrType t = x->a[0];
  if (!need_float(x, 0) || !need_same_dtype(x, 0, 1) || !pool_out(x, &t))
    return 0;
  if (!ir_shape_eq(&t, &x->a[1]))
    return fail(x, 1, "dy has shape %s, expected max_pool2d's result %s",
                sstr(x, &x->a[1]), sstr(x, &t));
  return one(x, x->a[0]);
}

static int infer_upsample(Cx *x) {
  const IrType *in = &x->a[0];
  Ints sz;
  bool ac;
  if (x->op == IR_OP_UPSAMPLE_BILINEAR ? !need_float(x, 0) : !need_numeric(x, 0))
    return 0;
  if (in->rank != 3 && in->rank != 4)
    return fail(x, 0, "expected a rank-4 tensor, got rank %d", in->rank);
  if (!get_ints(x, "size", true, &sz) ||
      !get_bool(x, "align_corners", false, &ac))
    return 0;
  if (sz.n != 2) return fail(x, -1, "size has %d values, expected 2", sz.n);
  IrType t = *in;
  for (int i = 0; i < 2; i++) {
    if (sz.v[i] < 1 || sz.v[i] > DIM_MAX)
      return fail(x, -1, "size must be positive, got %lld", (long long)sz.v[i]);
    int r = in->rank - 2 + i;
    if (sz.v[i] != in->dim[r]) t.sym[r] = IR_NO_SYM;
    t.dim[r] = sz.v[i];
  }
  return one(x, t);
}

/* pixel_shuffle [*,C*r*r,H,W] -> [*,C,H*r,W*r]; pixel_unshuffle inverse. */
static int infer_pixel_shuffle(Cx *x) {
  const IrType *in = &x->a[0];
  int64_t r;
  if (in->rank < 3)
    return fail(x, 0, "expected a tensor of rank >= 3, got rank %d", in->rank);
  if (!get_int(x, "r", true, 1, &r)) return 0;
  if (r < 1 || r > ATTR_MAX)
    return fail(x, -1, "r must be positive, got %lld", (long long)r);
  int c = in->rank - 3, h = c + 1, w = c + 2;
  IrType t = *in;
  t.sym[c] = t.sym[h] = t.sym[w] = IR_NO_SYM;
  if (x->op == IR_OP_PIXEL_SHUFFLE) {
    if (in->dim[c] % (r * r))
      return fail(x, 0, "channels %lld are not divisible by r^2 = %lld",
                  (long long)in->dim[c], (long long)(r * r));
    t.dim[c] /= r * r;
    t.dim[h] *= r;
    t.dim[w] *= r;
    return one(x, t);
  }
  if (in->dim[h] % r)
    return fail(x, 0, "height %lld is not divisible by r = %lld",
                (long long)in->dim[h], (long long)r);
  if (in->dim[w] % r)
    return fail(x, 0, "width %lld is not divisible by r = %lld",
                (long long)in->dim[w], (long long)r);
  t.dim[c] *= r * r;
  t.dim[h] /= r;
  t.dim[w] /= r;
  return one(x, t);
}

/* ------------------------------------------------------- losses, metrics */

/* logits[...,C] (float) with int labels[...] */
static int check_class_labels(Cx *x) {
  const IrType *lg = &x->a[0], *lb = &x->a[1];
  if (!need_float(x, 0)) return 0;
  if (lg->rank < 1)
    return fail(x, 0, "expected logits of rank >= 1, got a scalar");
  if (!need_int(x, 1)) return 0;
  if (lb->rank != lg->rank - 1)
    return fail(x, 1, "labels have rank %d, expected %d (the logits' rank - 1)",
                lb->rank, lg->rank - 1);
  for (int i = 0; i < lb->rank; i++)
    if (lb->dim[i] != lg->dim[i])
      return fail(x, 1,
                  "labels do not match the logits' leading shape (dimension "
                  "%d: %lld vs %lld)",
                  i, (long long)lb->dim[i], (long long)lg->dim[i]);
  return 1;
}

/* logits[N] (float) with labels[N] (binary; int, bool or float labels) */
static int check_binary_labels(Cx *x) {
  if (!need_float(x, 0)) return 0;
  if (!ir_shape_eq(&x->a[0], &x->a[1]))
    return fail(x, 1, "shapes differ (%s vs %s)", sstr(x, &x->a[0]),
                sstr(x, &x->a[1]));
  return 1;
}

static int infer_class_loss(Cx *x) {
  double ls;
  if (!check_class_labels(x)) return 0;
  if (!get_float(x, "label_smoothing", false, 0, &ls)) return 0;
  if (!(ls >= 0 && ls < 1))
    return fail(x, -1, "label_smoothing must be in [0, 1), got %g", ls);
  return one(x, ir_type_scalar(x->a[0].dtype));
}

/* bce_with_logits, mse, l1, huber: same shape and float dtype */
static int infer_pair_loss(Cx *x) {
  if (!need_float(x, 0) || !need_same_dtype(x, 0, 1)) return 0;
  if (!ir_shape_eq(&x->a[0], &x->a[1]))
    return fail(x, 1, "shapes differ (%s vs %s)", sstr(x, &x->a[0]),
                sstr(x, &x->a[1]));
  if (x->op == IR_OP_HUBER) {
    double d;
    if (!get_float(x, "delta", false, 1, &d)) return 0;
    if (!(d > 0)) return fail(x, -1, "delta must be positive, got %g", d);
  }
  return one(x, ir_type_scalar(x->a[0].dtype));
}

/* soft_accuracy: class form logits[...,C] with labels[...], or binary
** logits[N] with labels[N] (p = sigmoid). */
static int infer_soft_accuracy(Cx *x) {
  if (x->a[0].rank == x->a[1].rank) {
    if (!check_binary_labels(x)) return 0;
    return one(x, ir_type_scalar(x->a[0].dtype));
  }
  return infer_class_loss(x);
}

static int infer_soft_f1(Cx *x) {
  const IrType *lg = &x->a[0];
  if (lg->rank != 1 && lg->rank != 2)
    return fail(x, 0, "expected logits [N] or [N,C], got rank %d", lg->rank);
  if (lg->rank == 1 ? !check_binary_labels(x) : !check_class_labels(x))
    return 0;
  return one(x, ir_type_scalar(lg->dtype));
}

static int infer_metric(Cx *x) {
  const IrType *lg = &x->a[0], *lb = &x->a[1];
  bool binary = x->op != IR_OP_TOP_K && lg->rank == lb->rank;
  if (binary ? !check_binary_labels(x) : !check_class_labels(x)) return 0;
  if (x->op == IR_OP_TOP_K) {
    int64_t k;
    if (!get_int(x, "k", false, 5, &k)) return 0;
    if (k < 1) return fail(x, -1, "k must be positive, got %lld", (long long)k);
    if (k > lg->dim[lg->rank - 1])
      return fail(x, 0, "k %lld exceeds the number of classes %lld",
                  (long long)k, (long long)lg->dim[lg->rank - 1]);
  }
  return one(x, ir_type_scalar(DT_F32));
}

static int infer_scan(Cx *x) {
  return fail(x, -1, "scan is typed by its builder");
}

/* ------------------------------------------------------------- dispatch */

/* ORDER OP: every op of ops.def has a rule (tests/unit/test_shape.c). */
static const InferFn rules[IR_OP_COUNT] = {
    [IR_OP_CONSTANT] = infer_constant,
    [IR_OP_CAUSAL_MASK] = infer_causal_mask,
    [IR_OP_RAND] = infer_rand,
    [IR_OP_IOTA] = infer_iota,
    [IR_OP_NEG] = infer_numeric_unary,
    [IR_OP_EXP] = infer_float_unary,
    [IR_OP_LOG] = infer_float_unary,
    [IR_OP_SQRT] = infer_float_unary,
    [IR_OP_RSQRT] = infer_float_unary,
    [IR_OP_ABS] = infer_numeric_unary,
    [IR_OP_SIGN] = infer_numeric_unary,
    [IR_OP_SIN] = infer_float_unary,
    [IR_OP_COS] = infer_float_unary,
    [IR_OP_ERF] = infer_float_unary,
    [IR_OP_CAST] = infer_cast,
    [IR_OP_CLAMP] = infer_numeric_unary,
    [IR_OP_NOT] = infer_not,
    [IR_OP_STEP] = infer_float_unary,
    [IR_OP_SIGMOID] = infer_float_unary,
    [IR_OP_TANH] = infer_float_unary,
    [IR_OP_RELU] = infer_float_unary,
    [IR_OP_RELU6] = infer_float_unary,
    [IR_OP_LEAKY_RELU] = infer_float_unary,
    [IR_OP_ELU] = infer_float_unary,
    [IR_OP_SELU] = infer_float_unary,
    [IR_OP_GELU] = infer_float_unary,
    [IR_OP_GELU_TANH] = infer_float_unary,
    [IR_OP_SILU] = infer_float_unary,
    [IR_OP_MISH] = infer_float_unary,
    [IR_OP_SOFTPLUS] = infer_float_unary,
    [IR_OP_SOFTSIGN] = infer_float_unary,
    [IR_OP_HARD_SIGMOID] = infer_float_unary,
    [IR_OP_HARD_SWISH] = infer_float_unary,
    [IR_OP_GLU] = infer_glu,
    [IR_OP_SWIGLU] = infer_glu,
    [IR_OP_GEGLU] = infer_glu,
    [IR_OP_ADD] = infer_binary,
    [IR_OP_SUB] = infer_binary,
    [IR_OP_MUL] = infer_binary,
    [IR_OP_DIV] = infer_binary,
    [IR_OP_POW] = infer_binary,
    [IR_OP_MAXIMUM] = infer_binary,
    [IR_OP_MINIMUM] = infer_binary,
    [IR_OP_EQ] = infer_binary,
    [IR_OP_NE] = infer_binary,
    [IR_OP_LT] = infer_binary,
    [IR_OP_LE] = infer_binary,
    [IR_OP_GT] = infer_binary,
    [IR_OP_GE] = infer_binary,
    [IR_OP_AND] = infer_binary,
    [IR_OP_OR] = infer_binary,
    [IR_OP_WHERE] = infer_where,
    [IR_OP_SUM] = infer_reduce,
    [IR_OP_MEAN] = infer_reduce,
    [IR_OP_MAX] = infer_reduce,
    [IR_OP_MIN] = infer_reduce,
    [IR_OP_LOGSUMEXP] = infer_reduce,
    [IR_OP_VAR] = infer_reduce,
    [IR_OP_ARGMAX] = infer_argmax,
    [IR_OP_RESHAPE] = infer_reshape,
    [IR_OP_TRANSPOSE] = infer_transpose,
    [IR_OP_BROADCAST] = infer_broadcast,
    [IR_OP_CONCAT] = infer_concat,
    [IR_OP_SLICE] = infer_slice,
    [IR_OP_PAD] = infer_pad,
    [IR_OP_STACK] = infer_stack,
    [IR_OP_ONE_HOT] = infer_one_hot,
    [IR_OP_GATHER] = infer_gather,
    [IR_OP_MATMUL] = infer_matmul,
    [IR_OP_SOFTMAX] = infer_softmax,
    [IR_OP_LOG_SOFTMAX] = infer_softmax,
    [IR_OP_ATTENTION] = infer_attention,
    [IR_OP_CONV1D] = infer_conv,
    [IR_OP_CONV2D] = infer_conv,
    [IR_OP_CONV_TRANSPOSE2D] = infer_conv_transpose,
    [IR_OP_MAX_POOL2D] = infer_pool,
    [IR_OP_AVG_POOL2D] = infer_pool,
    [IR_OP_MAX_POOL2D_GRAD] = infer_max_pool_grad,
    [IR_OP_UPSAMPLE_NEAREST] = infer_upsample,
    [IR_OP_UPSAMPLE_BILINEAR] = infer_upsample,
    [IR_OP_PIXEL_SHUFFLE] = infer_pixel_shuffle,
    [IR_OP_PIXEL_UNSHUFFLE] = infer_pixel_shuffle,
    [IR_OP_CROSS_ENTROPY] = infer_class_loss,
    [IR_OP_NLL] = infer_class_loss,
    [IR_OP_BCE_WITH_LOGITS] = infer_pair_loss,
    [IR_OP_MSE] = infer_pair_loss,
    [IR_OP_L1] = infer_pair_loss,
    [IR_OP_HUBER] = infer_pair_loss,
    [IR_OP_SOFT_ACCURACY] = infer_soft_accuracy,
    [IR_OP_SOFT_F1] = infer_soft_f1,
    [IR_OP_ACCURACY] = infer_metric,
    [IR_OP_F1] = infer_metric,
    [IR_OP_TOP_K] = infer_metric,
    [IR_OP_SCAN] = infer_scan,
};

static int check_arity(Cx *x) {
  const IrOpInfo *in = &ir_op_info[x->op];
  if (x->n >= in->min_args && (in->max_args < 0 || x->n <= in->max_args))
    return 1;
  const char *s = in->min_args == 1 ? "" : "s";
  if (in->max_args < 0)
    return fail(x, -1, "expected at least %d operand%s, got %d", in->min_args,
                s, x->n);
  if (in->min_args == in->max_args)
    return fail(x, -1, "expected %d operand%s, got %d", in->min_args, s, x->n);
  return fail(x, -1, "expected %d to %d operands, got %d", in->min_args,
              in->max_args, x->n);
}

/* Operand types must be well formed before any rule looks at them. */
static int check_operands(Cx *x) {
  for (int k = 0; k < x->n; k++) {
    const IrType *t = &x->a[k];
    if (t->rank < 0 || t->rank > IR_MAX_RANK || (unsigned)t->dtype >= DT_COUNT)
      return fail(x, k, "malformed operand type");
    for (int i = 0; i < t->rank; i++)
      if (t->dim[i] < 0 || t->dim[i] > DIM_MAX)
        return fail(x, k, "dimension %d has invalid size %lld", i,
                    (long long)t->dim[i]);
  }
  return 1;
}

int ir_infer(const IrModule *m, IrOp op, int nargs, const IrType *args,
             const IrAttrs *attrs, IrType *res, int maxres, const char **err,
             int *bad_arg, Arena *scratch) {
  NNC_ASSERT(scratch && res && maxres >= 1);
  IrAttrs none = {NULL, 0};
  Cx x = {m, op, nargs, args, attrs ? attrs : &none, res, maxres, scratch,
          NULL, -1};
  int r = 0;
  if ((unsigned)op >= IR_OP_COUNT || !rules[op]) {
    fail(&x, -1, "no shape rule");
  } else if (check_arity(&x) && check_operands(&x)) {
    if (ir_op_info[op].flags & OPF_TYPED) {
      r = check_given(&x) && rules[op](&x);
    } else {
      r = rules[op](&x);
    }
  }
  if (err) *err = r ? NULL : x.err;
  if (bad_arg) *bad_arg = r ? -1 : x.bad;
  return r;
}

/*
** This file contains the reference interpreter of the tensor IR: the
** driver (binding inputs, globals and dimension symbols, running blocks
** node by node, converting results back to host tensors), the kernel table
** indexed by op, the scan kernel and the random-number generator.  The
** kernels themselves live by family in interp_ew.c (elementwise,
** reductions), interp_shape.c (sources and shape ops), interp_nn.c (linear
** algebra, attention, vision) and interp_loss.c (losses and metrics).
**
** The interpreter is the oracle every lowered kernel is tested against, so
** it is written for clarity: plain loops over doubles.
**
** Numerics.  Every element is held as a double while the interpreter runs.
** In f32 mode (IrInterpOpts.f64 false) each op computes in double and then
** rounds each float result to its dtype (f32; f16 and bf16 to their
** precision, round to nearest even), so the run reproduces f32 arithmetic op
** by op; integer results are exact (i64 within +-2^53), wrap on overflow,
** and integer division truncates toward 0 (division by zero and a negative
** integer exponent are run-time errors); bool is 0/1.  Float inputs and
** globals are rounded to their dtype when loaded.  In f64 mode float
** results are not rounded (gradient checks).
**
** Storage of host tensors (inputs, globals, outputs; see IrTensor):
** contiguous row-major, f32 as float, f16 and bf16 as float holding a value
** of that format, f64 as double, i32/i64 as int32_t/int64_t, u8 and bool as
** one byte; in f64 mode every float dtype (inputs and globals included) is
** stored as double.  ir_interp_elem_size() gives the element size.
**
** Dimension symbols: a dimension that carries a symbol takes its size from
** the inputs (a bounded symbol may be smaller than its bound), and every
** result type of the run is resolved with those sizes.
**
** Conventions chosen where the definitions leave a choice (tested in
** tests/unit/test_interp*.c):
**   - attention: a row whose scores are all -inf (fully masked) gives 0;
**     a bool mask keeps the positions where it is true; causal masks are
**     top-left aligned (key j is visible from query i when j <= i).
**   - soft_f1: the exact formula, with F1 = 0 for a class whose
**     denominator sum(p) + sum(y) is 0.
**   - f1: macro mean over the classes with 2TP+FP+FN > 0 (the classes
**     present in the labels or the predictions: scikit-learn's default
**     label set with zero_division = 0, and torchmetrics' macro F1); 0 when
**     there is none.  Binary: F1 of class 1, 0 when 2TP+FP+FN = 0.
**   - top_k: a label is a hit when fewer than k classes rank before it,
**     ties broken by the lower class index (so top_k with k = 1 is
**     accuracy, argmax taking the first maximum).
**   - upsample_nearest: src = floor(dst * in / out) in exact integers.
**   - cast float -> int truncates toward 0 and saturates, NaN gives 0;
**     int -> int wraps (two's complement); anything -> bool is x != 0.
**   - iota: axis defaults to 0.
**   - rand: see interp_run_rand below.
*/
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "interp_int.h"

/* ---------------------------------------------------------- value map */

/* An open-addressing hash map from IrValue* to Ten*.  Values of a scan body
** are overwritten at each step; outer values stay visible to the body. */
struct ValMap {
  const IrValue **keys;
  Ten **vals;
  int64_t cap, len;
};

static uint64_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

static void map_init(Arena *a, ValMap *mp, int64_t cap) {
  mp->cap = cap;
  mp->len = 0;
  mp->keys = ARENA_ARRAY(a, const IrValue *, cap);
  mp->vals = ARENA_ARRAY(a, Ten *, cap);
}

static void map_put(Arena *a, ValMap *mp, const IrValue *k, Ten *v);

static void map_grow(Arena *a, ValMap *mp) {
  ValMap old = *mp;
  map_init(a, mp, old.cap * 2);
  for (int64_t i = 0; i < old.cap; i++)
    if (old.keys[i]) map_put(a, mp, old.keys[i], old.vals[i]);
}

static void map_put(Arena *a, ValMap *mp, const IrValue *k, Ten *v) {
  if (2 * (mp->len + 1) > mp->cap) map_grow(a, mp);
  int64_t i = (int64_t)(hash_ptr(k) & (uint64_t)(mp->cap - 1));
  while (mp->keys[i] && mp->keys[i] != k) i = (i + 1) & (mp->cap - 1);
  if (!mp->keys[i]) mp->len++;
  mp->keys[i] = k;
  mp->vals[i] = v;
}

static Ten *map_get(const ValMap *mp, const IrValue *k) {
  int64_t i = (int64_t)(hash_ptr(k) & (uint64_t)(mp->cap - 1));
  while (mp->keys[i]) {
    if (mp->keys[i] == k) return mp->vals[i];
    i = (i + 1) & (mp->cap - 1);
  }
  return NULL;
}

/* ------------------------------------------------------------ helpers */

bool interp_fail(Interp *in, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  in->err = arena_vprintf(in->out, fmt, ap);
  va_end(ap);
  return false;
}

bool interp_axis(Interp *in, const IrNode *n, int64_t axis, int rank,
                 int *out) {
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank)
    return interp_fail(in, "%s: axis %lld out of range for rank %d",
                       ir_op_info[n->op].name, (long long)axis, rank);
  *out = (int)a;
  return true;
}

void interp_strides(const IrType *t, int64_t *st) {
  int64_t s = 1;
  for (int k = t->rank - 1; k >= 0; k--) {
    st[k] = s;
    s *= t->dim[k];
  }
}

void interp_bcast_strides(const IrType *in, const IrType *out, int64_t *st) {
  int64_t ist[IR_MAX_RANK];
  interp_strides(in, ist);
  int off = out->rank - in->rank;
  for (int k = 0; k < out->rank; k++) {
    int j = k - off;
    st[k] = (j < 0 || in->dim[j] == 1) ? 0 : ist[j];
  }
}

bool interp_bcast_ok(const IrType *in, const IrType *out) {
  if (in->rank > out->rank) return false;
  for (int k = 0; k < in->rank; k++) {
    int64_t d = in->dim[k], o = out->dim[out->rank - in->rank + k];
    if (d != o && d != 1) return false;
  }
  return true;
}

bool interp_bcast_shape(const IrType *a, const IrType *b, IrType *out) {
  int r = a->rank > b->rank ? a->rank : b->rank;
  *out = *a;
  out->rank = r;
  for (int k = 0; k < r; k++) {
    int ia = k - (r - a->rank), ib = k - (r - b->rank);
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    if (da != db && da != 1 && db != 1) return false;
    out->dim[k] = da == 1 ? db : da;
    out->sym[k] = IR_NO_SYM;
  }
  return true;
}

int64_t interp_bcast_off(int64_t i, const IrType *out, const int64_t *st) {
  int64_t off = 0;
  for (int k = out->rank - 1; k >= 0; k--) {
    int64_t d = out->dim[k];
    off += (i % d) * st[k];
    i /= d;
  }
  return off;
}

bool interp_attr_ivec(Interp *in, const IrNode *n, const char *name, int rank,
                      int64_t dflt, int64_t *out) {
  const IrAttr *a = ir_attr_get(&n->attrs, name);
  for (int k = 0; k < rank; k++) out[k] = dflt;
  if (!a) return true;
  if (a->kind == ATTR_INT) {
    for (int k = 0; k < rank; k++) out[k] = a->i;
    return true;
  }
  if (a->kind != ATTR_INTS || (a->n != rank && a->n != 1))
    return interp_fail(in, "%s: attribute %s needs 1 or %d ints",
                       ir_op_info[n->op].name, name, rank);
  for (int k = 0; k < rank; k++) out[k] = a->ints[a->n == 1 ? 0 : k];
  return true;
}

double *interp_alloc(Interp *in, int64_t n) {
  return ARENA_ARRAY(in->tmp, double, n > 0 ? n : 1);
}

int64_t interp_dims(const IrType *t, int lo, int hi) {
  int64_t p = 1;
  for (int k = lo; k < hi; k++) p *= t->dim[k];
  return p;
}

/* ------------------------------------------------------------------ scan */

/* Copy slice t along axis of x (the axis removed) into out. */
static void slice_at(const Ten *x, int axis, int64_t t, double *out) {
  int64_t outer = interp_dims(&x->type, 0, axis), len = x->type.dim[axis];
  int64_t inner = interp_dims(&x->type, axis + 1, x->type.rank);
  for (int64_t o = 0; o < outer; o++)
    memcpy(out + o * inner, x->d + (o * len + t) * inner,
           sizeof(double) * (size_t)inner);
}

/* Write v into position t along axis of y. */
static void put_at(Ten *y, int axis, int64_t t, const double *v) {
  int64_t outer = interp_dims(&y->type, 0, axis), len = y->type.dim[axis];
  int64_t inner = interp_dims(&y->type, axis + 1, y->type.rank);
  for (int64_t o = 0; o < outer; o++)
    memcpy(y->d + (o * len + t) * inner, v + o * inner,
           sizeof(double) * (size_t)inner);
}

static bool run_block(Interp *in, const IrBlock *b, Ten **args, Ten **rets);

/* The sequence slices of step t: carries stay, sequences are sliced. */
static bool scan_slices(Interp *in, const IrNode *n, Ten *const *x, int nc,
                        const int *axis, int64_t t, Ten **args) {
  for (int j = nc; j < n->nargs; j++) {
    const Ten *s = x[j];
    Ten *v = ARENA_NEW(in->tmp, Ten);
    int ax = axis[j - nc];
    v->type = s->type;
    v->type.rank--;
    for (int k = ax; k < v->type.rank; k++) {
      v->type.dim[k] = s->type.dim[k + 1];
      v->type.sym[k] = s->type.sym[k + 1];
    }
    v->n = ir_type_numel(&v->type);
    v->d = interp_alloc(in, v->n);
    slice_at(s, ax, t, v->d);
    args[j] = v;
  }
  return true;
}

/* Checks of a scan node against its body and results; fills the sequence
** axes, the stacking axis of each emitted result and the trip count. */
static bool scan_setup(Interp *in, const IrNode *n, Ten *const *x,
                       const Ten *y, int nc, int *axis, int *eaxis,
                       int64_t *steps) {
  int ns = n->nargs - nc;
  const IrBlock *b = n->body;
  const IrAttr *ax = ir_attr_get(&n->attrs, "axes");
  if (nc < 0 || ns < 0 || !b || b->nargs != n->nargs ||
      b->nrets != n->nres || n->nres < nc)
    return interp_fail(in, "scan: malformed node (ncarry %d, %d operands)",
                       nc, n->nargs);
  if (ns > 0 && (!ax || ax->kind != ATTR_INTS || ax->n != ns))
    return interp_fail(in, "scan: axes needs one int per sequence");
  *steps = ir_attr_int(&n->attrs, "length", -1);
  for (int j = 0; j < ns; j++) {
    if (!interp_axis(in, n, ax->ints[j], x[nc + j]->type.rank, &axis[j]))
      return false;
    int64_t len = x[nc + j]->type.dim[axis[j]];
    if (*steps >= 0 && len != *steps)
      return interp_fail(in, "scan: sequence %d has length %lld, not %lld",
                         j, (long long)len, (long long)*steps);
    *steps = len;
  }
  if (*steps < 0) return interp_fail(in, "scan: no sequence and no length");
  int64_t a0 = ax && ax->n > 0 ? ax->ints[0] : 0;
  for (int i = nc; i < n->nres; i++) {
    if (!interp_axis(in, n, a0, y[i].type.rank, &eaxis[i])) return false;
    if (y[i].type.dim[eaxis[i]] != *steps)
      return interp_fail(in, "scan: result %d has %lld positions along axis "
                         "%d, not %lld", i, (long long)y[i].type.dim[eaxis[i]],
                         eaxis[i], (long long)*steps);
  }
  return true;
}

/* scan: run the body once per step along the sequences' axes, threading
** the carries (double-buffered, so a body may permute them) and writing the
** emitted values at the step's position (reverse scans too). */
static bool run_scan(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int nc = (int)ir_attr_int(&n->attrs, "ncarry", 0);
  int *axis = ARENA_ARRAY(in->tmp, int, n->nargs + 1);
  int *eaxis = ARENA_ARRAY(in->tmp, int, n->nres + 1);
  int64_t steps = 0;
  if (!scan_setup(in, n, x, y, nc, axis, eaxis, &steps)) return false;
  bool rev = ir_attr_bool(&n->attrs, "reverse", false);
  Ten **cur = ARENA_ARRAY(in->tmp, Ten *, nc + 1);
  Ten **nxt = ARENA_ARRAY(in->tmp, Ten *, nc + 1);
  for (int i = 0; i < nc; i++) {
    cur[i] = ARENA_NEW(in->tmp, Ten);
    *cur[i] = *x[i];
    cur[i]->d = arena_memdup(in->tmp, x[i]->d, sizeof(double) * x[i]->n);
    nxt[i] = ARENA_NEW(in->tmp, Ten);
    *nxt[i] = *x[i];
    nxt[i]->d = interp_alloc(in, x[i]->n);
  }
  Arena *outer = in->tmp, *it = arena_new();
  Ten **args = ARENA_ARRAY(outer, Ten *, n->nargs + 1);
  Ten **rets = ARENA_ARRAY(outer, Ten *, n->nres + 1);
  bool ok = true;
  for (int64_t s = 0; ok && s < steps; s++) {
    int64_t t = rev ? steps - 1 - s : s;
    in->tmp = it;
    for (int i = 0; i < nc; i++) args[i] = cur[i];
    ok = scan_slices(in, n, x, nc, axis, t, args) &&
         run_block(in, n->body, args, rets);
    for (int i = 0; ok && i < n->nres; i++) {
      int64_t want = i < nc ? cur[i]->n : y[i].n / (steps ? steps : 1);
      if (rets[i]->n != want)
        ok = interp_fail(in, "scan: body result %d has %lld elements, "
                         "expected %lld", i, (long long)rets[i]->n,
                         (long long)want);
    }
    for (int i = 0; ok && i < nc; i++)
      memcpy(nxt[i]->d, rets[i]->d, sizeof(double) * (size_t)cur[i]->n);
    for (int i = nc; ok && i < n->nres; i++)
      put_at(&y[i], eaxis[i], t, rets[i]->d);
    for (int i = 0; ok && i < nc; i++) {
      Ten *tmp = cur[i];
      cur[i] = nxt[i];
      nxt[i] = tmp;
    }
    in->tmp = outer;
    arena_reset(it);
  }
  in->tmp = outer;
  arena_free(it);
  for (int i = 0; ok && i < nc; i++) {
    if (y[i].n != cur[i]->n)
      return interp_fail(in, "scan: carry %d changes size", i);
    memcpy(y[i].d, cur[i]->d, sizeof(double) * (size_t)cur[i]->n);
  }
  return ok;
}

/* -------------------------------------------------------------- random */

/* Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as
** easy as 1, 2, 3", SC 2011), exactly as Random123's philox4x32_R(10, ...):
** ten rounds of two 32x32->64 multiplies, the key bumped by the Weyl
** constants before every round but the first. */
void ir_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2],
                      uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    if (r > 0) {
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    c1 = (uint32_t)p1;
    c3 = (uint32_t)p0;
    c0 = n0;
    c2 = n2;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/* rand: uniform [0,1).  The stream of element i (row-major index) of a
** rand node with attribute seed s, run with IrInterpOpts seed S and step T:
**   key     = { lo32(S), hi32(S) ^ lo32(s) }
**   counter = { lo32(i / 4), hi32(i / 4), lo32(T), hi32(T) }
**   u       = (philox4x32_10(counter, key)[i % 4] >> 8) * 2^-24
** so u takes 2^24 equally spaced values in [0, 1), all exact in f32, and
** depends on nothing else (not on the shape, the thread count or the
** order of evaluation).  An f16 (bf16) rand keeps the top 11 (8) of those
** 24 bits, floor(u * 2^11) / 2^11, so that rounding never reaches 1. */
double ir_interp_uniform(uint64_t seed, uint64_t stream, uint64_t step,
                         uint64_t i) {
  uint64_t blk = i / 4;
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32) ^ (uint32_t)stream};
  uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)step,
                     (uint32_t)(step >> 32)};
  uint32_t r[4];
  ir_philox4x32_10(ctr, key, r);
  return (double)(r[i % 4] >> 8) * 0x1p-24;
}

bool interp_run_rand(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  uint64_t s = (uint64_t)ir_attr_int(&n->attrs, "seed", 0);
  DType t = y->type.dtype;
  double bits = t == DT_F16 ? 0x1p11 : t == DT_BF16 ? 0x1p8 : 0x1p24;
  if (!ir_dtype_is_float(t))
    return interp_fail(in, "rand: result must be a float type");
  for (int64_t i = 0; i < y->n; i++) {
    double u = ir_interp_uniform(in->o->seed, s, in->o->step, (uint64_t)i);
    y->d[i] = floor(u * bits) / bits;
  }
  return true;
}

/* -------------------------------------------------------- kernel table */

/* ORDER OP: one entry per op of ops.def (checked by test_interp). */
static KernelFn *const kernels[IR_OP_COUNT] = {
    [IR_OP_CONSTANT] = interp_run_constant,
    [IR_OP_CAUSAL_MASK] = interp_run_causal_mask,
    [IR_OP_RAND] = interp_run_rand,
    [IR_OP_IOTA] = interp_run_iota,
    [IR_OP_NEG] = interp_run_unary,
    [IR_OP_EXP] = interp_run_unary,
    [IR_OP_LOG] = interp_run_unary,
    [IR_OP_SQRT] = interp_run_unary,
    [IR_OP_RSQRT] = interp_run_unary,
    [IR_OP_ABS] = interp_run_unary,
    [IR_OP_SIGN] = interp_run_unary,
    [IR_OP_SIN] = interp_run_unary,
    [IR_OP_COS] = interp_run_unary,
    [IR_OP_ERF] = interp_run_unary,
    [IR_OP_CAST] = interp_run_cast,
    [IR_OP_CLAMP] = interp_run_unary,
    [IR_OP_NOT] = interp_run_unary,
    [IR_OP_STEP] = interp_run_unary,
    [IR_OP_SIGMOID] = interp_run_unary,
    [IR_OP_TANH] = interp_run_unary,
    [IR_OP_RELU] = interp_run_unary,
    [IR_OP_RELU6] = interp_run_unary,
    [IR_OP_LEAKY_RELU] = interp_run_unary,
    [IR_OP_ELU] = interp_run_unary,
    [IR_OP_SELU] = interp_run_unary,
    [IR_OP_GELU] = interp_run_unary,
    [IR_OP_GELU_TANH] = interp_run_unary,
    [IR_OP_SILU] = interp_run_unary,
    [IR_OP_MISH] = interp_run_unary,
    [IR_OP_SOFTPLUS] = interp_run_unary,
    [IR_OP_SOFTSIGN] = interp_run_unary,
    [IR_OP_HARD_SIGMOID] = interp_run_unary,
    [IR_OP_HARD_SWISH] = interp_run_unary,
    [IR_OP_GLU] = interp_run_glu,
    [IR_OP_SWIGLU] = interp_run_glu,
    [IR_OP_GEGLU] = interp_run_glu,
    [IR_OP_ADD] = interp_run_binary,
    [IR_OP_SUB] = interp_run_binary,
    [IR_OP_MUL] = interp_run_binary,
    [IR_OP_DIV] = interp_run_binary,
    [IR_OP_POW] = interp_run_binary,
    [IR_OP_MAXIMUM] = interp_run_binary,
    [IR_OP_MINIMUM] = interp_run_binary,
    [IR_OP_EQ] = interp_run_binary,
    [IR_OP_NE] = interp_run_binary,
    [IR_OP_LT] = interp_run_binary,
    [IR_OP_LE] = interp_run_binary,
    [IR_OP_GT] = interp_run_binary,
    [IR_OP_GE] = interp_run_binary,
    [IR_OP_AND] = interp_run_binary,
    [IR_OP_OR] = interp_run_binary,
    [IR_OP_WHERE] = interp_run_where,
    [IR_OP_SUM] = interp_run_reduce,
    [IR_OP_MEAN] = interp_run_reduce,
    [IR_OP_MAX] = interp_run_reduce,
    [IR_OP_MIN] = interp_run_reduce,
    [IR_OP_LOGSUMEXP] = interp_run_reduce,
    [IR_OP_VAR] = interp_run_reduce,
    [IR_OP_ARGMAX] = interp_run_argmax,
    [IR_OP_RESHAPE] = interp_run_reshape,
    [IR_OP_TRANSPOSE] = interp_run_transpose,
    [IR_OP_BROADCAST] = interp_run_broadcast,
    [IR_OP_CONCAT] = interp_run_concat,
    [IR_OP_SLICE] = interp_run_slice,
    [IR_OP_PAD] = interp_run_pad,
    [IR_OP_STACK] = interp_run_stack,
    [IR_OP_ONE_HOT] = interp_run_one_hot,
    [IR_OP_GATHER] = interp_run_gather,
    [IR_OP_MATMUL] = interp_run_matmul,
    [IR_OP_SOFTMAX] = interp_run_softmax,
    [IR_OP_LOG_SOFTMAX] = interp_run_softmax,
    [IR_OP_ATTENTION] = interp_run_attention,
    [IR_OP_CONV1D] = interp_run_conv,
    [IR_OP_CONV2D] = interp_run_conv,
    [IR_OP_CONV_TRANSPOSE2D] = interp_run_conv_transpose2d,
    [IR_OP_MAX_POOL2D] = interp_run_pool2d,
    [IR_OP_AVG_POOL2D] = interp_run_pool2d,
    [IR_OP_MAX_POOL2D_GRAD] = interp_run_max_pool2d_grad,
    [IR_OP_UPSAMPLE_NEAREST] = interp_run_upsample_nearest,
    [IR_OP_UPSAMPLE_BILINEAR] = interp_run_upsample_bilinear,
    [IR_OP_PIXEL_SHUFFLE] = interp_run_pixel_shuffle,
    [IR_OP_PIXEL_UNSHUFFLE] = interp_run_pixel_shuffle,
    [IR_OP_CROSS_ENTROPY] = interp_run_cross_entropy,
    [IR_OP_NLL] = interp_run_nll,
    [IR_OP_BCE_WITH_LOGITS] = interp_run_pointwise_loss,
    [IR_OP_MSE] = interp_run_pointwise_loss,
    [IR_OP_L1] = interp_run_pointwise_loss,
    [IR_OP_HUBER] = interp_run_pointwise_loss,
    [IR_OP_SOFT_ACCURACY] = interp_run_soft_accuracy,
    [IR_OP_SOFT_F1] = interp_run_soft_f1,
    [IR_OP_ACCURACY] = interp_run_accuracy,
    [IR_OP_F1] = interp_run_f1,
    [IR_OP_TOP_K] = interp_run_top_k,
    [IR_OP_SCAN] = run_scan,
};

bool ir_interp_has_kernel(IrOp op) {
  return op >= 0 && op < IR_OP_COUNT && kernels[op] != NULL;
}

/* -------------------------------------------------------------- driver */

/* t with its symbolic dimensions set to their values in this run. */
static IrType resolve(const Interp *in, const IrType *t) {
  IrType r = *t;
  for (int k = 0; k < r.rank; k++)
    if (r.sym[k] != IR_NO_SYM && r.sym[k] < in->m->nsyms)
      r.dim[k] = in->symval[r.sym[k]];
  return r;
}

static void round_ten(const Interp *in, Ten *t) {
  DType dt = t->type.dtype;
  if (dt == DT_F64 || (in->o->f64 && ir_dtype_is_float(dt))) return;
  for (int64_t i = 0; i < t->n; i++) t->d[i] = interp_round(dt, false, t->d[i]);
}

static bool run_node(Interp *in, const IrNode *n) {
  const char *name = ir_op_info[n->op].name;
  Ten **x = ARENA_ARRAY(in->tmp, Ten *, n->nargs + 1);
  for (int i = 0; i < n->nargs; i++) {
    x[i] = map_get(in->map, n->args[i]);
    if (!x[i]) return interp_fail(in, "%s: operand %d has no value", name, i);
  }
  Ten *y = ARENA_ARRAY(in->tmp, Ten, n->nres + 1);
  for (int r = 0; r < n->nres; r++) {
    y[r].type = resolve(in, &n->res[r]->type);
    y[r].n = ir_type_numel(&y[r].type);
    y[r].d = interp_alloc(in, y[r].n);
  }
  if (!kernels[n->op])
    return interp_fail(in, "%s: no interpreter kernel", name);
  if (!kernels[n->op](in, n, x, y)) return false;
  for (int r = 0; r < n->nres; r++) {
    round_ten(in, &y[r]);
    map_put(in->scratch, in->map, n->res[r], &y[r]);
  }
  return true;
}

/* Bind the block's arguments, run its nodes, collect its results. */
static bool run_block(Interp *in, const IrBlock *b, Ten **args, Ten **rets) {
  for (int i = 0; i < b->nargs; i++)
    map_put(in->scratch, in->map, b->args[i], args[i]);
  for (const IrNode *n = b->first; n; n = n->next)
    if (!run_node(in, n)) return false;
  for (int i = 0; i < b->nrets; i++) {
    rets[i] = map_get(in->map, b->rets[i]);
    if (!rets[i]) return interp_fail(in, "return %d has no value", i);
  }
  return true;
}

int ir_interp_elem_size(DType t, bool f64) {
  switch (t) {
  case DT_F32: case DT_F16: case DT_BF16: return f64 ? 8 : 4;
  case DT_F64: case DT_I64: return 8;
  case DT_I32: return 4;
  case DT_U8: case DT_BOOL: return 1;
  default: return 0;
  }
}

static double load_elem(DType t, bool f64, const void *p, int64_t i) {
  if (ir_interp_elem_size(t, f64) == 8 && t != DT_I64)
    return ((const double *)p)[i];
  switch (t) {
  case DT_F32: case DT_F16: case DT_BF16: return ((const float *)p)[i];
  case DT_I32: return ((const int32_t *)p)[i];
  case DT_I64: return (double)((const int64_t *)p)[i];
  case DT_U8: return ((const uint8_t *)p)[i];
  case DT_BOOL: return ((const uint8_t *)p)[i] != 0;
  default: return 0;
  }
}

static void store_elem(DType t, bool f64, void *p, int64_t i, double v) {
  if (ir_interp_elem_size(t, f64) == 8 && t != DT_I64) {
    ((double *)p)[i] = v;
    return;
  }
  switch (t) {
  case DT_F32: case DT_F16: case DT_BF16: ((float *)p)[i] = (float)v; break;
  case DT_I32: ((int32_t *)p)[i] = (int32_t)v; break;
  case DT_I64: ((int64_t *)p)[i] = (int64_t)v; break;
  case DT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
  case DT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
  default: break;
  }
}

/* Bind the dimension symbols of want from the sizes of have. */
static bool bind_type(Interp *in, const char *what, const IrType *want,
                      const IrType *have) {
  if (have->dtype != want->dtype || have->rank != want->rank)
    return interp_fail(in, "%s: expected %s of rank %d, got %s of rank %d",
                       what, ir_dtype_name(want->dtype), want->rank,
                       ir_dtype_name(have->dtype), have->rank);
  for (int k = 0; k < want->rank; k++) {
    int s = want->sym[k];
    int64_t h = have->dim[k];
    if (s == IR_NO_SYM || s >= in->m->nsyms) {
      if (h != want->dim[k])
        return interp_fail(in, "%s: dimension %d is %lld, expected %lld",
                           what, k, (long long)h, (long long)want->dim[k]);
      continue;
    }
    const IrSym *sy = &in->m->syms[s];
    if (in->symval[s] >= 0 && in->symval[s] != h)
      return interp_fail(in, "%s: dimension %d is %lld but %s is %lld", what,
                         k, (long long)h, sy->name, (long long)in->symval[s]);
    if (h < 0 || h > sy->value || (!sy->bounded && h != sy->value))
      return interp_fail(in, "%s: dimension %d is %lld, %s is %s %lld", what,
                         k, (long long)h, sy->name,
                         sy->bounded ? "at most" : "", (long long)sy->value);
    in->symval[s] = h;
  }
  return true;
}

static Ten *load_tensor(Interp *in, const IrTensor *t) {
  Ten *v = ARENA_NEW(in->tmp, Ten);
  v->type = t->type;
  v->n = ir_type_numel(&t->type);
  v->d = interp_alloc(in, v->n);
  for (int64_t i = 0; i < v->n; i++)
    v->d[i] = load_elem(t->type.dtype, in->o->f64, t->data, i);
  round_ten(in, v); /* an f16 input holding an f32 value is rounded */
  return v;
}

static bool bind_inputs(Interp *in, const IrFunc *f, const IrTensor *inputs,
                        const IrTensor *globals, Ten **args) {
  const IrBlock *b = f->body;
  for (int i = 0; i < b->nargs; i++) {
    const char *nm = b->args[i]->name ? b->args[i]->name : "?";
    const char *what = arena_printf(in->scratch, "input %d (%%%s)", i, nm);
    if (!bind_type(in, what, &b->args[i]->type, &inputs[i].type)) return false;
  }
  int gi = 0;
  for (const IrGlobal *g = in->m->globals; g; g = g->next, gi++) {
    const char *what = arena_printf(in->scratch, "global @%s", g->name);
    if (!globals || !globals[gi].data)
      return interp_fail(in, "%s is not bound", what);
    if (!bind_type(in, what, &g->type, &globals[gi].type)) return false;
    map_put(in->scratch, in->map, g->value, load_tensor(in, &globals[gi]));
  }
  for (int s = 0; s < in->m->nsyms; s++)
    if (in->symval[s] < 0) in->symval[s] = in->m->syms[s].value;
  for (int i = 0; i < b->nargs; i++) args[i] = load_tensor(in, &inputs[i]);
  return true;
}

static void store_outputs(Interp *in, const IrFunc *f, Ten **rets,
                          IrTensor *outs) {
  for (int i = 0; i < f->body->nrets; i++) {
    const Ten *t = rets[i];
    DType dt = t->type.dtype;
    int sz = ir_interp_elem_size(dt, in->o->f64);
    outs[i].type = t->type;
    outs[i].data = arena_alloc(in->out, (size_t)(t->n > 0 ? t->n : 1) * sz, 8);
    for (int64_t k = 0; k < t->n; k++)
      store_elem(dt, in->o->f64, outs[i].data, k, t->d[k]);
  }
}

bool ir_interp(const IrModule *m, const IrFunc *f, const IrTensor *inputs,
               const IrTensor *globals, IrTensor *outs, const IrInterpOpts *o,
               Arena *a, const char **err) {
  IrInterpOpts dflt = {0};
  Interp in = {.m = m, .o = o ? o : &dflt, .out = a};
  in.scratch = arena_new();
  in.tmp = in.scratch;
  in.map = ARENA_NEW(in.scratch, ValMap);
  map_init(in.scratch, in.map, 256);
  in.symval = ARENA_ARRAY(in.scratch, int64_t, m->nsyms + 1);
  for (int s = 0; s < m->nsyms; s++) in.symval[s] = -1;
  if ((f->body->nargs > 0 && !inputs) || (f->body->nrets > 0 && !outs)) {
    arena_free(in.scratch);
    if (err) *err = "ir_interp: no input or output array";
    return false;
  }
  Ten **args = ARENA_ARRAY(in.scratch, Ten *, f->body->nargs + 1);
  Ten **rets = ARENA_ARRAY(in.scratch, Ten *, f->body->nrets + 1);
  bool ok = bind_inputs(&in, f, inputs, globals, args) &&
            run_block(&in, f->body, args, rets);
  if (ok) store_outputs(&in, f, rets, outs);
  if (!ok && err) *err = in.err ? in.err : "interpreter failed";
  arena_free(in.scratch);
  return ok;
}

/*
** This file contains the autodiff pass: reverse-mode differentiation of
** the module's @loss function into a new function @loss_grad.
**
** Position: after canonicalize, before the optimizer expansion (which turns
** @loss_grad into @train_step).  Requires: a verified module; @loss as
** lowering makes it (results `loss`, then `@state` updates).  Preserves:
** every existing function (@loss is left unchanged) and the globals.
** Invalidates: nothing; adds @loss_grad (replacing an existing one).
**
** The contract (docs/internals.md, "autodiff"):
**
**   func @loss_grad(<the arguments of @loss>)
**       -> (loss: f32[], @state.a: ..., ..., grad.<param>: <param type>, ...)
**
** results: `loss`, the state updates of @loss unchanged, then one gradient
** per parameter (IRG_PARAM global, in module order) named grad.<name>;
** a parameter the loss does not depend on gets a zero constant.
**
** Method.  The body of @loss is cloned into @loss_grad.  Activity: a value
** is active when it is a float that depends on a parameter (OPF_NOGRAD and
** random ops stop it; states, inputs and integers never are).  The
** gradient of the loss is seeded with 1 and the cloned nodes are walked
** backwards; each node with a gradient on a result calls its op's rule
** (autodiff_rules.c) and the operand gradients are accumulated with `add`
** where a value has several uses.  Example:
**
**   %2 = matmul %x, @w : f32[4,3]        ; forward (cloned)
**   ...
**   %9 = transpose %x {perm = [1, 0]}    ; grad.w = x^T dy
**   %10 = matmul %9, %8 : f32[5,3]
**
** scan is differentiated as a reverse scan.  The forward scan is rebuilt to
** also emit its input carries (stacked); a scan {reverse = !reverse} then
** runs over those, the forward sequences and the gradients of the emitted
** values; its body recomputes the forward body for one step, differentiates
** it, and carries the gradients of the carries plus one accumulator per
** active value the body captures from outside (parameters such as an
** LSTM's weights).  Its results are the gradients of the initial carries,
** of the captured values and (emitted) of the sequences.
*/
#include <stdarg.h>
#include <string.h>

#include "autodiff_int.h"

/* ----------------------------------------------------------- value map */

static uint64_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

void ad_map_init(Arena *a, AdMap *mp, int64_t cap) {
  mp->cap = cap;
  mp->len = 0;
  mp->keys = ARENA_ARRAY(a, const IrValue *, cap);
  mp->vals = ARENA_ARRAY(a, IrValue *, cap);
}

void ad_map_put(Arena *a, AdMap *mp, const IrValue *k, IrValue *v) {
  if (2 * (mp->len + 1) > mp->cap) {
    AdMap old = *mp;
    ad_map_init(a, mp, old.cap * 2);
    for (int64_t i = 0; i < old.cap; i++)
      if (old.keys[i]) ad_map_put(a, mp, old.keys[i], old.vals[i]);
  }
  int64_t i = (int64_t)(hash_ptr(k) & (uint64_t)(mp->cap - 1));
  while (mp->keys[i] && mp->keys[i] != k) i = (i + 1) & (mp->cap - 1);
  if (!mp->keys[i]) mp->len++;
  mp->keys[i] = k;
  mp->vals[i] = v;
}

IrValue *ad_map_get(const AdMap *mp, const IrValue *k) {
  int64_t i = (int64_t)(hash_ptr(k) & (uint64_t)(mp->cap - 1));
  while (mp->keys[i]) {
    if (mp->keys[i] == k) return mp->vals[i];
    i = (i + 1) & (mp->cap - 1);
  }
  return NULL;
}

static AdMap *map_new(Ad *ad) {
  AdMap *mp = ARENA_NEW(ad->a, AdMap);
  ad_map_init(ad->a, mp, 64);
  return mp;
}

bool ad_active(const Ad *ad, const IrValue *v) {
  return ad_map_get(ad->active, v) != NULL;
}

bool ad_fail(Ad *ad, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = arena_vprintf(ad->a, fmt, ap);
  va_end(ap);
  diag_error(ad->cx->diag, ad->loc, "autodiff: %s", msg);
  ad->failed = true;
  return false;
}

/* ------------------------------------------------------------ builders */

IrValue *ad_op(Ad *ad, IrOp op, int nargs, IrValue **args, const IrAttrs *at,
               const IrType *want) {
  const char *err = NULL;
  int bad = -1;
  IrValue *v = ir_build(ad->m, ad->blk, op, nargs, args, at, want, ad->loc,
                        &err, &bad);
  if (!v) {
    fprintf(stderr, "nnc: internal error: autodiff built %s: %s\n",
            ir_op_info[op].name, err ? err : "?");
    for (int i = 0; i < nargs; i++)
      fprintf(stderr, "  operand %d: %s\n", i,
              ir_type_str(ad->a, ad->m, &args[i]->type));
    NNC_ASSERT(!"autodiff built an ill-typed node");
  }
  return v;
}

IrValue *ad_un(Ad *ad, IrOp op, IrValue *x) {
  return ad_op(ad, op, 1, &x, NULL, NULL);
}

IrValue *ad_bin(Ad *ad, IrOp op, IrValue *x, IrValue *y) {
  IrValue *a[2] = {x, y};
  return ad_op(ad, op, 2, a, NULL, NULL);
}

IrValue *ad_where(Ad *ad, IrValue *c, IrValue *x, IrValue *y) {
  IrValue *a[3] = {c, x, y};
  return ad_op(ad, IR_OP_WHERE, 3, a, NULL, NULL);
}

IrValue *ad_const(Ad *ad, double v, const IrType *t) {
  IrAttrs at = {0};
  ir_attr_set_float(ad->m, &at, "value", v);
  return ad_op(ad, IR_OP_CONSTANT, 0, NULL, &at, t);
}

IrValue *ad_scalar(Ad *ad, double v, DType t) {
  IrType s = ir_type_scalar(t);
  return ad_const(ad, v, &s);
}

/* Same dtype, sizes and symbols. */
static bool type_same(const IrType *a, const IrType *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return false;
  for (int k = 0; k < a->rank; k++)
    if (a->dim[k] != b->dim[k] || a->sym[k] != b->sym[k]) return false;
  return true;
}

IrValue *ad_reshape(Ad *ad, IrValue *x, const IrType *t) {
  IrType w = *t;
  w.dtype = x->type.dtype;
  if (type_same(&w, &x->type)) return x;
  return ad_op(ad, IR_OP_RESHAPE, 1, &x, NULL, &w);
}

IrValue *ad_broadcast(Ad *ad, IrValue *x, const IrType *t) {
  IrType w = *t;
  w.dtype = x->type.dtype;
  return ad_op(ad, IR_OP_BROADCAST, 1, &x, NULL, &w);
}

IrValue *ad_cast(Ad *ad, IrValue *x, DType t) {
  if (x->type.dtype == t) return x;
  IrType w = x->type;
  w.dtype = t;
  return ad_op(ad, IR_OP_CAST, 1, &x, NULL, &w);
}

IrValue *ad_transpose(Ad *ad, IrValue *x, int rank, const int64_t *perm) {
  bool id = true;
  for (int k = 0; k < rank; k++) id = id && perm[k] == k;
  if (id) return x;
  IrAttrs at = {0};
  ir_attr_set_ints(ad->m, &at, "perm", rank, perm);
  return ad_op(ad, IR_OP_TRANSPOSE, 1, &x, &at, NULL);
}

IrValue *ad_mT(Ad *ad, IrValue *x) {
  int r = x->type.rank;
  int64_t perm[IR_MAX_RANK];
  NNC_ASSERT(r >= 2);
  for (int k = 0; k < r; k++) perm[k] = k;
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return ad_transpose(ad, x, r, perm);
}

IrValue *ad_sum(Ad *ad, IrValue *x, int n, const int64_t *axes, bool keep) {
  if (n == 0) return x;
  IrAttrs at = {0};
  ir_attr_set_ints(ad->m, &at, "axes", n, axes);
  if (keep) ir_attr_set_bool(ad->m, &at, "keepdims", true);
  return ad_op(ad, IR_OP_SUM, 1, &x, &at, NULL);
}

IrValue *ad_slice(Ad *ad, IrValue *x, int axis, int64_t start, int64_t end,
                  int64_t step) {
  IrAttrs at = {0};
  ir_attr_set_int(ad->m, &at, "axis", axis);
  ir_attr_set_int(ad->m, &at, "start", start);
  ir_attr_set_int(ad->m, &at, "end", end);
  if (step != 1) ir_attr_set_int(ad->m, &at, "step", step);
  return ad_op(ad, IR_OP_SLICE, 1, &x, &at, NULL);
}

/* Negative widths crop (with slice); the positive ones pad with zeros. */
IrValue *ad_pad(Ad *ad, IrValue *x, int n, const int64_t *pads) {
  int64_t pos[2 * IR_MAX_RANK] = {0};
  bool any = false;
  for (int k = 0; k < n / 2; k++) {
    int64_t lo = pads[2 * k], hi = pads[2 * k + 1], len = x->type.dim[k];
    if (lo < 0 || hi < 0)
      x = ad_slice(ad, x, k, lo < 0 ? -lo : 0, hi < 0 ? len + hi : len, 1);
    pos[2 * k] = lo > 0 ? lo : 0;
    pos[2 * k + 1] = hi > 0 ? hi : 0;
    any = any || lo > 0 || hi > 0;
  }
  if (!any) return x;
  IrAttrs at = {0};
  ir_attr_set_ints(ad->m, &at, "pads", n, pos);
  return ad_op(ad, IR_OP_PAD, 1, &x, &at, NULL);
}

/* g has the broadcast shape of an op whose operand had type t: sum over
** the leading axes t lacks and the axes where t has size 1, then reshape
** to t. */
IrValue *ad_unbroadcast(Ad *ad, IrValue *g, const IrType *t) {
  const IrType *gt = &g->type;
  int off = gt->rank - t->rank;
  int64_t axes[IR_MAX_RANK];
  int n = 0;
  NNC_ASSERT(off >= 0);
  for (int k = 0; k < gt->rank; k++)
    if (k < off || (t->dim[k - off] == 1 && gt->dim[k] != 1)) axes[n++] = k;
  return ad_reshape(ad, ad_sum(ad, g, n, axes, false), t);
}

/* ------------------------------------------------------------- cloning */

static void copy_attrs(IrModule *m, IrAttrs *to, const IrAttrs *from) {
  for (int i = 0; i < from->n; i++) ir_attr_set(m, to, &from->v[i]);
}

static IrValue *mapped(const AdMap *vm, IrValue *v) {
  IrValue *w = ad_map_get(vm, v);
  return w ? w : v;
}

static void clone_nodes(Ad *ad, const IrBlock *src, IrBlock *dst, AdMap *vm);

/* A copy of node n appended to dst, operands renamed through vm. */
static IrNode *clone_node(Ad *ad, const IrNode *n, IrBlock *dst, AdMap *vm) {
  IrValue **args = ARENA_ARRAY(ad->a, IrValue *, n->nargs + 1);
  IrType *res = ARENA_ARRAY(ad->a, IrType, n->nres + 1);
  for (int i = 0; i < n->nargs; i++) args[i] = mapped(vm, n->args[i]);
  for (int r = 0; r < n->nres; r++) res[r] = n->res[r]->type;
  IrNode *c = ir_node_new(ad->m, dst, n->op, n->nargs, args, n->nres, res, n->loc);
  copy_attrs(ad->m, &c->attrs, &n->attrs);
  for (int r = 0; r < n->nres; r++) ad_map_put(ad->a, vm, n->res[r], c->res[r]);
  if (n->body) {
    IrBlock *b = ir_block_new(ad->m, ad->f);
    b->owner = c;
    c->body = b;
    for (int i = 0; i < n->body->nargs; i++) {
      IrValue *a = n->body->args[i];
      ad_map_put(ad->a, vm, a, ir_block_add_arg(ad->m, b, a->type, a->name));
    }
    clone_nodes(ad, n->body, b, vm);
    IrValue **rets = ARENA_ARRAY(ad->a, IrValue *, n->body->nrets + 1);
    for (int i = 0; i < n->body->nrets; i++) rets[i] = mapped(vm, n->body->rets[i]);
    ir_block_set_rets(ad->m, b, n->body->nrets, rets);
  }
  return c;
}

static void clone_nodes(Ad *ad, const IrBlock *src, IrBlock *dst, AdMap *vm) {
  for (const IrNode *n = src->first; n; n = n->next) clone_node(ad, n, dst, vm);
}

/* ------------------------------------------------------------ activity */

/* Is block b inside (or equal to) block top? */
static bool block_within(const IrBlock *b, const IrBlock *top) {
  while (b) {
    if (b == top) return true;
    b = b->owner ? b->owner->parent : NULL;
  }
  return false;
}

static bool defined_within(const IrValue *v, const IrBlock *top) {
  if (v->kind == IRV_GLOBAL) return false;
  if (v->kind == IRV_ARG) return block_within(v->block, top);
  return v->def && block_within(v->def->parent, top);
}

/* Append v to the growing array *out unless it is already in seen. */
static void push_unique(Ad *ad, AdMap *seen, IrValue *v, IrValue ***out, int *n,
                        int *cap) {
  if (ad_map_get(seen, v)) return;
  ad_map_put(ad->a, seen, v, v);
  if (*n == *cap) {
    IrValue **w = ARENA_ARRAY(ad->a, IrValue *, *cap * 2 + 4);
    if (*n) memcpy(w, *out, sizeof(IrValue *) * (size_t)*n);
    *out = w;
    *cap = *cap * 2 + 4;
  }
  (*out)[(*n)++] = v;
}

/* Collect (once) the values used in body (nested bodies included) but
** defined outside it, globals included. */
static void captures(Ad *ad, const IrBlock *body, const IrBlock *b, AdMap *seen,
                     IrValue ***out, int *n, int *cap) {
  for (const IrNode *x = b->first; x; x = x->next) {
    for (int i = 0; i < x->nargs; i++)
      if (!defined_within(x->args[i], body))
        push_unique(ad, seen, x->args[i], out, n, cap);
    if (x->body) captures(ad, body, x->body, seen, out, n, cap);
  }
  for (int i = 0; i < b->nrets; i++)
    if (!defined_within(b->rets[i], body)) push_unique(ad, seen, b->rets[i], out, n, cap);
}

static int scan_captures(Ad *ad, const IrNode *scan, IrValue ***out) {
  int n = 0, cap = 0;
  *out = NULL;
  captures(ad, scan->body, scan->body, map_new(ad), out, &n, &cap);
  return n;
}

static void mark(Ad *ad, IrValue *v) {
  if (ir_dtype_is_float(v->type.dtype)) ad_map_put(ad->a, ad->active, v, v);
}

static void mark_block(Ad *ad, const IrBlock *b);

/* A node's float results are active when it is differentiable and one of
** its operands (for scan: or a value its body captures) is. */
static void mark_node(Ad *ad, const IrNode *n) {
  unsigned fl = ir_op_info[n->op].flags;
  if (fl & (OPF_NOGRAD | OPF_RANDOM) || !(fl & OPF_DIFF)) return;
  bool any = false;
  for (int i = 0; i < n->nargs && !any; i++) any = ad_active(ad, n->args[i]);
  if (n->body) {
    IrValue **cap;
    int nc = scan_captures(ad, n, &cap);
    for (int i = 0; i < nc && !any; i++) any = ad_active(ad, cap[i]);
    if (!any) return;
    for (int i = 0; i < n->body->nargs; i++) mark(ad, n->body->args[i]);
    mark_block(ad, n->body);
  }
  if (!any) return;
  for (int r = 0; r < n->nres; r++) mark(ad, n->res[r]);
}

static void mark_block(Ad *ad, const IrBlock *b) {
  for (const IrNode *n = b->first; n; n = n->next) mark_node(ad, n);
}

/* ------------------------------------------------------- the reverse walk */

/* grad[v] += g */
static void accumulate(Ad *ad, AdMap *grad, IrValue *v, IrValue *g) {
  if (!g || !ad_active(ad, v)) return;
  if (!ir_shape_eq(&g->type, &v->type) || g->type.rank != v->type.rank ||
      g->type.dtype != v->type.dtype) {
    fprintf(stderr, "nnc: internal error: autodiff: gradient %s for a value "
            "of type %s\n", ir_type_str(ad->a, ad->m, &g->type),
            ir_type_str(ad->a, ad->m, &v->type));
    NNC_ASSERT(!"gradient type differs from the value's type");
  }
  IrValue *old = ad_map_get(grad, v);
  ad_map_put(ad->a, grad, v, old ? ad_bin(ad, IR_OP_ADD, old, g) : g);
}

static bool backprop(Ad *ad, IrNode *last, IrNode *stop, AdMap *grad);

/* Axis a (possibly negative) normalised against rank, or -1. */
static int norm_axis(int64_t a, int rank) {
  int64_t r = a < 0 ? a + rank : a;
  return r >= 0 && r < rank ? (int)r : -1;
}

/* t with a dimension of size len inserted at axis ax. */
static IrType insert_dim(const IrType *t, int ax, int64_t len) {
  IrType r = *t;
  r.rank = t->rank + 1;
  for (int k = t->rank; k > ax; k--) {
    r.dim[k] = t->dim[k - 1];
    r.sym[k] = t->sym[k - 1];
  }
  r.dim[ax] = len;
  r.sym[ax] = IR_NO_SYM;
  return r;
}

/* t without axis ax. */
static IrType drop_dim(const IrType *t, int ax) {
  IrType r = *t;
  r.rank = t->rank - 1;
  for (int k = ax; k < r.rank; k++) {
    r.dim[k] = t->dim[k + 1];
    r.sym[k] = t->sym[k + 1];
  }
  return r;
}

/* The geometry of a scan node. */
typedef struct ScanGeo {
  int nc, ns;
  int64_t len;
  int *ax;        /* per sequence, normalised */
  int64_t a0raw;  /* axes[0] as written (0 when absent) */
} ScanGeo;

static bool scan_geo(Ad *ad, const IrNode *n, ScanGeo *g) {
  g->nc = (int)ir_attr_int(&n->attrs, "ncarry", 0);
  g->ns = n->nargs - g->nc;
  g->ax = ARENA_ARRAY(ad->a, int, g->ns + 1);
  g->len = ir_attr_int(&n->attrs, "length", -1);
  const IrAttr *axes = ir_attr_get(&n->attrs, "axes");
  g->a0raw = axes && axes->kind == ATTR_INTS && axes->n > 0 ? axes->ints[0] : 0;
  for (int j = 0; j < g->ns; j++) {
    const IrType *t = &n->args[g->nc + j]->type;
    g->ax[j] = norm_axis(axes->ints[j], t->rank);
    if (g->ax[j] < 0) return ad_fail(ad, "scan: bad sequence axis");
    g->len = t->dim[g->ax[j]];
  }
  if (g->len < 0) return ad_fail(ad, "scan: unknown length");
  return true;
}

/* Rebuild forward scan n so that it also emits its input carries (the
** carry at the start of each step), stacked like its other emitted values.
** Returns the new node; n's results are replaced by the new node's. */
static IrNode *scan_emit_carries(Ad *ad, IrNode *n, const ScanGeo *g) {
  int nres = n->nres + g->nc;
  IrType *res = ARENA_ARRAY(ad->a, IrType, nres + 1);
  for (int r = 0; r < n->nres; r++) res[r] = n->res[r]->type;
  for (int i = 0; i < g->nc; i++) {
    const IrType *ct = &n->args[i]->type;
    int ax = norm_axis(g->a0raw, ct->rank + 1);
    if (ax < 0) {
      ad_fail(ad, "scan: cannot stack carry %d along axis %lld", i,
              (long long)g->a0raw);
      return NULL;
    }
    res[n->nres + i] = insert_dim(ct, ax, g->len);
  }
  IrNode *c = ir_node_new(ad->m, NULL, IR_OP_SCAN, n->nargs, n->args, nres, res,
                          n->loc);
  copy_attrs(ad->m, &c->attrs, &n->attrs);
  ir_node_insert_before(n, c);
  IrBlock *b = n->body;
  IrValue **rets = ARENA_ARRAY(ad->a, IrValue *, nres + 1);
  for (int r = 0; r < b->nrets; r++) rets[r] = b->rets[r];
  for (int i = 0; i < g->nc; i++) rets[b->nrets + i] = b->args[i];
  ir_block_set_rets(ad->m, b, nres, rets);
  c->body = b;
  b->owner = c;
  n->body = NULL;
  for (int r = 0; r < n->nres; r++) {
    ir_replace_uses(ad->f, n->res[r], c->res[r]);
    if (ad_active(ad, n->res[r])) mark(ad, c->res[r]);
  }
  ir_node_remove(n);
  return c;
}

/* A sequence of the reverse scan, in operand order. */
typedef struct RevSeq {
  IrValue *val;   /* stacked operand */
  int ax;         /* its sequence axis */
  IrValue *arg;   /* the slice argument in the reverse body */
} RevSeq;

/* The reverse scan of forward scan c while it is being built.  Operands:
** carries (gradient of each float carry fc[], then one accumulator per
** active captured value cap[]), then sequences sq[] (the forward
** sequences, the stacked carries, the gradients of the emitted values). */
typedef struct Rev {
  IrNode *c;
  const ScanGeo *g;
  int nres0;           /* c's results before it emitted its carries */
  int *fc, nfc;
  IrValue **cap;
  int ncap;
  RevSeq *sq;
  int nseq;
  int *emit_seq;       /* per emitted value: its sequence, or -1 */
  IrValue **ops, **carg;
  IrBlock *body;
  int *seq_out;        /* per forward sequence: its yield, or -1 */
  IrValue **yl;
  int nyl;
} Rev;

/* Choose the carries and sequences of the reverse scan and build their
** initial values (in the current block). */
static void rev_operands(Ad *ad, Rev *rv, IrValue *const *dy) {
  IrNode *c = rv->c;
  const ScanGeo *g = rv->g;
  IrValue **capv;
  int ncap0 = scan_captures(ad, c, &capv);
  rv->cap = ARENA_ARRAY(ad->a, IrValue *, ncap0 + 1);
  for (int i = 0; i < ncap0; i++)
    if (ad_active(ad, capv[i])) rv->cap[rv->ncap++] = capv[i];
  rv->fc = ARENA_ARRAY(ad->a, int, g->nc + 1);
  for (int i = 0; i < g->nc; i++)
    if (ir_dtype_is_float(c->args[i]->type.dtype)) rv->fc[rv->nfc++] = i;
  int nemit = rv->nres0 - g->nc;
  rv->sq = ARENA_ARRAY(ad->a, RevSeq, g->ns + g->nc + nemit + 1);
  for (int j = 0; j < g->ns; j++)
    rv->sq[rv->nseq++] = (RevSeq){c->args[g->nc + j], g->ax[j], NULL};
  for (int i = 0; i < g->nc; i++) {
    IrValue *v = c->res[rv->nres0 + i];
    rv->sq[rv->nseq++] = (RevSeq){v, norm_axis(g->a0raw, v->type.rank), NULL};
  }
  rv->emit_seq = ARENA_ARRAY(ad->a, int, nemit + 1);
  for (int k = 0; k < nemit; k++) {
    IrValue *y = c->res[g->nc + k];
    rv->emit_seq[k] = -1;
    if (!ir_dtype_is_float(y->type.dtype)) continue;
    IrValue *d = dy[g->nc + k] ? dy[g->nc + k] : ad_const(ad, 0, &y->type);
    rv->emit_seq[k] = rv->nseq;
    rv->sq[rv->nseq++] = (RevSeq){d, norm_axis(g->a0raw, y->type.rank), NULL};
  }
  int ncar = rv->nfc + rv->ncap;
  rv->ops = ARENA_ARRAY(ad->a, IrValue *, ncar + rv->nseq + 1);
  for (int i = 0; i < rv->nfc; i++) {
    IrValue *d = dy[rv->fc[i]];
    rv->ops[i] = d ? d : ad_const(ad, 0, &c->args[rv->fc[i]]->type);
  }
  for (int j = 0; j < rv->ncap; j++)
    rv->ops[rv->nfc + j] = ad_const(ad, 0, &rv->cap[j]->type);
  for (int s = 0; s < rv->nseq; s++) rv->ops[ncar + s] = rv->sq[s].val;
}

/* The reverse body's arguments: the carries, then one slice per sequence
** (named after the forward body's arguments). */
static void rev_args(Ad *ad, Rev *rv) {
  IrModule *m = ad->m;
  const ScanGeo *g = rv->g;
  const IrBlock *fb = rv->c->body;
  int ncar = rv->nfc + rv->ncap;
  rv->body = ir_block_new(m, ad->f);
  rv->carg = ARENA_ARRAY(ad->a, IrValue *, ncar + 1);
  for (int i = 0; i < ncar; i++)
    rv->carg[i] = ir_block_add_arg(m, rv->body, rv->ops[i]->type,
                                   i < rv->nfc ? "dcarry" : "dacc");
  for (int s = 0; s < rv->nseq; s++) {
    IrType st = drop_dim(&rv->sq[s].val->type, rv->sq[s].ax);
    const char *nm = s < g->ns ? fb->args[g->nc + s]->name
                     : s < g->ns + g->nc ? fb->args[s - g->ns]->name : NULL;
    if (!nm) nm = s < g->ns + g->nc ? "x" : "dy";
    rv->sq[s].arg = ir_block_add_arg(m, rv->body, st, nm);
  }
}

/* The reverse body: recompute the forward body for one step, seed the
** gradients of its results, differentiate, and collect the yields. */
static bool rev_body(Ad *ad, Rev *rv) {
  const ScanGeo *g = rv->g;
  const IrBlock *fb = rv->c->body;
  IrBlock *saved = ad->blk;
  AdMap *vm = map_new(ad), *bg = map_new(ad);
  for (int i = 0; i < g->nc; i++) ad_map_put(ad->a, vm, fb->args[i], rv->sq[g->ns + i].arg);
  for (int j = 0; j < g->ns; j++) ad_map_put(ad->a, vm, fb->args[g->nc + j], rv->sq[j].arg);
  ad->blk = rv->body;
  clone_nodes(ad, fb, rv->body, vm);
  IrNode *last = rv->body->last;
  for (int i = 0; i < g->nc + g->ns; i++) mark(ad, mapped(vm, fb->args[i]));
  for (IrNode *x = rv->body->first; x; x = x->next) mark_node(ad, x);
  for (int i = 0; i < rv->nfc; i++)
    accumulate(ad, bg, mapped(vm, fb->rets[rv->fc[i]]), rv->carg[i]);
  for (int k = 0; k < rv->nres0 - g->nc; k++)
    if (rv->emit_seq[k] >= 0)
      accumulate(ad, bg, mapped(vm, fb->rets[g->nc + k]), rv->sq[rv->emit_seq[k]].arg);
  if (!backprop(ad, last, NULL, bg)) return false;
  rv->yl = ARENA_ARRAY(ad->a, IrValue *, rv->nfc + rv->ncap + g->ns + 1);
  for (int i = 0; i < rv->nfc; i++) {
    IrValue *d = ad_map_get(bg, rv->sq[g->ns + rv->fc[i]].arg);
    rv->yl[rv->nyl++] = d ? d : ad_const(ad, 0, &rv->carg[i]->type);
  }
  for (int j = 0; j < rv->ncap; j++) {
    IrValue *d = ad_map_get(bg, rv->cap[j]), *acc = rv->carg[rv->nfc + j];
    rv->yl[rv->nyl++] = d ? ad_bin(ad, IR_OP_ADD, acc, d) : acc;
  }
  rv->seq_out = ARENA_ARRAY(ad->a, int, g->ns + 1);
  for (int j = 0; j < g->ns; j++) {
    rv->seq_out[j] = -1;
    if (!ad_active(ad, rv->c->args[g->nc + j])) continue;
    IrValue *d = ad_map_get(bg, rv->sq[j].arg);
    rv->seq_out[j] = rv->nyl;
    rv->yl[rv->nyl++] = d ? d : ad_const(ad, 0, &rv->sq[j].arg->type);
  }
  ir_block_set_rets(ad->m, rv->body, rv->nyl, rv->yl);
  ad->blk = saved;
  return true;
}

/* v (axis `from` of it the stacking axis) with that axis moved to `to`. */
static IrValue *move_axis(Ad *ad, IrValue *v, int from, int to) {
  int r = v->type.rank;
  int64_t perm[IR_MAX_RANK];
  for (int p = 0, q = 0; p < r; p++) {
    if (p == to) {
      perm[p] = from;
      continue;
    }
    if (q == from) q++;
    perm[p] = q++;
  }
  return ad_transpose(ad, v, r, perm);
}

/* The reverse scan node, and the operand gradients it gives. */
static bool rev_node(Ad *ad, Rev *rv, IrValue **dx, AdMap *grad) {
  IrModule *m = ad->m;
  const ScanGeo *g = rv->g;
  int ncar = rv->nfc + rv->ncap;
  int64_t *axes = ARENA_ARRAY(ad->a, int64_t, rv->nseq + 1);
  for (int s = 0; s < rv->nseq; s++) axes[s] = rv->sq[s].ax;
  int bax = rv->nseq > 0 ? (int)axes[0] : 0;
  IrType *res = ARENA_ARRAY(ad->a, IrType, rv->nyl + 1);
  for (int i = 0; i < rv->nyl; i++) {
    res[i] = rv->yl[i]->type;
    if (i < ncar) continue;
    if (bax > res[i].rank) return ad_fail(ad, "scan: sequence axes disagree");
    res[i] = insert_dim(&rv->yl[i]->type, bax, g->len);
  }
  IrNode *rn = ir_node_new(m, ad->blk, IR_OP_SCAN, ncar + rv->nseq, rv->ops,
                           rv->nyl, res, rv->c->loc);
  rn->body = rv->body;
  rv->body->owner = rn;
  ir_attr_set_int(m, &rn->attrs, "ncarry", ncar);
  ir_attr_set_ints(m, &rn->attrs, "axes", rv->nseq, axes);
  if (!ir_attr_bool(&rv->c->attrs, "reverse", false))
    ir_attr_set_bool(m, &rn->attrs, "reverse", true);
  if (rv->nseq == 0) ir_attr_set_int(m, &rn->attrs, "length", g->len);
  for (int i = 0; i < rv->nfc; i++) dx[rv->fc[i]] = rn->res[i];
  for (int j = 0; j < rv->ncap; j++) accumulate(ad, grad, rv->cap[j], rn->res[rv->nfc + j]);
  for (int j = 0; j < g->ns; j++)
    if (rv->seq_out[j] >= 0)
      dx[g->nc + j] = move_axis(ad, rn->res[rv->seq_out[j]], bax, g->ax[j]);
  return true;
}

/* Build the reverse scan of forward scan c (already emitting its carries)
** whose results had gradients dy[]; sets the operand gradients dx[] and
** accumulates the captured values' gradients into grad. */
static bool scan_reverse(Ad *ad, IrNode *c, const ScanGeo *g, int nres0,
                         IrValue *const *dy, IrValue **dx, AdMap *grad) {
  Rev rv = {.c = c, .g = g, .nres0 = nres0};
  rev_operands(ad, &rv, dy);
  rev_args(ad, &rv);
  return rev_body(ad, &rv) && rev_node(ad, &rv, dx, grad);
}

/* scan: the forward scan emits its carries, then the reverse scan. */
static bool grad_scan(Ad *ad, IrNode *n, IrValue *const *dy, IrValue **dx,
                      AdMap *grad) {
  ScanGeo g;
  if (!scan_geo(ad, n, &g)) return false;
  int nres0 = n->nres;
  IrNode *c = scan_emit_carries(ad, n, &g);
  if (!c) return false;
  return scan_reverse(ad, c, &g, nres0, dy, dx, grad);
}

/* Walk the nodes from last back to (not including) stop, propagating the
** gradients in grad.  New nodes go to ad->blk. */
static bool backprop(Ad *ad, IrNode *last, IrNode *stop, AdMap *grad) {
  for (IrNode *n = last; n && n != stop;) {
    IrNode *prev = n->prev;
    IrValue **dy = ARENA_ARRAY(ad->a, IrValue *, n->nres + 1);
    bool any = false;
    for (int r = 0; r < n->nres; r++) {
      dy[r] = ad_active(ad, n->res[r]) ? ad_map_get(grad, n->res[r]) : NULL;
      any = any || dy[r];
    }
    if (any) {
      IrValue **dx = ARENA_ARRAY(ad->a, IrValue *, n->nargs + 1);
      IrValue **args = ARENA_ARRAY(ad->a, IrValue *, n->nargs + 1);
      memcpy(args, n->args, sizeof(IrValue *) * (size_t)n->nargs);
      ad->loc = n->loc;
      bool ok;
      if (n->op == IR_OP_SCAN) {
        ok = grad_scan(ad, n, dy, dx, grad);
      } else {
        GradFn *fn = autodiff_rule(n->op);
        ok = fn ? fn(ad, n, dy, dx)
                : ad_fail(ad, "no gradient rule for '%s'", ir_op_info[n->op].name);
      }
      if (!ok) return false;
      for (int i = 0; i < n->nargs; i++) accumulate(ad, grad, args[i], dx[i]);
    }
    n = prev;
  }
  return true;
}

/* ------------------------------------------------------------- the pass */

static bool build_loss_grad(Ad *ad, IrFunc *loss) {
  IrModule *m = ad->m;
  IrFunc *old = ir_func_find(m, "loss_grad");
  if (old) ir_func_remove(m, old);
  IrFunc *f = ir_func_new(m, "loss_grad");
  ad->f = f;
  ad->blk = f->body;
  AdMap *vm = map_new(ad);
  const IrBlock *lb = loss->body;
  for (int i = 0; i < lb->nargs; i++) {
    IrValue *a = lb->args[i];
    ad_map_put(ad->a, vm, a, ir_block_add_arg(m, f->body, a->type, a->name));
  }
  clone_nodes(ad, lb, f->body, vm);
  IrNode *last = f->body->last;
  if (lb->nrets < 1) return ad_fail(ad, "@loss returns nothing");
  /* provisional returns: a rebuilt scan replaces its uses there too */
  IrValue **fr = ARENA_ARRAY(ad->a, IrValue *, lb->nrets);
  for (int i = 0; i < lb->nrets; i++) fr[i] = mapped(vm, lb->rets[i]);
  ir_block_set_rets(m, f->body, lb->nrets, fr);
  for (IrGlobal *gl = m->globals; gl; gl = gl->next)
    if (gl->kind == IRG_PARAM) mark(ad, gl->value);
  mark_block(ad, f->body);
  IrValue *loss_v = f->body->rets[0];
  AdMap *grad = map_new(ad);
  if (ad_active(ad, loss_v)) {
    ad->loc = loss_v->def ? loss_v->def->loc : (SrcLoc){0};
    accumulate(ad, grad, loss_v, ad_const(ad, 1, &loss_v->type));
    if (!backprop(ad, last, NULL, grad)) return false;
  }
  int np = 0;
  for (IrGlobal *gl = m->globals; gl; gl = gl->next) np += gl->kind == IRG_PARAM;
  int nr = lb->nrets + np;
  IrValue **rets = ARENA_ARRAY(ad->a, IrValue *, nr + 1);
  const char **names = ARENA_ARRAY(ad->a, const char *, nr + 1);
  for (int i = 0; i < lb->nrets; i++) {
    rets[i] = f->body->rets[i];
    names[i] = loss->ret_names ? loss->ret_names[i] : "loss";
  }
  int k = lb->nrets;
  for (IrGlobal *gl = m->globals; gl; gl = gl->next) {
    if (gl->kind != IRG_PARAM) continue;
    IrValue *d = ad_map_get(grad, gl->value);
    rets[k] = d ? d : ad_const(ad, 0, &gl->type);
    names[k++] = arena_printf(ad->a, "grad.%s", gl->name);
  }
  ir_func_set_rets(m, f, nr, rets, names);
  return true;
}

bool pass_autodiff(IrModule *m, PassCtx *cx) {
  IrFunc *loss = ir_func_find(m, "loss");
  if (!loss) return true;
  Ad ad = {.m = m, .cx = cx, .a = cx->scratch};
  ad.active = map_new(&ad);
  return build_loss_grad(&ad, loss) && !ad.failed;
}

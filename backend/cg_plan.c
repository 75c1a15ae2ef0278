/*
** This file contains the plan of a function's values before any code is
** emitted: which values are fused into their consumers, which are views
** of another value's memory, which matmuls go to the SGEMM (and absorb a
** bias and relu epilogue), and where every materialised value lives: an
** input, a global, an output, or an arena offset from a linear-scan
** liveness plan (docs/internals.md, "Backend").
**
** Fusion (producer inlining): a value is fused into its consumer, that is
** computed inside the consumer's loop instead of stored, when its op is
** elementwise (OPF_FUSABLE) or a cheap view (broadcast, transpose, slice,
** reshape, pad, glu family), it has exactly one use, in the same block,
** and the consumer reads each operand element a bounded number of times
** (elementwise ops, reductions, softmax, losses, shape ops).  Constants,
** iota and causal masks are always recomputed where used.  A reshape of a
** contiguous materialised value, and a transpose, slice or broadcast of
** any materialised value, is a strided view of the same memory; so is a
** reshape of a strided materialised value when strides can express it
** (splitting or merging dims that are contiguous among themselves).
**
** Memory: positions are numbered in program order (a scan has a start, a
** yield and an end position around its body); a buffer is freed after the
** last position that reads it, directly or through fused values, and a
** freed range is reused first-fit.  A value used inside a scan body but
** defined outside stays live until the end of the scan.
*/
#include <string.h>

#include "cg_int.h"

/* ------------------------------------------------------------- planning */

typedef struct Plan {
  Cg *cg;
  int pos;
  int64_t top, peak;
  /* free list of arena ranges, sorted by offset */
  int nfree, capfree;
  int64_t *foff, *fsize;
  CgVal **live;
  int nlive, caplive;
  int *scan_end;   /* by node id: end position of a scan */
  int *npos;       /* by node id: position */
} Plan;

static bool is_view_op(IrOp op) {
  return op == IR_OP_BROADCAST || op == IR_OP_TRANSPOSE || op == IR_OP_SLICE ||
         op == IR_OP_RESHAPE || op == IR_OP_PAD || op == IR_OP_GLU ||
         op == IR_OP_SWIGLU || op == IR_OP_GEGLU;
}

/* Consumers that read each operand element a bounded number of times. */
static bool reads_few(IrOp op) {
  unsigned f = ir_op_info[op].flags;
  return (f & (OPF_FUSABLE | OPF_REDUCE)) || is_view_op(op) ||
         op == IR_OP_SOFTMAX || op == IR_OP_LOG_SOFTMAX ||
         op == IR_OP_CONCAT || op == IR_OP_STACK || op == IR_OP_ARGMAX ||
         op == IR_OP_MSE || op == IR_OP_L1 || op == IR_OP_HUBER ||
         op == IR_OP_BCE_WITH_LOGITS || op == IR_OP_CROSS_ENTROPY ||
         op == IR_OP_NLL || op == IR_OP_ONE_HOT;
}

static bool contiguous(const CgVal *c) {
  int64_t st = 1;
  for (int k = c->v->type.rank - 1; k >= 0; k--) {
    if (c->st[k] != st && c->v->type.dim[k] != 1) return false;
    st *= c->v->type.dim[k];
  }
  return true;
}

/* The strides of a reshape of the strided value x as a view of its memory
** (NumPy's no-copy reshape: each group of old dims whose product is that
** of a group of new dims must be contiguous among itself; dims of 1 take
** the stride they would have contiguously); false when it needs a copy. */
static bool reshape_strides(const CgVal *x, const IrType *yt, int64_t *out) {
  const IrType *xt = &x->v->type;
  int64_t od[IR_MAX_RANK], os[IR_MAX_RANK], st[IR_MAX_RANK];
  bool set[IR_MAX_RANK] = {false};
  const int64_t *nd = yt->dim;
  int on = 0, nn = yt->rank, oi = 0, ni = 0;
  for (int k = 0; k < xt->rank; k++) {
    if (xt->dim[k] == 0) return false;
    if (xt->dim[k] != 1) {
      od[on] = xt->dim[k];
      os[on++] = x->st[k];
    }
  }
  while (oi < on && ni < nn) {
    if (nd[ni] == 1) {
      ni++;
      continue;
    }
    int oj = oi + 1, nj = ni + 1;
    int64_t np = nd[ni], op = od[oi];
    while (np != op) {
      if (np < op) {
        if (nj >= nn) return false;
        np *= nd[nj++];
      } else {
        if (oj >= on) return false;
        op *= od[oj++];
      }
    }
    for (int k = oi; k + 1 < oj; k++)
      if (os[k] != od[k + 1] * os[k + 1]) return false;
    st[nj - 1] = os[oj - 1];
    set[nj - 1] = true;
    for (int k = nj - 1; k > ni; k--) {
      st[k - 1] = st[k] * nd[k];
      set[k - 1] = true;
    }
    ni = nj;
    oi = oj;
  }
  for (int k = ni; k < nn; k++)
    if (nd[k] != 1) return false;
  if (oi < on) return false;
  for (int k = nn - 1; k >= 0; k--)
    if (!set[k]) st[k] = k + 1 < nn ? st[k + 1] * nd[k + 1] : 1;
  for (int k = 0; k < nn; k++) out[k] = st[k];
  return true;
}

/* Count uses; remember the single consumer of each value. */
static void count_uses(Cg *cg, const IrBlock *b, const IrNode **consumer) {
  for (const IrNode *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->nargs; i++) {
      CgVal *c = cg_val(cg, n->args[i]);
      c->nuses++;
      if (n->op == IR_OP_SCAN) c->scanuse = true;
      if (n->args[i]->kind == IRV_RESULT)
        consumer[n->args[i]->def->id] =
            n->args[i]->def->parent == b ? n : NULL;
    }
    if (n->body) {
      count_uses(cg, n->body, consumer);
      for (int i = 0; i < n->body->nrets; i++) cg_val(cg, n->body->rets[i])->nuses++;
    }
  }
}

/* A scan's sequence arguments are strided views of its operands (the
** sequence axis removed); its carry arguments point at the current carry
** buffer (set when the loop is emitted). */
static void scan_args(Cg *cg, const IrNode *n) {
  int nc = (int)ir_attr_int(&n->attrs, "ncarry", 0);
  const IrAttr *ax = ir_attr_get(&n->attrs, "axes");
  for (int i = 0; i < n->nargs; i++) {
    CgVal *a = cg_val(cg, n->body->args[i]);
    a->kind = CGB_VIEW;
    if (i < nc) continue;
    CgVal *s = cg_val(cg, n->args[i]);
    int r = n->args[i]->type.rank;
    int axis = cg_axis(ax->ints[i - nc], r);
    for (int k = 0, j = 0; k < r; k++)
      if (k != axis) a->st[j++] = s->st[k];
  }
}

/* transpose, slice and broadcast of a materialised value are strided views
** of its memory (no kernel). */
static bool view_of(Cg *cg, const IrNode *n, CgVal *c) {
  if (n->op != IR_OP_TRANSPOSE && n->op != IR_OP_SLICE && n->op != IR_OP_BROADCAST)
    return false;
  CgVal *x = cg_val(cg, n->args[0]);
  if (x->inl) return false;
  const IrType *xt = &n->args[0]->type, *yt = &n->res[0]->type;
  c->kind = CGB_VIEW;
  c->root = x->root;
  c->base = x;
  c->vofs = 0;
  if (n->op == IR_OP_TRANSPOSE) {
    const IrAttr *a = ir_attr_get(&n->attrs, "perm");
    for (int k = 0; k < xt->rank; k++)
      c->st[k] = x->st[a ? cg_axis(a->ints[k], xt->rank) : xt->rank - 1 - k];
  } else if (n->op == IR_OP_BROADCAST) {
    int off = yt->rank - xt->rank;
    for (int k = 0; k < yt->rank; k++)
      c->st[k] = k < off || xt->dim[k - off] == 1 ? 0 : x->st[k - off];
  } else {
    int ax = cg_axis(ir_attr_int(&n->attrs, "axis", 0), xt->rank);
    int64_t step = ir_attr_int(&n->attrs, "step", 1), len = xt->dim[ax];
    int64_t first = ir_attr_int(&n->attrs, "start", 0);
    if (first < 0) first += len;
    first = first < 0 ? 0 : first > len ? len : first;
    for (int k = 0; k < xt->rank; k++) c->st[k] = x->st[k];
    c->st[ax] = x->st[ax] * step;
    if (yt->dim[ax] > 0) c->vofs = first * x->st[ax];
  }
  return true;
}

/* matmul -> SGEMM, absorbing `+ bias` (a materialised [M] vector) and a
** following relu into its epilogue when each has a single use. */
static void gemm_fuse(Cg *cg, const IrBlock *b, const IrNode **consumer) {
  for (const IrNode *n = b->first; n; n = n->next) {
    if (n->body) gemm_fuse(cg, n->body, consumer);
    if ((n->op == IR_OP_CONV2D || n->op == IR_OP_CONV1D ||
         n->op == IR_OP_CONV_TRANSPOSE2D) && cg_conv_gemm_ok(cg, n)) {
      cg_val(cg, n->res[0])->gemm = n; /* im2col + SGEMM */
      continue;
    }
    if (n->op != IR_OP_MATMUL || !cg_gemm_ok(cg, n)) continue;
    CgVal *m = cg_val(cg, n->res[0]);
    m->gemm = n;
    const IrNode *u = consumer[n->id];
    if (cg->o->no_fuse || m->returned || m->scanuse || m->nuses != 1 || !u ||
        u->op != IR_OP_ADD || !ir_type_eq(&u->res[0]->type, &n->res[0]->type))
      continue;
    const IrValue *o = u->args[0] == n->res[0] ? u->args[1] : u->args[0];
    CgVal *ov = cg_val(cg, o);
    int64_t M = cg_cols(&n->res[0]->type);
    if (ov->inl || o->type.dtype != DT_F32 || ir_type_numel(&o->type) != M ||
        cg_cols(&o->type) != M || ov->st[o->type.rank - 1] != 1)
      continue;
    CgVal *uv = cg_val(cg, u->res[0]), *f = uv;
    const IrNode *v = consumer[u->id];
    if (uv->inl) {
      if (!v || v->op != IR_OP_RELU || cg_val(cg, v->res[0])->inl ||
          !ir_type_eq(&v->res[0]->type, &u->res[0]->type))
        continue;
      f = cg_val(cg, v->res[0]);
      f->relu = true;
    }
    if (f->kind == CGB_VIEW) continue;
    m->gemm = NULL;
    m->inl = true;
    uv->inl = uv != f;
    f->gemm = n;
    f->bias = o;
  }
}

/* Decide fused or materialised for every node result of block b. */
static void decide(Cg *cg, const IrBlock *b, const IrNode **consumer) {
  for (const IrNode *n = b->first; n; n = n->next) {
    if (n->body) {
      scan_args(cg, n);
      decide(cg, n->body, consumer);
    }
    if (n->nres != 1 || n->op == IR_OP_SCAN) continue;
    CgVal *c = cg_val(cg, n->res[0]);
    const IrNode *u = consumer[n->id];
    IrOp op = n->op;
    if (c->returned || cg->o->no_fuse || c->scanuse) continue;
    if (op == IR_OP_RESHAPE && !cg_val(cg, n->args[0])->inl &&
        contiguous(cg_val(cg, n->args[0]))) {
      c->kind = CGB_VIEW;
      c->root = cg_val(cg, n->args[0])->root;
      c->base = cg_val(cg, n->args[0]);
      continue;
    }
    if (op == IR_OP_RESHAPE && !cg_val(cg, n->args[0])->inl &&
        reshape_strides(cg_val(cg, n->args[0]), &n->res[0]->type, c->st)) {
      c->kind = CGB_VIEW; /* e.g. [B, T, D] -> [B, T, H, D/H] of a slice */
      c->root = cg_val(cg, n->args[0])->root;
      c->base = cg_val(cg, n->args[0]);
      continue;
    }
    if (op == IR_OP_CONSTANT || op == IR_OP_IOTA || op == IR_OP_CAUSAL_MASK) {
      c->inl = true;
      continue;
    }
    if (view_of(cg, n, c)) continue;
    bool fusable = (ir_op_info[op].flags & OPF_FUSABLE) || is_view_op(op) ||
                   op == IR_OP_RAND;
    c->inl = fusable && c->nuses == 1 && u && reads_few(u->op);
  }
}

/* Same sizes (the dtype may differ). */
static bool same_dims(const IrType *a, const IrType *b) {
  if (a->rank != b->rank) return false;
  for (int k = 0; k < a->rank; k++)
    if (a->dim[k] != b->dim[k]) return false;
  return true;
}

/* The kernel that reads node n's result at that result's own index through
** its use by node u: u itself when materialised, else the first
** materialised value up u's chain of single consumers; each an elementwise
** op of n's sizes (so no broadcast on the way); or NULL. */
static CgVal *use_kernel(Cg *cg, const IrNode *n, const IrNode *u, const IrNode **consumer) {
  const IrType *t = &n->res[0]->type;
  for (; u; u = consumer[u->id]) {
    if (!(ir_op_info[u->op].flags & OPF_FUSABLE) || u->nres != 1 ||
        !same_dims(&u->res[0]->type, t))
      return NULL;
    CgVal *uv = cg_val(cg, u->res[0]);
    if (!uv->inl) return uv->gemm || uv->kind == CGB_VIEW || uv->scanuse ? NULL : uv;
  }
  return NULL;
}

static void add_extra(Cg *cg, CgVal *k, CgVal *e) {
  CgVal **nx = ARENA_ARRAY(cg->a, CgVal *, k->nextra + 1);
  if (k->nextra) memcpy(nx, k->extra, sizeof(CgVal *) * (size_t)k->nextra);
  nx[k->nextra++] = e;
  k->extra = nx;
  e->coout = k;
}

/* An elementwise value with several uses, all of them (at its own index)
** in one kernel, is fused into it: it is computed where each use reads it
** and LLVM keeps one copy (SGD's decayed gradient g + wd·w feeds both the
** momentum and the Nesterov step of the same update loop). */
static void shared_fuse(Cg *cg, const IrBlock *b, const IrNode **consumer) {
  if (cg->o->no_fuse) return;
  for (const IrNode *n = b->first; n; n = n->next) {
    if (n->nres != 1 || !(ir_op_info[n->op].flags & OPF_FUSABLE)) continue;
    CgVal *c = cg_val(cg, n->res[0]);
    if (c->inl || c->returned || c->scanuse || c->nuses < 2 || c->gemm ||
        c->kind != CGB_NONE || c->nextra)
      continue;
    CgVal *k = NULL;
    int seen = 0;
    for (const IrNode *u = n->next; u && seen < c->nuses; u = u->next)
      for (int i = 0; i < u->nargs; i++) {
        if (u->args[i] != n->res[0]) continue;
        CgVal *ku = use_kernel(cg, n, u, consumer);
        if (!ku || (k && ku != k)) goto next;
        k = ku;
        seen++;
      }
    if (seen == c->nuses) c->inl = true;
  next:;
  }
}

/* Multi-output fusion: an elementwise result that is returned and also
** read once, at its own index, by a later elementwise kernel is computed
** and stored by that kernel (an optimiser's new moment, read by the
** parameter update, costs no pass of its own). */
static void multi_out(Cg *cg, const IrBlock *b, const IrNode **consumer) {
  if (cg->o->no_fuse) return;
  for (const IrNode *n = b->first; n; n = n->next) {
    if (n->nres != 1 || !(ir_op_info[n->op].flags & OPF_FUSABLE)) continue;
    CgVal *c = cg_val(cg, n->res[0]);
    if (!c->returned || c->inl || c->scanuse || c->nuses != 2 || c->gemm ||
        c->kind != CGB_OUTPUT)
      continue;
    CgVal *k = use_kernel(cg, n, consumer[n->id], consumer);
    if (!k) continue;
    for (int i = 0; i < c->nextra; i++) add_extra(cg, k, c->extra[i]);
    c->extra = NULL;
    c->nextra = 0;
    c->inl = true;
    add_extra(cg, k, c);
  }
}

/* The position at which a use in block `ub` at position p reads a value
** defined in block db (climbing out of scan bodies). */
static int use_pos(Plan *pl, const IrBlock *ub, int p, const IrBlock *db) {
  while (ub && ub != db && ub->owner) {
    p = pl->scan_end[ub->owner->id];
    ub = ub->owner->parent;
  }
  return p;
}

static const IrBlock *def_block(const IrValue *v) {
  return v->kind == IRV_RESULT ? v->def->parent
         : v->kind == IRV_ARG  ? v->block
                               : NULL;
}

/* Mark the materialised leaves read through v as used at p. */
static void touch(Plan *pl, const IrValue *v, const IrBlock *ub, int p) {
  CgVal *c = cg_val(pl->cg, v);
  if (c->inl) {
    for (int i = 0; i < v->def->nargs; i++) touch(pl, v->def->args[i], ub, p);
    return;
  }
  int q = use_pos(pl, ub, p, def_block(v));
  if (q > c->root->last) c->root->last = q;
}

static void number(Plan *pl, const IrBlock *b) {
  for (const IrNode *n = b->first; n; n = n->next) {
    pl->npos[n->id] = pl->pos++;
    if (n->body) {
      number(pl, n->body);
      pl->pos++; /* yield */
      pl->scan_end[n->id] = pl->pos++;
    }
  }
}

static void lastuses(Plan *pl, const IrBlock *b) {
  for (const IrNode *n = b->first; n; n = n->next) {
    CgVal *self = n->nres ? cg_val(pl->cg, n->res[0]) : NULL;
    if (self && self->inl) continue;
    int p = n->body ? pl->scan_end[n->id] : pl->npos[n->id];
    for (int r = 0; r < n->nres; r++) {
      CgVal *c = cg_val(pl->cg, n->res[r]);
      if (c->root->last < p) c->root->last = p;
    }
    for (int i = 0; i < n->nargs; i++) touch(pl, n->args[i], b, p);
    if (n->body) {
      lastuses(pl, n->body);
      for (int i = 0; i < n->body->nrets; i++)
        touch(pl, n->body->rets[i], n->body, pl->scan_end[n->id] - 1);
    }
  }
}

/* ---------------------------------------------------- in-place updates */

/* May node n raise a run-time error (a label or index out of range, an
** integer division by zero), here or inside its body? */
static bool may_raise(const IrNode *n) {
  switch (n->op) {
  case IR_OP_CROSS_ENTROPY: case IR_OP_NLL: case IR_OP_ACCURACY: case IR_OP_F1:
  case IR_OP_TOP_K: case IR_OP_SOFT_ACCURACY: case IR_OP_SOFT_F1:
  case IR_OP_GATHER: case IR_OP_ONE_HOT:
    return true;
  case IR_OP_DIV: case IR_OP_POW:
    return !ir_dtype_is_float(n->res[0]->type.dtype);
  default:
    break;
  }
  if (n->body)
    for (const IrNode *m = n->body->first; m; m = m->next)
      if (may_raise(m)) return true;
  return false;
}

/* Does reading v at the kernel's index (when `at`) touch the memory of
** global w only as w itself (or the value written over it) at that index?
** t: the kernel's result type. */
static bool reads_ok(Cg *cg, const IrValue *v, const CgVal *w, const IrType *t, bool at) {
  CgVal *c = cg_val(cg, v);
  if (!c->inl) {
    bool same = c == w || c->alias == w;
    if (!same && c->root != w) return true;
    return same && at && same_dims(&v->type, t);
  }
  const IrNode *n = v->def;
  bool ew = (ir_op_info[n->op].flags & OPF_FUSABLE) != 0;
  for (int i = 0; i < n->nargs; i++) {
    bool ai = at && ew && same_dims(&n->args[i]->type, &n->res[0]->type);
    if (!reads_ok(cg, n->args[i], w, t, ai)) return false;
  }
  return true;
}

/* Does kernel k (its node's operands and the values it also stores) read
** the global w only at the element it writes? */
static bool kernel_reads_ok(Cg *cg, const CgVal *k, const CgVal *w) {
  const IrNode *n = k->v->def;
  for (int i = 0; i < n->nargs; i++)
    if (!reads_ok(cg, n->args[i], w, &k->v->type,
                  same_dims(&n->args[i]->type, &n->res[0]->type)))
      return false;
  for (int i = 0; i < k->nextra; i++)
    if (!reads_ok(cg, k->extra[i]->v, w, &k->v->type, true)) return false;
  return true;
}

/* In cg->o->inplace_func, write each result `@X` straight into global X
** when that is safe (codegen.h): X's last read is in the kernel that
** writes it, at the element written, and no error can be raised from that
** kernel on.  Runs after lastuses (the globals' last reads are known). */
static void inplace(Plan *pl, const IrFunc *f) {
  Cg *cg = pl->cg;
  const IrBlock *b = f->body;
  cg->first_inplace = NULL;
  if (!cg->o->inplace_func || strcmp(f->name, cg->o->inplace_func) != 0) return;
  int raise = -1;
  for (const IrNode *n = b->first; n; n = n->next)
    if (may_raise(n)) raise = n->body ? pl->scan_end[n->id] : pl->npos[n->id];
  for (int r = 0; r < b->nrets; r++) {
    const char *nm = f->ret_names ? f->ret_names[r] : NULL;
    const IrValue *v = b->rets[r];
    if (!nm || nm[0] != '@' || v->kind != IRV_RESULT || v->def->parent != b ||
        v->def->nres != 1 || !(ir_op_info[v->def->op].flags & OPF_FUSABLE))
      continue;
    CgVal *c = cg_val(cg, v);
    if (c->gemm || c->scanuse || c->kind != CGB_OUTPUT || c->index != r)
      continue;
    bool twice = false;
    for (int q = 0; q < b->nrets; q++) twice |= q != r && b->rets[q] == v;
    const IrGlobal *g = ir_global_find(cg->m, nm + 1);
    if (twice || !g || !ir_type_eq(&g->value->type, &v->type)) continue;
    CgVal *w = cg_val(cg, g->value), *k = c->coout ? c->coout : c;
    int kpos = pl->npos[k->v->def->id];
    if (w->last > kpos || raise >= kpos) continue;
    c->alias = w;
    if (!kernel_reads_ok(cg, k, w)) {
      c->alias = NULL;
      continue;
    }
    c->kind = CGB_GLOBAL;
    c->index = w->index;
    cg->inplace[r] = true;
    if (!cg->first_inplace || kpos < pl->npos[cg->first_inplace->id])
      cg->first_inplace = k->v->def;
  }
}

static int64_t round64(int64_t x) { return (x + 63) & ~(int64_t)63; }

static int64_t arena_take(Plan *pl, int64_t size) {
  size = round64(size > 0 ? size : 1);
  for (int i = 0; i < pl->nfree; i++) {
    if (pl->fsize[i] < size) continue;
    int64_t off = pl->foff[i];
    pl->foff[i] += size;
    pl->fsize[i] -= size;
    return off;
  }
  int64_t off = pl->top;
  pl->top += size;
  if (pl->top > pl->peak) pl->peak = pl->top;
  return off;
}

static void arena_give(Plan *pl, int64_t off, int64_t size) {
  size = round64(size > 0 ? size : 1);
  if (pl->nfree == pl->capfree) {
    int nc = pl->capfree ? 2 * pl->capfree : 16;
    int64_t *no = ARENA_ARRAY(pl->cg->a, int64_t, nc);
    int64_t *ns = ARENA_ARRAY(pl->cg->a, int64_t, nc);
    if (pl->nfree) {
      memcpy(no, pl->foff, sizeof(int64_t) * (size_t)pl->nfree);
      memcpy(ns, pl->fsize, sizeof(int64_t) * (size_t)pl->nfree);
    }
    pl->foff = no;
    pl->fsize = ns;
    pl->capfree = nc;
  }
  int i = pl->nfree++;
  while (i > 0 && pl->foff[i - 1] > off) {
    pl->foff[i] = pl->foff[i - 1];
    pl->fsize[i] = pl->fsize[i - 1];
    i--;
  }
  pl->foff[i] = off;
  pl->fsize[i] = size;
  /* merge neighbours */
  for (int j = 0; j + 1 < pl->nfree;) {
    if (pl->foff[j] + pl->fsize[j] == pl->foff[j + 1]) {
      pl->fsize[j] += pl->fsize[j + 1];
      memmove(pl->foff + j + 1, pl->foff + j + 2,
              sizeof(int64_t) * (size_t)(pl->nfree - j - 2));
      memmove(pl->fsize + j + 1, pl->fsize + j + 2,
              sizeof(int64_t) * (size_t)(pl->nfree - j - 2));
      pl->nfree--;
    } else {
      j++;
    }
  }
  if (pl->nfree && pl->foff[pl->nfree - 1] + pl->fsize[pl->nfree - 1] == pl->top) {
    pl->top = pl->foff[pl->nfree - 1];
    pl->nfree--;
  }
}

static void place(Plan *pl, CgVal *c) {
  if (c->kind != CGB_NONE) return;
  c->kind = CGB_ARENA;
  if (!c->bytes)
    c->bytes = ir_type_numel(&c->v->type) * ir_dtype_size(c->v->type.dtype);
  c->off = arena_take(pl, c->bytes);
  c->live = true;
  if (pl->nlive == pl->caplive) {
    int nc = pl->caplive ? 2 * pl->caplive : 32;
    CgVal **nl = ARENA_ARRAY(pl->cg->a, CgVal *, nc);
    if (pl->nlive) memcpy(nl, pl->live, sizeof(CgVal *) * (size_t)pl->nlive);
    pl->live = nl;
    pl->caplive = nc;
  }
  pl->live[pl->nlive++] = c;
}

static void expire(Plan *pl, int p) {
  for (int i = 0; i < pl->nlive;) {
    CgVal *c = pl->live[i];
    if (c->last <= p && !c->returned) {
      arena_give(pl, c->off, c->bytes);
      c->live = false;
      pl->live[i] = pl->live[--pl->nlive];
    } else {
      i++;
    }
  }
}

/* Scratch buffers of a scan's carries (the second buffer of each). */
typedef struct ScanScratch {
  int n;
  CgVal **v;
} ScanScratch;

static void allocate(Plan *pl, const IrBlock *b) {
  Cg *cg = pl->cg;
  for (const IrNode *n = b->first; n; n = n->next) {
    if (n->body) {
      int nc = (int)ir_attr_int(&n->attrs, "ncarry", 0);
      for (int r = 0; r < n->nres; r++) place(pl, cg_val(cg, n->res[r]));
      CgVal **sc = ARENA_ARRAY(cg->a, CgVal *, nc + 1);
      for (int i = 0; i < nc; i++) {
        sc[i] = ARENA_NEW(cg->a, CgVal);
        *sc[i] = *cg_val(cg, n->res[i]);
        sc[i]->root = sc[i];
        sc[i]->kind = CGB_NONE;
        place(pl, sc[i]);
        sc[i]->last = pl->scan_end[n->id];
      }
      cg->scratch[n->id] = sc;
      allocate(pl, n->body);
      expire(pl, pl->scan_end[n->id]);
      continue;
    }
    CgVal *c = n->nres ? cg_val(cg, n->res[0]) : NULL;
    if (!c || c->inl || c->kind == CGB_VIEW) continue;
    place(pl, c);
    if (c->gemm) { /* SGEMM scratch, freed after the node */
      CgVal **w = ARENA_ARRAY(cg->a, CgVal *, 1);
      w[0] = ARENA_NEW(cg->a, CgVal);
      w[0]->v = c->gemm->res[0];
      w[0]->root = w[0];
      w[0]->bytes = 4 * cg_gemm_work(cg, c->gemm);
      place(pl, w[0]);
      w[0]->last = pl->npos[n->id];
      cg->scratch[n->id] = w;
    }
    expire(pl, pl->npos[n->id]);
  }
}

/* Node ids in printer order (results numbered in program order, a scan's
** results before its body). */
static int number_nodes(const IrBlock *b, int id) {
  for (IrNode *n = b->first; n; n = n->next) {
    n->id = id;
    id += n->nres > 0 ? n->nres : 1;
    if (n->body) id = number_nodes(n->body, id);
  }
  return id;
}

bool cg_plan_func(Cg *cg, const IrFunc *f, int64_t *arena_bytes) {
  IrBlock *b = f->body;
  int nid = number_nodes(b, 0) + 1;
  cg->nnodes = nid;
  Plan pl = {.cg = cg};
  pl.scan_end = ARENA_ARRAY(cg->a, int, nid);
  pl.npos = ARENA_ARRAY(cg->a, int, nid);
  cg->scratch = ARENA_ARRAY(cg->a, CgVal **, nid);
  const IrNode **consumer = ARENA_ARRAY(cg->a, const IrNode *, nid);
  int gi = 0;
  for (const IrGlobal *g = cg->m->globals; g; g = g->next, gi++) {
    CgVal *c = cg_val(cg, g->value);
    c->kind = CGB_GLOBAL;
    c->index = gi;
  }
  for (int i = 0; i < b->nargs; i++) {
    CgVal *c = cg_val(cg, b->args[i]);
    c->kind = CGB_INPUT;
    c->index = i;
  }
  for (int i = 0; i < b->nrets; i++) {
    CgVal *c = cg_val(cg, b->rets[i]);
    c->nuses++;
    if (b->rets[i]->kind != IRV_RESULT || c->returned) continue;
    c->returned = true;
    c->kind = CGB_OUTPUT;
    c->index = i;
  }
  count_uses(cg, b, consumer);
  decide(cg, b, consumer);
  gemm_fuse(cg, b, consumer);
  multi_out(cg, b, consumer);
  shared_fuse(cg, b, consumer);
  number(&pl, b);
  lastuses(&pl, b);
  inplace(&pl, f);
  for (int i = 0; i < b->nrets; i++)
    if (!cg_val(cg, b->rets[i])->coout) touch(&pl, b->rets[i], b, pl.pos + 1);
  allocate(&pl, b);
  *arena_bytes = pl.peak;
  return !cg->failed;
}


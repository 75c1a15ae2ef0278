/*
** This file contains the lowering of scan: a sequential loop over the steps
** in the entry function, the body's nodes lowered inside it (their kernels
** are called once per step).
**
**   carries   double-buffered: the scan's carry result R and a scratch
**             buffer S (both in the plan); the body reads `cur` and its
**             yields are copied into `nxt`, then the two swap; after the
**             last step the final carry is moved into R if it is in S.
**   sequences the body argument of step t is a strided view of the operand
**             at t along its axis (no copy).
**   emitted   each yield is copied into position t along axes[0] of its
**             result.
** reverse = true runs t from the last position down.
*/
#include "cg_int.h"

/* A contiguous destination for a copy kernel: memory at ptr, the type of
** value v. */
static CgVal *dest(Cg *cg, const IrValue *v, LLVMValueRef ptr) {
  CgVal *d = ARENA_NEW(cg->a, CgVal);
  *d = *cg_val(cg, v);
  d->root = d;
  d->inl = false;
  d->alias = d->coout = NULL;
  d->nextra = 0;
  d->kind = CGB_VIEW;
  d->ptr = ptr;
  int64_t st = 1;
  for (int k = v->type.rank - 1; k >= 0; k--) {
    d->st[k] = st;
    st *= v->type.dim[k];
  }
  return d;
}

static LLVMValueRef byte_gep(Cg *cg, LLVMValueRef p, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(cg->eb, cg->i8, p, &off, 1, "");
}

static int64_t steps_of(const IrNode *n, int nc) {
  const IrAttr *ax = ir_attr_get(&n->attrs, "axes");
  if (n->nargs > nc && ax) {
    const IrType *t = &n->args[nc]->type;
    return t->dim[cg_axis(ax->ints[0], t->rank)];
  }
  return ir_attr_int(&n->attrs, "length", 0);
}

void cg_scan(Cg *cg, const IrNode *n) {
  LLVMBuilderRef eb = cg->eb;
  int nc = (int)ir_attr_int(&n->attrs, "ncarry", 0);
  const IrAttr *ax = ir_attr_get(&n->attrs, "axes");
  bool rev = ir_attr_bool(&n->attrs, "reverse", false);
  int64_t steps = steps_of(n, nc);
  const IrBlock *body = n->body;
  CgVal **sc = cg->scratch[n->id];
  char name[64];
  LLVMValueRef *cur = ARENA_ARRAY(cg->a, LLVMValueRef, nc + 1);
  LLVMValueRef *nxt = ARENA_ARRAY(cg->a, LLVMValueRef, nc + 1);
  for (int r = 0; r < n->nres; r++) {
    CgVal *c = cg_val(cg, n->res[r]);
    if (c->kind == CGB_ARENA) {
      LLVMValueRef i = cg_i64(cg, c->off);
      c->ptr = LLVMBuildInBoundsGEP2(eb, cg->i8, cg->earena, &i, 1, "");
    } else {
      LLVMValueRef i = cg_i64(cg, c->index);
      c->ptr = LLVMBuildLoad2(eb, cg->ptr, LLVMBuildInBoundsGEP2(eb, cg->ptr, cg->eoutputs, &i, 1, ""), "");
    }
  }
  for (int i = 0; i < nc; i++) {
    LLVMValueRef off = cg_i64(cg, sc[i]->off);
    sc[i]->ptr = byte_gep(cg, cg->earena, off);
    CgVal *r = cg_val(cg, n->res[i]);
    snprintf(name, sizeof name, "k%d_scan_init%d", n->id, i);
    cg_emit_copy(cg, name, n->args[i], r);
    cur[i] = cg_alloca(cg, cg->ptr, "v_cur");
    nxt[i] = cg_alloca(cg, cg->ptr, "v_nxt");
    LLVMBuildStore(eb, r->ptr, cur[i]);
    LLVMBuildStore(eb, sc[i]->ptr, nxt[i]);
  }
  /* for (s = 0; s < steps; s++) in the entry function */
  LLVMBuilderRef save = cg->b;
  cg->b = eb;
  CgLoop l;
  LLVMValueRef s = cg_loop_begin(cg, &l, cg_i64(cg, 0), cg_i64(cg, steps));
  cg->b = save;
  LLVMValueRef t = rev ? LLVMBuildSub(eb, cg_i64(cg, steps - 1), s, "") : s;
  for (int i = 0; i < nc; i++)
    cg_val(cg, body->args[i])->ptr = LLVMBuildLoad2(eb, cg->ptr, cur[i], "");
  for (int j = nc; j < n->nargs; j++) {
    CgVal *op = cg_val(cg, n->args[j]);
    int axis = cg_axis(ax->ints[j - nc], n->args[j]->type.rank);
    int64_t esz = ir_dtype_size(n->args[j]->type.dtype);
    LLVMValueRef off = LLVMBuildMul(eb, t, cg_i64(cg, op->st[axis] * esz), "");
    cg_val(cg, body->args[j])->ptr = byte_gep(cg, op->ptr, off);
  }
  cg_emit_block(cg, body);
  for (int i = 0; i < nc && !cg->failed; i++) {
    CgVal *d = dest(cg, body->rets[i], LLVMBuildLoad2(eb, cg->ptr, nxt[i], ""));
    snprintf(name, sizeof name, "k%d_scan_carry%d", n->id, i);
    cg_emit_copy(cg, name, body->rets[i], d);
  }
  for (int i = nc; i < n->nres && !cg->failed; i++) {
    CgVal *r = cg_val(cg, n->res[i]);
    const IrType *rt = &n->res[i]->type;
    int ea = cg_axis(ax && ax->n > 0 ? ax->ints[0] : 0, rt->rank);
    int64_t esz = ir_dtype_size(rt->dtype);
    LLVMValueRef off = LLVMBuildMul(eb, t, cg_i64(cg, r->st[ea] * esz), "");
    CgVal *d = dest(cg, body->rets[i], byte_gep(cg, r->ptr, off));
    for (int k = 0, m = 0; k < rt->rank; k++)
      if (k != ea) d->st[m++] = r->st[k];
    snprintf(name, sizeof name, "k%d_scan_emit%d", n->id, i);
    cg_emit_copy(cg, name, body->rets[i], d);
  }
  for (int i = 0; i < nc; i++) {
    LLVMValueRef a = LLVMBuildLoad2(eb, cg->ptr, cur[i], "");
    LLVMValueRef b = LLVMBuildLoad2(eb, cg->ptr, nxt[i], "");
    LLVMBuildStore(eb, b, cur[i]);
    LLVMBuildStore(eb, a, nxt[i]);
  }
  cg->b = eb;
  cg_loop_end(cg, &l);
  cg->b = save;
  for (int i = 0; i < nc; i++) {
    CgVal *r = cg_val(cg, n->res[i]);
    int64_t bytes = ir_type_numel(&n->res[i]->type) * ir_dtype_size(n->res[i]->type.dtype);
    LLVMValueRef c = LLVMBuildLoad2(eb, cg->ptr, cur[i], "");
    LLVMBuildMemMove(eb, r->ptr, 1, c, 1, cg_i64(cg, bytes));
  }
}

LLVMValueRef cg_scan_elem(Cg *cg, const IrNode *n, LLVMValueRef *idx) {
  nnc_unreachable(); /* scans are never fused: cg_scan lowers them */
}

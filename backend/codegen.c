/*
** This file contains the module-level part of the lowering of the tensor IR
** to LLVM IR: the plan of every value (fused or materialised, and where:
** arena offset by a linear-scan liveness plan, an input, a global, an
** output), the entry function of each IR function, the kernels (one
** internal function per materialised node, a loop nest over its result,
** run through nnrt_parallel_for when large), the rule table indexed by op
** and the helpers the per-family files share (cg_int.h).
**
** Fusion (producer inlining): a value is fused into its consumer, that is
** computed inside the consumer's loop instead of stored, when its op is
** elementwise (OPF_FUSABLE) or a cheap view (broadcast, transpose, slice,
** reshape, pad, glu family), it has exactly one use, in the same block,
** and the consumer reads each operand element a bounded number of times
** (elementwise ops, reductions, softmax, losses, shape ops).  Constants,
** iota and causal masks are always recomputed where used.  A reshape of a
** materialised value is a view of the same memory.
**
** Memory: positions are numbered in program order (a scan has a start, a
** yield and an end position around its body); a buffer is freed after the
** last position that reads it, directly or through fused values, and a
** freed range is reused first-fit.  A value used inside a scan body but
** defined outside stays live until the end of the scan.
*/
#include <stdio.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "cg_int.h"
#include "target.h"

/* ------------------------------------------------------------ value map */

struct CgMap {
  const IrValue **keys;
  CgVal **vals;
  int64_t cap, len;
};

static uint64_t hash_ptr(const void *p) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

static void map_init(Arena *a, CgMap *mp, int64_t cap) {
  mp->cap = cap;
  mp->len = 0;
  mp->keys = ARENA_ARRAY(a, const IrValue *, cap);
  mp->vals = ARENA_ARRAY(a, CgVal *, cap);
}

static CgVal **map_slot(Arena *a, CgMap *mp, const IrValue *k) {
  if (2 * (mp->len + 1) > mp->cap) {
    CgMap old = *mp;
    map_init(a, mp, old.cap * 2);
    for (int64_t i = 0; i < old.cap; i++)
      if (old.keys[i]) *map_slot(a, mp, old.keys[i]) = old.vals[i];
  }
  int64_t i = (int64_t)(hash_ptr(k) & (uint64_t)(mp->cap - 1));
  while (mp->keys[i] && mp->keys[i] != k) i = (i + 1) & (mp->cap - 1);
  if (!mp->keys[i]) {
    mp->keys[i] = k;
    mp->len++;
  }
  return &mp->vals[i];
}

CgVal *cg_val(Cg *cg, const IrValue *v) {
  CgVal **s = map_slot(cg->a, cg->vals, v);
  if (!*s) {
    CgVal *c = ARENA_NEW(cg->a, CgVal);
    c->v = v;
    c->root = c;
    c->last = -1;
    int64_t st = 1;
    for (int k = v->type.rank - 1; k >= 0; k--) {
      c->st[k] = st;
      st *= v->type.dim[k];
    }
    *s = c;
  }
  return *s;
}

/* -------------------------------------------------------------- helpers */

LLVMValueRef cg_i64(Cg *cg, int64_t v) {
  return LLVMConstInt(cg->i64, (unsigned long long)v, true);
}
LLVMValueRef cg_i32(Cg *cg, int64_t v) {
  return LLVMConstInt(cg->i32, (unsigned long long)v, true);
}

int cg_axis(int64_t axis, int rank) {
  int64_t a = axis < 0 ? axis + rank : axis;
  NNC_ASSERT(a >= 0 && a < (rank > 0 ? rank : 1));
  return (int)a;
}

void cg_attr_ivec(const IrNode *n, const char *name, int rank, int64_t dflt,
                  int64_t *out) {
  const IrAttr *a = ir_attr_get(&n->attrs, name);
  for (int k = 0; k < rank; k++) out[k] = dflt;
  if (!a) return;
  for (int k = 0; k < rank; k++)
    out[k] = a->kind == ATTR_INT ? a->i : a->n == rank ? a->ints[k] : a->n == 1 ? a->ints[0] : dflt;
}

void cg_fail(Cg *cg, const IrNode *n, const char *msg) {
  if (!cg->failed)
    diag_error(cg->diag, n ? n->loc : (SrcLoc){0}, "backend: %s%s%s",
               n ? ir_op_info[n->op].name : "", n ? ": " : "", msg);
  cg->failed = true;
}

bool cg_is_fp(LLVMTypeRef t) {
  LLVMTypeKind k = LLVMGetTypeKind(t);
  return k == LLVMFloatTypeKind || k == LLVMDoubleTypeKind;
}

LLVMValueRef cg_fm(LLVMValueRef inst, bool reassoc) {
  if (inst && LLVMIsAInstruction(inst) && LLVMCanValueUseFastMathFlags(inst))
    LLVMSetFastMathFlags(inst, LLVMFastMathAllowContract |
                                   (reassoc ? LLVMFastMathAllowReassoc : 0));
  return inst;
}

LLVMTypeRef cg_ctype(Cg *cg, DType t) {
  switch (t) {
  case DT_F32: case DT_F16: case DT_BF16: return cg->f32;
  case DT_F64: return cg->f64;
  case DT_I32: return cg->i32;
  case DT_I64: return cg->i64;
  case DT_U8: return cg->i8;
  case DT_BOOL: return cg->i1;
  default: return cg->f32;
  }
}

LLVMTypeRef cg_stype(Cg *cg, DType t) {
  switch (t) {
  case DT_F16: return cg->f16;
  case DT_BF16: return cg->i16;
  case DT_BOOL: return cg->i8;
  default: return cg_ctype(cg, t);
  }
}

LLVMValueRef cg_const(Cg *cg, DType t, double v) {
  LLVMTypeRef ty = cg_ctype(cg, t);
  if (cg_is_fp(ty)) return LLVMConstReal(ty, v);
  if (t == DT_BOOL) return LLVMConstInt(cg->i1, v != 0, false);
  return LLVMConstInt(ty, (unsigned long long)(int64_t)v, true);
}

/* f32 -> bf16 bits, round to nearest even (NaN stays NaN). */
static LLVMValueRef to_bf16(Cg *cg, LLVMValueRef x) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef bits = LLVMBuildBitCast(b, x, cg->i32, "");
  LLVMValueRef lsb = LLVMBuildAnd(b, LLVMBuildLShr(b, bits, cg_i32(cg, 16), ""),
                                  cg_i32(cg, 1), "");
  LLVMValueRef r = LLVMBuildAdd(b, bits, LLVMBuildAdd(b, lsb, cg_i32(cg, 0x7fff), ""), "");
  r = LLVMBuildLShr(b, r, cg_i32(cg, 16), "");
  LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, x, x, "");
  r = LLVMBuildSelect(b, nan, cg_i32(cg, 0x7fc0), r, "");
  return LLVMBuildTrunc(b, r, cg->i16, "");
}

static LLVMValueRef from_bf16(Cg *cg, LLVMValueRef h) {
  LLVMValueRef w = LLVMBuildShl(cg->b, LLVMBuildZExt(cg->b, h, cg->i32, ""),
                                cg_i32(cg, 16), "");
  return LLVMBuildBitCast(cg->b, w, cg->f32, "");
}

LLVMValueRef cg_round(Cg *cg, DType t, LLVMValueRef x) {
  if (t == DT_F16)
    return LLVMBuildFPExt(cg->b, LLVMBuildFPTrunc(cg->b, x, cg->f16, ""),
                          cg->f32, "");
  if (t == DT_BF16) return from_bf16(cg, to_bf16(cg, x));
  return x;
}

static bool is_signed(DType t) { return t == DT_I32 || t == DT_I64; }

LLVMValueRef cg_to_fp(Cg *cg, LLVMValueRef x, DType from, LLVMTypeRef ft) {
  LLVMTypeRef xt = LLVMTypeOf(x);
  if (cg_is_fp(xt)) {
    if (xt == ft) return x;
    return xt == cg->f32 ? LLVMBuildFPExt(cg->b, x, ft, "")
                         : LLVMBuildFPTrunc(cg->b, x, ft, "");
  }
  return is_signed(from) ? LLVMBuildSIToFP(cg->b, x, ft, "")
                         : LLVMBuildUIToFP(cg->b, x, ft, "");
}

static LLVMValueRef fp_to_int_sat(Cg *cg, LLVMValueRef x, DType to) {
  LLVMTypeRef it = cg_ctype(cg, to);
  char name[64];
  snprintf(name, sizeof name, "llvm.fpto%ci.sat.i%u.%s",
           to == DT_U8 ? 'u' : 's', LLVMGetIntTypeWidth(it),
           LLVMTypeOf(x) == cg->f32 ? "f32" : "f64");
  LLVMTypeRef params[1] = {LLVMTypeOf(x)};
  LLVMTypeRef fty = LLVMFunctionType(it, params, 1, false);
  LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
  if (!f) f = LLVMAddFunction(cg->mod, name, fty);
  return LLVMBuildCall2(cg->b, fty, f, &x, 1, "");
}

LLVMValueRef cg_convert(Cg *cg, LLVMValueRef x, DType from, DType to) {
  LLVMTypeRef ft = cg_ctype(cg, from), tt = cg_ctype(cg, to);
  LLVMBuilderRef b = cg->b;
  if (to == DT_BOOL) {
    if (from == DT_BOOL) return x;
    if (cg_is_fp(ft))
      return LLVMBuildFCmp(b, LLVMRealUNE, x, LLVMConstReal(ft, 0), "");
    return LLVMBuildICmp(b, LLVMIntNE, x, LLVMConstInt(ft, 0, false), "");
  }
  if (cg_is_fp(tt)) return cg_round(cg, to, cg_to_fp(cg, x, from, tt));
  if (cg_is_fp(ft)) return fp_to_int_sat(cg, x, to);
  if (ft == tt) return x;
  if (LLVMGetIntTypeWidth(ft) > LLVMGetIntTypeWidth(tt))
    return LLVMBuildTrunc(b, x, tt, "");
  return is_signed(from) ? LLVMBuildSExt(b, x, tt, "")
                         : LLVMBuildZExt(b, x, tt, "");
}

static LLVMValueRef intrinsic(Cg *cg, const char *name, LLVMTypeRef t, int n) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  NNC_ASSERT(id != 0);
  LLVMTypeRef ov[1] = {t};
  (void)n;
  return LLVMGetIntrinsicDeclaration(cg->mod, id, ov, 1);
}

LLVMValueRef cg_intr1(Cg *cg, const char *name, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x), ov[1] = {t};
  LLVMValueRef f = intrinsic(cg, name, t, 1);
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, ov, 1);
  return cg_fm(LLVMBuildCall2(cg->b, fty, f, &x, 1, ""), false);
}

LLVMValueRef cg_intr2(Cg *cg, const char *name, LLVMValueRef x,
                      LLVMValueRef y) {
  LLVMTypeRef t = LLVMTypeOf(x), ov[1] = {t};
  LLVMValueRef f = intrinsic(cg, name, t, 2), args[2] = {x, y};
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, ov, 1);
  return cg_fm(LLVMBuildCall2(cg->b, fty, f, args, 2, ""), false);
}

LLVMValueRef cg_libm1(Cg *cg, const char *name, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x);
  char nm[32];
  snprintf(nm, sizeof nm, "%s%s", name, t == cg->f32 ? "f" : "");
  LLVMTypeRef fty = LLVMFunctionType(t, &t, 1, false);
  LLVMValueRef f = LLVMGetNamedFunction(cg->mod, nm);
  if (!f) {
    f = LLVMAddFunction(cg->mod, nm, fty);
    LLVMAddAttributeAtIndex(
        f, LLVMAttributeFunctionIndex,
        LLVMCreateEnumAttribute(cg->ctx,
                                LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
  }
  return LLVMBuildCall2(cg->b, fty, f, &x, 1, "");
}

LLVMValueRef cg_alloca(Cg *cg, LLVMTypeRef t, const char *name) {
  LLVMBuilderRef tb = LLVMCreateBuilderInContext(cg->ctx);
  LLVMBasicBlockRef e = cg->k ? cg->k->entry : LLVMGetEntryBasicBlock(cg->efn);
  LLVMValueRef first = LLVMGetFirstInstruction(e);
  if (first) LLVMPositionBuilderBefore(tb, first);
  else LLVMPositionBuilderAtEnd(tb, e);
  LLVMValueRef a = LLVMBuildAlloca(tb, t, name);
  LLVMDisposeBuilder(tb);
  return a;
}

LLVMValueRef cg_loop_begin(Cg *cg, CgLoop *l, LLVMValueRef lo,
                           LLVMValueRef hi) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(b));
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(b);
  l->head = LLVMAppendBasicBlockInContext(cg->ctx, fn, "b_head");
  l->body = LLVMAppendBasicBlockInContext(cg->ctx, fn, "b_body");
  l->exit = LLVMAppendBasicBlockInContext(cg->ctx, fn, "b_exit");
  LLVMBuildBr(b, l->head);
  LLVMPositionBuilderAtEnd(b, l->head);
  l->phi = LLVMBuildPhi(b, cg->i64, "v_i");
  LLVMAddIncoming(l->phi, &lo, &pre, 1);
  LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntSLT, l->phi, hi, ""), l->body,
                  l->exit);
  LLVMPositionBuilderAtEnd(b, l->body);
  l->iv = l->phi;
  return l->iv;
}

void cg_loop_end(Cg *cg, CgLoop *l) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef nx = LLVMBuildNSWAdd(b, l->phi, cg_i64(cg, 1), "");
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(b);
  LLVMAddIncoming(l->phi, &nx, &cur, 1);
  LLVMBuildBr(b, l->head);
  LLVMPositionBuilderAtEnd(b, l->exit);
}

int64_t cg_rows(const IrType *t) {
  int64_t r = 1;
  for (int k = 0; k < t->rank - 1; k++) r *= t->dim[k];
  return r;
}

int64_t cg_cols(const IrType *t) {
  return t->rank > 0 ? t->dim[t->rank - 1] : 1;
}

void cg_row_index(Cg *cg, const IrType *t, LLVMValueRef row,
                  LLVMValueRef *idx) {
  for (int k = t->rank - 2; k >= 0; k--) {
    LLVMValueRef d = cg_i64(cg, t->dim[k]);
    idx[k] = k == 0 ? row : LLVMBuildSRem(cg->b, row, d, "");
    if (k > 0) row = LLVMBuildSDiv(cg->b, row, d, "");
  }
}

void cg_bcast_index(Cg *cg, const IrType *in, const IrType *out,
                    LLVMValueRef *idx, LLVMValueRef *iidx) {
  int off = out->rank - in->rank;
  for (int k = 0; k < in->rank; k++)
    iidx[k] = in->dim[k] == 1 ? cg_i64(cg, 0) : idx[k + off];
}

void cg_set_err(Cg *cg, LLVMValueRef cond, int code) {
  LLVMBuilderRef b = cg->b;
  LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(b));
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(cg->ctx, fn, "b_err");
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(cg->ctx, fn, "b_ok");
  LLVMBuildCondBr(b, cond, bad, ok);
  LLVMPositionBuilderAtEnd(b, bad);
  LLVMValueRef st = LLVMBuildStore(b, cg_i32(cg, code), cg->k->err);
  LLVMSetOrdering(st, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(st, 4);
  LLVMBuildBr(b, ok);
  LLVMPositionBuilderAtEnd(b, ok);
}

/* ------------------------------------------------------- element access */

static int leaf_index(Cg *cg, CgVal *r) {
  CgKern *k = cg->k;
  for (int i = 0; i < k->nleaf; i++)
    if (k->leaf[i] == r) return i;
  return -1;
}

static LLVMValueRef addr_of(Cg *cg, CgVal *c, LLVMValueRef *idx) {
  int li = leaf_index(cg, c);
  NNC_ASSERT(li >= 0);
  LLVMValueRef off = cg_i64(cg, 0);
  for (int k = 0; k < c->v->type.rank; k++) {
    if (c->st[k] == 0) continue;
    LLVMValueRef t = c->st[k] == 1 ? idx[k]
                                   : LLVMBuildNSWMul(cg->b, idx[k], cg_i64(cg, c->st[k]), "");
    off = LLVMBuildNSWAdd(cg->b, off, t, "");
  }
  LLVMTypeRef st = cg_stype(cg, c->v->type.dtype);
  return LLVMBuildInBoundsGEP2(cg->b, st, cg->k->lptr[li], &off, 1, "");
}

LLVMValueRef cg_addr(Cg *cg, const IrValue *v, LLVMValueRef *idx) {
  return addr_of(cg, cg_val(cg, v), idx);
}

static LLVMValueRef load_val(Cg *cg, CgVal *c, LLVMValueRef *idx) {
  DType t = c->v->type.dtype;
  LLVMTypeRef st = cg_stype(cg, t);
  LLVMValueRef x = LLVMBuildLoad2(cg->b, st, addr_of(cg, c, idx), "");
  switch (t) {
  case DT_F16: return LLVMBuildFPExt(cg->b, x, cg->f32, "");
  case DT_BF16: return from_bf16(cg, x);
  case DT_BOOL: return LLVMBuildICmp(cg->b, LLVMIntNE, x, LLVMConstInt(cg->i8, 0, 0), "");
  default: return x;
  }
}

static void store_val(Cg *cg, CgVal *c, LLVMValueRef *idx, LLVMValueRef x) {
  DType t = c->v->type.dtype;
  if (t == DT_F16) x = LLVMBuildFPTrunc(cg->b, x, cg->f16, "");
  else if (t == DT_BF16) x = to_bf16(cg, x);
  else if (t == DT_BOOL) x = LLVMBuildZExt(cg->b, x, cg->i8, "");
  LLVMBuildStore(cg->b, x, addr_of(cg, c, idx));
}

void cg_store(Cg *cg, const IrValue *v, LLVMValueRef *idx, LLVMValueRef x) {
  store_val(cg, cg_val(cg, v), idx, x);
}

/* ORDER OP: the element emitter of every op (scan: cg_scan_elem asserts;
** scans are lowered by cg_scan in the entry function). */
static CgElemFn *const cg_rules[IR_OP_COUNT] = {
    [IR_OP_CONSTANT] = cg_constant, [IR_OP_CAUSAL_MASK] = cg_causal_mask,
    [IR_OP_RAND] = cg_rand, [IR_OP_IOTA] = cg_iota,
    [IR_OP_NEG] = cg_elementwise, [IR_OP_EXP] = cg_elementwise,
    [IR_OP_LOG] = cg_elementwise, [IR_OP_SQRT] = cg_elementwise,
    [IR_OP_RSQRT] = cg_elementwise, [IR_OP_ABS] = cg_elementwise,
    [IR_OP_SIGN] = cg_elementwise, [IR_OP_SIN] = cg_elementwise,
    [IR_OP_COS] = cg_elementwise, [IR_OP_ERF] = cg_elementwise,
    [IR_OP_CAST] = cg_cast, [IR_OP_CLAMP] = cg_elementwise,
    [IR_OP_NOT] = cg_elementwise, [IR_OP_STEP] = cg_elementwise,
    [IR_OP_SIGMOID] = cg_elementwise, [IR_OP_TANH] = cg_elementwise,
    [IR_OP_RELU] = cg_elementwise, [IR_OP_RELU6] = cg_elementwise,
    [IR_OP_LEAKY_RELU] = cg_elementwise, [IR_OP_ELU] = cg_elementwise,
    [IR_OP_SELU] = cg_elementwise, [IR_OP_GELU] = cg_elementwise,
    [IR_OP_GELU_TANH] = cg_elementwise, [IR_OP_SILU] = cg_elementwise,
    [IR_OP_MISH] = cg_elementwise, [IR_OP_SOFTPLUS] = cg_elementwise,
    [IR_OP_SOFTSIGN] = cg_elementwise, [IR_OP_HARD_SIGMOID] = cg_elementwise,
    [IR_OP_HARD_SWISH] = cg_elementwise, [IR_OP_GLU] = cg_glu,
    [IR_OP_SWIGLU] = cg_glu, [IR_OP_GEGLU] = cg_glu,
    [IR_OP_ADD] = cg_elementwise, [IR_OP_SUB] = cg_elementwise,
    [IR_OP_MUL] = cg_elementwise, [IR_OP_DIV] = cg_elementwise,
    [IR_OP_POW] = cg_elementwise, [IR_OP_MAXIMUM] = cg_elementwise,
    [IR_OP_MINIMUM] = cg_elementwise, [IR_OP_EQ] = cg_elementwise,
    [IR_OP_NE] = cg_elementwise, [IR_OP_LT] = cg_elementwise,
    [IR_OP_LE] = cg_elementwise, [IR_OP_GT] = cg_elementwise,
    [IR_OP_GE] = cg_elementwise, [IR_OP_AND] = cg_elementwise,
    [IR_OP_OR] = cg_elementwise, [IR_OP_WHERE] = cg_elementwise,
    [IR_OP_SUM] = cg_reduce, [IR_OP_MEAN] = cg_reduce, [IR_OP_MAX] = cg_reduce,
    [IR_OP_MIN] = cg_reduce, [IR_OP_LOGSUMEXP] = cg_reduce,
    [IR_OP_VAR] = cg_reduce, [IR_OP_ARGMAX] = cg_argmax,
    [IR_OP_RESHAPE] = cg_reshape, [IR_OP_TRANSPOSE] = cg_transpose,
    [IR_OP_BROADCAST] = cg_broadcast, [IR_OP_CONCAT] = cg_concat,
    [IR_OP_SLICE] = cg_slice, [IR_OP_PAD] = cg_pad, [IR_OP_STACK] = cg_stack,
    [IR_OP_ONE_HOT] = cg_one_hot, [IR_OP_GATHER] = cg_gather,
    [IR_OP_MATMUL] = cg_matmul, [IR_OP_SOFTMAX] = cg_softmax,
    [IR_OP_LOG_SOFTMAX] = cg_softmax, [IR_OP_ATTENTION] = cg_attention,
    [IR_OP_CONV1D] = cg_conv, [IR_OP_CONV2D] = cg_conv,
    [IR_OP_CONV_TRANSPOSE2D] = cg_conv_transpose2d,
    [IR_OP_MAX_POOL2D] = cg_pool2d, [IR_OP_AVG_POOL2D] = cg_pool2d,
    [IR_OP_UPSAMPLE_NEAREST] = cg_upsample_nearest,
    [IR_OP_UPSAMPLE_BILINEAR] = cg_upsample_bilinear,
    [IR_OP_PIXEL_SHUFFLE] = cg_pixel_shuffle,
    [IR_OP_PIXEL_UNSHUFFLE] = cg_pixel_shuffle,
    [IR_OP_CROSS_ENTROPY] = cg_cross_entropy, [IR_OP_NLL] = cg_nll,
    [IR_OP_BCE_WITH_LOGITS] = cg_pointwise_loss, [IR_OP_MSE] = cg_pointwise_loss,
    [IR_OP_L1] = cg_pointwise_loss, [IR_OP_HUBER] = cg_pointwise_loss,
    [IR_OP_SOFT_ACCURACY] = cg_soft_accuracy, [IR_OP_SOFT_F1] = cg_soft_f1,
    [IR_OP_ACCURACY] = cg_accuracy, [IR_OP_F1] = cg_f1, [IR_OP_TOP_K] = cg_top_k,
    [IR_OP_SCAN] = cg_scan_elem,
};

/* Ops whose kernel is not a loop over result elements (rows: see
** kernel_rows). */
static CgKernFn *const cg_kernels[IR_OP_COUNT] = {
    [IR_OP_MATMUL] = cg_matmul_kernel,
    [IR_OP_SOFTMAX] = cg_softmax_kernel,
    [IR_OP_LOG_SOFTMAX] = cg_softmax_kernel,
    [IR_OP_CONV1D] = cg_conv_kernel,
    [IR_OP_CONV2D] = cg_conv_kernel,
};

bool cg_has_lowering(IrOp op) {
  return op >= 0 && op < IR_OP_COUNT && cg_rules[op] != NULL;
}

LLVMValueRef cg_elem(Cg *cg, const IrValue *v, LLVMValueRef *idx) {
  CgVal *c = cg_val(cg, v);
  if (!c->inl) return load_val(cg, c, idx);
  NNC_ASSERT(v->kind == IRV_RESULT);
  return cg_rules[v->def->op](cg, v->def, idx);
}

int cg_node_id(Cg *cg, const IrNode *n) { return n->id; }

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

static bool plan_func(Cg *cg, const IrFunc *f, int64_t *arena_bytes) {
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
  number(&pl, b);
  lastuses(&pl, b);
  for (int i = 0; i < b->nrets; i++) touch(&pl, b->rets[i], b, pl.pos + 1);
  allocate(&pl, b);
  *arena_bytes = pl.peak;
  return !cg->failed;
}

/* -------------------------------------------------------------- kernels */

static void add_leaf(Cg *cg, CgKern *k, CgVal *c) {
  for (int i = 0; i < k->nleaf; i++)
    if (k->leaf[i] == c) return;
  if (k->nleaf == k->capleaf) {
    int nc = k->capleaf ? 2 * k->capleaf : 16;
    CgVal **nl = ARENA_ARRAY(cg->a, CgVal *, nc);
    if (k->nleaf) memcpy(nl, k->leaf, sizeof(CgVal *) * (size_t)k->nleaf);
    k->leaf = nl;
    k->capleaf = nc;
  }
  k->leaf[k->nleaf++] = c;
}

static void collect(Cg *cg, CgKern *k, const IrValue *v) {
  CgVal *c = cg_val(cg, v);
  if (!c->inl) {
    add_leaf(cg, k, c);
    return;
  }
  for (int i = 0; i < v->def->nargs; i++) collect(cg, k, v->def->args[i]);
}

static void fused_name(Cg *cg, const IrValue *v, char *buf, size_t cap, int depth) {
  if (depth > 0) {
    CgVal *c = cg_val(cg, v);
    if (!c->inl || v->def->op == IR_OP_CONSTANT) return;
  }
  size_t len = strlen(buf);
  if (len + 24 < cap)
    snprintf(buf + len, cap - len, "_%s", ir_op_info[v->def->op].name);
  for (int i = 0; i < v->def->nargs; i++)
    if (v->def->args[i]->kind == IRV_RESULT)
      fused_name(cg, v->def->args[i], buf, cap, depth + 1);
}

/* Rows of the default kernel: all dims but the last, or the elements of a
** rank-1 result (so that a vector result, e.g. a bias gradient, splits
** across threads too). */
static int64_t elem_rows(const IrType *t) {
  return t->rank == 1 ? t->dim[0] : cg_rows(t);
}

static int64_t kernel_rows(const IrNode *n) {
  const IrType *t = &n->res[0]->type;
  if (n->op == IR_OP_MATMUL) {
    const IrType *b = &n->args[1]->type;
    return ir_type_numel(t) / (b->rank >= 2 ? b->dim[b->rank - 1] : 1);
  }
  if (n->op == IR_OP_SOFTMAX || n->op == IR_OP_LOG_SOFTMAX) {
    int ax = cg_axis(ir_attr_int(&n->attrs, "axis", -1), t->rank);
    return ir_type_numel(t) / t->dim[ax];
  }
  if (cg_kernels[n->op]) return cg_rows(t);
  return elem_rows(t);
}

/* Work per result element (for the parallel threshold). */
static int64_t elem_work(const IrNode *n) {
  const IrType *a = n->nargs ? &n->args[0]->type : NULL;
  switch (n->op) {
  case IR_OP_MATMUL: return a->rank ? a->dim[a->rank - 1] : 1;
  case IR_OP_CONV1D: case IR_OP_CONV2D: case IR_OP_CONV_TRANSPOSE2D:
    return ir_type_numel(&n->args[1]->type) / n->args[1]->type.dim[0] + 1;
  case IR_OP_ATTENTION: return 64;
  default:
    if (ir_op_info[n->op].flags & OPF_REDUCE)
      return ir_type_numel(a) / ir_type_numel(&n->res[0]->type) + 1;
    return 1;
  }
}

/* The default kernel body: rows [begin, end) of the result, each a
** contiguous loop over the last dimension (rank 1: the elements). */
static void loop_kernel(Cg *cg, const IrNode *n, CgVal *out, const IrValue *src,
                        LLVMValueRef begin, LLVMValueRef end) {
  const IrType *t = &out->v->type;
  LLVMValueRef idx[IR_MAX_RANK + 1];
  CgLoop lr, lc;
  LLVMValueRef row = cg_loop_begin(cg, &lr, begin, end);
  bool inner = t->rank > 1;
  if (t->rank == 1) idx[0] = row;
  else cg_row_index(cg, t, row, idx);
  if (inner)
    idx[t->rank - 1] = cg_loop_begin(cg, &lc, cg_i64(cg, 0), cg_i64(cg, cg_cols(t)));
  LLVMValueRef x = src ? cg_elem(cg, src, idx) : cg_rules[n->op](cg, n, idx);
  store_val(cg, out, idx, x);
  if (inner) cg_loop_end(cg, &lc);
  cg_loop_end(cg, &lr);
}

static LLVMValueRef nnrt_pfor(Cg *cg, LLVMTypeRef *fty) {
  LLVMTypeRef bp[3] = {cg->i64, cg->i64, cg->ptr};
  LLVMTypeRef p[3] = {cg->i64, cg->ptr, cg->ptr};
  (void)bp;
  *fty = LLVMFunctionType(cg->vd, p, 3, false);
  LLVMValueRef f = LLVMGetNamedFunction(cg->mod, "nnrt_parallel_for");
  if (!f) f = LLVMAddFunction(cg->mod, "nnrt_parallel_for", *fty);
  return f;
}

static void add_attr(Cg *cg, LLVMValueRef f, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(f, idx, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
}

/* Create the kernel function, emit its body (n's rule, or a copy of src
** into out when n is NULL), and call it from the entry function. */
static void emit_kernel(Cg *cg, const char *name, const IrNode *n, CgVal *out,
                        const IrValue *src, int64_t rows, int64_t work) {
  CgKern *k = ARENA_NEW(cg->a, CgKern);
  add_leaf(cg, k, out);
  if (src) collect(cg, k, src);
  else
    for (int i = 0; i < n->nargs; i++) collect(cg, k, n->args[i]);
  int np = 2 + k->nleaf + 3;
  k->lptr = ARENA_ARRAY(cg->a, LLVMValueRef, k->nleaf + 1);
  LLVMTypeRef *pt = ARENA_ARRAY(cg->a, LLVMTypeRef, np);
  pt[0] = pt[1] = cg->i64;
  for (int i = 0; i < k->nleaf + 1; i++) pt[2 + i] = cg->ptr;
  pt[np - 2] = pt[np - 1] = cg->i64;
  LLVMTypeRef fty = LLVMFunctionType(cg->vd, pt, (unsigned)np, false);
  k->fn = LLVMAddFunction(cg->mod, name, fty);
  LLVMSetLinkage(k->fn, LLVMInternalLinkage);
  add_attr(cg, k->fn, LLVMAttributeFunctionIndex, "noinline");
  add_attr(cg, k->fn, LLVMAttributeFunctionIndex, "nounwind");
  for (int i = 0; i < k->nleaf; i++) {
    k->lptr[i] = LLVMGetParam(k->fn, (unsigned)(2 + i));
    add_attr(cg, k->fn, (unsigned)(3 + i), "noalias");
  }
  k->err = LLVMGetParam(k->fn, (unsigned)(2 + k->nleaf));
  k->seed = LLVMGetParam(k->fn, (unsigned)(np - 2));
  k->step = LLVMGetParam(k->fn, (unsigned)(np - 1));
  k->entry = LLVMAppendBasicBlockInContext(cg->ctx, k->fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, k->entry);
  cg->k = k;
  LLVMValueRef begin = LLVMGetParam(k->fn, 0), end = LLVMGetParam(k->fn, 1);
  if (!src && cg_kernels[n->op]) cg_kernels[n->op](cg, n, begin, end);
  else loop_kernel(cg, n, out, src, begin, end);
  LLVMBuildRetVoid(cg->b);
  cg->k = NULL;

  /* the call */
  LLVMValueRef *args = ARENA_ARRAY(cg->a, LLVMValueRef, np);
  for (int i = 0; i < k->nleaf; i++) args[2 + i] = k->leaf[i]->ptr;
  args[2 + k->nleaf] = cg->eerr;
  args[np - 2] = cg->eseed;
  args[np - 1] = cg->estep;
  int64_t th = cg->par_threshold;
  if (th < 0 || rows < 2 || ir_type_numel(&out->v->type) * work <= th) {
    args[0] = cg_i64(cg, 0);
    args[1] = cg_i64(cg, rows);
    LLVMBuildCall2(cg->eb, fty, k->fn, args, (unsigned)np, "");
    return;
  }
  /* parallel: ctx = {ptrs..., err, seed, step}; body(begin, end, ctx) */
  int nf = np - 2;
  LLVMTypeRef *ft = pt + 2;
  LLVMTypeRef sty = LLVMStructTypeInContext(cg->ctx, ft, (unsigned)nf, false);
  LLVMTypeRef bpt[3] = {cg->i64, cg->i64, cg->ptr};
  LLVMTypeRef bty = LLVMFunctionType(cg->vd, bpt, 3, false);
  char bname[300];
  snprintf(bname, sizeof bname, "%s.body", name);
  LLVMValueRef body = LLVMAddFunction(cg->mod, bname, bty);
  LLVMSetLinkage(body, LLVMInternalLinkage);
  add_attr(cg, body, LLVMAttributeFunctionIndex, "nounwind");
  LLVMBuilderRef bb = LLVMCreateBuilderInContext(cg->ctx);
  LLVMPositionBuilderAtEnd(bb, LLVMAppendBasicBlockInContext(cg->ctx, body, "entry"));
  LLVMValueRef *cargs = ARENA_ARRAY(cg->a, LLVMValueRef, np);
  cargs[0] = LLVMGetParam(body, 0);
  cargs[1] = LLVMGetParam(body, 1);
  for (int i = 0; i < nf; i++) {
    LLVMValueRef fp = LLVMBuildStructGEP2(bb, sty, LLVMGetParam(body, 2), (unsigned)i, "");
    cargs[2 + i] = LLVMBuildLoad2(bb, ft[i], fp, "");
  }
  LLVMBuildCall2(bb, fty, k->fn, cargs, (unsigned)np, "");
  LLVMBuildRetVoid(bb);
  LLVMDisposeBuilder(bb);
  LLVMValueRef ctx = cg_alloca(cg, sty, "v_ctx");
  for (int i = 0; i < nf; i++)
    LLVMBuildStore(cg->eb, args[2 + i], LLVMBuildStructGEP2(cg->eb, sty, ctx, (unsigned)i, ""));
  LLVMTypeRef pfty;
  LLVMValueRef pf = nnrt_pfor(cg, &pfty);
  LLVMValueRef pargs[3] = {cg_i64(cg, rows), body, ctx};
  LLVMBuildCall2(cg->eb, pfty, pf, pargs, 3, "");
}

void cg_emit_copy(Cg *cg, const char *name, const IrValue *src, CgVal *dst) {
  emit_kernel(cg, name, NULL, dst, src, elem_rows(&dst->v->type), 1);
}

/* The base pointer of a value in the entry function. */
static void bind_ptr(Cg *cg, CgVal *c) {
  LLVMBuilderRef b = cg->eb;
  LLVMValueRef base = NULL, i;
  switch (c->kind) {
  case CGB_ARENA:
    i = cg_i64(cg, c->off);
    c->ptr = LLVMBuildInBoundsGEP2(b, cg->i8, cg->earena, &i, 1, "");
    return;
  case CGB_INPUT: base = cg->einputs; break;
  case CGB_GLOBAL: base = cg->eglobals; break;
  case CGB_OUTPUT: base = cg->eoutputs; break;
  case CGB_VIEW:
    if (c->base) {
      i = cg_i64(cg, c->vofs * ir_dtype_size(c->v->type.dtype));
      c->ptr = LLVMBuildInBoundsGEP2(b, cg->i8, c->base->ptr, &i, 1, "");
    } else if (c->root != c) {
      c->ptr = c->root->ptr;
    }
    return;
  default: return;
  }
  i = cg_i64(cg, c->index);
  c->ptr = LLVMBuildLoad2(b, cg->ptr, LLVMBuildInBoundsGEP2(b, cg->ptr, base, &i, 1, ""), "");
}

static void emit_node(Cg *cg, const IrNode *n) {
  if (n->op == IR_OP_SCAN) {
    cg_scan(cg, n);
    return;
  }
  CgVal *c = cg_val(cg, n->res[0]);
  if (c->inl) return;
  bind_ptr(cg, c);
  if (c->kind == CGB_VIEW) return;
  if (c->gemm) {
    cg_gemm_emit(cg, n, c, cg->scratch[n->id][0]);
    return;
  }
  char name[256];
  snprintf(name, sizeof name, "k%d", n->id);
  bool fused = false;
  for (int i = 0; i < n->nargs; i++)
    if (cg_val(cg, n->args[i])->inl && n->args[i]->def->op != IR_OP_CONSTANT)
      fused = true;
  if (fused) {
    strcat(name, "_fused");
    fused_name(cg, n->res[0], name, sizeof name - 8, 0);
  } else {
    snprintf(name + strlen(name), sizeof name - strlen(name), "_%s",
             ir_op_info[n->op].name);
  }
  if (LLVMGetNamedFunction(cg->mod, name)) {
    size_t l = strlen(name);
    snprintf(name + l, sizeof name - l, ".%d", n->id);
  }
  emit_kernel(cg, name, n, c, NULL, kernel_rows(n), elem_work(n));
}

void cg_emit_block(Cg *cg, const IrBlock *b) {
  for (const IrNode *n = b->first; n && !cg->failed; n = n->next) emit_node(cg, n);
}

static bool type_ok(Cg *cg, const IrBlock *b) {
  for (const IrNode *n = b->first; n; n = n->next) {
    if (!cg_rules[n->op]) {
      cg_fail(cg, n, "no lowering");
      return false;
    }
    if (n->body && !type_ok(cg, n->body)) return false;
  }
  return true;
}

static void emit_func(Cg *cg, const IrFunc *f, CgFuncInfo *info) {
  int64_t bytes = 0;
  map_init(cg->a, cg->vals, 256);
  if (!type_ok(cg, f->body) || !plan_func(cg, f, &bytes)) return;
  info->arena_bytes = (uint64_t)bytes;
  LLVMTypeRef p[6] = {cg->ptr, cg->ptr, cg->ptr, cg->ptr, cg->i64, cg->i64};
  LLVMTypeRef fty = LLVMFunctionType(cg->i32, p, 6, false);
  cg->efn = LLVMAddFunction(cg->mod, info->symbol, fty);
  add_attr(cg, cg->efn, LLVMAttributeFunctionIndex, "nounwind");
  LLVMPositionBuilderAtEnd(cg->eb, LLVMAppendBasicBlockInContext(cg->ctx, cg->efn, "entry"));
  cg->earena = LLVMGetParam(cg->efn, 0);
  cg->eglobals = LLVMGetParam(cg->efn, 1);
  cg->einputs = LLVMGetParam(cg->efn, 2);
  cg->eoutputs = LLVMGetParam(cg->efn, 3);
  cg->eseed = LLVMGetParam(cg->efn, 4);
  cg->estep = LLVMGetParam(cg->efn, 5);
  cg->eerr = cg_alloca(cg, cg->i32, "v_err");
  LLVMBuildStore(cg->eb, cg_i32(cg, 0), cg->eerr);
  for (const IrGlobal *g = cg->m->globals; g; g = g->next) {
    CgVal *c = cg_val(cg, g->value);
    if (c->nuses || c->returned) bind_ptr(cg, c);
  }
  for (int i = 0; i < f->body->nargs; i++) bind_ptr(cg, cg_val(cg, f->body->args[i]));
  cg_emit_block(cg, f->body);
  for (int i = 0; i < f->body->nrets && !cg->failed; i++) {
    const IrValue *r = f->body->rets[i];
    CgVal *c = cg_val(cg, r);
    if (c->kind == CGB_OUTPUT && c->index == i) continue;
    CgVal *o = ARENA_NEW(cg->a, CgVal);
    *o = *cg_val(cg, r);
    o->root = o;
    o->inl = false;
    o->kind = CGB_OUTPUT;
    o->index = i;
    int64_t st = 1;
    for (int k = r->type.rank - 1; k >= 0; k--) {
      o->st[k] = st;
      st *= r->type.dim[k];
    }
    bind_ptr(cg, o);
    char name[64];
    snprintf(name, sizeof name, "k_ret%d_copy", i);
    cg_emit_copy(cg, name, r, o);
  }
  LLVMValueRef e = LLVMBuildLoad2(cg->eb, cg->i32, cg->eerr, "");
  LLVMSetOrdering(e, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(e, 4);
  LLVMBuildRet(cg->eb, e);
}

bool cg_lower_module(const IrModule *m, LLVMModuleRef mod,
                     LLVMTargetMachineRef tm, const CgOpts *o, Arena *a,
                     CgResult *res, Diag *d) {
  CgOpts dflt = {0};
  Cg cg = {.m = m, .o = o ? o : &dflt, .a = a, .diag = d, .mod = mod};
  cg.ctx = LLVMGetModuleContext(mod);
  cg.b = LLVMCreateBuilderInContext(cg.ctx);
  cg.eb = LLVMCreateBuilderInContext(cg.ctx);
  cg.i1 = LLVMInt1TypeInContext(cg.ctx);
  cg.i8 = LLVMInt8TypeInContext(cg.ctx);
  cg.i16 = LLVMInt16TypeInContext(cg.ctx);
  cg.i32 = LLVMInt32TypeInContext(cg.ctx);
  cg.i64 = LLVMInt64TypeInContext(cg.ctx);
  cg.f16 = LLVMHalfTypeInContext(cg.ctx);
  cg.bf16 = LLVMBFloatTypeInContext(cg.ctx);
  cg.f32 = LLVMFloatTypeInContext(cg.ctx);
  cg.f64 = LLVMDoubleTypeInContext(cg.ctx);
  cg.ptr = LLVMPointerTypeInContext(cg.ctx, 0);
  cg.vd = LLVMVoidTypeInContext(cg.ctx);
  cg.vals = ARENA_NEW(a, CgMap);
  cg.par_threshold = cg.o->par_threshold ? cg.o->par_threshold : 32768;
  cg.prefix = cg.o->prefix ? cg.o->prefix : m->name ? m->name : "model";
  cg.vec_floats = 4;
  cg.vec_regs = 16;
  if (tm) {
    char *tr = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm);
    char *ft = LLVMGetTargetMachineFeatureString(tm);
    bool fma;
    cg_target_vector_shape(tr, cpu, ft, &cg.vec_floats, &cg.vec_regs, &fma);
    LLVMDisposeMessage(tr);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(ft);
  }
  if (tm) {
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMSetTarget(mod, triple);
    LLVMDisposeMessage(triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, td);
    LLVMDisposeTargetData(td);
  }
  int nf = 0;
  for (const IrFunc *f = m->funcs; f; f = f->next) nf++;
  res->nfuncs = nf;
  res->funcs = ARENA_ARRAY(a, CgFuncInfo, nf + 1);
  res->arena_bytes = 0;
  int i = 0;
  for (const IrFunc *f = m->funcs; f && !cg.failed; f = f->next, i++) {
    CgFuncInfo *fi = &res->funcs[i];
    fi->name = f->name;
    fi->symbol = arena_printf(a, "%s_%s", cg.prefix, f->name);
    emit_func(&cg, f, fi);
    if (fi->arena_bytes > res->arena_bytes) res->arena_bytes = fi->arena_bytes;
  }
  LLVMDisposeBuilder(cg.b);
  LLVMDisposeBuilder(cg.eb);
  if (cg.failed) return false;
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    diag_error(d, (SrcLoc){0}, "backend: invalid LLVM module: %s", msg);
    LLVMDisposeMessage(msg);
    return false;
  }
  LLVMDisposeMessage(msg);
  return true;
}

bool cg_optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level,
                 Diag *d) {
  char pipe[32];
  snprintf(pipe, sizeof pipe, "default<O%d>", level < 0 ? 0 : level > 3 ? 3 : level);
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(po, level >= 2);
  LLVMPassBuilderOptionsSetSLPVectorization(po, level >= 2);
  LLVMErrorRef e = LLVMRunPasses(mod, pipe, tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *msg = LLVMGetErrorMessage(e);
    diag_error(d, (SrcLoc){0}, "backend: LLVM passes failed: %s", msg);
    LLVMDisposeErrorMessage(msg);
    return false;
  }
  return true;
}

/*
** This file contains the helpers of the lowering that do not depend on the
** plan: the IrValue -> CgVal map, LLVM constants and types of the dtypes
** (compute and storage types, f16/bf16 conversions), the interpreter's
** conversion rules, intrinsic and libm calls, fast-math flags, counted
** loops, index arithmetic and the run-time error flag.
*/
#include <stdio.h>
#include <string.h>

#include "cg_int.h"

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
LLVMValueRef cg_to_bf16(Cg *cg, LLVMValueRef x) {
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

LLVMValueRef cg_from_bf16(Cg *cg, LLVMValueRef h) {
  LLVMValueRef w = LLVMBuildShl(cg->b, LLVMBuildZExt(cg->b, h, cg->i32, ""),
                                cg_i32(cg, 16), "");
  return LLVMBuildBitCast(cg->b, w, cg->f32, "");
}

LLVMValueRef cg_round(Cg *cg, DType t, LLVMValueRef x) {
  if (t == DT_F16)
    return LLVMBuildFPExt(cg->b, LLVMBuildFPTrunc(cg->b, x, cg->f16, ""),
                          cg->f32, "");
  if (t == DT_BF16) return cg_from_bf16(cg, cg_to_bf16(cg, x));
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

static LLVMValueRef intrinsic(Cg *cg, const char *name, LLVMTypeRef t) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  NNC_ASSERT(id != 0);
  LLVMTypeRef ov[1] = {t};
  return LLVMGetIntrinsicDeclaration(cg->mod, id, ov, 1);
}

LLVMValueRef cg_intr1(Cg *cg, const char *name, LLVMValueRef x) {
  LLVMTypeRef t = LLVMTypeOf(x), ov[1] = {t};
  LLVMValueRef f = intrinsic(cg, name, t);
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, ov, 1);
  return cg_fm(LLVMBuildCall2(cg->b, fty, f, &x, 1, ""), false);
}

LLVMValueRef cg_intr2(Cg *cg, const char *name, LLVMValueRef x,
                      LLVMValueRef y) {
  LLVMTypeRef t = LLVMTypeOf(x), ov[1] = {t};
  LLVMValueRef f = intrinsic(cg, name, t), args[2] = {x, y};
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

void cg_vals_reset(Cg *cg) {
  if (!cg->vals) cg->vals = ARENA_NEW(cg->a, CgMap);
  map_init(cg->a, cg->vals, 256);
}


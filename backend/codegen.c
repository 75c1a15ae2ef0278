/*
** This file contains the module-level part of the lowering of the tensor IR
** to LLVM IR: the rule table indexed by op (the element emitter of every
** op, and the ops with a kernel of their own), element loads and stores,
** the kernels (one internal function per materialised node, a loop nest
** over its result, run through nnrt_parallel_for when large), the entry
** function of each IR function, and the optimisation pipeline.  The plan
** of the values (fusion, views, memory) is in cg_plan.c, the helpers in
** cg_util.c, the element emitters by family in cg_*.c.
*/
#include <stdio.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "cg_int.h"
#include "target.h"

/* ------------------------------------------------------- element access */

static int leaf_index(Cg *cg, CgVal *r) {
  CgKern *k = cg->k;
  if (r->alias) r = r->alias; /* one pointer for one memory */
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
  case DT_BF16: return cg_from_bf16(cg, x);
  case DT_BOOL: return LLVMBuildICmp(cg->b, LLVMIntNE, x, LLVMConstInt(cg->i8, 0, 0), "");
  default: return x;
  }
}

static void store_val(Cg *cg, CgVal *c, LLVMValueRef *idx, LLVMValueRef x) {
  DType t = c->v->type.dtype;
  if (t == DT_F16) x = LLVMBuildFPTrunc(cg->b, x, cg->f16, "");
  else if (t == DT_BF16) x = cg_to_bf16(cg, x);
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
    [IR_OP_MAX_POOL2D_GRAD] = cg_max_pool2d_grad,
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
    [IR_OP_ATTENTION] = cg_attention_kernel,
    [IR_OP_MAX_POOL2D_GRAD] = cg_max_pool2d_grad_kernel,
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


/* -------------------------------------------------------------- kernels */

static void add_leaf(Cg *cg, CgKern *k, CgVal *c) {
  if (c->alias) c = c->alias;
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
  /* every load of the element before any store: a value written in place
  ** over a global is read here at this index (cg_plan.c, inplace) */
  LLVMValueRef *ex = ARENA_ARRAY(cg->a, LLVMValueRef, out->nextra + 1);
  for (int i = 0; i < out->nextra; i++) ex[i] = cg_elem(cg, out->extra[i]->v, idx);
  store_val(cg, out, idx, x);
  for (int i = 0; i < out->nextra; i++) store_val(cg, out->extra[i], idx, ex[i]);
  if (inner) cg_loop_end(cg, &lc);
  cg_loop_end(cg, &lr);
}

static LLVMValueRef nnrt_pfor(Cg *cg, LLVMTypeRef *fty) {
  LLVMTypeRef p[3] = {cg->i64, cg->ptr, cg->ptr};
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
  for (int i = 0; i < out->nextra; i++) add_leaf(cg, k, out->extra[i]);
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

/* In the entry function: return the error code now if one is set (before
** the first kernel that writes a global in place). */
static void return_on_error(Cg *cg) {
  LLVMValueRef e = LLVMBuildLoad2(cg->eb, cg->i32, cg->eerr, "");
  LLVMSetOrdering(e, LLVMAtomicOrderingMonotonic);
  LLVMSetAlignment(e, 4);
  LLVMBasicBlockRef fail = LLVMAppendBasicBlockInContext(cg->ctx, cg->efn, "fail");
  LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(cg->ctx, cg->efn, "update");
  LLVMBuildCondBr(cg->eb, LLVMBuildICmp(cg->eb, LLVMIntNE, e, cg_i32(cg, 0), ""), fail, go);
  LLVMPositionBuilderAtEnd(cg->eb, fail);
  LLVMBuildRet(cg->eb, e);
  LLVMPositionBuilderAtEnd(cg->eb, go);
}

static void emit_node(Cg *cg, const IrNode *n) {
  if (n->op == IR_OP_SCAN) {
    cg_scan(cg, n);
    return;
  }
  CgVal *c = cg_val(cg, n->res[0]);
  if (c->inl) {
    if (c->coout) bind_ptr(cg, c); /* stored by a later kernel */
    return;
  }
  bind_ptr(cg, c);
  if (n == cg->first_inplace) return_on_error(cg);
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
    snprintf(name + l, sizeof name - l, ".%s", cg->fname); /* k3_add.loss */
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
  cg->fname = f->name;
  cg_vals_reset(cg);
  cg->inplace = ARENA_ARRAY(cg->a, bool, f->body->nrets + 1);
  if (!type_ok(cg, f->body) || !cg_plan_func(cg, f, &bytes)) return;
  info->arena_bytes = (uint64_t)bytes;
  info->inplace = cg->first_inplace ? cg->inplace : NULL;
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
    bind_ptr(cg, c); /* unused ones are dead loads */
  }
  for (int i = 0; i < f->body->nargs; i++) bind_ptr(cg, cg_val(cg, f->body->args[i]));
  cg_emit_block(cg, f->body);
  for (int i = 0; i < f->body->nrets && !cg->failed; i++) {
    const IrValue *r = f->body->rets[i];
    CgVal *c = cg_val(cg, r);
    if ((c->kind == CGB_OUTPUT && c->index == i) || cg->inplace[i]) continue;
    CgVal *o = ARENA_NEW(cg->a, CgVal);
    *o = *cg_val(cg, r);
    o->root = o;
    o->inl = false;
    o->alias = o->coout = NULL;
    o->nextra = 0;
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

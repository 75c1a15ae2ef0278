/*
** This file contains the model descriptor of an emitted object: the
** NnrtModel constant (runtime/nnrt.h) that the runtime's command line and
** the generated header read, built as LLVM constants in the module, and
** the entry wrapper it points at:
**
**   const NnrtModel P_desc = {
**     NNRT_ABI_VERSION, "P", arena_bytes, param_bytes,
**     ninputs, noutputs, nparams, nstates, inputs, outputs, params, states,
**     P_forward_entry, NULL, NULL, flops_forward, seed };
**
**   int32_t P_forward_entry(NnrtInstance *ctx, void *const *in,
**                           void *const *out) {
**     void *g[NGLOBALS] = { ctx->params + off_0, ... };   (module order)
**     return P_forward(ctx->arena, g, in, out, ctx->seed, ctx->step);
**   }
**
** The LLVM struct types below are literal (unpacked) structs whose natural
** layout is the C layout of the runtime's structs on every 64-bit target
** LLVM supports (pointers and size_t 8 bytes, int 4).  ORDER NNRT: they
** follow NnrtTensorDesc, NnrtInitArg, NnrtModel and NnrtInstance of
** runtime/nnrt.h field by field.
**
** Parameters then states take 64-aligned offsets in the parameter block,
** in module order within each kind.
*/
#include <string.h>

#include "descriptor_train.h"
#include "emit.h"

#define ALIGN 64
#define DESC_ABI_VERSION 2 /* NNRT_ABI_VERSION */
#define DESC_MAX_RANK 8    /* NNRT_MAX_RANK */

typedef struct Ty {
  LLVMContextRef c;
  LLVMTypeRef i32, i64, f64, ptr, dims, tdesc, iarg, model, inst;
} Ty;

static void types(Ty *t, LLVMContextRef c) {
  t->c = c;
  t->i32 = LLVMInt32TypeInContext(c);
  t->i64 = LLVMInt64TypeInContext(c);
  t->f64 = LLVMDoubleTypeInContext(c);
  t->ptr = LLVMPointerTypeInContext(c, 0);
  t->dims = LLVMArrayType2(t->i64, DESC_MAX_RANK);
  /* NnrtTensorDesc: name dtype rank dims batch_dim init init_args
     ninit_args offset */
  LLVMTypeRef td[] = {t->ptr, t->i32, t->i32, t->dims, t->i32,
                      t->ptr, t->ptr, t->i32, t->i64};
  t->tdesc = LLVMStructTypeInContext(c, td, 9, false);
  LLVMTypeRef ia[] = {t->ptr, t->f64}; /* NnrtInitArg: name value */
  t->iarg = LLVMStructTypeInContext(c, ia, 2, false);
  /* NnrtModel */
  LLVMTypeRef md[] = {t->i32, t->ptr, t->i64, t->i64, t->i32, t->i32,
                      t->i32, t->i32, t->ptr, t->ptr, t->ptr, t->ptr,
                      t->ptr, t->ptr, t->ptr, t->i64, t->i64};
  t->model = LLVMStructTypeInContext(c, md, 17, false);
  /* NnrtInstance: model arena params seed step */
  LLVMTypeRef in[] = {t->ptr, t->ptr, t->ptr, t->i64, t->i64};
  t->inst = LLVMStructTypeInContext(c, in, 5, false);
}

static LLVMValueRef ci32(Ty *t, int64_t v) {
  return LLVMConstInt(t->i32, (unsigned long long)v, true);
}
static LLVMValueRef ci64(Ty *t, int64_t v) {
  return LLVMConstInt(t->i64, (unsigned long long)v, true);
}

/* A private constant global of initializer v. */
static LLVMValueRef global(EmitJob *j, const char *name, LLVMValueRef v) {
  LLVMValueRef g = LLVMAddGlobal(j->mod, LLVMTypeOf(v), name);
  LLVMSetInitializer(g, v);
  LLVMSetGlobalConstant(g, true);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddr(g, true);
  return g;
}

static LLVMValueRef cstr(EmitJob *j, const char *s) {
  LLVMValueRef v = LLVMConstStringInContext(j->ctx, s, (unsigned)strlen(s), false);
  return global(j, "desc.str", v);
}

/* -------------------------------------------------------------- layout */

static uint64_t type_bytes(const IrType *t) {
  return (uint64_t)(ir_type_numel(t) * ir_dtype_size(t->dtype));
}

void emit_layout(EmitJob *j) {
  int n = 0;
  for (const IrGlobal *g = j->m->globals; g; g = g->next) n++;
  j->offsets = ARENA_ARRAY(j->a, uint64_t, n + 1);
  uint64_t off = 0;
  for (int pass = 0; pass < 2; pass++) {
    int i = 0;
    for (const IrGlobal *g = j->m->globals; g; g = g->next, i++) {
      if ((g->kind == IRG_PARAM) != (pass == 0)) continue;
      j->offsets[i] = off;
      off += (type_bytes(&g->type) + ALIGN - 1) / ALIGN * ALIGN;
      if (g->kind == IRG_PARAM) j->sizes.param_count += ir_type_numel(&g->type);
    }
  }
  j->sizes.param_bytes = off;
  j->sizes.flops_forward = j->forward ? emit_flops(j->forward) : 0;
}

/* --------------------------------------------------------------- flops */

static int64_t block_flops(const IrBlock *b);

/* Trip count of a scan: its sequences' length along axes[0], else the
** `length` attribute. */
static int64_t scan_trips(const IrNode *n) {
  int nc = (int)ir_attr_int(&n->attrs, "ncarry", 0);
  const IrAttr *ax = ir_attr_get(&n->attrs, "axes");
  if (n->nargs > nc && ax && ax->n > 0) {
    const IrType *t = &n->args[nc]->type;
    int64_t a = ax->ints[0] < 0 ? ax->ints[0] + t->rank : ax->ints[0];
    if (a >= 0 && a < t->rank) return t->dim[a];
  }
  return ir_attr_int(&n->attrs, "length", 1);
}

/* Multiply-adds count two; every other op one per result element. */
static int64_t node_flops(const IrNode *n) {
  const IrType *r = n->nres ? &n->res[0]->type : NULL;
  int64_t out = r ? ir_type_numel(r) : 0;
  switch (n->op) {
  case IR_OP_MATMUL: {
    const IrType *a = &n->args[0]->type;
    return 2 * out * (a->rank ? a->dim[a->rank - 1] : 1);
  }
  case IR_OP_CONV1D:
  case IR_OP_CONV2D: {
    const IrType *w = &n->args[1]->type;
    return w->dim[0] ? 2 * out * (ir_type_numel(w) / w->dim[0]) : 0;
  }
  case IR_OP_CONV_TRANSPOSE2D: {
    const IrType *x = &n->args[0]->type, *w = &n->args[1]->type;
    return w->dim[0] ? 2 * ir_type_numel(x) * (ir_type_numel(w) / w->dim[0]) : 0;
  }
  case IR_OP_ATTENTION: {
    const IrType *k = &n->args[1]->type;
    return 4 * ir_type_numel(&n->args[0]->type) * (k->rank >= 2 ? k->dim[k->rank - 2] : 1);
  }
  case IR_OP_SCAN:
    return scan_trips(n) * block_flops(n->body);
  case IR_OP_RESHAPE:
  case IR_OP_CONSTANT:
    return 0;
  default:
    return out;
  }
}

static int64_t block_flops(const IrBlock *b) {
  int64_t s = 0;
  for (const IrNode *n = b->first; n; n = n->next) s += node_flops(n);
  return s;
}

int64_t emit_flops(const IrFunc *f) { return block_flops(f->body); }

/* ---------------------------------------------------------- descriptor */

/* The batch axis of an input or output: axis 0 when it carries a
** dimension symbol (B), else none. */
static int batch_dim(const IrType *t) {
  return t->rank > 0 && t->sym[0] != IR_NO_SYM ? 0 : -1;
}

static LLVMValueRef tensor_desc(EmitJob *j, Ty *t, const char *name,
                                const IrType *ty, int bdim, const IrGlobal *g,
                                uint64_t off) {
  LLVMValueRef dims[DESC_MAX_RANK];
  for (int k = 0; k < DESC_MAX_RANK; k++) dims[k] = ci64(t, k < ty->rank ? ty->dim[k] : 0);
  LLVMValueRef init = LLVMConstPointerNull(t->ptr), args = init;
  int nargs = 0;
  if (g) {
    if (g->init) init = cstr(j, g->init);
    LLVMValueRef av[64];
    for (int i = 0; i < g->init_attrs.n && nargs < 64; i++) {
      const IrAttr *at = &g->init_attrs.v[i];
      double v = at->kind == ATTR_FLOAT ? at->f : (double)at->i;
      if (at->kind != ATTR_FLOAT && at->kind != ATTR_INT && at->kind != ATTR_BOOL)
        continue;
      LLVMValueRef f[] = {cstr(j, at->name), LLVMConstReal(t->f64, v)};
      av[nargs++] = LLVMConstStructInContext(t->c, f, 2, false);
    }
    if (nargs) args = global(j, "desc.init_args", LLVMConstArray2(t->iarg, av, (uint64_t)nargs));
  }
  LLVMValueRef f[] = {cstr(j, name),
                      ci32(t, ty->dtype),
                      ci32(t, ty->rank),
                      LLVMConstArray2(t->i64, dims, DESC_MAX_RANK),
                      ci32(t, bdim),
                      init,
                      args,
                      ci32(t, nargs),
                      ci64(t, (int64_t)off)};
  return LLVMConstStructInContext(t->c, f, 9, false);
}

/* An array of n descriptors, or NULL when n is 0. */
static LLVMValueRef desc_array(EmitJob *j, Ty *t, const char *name,
                               LLVMValueRef *v, int n) {
  if (!n) return LLVMConstPointerNull(t->ptr);
  return global(j, name, LLVMConstArray2(t->tdesc, v, (uint64_t)n));
}

static LLVMValueRef io_list(EmitJob *j, Ty *t, bool outputs, int *count) {
  const IrBlock *b = j->forward ? j->forward->body : NULL;
  int n = !b ? 0 : outputs ? b->nrets : b->nargs;
  LLVMValueRef *v = ARENA_ARRAY(j->a, LLVMValueRef, n + 1);
  for (int i = 0; i < n; i++) {
    const IrValue *x = outputs ? b->rets[i] : b->args[i];
    const char *name = outputs ? j->forward->ret_names[i] : x->name;
    if (!name) name = arena_printf(j->a, "%s%d", outputs ? "out" : "in", i);
    v[i] = tensor_desc(j, t, name, &x->type, batch_dim(&x->type), NULL, 0);
  }
  *count = n;
  return desc_array(j, t, outputs ? "desc.outputs" : "desc.inputs", v, n);
}

static LLVMValueRef globals_list(EmitJob *j, Ty *t, IrGlobalKind kind, int *count) {
  int n = 0, i = 0;
  for (const IrGlobal *g = j->m->globals; g; g = g->next) n++;
  LLVMValueRef *v = ARENA_ARRAY(j->a, LLVMValueRef, n + 1);
  n = 0;
  for (const IrGlobal *g = j->m->globals; g; g = g->next, i++)
    if (g->kind == kind)
      v[n++] = tensor_desc(j, t, g->name, &g->type, -1, g, j->offsets[i]);
  *count = n;
  return desc_array(j, t, kind == IRG_PARAM ? "desc.params" : "desc.states", v, n);
}

/* P_forward_entry: unpack the NnrtInstance and call P_forward. */
static LLVMValueRef entry(EmitJob *j, Ty *t, const char *callee) {
  LLVMValueRef fn = LLVMGetNamedFunction(j->mod, callee);
  NNC_ASSERT(fn);
  LLVMTypeRef p[] = {t->ptr, t->ptr, t->ptr};
  LLVMTypeRef fty = LLVMFunctionType(t->i32, p, 3, false);
  char *name = arena_printf(j->a, "%s_forward_entry", j->prefix);
  LLVMValueRef e = LLVMAddFunction(j->mod, name, fty);
  LLVMBuilderRef b = LLVMCreateBuilderInContext(j->ctx);
  LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(j->ctx, e, "entry"));
  LLVMValueRef ctx = LLVMGetParam(e, 0), fld[5];
  LLVMTypeRef ft[] = {t->ptr, t->ptr, t->ptr, t->i64, t->i64};
  for (int k = 1; k < 5; k++)
    fld[k] = LLVMBuildLoad2(b, ft[k], LLVMBuildStructGEP2(b, t->inst, ctx, (unsigned)k, ""), "");
  int n = 0;
  for (const IrGlobal *g = j->m->globals; g; g = g->next) n++;
  LLVMValueRef garr = LLVMConstPointerNull(t->ptr);
  if (n) {
    garr = LLVMBuildArrayAlloca(b, t->ptr, ci32(t, n), "v_globals");
    for (int i = 0; i < n; i++) {
      LLVMValueRef off = ci64(t, (int64_t)j->offsets[i]);
      LLVMValueRef pi = LLVMBuildGEP2(b, LLVMInt8TypeInContext(j->ctx), fld[2], &off, 1, "");
      LLVMValueRef idx = ci64(t, i);
      LLVMBuildStore(b, pi, LLVMBuildGEP2(b, t->ptr, garr, &idx, 1, ""));
    }
  }
  LLVMValueRef args[] = {fld[1], garr, LLVMGetParam(e, 1), LLVMGetParam(e, 2),
                         fld[3], fld[4]};
  LLVMValueRef r = LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, 6, "");
  LLVMBuildRet(b, r);
  LLVMDisposeBuilder(b);
  return e;
}

bool emit_descriptor(EmitJob *j, Diag *d) {
  Ty t;
  types(&t, j->ctx);
  const char *sym = NULL;
  for (int i = 0; i < j->cg.nfuncs; i++)
    if (j->forward && strcmp(j->cg.funcs[i].name, j->forward->name) == 0)
      sym = j->cg.funcs[i].symbol;
  if (!sym) {
    diag_error(d, (SrcLoc){0}, "the module has no function to run (no @forward)");
    return false;
  }
  int ni, no, np, ns;
  LLVMValueRef in = io_list(j, &t, false, &ni), out = io_list(j, &t, true, &no);
  LLVMValueRef pa = globals_list(j, &t, IRG_PARAM, &np);
  LLVMValueRef st = globals_list(j, &t, IRG_STATE, &ns);
  uint64_t seed = j->m->train ? (uint64_t)ir_attr_int(&j->m->train->settings, "seed", 0) : 0;
  LLVMValueRef tsf, esf, f[17 + EMIT_TRAIN_TAIL]; /* ABI 2: descriptor_train.c */
  if (!emit_train_desc(j, &tsf, &esf, f + 17, d)) return false;
  LLVMValueRef f1[] = {ci32(&t, DESC_ABI_VERSION), cstr(j, j->m->name ? j->m->name : j->prefix),
                      ci64(&t, (int64_t)j->sizes.arena_bytes),
                      ci64(&t, (int64_t)j->sizes.param_bytes),
                      ci32(&t, ni), ci32(&t, no), ci32(&t, np), ci32(&t, ns),
                      in, out, pa, st, entry(j, &t, sym), tsf, esf,
                      ci64(&t, j->sizes.flops_forward), ci64(&t, (int64_t)seed)};
  memcpy(f, f1, sizeof f1);
  LLVMValueRef v = LLVMConstStructInContext(t.c, f, 17 + EMIT_TRAIN_TAIL, false);
  char *name = arena_printf(j->a, "%s_desc", j->prefix);
  LLVMValueRef g = LLVMAddGlobal(j->mod, LLVMTypeOf(v), name);
  LLVMSetInitializer(g, v);
  LLVMSetGlobalConstant(g, true);
  LLVMSetAlignment(g, 8);
  return true;
}

/*
** This file contains the training half of the model descriptor: the ABI 2
** fields of NnrtModel (runtime/nnrt.h) and the entry wrappers the runtime
** calls to train and evaluate:
**
**   int32_t P_train_step_entry(NnrtInstance *ctx, void *const *in,
**                              void *const *out) {
**     void *g[NGLOBALS] = { ctx->params + off_0, ... };
**     void *o[NRESULTS];          loss, lr -> out[0], out[1] (then metrics);
**                                 each staged @X -> ctx->arena + stage_X,
**                                 each in-place @X -> NULL
**     int32_t rc = P_train_step(ctx->arena, g, in, o, ctx->seed, ctx->step);
**     if (rc) return rc == CG_ERR_RANGE ? NNRT_STEP_E_INDEX : 100 + rc;
**     memcpy(ctx->params + off_X, ctx->arena + stage_X, bytes_X); ...
**     return 0;
**   }
**
** Every read of a global must see the value from before the step
** (internals.md, optimizer).  The lowering writes a result @X straight
** into X where that holds (CgFuncInfo.inplace: the optimiser's updates,
** each the last reader of its parameter or state; codegen.h).  The other
** new values are staged in the arena, after @train_step's own scratch, and
** copied once the whole step has run.
**
** P_eval_step_entry and P_average_entry call P_eval_step and P_average as
** the forward entry calls P_forward (the runtime's lists are the IR
** function's arguments and results in order).
**
** The tail after `seed`: ntrain_inputs, train_inputs (the arguments of
** @train_step before %epoch and %total_steps, batch axis 0),
** train_input_limits (the class count of a label that feeds a loss or a
** metric directly, the row count of a gathered table), average,
** nmetrics, metric_names (@eval_step's `metric.NAME` results), train_metrics,
** data, eval_data (the train block's settings), batch, epochs, steps.
** ORDER NNRT: the literal LLVM structs follow runtime/nnrt.h.
*/
#include <string.h>

#include "descriptor_train.h"

#define ALIGN 64
#define MAX_RANK 8 /* NNRT_MAX_RANK */
#define STEP_E_INDEX 2 /* NNRT_STEP_E_INDEX */

/* NnrtDataKind */
enum { DK_NONE, DK_IDX, DK_NPY, DK_NPZ, DK_CSV, DK_TEXT };

typedef struct Tt {
  LLVMContextRef c;
  LLVMTypeRef i8, i32, i64, ptr, inst;
} Tt;

static LLVMValueRef ci32(Tt *t, int64_t v) {
  return LLVMConstInt(t->i32, (unsigned long long)v, true);
}
static LLVMValueRef ci64(Tt *t, int64_t v) {
  return LLVMConstInt(t->i64, (unsigned long long)v, true);
}

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

/* A constant array of n pointers to strings, or NULL when n is 0. */
static LLVMValueRef str_array(EmitJob *j, Tt *t, const char *const *s, int n) {
  if (n <= 0) return LLVMConstPointerNull(t->ptr);
  LLVMValueRef *v = ARENA_ARRAY(j->a, LLVMValueRef, n);
  for (int i = 0; i < n; i++) v[i] = cstr(j, s[i]);
  return global(j, "desc.strs", LLVMConstArray2(t->ptr, v, (uint64_t)n));
}

static uint64_t type_bytes(const IrType *t) {
  return (uint64_t)(ir_type_numel(t) * ir_dtype_size(t->dtype));
}

static const char *cg_symbol(const EmitJob *j, const char *func) {
  for (int i = 0; i < j->cg.nfuncs; i++)
    if (strcmp(j->cg.funcs[i].name, func) == 0) return j->cg.funcs[i].symbol;
  return NULL;
}

static const CgFuncInfo *cg_func(const EmitJob *j, const char *func) {
  for (int i = 0; i < j->cg.nfuncs; i++)
    if (strcmp(j->cg.funcs[i].name, func) == 0) return &j->cg.funcs[i];
  return NULL;
}

static uint64_t cg_arena(const EmitJob *j, const char *func) {
  const CgFuncInfo *fi = cg_func(j, func);
  return fi ? fi->arena_bytes : 0;
}

/* ------------------------------------------------------------ wrappers */

typedef struct Wrap {
  LLVMValueRef fn;
  LLVMBuilderRef b;
  LLVMValueRef arena, params, seed, step, globals;
} Wrap;

/* Opens P_<func>_entry and unpacks the NnrtInstance as the forward entry
** does (descriptor.c): the globals array points into the parameter block. */
static void wrap_begin(EmitJob *j, Tt *t, const char *func, Wrap *w) {
  LLVMTypeRef p[] = {t->ptr, t->ptr, t->ptr};
  LLVMTypeRef fty = LLVMFunctionType(t->i32, p, 3, false);
  w->fn = LLVMAddFunction(j->mod, arena_printf(j->a, "%s_%s_entry", j->prefix, func), fty);
  w->b = LLVMCreateBuilderInContext(j->ctx);
  LLVMPositionBuilderAtEnd(w->b, LLVMAppendBasicBlockInContext(j->ctx, w->fn, "entry"));
  LLVMValueRef ctx = LLVMGetParam(w->fn, 0);
  LLVMValueRef *fld[] = {NULL, &w->arena, &w->params, &w->seed, &w->step};
  LLVMTypeRef ft[] = {t->ptr, t->ptr, t->ptr, t->i64, t->i64};
  for (unsigned k = 1; k < 5; k++)
    *fld[k] = LLVMBuildLoad2(w->b, ft[k], LLVMBuildStructGEP2(w->b, t->inst, ctx, k, ""), "");
  int n = 0;
  for (const IrGlobal *g = j->m->globals; g; g = g->next) n++;
  w->globals = LLVMConstPointerNull(t->ptr);
  if (!n) return;
  w->globals = LLVMBuildArrayAlloca(w->b, t->ptr, ci32(t, n), "globals");
  for (int i = 0; i < n; i++) {
    LLVMValueRef off = ci64(t, (int64_t)j->offsets[i]), idx = ci64(t, i);
    LLVMValueRef pi = LLVMBuildGEP2(w->b, t->i8, w->params, &off, 1, "");
    LLVMBuildStore(w->b, pi, LLVMBuildGEP2(w->b, t->ptr, w->globals, &idx, 1, ""));
  }
}

static LLVMValueRef wrap_call(EmitJob *j, Wrap *w, const char *sym,
                              LLVMValueRef in, LLVMValueRef out) {
  LLVMValueRef fn = LLVMGetNamedFunction(j->mod, sym);
  NNC_ASSERT(fn);
  LLVMValueRef args[] = {w->arena, w->globals, in, out, w->seed, w->step};
  return LLVMBuildCall2(w->b, LLVMGlobalGetValueType(fn), fn, args, 6, "rc");
}

/* P_<func>_entry(ctx, in, out) = P_<func>(arena, globals, in, out, ...). */
static LLVMValueRef plain_entry(EmitJob *j, Tt *t, const char *func) {
  const char *sym = cg_symbol(j, func);
  if (!sym) return LLVMConstPointerNull(t->ptr);
  Wrap w;
  wrap_begin(j, t, func, &w);
  LLVMValueRef rc = wrap_call(j, &w, sym, LLVMGetParam(w.fn, 1), LLVMGetParam(w.fn, 2));
  LLVMValueRef range = LLVMBuildICmp(w.b, LLVMIntEQ, rc, ci32(t, CG_ERR_RANGE), "");
  LLVMValueRef other = LLVMBuildSelect(w.b, LLVMBuildICmp(w.b, LLVMIntEQ, rc, ci32(t, 0), ""),
                                       ci32(t, 0), LLVMBuildAdd(w.b, rc, ci32(t, 100), ""), "");
  LLVMBuildRet(w.b, LLVMBuildSelect(w.b, range, ci32(t, STEP_E_INDEX), other, ""));
  LLVMDisposeBuilder(w.b);
  return w.fn;
}

static int global_index(const EmitJob *j, const char *name) {
  int i = 0;
  for (const IrGlobal *g = j->m->globals; g; g = g->next, i++)
    if (strcmp(g->name, name) == 0) return i;
  return -1;
}

/* P_train_step_entry: see the top of the file.  Results that are not
** `@X` go to out[] in order (loss, lr, then metrics). */
static LLVMValueRef train_entry(EmitJob *j, Tt *t, const IrFunc *f, Diag *d) {
  const char *sym = cg_symbol(j, f->name);
  NNC_ASSERT(sym);
  const IrBlock *body = f->body;
  int nr = body->nrets;
  uint64_t *stage = ARENA_ARRAY(j->a, uint64_t, nr + 1);
  int *gi = ARENA_ARRAY(j->a, int, nr + 1);
  uint64_t off = (cg_arena(j, f->name) + ALIGN - 1) / ALIGN * ALIGN;
  const bool *inplace = cg_func(j, f->name)->inplace;
  for (int r = 0; r < nr; r++) {
    const char *nm = f->ret_names[r];
    gi[r] = -1;
    if (!nm || nm[0] != '@') continue;
    gi[r] = global_index(j, nm + 1);
    if (gi[r] < 0) {
      diag_error(d, (SrcLoc){0}, "@%s returns '%s', which is not a parameter or state",
                 f->name, nm);
      return NULL;
    }
    if (inplace && inplace[r]) {
      gi[r] = -2; /* written by the step itself */
      continue;
    }
    stage[r] = off;
    off += (type_bytes(&body->rets[r]->type) + ALIGN - 1) / ALIGN * ALIGN;
  }
  if (off > j->sizes.arena_bytes) j->sizes.arena_bytes = off;

  Wrap w;
  wrap_begin(j, t, f->name, &w);
  LLVMValueRef out = LLVMGetParam(w.fn, 2);
  LLVMValueRef outs = LLVMBuildArrayAlloca(w.b, t->ptr, ci32(t, nr ? nr : 1), "outs");
  int k = 0;
  for (int r = 0; r < nr; r++) {
    LLVMValueRef p, idx = ci64(t, r);
    if (gi[r] == -2) {
      p = LLVMConstPointerNull(t->ptr);
    } else if (gi[r] >= 0) {
      LLVMValueRef o = ci64(t, (int64_t)stage[r]);
      p = LLVMBuildGEP2(w.b, t->i8, w.arena, &o, 1, "");
    } else {
      LLVMValueRef kk = ci64(t, k++);
      p = LLVMBuildLoad2(w.b, t->ptr, LLVMBuildGEP2(w.b, t->ptr, out, &kk, 1, ""), "");
    }
    LLVMBuildStore(w.b, p, LLVMBuildGEP2(w.b, t->ptr, outs, &idx, 1, ""));
  }
  LLVMValueRef rc = wrap_call(j, &w, sym, LLVMGetParam(w.fn, 1), outs);
  LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(j->ctx, w.fn, "ok");
  LLVMBasicBlockRef bad = LLVMAppendBasicBlockInContext(j->ctx, w.fn, "bad");
  LLVMBuildCondBr(w.b, LLVMBuildICmp(w.b, LLVMIntEQ, rc, ci32(t, 0), ""), ok, bad);
  LLVMPositionBuilderAtEnd(w.b, bad);
  LLVMValueRef range = LLVMBuildICmp(w.b, LLVMIntEQ, rc, ci32(t, CG_ERR_RANGE), "");
  LLVMBuildRet(w.b, LLVMBuildSelect(w.b, range, ci32(t, STEP_E_INDEX),
                                    LLVMBuildAdd(w.b, rc, ci32(t, 100), ""), ""));
  LLVMPositionBuilderAtEnd(w.b, ok);
  for (int r = 0; r < nr; r++) {
    if (gi[r] < 0) continue;
    LLVMValueRef so = ci64(t, (int64_t)stage[r]), po = ci64(t, (int64_t)j->offsets[gi[r]]);
    LLVMValueRef src = LLVMBuildGEP2(w.b, t->i8, w.arena, &so, 1, "");
    LLVMValueRef dst = LLVMBuildGEP2(w.b, t->i8, w.params, &po, 1, "");
    LLVMBuildMemCpy(w.b, dst, ALIGN, src, ALIGN, ci64(t, (int64_t)type_bytes(&body->rets[r]->type)));
  }
  LLVMBuildRet(w.b, ci32(t, 0));
  LLVMDisposeBuilder(w.b);
  return w.fn;
}

/* -------------------------------------------------------------- limits */

/* The value an integer argument must stay below when node n uses it as a
** class label or a row index, or 0. */
static int64_t label_limit(const IrNode *n, int argi) {
  const IrType *a0 = n->nargs ? &n->args[0]->type : NULL;
  switch (n->op) {
  case IR_OP_CROSS_ENTROPY:
  case IR_OP_NLL:
  case IR_OP_ACCURACY:
  case IR_OP_F1:
  case IR_OP_TOP_K:
  case IR_OP_SOFT_ACCURACY:
  case IR_OP_SOFT_F1:
    if (argi != 1 || !a0) return 0;
    /* logits[N] with 0/1 labels: binary */
    if (a0->rank == n->args[1]->type.rank) return 2;
    return a0->rank ? a0->dim[a0->rank - 1] : 0;
  case IR_OP_GATHER:
    return argi == 1 && a0 && a0->rank ? a0->dim[0] : 0;
  case IR_OP_ONE_HOT: {
    const IrType *r = n->nres ? &n->res[0]->type : NULL;
    return argi == 0 && r && r->rank ? r->dim[r->rank - 1] : 0;
  }
  default:
    return 0;
  }
}

/* Raises lim[k] from the uses in b (and nested bodies) of argument k of
** the function body fb; the smallest limit wins. */
static void scan_limits(const IrBlock *b, const IrBlock *fb, int n, int64_t *lim) {
  for (const IrNode *x = b->first; x; x = x->next) {
    for (int a = 0; a < x->nargs; a++) {
      const IrValue *v = x->args[a];
      if (v->kind != IRV_ARG || v->block != fb || v->idx >= n) continue;
      if (!ir_dtype_is_int(v->type.dtype)) continue;
      int64_t l = label_limit(x, a);
      if (l > 0 && (lim[v->idx] == 0 || l < lim[v->idx])) lim[v->idx] = l;
    }
    if (x->body) scan_limits(x->body, fb, n, lim);
  }
}

/* ----------------------------------------------------------------- data */

static const IrAttr *call_arg(const IrAttr *c, const char *name) {
  IrAttrs as = {c->args, c->n};
  return ir_attr_get(&as, name);
}

/* A pointer to a constant NnrtDataSource for setting `key`, or NULL. */
static LLVMValueRef data_source(EmitJob *j, Tt *t, const char *key) {
  const IrAttr *c = j->m->train ? ir_attr_get(&j->m->train->settings, key) : NULL;
  if (!c || c->kind != ATTR_CALL || !c->s) return LLVMConstPointerNull(t->ptr);
  static const char *const kinds[] = {"", "idx", "npy", "npz", "csv", "text"};
  int kind = DK_NONE;
  for (int k = 1; k <= DK_TEXT; k++)
    if (strcmp(c->s, kinds[k]) == 0) kind = k;
  const IrAttr *names = call_arg(c, "names"), *files = call_arg(c, "files");
  const IrAttr *keys = call_arg(c, "keys");
  const IrAttr *block = call_arg(c, "block"), *header = call_arg(c, "header");
  int nn = names ? names->n : 0, nf = files ? files->n : 0;
  LLVMValueRef keyv = LLVMConstPointerNull(t->ptr);
  if (keys && keys->n == nn) keyv = str_array(j, t, keys->strs, keys->n);
  LLVMValueRef f[] = {
      ci32(t, kind),
      ci32(t, nn),
      str_array(j, t, names ? names->strs : NULL, nn),
      ci32(t, nf),
      str_array(j, t, files ? files->strs : NULL, nf),
      keyv,
      ci64(t, block && block->kind == ATTR_INT ? block->i : 0),
      ci32(t, header && (header->kind == ATTR_BOOL || header->kind == ATTR_INT) ? header->i != 0 : 0),
  };
  return global(j, "desc.data", LLVMConstStructInContext(t->c, f, 8, false));
}

/* ---------------------------------------------------------------- tail */

static LLVMValueRef input_desc(EmitJob *j, Tt *t, const IrValue *x) {
  LLVMValueRef dims[MAX_RANK];
  const IrType *ty = &x->type;
  for (int k = 0; k < MAX_RANK; k++) dims[k] = ci64(t, k < ty->rank ? ty->dim[k] : 0);
  LLVMValueRef null = LLVMConstPointerNull(t->ptr);
  LLVMValueRef f[] = {cstr(j, x->name ? x->name : "in"),
                      ci32(t, ty->dtype),
                      ci32(t, ty->rank),
                      LLVMConstArray2(t->i64, dims, MAX_RANK),
                      ci32(t, ty->rank > 0 ? 0 : -1),
                      null,
                      null,
                      ci32(t, 0),
                      ci64(t, 0)};
  return LLVMConstStructInContext(t->c, f, 9, false);
}

static int64_t setting_int(const EmitJob *j, const char *key) {
  const IrAttr *a = j->m->train ? ir_attr_get(&j->m->train->settings, key) : NULL;
  if (!a) return 0;
  return a->kind == ATTR_FLOAT ? (int64_t)a->f : a->i;
}

bool emit_train_desc(EmitJob *j, LLVMValueRef *train_step,
                     LLVMValueRef *eval_step, LLVMValueRef *tail, Diag *d) {
  Tt t;
  t.c = j->ctx;
  t.i8 = LLVMInt8TypeInContext(t.c);
  t.i32 = LLVMInt32TypeInContext(t.c);
  t.i64 = LLVMInt64TypeInContext(t.c);
  t.ptr = LLVMPointerTypeInContext(t.c, 0);
  LLVMTypeRef in[] = {t.ptr, t.ptr, t.ptr, t.i64, t.i64}; /* NnrtInstance */
  t.inst = LLVMStructTypeInContext(t.c, in, 5, false);
  LLVMValueRef null = LLVMConstPointerNull(t.ptr);

  const IrFunc *ts = cg_symbol(j, "train_step") ? ir_func_find((IrModule *)j->m, "train_step") : NULL;
  const IrFunc *es = cg_symbol(j, "eval_step") ? ir_func_find((IrModule *)j->m, "eval_step") : NULL;
  /* The train inputs: @train_step's arguments before %epoch and
  ** %total_steps, else @eval_step's. */
  const IrBlock *ib = ts ? ts->body : es ? es->body : NULL;
  int ni = !ib ? 0 : ts ? ib->nargs - 2 : ib->nargs;
  if (ts && ni < 0) {
    diag_error(d, (SrcLoc){0}, "@train_step lacks its %%epoch and %%total_steps arguments");
    return false;
  }
  if (ts && es) {
    bool same = es->body->nargs == ni;
    for (int i = 0; same && i < ni; i++)
      same = es->body->args[i]->name && ib->args[i]->name &&
             strcmp(es->body->args[i]->name, ib->args[i]->name) == 0 &&
             ir_type_eq(&es->body->args[i]->type, &ib->args[i]->type);
    if (!same) {
      diag_error(d, (SrcLoc){0}, "@eval_step and @train_step take different inputs");
      return false;
    }
  }
  LLVMValueRef inputs = null, limits = null;
  if (ni > 0) {
    LLVMValueRef *v = ARENA_ARRAY(j->a, LLVMValueRef, ni);
    for (int i = 0; i < ni; i++) v[i] = input_desc(j, &t, ib->args[i]);
    inputs = global(j, "desc.train_inputs",
                    LLVMConstArray2(LLVMTypeOf(v[0]), v, (uint64_t)ni));
    int64_t *lim = ARENA_ARRAY(j->a, int64_t, ni);
    memset(lim, 0, sizeof *lim * (size_t)ni);
    if (ts) scan_limits(ts->body, ts->body, ni, lim);
    if (es) scan_limits(es->body, es->body, ni, lim);
    bool any = false;
    LLVMValueRef *lv = ARENA_ARRAY(j->a, LLVMValueRef, ni);
    for (int i = 0; i < ni; i++) {
      lv[i] = ci64(&t, lim[i]);
      any |= lim[i] > 0;
    }
    if (any) limits = global(j, "desc.limits", LLVMConstArray2(t.i64, lv, (uint64_t)ni));
  }

  /* Metrics: @eval_step's metric.NAME results. */
  int nm = 0;
  const char **mn = NULL;
  if (es) {
    mn = ARENA_ARRAY(j->a, const char *, es->body->nrets + 1);
    for (int r = 0; r < es->body->nrets; r++) {
      const char *s = es->ret_names[r];
      if (s && strncmp(s, "metric.", 7) == 0) mn[nm++] = s + 7;
    }
  }
  /* train_metrics: @train_step returns loss, lr and the same metrics. */
  int train_metrics = 0;
  if (ts && nm) {
    int k = 0;
    bool same = true;
    for (int r = 0; r < ts->body->nrets; r++) {
      const char *s = ts->ret_names[r];
      if (!s || s[0] == '@') continue;
      if (k >= 2 && (k - 2 >= nm || strncmp(s, "metric.", 7) || strcmp(s + 7, mn[k - 2])))
        same = false;
      k++;
    }
    train_metrics = same && k == 2 + nm;
  }

  *train_step = null;
  if (ts) {
    LLVMValueRef fn = train_entry(j, &t, ts, d);
    if (!fn) return false;
    *train_step = fn;
  }
  *eval_step = plain_entry(j, &t, "eval_step");
  LLVMValueRef avg = plain_entry(j, &t, "average");

  int64_t batch = setting_int(j, "batch");
  if (!batch && ni > 0 && ib->args[0]->type.rank > 0) batch = ib->args[0]->type.dim[0];
  LLVMValueRef v[EMIT_TRAIN_TAIL] = {
      ci32(&t, ni),
      inputs,
      limits,
      avg,
      ci32(&t, nm),
      str_array(j, &t, mn, nm),
      ci32(&t, train_metrics),
      data_source(j, &t, "data"),
      data_source(j, &t, "eval_data"),
      ci64(&t, ni > 0 ? batch : 0),
      ci64(&t, setting_int(j, "epochs")),
      ci64(&t, setting_int(j, "steps")),
  };
  memcpy(tail, v, sizeof v);
  return true;
}

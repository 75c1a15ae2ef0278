/*
** This file contains the core of the tensor IR: dtype and type helpers, the
** op table generated from ops.def, and the builder API (module, symbols,
** globals, functions, blocks, nodes, attributes, use replacement).  Every
** object lives in the module's arena; nothing is freed one by one.
*/
#include "ir.h"

#include <string.h>

/* ---------------------------------------------------------------- dtypes */

/* ORDER DType */
static const struct {
  const char *name;
  int size;
} dtypes[DT_COUNT] = {
    [DT_F32] = {"f32", 4}, [DT_F16] = {"f16", 2}, [DT_BF16] = {"bf16", 2},
    [DT_F64] = {"f64", 8}, [DT_I32] = {"i32", 4}, [DT_I64] = {"i64", 8},
    [DT_U8] = {"u8", 1},   [DT_BOOL] = {"bool", 1},
};

const char *ir_dtype_name(DType t) {
  if ((unsigned)t >= DT_COUNT) return "?";
  return dtypes[t].name;
}

bool ir_dtype_parse(const char *s, DType *out) {
  for (int i = 0; i < DT_COUNT; i++) {
    if (strcmp(s, dtypes[i].name) == 0) {
      *out = (DType)i;
      return true;
    }
  }
  return false;
}

int ir_dtype_size(DType t) {
  NNC_ASSERT((unsigned)t < DT_COUNT);
  return dtypes[t].size;
}

bool ir_dtype_is_float(DType t) {
  return t == DT_F32 || t == DT_F16 || t == DT_BF16 || t == DT_F64;
}

bool ir_dtype_is_int(DType t) {
  return t == DT_I32 || t == DT_I64 || t == DT_U8;
}

/* ----------------------------------------------------------------- types */

IrType ir_type_scalar(DType t) {
  IrType r;
  memset(&r, 0, sizeof r);
  r.dtype = t;
  for (int i = 0; i < IR_MAX_RANK; i++) r.sym[i] = IR_NO_SYM;
  return r;
}

IrType ir_type_make(DType t, int rank, const int64_t *dims) {
  NNC_ASSERT(rank >= 0 && rank <= IR_MAX_RANK);
  IrType r = ir_type_scalar(t);
  r.rank = rank;
  for (int i = 0; i < rank; i++) r.dim[i] = dims[i];
  return r;
}

int64_t ir_type_numel(const IrType *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) n *= t->dim[i];
  return n;
}

bool ir_shape_eq(const IrType *a, const IrType *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

bool ir_type_eq(const IrType *a, const IrType *b) {
  return a->dtype == b->dtype && ir_shape_eq(a, b);
}

/* The name of dimension i of t when it prints as a symbol, else NULL. */
static const char *dim_sym(const IrModule *m, const IrType *t, int i) {
  int s = t->sym[i];
  return m && s >= 0 && s < m->nsyms && m->syms[s].name ? m->syms[s].name : NULL;
}

char *ir_type_str(Arena *a, const IrModule *m, const IrType *t) {
  int rank = t->rank < 0 ? 0 : t->rank > IR_MAX_RANK ? IR_MAX_RANK : t->rank;
  size_t len = strlen(ir_dtype_name(t->dtype)) + 2;
  for (int i = 0; i < rank; i++) {
    const char *s = dim_sym(m, t, i);
    len += 1 + (s ? strlen(s) : 21);
  }
  char *out = arena_alloc(a, len + 1, 1);
  size_t n = (size_t)snprintf(out, len + 1, "%s[", ir_dtype_name(t->dtype));
  for (int i = 0; i < rank; i++) {
    const char *s = dim_sym(m, t, i), *sep = i ? "," : "";
    if (s)
      n += (size_t)snprintf(out + n, len + 1 - n, "%s%s", sep, s);
    else
      n += (size_t)snprintf(out + n, len + 1 - n, "%s%lld", sep,
                            (long long)t->dim[i]);
  }
  snprintf(out + n, len + 1 - n, "]");
  return out;
}

/* ------------------------------------------------------------------- ops */

const IrOpInfo ir_op_info[IR_OP_COUNT] = {
#define OP(id, name, minargs, maxargs, flags) \
  [IR_OP_##id] = {name, minargs, maxargs, flags},
#include "ops.def"
#undef OP
};

bool ir_op_lookup(const char *name, IrOp *out) {
  for (int i = 0; i < IR_OP_COUNT; i++) {
    if (strcmp(name, ir_op_info[i].name) == 0) {
      *out = (IrOp)i;
      return true;
    }
  }
  return false;
}

/* ---------------------------------------------------------------- module */

IrModule *ir_module_new(const char *name) {
  Arena *a = arena_new();
  IrModule *m = ARENA_NEW(a, IrModule);
  m->arena = a;
  m->strs = strtab_new(a);
  m->name = name ? strtab_cstr(m->strs, name) : NULL;
  return m;
}

void ir_module_free(IrModule *m) {
  if (m) arena_free(m->arena);
}

static const char *intern(IrModule *m, const char *s) {
  return s ? strtab_cstr(m->strs, s) : NULL;
}

/* The symbol array grows by doubling; its capacity is the smallest power of
** two >= nsyms, so it need not be stored. */
int ir_sym_add(IrModule *m, const char *name, int64_t value, bool bounded) {
  int n = m->nsyms;
  if ((n & (n - 1)) == 0) {
    IrSym *s = ARENA_ARRAY(m->arena, IrSym, n ? 2 * n : 1);
    if (n) memcpy(s, m->syms, sizeof(IrSym) * (size_t)n);
    m->syms = s;
  }
  m->syms[n] = (IrSym){intern(m, name), value, bounded};
  m->nsyms = n + 1;
  return n;
}

int ir_sym_find(const IrModule *m, const char *name) {
  for (int i = 0; i < m->nsyms; i++)
    if (strcmp(m->syms[i].name, name) == 0) return i;
  return -1;
}

IrGlobal *ir_global_add(IrModule *m, IrGlobalKind k, const char *name,
                        IrType t, const char *init, SrcLoc loc) {
  IrGlobal *g = ARENA_NEW(m->arena, IrGlobal);
  g->kind = k;
  g->name = intern(m, name);
  g->type = t;
  g->init = intern(m, init);
  g->loc = loc;
  IrValue *v = ARENA_NEW(m->arena, IrValue);
  v->kind = IRV_GLOBAL;
  v->type = t;
  v->global = g;
  g->value = v;
  if (m->globals_last)
    m->globals_last->next = g;
  else
    m->globals = g;
  m->globals_last = g;
  return g;
}

IrGlobal *ir_global_find(const IrModule *m, const char *name) {
  for (IrGlobal *g = m->globals; g; g = g->next)
    if (strcmp(g->name, name) == 0) return g;
  return NULL;
}

IrFunc *ir_func_new(IrModule *m, const char *name) {
  IrFunc *f = ARENA_NEW(m->arena, IrFunc);
  f->name = intern(m, name);
  f->body = ir_block_new(m, f);
  if (m->funcs_last)
    m->funcs_last->next = f;
  else
    m->funcs = f;
  m->funcs_last = f;
  return f;
}

IrFunc *ir_func_find(const IrModule *m, const char *name) {
  for (IrFunc *f = m->funcs; f; f = f->next)
    if (strcmp(f->name, name) == 0) return f;
  return NULL;
}

void ir_func_remove(IrModule *m, IrFunc *f) {
  IrFunc *prev = NULL;
  for (IrFunc *g = m->funcs; g; prev = g, g = g->next) {
    if (g != f) continue;
    if (prev)
      prev->next = f->next;
    else
      m->funcs = f->next;
    if (m->funcs_last == f) m->funcs_last = prev;
    f->next = NULL;
    return;
  }
}

void ir_func_set_rets(IrModule *m, IrFunc *f, int n, IrValue **rets,
                      const char *const *names) {
  ir_block_set_rets(m, f->body, n, rets);
  f->ret_names = ARENA_ARRAY(m->arena, const char *, n ? n : 1);
  for (int i = 0; i < n; i++) f->ret_names[i] = intern(m, names[i]);
}

/* ---------------------------------------------------------------- blocks */

IrBlock *ir_block_new(IrModule *m, IrFunc *f) {
  IrBlock *b = ARENA_NEW(m->arena, IrBlock);
  b->func = f;
  return b;
}

/* Append p to an arena array of n pointers (copying; arrays are small). */
static void **ptr_append(Arena *a, void **v, int n, void *p) {
  void **w = ARENA_ARRAY(a, void *, n + 1);
  if (n) memcpy(w, v, sizeof(void *) * (size_t)n);
  w[n] = p;
  return w;
}

IrValue *ir_block_add_arg(IrModule *m, IrBlock *b, IrType t,
                          const char *name) {
  IrValue *v = ARENA_NEW(m->arena, IrValue);
  v->kind = IRV_ARG;
  v->type = t;
  v->idx = b->nargs;
  v->block = b;
  v->name = intern(m, name);
  b->args = (IrValue **)ptr_append(m->arena, (void **)b->args, b->nargs, v);
  b->nargs++;
  return v;
}

void ir_block_set_rets(IrModule *m, IrBlock *b, int n, IrValue **rets) {
  b->rets = ARENA_ARRAY(m->arena, IrValue *, n ? n : 1);
  for (int i = 0; i < n; i++) b->rets[i] = rets[i];
  b->nrets = n;
}

/* ----------------------------------------------------------------- nodes */

IrNode *ir_node_new(IrModule *m, IrBlock *b, IrOp op, int nargs,
                    IrValue **args, int nres, const IrType *res, SrcLoc loc) {
  NNC_ASSERT((unsigned)op < IR_OP_COUNT && nargs >= 0 && nres >= 0);
  IrNode *n = ARENA_NEW(m->arena, IrNode);
  n->op = op;
  n->nargs = nargs;
  n->args = ARENA_ARRAY(m->arena, IrValue *, nargs ? nargs : 1);
  for (int i = 0; i < nargs; i++) n->args[i] = args[i];
  n->nres = nres;
  n->res = ARENA_ARRAY(m->arena, IrValue *, nres ? nres : 1);
  for (int i = 0; i < nres; i++) {
    IrValue *v = ARENA_NEW(m->arena, IrValue);
    v->kind = IRV_RESULT;
    v->type = res[i];
    v->idx = i;
    v->def = n;
    n->res[i] = v;
  }
  n->loc = loc;
  if (b) ir_node_append(b, n);
  return n;
}

IrValue *ir_build(IrModule *m, IrBlock *b, IrOp op, int nargs, IrValue **args,
                  const IrAttrs *attrs, const IrType *want, SrcLoc loc,
                  const char **err, int *bad_arg) {
  enum { MAXRES = 8 };
  IrType *at = ARENA_ARRAY(m->arena, IrType, nargs ? nargs : 1);
  IrType res[MAXRES];
  const char *e = NULL;
  int bad = -1;
  for (int i = 0; i < nargs; i++) at[i] = args[i]->type;
  if (ir_op_info[op].flags & OPF_TYPED) {
    NNC_ASSERT(want);
    res[0] = *want;
  }
  IrAttrs empty = {NULL, 0};
  const IrAttrs *aa = attrs ? attrs : &empty;
  int nres = ir_infer(m, op, nargs, at, aa, res, MAXRES, &e, &bad, m->arena);
  if (nres <= 0) {
    if (err) *err = e ? e : "shape error";
    if (bad_arg) *bad_arg = bad;
    return NULL;
  }
  IrNode *n = ir_node_new(m, b, op, nargs, args, nres, res, loc);
  for (int i = 0; i < aa->n; i++) ir_attr_set(m, &n->attrs, &aa->v[i]);
  return n->res[0];
}

void ir_node_insert_before(IrNode *pos, IrNode *n) {
  IrBlock *b = pos->parent;
  NNC_ASSERT(b && !n->parent);
  n->parent = b;
  n->next = pos;
  n->prev = pos->prev;
  if (pos->prev)
    pos->prev->next = n;
  else
    b->first = n;
  pos->prev = n;
}

void ir_node_append(IrBlock *b, IrNode *n) {
  NNC_ASSERT(!n->parent);
  n->parent = b;
  n->prev = b->last;
  n->next = NULL;
  if (b->last)
    b->last->next = n;
  else
    b->first = n;
  b->last = n;
}

void ir_node_remove(IrNode *n) {
  IrBlock *b = n->parent;
  if (!b) return;
  if (n->prev)
    n->prev->next = n->next;
  else
    b->first = n->next;
  if (n->next)
    n->next->prev = n->prev;
  else
    b->last = n->prev;
  n->prev = n->next = NULL;
  n->parent = NULL;
}

static void replace_in_block(IrBlock *b, IrValue *from, IrValue *to) {
  for (IrNode *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->nargs; i++)
      if (n->args[i] == from) n->args[i] = to;
    if (n->body) replace_in_block(n->body, from, to);
  }
  for (int i = 0; i < b->nrets; i++)
    if (b->rets[i] == from) b->rets[i] = to;
}

void ir_replace_uses(IrFunc *f, IrValue *from, IrValue *to) {
  replace_in_block(f->body, from, to);
}

/* ------------------------------------------------------------ attributes */

/* Insert or replace attribute *x (already deep-copied) keeping the list
** sorted by name. */
static void attr_put(IrModule *m, IrAttrs *a, const IrAttr *x) {
  int i = 0;
  while (i < a->n && strcmp(a->v[i].name, x->name) < 0) i++;
  if (i < a->n && strcmp(a->v[i].name, x->name) == 0) {
    a->v[i] = *x;
    return;
  }
  IrAttr *v = ARENA_ARRAY(m->arena, IrAttr, a->n + 1);
  if (i) memcpy(v, a->v, sizeof(IrAttr) * (size_t)i);
  v[i] = *x;
  if (a->n > i) memcpy(v + i + 1, a->v + i, sizeof(IrAttr) * (size_t)(a->n - i));
  a->v = v;
  a->n++;
}

static IrAttr attr_make(IrModule *m, const char *name, IrAttrKind k) {
  IrAttr x;
  memset(&x, 0, sizeof x);
  x.name = intern(m, name);
  x.kind = k;
  return x;
}

void ir_attr_set_int(IrModule *m, IrAttrs *a, const char *name, int64_t v) {
  IrAttr x = attr_make(m, name, ATTR_INT);
  x.i = v;
  attr_put(m, a, &x);
}

void ir_attr_set_float(IrModule *m, IrAttrs *a, const char *name, double v) {
  IrAttr x = attr_make(m, name, ATTR_FLOAT);
  x.f = v;
  attr_put(m, a, &x);
}

void ir_attr_set_bool(IrModule *m, IrAttrs *a, const char *name, bool v) {
  IrAttr x = attr_make(m, name, ATTR_BOOL);
  x.i = v;
  attr_put(m, a, &x);
}

void ir_attr_set_str(IrModule *m, IrAttrs *a, const char *name,
                     const char *s) {
  IrAttr x = attr_make(m, name, ATTR_STR);
  x.s = intern(m, s ? s : "");
  attr_put(m, a, &x);
}

void ir_attr_set_sym(IrModule *m, IrAttrs *a, const char *name,
                     const char *s) {
  IrAttr x = attr_make(m, name, ATTR_SYM);
  x.s = intern(m, s);
  attr_put(m, a, &x);
}

void ir_attr_set_ints(IrModule *m, IrAttrs *a, const char *name, int n,
                      const int64_t *v) {
  IrAttr x = attr_make(m, name, ATTR_INTS);
  x.n = n;
  x.ints = ARENA_ARRAY(m->arena, int64_t, n ? n : 1);
  if (n) memcpy(x.ints, v, sizeof(int64_t) * (size_t)n);
  attr_put(m, a, &x);
}

void ir_attr_set_floats(IrModule *m, IrAttrs *a, const char *name, int n,
                        const double *v) {
  IrAttr x = attr_make(m, name, ATTR_FLOATS);
  x.n = n;
  x.floats = ARENA_ARRAY(m->arena, double, n ? n : 1);
  if (n) memcpy(x.floats, v, sizeof(double) * (size_t)n);
  attr_put(m, a, &x);
}

void ir_attr_set_strs(IrModule *m, IrAttrs *a, const char *name, int n,
                      const char *const *v) {
  IrAttr x = attr_make(m, name, ATTR_STRS);
  x.n = n;
  x.strs = ARENA_ARRAY(m->arena, const char *, n ? n : 1);
  for (int i = 0; i < n; i++) x.strs[i] = intern(m, v[i]);
  attr_put(m, a, &x);
}

/* A deep copy of *src into the module's arena. */
static IrAttr attr_copy(IrModule *m, const IrAttr *src) {
  IrAttr x = *src;
  x.name = intern(m, src->name);
  switch (src->kind) {
  case ATTR_STR: case ATTR_SYM: case ATTR_FUNC:
    x.s = intern(m, src->s ? src->s : "");
    break;
  case ATTR_INTS:
    x.ints = ARENA_ARRAY(m->arena, int64_t, src->n ? src->n : 1);
    if (src->n) memcpy(x.ints, src->ints, sizeof(int64_t) * (size_t)src->n);
    break;
  case ATTR_FLOATS:
    x.floats = ARENA_ARRAY(m->arena, double, src->n ? src->n : 1);
    if (src->n)
      memcpy(x.floats, src->floats, sizeof(double) * (size_t)src->n);
    break;
  case ATTR_STRS:
    x.strs = ARENA_ARRAY(m->arena, const char *, src->n ? src->n : 1);
    for (int i = 0; i < src->n; i++) x.strs[i] = intern(m, src->strs[i]);
    break;
  case ATTR_CALL: {
    x.s = intern(m, src->s ? src->s : "");
    IrAttrs args = {NULL, 0};
    for (int i = 0; i < src->n; i++) {
      IrAttr c = attr_copy(m, &src->args[i]);
      attr_put(m, &args, &c);
    }
    x.args = args.v;
    x.n = args.n;
    break;
  }
  default:
    break;
  }
  return x;
}

void ir_attr_set(IrModule *m, IrAttrs *a, const IrAttr *attr) {
  IrAttr x = attr_copy(m, attr);
  attr_put(m, a, &x);
}

const IrAttr *ir_attr_get(const IrAttrs *a, const char *name) {
  if (!a) return NULL;
  for (int i = 0; i < a->n; i++)
    if (strcmp(a->v[i].name, name) == 0) return &a->v[i];
  return NULL;
}

int64_t ir_attr_int(const IrAttrs *a, const char *name, int64_t dflt) {
  const IrAttr *x = ir_attr_get(a, name);
  if (!x) return dflt;
  if (x->kind == ATTR_INT || x->kind == ATTR_BOOL) return x->i;
  if (x->kind == ATTR_INTS && x->n == 1) return x->ints[0];
  return dflt;
}

double ir_attr_float(const IrAttrs *a, const char *name, double dflt) {
  const IrAttr *x = ir_attr_get(a, name);
  if (!x) return dflt;
  if (x->kind == ATTR_FLOAT) return x->f;
  if (x->kind == ATTR_INT) return (double)x->i;
  return dflt;
}

bool ir_attr_bool(const IrAttrs *a, const char *name, bool dflt) {
  const IrAttr *x = ir_attr_get(a, name);
  if (!x) return dflt;
  if (x->kind == ATTR_BOOL || x->kind == ATTR_INT) return x->i != 0;
  return dflt;
}

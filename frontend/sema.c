/*
** This file contains the semantic helpers of the frontend: compile-time
** values, lexical scopes, constants, tensor types written in the source,
** unification of declared argument types with actual values (dimension
** variables, `...`), and the formatting of shape diagnostics.
*/
#include <ctype.h>
#include <inttypes.h>
#include <string.h>

#include "sema.h"

/* ------------------------------------------------------------ values */

static Value *vnew(Sema *S, VKind k) {
  Value *v = ARENA_NEW(S->a, Value);
  v->k = k;
  v->sym = IR_NO_SYM;
  return v;
}

Value *sema_poison(Sema *S) { return vnew(S, V_POISON); }
Value *sema_none(Sema *S) { return vnew(S, V_NONE); }

Value *sema_int(Sema *S, int64_t i) {
  Value *v = vnew(S, V_INT);
  v->i = i;
  return v;
}

Value *sema_float(Sema *S, double f) {
  Value *v = vnew(S, V_FLOAT);
  v->f = f;
  return v;
}

Value *sema_bool(Sema *S, bool b) {
  Value *v = vnew(S, V_BOOL);
  v->i = b;
  return v;
}

Value *sema_str(Sema *S, const char *s) {
  Value *v = vnew(S, V_STR);
  v->s = s;
  return v;
}

Value *sema_list(Sema *S, int n, bool tuple) {
  Value *v = vnew(S, V_LIST);
  v->n = n;
  v->is_tuple = tuple;
  v->elems = ARENA_ARRAY(S->a, Value *, n ? n : 1);
  return v;
}

Value *sema_tensor(Sema *S, IrValue *t) {
  Value *v = vnew(S, V_TENSOR);
  v->t = t;
  return v;
}

bool sema_is_num(const Value *v) { return v->k == V_INT || v->k == V_FLOAT; }

double sema_num(const Value *v) {
  return v->k == V_FLOAT ? v->f : (double)v->i;
}

const char *sema_kind_name(const Value *v) {
  switch (v->k) {
  case V_NONE: return "nothing";
  case V_POISON: return "an invalid value";
  case V_INT: return "int";
  case V_FLOAT: return "float";
  case V_BOOL: return "bool";
  case V_STR: return "str";
  case V_LIST: return v->is_tuple ? "a tuple" : "a list";
  case V_TENSOR: return "a tensor";
  }
  return "?";
}

const char *sema_value_str(Sema *S, const Value *v) {
  switch (v->k) {
  case V_INT: return arena_printf(S->a, "%" PRId64, v->i);
  case V_FLOAT: return arena_printf(S->a, "%g", v->f);
  case V_BOOL: return v->i ? "true" : "false";
  case V_STR: return arena_printf(S->a, "\"%s\"", v->s);
  default: return sema_kind_name(v);
  }
}

/* ------------------------------------------------------------ scopes */

Scope *sema_scope_push(Lower *L, bool func_top) {
  Scope *saved = L->scope;
  Scope *s = ARENA_NEW(L->S->a, Scope);
  s->parent = L->scope;
  s->func_top = func_top;
  L->scope = s;
  return saved;
}

void sema_scope_pop(Lower *L, Scope *saved) { L->scope = saved; }

void sema_bind(Lower *L, const char *name, Value *v, SrcLoc loc) {
  Binding *b = ARENA_NEW(L->S->a, Binding);
  b->name = name;
  b->v = v;
  b->loc = loc;
  b->next = L->scope->b;
  L->scope->b = b;
}

Binding *sema_lookup_local(Lower *L, const char *name, bool *crossed_scan) {
  if (crossed_scan) *crossed_scan = false;
  for (Scope *s = L->scope; s; s = s->parent) {
    for (Binding *b = s->b; b; b = b->next)
      if (strcmp(b->name, name) == 0) return b;
    if (s->scan_top && crossed_scan) *crossed_scan = true;
    if (s->func_top) break;
  }
  return NULL;
}

Def *sema_def_find(Sema *S, const char *name) {
  for (int i = 0; i < S->defs.len; i++) {
    Def *d = S->defs.data[i];
    if (strcmp(d->name, name) == 0) return d;
  }
  return NULL;
}

/* The value of a const: a -D override, else its expression (once). */
Value *sema_const_value(Sema *S, Def *def) {
  if (def->state == 2) return def->cval;
  if (def->state == 1) {
    diag_error(S->d, def->node->name_loc, "constant '%s' depends on itself",
               def->name);
    def->cval = sema_poison(S);
    def->state = 2;
    return def->cval;
  }
  for (int i = 0; i < S->ndefines; i++) {
    if (strcmp(S->defines[i].name, def->name) == 0) {
      S->defines[i].used = true;
      def->cval = S->defines[i].v;
      def->state = 2;
      return def->cval;
    }
  }
  def->state = 1;
  Value *v = sema_const_expr(S, def->node->a);
  if (v->k == V_TENSOR) {
    diag_error(S->d, def->node->a->loc,
               "the value of constant '%s' must be known at compile time",
               def->name);
    v = sema_poison(S);
  }
  AstNode *ty = def->node->type;
  if (ty && ty->kind == AST_TYPE && v->k != V_POISON) {
    const char *k = ty->name;
    bool ok = (!strcmp(k, "int") && v->k == V_INT) ||
              (!strcmp(k, "float") && sema_is_num(v)) ||
              (!strcmp(k, "bool") && v->k == V_BOOL) ||
              (!strcmp(k, "str") && v->k == V_STR);
    if (!ok) {
      diag_error(S->d, def->node->a->loc, "constant '%s' is declared %s but "
                 "its value is %s", def->name, k, sema_kind_name(v));
      v = sema_poison(S);
    } else if (!strcmp(k, "float") && v->k == V_INT) {
      v = sema_float(S, (double)v->i);
    }
  }
  def->cval = v;
  def->state = 2;
  return v;
}

Value *sema_lookup(Lower *L, const char *name, SrcLoc loc) {
  Binding *b = sema_lookup_local(L, name, NULL);
  if (b) return b->v;
  if (strcmp(name, "training") == 0) return sema_bool(L->S, L->training);
  if (strcmp(name, "true") == 0) return sema_bool(L->S, true);
  if (strcmp(name, "false") == 0) return sema_bool(L->S, false);
  Def *d = sema_def_find(L->S, name);
  if (d && d->node->kind == AST_CONST) return sema_const_value(L->S, d);
  return NULL;
}

/* ------------------------------------------------------------- types */

bool sema_is_dimvar_name(const char *name) {
  return name && isupper((unsigned char)name[0]);
}

static const char *type_text(Lower *L, const IrType *t, bool bound) {
  char buf[512];
  int n = snprintf(buf, sizeof buf, "%s[", ir_dtype_name(t->dtype));
  for (int i = 0; i < t->rank && n < (int)sizeof buf - 64; i++) {
    if (i) buf[n++] = ',';
    int s = t->sym[i];
    if (s != IR_NO_SYM && s >= 0 && s < L->m->nsyms) {
      if (bound)
        n += snprintf(buf + n, sizeof buf - n, "%s=%" PRId64,
                      L->m->syms[s].name, t->dim[i]);
      else
        n += snprintf(buf + n, sizeof buf - n, "%s", L->m->syms[s].name);
    } else {
      n += snprintf(buf + n, sizeof buf - n, "%" PRId64, t->dim[i]);
    }
  }
  snprintf(buf + n, sizeof buf - n, "]");
  return arena_strdup(L->S->a, buf);
}

const char *sema_type_str(Lower *L, const IrType *t) {
  return type_text(L, t, true);
}

const char *sema_type_plain(Lower *L, const IrType *t) {
  return type_text(L, t, false);
}

bool sema_types_same(const IrType *a, const IrType *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

/* The source text of loc (for messages quoting a declared type). */
static const char *src_text(Lower *L, SrcLoc loc) {
  const DiagFile *f = loc.file ? diag_find_file(L->S->d, loc.file) : NULL;
  if (!f || loc.offset + loc.len > f->len || loc.len == 0) return "?";
  return arena_strndup(L->S->a, f->text + loc.offset, loc.len);
}

static bool eval_dim(Lower *L, AstNode *e, int64_t *size, int *sym) {
  Value *v = sema_expr(L, e);
  if (v->k == V_POISON) return false;
  if (v->k != V_INT) {
    diag_error(L->S->d, e->loc, "a dimension must be a compile-time int, not %s",
               sema_kind_name(v));
    return false;
  }
  if (v->i < 0) {
    diag_error(L->S->d, e->loc, "dimension is negative (%" PRId64 ")", v->i);
    return false;
  }
  *size = v->i;
  *sym = v->sym;
  return true;
}

bool sema_eval_type(Lower *L, AstNode *type, IrType *out) {
  DType dt;
  if (type && type->kind == AST_TYPE && !ir_dtype_parse(type->name, &dt)) {
    diag_error(L->S->d, type->name_loc.file ? type->name_loc : type->loc,
               "unknown dtype '%s' (expected f32 f16 bf16 f64 i32 i64 u8 "
               "bool)", type->name);
    return false;
  }
  if (!type || type->kind != AST_TYPE || !type->is_tensor) {
    diag_error(L->S->d, type ? type->loc : (SrcLoc){0},
               "expected a tensor type such as f32[4, 8]");
    return false;
  }
  if (type->list.n > IR_MAX_RANK) {
    diag_error(L->S->d, type->loc, "rank %d exceeds the maximum of %d",
               type->list.n, IR_MAX_RANK);
    return false;
  }
  memset(out, 0, sizeof *out);
  out->dtype = dt;
  out->rank = type->list.n;
  bool ok = true;
  for (int i = 0; i < type->list.n; i++) {
    AstNode *e = type->list.v[i];
    out->sym[i] = IR_NO_SYM;
    if (e->kind == AST_ELLIPSIS) {
      diag_error(L->S->d, e->loc, "'...' is only allowed in the types of "
                                  "fn and layer arguments");
      ok = false;
      continue;
    }
    int sym = IR_NO_SYM;
    if (!eval_dim(L, e, &out->dim[i], &sym)) ok = false;
    out->sym[i] = (int16_t)sym;
  }
  return ok;
}

/* A capitalised const of another file than the fn/layer being
** instantiated: in that signature the name is a dimension variable (so
** that `const N = 10` in a program does not fix the N of std's layers). */
static bool foreign_const(Lower *L, const char *name) {
  Def *d = sema_def_find(L->S, name);
  if (!d || d->node->kind != AST_CONST || !sema_is_dimvar_name(name))
    return false;
  const AstNode *fn = L->frame ? L->frame->decl : NULL;
  const char *a = d->node->loc.file, *b = fn ? fn->loc.file : NULL;
  return a && b && strcmp(a, b) != 0;
}

/* Bind or check one declared dimension expression against an actual size. */
static bool unify_dim(Lower *L, AstNode *e, int64_t size, int sym,
                      const char *what, const char *argname, SrcLoc at,
                      int dimno, const IrType *at_type, AstNode *type) {
  Sema *S = L->S;
  if (e->kind == AST_IDENT) {
    Value *cur = NULL;
    if (sema_lookup_local(L, e->name, NULL) || !foreign_const(L, e->name))
      cur = sema_lookup(L, e->name, e->loc);
    if (!cur) {
      if (!sema_is_dimvar_name(e->name)) {
        diag_error(S->d, e->loc, "unknown name '%s' in a type (dimension "
                   "variables are capitalised)", e->name);
        return false;
      }
      Value *v = sema_int(S, size);
      v->sym = sym;
      v->decl_name = e->name;
      v->bound_from = argname;
      v->bound_loc = at;
      sema_bind(L, e->name, v, e->loc);
      return true;
    }
    if (cur->k == V_POISON) return false;
    if (cur->k == V_INT && cur->i == size) return true;
    if (cur->k == V_INT && cur->bound_from) {
      diag_error(S->d, at, "dimension %s is %" PRId64 " here but %" PRId64
                 " from %s", e->name, size, cur->i, cur->bound_from);
      diag_note(S->d, cur->bound_loc, "dimension %s bound to %" PRId64 " here",
                e->name, cur->i);
      return false;
    }
  }
  int64_t want;
  int wsym;
  if (!eval_dim(L, e, &want, &wsym)) return false;
  if (want == size) return true;
  diag_error(S->d, at, "%s has type %s but %s is expected (dimension %d is %"
             PRId64 ", expected %" PRId64 ")", what, sema_type_str(L, at_type),
             src_text(L, type->loc), dimno, size, want);
  return false;
}

/* A compile-time kind (int float bool str) against a value. */
static bool unify_kind(Lower *L, AstNode *type, Value *v, const char *what,
                       SrcLoc at) {
  Sema *S = L->S;
  const char *k = type->name;
  bool ok = (!strcmp(k, "int") && v->k == V_INT) ||
            (!strcmp(k, "float") && sema_is_num(v)) ||
            (!strcmp(k, "bool") && v->k == V_BOOL) ||
            (!strcmp(k, "str") && v->k == V_STR);
  if (strcmp(k, "int") && strcmp(k, "float") && strcmp(k, "bool") &&
      strcmp(k, "str")) {
    diag_error(S->d, type->loc, "unknown type '%s'", k);
    return false;
  }
  if (!ok) {
    diag_error(S->d, at, "%s must be %s, got %s", what, k,
               v->k == V_TENSOR ? sema_type_str(L, &v->t->type)
                                : sema_kind_name(v));
    return false;
  }
  return true;
}

/* Bind `...` to the lead dimensions of t from index ell, or check them
** against an earlier binding. */
static bool unify_ellipsis(Lower *L, AstNode *node, const IrType *t, int ell,
                           int lead, const char *what, SrcLoc at) {
  Sema *S = L->S;
  Binding *b = sema_lookup_local(L, "...", NULL);
  if (!b) {
    Value *lv = sema_list(S, lead, true);
    for (int i = 0; i < lead; i++) {
      lv->elems[i] = sema_int(S, t->dim[ell + i]);
      lv->elems[i]->sym = t->sym[ell + i];
    }
    sema_bind(L, "...", lv, node->loc);
  } else {
    Value *lv = b->v;
    bool same = lv->n == lead;
    for (int i = 0; same && i < lead; i++)
      same = lv->elems[i]->i == t->dim[ell + i];
    if (!same) {
      diag_error(S->d, at, "%s has type %s whose leading dimensions "
                 "('...') differ from those of an earlier argument", what,
                 sema_type_str(L, t));
      return false;
    }
  }
  return true;
}

/* Unify a declared type with a value.  what: "argument 'x' of 'linear'";
** argname: how a later conflict names the binder ("argument 'x'"). */
static bool unify_type(Lower *L, AstNode *type, Value *v, const char *what,
                       const char *argname, SrcLoc at) {
  Sema *S = L->S;
  if (!type || v->k == V_POISON) return v->k != V_POISON;
  if (type->kind == AST_TUPLE_TYPE) {
    if (v->k != V_LIST || v->n != type->list.n) {
      diag_error(S->d, at, "%s must be a tuple of %d values, got %s", what,
                 type->list.n, sema_kind_name(v));
      return false;
    }
    bool ok = true;
    for (int i = 0; i < v->n; i++)
      ok &= unify_type(L, type->list.v[i], v->elems[i], what, argname, at);
    return ok;
  }
  if (type->kind != AST_TYPE) return true;
  DType dt;
  bool is_dtype = ir_dtype_parse(type->name, &dt);
  if (!type->is_tensor && (!is_dtype || !strcmp(type->name, "bool")))
    return unify_kind(L, type, v, what, at);
  if (v->k != V_TENSOR) {
    diag_error(S->d, at, "%s must be a tensor %s, got %s", what,
               src_text(L, type->loc), sema_kind_name(v));
    return false;
  }
  const IrType *t = &v->t->type;
  if (!is_dtype) {
    diag_error(S->d, type->loc, "unknown dtype '%s'", type->name);
    return false;
  }
  if (t->dtype != dt) {
    diag_error(S->d, at, "%s has type %s but %s is expected", what,
               sema_type_str(L, t), src_text(L, type->loc));
    return false;
  }
  if (!type->is_tensor) return true; /* `f32` alone: any shape */
  int ell = -1, nd = 0;
  for (int i = 0; i < type->list.n; i++) {
    if (type->list.v[i]->kind == AST_ELLIPSIS)
      ell = i;
    else
      nd++;
  }
  if ((ell < 0 && t->rank != nd) || (ell >= 0 && t->rank < nd)) {
    diag_error(S->d, at, "%s has type %s but %s is expected (rank %d, "
               "expected %s%d)", what, sema_type_str(L, t),
               src_text(L, type->loc), t->rank, ell >= 0 ? "at least " : "",
               nd);
    return false;
  }
  int lead = ell >= 0 ? t->rank - nd : 0;
  if (ell >= 0 && !unify_ellipsis(L, type->list.v[ell], t, ell, lead, what, at))
    return false;
  int ai = 0;
  for (int i = 0; i < type->list.n; i++) {
    AstNode *e = type->list.v[i];
    if (e->kind == AST_ELLIPSIS) {
      ai += lead;
      continue;
    }
    if (!unify_dim(L, e, t->dim[ai], t->sym[ai], what, argname, at, ai, t,
                   type))
      return false;
    ai++;
  }
  return true;
}

bool sema_unify_arg(Lower *L, AstNode *arg, Value *actual, AstNode *actual_node,
                    SrcLoc call_loc) {
  const char *fname = L->frame && L->frame->decl ? L->frame->decl->name : "?";
  const char *what =
      arena_printf(L->S->a, "argument '%s' of '%s'", arg->name, fname);
  const char *argname = arena_printf(L->S->a, "argument '%s'", arg->name);
  SrcLoc at = actual_node ? actual_node->loc : call_loc;
  /* a number passed for a scalar tensor argument becomes a constant */
  if (arg->type && arg->type->kind == AST_TYPE && sema_is_num(actual)) {
    DType dt;
    if (ir_dtype_parse(arg->type->name, &dt) && arg->type->is_tensor &&
        arg->type->list.n == 0)
      actual = sema_const_tensor(L, sema_num(actual), dt, at);
  }
  if (!unify_type(L, arg->type, actual, what, argname, at)) return false;
  if (arg->type && arg->type->kind == AST_TYPE && !arg->type->is_tensor &&
      !strcmp(arg->type->name, "float") && actual->k == V_INT)
    actual = sema_float(L->S, (double)actual->i); /* never alter a shared value */
  sema_bind(L, arg->name, actual, arg->name_loc);
  return true;
}

bool sema_check_return(Lower *L, AstNode *type, Value *v, SrcLoc loc) {
  if (!type) return true;
  const char *fname = L->frame && L->frame->decl ? L->frame->decl->name : "?";
  const char *what =
      arena_printf(L->S->a, "the value returned by '%s'", fname);
  return unify_type(L, type, v, what, "the return value", loc);
}

/* ------------------------------------------------------- diagnostics */

void sema_note_decl(Lower *L, const Value *v) {
  if (v->k != V_TENSOR || !v->decl_name || !v->decl_what) return;
  diag_note(L->S->d, v->decl_loc, "'%s' declared here as %s", v->decl_name,
            sema_type_plain(L, &v->t->type));
}

static bool noted_before(Value **vals, int i) {
  for (int j = 0; j < i; j++)
    if (vals[j]->k == V_TENSOR && vals[i]->k == V_TENSOR &&
        vals[j]->t == vals[i]->t)
      return true;
  return false;
}

void sema_shape_error(Lower *L, IrOp op, const char *err, int bad, int n,
                      Value **vals, AstNode **nodes, SrcLoc loc) {
  Sema *S = L->S;
  char buf[1024];
  int k = snprintf(buf, sizeof buf, "%s: %s", ir_op_info[op].name, err);
  for (int i = 0; i < n && k < (int)sizeof buf - 1; i++) {
    if (vals[i]->k != V_TENSOR) continue;
    AstNode *nd = nodes ? nodes[i] : NULL;
    const char *nm = nd && nd->kind == AST_IDENT
                         ? nd->name
                         : arena_printf(S->a, "operand %d", i + 1);
    k += snprintf(buf + k, sizeof buf - k, "%s%s is %s", i ? ", " : ": ", nm,
                  sema_type_str(L, &vals[i]->t->type));
  }
  SrcLoc at = loc;
  if (bad >= 0 && bad < n && nodes && nodes[bad] && nodes[bad]->loc.file)
    at = nodes[bad]->loc;
  diag_error(S->d, at, "%s", buf);
  for (int i = 0; i < n; i++)
    if (!noted_before(vals, i)) sema_note_decl(L, vals[i]);
}

/*
** This file contains the lowering of checked .nn code into the tensor IR:
** expressions (compile-time evaluation or IR nodes), statements (let,
** rebinding, for/if unrolling, params and states), layer and fn
** instantiation with parameter naming by call path, scan, and the
** functions of a model (@forward, @loss, @eval_step) and of its train block
** (@lr, IrTrain settings).
**
** Shapes are never computed here: every node goes through ir_build, whose
** shape rules (ir/shape.c) report mismatches that sema_shape_error turns
** into diagnostics at the source expression.
*/
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "sema.h"

static void lower_block(Lower *L, AstNode *blk);
static void lower_stmt(Lower *L, AstNode *s);

static Value *poison_err(Lower *L, SrcLoc loc, const char *msg) {
  diag_error(L->S->d, loc, "%s", msg);
  return sema_poison(L->S);
}

/* ------------------------------------------------------------ builders */

Value *sema_build(Lower *L, IrOp op, int n, Value **vals, AstNode **nodes,
                  const IrAttrs *attrs, const IrType *want, SrcLoc loc) {
  if (!L->blk) {
    diag_error(L->S->d, loc, "tensor operation '%s' in a compile-time context",
               ir_op_info[op].name);
    return sema_poison(L->S);
  }
  IrValue *args[16];
  NNC_ASSERT(n <= 16);
  for (int i = 0; i < n; i++) {
    if (vals[i]->k == V_POISON) return sema_poison(L->S);
    NNC_ASSERT(vals[i]->k == V_TENSOR);
    args[i] = vals[i]->t;
  }
  const char *err = NULL;
  int bad = -1;
  IrValue *r = ir_build(L->m, L->blk, op, n, args, attrs, want, loc, &err, &bad);
  if (!r) {
    sema_shape_error(L, op, err ? err : "invalid operands", bad, n, vals,
                     nodes, loc);
    return sema_poison(L->S);
  }
  return sema_tensor(L->S, r);
}

Value *sema_const_tensor(Lower *L, double v, DType dt, SrcLoc loc) {
  IrAttrs at = {0};
  ir_attr_set_float(L->m, &at, "value", v);
  IrType t = ir_type_scalar(dt);
  return sema_build(L, IR_OP_CONSTANT, 0, NULL, NULL, &at, &t, loc);
}

Value *sema_cast(Lower *L, Value *v, DType dt, SrcLoc loc) {
  if (v->k != V_TENSOR || v->t->type.dtype == dt) return v;
  IrType t = v->t->type;
  t.dtype = dt;
  return sema_build(L, IR_OP_CAST, 1, &v, NULL, NULL, &t, loc);
}

Value *sema_as_tensor(Lower *L, Value *v, DType dt, SrcLoc loc) {
  if (v->k == V_TENSOR || v->k == V_POISON) return v;
  if (sema_is_num(v) || v->k == V_BOOL)
    return sema_const_tensor(L, v->k == V_FLOAT ? v->f : (double)v->i, dt, loc);
  diag_error(L->S->d, loc, "expected a tensor or a number, got %s",
             sema_kind_name(v));
  return sema_poison(L->S);
}

Value *sema_unop_ir(Lower *L, IrOp op, Value *a, AstNode *na, SrcLoc loc) {
  return sema_build(L, op, 1, &a, &na, NULL, NULL, loc);
}

/* -------------------------------------------------- compile-time math */

static IrOp binop_ir(AstOp op) {
  switch (op) {
  case AOP_ADD: return IR_OP_ADD;
  case AOP_SUB: return IR_OP_SUB;
  case AOP_MUL: return IR_OP_MUL;
  case AOP_DIV: return IR_OP_DIV;
  case AOP_POW: return IR_OP_POW;
  case AOP_MATMUL: return IR_OP_MATMUL;
  case AOP_EQ: return IR_OP_EQ;
  case AOP_NE: return IR_OP_NE;
  case AOP_LT: return IR_OP_LT;
  case AOP_GT: return IR_OP_GT;
  case AOP_LE: return IR_OP_LE;
  case AOP_GE: return IR_OP_GE;
  case AOP_AND: return IR_OP_AND;
  case AOP_OR: return IR_OP_OR;
  default: return IR_OP_COUNT;
  }
}

static bool is_cmp(AstOp op) {
  return op == AOP_EQ || op == AOP_NE || op == AOP_LT || op == AOP_GT ||
         op == AOP_LE || op == AOP_GE;
}

static Value *const_cmp(Sema *S, AstOp op, double x, double y) {
  switch (op) {
  case AOP_EQ: return sema_bool(S, x == y);
  case AOP_NE: return sema_bool(S, x != y);
  case AOP_LT: return sema_bool(S, x < y);
  case AOP_GT: return sema_bool(S, x > y);
  case AOP_LE: return sema_bool(S, x <= y);
  default: return sema_bool(S, x >= y);
  }
}

static Value *const_binop(Lower *L, AstOp op, Value *a, Value *b, SrcLoc loc) {
  Sema *S = L->S;
  if (sema_is_num(a) && sema_is_num(b)) {
    bool ints = a->k == V_INT && b->k == V_INT;
    double x = sema_num(a), y = sema_num(b);
    if (is_cmp(op)) return const_cmp(S, op, x, y);
    switch (op) {
    case AOP_ADD: return ints ? sema_int(S, a->i + b->i) : sema_float(S, x + y);
    case AOP_SUB: return ints ? sema_int(S, a->i - b->i) : sema_float(S, x - y);
    case AOP_MUL: return ints ? sema_int(S, a->i * b->i) : sema_float(S, x * y);
    case AOP_DIV:
      if (y == 0) return poison_err(L, loc, "division by zero");
      if (ints) { /* integer (floor) division, as sizes need: (D + 15) / 16 */
        int64_t q = a->i / b->i;
        if ((a->i % b->i != 0) && ((a->i < 0) != (b->i < 0))) q--;
        return sema_int(S, q);
      }
      return sema_float(S, x / y);
    case AOP_MOD:
      if (!ints) return poison_err(L, loc, "'%' needs integers");
      if (b->i == 0) return poison_err(L, loc, "division by zero");
      return sema_int(S, ((a->i % b->i) + b->i) % b->i);
    case AOP_POW:
      if (ints && b->i >= 0 && b->i < 63) {
        int64_t r = 1;
        for (int64_t k = 0; k < b->i; k++) r *= a->i;
        return sema_int(S, r);
      }
      return sema_float(S, pow(x, y));
    default: break;
    }
  }
  if (a->k == V_BOOL && b->k == V_BOOL) {
    switch (op) {
    case AOP_AND: return sema_bool(S, a->i && b->i);
    case AOP_OR: return sema_bool(S, a->i || b->i);
    case AOP_EQ: return sema_bool(S, a->i == b->i);
    case AOP_NE: return sema_bool(S, a->i != b->i);
    default: break;
    }
  }
  if (a->k == V_STR && b->k == V_STR && (op == AOP_EQ || op == AOP_NE))
    return sema_bool(S, (strcmp(a->s, b->s) == 0) == (op == AOP_EQ));
  if (a->k == V_STR && b->k == V_STR && op == AOP_ADD)
    return sema_str(S, arena_printf(S->a, "%s%s", a->s, b->s));
  diag_error(S->d, loc, "operator '%s' is not defined for %s and %s",
             ast_op_str(op), sema_kind_name(a), sema_kind_name(b));
  return sema_poison(S);
}

Value *sema_binop(Lower *L, AstOp op, Value *a, Value *b, AstNode *na,
                  AstNode *nb, SrcLoc loc) {
  if (a->k == V_POISON || b->k == V_POISON) return sema_poison(L->S);
  if (a->k != V_TENSOR && b->k != V_TENSOR)
    return const_binop(L, op, a, b, loc);
  IrOp iop = binop_ir(op);
  if (iop == IR_OP_COUNT) {
    diag_error(L->S->d, loc, "operator '%s' is not defined on tensors",
               ast_op_str(op));
    return sema_poison(L->S);
  }
  if (op == AOP_MATMUL && (a->k != V_TENSOR || b->k != V_TENSOR)) {
    diag_error(L->S->d, a->k != V_TENSOR ? na->loc : nb->loc,
               "'@' needs two tensors, got %s",
               sema_kind_name(a->k != V_TENSOR ? a : b));
    return sema_poison(L->S);
  }
  Value *t = a->k == V_TENSOR ? a : b;
  Value *c = a->k == V_TENSOR ? b : a;
  if (c->k != V_TENSOR) {
    if (!sema_is_num(c) && c->k != V_BOOL) {
      diag_error(L->S->d, (c == a ? na : nb)->loc,
                 "operator '%s' needs a tensor or a number, got %s",
                 ast_op_str(op), sema_kind_name(c));
      return sema_poison(L->S);
    }
    DType dt = t->t->type.dtype;
    if (c->k == V_FLOAT && !ir_dtype_is_float(dt)) {
      t = sema_cast(L, t, DT_F32, loc);
      dt = DT_F32;
    }
    c = sema_as_tensor(L, c, dt, (c == a ? na : nb)->loc);
    if (a->k == V_TENSOR) {
      a = t;
      b = c;
    } else {
      a = c;
      b = t;
    }
  } else if (op == AOP_DIV && !ir_dtype_is_float(a->t->type.dtype) &&
             !ir_dtype_is_float(b->t->type.dtype)) {
    a = sema_cast(L, a, DT_F32, loc);
    b = sema_cast(L, b, DT_F32, loc);
  }
  if (op == AOP_DIV && a->k == V_TENSOR && !ir_dtype_is_float(a->t->type.dtype) &&
      a->t->type.dtype == b->t->type.dtype) {
    a = sema_cast(L, a, DT_F32, loc);
    b = sema_cast(L, b, DT_F32, loc);
  }
  Value *vals[2] = {a, b};
  AstNode *nodes[2] = {na, nb};
  return sema_build(L, iop, 2, vals, nodes, NULL, NULL, loc);
}

static Value *lower_unary(Lower *L, AstNode *e) {
  Value *a = sema_expr(L, e->a);
  Sema *S = L->S;
  if (a->k == V_POISON) return a;
  switch (e->op) {
  case AOP_PLUS:
    if (sema_is_num(a) || a->k == V_TENSOR) return a;
    break;
  case AOP_NEG:
    if (a->k == V_INT) return sema_int(S, -a->i);
    if (a->k == V_FLOAT) return sema_float(S, -a->f);
    if (a->k == V_TENSOR) return sema_unop_ir(L, IR_OP_NEG, a, e->a, e->loc);
    break;
  case AOP_NOT:
    if (a->k == V_BOOL) return sema_bool(S, !a->i);
    if (a->k == V_TENSOR) return sema_unop_ir(L, IR_OP_NOT, a, e->a, e->loc);
    break;
  default: break;
  }
  diag_error(S->d, e->loc, "operator '%s' is not defined for %s",
             ast_op_str(e->op), sema_kind_name(a));
  return sema_poison(S);
}

/* ------------------------------------------------------------- calls */

static const char *frame_path_join(Lower *L, const char *base,
                                   const char *name) {
  return base[0] ? arena_printf(L->S->a, "%s.%s", base, name)
                 : arena_strdup(L->S->a, name);
}

/* The next K of layer `name` in the current parameter scope. */
static int64_t next_count(Lower *L, const char *name) {
  Vec *c = &L->frame->counts;
  for (int i = 0; i + 1 < c->len; i += 2) {
    if (strcmp(c->data[i], name) == 0) {
      int64_t k = (int64_t)(intptr_t)c->data[i + 1];
      c->data[i + 1] = (void *)(intptr_t)(k + 1);
      return k;
    }
  }
  vec_push(L->S->a, c, (void *)name);
  vec_push(L->S->a, c, (void *)(intptr_t)1);
  return 0;
}

static bool is_tensor_arg(AstNode *arg) {
  DType dt;
  return arg->type && arg->type->kind == AST_TYPE &&
         (arg->type->is_tensor || (ir_dtype_parse(arg->type->name, &dt) &&
                                   strcmp(arg->type->name, "bool")));
}

/* Match call arguments to the declared parameters of decl. */
static bool match_args(Lower *L, AstNode *decl, AstNode *call, Value **vals,
                       Value **bound, AstNode **bnodes) {
  Sema *S = L->S;
  int np = decl->list.n, pos = 0;
  bool ok = true;
  for (int i = 0; i < call->list.n; i++) {
    AstNode *an = call->list.v[i];
    int slot = -1;
    if (an->kind == AST_NAMED_ARG) {
      for (int j = 0; j < np; j++)
        if (strcmp(decl->list.v[j]->name, an->name) == 0) slot = j;
      if (slot < 0) {
        diag_error(S->d, an->name_loc.file ? an->name_loc : an->loc,
                   "'%s' has no parameter named '%s'", decl->name, an->name);
        diag_note(S->d, decl->name_loc, "'%s' declared here", decl->name);
        ok = false;
        continue;
      }
      if (bound[slot]) {
        diag_error(S->d, an->loc, "argument '%s' of '%s' given twice",
                   an->name, decl->name);
        ok = false;
        continue;
      }
      bnodes[slot] = an->a;
    } else {
      if (pos >= np) {
        diag_error(S->d, an->loc, "'%s' takes %d argument%s, got %d",
                   decl->name, np, np == 1 ? "" : "s", call->list.n);
        diag_note(S->d, decl->name_loc, "'%s' declared here", decl->name);
        return false;
      }
      slot = pos++;
      bnodes[slot] = an;
    }
    bound[slot] = vals[i];
  }
  return ok;
}

/* "in this call of 'f'" after an error in f's body: at most 4 per error,
** and one for a run of recursive calls at the same place. */
static void call_note(Lower *L, AstNode *call, AstNode *decl) {
  Diag *d = L->S->d;
  if (L->chain_errs != d->nerrors) {
    L->chain_errs = d->nerrors;
    L->chain_n = 0;
    L->chain_last = (SrcLoc){0};
  }
  if (L->chain_n >= 4 || (L->chain_last.file == call->loc.file &&
                          L->chain_last.offset == call->loc.offset))
    return;
  L->chain_n++;
  L->chain_last = call->loc;
  diag_note(d, call->loc, "in this call of '%s'", decl->name);
}

static Value *instantiate(Lower *L, Def *def, AstNode *call, Value **vals) {
  Sema *S = L->S;
  AstNode *decl = def->node;
  bool is_layer = decl->kind == AST_LAYER;
  int np = decl->list.n;
  if (L->frame && L->frame->depth > 64)
    return poison_err(L, call->loc, "too many nested calls (recursion?)");
  Value **bound = ARENA_ARRAY(S->a, Value *, np ? np : 1);
  AstNode **bnodes = ARENA_ARRAY(S->a, AstNode *, np ? np : 1);
  if (!match_args(L, decl, call, vals, bound, bnodes)) return sema_poison(S);
  for (int i = 0; i < call->list.n; i++)
    if (vals[i]->k == V_POISON) return sema_poison(S);

  Frame fr = {0};
  fr.parent = L->frame;
  fr.decl = decl;
  fr.depth = L->frame ? L->frame->depth + 1 : 1;
  fr.call_loc = call->loc;
  const char *base = L->frame ? L->frame->path : "";
  if (is_layer) {
    const char *nm = call->scope;
    if (!nm)
      nm = arena_printf(S->a, "%s.%" PRId64, decl->name,
                        next_count(L, decl->name));
    fr.path = frame_path_join(L, base, nm);
  } else {
    fr.path = base;
    if (L->frame) fr.counts = L->frame->counts;
  }
  if (!is_layer && call->scope)
    diag_warning(S->d, call->loc, "'as %s' has no effect on a fn call",
                 call->scope);
  Frame *saved_frame = L->frame;
  Scope *saved_scope = sema_scope_push(L, true);
  ScanCtx *saved_scan = L->scan;
  L->scan = NULL;
  L->frame = &fr;
  bool ok = true;
  for (int pass = 0; pass < 2 && ok; pass++) {
    for (int i = 0; i < np && ok; i++) {
      AstNode *arg = decl->list.v[i];
      if (is_tensor_arg(arg) != (pass == 1)) continue;
      Value *v = bound[i];
      if (!v) {
        if (!arg->a) {
          diag_error(S->d, call->loc, "missing argument '%s' of '%s'",
                     arg->name, decl->name);
          diag_note(S->d, decl->name_loc, "'%s' declared here", decl->name);
          ok = false;
          break;
        }
        v = sema_expr(L, arg->a);
        if (v->k == V_POISON) {
          ok = false;
          break;
        }
      }
      ok = sema_unify_arg(L, arg, v, bnodes[i], call->loc);
    }
  }
  Value *ret = sema_poison(S);
  int errs = S->d->nerrors;
  if (ok) {
    lower_block(L, decl->body);
    ret = fr.ret ? fr.ret : sema_none(S);
    if (ret->k != V_POISON && decl->type &&
        !sema_check_return(L, decl->type, ret,
                           fr.ret_loc.file ? fr.ret_loc : call->loc))
      ret = sema_poison(S);
    /* say which instantiation failed (layers are checked per call) */
    if (S->d->nerrors > errs && !fr.err_at_call) call_note(L, call, decl);
  }
  if (saved_frame && !is_layer) saved_frame->counts = fr.counts;
  L->frame = saved_frame;
  L->scan = saved_scan;
  sema_scope_pop(L, saved_scope);
  return ret;
}

static Value *lower_call(Lower *L, AstNode *e) {
  Sema *S = L->S;
  if (!e->a || e->a->kind != AST_IDENT)
    return poison_err(L, e->loc, "only named functions can be called");
  const char *name = e->a->name;
  int n = e->list.n;
  Value **vals = ARENA_ARRAY(S->a, Value *, n ? n : 1);
  bool bad = false;
  for (int i = 0; i < n; i++) {
    AstNode *an = e->list.v[i];
    vals[i] = sema_expr(L, an->kind == AST_NAMED_ARG ? an->a : an);
    if (vals[i]->k == V_POISON) bad = true;
  }
  Def *def = sema_def_find(S, name);
  if (def && (def->node->kind == AST_FN || def->node->kind == AST_LAYER)) {
    if (bad) return sema_poison(S);
    return instantiate(L, def, e, vals);
  }
  DType dt;
  if (ir_dtype_parse(name, &dt)) {
    if (bad) return sema_poison(S);
    if (n != 1 || e->list.v[0]->kind == AST_NAMED_ARG)
      return poison_err(L, e->loc, "a cast takes one argument");
    Value *v = vals[0];
    if (v->k == V_TENSOR) return sema_cast(L, v, dt, e->loc);
    if (sema_is_num(v) || v->k == V_BOOL) {
      double x = v->k == V_FLOAT ? v->f : (double)v->i;
      if (dt == DT_BOOL) return sema_bool(S, x != 0);
      if (ir_dtype_is_float(dt)) return sema_float(S, x);
      return sema_int(S, (int64_t)x);
    }
    diag_error(S->d, e->list.v[0]->loc, "cannot cast %s to %s",
               sema_kind_name(v), name);
    return sema_poison(S);
  }
  if (sema_builtin_exists(name)) {
    if (bad) return sema_poison(S);
    return sema_builtin_call(L, name, e, vals, n);
  }
  if (def)
    diag_error(S->d, e->a->loc, "'%s' is not a function", name);
  else
    diag_error(S->d, e->a->loc, "unknown function '%s'", name);
  return sema_poison(S);
}

/* ------------------------------------------------- other expressions */

static Value *lower_index(Lower *L, AstNode *e) {
  Sema *S = L->S;
  AstNode *base = e->a;
  if (base->kind == AST_IDENT && !sema_lookup(L, base->name, base->loc) &&
      sema_builtin_exists(base->name)) {
    /* zeros[B, H], ones[..], rand[..]: the shape is the index list */
    Value *shape = sema_list(S, e->list.n, false);
    for (int i = 0; i < e->list.n; i++) {
      shape->elems[i] = sema_expr(L, e->list.v[i]);
      if (shape->elems[i]->k == V_POISON) return shape->elems[i];
    }
    return sema_builtin_call(L, base->name, e, &shape, -1);
  }
  Value *b = sema_expr(L, base);
  if (b->k == V_POISON) return b;
  if (e->list.n != 1)
    return poison_err(L, e->loc, "indexing takes one index");
  Value *ix = sema_expr(L, e->list.v[0]);
  if (ix->k == V_POISON) return ix;
  if (b->k == V_LIST) {
    if (ix->k != V_INT)
      return poison_err(L, e->list.v[0]->loc, "a list index must be an int");
    int64_t k = ix->i < 0 ? ix->i + b->n : ix->i;
    if (k < 0 || k >= b->n) {
      diag_error(S->d, e->list.v[0]->loc,
                 "index %" PRId64 " out of range for %d elements", ix->i, b->n);
      return sema_poison(S);
    }
    return b->elems[k];
  }
  if (b->k != V_TENSOR) {
    diag_error(S->d, base->loc, "cannot index %s", sema_kind_name(b));
    return sema_poison(S);
  }
  if (ix->k == V_INT) ix = sema_const_tensor(L, (double)ix->i, DT_I32, e->loc);
  Value *vals[2] = {b, ix};
  AstNode *nodes[2] = {base, e->list.v[0]};
  return sema_build(L, IR_OP_GATHER, 2, vals, nodes, NULL, NULL, e->loc);
}

static Value *lower_field(Lower *L, AstNode *e) {
  Sema *S = L->S;
  Value *b = sema_expr(L, e->a);
  if (b->k == V_POISON) return b;
  if (b->k == V_TENSOR) {
    const IrType *t = &b->t->type;
    if (!strcmp(e->name, "shape")) {
      Value *l = sema_list(S, t->rank, true);
      for (int i = 0; i < t->rank; i++) {
        l->elems[i] = sema_int(S, t->dim[i]);
        l->elems[i]->sym = t->sym[i];
      }
      return l;
    }
    if (!strcmp(e->name, "rank")) return sema_int(S, t->rank);
    if (!strcmp(e->name, "dtype"))
      return sema_str(S, ir_dtype_name(t->dtype));
  }
  if (b->k == V_LIST && !strcmp(e->name, "len")) return sema_int(S, b->n);
  diag_error(S->d, e->loc, "%s has no field '%s'", sema_kind_name(b), e->name);
  return sema_poison(S);
}

static Value *lower_ident(Lower *L, AstNode *e) {
  Value *v = sema_lookup(L, e->name, e->loc);
  if (v) return v;
  Def *d = sema_def_find(L->S, e->name);
  if (d)
    diag_error(L->S->d, e->loc, "'%s' is a %s, not a value", e->name,
               d->node->kind == AST_MODEL ? "model" : "function");
  else
    diag_error(L->S->d, e->loc, "unknown name '%s'", e->name);
  return sema_poison(L->S);
}

/* The pieces of one scan being built. */
typedef struct ScanB {
  AstNode *e;
  int nc, ns;
  Value **ops;      /* carry inits, then sequences */
  int64_t *axes;    /* one per sequence, normalised */
  int64_t len;      /* common length of the sequences */
  int lensym;
  IrBlock *body;
  Scope *scope;     /* the body's scope (carries are bound here) */
  ScanCtx sc;
  int nr;
  IrValue **rets;
  IrType *rt;
} ScanB;

/* Carry inits and sequences; false after reporting errors. */
static bool scan_operands(Lower *L, ScanB *sb) {
  Sema *S = L->S;
  AstNode *e = sb->e;
  bool ok = true;
  for (int i = 0; i < sb->nc; i++) {
    AstNode *c = e->list.v[i];
    Value *v = sema_expr(L, c->a);
    if (sema_is_num(v)) v = sema_as_tensor(L, v, DT_F32, c->a->loc);
    if (v->k != V_TENSOR && v->k != V_POISON) {
      diag_error(S->d, c->a->loc, "carry '%s' must start as a tensor, got %s",
                 c->name, sema_kind_name(v));
      v = sema_poison(S);
    }
    ok &= v->k != V_POISON;
    sb->ops[i] = v;
  }
  sb->len = -1;
  for (int i = 0; i < sb->ns; i++) {
    AstNode *q = e->list2.v[i];
    Value *v = sema_expr(L, q->a);
    Value *ax = q->b ? sema_expr(L, q->b) : sema_int(S, 0);
    sb->ops[sb->nc + i] = v;
    if (v->k == V_POISON || ax->k == V_POISON) {
      ok = false;
      continue;
    }
    if (v->k != V_TENSOR || ax->k != V_INT) {
      diag_error(S->d, v->k != V_TENSOR ? q->a->loc : q->b->loc,
                 v->k != V_TENSOR ? "a scan sequence must be a tensor"
                                  : "a scan axis must be a compile-time int");
      ok = false;
      continue;
    }
    const IrType *t = &v->t->type;
    int a;
    if (!ir_axis(ax->i, t->rank, &a)) {
      diag_error(S->d, q->b ? q->b->loc : q->loc, "axis %" PRId64 " out of "
                 "range for %s", ax->i, sema_type_str(L, t));
      ok = false;
      continue;
    }
    sb->axes[i] = a;
    if (sb->len >= 0 && t->dim[a] != sb->len) {
      diag_error(S->d, q->a->loc, "scan sequences differ in length: %" PRId64
                 " vs %" PRId64, t->dim[a], sb->len);
      ok = false;
    }
    sb->len = t->dim[a];
    sb->lensym = t->sym[a];
  }
  return ok;
}

/* The body block: carries and slices as arguments, statements lowered. */
static void scan_body(Lower *L, ScanB *sb) {
  Sema *S = L->S;
  AstNode *e = sb->e;
  sb->body = ir_block_new(L->m, L->fn);
  sema_scope_push(L, false);
  sb->scope = L->scope;
  sb->scope->scan_top = true;
  for (int i = 0; i < sb->nc; i++) {
    AstNode *c = e->list.v[i];
    IrValue *a = ir_block_add_arg(L->m, sb->body, sb->ops[i]->t->type, c->name);
    sema_bind(L, c->name, sema_tensor(S, a), c->name_loc);
  }
  for (int i = 0; i < sb->ns; i++) {
    AstNode *q = e->list2.v[i];
    IrType t = sb->ops[sb->nc + i]->t->type;
    for (int k = (int)sb->axes[i]; k + 1 < t.rank; k++) {
      t.dim[k] = t.dim[k + 1];
      t.sym[k] = t.sym[k + 1];
    }
    t.rank--;
    IrValue *a = ir_block_add_arg(L->m, sb->body, t, q->name);
    sema_bind(L, q->name, sema_tensor(S, a), q->name_loc);
  }
  IrBlock *saved_blk = L->blk;
  sb->sc.parent = L->scan;
  L->scan = &sb->sc;
  L->blk = sb->body;
  lower_block(L, e->body);
  L->blk = saved_blk;
  L->scan = sb->sc.parent;
}

/* The new carries (same types as before) as the body's first returns. */
static bool scan_carries(Lower *L, ScanB *sb) {
  Sema *S = L->S;
  bool ok = true;
  for (int i = 0; i < sb->nc; i++) {
    AstNode *c = sb->e->list.v[i];
    const IrType *before = &sb->ops[i]->t->type;
    Value *v = NULL;
    for (Binding *b = sb->scope->b; b && !v; b = b->next)
      if (!strcmp(b->name, c->name)) v = b->v;
    if (!v || v->k == V_POISON) {
      ok = false;
      continue;
    }
    if (sema_is_num(v)) {
      IrBlock *saved = L->blk;
      L->blk = sb->body;
      v = sema_as_tensor(L, v, before->dtype, c->loc);
      L->blk = saved;
    }
    if (v->k != V_TENSOR || !sema_types_same(&v->t->type, before)) {
      diag_error(S->d, c->loc, "carry '%s' changes type: %s before, %s after",
                 c->name, sema_type_str(L, before),
                 v->k == V_TENSOR ? sema_type_str(L, &v->t->type)
                                  : sema_kind_name(v));
      ok = false;
      continue;
    }
    sb->rets[i] = v->t;
    sb->rt[i] = *before;
  }
  return ok;
}

/* Emitted values, stacked along the scan axis in the results. */
static bool scan_emits(Lower *L, ScanB *sb) {
  Sema *S = L->S;
  bool ok = true;
  for (int i = 0; i < sb->sc.nemit; i++) {
    Value *v = sb->sc.emitted[i];
    SrcLoc at = sb->sc.emit_nodes[i]->loc;
    if (v->k == V_POISON) {
      ok = false;
      continue;
    }
    if (v->k != V_TENSOR || v->t->type.rank >= IR_MAX_RANK) {
      diag_error(S->d, at, "emit needs a tensor of rank < %d, got %s",
                 IR_MAX_RANK, v->k == V_TENSOR ? sema_type_str(L, &v->t->type)
                                               : sema_kind_name(v));
      ok = false;
      continue;
    }
    IrType t = v->t->type;
    int at_axis = (int)sb->axes[0] < t.rank ? (int)sb->axes[0] : t.rank;
    for (int k = t.rank; k > at_axis; k--) {
      t.dim[k] = t.dim[k - 1];
      t.sym[k] = t.sym[k - 1];
    }
    t.dim[at_axis] = sb->len;
    t.sym[at_axis] = (int16_t)sb->lensym;
    t.rank++;
    sb->rets[sb->nc + i] = v->t;
    sb->rt[sb->nc + i] = t;
  }
  return ok;
}

/* scan [reverse] (h = init, ...; xt in x along 1) { body }: one IR scan
** node; its value is the stacked emitted values (a tuple when several),
** or the final carries when nothing is emitted. */
static Value *lower_scan(Lower *L, AstNode *e) {
  Sema *S = L->S;
  IrModule *m = L->m;
  if (!L->blk) return poison_err(L, e->loc, "scan in a compile-time context");
  ScanB sb;
  memset(&sb, 0, sizeof sb);
  sb.e = e;
  sb.nc = e->list.n;
  sb.ns = e->list2.n;
  if (sb.ns == 0)
    return poison_err(L, e->loc, "scan needs at least one sequence");
  sb.ops = ARENA_ARRAY(S->a, Value *, sb.nc + sb.ns);
  sb.axes = ARENA_ARRAY(S->a, int64_t, sb.ns);
  if (!scan_operands(L, &sb)) return sema_poison(S);
  Scope *saved_scope = L->scope;
  scan_body(L, &sb);
  sb.nr = sb.nc + sb.sc.nemit;
  sb.rets = ARENA_ARRAY(S->a, IrValue *, sb.nr ? sb.nr : 1);
  sb.rt = ARENA_ARRAY(S->a, IrType, sb.nr ? sb.nr : 1);
  bool ok = scan_carries(L, &sb);
  ok &= scan_emits(L, &sb);
  sema_scope_pop(L, saved_scope);
  if (!ok) return sema_poison(S);
  ir_block_set_rets(m, sb.body, sb.nr, sb.rets);
  IrValue **args = ARENA_ARRAY(S->a, IrValue *, sb.nc + sb.ns);
  for (int i = 0; i < sb.nc + sb.ns; i++) args[i] = sb.ops[i]->t;
  IrNode *node = ir_node_new(m, L->blk, IR_OP_SCAN, sb.nc + sb.ns, args,
                             sb.nr, sb.rt, e->loc);
  node->body = sb.body;
  sb.body->owner = node;
  ir_attr_set_int(m, &node->attrs, "ncarry", sb.nc);
  ir_attr_set_ints(m, &node->attrs, "axes", sb.ns, sb.axes);
  if (e->ival) ir_attr_set_bool(m, &node->attrs, "reverse", true);
  int first = sb.sc.nemit ? sb.nc : 0, cnt = sb.sc.nemit ? sb.sc.nemit : sb.nc;
  if (cnt == 1) return sema_tensor(S, node->res[first]);
  Value *l = sema_list(S, cnt, true);
  for (int i = 0; i < cnt; i++)
    l->elems[i] = sema_tensor(S, node->res[first + i]);
  return l;
}

Value *sema_expr(Lower *L, AstNode *e) {
  Sema *S = L->S;
  if (!e) return sema_poison(S);
  switch (e->kind) {
  case AST_NUM:
    return e->is_int ? sema_int(S, e->ival) : sema_float(S, e->num);
  case AST_STR: return sema_str(S, e->str);
  case AST_BOOL: return sema_bool(S, e->ival != 0);
  case AST_IDENT: return lower_ident(L, e);
  case AST_UNARY: return lower_unary(L, e);
  case AST_BINARY: {
    Value *a = sema_expr(L, e->a);
    Value *b = sema_expr(L, e->b);
    return sema_binop(L, e->op, a, b, e->a, e->b, e->loc);
  }
  case AST_CALL: return lower_call(L, e);
  case AST_INDEX: return lower_index(L, e);
  case AST_FIELD: return lower_field(L, e);
  case AST_TUPLE:
  case AST_LIST: {
    Value *l = sema_list(S, e->list.n, e->kind == AST_TUPLE);
    for (int i = 0; i < e->list.n; i++) {
      l->elems[i] = sema_expr(L, e->list.v[i]);
      if (l->elems[i]->k == V_POISON) return l->elems[i];
    }
    return l;
  }
  case AST_RANGE: {
    Value *a = sema_expr(L, e->a), *b = sema_expr(L, e->b);
    if (a->k == V_POISON || b->k == V_POISON) return sema_poison(S);
    if (a->k != V_INT || b->k != V_INT)
      return poison_err(L, e->loc, "a range needs compile-time ints");
    if (b->i - a->i > 100000)
      return poison_err(L, e->loc, "range too long to unroll");
    int n = b->i > a->i ? (int)(b->i - a->i) : 0;
    Value *l = sema_list(S, n, false);
    for (int i = 0; i < n; i++) l->elems[i] = sema_int(S, a->i + i);
    return l;
  }
  case AST_SCAN: return lower_scan(L, e);
  case AST_NAMED_ARG:
    return poison_err(L, e->loc, "a named argument is only allowed in a call");
  default:
    diag_error(S->d, e->loc, "expected an expression, found %s",
               ast_kind_name(e->kind));
    return sema_poison(S);
  }
}

/* -------------------------------------------------------- statements */

static const char *const initialisers[] = {
    "zeros", "ones", "constant", "normal", "uniform", "glorot_uniform",
    "glorot_normal", "he_normal", "he_uniform", "orthogonal", "hippo_legs",
    "s4d_lin", "s4d_real", NULL};

/* Names of positional initialiser arguments. */
static const char *init_posname(const char *init, int i) {
  static const char *const cst[] = {"value"}, *const nrm[] = {"mean", "std"},
                           *const uni[] = {"low", "high"};
  if (!strcmp(init, "constant") && i < 1) return cst[i];
  if (!strcmp(init, "normal") && i < 2) return nrm[i];
  if (!strcmp(init, "uniform") && i < 2) return uni[i];
  if (i == 0) return "gain";
  return NULL;
}

static bool lower_init(Lower *L, AstNode *ie, const char **name, IrAttrs *at) {
  Sema *S = L->S;
  *name = "zeros";
  if (!ie) return true;
  AstNode *callee = ie->kind == AST_CALL ? ie->a : ie;
  if (!callee || callee->kind != AST_IDENT) {
    diag_error(S->d, ie->loc, "an initialiser is a name such as glorot_uniform "
                              "or a call such as normal(std: 0.02)");
    return false;
  }
  int k = 0;
  while (initialisers[k] && strcmp(initialisers[k], callee->name)) k++;
  if (!initialisers[k]) {
    diag_error(S->d, callee->loc, "unknown initialiser '%s'", callee->name);
    diag_note(S->d, (SrcLoc){0}, "valid initialisers: zeros ones constant "
              "normal uniform glorot_uniform glorot_normal he_normal "
              "he_uniform orthogonal hippo_legs s4d_lin s4d_real");
    return false;
  }
  *name = initialisers[k];
  if (ie->kind != AST_CALL) return true;
  for (int i = 0; i < ie->list.n; i++) {
    AstNode *an = ie->list.v[i];
    bool named = an->kind == AST_NAMED_ARG;
    const char *an_name = named ? an->name : init_posname(*name, i);
    if (!an_name) {
      diag_error(S->d, an->loc, "too many arguments for initialiser '%s'",
                 *name);
      return false;
    }
    Value *v = sema_expr(L, named ? an->a : an);
    if (v->k == V_POISON) return false;
    if (sema_is_num(v))
      ir_attr_set_float(L->m, at, an_name, sema_num(v));
    else if (v->k == V_BOOL)
      ir_attr_set_bool(L->m, at, an_name, v->i);
    else if (v->k == V_STR)
      ir_attr_set_str(L->m, at, an_name, v->s);
    else {
      diag_error(S->d, an->loc, "an initialiser argument must be a "
                 "compile-time number, got %s", sema_kind_name(v));
      return false;
    }
  }
  return true;
}

static void lower_global(Lower *L, AstNode *s) {
  Sema *S = L->S;
  bool is_state = s->kind == AST_STATE;
  const char *what = is_state ? "state" : "param";
  SrcLoc nl = s->name_loc.file ? s->name_loc : s->loc;
  if (L->frame->decl && L->frame->decl->kind == AST_FN) {
    diag_error(S->d, s->loc, "fn '%s' cannot declare a %s; make it a layer",
               L->frame->decl->name, what);
    sema_bind(L, s->name, sema_poison(S), nl);
    return;
  }
  if (L->scan) {
    diag_error(S->d, s->loc, "a %s cannot be declared inside a scan body", what);
    sema_bind(L, s->name, sema_poison(S), nl);
    return;
  }
  IrType t;
  const char *init;
  IrAttrs at = {0};
  if (!sema_eval_type(L, s->type, &t) || !lower_init(L, s->a, &init, &at)) {
    sema_bind(L, s->name, sema_poison(S), nl);
    return;
  }
  const char *gname = frame_path_join(L, L->frame->path, s->name);
  SrcLoc here = L->frame->call_loc.file ? L->frame->call_loc : nl;
  for (int i = 0; i + 1 < L->made_globals.len; i += 2) {
    IrGlobal *g = L->made_globals.data[i];
    SrcLoc *first = L->made_globals.data[i + 1];
    if (!strcmp(g->name, gname)) {
      diag_error(S->d, here, "%s '%s' is made twice (name the calls apart "
                 "with 'as NAME')", what, gname);
      diag_note(S->d, first->file ? *first : g->loc, "first made here");
      L->frame->err_at_call = true;
      sema_bind(L, s->name, sema_poison(S), nl);
      return;
    }
  }
  IrGlobal *g = ir_global_find(L->m, gname);
  if (g && !sema_types_same(&g->type, &t)) {
    diag_error(S->d, s->type->loc, "%s '%s' has type %s here but %s in "
               "another function", what, gname, sema_type_str(L, &t),
               sema_type_str(L, &g->type));
    sema_bind(L, s->name, sema_poison(S), nl);
    return;
  }
  if (!g) {
    g = ir_global_add(L->m, is_state ? IRG_STATE : IRG_PARAM, gname, t, init,
                      nl);
    for (int i = 0; i < at.n; i++) ir_attr_set(L->m, &g->init_attrs, &at.v[i]);
  }
  SrcLoc *hl = ARENA_NEW(S->a, SrcLoc);
  *hl = here;
  vec_push(S->a, &L->made_globals, g);
  vec_push(S->a, &L->made_globals, hl);
  Value *v = sema_tensor(S, g->value);
  v->global = g;
  v->decl_name = s->name;
  v->decl_what = what;
  v->decl_loc = nl;
  sema_bind(L, s->name, v, nl);
}

static void lower_let(Lower *L, AstNode *s) {
  Sema *S = L->S;
  Value *v = sema_expr(L, s->a);
  int n = s->list.n;
  if (n == 1) {
    sema_bind(L, s->list.v[0]->name, v, s->list.v[0]->loc);
    return;
  }
  if (v->k != V_POISON && (v->k != V_LIST || v->n != n)) {
    if (v->k == V_LIST)
      diag_error(S->d, s->a->loc, "%d names are bound but the value has %d "
                 "elements", n, v->n);
    else
      diag_error(S->d, s->a->loc, "%d names are bound but the value is %s, "
                 "not a tuple", n, sema_kind_name(v));
    v = sema_poison(S);
  }
  for (int i = 0; i < n; i++)
    sema_bind(L, s->list.v[i]->name,
              v->k == V_POISON ? v : v->elems[i], s->list.v[i]->loc);
}

static void lower_assign(Lower *L, AstNode *s) {
  Sema *S = L->S;
  bool crossed;
  Binding *b = sema_lookup_local(L, s->name, &crossed);
  SrcLoc nl = s->name_loc.file ? s->name_loc : s->loc;
  Value *v = sema_expr(L, s->a);
  if (!b) {
    diag_error(S->d, nl, "'%s' is not bound; use 'let %s = ...' to bind a "
               "new name", s->name, s->name);
    return;
  }
  if (crossed && (b->v->k == V_TENSOR || v->k == V_TENSOR)) {
    diag_error(S->d, nl, "cannot rebind '%s', which is bound outside the "
               "scan; make it a carry", s->name);
    return;
  }
  b->v = v;
}

static void lower_update(Lower *L, AstNode *s) {
  Sema *S = L->S;
  SrcLoc nl = s->name_loc.file ? s->name_loc : s->loc;
  if (!L->frame->decl || L->frame->decl->kind != AST_LAYER) {
    diag_error(S->d, s->loc, "a state update ('<-') is only allowed in a layer");
    return;
  }
  Value *st = sema_lookup(L, s->name, nl);
  Value *v = sema_expr(L, s->a);
  if (!st) {
    diag_error(S->d, nl, "unknown name '%s'", s->name);
    return;
  }
  if (st->k == V_POISON || v->k == V_POISON) return;
  if (!st->global || st->global->kind != IRG_STATE) {
    diag_error(S->d, nl, "'%s' is not a state; '<-' updates a state", s->name);
    return;
  }
  if (sema_is_num(v)) v = sema_as_tensor(L, v, st->t->type.dtype, s->a->loc);
  if (v->k != V_TENSOR || !sema_types_same(&v->t->type, &st->t->type)) {
    diag_error(S->d, s->a->loc, "the new value of state '%s' has type %s but "
               "the state is %s", s->name,
               v->k == V_TENSOR ? sema_type_str(L, &v->t->type)
                                : sema_kind_name(v),
               sema_type_str(L, &st->t->type));
    sema_note_decl(L, st);
    return;
  }
  if (L->mode != LM_LOSS) return;
  for (int i = 0; i + 1 < L->updates.len; i += 2)
    if (L->updates.data[i] == st->global) {
      L->updates.data[i + 1] = v;
      return;
    }
  vec_push(S->a, &L->updates, st->global);
  vec_push(S->a, &L->updates, v);
}

static void lower_for(Lower *L, AstNode *s) {
  Sema *S = L->S;
  Value *it = sema_expr(L, s->a);
  if (it->k == V_POISON) return;
  if (it->k != V_LIST) {
    diag_error(S->d, s->a->loc, "for needs a range a..b or a list, got %s",
               sema_kind_name(it));
    return;
  }
  SrcLoc nl = s->name_loc.file ? s->name_loc : s->loc;
  for (int i = 0; i < it->n && !L->frame->returned; i++) {
    int errs = S->d->nerrors;
    Scope *saved = sema_scope_push(L, false);
    sema_bind(L, s->name, it->elems[i], nl);
    lower_block(L, s->body);
    sema_scope_pop(L, saved);
    if (S->d->nerrors > errs) break; /* the same mistake in every iteration */
  }
}

static void lower_if(Lower *L, AstNode *s) {
  Sema *S = L->S;
  Value *c = sema_expr(L, s->a);
  if (c->k == V_POISON) return;
  if (c->k == V_TENSOR) {
    diag_error(S->d, s->a->loc, "if needs a compile-time condition; use "
               "where(c, a, b) for tensors");
    return;
  }
  if (c->k != V_BOOL) {
    diag_error(S->d, s->a->loc, "an if condition must be a bool, got %s",
               sema_kind_name(c));
    return;
  }
  AstNode *pick = c->i ? s->body : s->b;
  if (!pick) return;
  Scope *saved = sema_scope_push(L, false);
  if (pick->kind == AST_BLOCK)
    lower_block(L, pick);
  else
    lower_stmt(L, pick);
  sema_scope_pop(L, saved);
}

/* Model statements record their values in the lowering's outputs. */
typedef struct ModelOut {
  Vec names;  /* const char* */
  Vec vals;   /* Value* */
  Value *loss;
  AstNode *loss_node;
  Vec mnames, mvals;
} ModelOut;

static ModelOut *model_out(Lower *L);

static bool check_scalar(Lower *L, Value *v, AstNode *e, const char *what) {
  if (v->k == V_POISON) return false;
  if (sema_is_num(v)) return true;
  if (v->k != V_TENSOR || v->t->type.rank != 0 ||
      !ir_dtype_is_float(v->t->type.dtype)) {
    diag_error(L->S->d, e->loc, "%s must be a scalar float tensor, got %s",
               what, v->k == V_TENSOR ? sema_type_str(L, &v->t->type)
                                      : sema_kind_name(v));
    return false;
  }
  return true;
}

static void lower_model_stmt(Lower *L, AstNode *s) {
  Sema *S = L->S;
  ModelOut *mo = model_out(L);
  if (L->frame->decl || !mo) {
    diag_error(S->d, s->loc, "'%s' is only allowed in a model body",
               s->kind == AST_INPUT    ? "input"
               : s->kind == AST_OUTPUT ? "output"
               : s->kind == AST_LOSS   ? "loss"
                                       : "metric");
    return;
  }
  if (s->kind == AST_INPUT) return; /* bound as a function argument */
  Value *v = sema_expr(L, s->a);
  if (s->kind == AST_OUTPUT) {
    if (v->k == V_POISON) return;
    if (v->k != V_TENSOR) {
      diag_error(S->d, s->a->loc, "output '%s' must be a tensor, got %s",
                 s->name, sema_kind_name(v));
      return;
    }
    for (int i = 0; i < mo->names.len; i++)
      if (!strcmp(mo->names.data[i], s->name)) {
        diag_error(S->d, s->name_loc.file ? s->name_loc : s->loc,
                   "output '%s' is declared twice", s->name);
        return;
      }
    vec_push(S->a, &mo->names, (void *)s->name);
    vec_push(S->a, &mo->vals, v);
    return;
  }
  if (!check_scalar(L, v, s->a, s->kind == AST_LOSS ? "the loss" : "a metric"))
    return;
  v = sema_as_tensor(L, v, DT_F32, s->a->loc);
  if (s->kind == AST_LOSS) {
    if (mo->loss) {
      diag_error(S->d, s->loc, "a model has one loss");
      diag_note(S->d, mo->loss_node->loc, "the first loss is here");
      return;
    }
    mo->loss = v;
    mo->loss_node = s;
  } else {
    for (int i = 0; i < mo->mnames.len; i++)
      if (!strcmp(mo->mnames.data[i], s->name)) {
        diag_error(S->d, s->name_loc.file ? s->name_loc : s->loc,
                   "metric '%s' is declared twice; name it with "
                   "'metric NAME = ...'", s->name);
        return;
      }
    vec_push(S->a, &mo->mnames, (void *)s->name);
    vec_push(S->a, &mo->mvals, v);
  }
}

static void lower_stmt(Lower *L, AstNode *s) {
  Sema *S = L->S;
  switch (s->kind) {
  case AST_LET: lower_let(L, s); break;
  case AST_ASSIGN: lower_assign(L, s); break;
  case AST_UPDATE: lower_update(L, s); break;
  case AST_EXPR_STMT: (void)sema_expr(L, s->a); break;
  case AST_RETURN:
    if (!L->frame->decl) {
      diag_error(S->d, s->loc, "return is only allowed in a fn or layer");
      break;
    }
    if (L->scan) {
      diag_error(S->d, s->loc, "return inside a scan body; use emit");
      break;
    }
    L->frame->ret = s->a ? sema_expr(L, s->a) : sema_none(S);
    L->frame->ret_loc = s->a ? s->a->loc : s->loc;
    L->frame->returned = true;
    break;
  case AST_EMIT: {
    if (!L->scan) {
      diag_error(S->d, s->loc, "emit is only allowed in a scan body");
      break;
    }
    if (L->scan->has_emit) {
      diag_error(S->d, s->loc, "a scan body emits once");
      break;
    }
    ScanCtx *sc = L->scan;
    sc->has_emit = true;
    sc->nemit = s->list.n;
    sc->emitted = ARENA_ARRAY(S->a, Value *, s->list.n ? s->list.n : 1);
    sc->emit_nodes = ARENA_ARRAY(S->a, AstNode *, s->list.n ? s->list.n : 1);
    for (int i = 0; i < s->list.n; i++) {
      sc->emitted[i] = sema_expr(L, s->list.v[i]);
      sc->emit_nodes[i] = s->list.v[i];
    }
    break;
  }
  case AST_FOR: lower_for(L, s); break;
  case AST_IF: lower_if(L, s); break;
  case AST_PARAM:
  case AST_STATE: lower_global(L, s); break;
  case AST_INPUT:
  case AST_OUTPUT:
  case AST_LOSS:
  case AST_METRIC: lower_model_stmt(L, s); break;
  case AST_BLOCK: {
    Scope *saved = sema_scope_push(L, false);
    lower_block(L, s);
    sema_scope_pop(L, saved);
    break;
  }
  default:
    diag_error(S->d, s->loc, "unexpected %s in a body", ast_kind_name(s->kind));
    break;
  }
}

static void lower_block(Lower *L, AstNode *blk) {
  if (!blk) return;
  if (blk->kind != AST_BLOCK) {
    lower_stmt(L, blk);
    return;
  }
  for (int i = 0; i < blk->list.n && !L->frame->returned; i++) {
    lower_stmt(L, blk->list.v[i]);
    if (L->S->d->max_errors > 0 && L->S->d->nerrors >= L->S->d->max_errors)
      break;
  }
}

/* ------------------------------------------------- compile-time eval */

Value *sema_const_expr(Sema *S, AstNode *e) {
  Lower L = {0};
  Frame fr = {0};
  fr.path = "";
  L.S = S;
  L.m = S->m;
  L.mode = LM_CONST;
  L.frame = &fr;
  sema_scope_push(&L, true);
  return sema_expr(&L, e);
}

/* -------------------------------------------------------------- DCE */

static void mark_args(IrNode *n);

static void mark_value(IrValue *v) {
  if (v && v->kind == IRV_RESULT) v->def->id = 1;
}

static void mark_body(IrBlock *b) {
  for (IrNode *n = b->last; n; n = n->prev) mark_args(n);
  for (int i = 0; i < b->nrets; i++) mark_value(b->rets[i]);
  for (IrNode *n = b->first; n; n = n->next) n->id = 1;
}

static void mark_args(IrNode *n) {
  for (int i = 0; i < n->nargs; i++) mark_value(n->args[i]);
  if (n->body) mark_body(n->body);
}

static bool arg_used_in(IrBlock *b, IrValue *a) {
  for (IrNode *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->nargs; i++)
      if (n->args[i] == a) return true;
    if (n->body && arg_used_in(n->body, a)) return true;
  }
  for (int i = 0; i < b->nrets; i++)
    if (b->rets[i] == a) return true;
  return false;
}

/* Remove nodes whose results reach no return; with prune_args, also the
** arguments nothing uses. */
static void dce_func(IrFunc *f, bool prune_args) {
  IrBlock *b = f->body;
  for (IrNode *n = b->first; n; n = n->next) n->id = 0;
  for (int i = 0; i < b->nrets; i++) mark_value(b->rets[i]);
  for (IrNode *n = b->last; n; n = n->prev)
    if (n->id) mark_args(n);
  for (IrNode *n = b->last, *p; n; n = p) {
    p = n->prev;
    if (!n->id) ir_node_remove(n);
  }
  for (IrNode *n = b->first; n; n = n->next) n->id = 0;
  if (!prune_args) return;
  int k = 0;
  for (int i = 0; i < b->nargs; i++) {
    if (!arg_used_in(b, b->args[i])) continue;
    b->args[i]->idx = k;
    b->args[k++] = b->args[i];
  }
  b->nargs = k;
}

/* ------------------------------------------------------------ models */

typedef struct ModelCtx {
  AstNode *model;
  Scope *base;      /* dimension variables of the inputs */
  AstNode **inputs;
  IrType *in_types;
  int nin;
} ModelCtx;

typedef struct LowerM {
  Lower L;
  ModelOut mo;
} LowerM;

static ModelOut *model_out(Lower *L) {
  if (L->mode == LM_LR || L->mode == LM_CONST) return NULL;
  return &((LowerM *)L)->mo;
}

/* Bind the free dimension variables of input types (from -D or batch). */
static bool resolve_inputs(Sema *S, ModelCtx *mc, int64_t batch) {
  Lower L = {0};
  Frame fr = {0};
  fr.path = "";
  L.S = S;
  L.m = S->m;
  L.mode = LM_CONST;
  L.frame = &fr;
  sema_scope_push(&L, true);
  mc->base = L.scope;
  bool ok = true;
  for (int i = 0; i < mc->nin; i++) {
    AstNode *in = mc->inputs[i];
    AstNode *ty = in->type;
    if (!ty || ty->kind != AST_TYPE || !ty->is_tensor) {
      diag_error(S->d, ty ? ty->loc : in->loc,
                 "input '%s' needs a tensor type such as f32[B, 784]", in->name);
      ok = false;
      continue;
    }
    for (int k = 0; k < ty->list.n; k++) {
      AstNode *e = ty->list.v[k];
      if (e->kind != AST_IDENT || sema_lookup(&L, e->name, e->loc)) continue;
      if (!sema_is_dimvar_name(e->name)) continue;
      int64_t val = -1;
      for (int j = 0; j < S->ndefines; j++) {
        Define *df = &S->defines[j];
        if (!strcmp(df->name, e->name) && df->v->k == V_INT) {
          df->used = true;
          val = df->v->i;
        }
      }
      if (val < 0 && k == 0 && batch > 0) val = batch;
      if (val < 0) {
        diag_error(S->d, e->loc, "dimension variable '%s' of input '%s' is "
                   "not bound; give it with -D %s=N or a train block 'batch'",
                   e->name, in->name, e->name);
        Value *pv = sema_poison(S);
        sema_bind(&L, e->name, pv, e->loc);
        ok = false;
        continue;
      }
      int sym = ir_sym_find(S->m, e->name);
      if (sym < 0) sym = ir_sym_add(S->m, e->name, val, false);
      Value *dv = sema_int(S, val);
      dv->sym = sym;
      dv->decl_name = e->name;
      sema_bind(&L, e->name, dv, e->loc);
    }
    if (ok && !sema_eval_type(&L, ty, &mc->in_types[i])) ok = false;
  }
  return ok;
}

static IrFunc *lower_model_fn(Sema *S, ModelCtx *mc, LowerMode mode,
                              const char *fname, ModelOut *out) {
  LowerM lm;
  memset(&lm, 0, sizeof lm);
  Lower *L = &lm.L;
  Frame fr = {0};
  fr.path = "";
  L->S = S;
  L->m = S->m;
  L->mode = mode;
  L->training = mode == LM_LOSS;
  L->frame = &fr;
  L->scope = mc->base;
  sema_scope_push(L, false);
  L->fn = ir_func_new(S->m, fname);
  L->blk = L->fn->body;
  for (int i = 0; i < mc->nin; i++) {
    AstNode *in = mc->inputs[i];
    IrValue *a = ir_block_add_arg(S->m, L->blk, mc->in_types[i], in->name);
    Value *v = sema_tensor(S, a);
    v->decl_name = in->name;
    v->decl_what = "input";
    v->decl_loc = in->name_loc.file ? in->name_loc : in->loc;
    sema_bind(L, in->name, v, v->decl_loc);
  }
  lower_block(L, mc->model->body);
  *out = lm.mo;
  int nu = L->updates.len / 2;
  if (mode == LM_LOSS && nu) {
    Vec *u = &L->updates;
    for (int i = 0; i < nu; i++) {
      IrGlobal *g = u->data[2 * i];
      vec_push(S->a, &out->names, (void *)arena_printf(S->a, "@%s", g->name));
      vec_push(S->a, &out->vals, u->data[2 * i + 1]);
    }
  }
  return L->fn;
}

static void set_rets(Sema *S, IrFunc *f, Vec *names, Vec *vals, Value *first,
                     const char *first_name, const char *prefix) {
  int n = vals->len + (first ? 1 : 0), k = 0;
  IrValue **rets = ARENA_ARRAY(S->a, IrValue *, n ? n : 1);
  const char **rn = ARENA_ARRAY(S->a, const char *, n ? n : 1);
  if (first) {
    rets[k] = first->t;
    rn[k++] = first_name;
  }
  for (int i = 0; i < vals->len; i++) {
    rets[k] = ((Value *)vals->data[i])->t;
    rn[k++] = prefix ? arena_printf(S->a, "%s%s", prefix,
                                    (const char *)names->data[i])
                     : names->data[i];
  }
  ir_func_set_rets(S->m, f, n, rets, rn);
}

void sema_lower_train(Sema *S, AstNode *train, ModelCtx *mc);

static int64_t train_batch(Sema *S, AstNode *train) {
  if (!train) return -1;
  for (int i = 0; i < train->list.n; i++) {
    AstNode *s = train->list.v[i];
    if (s->kind != AST_SETTING || strcmp(s->name, "batch")) continue;
    Value *v = sema_const_expr(S, s->a);
    if (v->k == V_INT && v->i > 0) return v->i;
  }
  return -1;
}

void sema_lower_model(Sema *S, AstNode *model, AstNode *train) {
  ModelCtx mc = {0};
  mc.model = model;
  if (!model->body) return;
  AstList *body = &model->body->list;
  mc.inputs = ARENA_ARRAY(S->a, AstNode *, body->n ? body->n : 1);
  for (int i = 0; i < body->n; i++)
    if (body->v[i]->kind == AST_INPUT) mc.inputs[mc.nin++] = body->v[i];
  mc.in_types = ARENA_ARRAY(S->a, IrType, mc.nin ? mc.nin : 1);
  if (!resolve_inputs(S, &mc, train_batch(S, train))) return;
  int errs = S->d->nerrors;
  ModelOut fo;
  IrFunc *f = lower_model_fn(S, &mc, LM_FORWARD, "forward", &fo);
  if (S->d->nerrors > errs) return;
  set_rets(S, f, &fo.names, &fo.vals, NULL, NULL, NULL);
  dce_func(f, true);
  if (fo.loss) {
    ModelOut lo, eo;
    IrFunc *lf = lower_model_fn(S, &mc, LM_LOSS, "loss", &lo);
    if (S->d->nerrors > errs) return;
    if (!lo.loss) {
      diag_error(S->d, model->name_loc, "model '%s' has no loss when training",
                 model->name);
      return;
    }
    /* @loss: loss then state updates; outputs are not results */
    Vec un = {0}, uv = {0};
    for (int i = 0; i < lo.names.len; i++) {
      const char *nm = lo.names.data[i];
      if (nm[0] != '@') continue;
      vec_push(S->a, &un, (void *)nm);
      vec_push(S->a, &uv, lo.vals.data[i]);
    }
    set_rets(S, lf, &un, &uv, lo.loss, "loss", NULL);
    dce_func(lf, false);
    IrFunc *ef = lower_model_fn(S, &mc, LM_EVAL, "eval_step", &eo);
    if (S->d->nerrors > errs) return;
    set_rets(S, ef, &eo.mnames, &eo.mvals, eo.loss, "loss", "metric.");
    dce_func(ef, false);
  }
  if (train) sema_lower_train(S, train, &mc);
}

/* -------------------------------------------------------------- train */

static const char *const train_keys[] = {
    "batch", "epochs", "steps", "seed", "clip", "optimizer", "lr",
    "precision", "remat", "average", "data", "eval_data", NULL};

static const char *const opt_names[] = {"sgd", "adam", "adamw", "adamw_paper",
                                        "rmsprop", "adagrad", "lion", NULL};
static const char *const opt_args[] = {
    "lr momentum nesterov weight_decay dampening",
    "lr betas eps weight_decay amsgrad",
    "lr betas eps weight_decay amsgrad",
    "lr betas eps weight_decay amsgrad",
    "lr alpha eps momentum weight_decay centered",
    "lr eps weight_decay lr_decay",
    "lr betas weight_decay"};

static bool word_in(const char *list, const char *w) {
  size_t n = strlen(w);
  for (const char *p = list; (p = strstr(p, w)); p += n)
    if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == 0)) return true;
  return false;
}

static IrAttr mk_attr(Sema *S, const char *name, IrAttrKind k) {
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.name = strtab_cstr(S->m->strs, name);
  a.kind = k;
  return a;
}

/* A compile-time value as an attribute (numbers as floats when as_float). */
static bool value_attr(Sema *S, Value *v, const char *name, bool as_float,
                       IrAttr *out, SrcLoc loc) {
  IrModule *m = S->m;
  if (v->k == V_POISON) return false;
  if (v->k == V_INT && !as_float) {
    *out = mk_attr(S, name, ATTR_INT);
    out->i = v->i;
  } else if (sema_is_num(v)) {
    *out = mk_attr(S, name, ATTR_FLOAT);
    out->f = sema_num(v);
  } else if (v->k == V_BOOL) {
    *out = mk_attr(S, name, ATTR_BOOL);
    out->i = v->i;
  } else if (v->k == V_STR) {
    *out = mk_attr(S, name, ATTR_STR);
    out->s = strtab_cstr(m->strs, v->s);
  } else if (v->k == V_LIST && v->n > 0 && v->elems[0]->k == V_STR) {
    *out = mk_attr(S, name, ATTR_STRS);
    out->n = v->n;
    out->strs = ARENA_ARRAY(m->arena, const char *, v->n);
    for (int i = 0; i < v->n; i++) {
      if (v->elems[i]->k != V_STR) goto bad;
      out->strs[i] = strtab_cstr(m->strs, v->elems[i]->s);
    }
  } else if (v->k == V_LIST) {
    bool ints = !as_float;
    for (int i = 0; i < v->n; i++) {
      if (!sema_is_num(v->elems[i])) goto bad;
      if (v->elems[i]->k != V_INT) ints = false;
    }
    *out = mk_attr(S, name, ints ? ATTR_INTS : ATTR_FLOATS);
    out->n = v->n;
    out->ints = ARENA_ARRAY(m->arena, int64_t, v->n ? v->n : 1);
    out->floats = ARENA_ARRAY(m->arena, double, v->n ? v->n : 1);
    for (int i = 0; i < v->n; i++) {
      out->ints[i] = v->elems[i]->i;
      out->floats[i] = sema_num(v->elems[i]);
    }
  } else {
    goto bad;
  }
  return true;
bad:
  diag_error(S->d, loc, "'%s' must be a compile-time number, bool, string or "
             "list, got %s", name, sema_kind_name(v));
  return false;
}

/* name or name(args) as a CALL attribute; positional args get pos_names. */
static bool call_attr(Sema *S, AstNode *e, const char *key, IrAttr *out,
                      const char *pos_names, const char *valid_args,
                      const char *what) {
  AstNode *callee = e->kind == AST_CALL ? e->a : e;
  if (!callee || callee->kind != AST_IDENT) {
    diag_error(S->d, e->loc, "'%s' expects a name or a call such as %s", key,
               what);
    return false;
  }
  *out = mk_attr(S, key, ATTR_CALL);
  out->s = strtab_cstr(S->m->strs, callee->name);
  if (e->kind != AST_CALL) return true;
  IrAttrs args = {0};
  for (int i = 0; i < e->list.n; i++) {
    AstNode *an = e->list.v[i];
    const char *nm;
    AstNode *ve = an;
    if (an->kind == AST_NAMED_ARG) {
      nm = an->name;
      ve = an->a;
      if (valid_args && !word_in(valid_args, nm)) {
        diag_error(S->d, an->name_loc.file ? an->name_loc : an->loc,
                   "unknown argument '%s' of %s '%s'", nm, key, callee->name);
        diag_note(S->d, (SrcLoc){0}, "valid arguments: %s", valid_args);
        return false;
      }
    } else {
      if (!pos_names || i > 0) {
        diag_error(S->d, an->loc, "arguments of %s '%s' must be named "
                   "(name: value)", key, callee->name);
        return false;
      }
      nm = pos_names;
    }
    IrAttr a;
    if (!strcmp(nm, "dtype") && ve->kind == AST_IDENT) {
      DType dt;
      if (!ir_dtype_parse(ve->name, &dt) || !ir_dtype_is_float(dt)) {
        diag_error(S->d, ve->loc, "'%s' is not a float dtype", ve->name);
        return false;
      }
      a = mk_attr(S, "dtype", ATTR_DTYPE);
      a.i = dt;
    } else {
      Value *v = sema_const_expr(S, ve);
      if (!value_attr(S, v, nm, !strcmp(key, "optimizer") || !strcmp(nm, "decay"),
                      &a, ve->loc))
        return false;
      if (!strcmp(nm, "bytes") && a.kind == ATTR_FLOAT) {
        a.kind = ATTR_INT;
        a.i = (int64_t)a.f;
      }
    }
    ir_attr_set(S->m, &args, &a);
  }
  out->n = args.n;
  out->args = args.v;
  return true;
}

static bool sym_or_call(Sema *S, AstNode *e, const char *key,
                        const char *syms, const char *calls,
                        const char *pos_name, IrAttr *out) {
  AstNode *callee = e->kind == AST_CALL ? e->a : e;
  const char *nm = callee && callee->kind == AST_IDENT ? callee->name : NULL;
  if (nm && e->kind == AST_IDENT && word_in(syms, nm)) {
    *out = mk_attr(S, key, ATTR_SYM);
    out->s = strtab_cstr(S->m->strs, nm);
    return true;
  }
  if (nm && e->kind == AST_CALL && word_in(calls, nm))
    return call_attr(S, e, key, out, pos_name, pos_name, key);
  diag_error(S->d, e->loc, "invalid %s; expected one of: %s %s(...)", key,
             syms, calls);
  return false;
}

static bool data_attr(Sema *S, AstNode *s, ModelCtx *mc, IrAttr *out) {
  static const char *const srcs = "idx npy npz csv text";
  AstNode *e = s->a;
  if (!e || e->kind != AST_CALL || !e->a || e->a->kind != AST_IDENT ||
      !word_in(srcs, e->a->name)) {
    diag_error(S->d, e ? e->loc : s->loc, "a data source is one of idx(...) "
               "npy(...) npz(...) csv(...) text(...)");
    return false;
  }
  const char *src = e->a->name;
  *out = mk_attr(S, s->name, ATTR_CALL);
  out->s = strtab_cstr(S->m->strs, src);
  IrAttrs args = {0};
  int nf = 0, nk = 0;
  const char **files = ARENA_ARRAY(S->m->arena, const char *, e->list.n + 1);
  const char **keys = ARENA_ARRAY(S->m->arena, const char *, e->list.n + 1);
  for (int i = 0; i < e->list.n; i++) {
    AstNode *an = e->list.v[i];
    Value *v = sema_const_expr(S, an->kind == AST_NAMED_ARG ? an->a : an);
    if (v->k == V_POISON) return false;
    if (an->kind == AST_NAMED_ARG) {
      IrAttr a;
      if (!value_attr(S, v, an->name, false, &a, an->a->loc)) return false;
      ir_attr_set(S->m, &args, &a);
      continue;
    }
    if (v->k != V_STR) {
      diag_error(S->d, an->loc, "a file name must be a string, got %s",
                 sema_kind_name(v));
      return false;
    }
    if (!strcmp(src, "npz") && nf > 0)
      keys[nk++] = strtab_cstr(S->m->strs, v->s);
    else
      files[nf++] = strtab_cstr(S->m->strs, v->s);
  }
  const char **names = ARENA_ARRAY(S->m->arena, const char *, s->list.n + 1);
  for (int i = 0; i < s->list.n; i++) {
    AstNode *id = s->list.v[i];
    int k = 0;
    while (k < mc->nin && strcmp(mc->inputs[k]->name, id->name)) k++;
    if (k == mc->nin) {
      diag_error(S->d, id->loc, "'%s' is not an input of model '%s'", id->name,
                 mc->model->name);
      return false;
    }
    names[i] = strtab_cstr(S->m->strs, id->name);
  }
  ir_attr_set_strs(S->m, &args, "files", nf, files);
  ir_attr_set_strs(S->m, &args, "names", s->list.n, names);
  if (nk) ir_attr_set_strs(S->m, &args, "keys", nk, keys);
  out->n = args.n;
  out->args = args.v;
  return true;
}

static bool lower_lr(Sema *S, AstNode *e) {
  Lower L = {0};
  Frame fr = {0};
  fr.path = "";
  L.S = S;
  L.m = S->m;
  L.mode = LM_LR;
  L.frame = &fr;
  sema_scope_push(&L, true);
  L.fn = ir_func_new(S->m, "lr");
  L.blk = L.fn->body;
  static const char *const names[] = {"step", "epoch", "total_steps"};
  for (int i = 0; i < 3; i++) {
    IrValue *a = ir_block_add_arg(S->m, L.blk, ir_type_scalar(DT_F32), names[i]);
    sema_bind(&L, names[i], sema_tensor(S, a), e->loc);
  }
  int errs = S->d->nerrors;
  Value *v = sema_expr(&L, e);
  if (S->d->nerrors > errs || v->k == V_POISON) return false;
  if (!check_scalar(&L, v, e, "lr")) return false;
  v = sema_as_tensor(&L, v, DT_F32, e->loc);
  v = sema_cast(&L, v, DT_F32, e->loc);
  if (v->k != V_TENSOR) return false;
  const char *rn = "lr";
  ir_func_set_rets(S->m, L.fn, 1, &v->t, &rn);
  return true;
}

static bool int_setting(Sema *S, AstNode *s, IrAttr *a, bool as_float) {
  Value *v = sema_const_expr(S, s->a);
  if (v->k == V_POISON) return false;
  if (as_float ? !sema_is_num(v) : v->k != V_INT) {
    diag_error(S->d, s->a->loc, "'%s' must be %s, got %s", s->name,
               as_float ? "a number" : "an int", sema_kind_name(v));
    return false;
  }
  return value_attr(S, v, s->name, as_float, a, s->a->loc);
}

void sema_lower_train(Sema *S, AstNode *train, ModelCtx *mc) {
  IrModule *m = S->m;
  IrTrain *t = ARENA_NEW(m->arena, IrTrain);
  t->model = strtab_cstr(m->strs, train->name);
  for (int i = 0; i < train->list.n; i++) {
    AstNode *s = train->list.v[i];
    const char *k = s->name;
    if (!k || (s->kind == AST_SETTING && !s->a) || (s->kind == AST_DATA && !s->a))
      continue; /* the parser reported it */
    int ki = 0;
    while (train_keys[ki] && strcmp(train_keys[ki], k)) ki++;
    SrcLoc kl = s->name_loc.file ? s->name_loc : s->loc;
    if (!train_keys[ki]) {
      diag_error(S->d, kl, "unknown train setting '%s'", k);
      diag_note(S->d, (SrcLoc){0}, "valid settings: batch epochs steps seed "
                "clip optimizer lr precision remat average data eval_data");
      continue;
    }
    if (ir_attr_get(&t->settings, k)) {
      diag_error(S->d, kl, "train setting '%s' given twice", k);
      continue;
    }
    IrAttr a;
    bool ok = false;
    if (!strcmp(k, "batch") || !strcmp(k, "epochs") || !strcmp(k, "steps") ||
        !strcmp(k, "seed")) {
      ok = int_setting(S, s, &a, false);
    } else if (!strcmp(k, "clip")) {
      ok = int_setting(S, s, &a, true);
    } else if (!strcmp(k, "optimizer")) {
      AstNode *c = s->a->kind == AST_CALL ? s->a->a : s->a;
      int oi = 0;
      while (c && c->kind == AST_IDENT && opt_names[oi] &&
             strcmp(opt_names[oi], c->name))
        oi++;
      if (!c || c->kind != AST_IDENT || !opt_names[oi]) {
        if (c && c->kind == AST_IDENT)
          diag_error(S->d, c->loc, "unknown optimizer '%s'", c->name);
        else
          diag_error(S->d, s->a->loc, "unknown optimizer");
        diag_note(S->d, (SrcLoc){0}, "valid optimizers: sgd adam adamw "
                  "adamw_paper rmsprop adagrad lion");
      } else {
        ok = call_attr(S, s->a, k, &a, NULL, opt_args[oi], "adamw(lr: 1e-3)");
      }
    } else if (!strcmp(k, "lr")) {
      ok = lower_lr(S, s->a);
      a = mk_attr(S, "lr", ATTR_FUNC);
      a.s = strtab_cstr(m->strs, "lr");
    } else if (!strcmp(k, "precision")) {
      ok = sym_or_call(S, s->a, k, "f32", "mixed", "dtype", &a);
    } else if (!strcmp(k, "remat")) {
      ok = sym_or_call(S, s->a, k, "none sqrt", "budget", "bytes", &a);
    } else if (!strcmp(k, "average")) {
      ok = sym_or_call(S, s->a, k, "none polyak", "ema", "decay", &a);
    } else {
      ok = data_attr(S, s, mc, &a);
    }
    if (ok) ir_attr_set(m, &t->settings, &a);
  }
  m->train = t;
}

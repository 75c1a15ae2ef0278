/*
** This file contains the canonicalize pass: constant folding, algebraic
** simplification, common-subexpression elimination and dead-code
** elimination, repeated over every function (scan bodies included) until
** nothing changes.
**
** Position: first in the pipeline, and cheap enough to run again after any
** pass that leaves redundant nodes behind.
** Requires: a verified module.
** Preserves: every function's signature and results, the globals, the
**   order of blocks; nodes never move from one block to another.
** Invalidates: node and value numbering (scratch ids), any pointer to a
**   node that it removed.
**
** Patterns (T is the node's result type; "same" means equal dtype, sizes
** and dimension symbols, so a rewrite never changes a shape):
**
**   constant folding: an elementwise op whose operands are all constants
**     %a = constant {value = 2.0} : f32[]
**     %b = constant {value = 3.0} : f32[4]
**     %c = mul %a, %b : f32[4]           ->  %c = constant {value = 6.0} : f32[4]
**   and cast / reshape / broadcast / transpose of a constant:
**     %d = broadcast %a : f32[8,4]       ->  %d = constant {value = 2.0} : f32[8,4]
**   A fold happens only when every operand value is exact in its dtype and
**   the result is exact in the result dtype (no i32 7/2, no u8 overflow);
**   f16/bf16 are never folded.
**
**   algebraic simplification, when T is the same as the type of %x:
**     add %x, 0 | add 0, %x | sub %x, 0   ->  %x   (-0.0 + 0 gives -0.0)
**     mul %x, 1 | mul 1, %x | div %x, 1 | pow %x, 1  ->  %x
**     where <constant c>, %x, %y          ->  %x (c != 0) or %y (c == 0)
**     neg (neg %x)                        ->  %x
**     cast %x : T | reshape %x : T | broadcast %x : T  ->  %x
**     transpose %x {perm = [0, 1, ..]}   ->  %x
**   and, whatever the types:
**     reshape (reshape %x)                ->  reshape %x
**     broadcast (broadcast %x)            ->  broadcast %x
**     transpose (transpose %x {perm = p}) {perm = q}
**                                         ->  transpose %x {perm = p[q[k]]}
**
**   CSE: two nodes with the same op, operands, attributes and result types
**   become one (the first).  Never for random ops (rand) nor region ops
**   (scan).  A node of a scan body may be replaced by an equal node of an
**   enclosing block that precedes the scan (a loop-invariant value).
**
**   DCE: a node none of whose results is used (by an operand anywhere in
**   the function, nested bodies included, or by a block's returns) is
**   removed; a removed scan takes its body with it.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pass.h"

typedef struct Canon {
  IrModule *m;
  IrFunc *f;
  Arena *scratch;
  bool changed;
} Canon;

/* ------------------------------------------------------------- helpers */

/* Equal dtype, rank, sizes and symbols. */
static bool type_same(const IrType *a, const IrType *b) {
  if (a->dtype != b->dtype || a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i] || a->sym[i] != b->sym[i]) return false;
  return true;
}

/* x as stored in a tensor of dtype t, or false when x is not exactly
** representable there (or t is a 16-bit float, which we never fold). */
static bool exact_in(DType t, double x, double *out) {
  switch (t) {
  case DT_F64: *out = x; return true;
  case DT_F32: *out = isfinite(x) && fabs(x) > 3.4028234663852886e38
                          ? (x > 0 ? INFINITY : -INFINITY)
                          : (double)(float)x;
    return true;
  case DT_I32:
    if (x != trunc(x) || x < -2147483648.0 || x > 2147483647.0) return false;
    *out = x; return true;
  case DT_I64:
    if (x != trunc(x) || fabs(x) > 9007199254740992.0) return false;
    *out = x; return true;
  case DT_U8:
    if (x != trunc(x) || x < 0 || x > 255) return false;
    *out = x; return true;
  case DT_BOOL:
    if (x != 0 && x != 1) return false;
    *out = x; return true;
  default: return false;
  }
}

/* The value of v when v is a constant node's result (a splat). */
static bool const_value(const IrValue *v, double *out) {
  if (v->kind != IRV_RESULT || !v->def || v->def->op != IR_OP_CONSTANT)
    return false;
  const IrAttr *a = ir_attr_get(&v->def->attrs, "value");
  if (!a) return false;
  double x;
  if (a->kind == ATTR_FLOAT) x = a->f;
  else if (a->kind == ATTR_INT || a->kind == ATTR_BOOL) x = (double)a->i;
  else return false;
  return exact_in(v->type.dtype, x, out);
}

static bool is_const_eq(const IrValue *v, double want) {
  double x;
  return const_value(v, &x) && x == want;
}

static bool is_def(const IrValue *v, IrOp op) {
  return v->kind == IRV_RESULT && v->def && v->def->op == op &&
         v->def->nres == 1;
}

/* A new constant {value = x} of type t, inserted before n. */
static IrValue *new_const(Canon *c, IrNode *n, const IrType *t, double x) {
  IrNode *k = ir_node_new(c->m, NULL, IR_OP_CONSTANT, 0, NULL, 1, t, n->loc);
  ir_attr_set_float(c->m, &k->attrs, "value", x);
  ir_node_insert_before(n, k);
  return k->res[0];
}

/* ------------------------------------------------------- constant folding */

/* cast of a constant: float -> int truncates toward zero, -> bool is x != 0. */
static bool fold_cast(double x, DType to, double *out) {
  if (ir_dtype_is_int(to)) {
    if (isnan(x)) return false;
    x = trunc(x);
  } else if (to == DT_BOOL) {
    x = x != 0;
  }
  return exact_in(to, x, out);
}

/* The folded value of n, or NULL when n does not fold. */
static IrValue *fold(Canon *c, IrNode *n) {
  if (n->nres != 1 || n->nargs < 1 || n->nargs > 8 || n->body) return NULL;
  unsigned fl = ir_op_info[n->op].flags;
  if (fl & OPF_RANDOM) return NULL;
  const IrType *t = &n->res[0]->type;
  double x[8], r;
  for (int i = 0; i < n->nargs; i++)
    if (!const_value(n->args[i], &x[i])) return NULL;
  switch (n->op) {
  case IR_OP_CAST:
    if (!fold_cast(x[0], t->dtype, &r)) return NULL;
    break;
  case IR_OP_RESHAPE:
  case IR_OP_BROADCAST:
  case IR_OP_TRANSPOSE:
    if (!exact_in(t->dtype, x[0], &r)) return NULL;
    break;
  default:
    if (!(fl & OPF_FUSABLE)) return NULL;
    if (!ir_interp_scalar(n->op, &n->attrs, n->nargs, x, &r)) return NULL;
    if (!exact_in(t->dtype, r, &r)) return NULL;
    break;
  }
  return new_const(c, n, t, r);
}

/* -------------------------------------------------- algebraic simplification */

/* The operand i of n when it has the same type as n's result. */
static IrValue *same_as_result(IrNode *n, int i) {
  return type_same(&n->args[i]->type, &n->res[0]->type) ? n->args[i] : NULL;
}

/*   add %x, 0 | add 0, %x | sub %x, 0 | mul %x, 1 | mul 1, %x | div %x, 1
**   | pow %x, 1  ->  %x */
static IrValue *simplify_binary(IrNode *n) {
  IrValue *a = n->args[0], *b = n->args[1];
  switch (n->op) {
  case IR_OP_ADD:
    if (is_const_eq(b, 0)) return same_as_result(n, 0);
    if (is_const_eq(a, 0)) return same_as_result(n, 1);
    return NULL;
  case IR_OP_MUL:
    if (is_const_eq(b, 1)) return same_as_result(n, 0);
    if (is_const_eq(a, 1)) return same_as_result(n, 1);
    return NULL;
  case IR_OP_SUB:
    return is_const_eq(b, 0) ? same_as_result(n, 0) : NULL;
  case IR_OP_DIV:
  case IR_OP_POW:
    return is_const_eq(b, 1) ? same_as_result(n, 0) : NULL;
  default:
    return NULL;
  }
}

static IrAttrs attrs_without(Canon *c, const IrAttrs *a, const char *name) {
  IrAttrs out = {0};
  for (int i = 0; i < a->n; i++)
    if (strcmp(a->v[i].name, name) != 0) ir_attr_set(c->m, &out, &a->v[i]);
  return out;
}

/* The perm of a transpose, normalised to 0..rank-1; false if malformed. */
static bool get_perm(const IrNode *n, int rank, int64_t *p) {
  const IrAttr *a = ir_attr_get(&n->attrs, "perm");
  if (!a || a->kind != ATTR_INTS || a->n != rank) return false;
  for (int i = 0; i < rank; i++) {
    int ax;
    if (!ir_axis(a->ints[i], rank, &ax)) return false;
    p[i] = ax;
  }
  return true;
}

/*   transpose %x {perm = [0, 1, ..]}  ->  %x
**   transpose (transpose %x {perm = p}) {perm = q}  ->  transpose %x {perm = p[q[k]]} */
static IrValue *simplify_transpose(Canon *c, IrNode *n) {
  int rank = n->res[0]->type.rank;
  int64_t q[IR_MAX_RANK], p[IR_MAX_RANK];
  if (rank > IR_MAX_RANK || !get_perm(n, rank, q)) return NULL;
  bool ident = true;
  for (int i = 0; i < rank; i++) ident &= q[i] == i;
  if (ident) return same_as_result(n, 0);
  IrValue *in = n->args[0];
  if (!is_def(in, IR_OP_TRANSPOSE) || in->type.rank != rank ||
      !get_perm(in->def, rank, p))
    return NULL;
  int64_t comp[IR_MAX_RANK];
  for (int k = 0; k < rank; k++) comp[k] = p[q[k]];
  IrAttrs na = attrs_without(c, &n->attrs, "perm");
  ir_attr_set_ints(c->m, &na, "perm", rank, comp);
  n->attrs = na;
  n->args[0] = in->def->args[0];
  c->changed = true;
  return NULL;
}

/* The value that replaces n's single result, or NULL.  Some rewrites
** change n in place instead (and set c->changed). */
static IrValue *simplify(Canon *c, IrNode *n) {
  if (n->nres != 1 || n->body) return NULL;
  switch (n->op) {
  case IR_OP_ADD: case IR_OP_SUB: case IR_OP_MUL: case IR_OP_DIV:
  case IR_OP_POW:
    return n->nargs == 2 ? simplify_binary(n) : NULL;
  case IR_OP_WHERE: {
    double k;
    if (n->nargs != 3 || !const_value(n->args[0], &k)) return NULL;
    return same_as_result(n, k != 0 ? 1 : 2);
  }
  case IR_OP_NEG:
    if (is_def(n->args[0], IR_OP_NEG) && n->args[0]->def->nargs == 1 &&
        type_same(&n->args[0]->def->args[0]->type, &n->res[0]->type))
      return n->args[0]->def->args[0];
    return NULL;
  case IR_OP_CAST:
    return same_as_result(n, 0);
  case IR_OP_RESHAPE:
  case IR_OP_BROADCAST:
    if (same_as_result(n, 0)) return n->args[0];
    if (is_def(n->args[0], n->op) && n->args[0]->def->nargs == 1) {
      n->args[0] = n->args[0]->def->args[0];
      c->changed = true;
    }
    return NULL;
  case IR_OP_TRANSPOSE:
    return simplify_transpose(c, n);
  default:
    return NULL;
  }
}

/* Fold and simplify every node of b, nested bodies first. */
static void rewrite_block(Canon *c, IrBlock *b) {
  IrNode *next;
  for (IrNode *n = b->first; n; n = next) {
    next = n->next;
    if (n->body) rewrite_block(c, n->body);
    IrValue *v = fold(c, n);
    if (!v) v = simplify(c, n);
    if (v && v != n->res[0]) {
      ir_replace_uses(c->f, n->res[0], v);
      c->changed = true;
    }
  }
}

/* ------------------------------------------------------------------- CSE */

typedef struct CseEntry CseEntry;
struct CseEntry {
  IrNode *n;
  uint64_t h;
  CseEntry *next;
};

typedef struct CseTable {
  CseEntry **bucket;
  uint64_t nbucket;  /* a power of two */
  CseEntry **stack;  /* insertion order, for leaving a scope */
  int depth, cap;
} CseTable;

static uint64_t mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

static uint64_t str_hash(uint64_t h, const char *s) {
  for (; s && *s; s++) h = h * 1099511628211ull ^ (unsigned char)*s;
  return h;
}

/* Hash of one attribute: its name and, for numbers, its value. */
static uint64_t attr_hash(uint64_t h, const IrAttr *a) {
  h = mix(str_hash(h, a->name), (uint64_t)a->kind);
  switch (a->kind) {
  case ATTR_INT: case ATTR_BOOL: case ATTR_DTYPE:
    return mix(h, (uint64_t)a->i);
  case ATTR_FLOAT: {
    uint64_t bits;
    memcpy(&bits, &a->f, sizeof bits);
    return mix(h, bits);
  }
  case ATTR_INTS:
    for (int i = 0; i < a->n; i++) h = mix(h, (uint64_t)a->ints[i]);
    return h;
  case ATTR_STR: case ATTR_SYM: case ATTR_FUNC: case ATTR_CALL:
    return str_hash(h, a->s);
  default:
    return mix(h, (uint64_t)a->n);
  }
}

/* Hash over the op, operand pointers, attributes and result types.  Only
** the bucket depends on pointers: the first equal node in program order
** always wins, so the output does not depend on addresses. */
static uint64_t node_hash(const IrNode *n) {
  uint64_t h = mix(0, (uint64_t)n->op);
  for (int i = 0; i < n->nargs; i++) h = mix(h, (uint64_t)(uintptr_t)n->args[i]);
  for (int i = 0; i < n->nres; i++) {
    const IrType *t = &n->res[i]->type;
    h = mix(h, (uint64_t)t->dtype * 31 + (uint64_t)t->rank);
    for (int d = 0; d < t->rank; d++) h = mix(h, (uint64_t)t->dim[d]);
  }
  for (int i = 0; i < n->attrs.n; i++) h = attr_hash(h, &n->attrs.v[i]);
  return h;
}

static bool attr_eq(const IrAttr *a, const IrAttr *b);

static bool attrs_eq(const IrAttrs *a, const IrAttrs *b) {
  if (a->n != b->n) return false;
  for (int i = 0; i < a->n; i++)
    if (!attr_eq(&a->v[i], &b->v[i])) return false;
  return true;
}

static bool str_eq(const char *a, const char *b) {
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* Floats compare by bits: -0.0 and 0.0 differ, a NaN equals itself. */
static bool attr_eq(const IrAttr *a, const IrAttr *b) {
  if (!str_eq(a->name, b->name) || a->kind != b->kind) return false;
  switch (a->kind) {
  case ATTR_INT: case ATTR_BOOL: case ATTR_DTYPE:
    return a->i == b->i;
  case ATTR_FLOAT:
    return memcmp(&a->f, &b->f, sizeof a->f) == 0;
  case ATTR_STR: case ATTR_SYM: case ATTR_FUNC:
    return str_eq(a->s, b->s);
  case ATTR_INTS:
    return a->n == b->n &&
           (a->n == 0 || memcmp(a->ints, b->ints, sizeof(int64_t) * (size_t)a->n) == 0);
  case ATTR_FLOATS:
    return a->n == b->n &&
           (a->n == 0 || memcmp(a->floats, b->floats, sizeof(double) * (size_t)a->n) == 0);
  case ATTR_STRS:
    if (a->n != b->n) return false;
    for (int i = 0; i < a->n; i++)
      if (!str_eq(a->strs[i], b->strs[i])) return false;
    return true;
  case ATTR_CALL: {
    if (!str_eq(a->s, b->s) || a->n != b->n) return false;
    IrAttrs x = {a->args, a->n}, y = {b->args, b->n};
    return attrs_eq(&x, &y);
  }
  }
  return false;
}

static bool node_eq(const IrNode *a, const IrNode *b) {
  if (a->op != b->op || a->nargs != b->nargs || a->nres != b->nres)
    return false;
  for (int i = 0; i < a->nargs; i++)
    if (a->args[i] != b->args[i]) return false;
  for (int i = 0; i < a->nres; i++)
    if (!type_same(&a->res[i]->type, &b->res[i]->type)) return false;
  return attrs_eq(&a->attrs, &b->attrs);
}

static bool cse_candidate(const IrNode *n) {
  return !(ir_op_info[n->op].flags & (OPF_RANDOM | OPF_REGION)) && !n->body;
}

static void cse_push(Canon *c, CseTable *t, IrNode *n, uint64_t h) {
  CseEntry *e = ARENA_NEW(c->scratch, CseEntry);
  e->n = n, e->h = h;
  e->next = t->bucket[h & (t->nbucket - 1)];
  t->bucket[h & (t->nbucket - 1)] = e;
  if (t->depth == t->cap) {
    int cap = t->cap ? 2 * t->cap : 64;
    CseEntry **s = ARENA_ARRAY(c->scratch, CseEntry *, cap);
    if (t->depth) memcpy(s, t->stack, sizeof(*s) * (size_t)t->depth);
    t->stack = s, t->cap = cap;
  }
  t->stack[t->depth++] = e;
}

/* Leave a scope: entries are popped in reverse insertion order, so each is
** the head of its bucket when popped. */
static void cse_pop(CseTable *t, int mark) {
  while (t->depth > mark) {
    CseEntry *e = t->stack[--t->depth];
    NNC_ASSERT(t->bucket[e->h & (t->nbucket - 1)] == e);
    t->bucket[e->h & (t->nbucket - 1)] = e->next;
  }
}

/* Within b, and against the nodes of enclosing blocks that precede b's
** owner (still in the table), replace each node by the first equal one. */
static void cse_block(Canon *c, CseTable *t, IrBlock *b) {
  int mark = t->depth;
  for (IrNode *n = b->first; n; n = n->next) {
    if (!cse_candidate(n)) {
      if (n->body) cse_block(c, t, n->body);
      continue;
    }
    uint64_t h = node_hash(n);
    CseEntry *e = t->bucket[h & (t->nbucket - 1)];
    while (e && !(e->h == h && node_eq(e->n, n))) e = e->next;
    if (!e) {
      cse_push(c, t, n, h);
      continue;
    }
    for (int i = 0; i < n->nres; i++)
      ir_replace_uses(c->f, n->res[i], e->n->res[i]);
    c->changed = true;
  }
  cse_pop(t, mark);
}

/* ------------------------------------------------------------------- DCE */

/* Give every block argument and node result of b (recursively) a dense id. */
static int number_block(IrBlock *b, int id) {
  for (int i = 0; i < b->nargs; i++) b->args[i]->id = id++;
  for (IrNode *n = b->first; n; n = n->next) {
    for (int i = 0; i < n->nres; i++) n->res[i]->id = id++;
    if (n->body) id = number_block(n->body, id);
  }
  return id;
}

static void count_block(IrBlock *b, int *uses, int delta);

/* Add delta to the use count of each local value n (and its body) uses. */
static void count_node(const IrNode *n, int *uses, int delta) {
  for (int i = 0; i < n->nargs; i++)
    if (n->args[i]->kind != IRV_GLOBAL) uses[n->args[i]->id] += delta;
  if (n->body) count_block(n->body, uses, delta);
}

static void count_block(IrBlock *b, int *uses, int delta) {
  for (IrNode *n = b->first; n; n = n->next) count_node(n, uses, delta);
  for (int i = 0; i < b->nrets; i++)
    if (b->rets[i]->kind != IRV_GLOBAL) uses[b->rets[i]->id] += delta;
}

/* Walk b backwards so that a chain of dead nodes goes in one sweep. */
static void dce_block(Canon *c, IrBlock *b, int *uses) {
  IrNode *prev;
  for (IrNode *n = b->last; n; n = prev) {
    prev = n->prev;
    bool dead = true;
    for (int i = 0; i < n->nres; i++) dead &= uses[n->res[i]->id] == 0;
    if (dead) {
      count_node(n, uses, -1);
      ir_node_remove(n);
      c->changed = true;
    } else if (n->body) {
      dce_block(c, n->body, uses);
    }
  }
}

/* ------------------------------------------------------------------ driver */

static void canon_func(Canon *c) {
  /* Every round that reports a change removed or rewrote a node, and no
  ** rewrite undoes another, so this ends; the bound is a safety net (the
  ** result is correct at any round, only perhaps not minimal). */
  for (int round = 0; round < 1000; round++) {
    c->changed = false;
    rewrite_block(c, c->f->body);

    CseTable t = {0};
    int nvalues = number_block(c->f->body, 0);
    for (t.nbucket = 64; t.nbucket < 2 * (uint64_t)nvalues;) t.nbucket *= 2;
    t.bucket = ARENA_ARRAY(c->scratch, CseEntry *, t.nbucket);
    cse_block(c, &t, c->f->body);

    nvalues = number_block(c->f->body, 0);
    int *uses = ARENA_ARRAY(c->scratch, int, nvalues + 1);
    count_block(c->f->body, uses, 1);
    dce_block(c, c->f->body, uses);
    if (!c->changed) return;
  }
}

bool pass_canonicalize(IrModule *m, PassCtx *cx) {
  NNC_ASSERT(m && cx && cx->scratch);
  Canon c = {.m = m, .scratch = cx->scratch};
  for (IrFunc *f = m->funcs; f; f = f->next) {
    c.f = f;
    canon_func(&c);
  }
  return true;
}

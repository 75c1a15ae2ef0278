/*
** This file contains the IR verifier (QBE ssacheck): it checks the
** invariants of docs/internals.md after every pass in debug builds and in
** tests, and the typing rule of scan (ir_scan_check), which ir_infer does
** not cover because scan is typed by its builder.
**
** Checked: symbols and types are well formed; globals are unique and their
** values consistent; node links (parent, prev, next, first, last) agree;
** argument counts are within the op table's bounds; every operand and
** block return is defined before use in the same or an enclosing block (or
** is a global of the module); results and block arguments point back at
** their node or block; every node's result types agree with ir_infer (scan:
** with ir_scan_check); attribute lists are sorted with unique names;
** function bodies end in returns matching ret_names.
** One line per problem is written to errs, prefixed with the function and
** the node as the printer numbers it ("@forward: %4 = matmul: ...").
*/
#include "ir.h"

#include <stdarg.h>
#include <string.h>

/* ------------------------------------------------------------ scan rule */

static const char *scan_fail(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static const char *scan_fail(Arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  const char *s = arena_vprintf(a, fmt, ap);
  va_end(ap);
  return s;
}

/* t with dimension ax removed. */
static IrType drop_axis(const IrType *t, int ax) {
  IrType r = *t;
  for (int i = ax; i + 1 < t->rank; i++) {
    r.dim[i] = t->dim[i + 1];
    r.sym[i] = t->sym[i + 1];
  }
  r.rank--;
  r.dim[r.rank] = 0;
  r.sym[r.rank] = IR_NO_SYM;
  return r;
}

/* t with a dimension of size len (symbol sym) inserted at ax. */
static IrType insert_axis(const IrType *t, int ax, int64_t len, int sym) {
  IrType r = *t;
  r.rank++;
  for (int i = r.rank - 1; i > ax; i--) {
    r.dim[i] = t->dim[i - 1];
    r.sym[i] = t->sym[i - 1];
  }
  r.dim[ax] = len;
  r.sym[ax] = (int16_t)sym;
  return r;
}

/* The shared length of the sequences, or an error. */
static const char *scan_length(const IrModule *m, const IrNode *n, int ncarry,
                               const IrAttr *axes, int64_t *len, int *sym,
                               Arena *a) {
  int nseq = n->nargs - ncarry;
  *len = -1;
  *sym = IR_NO_SYM;
  if (nseq == 0) {
    *len = ir_attr_int(&n->attrs, "length", -1);
    return NULL;
  }
  if (!axes || axes->kind != ATTR_INTS)
    return scan_fail(a, "missing attribute 'axes'");
  if (axes->n != nseq)
    return scan_fail(a, "axes has %d entries for %d sequences", axes->n, nseq);
  for (int i = 0; i < nseq; i++) {
    const IrType *t = &n->args[ncarry + i]->type;
    int ax;
    if (!ir_axis(axes->ints[i], t->rank, &ax))
      return scan_fail(a, "axis %lld is out of range for sequence %d of rank %d",
                       (long long)axes->ints[i], i, t->rank);
    if (i == 0) {
      *len = t->dim[ax];
      *sym = t->sym[ax];
    } else if (t->dim[ax] != *len) {
      return scan_fail(a, "sequence lengths differ (%lld vs %lld)",
                       (long long)*len, (long long)t->dim[ax]);
    }
  }
  return NULL;
}

static const char *scan_body(const IrModule *m, const IrNode *n, int ncarry,
                             const IrAttr *axes, Arena *a) {
  const IrBlock *b = n->body;
  if (b->nargs != n->nargs)
    return scan_fail(a,
                     "body takes %d arguments, expected %d (carries then "
                     "sequence slices)",
                     b->nargs, n->nargs);
  for (int i = 0; i < n->nargs; i++) {
    IrType want = n->args[i]->type;
    if (i >= ncarry) {
      int ax;
      ir_axis(axes->ints[i - ncarry], want.rank, &ax);
      want = drop_axis(&want, ax);
    }
    if (!ir_type_eq(&b->args[i]->type, &want))
      return scan_fail(a, "body argument %d is %s, expected %s", i,
                       ir_type_str(a, m, &b->args[i]->type),
                       ir_type_str(a, m, &want));
  }
  if (b->nrets < ncarry)
    return scan_fail(a, "body yields %d values, fewer than the %d carries",
                     b->nrets, ncarry);
  for (int i = 0; i < b->nrets; i++)
    if (!b->rets[i]) return scan_fail(a, "yield %d is missing", i);
  for (int i = 0; i < ncarry; i++)
    if (!ir_type_eq(&b->rets[i]->type, &n->args[i]->type))
      return scan_fail(a, "yield %d is %s, carry %d is %s", i,
                       ir_type_str(a, m, &b->rets[i]->type), i,
                       ir_type_str(a, m, &n->args[i]->type));
  return NULL;
}

const char *ir_scan_check(const IrModule *m, const IrNode *n, Arena *a) {
  const IrAttr *nc = ir_attr_get(&n->attrs, "ncarry");
  const IrAttr *axes = ir_attr_get(&n->attrs, "axes");
  const IrAttr *rev = ir_attr_get(&n->attrs, "reverse");
  if (!nc || nc->kind != ATTR_INT) return scan_fail(a, "missing attribute 'ncarry'");
  if (nc->i < 0 || nc->i > n->nargs)
    return scan_fail(a, "ncarry %lld is out of range for %d operands",
                     (long long)nc->i, n->nargs);
  if (rev && rev->kind != ATTR_BOOL)
    return scan_fail(a, "attribute 'reverse' must be a bool");
  if (!n->body) return scan_fail(a, "scan has no body");
  int ncarry = (int)nc->i;
  int64_t len;
  int sym;
  const char *e = scan_length(m, n, ncarry, axes, &len, &sym, a);
  if (e) return e;
  if ((e = scan_body(m, n, ncarry, axes, a))) return e;
  const IrBlock *b = n->body;
  if (n->nres != b->nrets)
    return scan_fail(a, "scan has %d results, its body yields %d", n->nres,
                     b->nrets);
  for (int i = 0; i < n->nres; i++) {
    IrType want = b->rets[i]->type;
    if (i >= ncarry) {
      if (len < 0)
        return scan_fail(a, "scan without sequences needs a 'length'");
      if (want.rank >= IR_MAX_RANK)
        return scan_fail(a, "emitted value %d has too high a rank", i);
      int ax;
      int64_t a0 = axes && axes->kind == ATTR_INTS && axes->n ? axes->ints[0] : 0;
      if (!ir_axis(a0, want.rank + 1, &ax))
        return scan_fail(a, "axis %lld is out of range for emitted value %d",
                         (long long)a0, i);
      want = insert_axis(&want, ax, len, sym);
    }
    if (!ir_type_eq(&n->res[i]->type, &want))
      return scan_fail(a, "result %d is %s, expected %s", i,
                       ir_type_str(a, m, &n->res[i]->type),
                       ir_type_str(a, m, &want));
  }
  return NULL;
}

/* ------------------------------------------------------------- verifier */

/* A pointer -> count map: how many times a value is in scope. */
typedef struct Set {
  const void **keys;
  int *cnt;
  size_t cap, used;
} Set;

typedef struct V {
  const IrModule *m;
  FILE *errs;
  Arena *a;
  bool ok;
  const IrFunc *f;
  Set defined;
  Set globals;
  int next; /* node numbering, as the printer does */
} V;

static size_t set_slot(const Set *s, const void *k) {
  uint64_t h = (uint64_t)(uintptr_t)k * 0x9E3779B97F4A7C15ull;
  size_t i = (size_t)(h >> 17) & (s->cap - 1);
  while (s->keys[i] && s->keys[i] != k) i = (i + 1) & (s->cap - 1);
  return i;
}

static void set_add(Arena *a, Set *s, const void *k, int d) {
  if (2 * (s->used + 1) > s->cap) {
    Set n = {NULL, NULL, s->cap ? 2 * s->cap : 64, 0};
    n.keys = ARENA_ARRAY(a, const void *, n.cap);
    n.cnt = ARENA_ARRAY(a, int, n.cap);
    for (size_t i = 0; i < s->cap; i++)
      if (s->keys[i]) {
        size_t j = set_slot(&n, s->keys[i]);
        n.keys[j] = s->keys[i];
        n.cnt[j] = s->cnt[i];
        n.used++;
      }
    *s = n;
  }
  size_t i = set_slot(s, k);
  if (!s->keys[i]) s->used++;
  s->keys[i] = k;
  s->cnt[i] += d;
}

static bool set_has(const Set *s, const void *k) {
  if (!s->cap) return false;
  size_t i = set_slot(s, k);
  return s->keys[i] && s->cnt[i] > 0;
}

static void problem(V *v, const IrNode *n, int id, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void problem(V *v, const IrNode *n, int id, const char *fmt, ...) {
  v->ok = false;
  if (!v->errs) return;
  va_list ap;
  va_start(ap, fmt);
  char *msg = arena_vprintf(v->a, fmt, ap);
  va_end(ap);
  if (v->f && n)
    fprintf(v->errs, "verify: @%s: %%%d = %s: %s\n", v->f->name, id,
            (unsigned)n->op < IR_OP_COUNT ? ir_op_info[n->op].name : "?", msg);
  else if (v->f)
    fprintf(v->errs, "verify: @%s: %s\n", v->f->name, msg);
  else
    fprintf(v->errs, "verify: %s\n", msg);
}

/* Empty string when t is well formed, else what is wrong. */
static const char *type_problem(V *v, const IrType *t) {
  if ((unsigned)t->dtype >= DT_COUNT) return "invalid dtype";
  if (t->rank < 0 || t->rank > IR_MAX_RANK) return "invalid rank";
  for (int i = 0; i < t->rank; i++) {
    if (t->dim[i] < 0) return "negative dimension";
    int s = t->sym[i];
    if (s == IR_NO_SYM) continue;
    if (s < 0 || s >= v->m->nsyms) return "invalid dimension symbol";
    if (v->m->syms[s].value != t->dim[i])
      return arena_printf(v->a, "dimension %d has size %lld but symbol %s is %lld",
                          i, (long long)t->dim[i], v->m->syms[s].name,
                          (long long)v->m->syms[s].value);
  }
  return "";
}

static void check_type(V *v, const IrNode *n, int id, const IrType *t,
                       const char *kind, int k) {
  const char *p = type_problem(v, t);
  if (*p) problem(v, n, id, "%s %d: %s", kind, k, p);
}

/* Is value x usable here?  It is operand k of n (or, with n NULL or
** ret set, returned value k of the block). */
static void check_use(V *v, const IrNode *n, int id, const IrValue *x,
                      const char *kind, int k) {
  if (x && x->kind == IRV_GLOBAL && set_has(&v->globals, x)) return;
  if (x && x->kind != IRV_GLOBAL && set_has(&v->defined, x)) return;
  const char *what = arena_printf(v->a, "%s %d", kind, k);
  if (!x) {
    problem(v, n, id, "%s is NULL", what);
  } else if (x->kind == IRV_GLOBAL) {
    if (!set_has(&v->globals, x))
      problem(v, n, id, "%s refers to a global that is not in the module", what);
  } else if (!set_has(&v->defined, x)) {
    if (x->kind == IRV_RESULT && x->def && !x->def->parent)
      problem(v, n, id, "%s is the result of a removed node", what);
    else
      problem(v, n, id, "%s is not defined before use in this or an enclosing block",
              what);
  }
}

static void check_infer(V *v, const IrNode *n, int id) {
  const char *err = NULL;
  int bad = -1;
  IrType *at = ARENA_ARRAY(v->a, IrType, n->nargs ? n->nargs : 1);
  IrType res[8];
  for (int i = 0; i < n->nargs; i++) {
    if (!n->args[i]) return;
    at[i] = n->args[i]->type;
  }
  if (n->nres >= 1) res[0] = n->res[0]->type;
  int r = ir_infer(v->m, n->op, n->nargs, at, &n->attrs, res, 8, &err, &bad, v->a);
  if (!r) {
    problem(v, n, id, "%s", err);
    return;
  }
  if (r != n->nres) {
    problem(v, n, id, "ir_infer gives %d results, the node has %d", r, n->nres);
    return;
  }
  for (int i = 0; i < r; i++)
    if (!ir_type_eq(&res[i], &n->res[i]->type))
      problem(v, n, id, "type mismatch: ir_infer gives %s, the node has %s",
              ir_type_str(v->a, v->m, &res[i]),
              ir_type_str(v->a, v->m, &n->res[i]->type));
}

static void check_block(V *v, const IrBlock *b, const IrNode *owner, int oid);

static void check_node(V *v, const IrBlock *b, const IrNode *n, int id) {
  if ((unsigned)n->op >= IR_OP_COUNT) {
    problem(v, NULL, id, "node %%%d has an invalid op", id);
    return;
  }
  const IrOpInfo *info = &ir_op_info[n->op];
  if (n->parent != b) problem(v, n, id, "parent link does not point at its block");
  if (n->nargs < info->min_args || (info->max_args >= 0 && n->nargs > info->max_args))
    problem(v, n, id, "%d operands, the op takes %d to %d", n->nargs,
            info->min_args, info->max_args);
  for (int i = 0; i < n->nargs; i++)
    check_use(v, n, id, n->args[i], "operand", i);
  for (int i = 0; i < n->attrs.n; i++) {
    const char *a = n->attrs.v[i].name, *b = i ? n->attrs.v[i - 1].name : NULL;
    if (!a)
      problem(v, n, id, "attribute %d has no name", i);
    else if (b && strcmp(b, a) >= 0)
      problem(v, n, id, "attributes are not sorted by name (%s, %s)", b, a);
  }
  for (int i = 0; i < n->nres; i++) {
    const IrValue *r = n->res[i];
    if (!r || r->kind != IRV_RESULT || r->def != n || r->idx != i) {
      problem(v, n, id, "result %d does not point back at its node", i);
      return;
    }
    check_type(v, n, id, &r->type, "result", i);
  }
  if (info->flags & OPF_REGION) {
    if (!n->body) {
      problem(v, n, id, "scan has no body");
      return;
    }
    if (n->body->owner != n) problem(v, n, id, "body's owner is not the node");
    check_block(v, n->body, n, id);
    const char *e = ir_scan_check(v->m, n, v->a);
    if (e) problem(v, n, id, "%s", e);
  } else {
    if (n->body) problem(v, n, id, "%s has a body", info->name);
    check_infer(v, n, id);
  }
}

/* Check block b (owned by node `owner`, numbered oid; NULL for a function
** body); its arguments and results are in scope only inside it. */
static void check_block(V *v, const IrBlock *b, const IrNode *owner, int oid) {
  if (b->func != v->f) problem(v, owner, oid, "block's function link is wrong");
  for (int i = 0; i < b->nargs; i++) {
    const IrValue *x = b->args[i];
    if (!x || x->kind != IRV_ARG || x->block != b || x->idx != i) {
      problem(v, owner, oid, "block argument %d does not point back at its block", i);
      continue;
    }
    check_type(v, owner, oid, &x->type, "block argument", i);
    set_add(v->a, &v->defined, x, 1);
  }
  const IrNode *prev = NULL;
  int guard = 0;
  for (const IrNode *n = b->first; n; prev = n, n = n->next) {
    int id = v->next++;
    if (n->prev != prev) problem(v, n, id, "prev link is inconsistent");
    if (++guard > 100000000) break;
    check_node(v, b, n, id);
    for (int i = 0; i < n->nres; i++)
      if (n->res[i]) set_add(v->a, &v->defined, n->res[i], 1);
  }
  if (b->last != prev)
    problem(v, owner, oid, "the block's last node is not the end of its list");
  for (int i = 0; i < b->nrets; i++)
    check_use(v, owner, oid, b->rets[i],
              owner ? "yielded value" : "returned value", i);
  /* leave the scope */
  for (int i = 0; i < b->nargs; i++)
    if (b->args[i]) set_add(v->a, &v->defined, b->args[i], -1);
  for (const IrNode *n = b->first; n; n = n->next)
    for (int i = 0; i < n->nres; i++)
      if (n->res[i]) set_add(v->a, &v->defined, n->res[i], -1);
}

static void check_func(V *v, const IrFunc *f) {
  v->f = f;
  v->next = 0;
  v->defined = (Set){NULL, NULL, 0, 0};
  if (!f->name) problem(v, NULL, 0, "function without a name");
  for (const IrFunc *g = v->m->funcs; g != f; g = g->next)
    if (g->name && f->name && strcmp(g->name, f->name) == 0)
      problem(v, NULL, 0, "duplicate function name");
  if (!f->body) {
    problem(v, NULL, 0, "function has no body");
    return;
  }
  if (f->body->owner) problem(v, NULL, 0, "function body has an owner node");
  if (f->body->nrets && !f->ret_names)
    problem(v, NULL, 0, "returned values have no names");
  for (int i = 0; f->ret_names && i < f->body->nrets; i++)
    if (!f->ret_names[i]) problem(v, NULL, 0, "returned value %d has no name", i);
  check_block(v, f->body, NULL, 0);
  v->f = NULL;
}

static void check_globals(V *v) {
  for (const IrGlobal *g = v->m->globals; g; g = g->next) {
    if (!g->name) {
      problem(v, NULL, 0, "global without a name");
      continue;
    }
    for (const IrGlobal *h = v->m->globals; h != g; h = h->next)
      if (h->name && strcmp(h->name, g->name) == 0)
        problem(v, NULL, 0, "duplicate global @%s", g->name);
    if (!g->value || g->value->kind != IRV_GLOBAL || g->value->global != g) {
      problem(v, NULL, 0, "global @%s: value does not point back at it", g->name);
      continue;
    }
    if (!ir_type_eq(&g->type, &g->value->type))
      problem(v, NULL, 0, "global @%s: value type differs from the global's",
              g->name);
    const char *p = type_problem(v, &g->type);
    if (*p) problem(v, NULL, 0, "global @%s: %s", g->name, p);
    set_add(v->a, &v->globals, g->value, 1);
  }
}

bool ir_verify(const IrModule *m, FILE *errs) {
  Arena *a = arena_new();
  V v;
  memset(&v, 0, sizeof v);
  v.m = m;
  v.errs = errs;
  v.a = a;
  v.ok = true;
  for (int i = 0; i < m->nsyms; i++) {
    if (!m->syms[i].name) problem(&v, NULL, 0, "dimension symbol %d has no name", i);
    else if (ir_sym_find(m, m->syms[i].name) != i)
      problem(&v, NULL, 0, "duplicate dimension symbol %s", m->syms[i].name);
    if (m->syms[i].value < 0)
      problem(&v, NULL, 0, "dimension symbol %d has a negative size", i);
  }
  check_globals(&v);
  for (const IrFunc *f = m->funcs; f; f = f->next) check_func(&v, f);
  bool ok = v.ok;
  arena_free(a);
  return ok;
}

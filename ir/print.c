/*
** This file contains the printer of the IR text format (.nnir) described in
** docs/internals.md.  The output is deterministic and parseable: values are
** renumbered densely per function, attributes are sorted, block arguments
** get unique names, floats print as the shortest text that reads back to
** the same double.  Printing does not modify the module: names and numbers
** live in a side table in a scratch arena.
*/
#include "ir.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ value names */

/* A pointer -> string map (open addressing, in the scratch arena). */
typedef struct PtrMap {
  const void **keys;
  const char **vals;
  size_t cap, used;
} PtrMap;

static size_t ptr_hash(const void *p, size_t cap) {
  uint64_t h = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull;
  return (size_t)(h >> 17) & (cap - 1);
}

static void map_put(Arena *a, PtrMap *m, const void *k, const char *v);

static void map_grow(Arena *a, PtrMap *m) {
  PtrMap n = {NULL, NULL, m->cap ? m->cap * 2 : 64, 0};
  n.keys = ARENA_ARRAY(a, const void *, n.cap);
  n.vals = ARENA_ARRAY(a, const char *, n.cap);
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i]) map_put(a, &n, m->keys[i], m->vals[i]);
  *m = n;
}

static void map_put(Arena *a, PtrMap *m, const void *k, const char *v) {
  if (2 * (m->used + 1) > m->cap) map_grow(a, m);
  size_t i = ptr_hash(k, m->cap);
  while (m->keys[i] && m->keys[i] != k) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) m->used++;
  m->keys[i] = k;
  m->vals[i] = v;
}

static const char *map_get(const PtrMap *m, const void *k) {
  if (!m->cap) return NULL;
  size_t i = ptr_hash(k, m->cap);
  for (; m->keys[i]; i = (i + 1) & (m->cap - 1))
    if (m->keys[i] == k) return m->vals[i];
  return NULL;
}

/* The state of printing one function. */
typedef struct Pr {
  FILE *out;
  const IrModule *m;
  const IrPrintOpts *o;
  Arena *a;
  PtrMap names;   /* IrValue* / IrNode* -> "%5", "%x.1" */
  Vec used;       /* argument names taken in this function */
  int next;       /* next node number */
} Pr;

static bool name_taken(Pr *p, const char *s) {
  for (int i = 0; i < p->used.len; i++)
    if (strcmp(p->used.data[i], s) == 0) return true;
  return false;
}

/* A block argument's name: its source name made an identifier (letters,
** digits, '_' and '.', not starting with a digit) and unique within the
** function by appending .1, .2, ...; "argN" when it has none. */
static const char *arg_name(Pr *p, const IrValue *v) {
  char *base;
  if (v->name && v->name[0]) {
    base = arena_strdup(p->a, v->name);
    for (char *c = base; *c; c++)
      if (!(*c == '_' || *c == '.' || (*c >= 'a' && *c <= 'z') ||
            (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')))
        *c = '_';
    if (base[0] >= '0' && base[0] <= '9') base = arena_printf(p->a, "_%s", base);
  } else {
    base = arena_printf(p->a, "arg%d", v->idx);
  }
  const char *s = base;
  for (int k = 1; name_taken(p, s); k++) s = arena_printf(p->a, "%s.%d", base, k);
  vec_push(p->a, &p->used, (void *)s);
  return s;
}

static void name_args(Pr *p, const IrBlock *b) {
  for (int i = 0; i < b->nargs; i++)
    map_put(p->a, &p->names, b->args[i],
            arena_printf(p->a, "%%%s", arg_name(p, b->args[i])));
}

/* Number nodes densely in program order, nested bodies included. */
static void name_block(Pr *p, const IrBlock *b) {
  for (const IrNode *n = b->first; n; n = n->next) {
    int id = p->next++;
    for (int i = 0; i < n->nres; i++) {
      const char *s = n->nres == 1 ? arena_printf(p->a, "%%%d", id)
                                   : arena_printf(p->a, "%%%d#%d", id, i);
      map_put(p->a, &p->names, n->res[i], s);
    }
    map_put(p->a, &p->names, n, arena_printf(p->a, "%%%d", id));
    if (n->body) {
      name_args(p, n->body);
      name_block(p, n->body);
    }
  }
}

static void print_value(Pr *p, const IrValue *v) {
  if (v && v->kind == IRV_GLOBAL && v->global) {
    fprintf(p->out, "@%s", v->global->name);
    return;
  }
  const char *s = v ? map_get(&p->names, v) : NULL;
  fputs(s ? s : "%<undefined>", p->out);
}

/* ------------------------------------------------------------- attributes */

/* The shortest text that strtod reads back to d, always with '.' or an
** exponent (or inf/nan). */
static void fmt_double(char *buf, size_t size, double d) {
  if (isnan(d)) {
    snprintf(buf, size, "nan");
    return;
  }
  if (isinf(d)) {
    snprintf(buf, size, d < 0 ? "-inf" : "inf");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, d);
    if (strtod(buf, NULL) == d) break;
  }
  if (!strpbrk(buf, ".e")) {
    size_t n = strlen(buf);
    if (n + 3 <= size) memcpy(buf + n, ".0", 3);
  }
}

static void print_str(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    switch (*c) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    case '\r': fputs("\\r", out); break;
    default:
      if (*c < 0x20 || *c == 0x7f)
        fprintf(out, "\\%03o", *c);
      else
        fputc(*c, out);
    }
  }
  fputc('"', out);
}

static void print_attrs(FILE *out, const IrAttr *v, int n);

static void print_attr_value(FILE *out, const IrAttr *a) {
  char buf[64];
  switch (a->kind) {
  case ATTR_INT: fprintf(out, "%lld", (long long)a->i); break;
  case ATTR_FLOAT:
    fmt_double(buf, sizeof buf, a->f);
    fputs(buf, out);
    break;
  case ATTR_BOOL: fputs(a->i ? "true" : "false", out); break;
  case ATTR_STR: print_str(out, a->s ? a->s : ""); break;
  case ATTR_INTS: case ATTR_FLOATS: case ATTR_STRS:
    fputc('[', out);
    for (int i = 0; i < a->n; i++) {
      if (i) fputs(", ", out);
      if (a->kind == ATTR_INTS) {
        fprintf(out, "%lld", (long long)a->ints[i]);
      } else if (a->kind == ATTR_FLOATS) {
        fmt_double(buf, sizeof buf, a->floats[i]);
        fputs(buf, out);
      } else {
        print_str(out, a->strs[i] ? a->strs[i] : "");
      }
    }
    fputc(']', out);
    break;
  case ATTR_DTYPE: fputs(ir_dtype_name((DType)a->i), out); break;
  case ATTR_SYM: fputs(a->s ? a->s : "?", out); break;
  case ATTR_CALL:
    fprintf(out, "%s ", a->s ? a->s : "?");
    print_attrs(out, a->args, a->n);
    break;
  case ATTR_FUNC: fprintf(out, "@%s", a->s ? a->s : "?"); break;
  }
}

/* Is attribute i ordered before attribute j (by name, then position)? */
static bool attr_before(const IrAttr *v, int i, int j) {
  int c = strcmp(v[i].name, v[j].name);
  return c < 0 || (c == 0 && i < j);
}

/* The index of the attribute that follows `prev` in sorted order (-1: the
** first).  Lists are normally sorted already (ir_attr_set keeps them so):
** then this is prev + 1; otherwise a selection in quadratic time. */
static int attr_next(const IrAttr *v, int n, int prev, bool sorted) {
  if (sorted) return prev + 1;
  int best = -1;
  for (int k = 0; k < n; k++)
    if ((prev < 0 || attr_before(v, prev, k)) &&
        (best < 0 || attr_before(v, k, best)))
      best = k;
  return best;
}

static bool attrs_sorted(const IrAttr *v, int n) {
  for (int i = 1; i < n; i++)
    if (strcmp(v[i - 1].name, v[i].name) > 0) return false;
  return true;
}

/* {a = 1, b = 2} sorted by name ({} when empty). */
static void print_attrs(FILE *out, const IrAttr *v, int n) {
  fputc('{', out);
  int k = -1;
  bool sorted = attrs_sorted(v, n);
  for (int i = 0; i < n; i++) {
    k = attr_next(v, n, k, sorted);
    fprintf(out, "%s%s = ", i ? ", " : "", v[k].name);
    print_attr_value(out, &v[k]);
  }
  fputc('}', out);
}

/* ------------------------------------------------------------------ nodes */

static void print_type(Pr *p, const IrType *t) {
  fputs(ir_type_str(p->a, p->m, t), p->out);
}

static void print_loc(FILE *out, SrcLoc l) {
  fputs("loc(", out);
  print_str(out, l.file);
  fprintf(out, ":%u:%u)", l.line, l.col);
}

static void indent(Pr *p, int depth) {
  for (int i = 0; i < depth; i++) fputs("  ", p->out);
}

static void print_block_body(Pr *p, const IrBlock *b, int depth,
                             const char *term);

/*   %N[:K] = OP OPERANDS {ATTRS} : TYPES [loc(...)] [{ REGION }] */
static void print_node(Pr *p, const IrNode *n, int depth) {
  FILE *out = p->out;
  indent(p, depth);
  const char *id = map_get(&p->names, n);
  if (n->nres == 1)
    fprintf(out, "%s = ", id);
  else
    fprintf(out, "%s:%d = ", id, n->nres);
  fputs((unsigned)n->op < IR_OP_COUNT ? ir_op_info[n->op].name : "?", out);
  for (int i = 0; i < n->nargs; i++) {
    fputs(i ? ", " : " ", out);
    print_value(p, n->args[i]);
  }
  if (n->attrs.n) {
    fputc(' ', out);
    print_attrs(out, n->attrs.v, n->attrs.n);
  }
  fputs(" :", out);
  for (int i = 0; i < n->nres; i++) {
    fputs(i ? ", " : " ", out);
    print_type(p, &n->res[i]->type);
  }
  if (p->o && p->o->locs && n->loc.file) {
    fputs("  ", out);
    print_loc(out, n->loc);
  }
  if (!n->body) {
    fputc('\n', out);
    return;
  }
  fputs(" {\n", out);
  indent(p, depth);
  fputs("^(", out);
  for (int i = 0; i < n->body->nargs; i++) {
    const IrValue *v = n->body->args[i];
    fprintf(out, "%s%s: ", i ? ", " : "", map_get(&p->names, v));
    print_type(p, &v->type);
  }
  fputs("):\n", out);
  print_block_body(p, n->body, depth + 1, "yield");
  indent(p, depth);
  fputs("}\n", out);
}

static void print_block_body(Pr *p, const IrBlock *b, int depth,
                             const char *term) {
  for (const IrNode *n = b->first; n; n = n->next) print_node(p, n, depth);
  indent(p, depth);
  fputs(term, p->out);
  for (int i = 0; i < b->nrets; i++) {
    fputs(i ? ", " : " ", p->out);
    print_value(p, b->rets[i]);
  }
  fputc('\n', p->out);
}

/* -------------------------------------------------------------- functions */

static void print_func(FILE *out, const IrModule *m, const IrFunc *f,
                       const IrPrintOpts *o, Arena *a) {
  Pr p = {out, m, o, a, {NULL, NULL, 0, 0}, {NULL, 0, 0}, 0};
  const IrBlock *b = f->body;
  name_args(&p, b);
  name_block(&p, b);
  fprintf(out, "func @%s(", f->name);
  for (int i = 0; i < b->nargs; i++) {
    fprintf(out, "%s%s: ", i ? ", " : "", map_get(&p.names, b->args[i]));
    print_type(&p, &b->args[i]->type);
  }
  fputs(") -> (", out);
  for (int i = 0; i < b->nrets; i++) {
    const char *name = f->ret_names && f->ret_names[i] ? f->ret_names[i] : NULL;
    if (name)
      fprintf(out, "%s%s: ", i ? ", " : "", name);
    else
      fprintf(out, "%sout%d: ", i ? ", " : "", i);
    if (b->rets[i])
      print_type(&p, &b->rets[i]->type);
    else
      fputs("?", out);
  }
  fputs(") {\n", out);
  print_block_body(&p, b, 1, "return");
  fputs("}\n", out);
}

void ir_print_func(FILE *out, const IrModule *m, const IrFunc *f,
                   const IrPrintOpts *o) {
  Arena *a = arena_new();
  print_func(out, m, f, o, a);
  arena_free(a);
}

/* ----------------------------------------------------------------- module */

static void print_global(FILE *out, const IrModule *m, const IrGlobal *g,
                         const IrPrintOpts *o, Arena *a) {
  fprintf(out, "%s @%s : %s", g->kind == IRG_PARAM ? "param" : "state",
          g->name, ir_type_str(a, m, &g->type));
  if (g->init) {
    fprintf(out, " = %s", g->init);
    if (g->init_attrs.n) {
      fputc(' ', out);
      print_attrs(out, g->init_attrs.v, g->init_attrs.n);
    }
  }
  if (o && o->locs && g->loc.file) {
    fputs("  ", out);
    print_loc(out, g->loc);
  }
  fputc('\n', out);
}

static void print_train(FILE *out, const IrTrain *t) {
  if (t->model)
    fprintf(out, "train @%s {\n", t->model);
  else
    fputs("train {\n", out);
  int k = -1;
  bool sorted = attrs_sorted(t->settings.v, t->settings.n);
  for (int i = 0; i < t->settings.n; i++) {
    k = attr_next(t->settings.v, t->settings.n, k, sorted);
    fprintf(out, "  %s = ", t->settings.v[k].name);
    print_attr_value(out, &t->settings.v[k]);
    fputc('\n', out);
  }
  fputs("}\n", out);
}

/* Sections (module line, dims, globals, each function, train) are separated
** by one blank line. */
void ir_print_module(FILE *out, const IrModule *m, const IrPrintOpts *o) {
  Arena *a = arena_new();
  bool sep = false;
  if (m->name) {
    fprintf(out, "module @%s\n", m->name);
    sep = true;
  }
  if (m->nsyms) {
    if (sep) fputc('\n', out);
    for (int i = 0; i < m->nsyms; i++)
      fprintf(out, "dim %s %s %lld\n", m->syms[i].name,
              m->syms[i].bounded ? "<=" : "=", (long long)m->syms[i].value);
    sep = true;
  }
  if (m->globals) {
    if (sep) fputc('\n', out);
    for (const IrGlobal *g = m->globals; g; g = g->next)
      print_global(out, m, g, o, a);
    sep = true;
  }
  for (const IrFunc *f = m->funcs; f; f = f->next) {
    if (sep) fputc('\n', out);
    print_func(out, m, f, o, a);
    sep = true;
  }
  if (m->train) {
    if (sep) fputc('\n', out);
    print_train(out, m->train);
  }
  arena_free(a);
}

/*
** This file contains the parser of the IR text format (.nnir), a
** hand-written lexer and recursive-descent parser for the grammar of
** docs/internals.md.  It builds nodes with their printed result types and
** re-infers the type of every non-region node with ir_infer (scan bodies
** are checked by ir_scan_check), so a file that parses is well typed.
**
** The first error stops the parse and is reported as
** "FILE:LINE:COL: error: MESSAGE".  The parser must never crash on any
** input (it is fuzzed): every read is bounds-checked against the length,
** numbers are range-checked, and nesting depth is limited.
*/
#include "ir.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_DIM ((int64_t)1 << 40)

typedef enum TokKind {
  TK_EOF, TK_IDENT, TK_GLOBAL, TK_VALUE, TK_INT, TK_FLOAT, TK_STRING,
  TK_PUNCT, TK_ARROW, TK_LE
} TokKind;

typedef struct Tok {
  TokKind kind;
  const char *text; /* IDENT, GLOBAL (no '@'), VALUE (no '%'), STRING */
  int64_t i;        /* INT; VALUE: result index after '#', else -1 */
  double f;         /* FLOAT */
  char c;           /* PUNCT */
  int line, col;
} Tok;

/* One visible SSA name: a value (argument or single result) or a node
** (for %N#k). */
typedef struct Entry {
  const char *key;
  IrValue *val;
  IrNode *node;
  int prev; /* the entry this one shadows, or -1 */
} Entry;

typedef struct P {
  const char *file;
  const char *src;
  size_t len, pos;
  int line, col;
  Tok tok;
  Arena *tmp;       /* parser temporaries */
  Arena *errarena;
  StrTab *names;    /* interned SSA names (tmp) */
  IrModule *m;
  IrFunc *func;
  int depth;
  jmp_buf fail;
  const char *err;
  /* SSA scope: entries[] with a key -> entry index hash map */
  Entry *ent;
  int nent, capent;
  const char **mkeys;
  int *mval;
  size_t mcap, mused;
} P;

static _Noreturn void error_at(P *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static _Noreturn void error_at(P *p, int line, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = arena_vprintf(p->tmp, fmt, ap);
  va_end(ap);
  p->err = arena_printf(p->errarena, "%s:%d:%d: error: %s", p->file, line, col,
                        msg);
  longjmp(p->fail, 1);
}

#define ERR(p, ...) error_at((p), (p)->tok.line, (p)->tok.col, __VA_ARGS__)

/* ------------------------------------------------------------------ lexer */

static int peekc(P *p, size_t k) {
  return p->pos + k < p->len ? (unsigned char)p->src[p->pos + k] : -1;
}

static void advance(P *p) {
  if (p->pos >= p->len) return;
  if (p->src[p->pos] == '\n') {
    p->line++;
    p->col = 1;
  } else {
    p->col++;
  }
  p->pos++;
}

static bool is_alpha(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_name(int c) { return is_alpha(c) || is_digit(c) || c == '.'; }

static void skip_space(P *p) {
  for (;;) {
    int c = peekc(p, 0);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      advance(p);
    } else if (c == ';') {
      while (p->pos < p->len && p->src[p->pos] != '\n') advance(p);
    } else {
      return;
    }
  }
}

static const char *take_name(P *p) {
  size_t s = p->pos;
  while (is_name(peekc(p, 0))) advance(p);
  return arena_strndup(p->tmp, p->src + s, p->pos - s);
}

static int hexval(int c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* "..." with C escapes; the opening quote is current. */
static void lex_string(P *p) {
  Tok *t = &p->tok;
  size_t cap = 16, n = 0;
  char *buf = arena_alloc(p->tmp, cap, 1);
  advance(p);
  for (;;) {
    int c = peekc(p, 0);
    if (c < 0 || c == '\n') error_at(p, t->line, t->col, "unterminated string");
    advance(p);
    if (c == '"') break;
    if (c == '\\') {
      int e = peekc(p, 0);
      if (e < 0) error_at(p, t->line, t->col, "unterminated string");
      advance(p);
      switch (e) {
      case 'n': c = '\n'; break;
      case 't': c = '\t'; break;
      case 'r': c = '\r'; break;
      case '\\': case '"': case '\'': c = e; break;
      case 'x': {
        int h1 = hexval(peekc(p, 0)), h2;
        if (h1 < 0) error_at(p, p->line, p->col, "invalid escape in string");
        advance(p);
        c = h1;
        if ((h2 = hexval(peekc(p, 0))) >= 0) {
          advance(p);
          c = c * 16 + h2;
        }
        break;
      }
      default:
        if (e < '0' || e > '7')
          error_at(p, p->line, p->col - 1, "invalid escape in string");
        c = e - '0';
        for (int k = 0; k < 2 && peekc(p, 0) >= '0' && peekc(p, 0) <= '7'; k++) {
          c = c * 8 + (peekc(p, 0) - '0');
          advance(p);
        }
        if (c > 255) error_at(p, p->line, p->col, "invalid escape in string");
      }
      if (c == 0) error_at(p, p->line, p->col, "NUL character in string");
    }
    if (n + 1 >= cap) {
      char *nb = arena_alloc(p->tmp, cap * 2, 1);
      memcpy(nb, buf, n);
      buf = nb;
      cap *= 2;
    }
    buf[n++] = (char)c;
  }
  buf[n] = 0;
  t->kind = TK_STRING;
  t->text = buf;
}

static void lex_number(P *p) {
  Tok *t = &p->tok;
  size_t s = p->pos;
  bool flt = false;
  if (peekc(p, 0) == '-') advance(p);
  if (peekc(p, 0) == 'i' && peekc(p, 1) == 'n' && peekc(p, 2) == 'f' &&
      !is_name(peekc(p, 3))) {
    for (int k = 0; k < 3; k++) advance(p);
    t->kind = TK_FLOAT;
    t->f = -INFINITY;
    return;
  }
  if (!is_digit(peekc(p, 0))) ERR(p, "unexpected character '-'");
  while (is_digit(peekc(p, 0))) advance(p);
  if (peekc(p, 0) == '.' && is_digit(peekc(p, 1))) {
    flt = true;
    advance(p);
    while (is_digit(peekc(p, 0))) advance(p);
  } else if (peekc(p, 0) == '.') {
    flt = true;
    advance(p);
  }
  if (peekc(p, 0) == 'e' || peekc(p, 0) == 'E') {
    int k = 1;
    if (peekc(p, 1) == '+' || peekc(p, 1) == '-') k = 2;
    if (is_digit(peekc(p, (size_t)k))) {
      flt = true;
      while (k--) advance(p);
      while (is_digit(peekc(p, 0))) advance(p);
    }
  }
  if (is_name(peekc(p, 0))) ERR(p, "invalid number");
  char *txt = arena_strndup(p->tmp, p->src + s, p->pos - s);
  errno = 0;
  if (flt) {
    t->kind = TK_FLOAT;
    t->f = strtod(txt, NULL);
  } else {
    t->kind = TK_INT;
    t->i = strtoll(txt, NULL, 10);
    if (errno == ERANGE) ERR(p, "integer out of range");
  }
}

static void next(P *p) {
  skip_space(p);
  Tok *t = &p->tok;
  memset(t, 0, sizeof *t);
  t->line = p->line;
  t->col = p->col;
  int c = peekc(p, 0);
  if (c < 0) {
    t->kind = TK_EOF;
  } else if (is_alpha(c)) {
    t->kind = TK_IDENT;
    t->text = take_name(p);
  } else if (c == '@' || c == '%') {
    advance(p);
    if (!is_name(peekc(p, 0)))
      ERR(p, "expected a name after '%c'", c);
    t->kind = c == '@' ? TK_GLOBAL : TK_VALUE;
    t->text = take_name(p);
    t->i = -1;
    if (c == '%' && peekc(p, 0) == '#') {
      advance(p);
      if (!is_digit(peekc(p, 0))) ERR(p, "expected a result index after '#'");
      int64_t k = 0;
      while (is_digit(peekc(p, 0))) {
        if (k < 100000000) k = k * 10 + (peekc(p, 0) - '0');
        advance(p);
      }
      t->i = k;
    }
  } else if (is_digit(c) || (c == '-' && peekc(p, 1) != '>')) {
    lex_number(p);
  } else if (c == '"') {
    lex_string(p);
  } else if (c == '-' ) {
    advance(p);
    advance(p);
    t->kind = TK_ARROW;
  } else if (c == '<' && peekc(p, 1) == '=') {
    advance(p);
    advance(p);
    t->kind = TK_LE;
  } else if (strchr("=:,()[]{}^", c)) {
    advance(p);
    t->kind = TK_PUNCT;
    t->c = (char)c;
  } else if (c >= 0x21 && c < 0x7f) {
    ERR(p, "unexpected character '%c'", c);
  } else {
    ERR(p, "unexpected character '\\x%02x'", c);
  }
}

/* ------------------------------------------------------------ token helpers */

static bool is_punct(P *p, char c) {
  return p->tok.kind == TK_PUNCT && p->tok.c == c;
}

static bool is_kw(P *p, const char *kw) {
  return p->tok.kind == TK_IDENT && strcmp(p->tok.text, kw) == 0;
}

static bool accept(P *p, char c) {
  if (!is_punct(p, c)) return false;
  next(p);
  return true;
}

static void expect(P *p, char c) {
  if (!accept(p, c)) ERR(p, "expected '%c'", c);
}

static const char *expect_ident(P *p, const char *what) {
  if (p->tok.kind != TK_IDENT) ERR(p, "expected %s", what);
  const char *s = p->tok.text;
  next(p);
  return s;
}

static const char *expect_global(P *p, const char *what) {
  if (p->tok.kind != TK_GLOBAL) ERR(p, "expected %s", what);
  const char *s = p->tok.text;
  next(p);
  return s;
}

static int64_t expect_int(P *p, const char *what) {
  if (p->tok.kind != TK_INT) ERR(p, "expected %s", what);
  int64_t v = p->tok.i;
  next(p);
  return v;
}

static const char *intern(P *p, const char *s) {
  return strtab_cstr(p->m->strs, s);
}

/* ------------------------------------------------------------------ types */

/* type := DTYPE '[' [dim {',' dim}] ']'    dim := INT | SYMBOL */
static IrType parse_type(P *p) {
  DType dt;
  if (p->tok.kind != TK_IDENT) ERR(p, "expected a type");
  if (!ir_dtype_parse(p->tok.text, &dt)) ERR(p, "unknown dtype '%s'", p->tok.text);
  next(p);
  IrType t = ir_type_scalar(dt);
  expect(p, '[');
  if (accept(p, ']')) return t;
  do {
    if (t.rank == IR_MAX_RANK) ERR(p, "too many dimensions (at most %d)", IR_MAX_RANK);
    if (p->tok.kind == TK_INT) {
      if (p->tok.i < 0 || p->tok.i > MAX_DIM)
        ERR(p, "dimension size %lld out of range", (long long)p->tok.i);
      t.dim[t.rank++] = p->tok.i;
    } else if (p->tok.kind == TK_IDENT) {
      int s = ir_sym_find(p->m, p->tok.text);
      if (s < 0) ERR(p, "unknown dimension symbol '%s'", p->tok.text);
      t.dim[t.rank] = p->m->syms[s].value;
      t.sym[t.rank++] = (int16_t)s;
    } else {
      ERR(p, "expected a dimension");
    }
    next(p);
  } while (accept(p, ','));
  expect(p, ']');
  return t;
}

/* ------------------------------------------------------------- attributes */

static void parse_attr_dict(P *p, IrAttrs *out);

/* Growable scalar lists for list attributes. */
typedef struct List {
  int n, cap;
  int64_t *ints;
  double *floats;
  const char **strs;
} List;

static void list_push(P *p, List *l, int64_t i, double f, const char *s) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 8;
    int64_t *ni = ARENA_ARRAY(p->tmp, int64_t, cap);
    double *nf = ARENA_ARRAY(p->tmp, double, cap);
    const char **ns = ARENA_ARRAY(p->tmp, const char *, cap);
    if (l->n) {
      memcpy(ni, l->ints, sizeof(int64_t) * (size_t)l->n);
      memcpy(nf, l->floats, sizeof(double) * (size_t)l->n);
      memcpy(ns, l->strs, sizeof(char *) * (size_t)l->n);
    }
    l->ints = ni, l->floats = nf, l->strs = ns, l->cap = cap;
  }
  l->ints[l->n] = i;
  l->floats[l->n] = f;
  l->strs[l->n] = s;
  l->n++;
}

/* list := '[' [scalar {',' scalar}] ']'  (ints, floats or strings; ints
** in a list with floats are promoted; [] is an empty int list) */
static void parse_list(P *p, IrAttr *a) {
  List l = {0, 0, NULL, NULL, NULL};
  TokKind kind = TK_INT;
  expect(p, '[');
  if (!is_punct(p, ']')) {
    do {
      Tok t = p->tok;
      if (t.kind == TK_IDENT && (!strcmp(t.text, "inf") || !strcmp(t.text, "nan"))) {
        t.kind = TK_FLOAT;
        t.f = t.text[0] == 'i' ? INFINITY : NAN;
      }
      if (t.kind != TK_INT && t.kind != TK_FLOAT && t.kind != TK_STRING)
        ERR(p, "expected a number or a string in a list");
      if (l.n && (t.kind == TK_STRING) != (kind == TK_STRING))
        ERR(p, "mixed strings and numbers in a list");
      if (t.kind != TK_INT) kind = t.kind;
      list_push(p, &l, t.i, t.kind == TK_INT ? (double)t.i : t.f,
                t.kind == TK_STRING ? intern(p, t.text) : NULL);
      next(p);
    } while (accept(p, ','));
  }
  expect(p, ']');
  a->n = l.n;
  if (kind == TK_STRING) {
    a->kind = ATTR_STRS;
    a->strs = l.strs;
  } else if (kind == TK_FLOAT) {
    a->kind = ATTR_FLOATS;
    a->floats = l.floats;
  } else {
    a->kind = ATTR_INTS;
    a->ints = l.ints;
  }
}

/* value := INT | FLOAT | STRING | true | false | inf | nan | list | DTYPE
**        | IDENT [attrdict] | @FUNC */
static void parse_value(P *p, IrAttr *a) {
  Tok t = p->tok;
  DType dt;
  switch (t.kind) {
  case TK_INT: a->kind = ATTR_INT; a->i = t.i; next(p); return;
  case TK_FLOAT: a->kind = ATTR_FLOAT; a->f = t.f; next(p); return;
  case TK_STRING: a->kind = ATTR_STR; a->s = t.text; next(p); return;
  case TK_GLOBAL: a->kind = ATTR_FUNC; a->s = t.text; next(p); return;
  case TK_PUNCT:
    if (t.c == '[') {
      parse_list(p, a);
      return;
    }
    break;
  case TK_IDENT:
    next(p);
    if (!strcmp(t.text, "true") || !strcmp(t.text, "false")) {
      a->kind = ATTR_BOOL;
      a->i = t.text[0] == 't';
    } else if (!strcmp(t.text, "inf") || !strcmp(t.text, "nan")) {
      a->kind = ATTR_FLOAT;
      a->f = t.text[0] == 'i' ? INFINITY : NAN;
    } else if (is_punct(p, '{')) {
      IrAttrs args = {NULL, 0};
      a->kind = ATTR_CALL;
      a->s = t.text;
      parse_attr_dict(p, &args);
      a->args = args.v;
      a->n = args.n;
    } else if (ir_dtype_parse(t.text, &dt)) {
      a->kind = ATTR_DTYPE;
      a->i = dt;
    } else {
      a->kind = ATTR_SYM;
      a->s = t.text;
    }
    return;
  default:
    break;
  }
  ERR(p, "expected an attribute value");
}

/* One `NAME = VALUE` into *out (sorted); duplicates are errors. */
static void parse_setting(P *p, IrAttrs *out, const char *what) {
  int line = p->tok.line, col = p->tok.col;
  const char *name = expect_ident(p, "an attribute name");
  if (ir_attr_get(out, name)) error_at(p, line, col, "duplicate %s '%s'", what, name);
  expect(p, '=');
  IrAttr a;
  memset(&a, 0, sizeof a);
  a.name = name;
  parse_value(p, &a);
  ir_attr_set(p->m, out, &a);
}

/* attrdict := '{' [NAME '=' value {',' NAME '=' value}] '}' */
static void parse_attr_dict(P *p, IrAttrs *out) {
  if (++p->depth > MAX_DEPTH) ERR(p, "nesting too deep");
  expect(p, '{');
  if (!is_punct(p, '}')) {
    do parse_setting(p, out, "attribute");
    while (accept(p, ','));
  }
  expect(p, '}');
  p->depth--;
}

/* loc := 'loc' '(' STRING ':' INT ':' INT ')' */
static SrcLoc parse_loc(P *p) {
  SrcLoc l = {NULL, 0, 0, 0, 0};
  next(p);
  expect(p, '(');
  if (p->tok.kind != TK_STRING) ERR(p, "expected a file name");
  l.file = intern(p, p->tok.text);
  next(p);
  expect(p, ':');
  int64_t line = expect_int(p, "a line number");
  expect(p, ':');
  int64_t col = expect_int(p, "a column number");
  if (line < 0 || line > UINT32_MAX || col < 0 || col > UINT32_MAX)
    ERR(p, "location out of range");
  l.line = (uint32_t)line;
  l.col = (uint32_t)col;
  expect(p, ')');
  return l;
}

/* ------------------------------------------------------------- SSA scope */

static void map_set(P *p, const char *key, int idx);

static void map_grow(P *p) {
  size_t oldcap = p->mcap;
  const char **ok = p->mkeys;
  int *ov = p->mval;
  p->mcap = oldcap ? oldcap * 2 : 64;
  p->mkeys = ARENA_ARRAY(p->tmp, const char *, p->mcap);
  p->mval = ARENA_ARRAY(p->tmp, int, p->mcap);
  p->mused = 0;
  for (size_t i = 0; i < oldcap; i++)
    if (ok[i]) map_set(p, ok[i], ov[i]);
}

static size_t key_slot(const P *p, const char *key) {
  uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull;
  size_t i = (size_t)(h >> 17) & (p->mcap - 1);
  while (p->mkeys[i] && p->mkeys[i] != key) i = (i + 1) & (p->mcap - 1);
  return i;
}

static void map_set(P *p, const char *key, int idx) {
  if (2 * (p->mused + 1) > p->mcap) map_grow(p);
  size_t i = key_slot(p, key);
  if (!p->mkeys[i]) p->mused++;
  p->mkeys[i] = key;
  p->mval[i] = idx;
}

static int map_get(const P *p, const char *key) {
  if (!p->mcap) return -1;
  size_t i = key_slot(p, key);
  return p->mkeys[i] ? p->mval[i] : -1;
}

static void define(P *p, const Tok *at, const char *name, IrValue *v, IrNode *n) {
  const char *key = strtab_cstr(p->names, name);
  int prev = map_get(p, key);
  if (prev >= 0) error_at(p, at->line, at->col, "redefinition of value %%%s", name);
  if (p->nent == p->capent) {
    int cap = p->capent ? 2 * p->capent : 64;
    Entry *e = ARENA_ARRAY(p->tmp, Entry, cap);
    if (p->nent) memcpy(e, p->ent, sizeof(Entry) * (size_t)p->nent);
    p->ent = e;
    p->capent = cap;
  }
  p->ent[p->nent] = (Entry){key, v, n, prev};
  map_set(p, key, p->nent++);
}

/* Leave a scope: forget the names defined since mark. */
static void pop_scope(P *p, int mark) {
  while (p->nent > mark) {
    Entry *e = &p->ent[--p->nent];
    map_set(p, e->key, e->prev);
  }
}

/* operand := %NAME | %N#K | @GLOBAL */
static IrValue *parse_operand(P *p) {
  Tok t = p->tok;
  if (t.kind == TK_GLOBAL) {
    IrGlobal *g = ir_global_find(p->m, t.text);
    if (!g) ERR(p, "use of undefined global @%s", t.text);
    next(p);
    return g->value;
  }
  if (t.kind != TK_VALUE) ERR(p, "expected an operand");
  int idx = map_get(p, strtab_cstr(p->names, t.text));
  if (idx < 0) ERR(p, "use of undefined value %%%s", t.text);
  Entry *e = &p->ent[idx];
  IrValue *v = e->val;
  if (t.i >= 0) {
    if (!e->node) ERR(p, "%%%s is not the result of a node", t.text);
    if (t.i >= e->node->nres)
      ERR(p, "result #%lld of %%%s does not exist (%d results)", (long long)t.i,
          t.text, e->node->nres);
    v = e->node->res[t.i];
  } else if (!v) {
    ERR(p, "%%%s has %d results; use %%%s#0 ...", t.text, e->node->nres, t.text);
  }
  next(p);
  return v;
}

/* ------------------------------------------------------------------ nodes */

static void parse_block_body(P *p, IrBlock *b, const char *term);
static void parse_params(P *p, IrBlock *b);

/* Check a non-region node against ir_infer. */
static void check_node(P *p, IrNode *n, const Tok *optok, const Tok *argtok) {
  IrType *at = ARENA_ARRAY(p->tmp, IrType, n->nargs ? n->nargs : 1);
  IrType res[8];
  const char *err = NULL;
  int bad = -1;
  const char *name = ir_op_info[n->op].name;
  for (int i = 0; i < n->nargs; i++) at[i] = n->args[i]->type;
  if (n->nres >= 1) res[0] = n->res[0]->type;
  if ((ir_op_info[n->op].flags & OPF_TYPED) && n->nres != 1)
    error_at(p, optok->line, optok->col, "type mismatch: %s gives 1 result, printed %d",
             name, n->nres);
  int r = ir_infer(p->m, n->op, n->nargs, at, &n->attrs, res, 8, &err, &bad,
                   p->tmp);
  if (!r) {
    const Tok *t = bad >= 0 && bad < n->nargs ? &argtok[bad] : optok;
    error_at(p, t->line, t->col, "%s: %s", name, err);
  }
  if (r != n->nres)
    error_at(p, optok->line, optok->col,
             "type mismatch: %s gives %d result%s, printed %d", name, r,
             r == 1 ? "" : "s", n->nres);
  for (int i = 0; i < r; i++)
    if (!ir_type_eq(&res[i], &n->res[i]->type))
      error_at(p, optok->line, optok->col, "type mismatch: %s gives %s, printed %s",
               name, ir_type_str(p->tmp, p->m, &res[i]),
               ir_type_str(p->tmp, p->m, &n->res[i]->type));
}

/* region := '{' '^' '(' [arg {',' arg}] ')' ':' stmts 'yield' ... '}' */
static void parse_region(P *p, IrNode *n) {
  if (++p->depth > MAX_DEPTH) ERR(p, "nesting too deep");
  expect(p, '{');
  IrBlock *b = ir_block_new(p->m, p->func);
  b->owner = n;
  n->body = b;
  int mark = p->nent;
  expect(p, '^');
  parse_params(p, b);
  expect(p, ':');
  parse_block_body(p, b, "yield");
  expect(p, '}');
  pop_scope(p, mark);
  p->depth--;
}

/* operands := [operand {',' operand}]; their tokens go to *toks. */
static Vec parse_operands(P *p, Tok **toks) {
  Vec args = {NULL, 0, 0}, tv = {NULL, 0, 0};
  if (p->tok.kind == TK_VALUE || p->tok.kind == TK_GLOBAL) {
    do {
      vec_push(p->tmp, &tv, arena_memdup(p->tmp, &p->tok, sizeof(Tok)));
      vec_push(p->tmp, &args, parse_operand(p));
    } while (accept(p, ','));
  }
  *toks = ARENA_ARRAY(p->tmp, Tok, args.len + 1);
  for (int i = 0; i < args.len; i++) (*toks)[i] = *(Tok *)tv.data[i];
  return args;
}

/* Operand count within the op table's bounds (the wording of ir_infer). */
static void check_arity(P *p, const Tok *optok, IrOp op, int n) {
  const IrOpInfo *in = &ir_op_info[op];
  if (n >= in->min_args && (in->max_args < 0 || n <= in->max_args)) return;
  const char *s = in->min_args == 1 ? "" : "s";
  if (in->max_args < 0)
    error_at(p, optok->line, optok->col, "%s: expected at least %d operand%s, got %d",
             in->name, in->min_args, s, n);
  if (in->min_args == in->max_args)
    error_at(p, optok->line, optok->col, "%s: expected %d operand%s, got %d",
             in->name, in->min_args, s, n);
  error_at(p, optok->line, optok->col, "%s: expected %d to %d operands, got %d",
           in->name, in->min_args, in->max_args, n);
}

/* %N[:K] '=' -- returns K */
static int parse_result_head(P *p, Tok *rt) {
  *rt = p->tok;
  next(p);
  int64_t nres = 1;
  if (rt->i >= 0) error_at(p, rt->line, rt->col, "expected a result name");
  if (accept(p, ':')) {
    nres = expect_int(p, "a result count");
    if (nres < 1 || nres > 4096) ERR(p, "invalid result count %lld", (long long)nres);
  }
  expect(p, '=');
  return (int)nres;
}

/* node := %N[:K] '=' OP [operand {',' operand}] [attrdict] ':' type
**         {',' type} [loc] [region] */
static void parse_node(P *p, IrBlock *b) {
  Tok rt, optok, *argtoks;
  int nres = parse_result_head(p, &rt);
  IrOp op;
  optok = p->tok;
  const char *opname = expect_ident(p, "an op name");
  if (!ir_op_lookup(opname, &op))
    error_at(p, optok.line, optok.col, "unknown op '%s'", opname);
  Vec args = parse_operands(p, &argtoks);
  IrAttrs attrs = {NULL, 0};
  if (is_punct(p, '{')) parse_attr_dict(p, &attrs);
  expect(p, ':');
  IrType *types = ARENA_ARRAY(p->tmp, IrType, nres);
  for (int i = 0; i < nres; i++) {
    if (i) expect(p, ',');
    types[i] = parse_type(p);
  }
  if (is_punct(p, ',')) ERR(p, "more result types than the %d results", nres);
  SrcLoc loc = {NULL, 0, 0, 0, 0};
  if (is_kw(p, "loc")) loc = parse_loc(p);
  check_arity(p, &optok, op, args.len);
  IrNode *n = ir_node_new(p->m, b, op, args.len, (IrValue **)args.data, nres,
                          types, loc);
  n->attrs = attrs;
  if (ir_op_info[op].flags & OPF_REGION) {
    if (!is_punct(p, '{')) ERR(p, "expected '{' (%s has a body)", opname);
    parse_region(p, n);
    const char *err = ir_scan_check(p->m, n, p->tmp);
    if (err) error_at(p, optok.line, optok.col, "%s: %s", opname, err);
  } else {
    if (is_punct(p, '{')) ERR(p, "%s has no body", opname);
    check_node(p, n, &optok, argtoks);
  }
  define(p, &rt, rt.text, nres == 1 ? n->res[0] : NULL, n);
}

/* stmts := {node} TERM [operand {',' operand}] */
static void parse_block_body(P *p, IrBlock *b, const char *term) {
  while (p->tok.kind == TK_VALUE) parse_node(p, b);
  if (!is_kw(p, term)) ERR(p, "expected a node or '%s'", term);
  next(p);
  Vec rets = {NULL, 0, 0};
  if (p->tok.kind == TK_VALUE || p->tok.kind == TK_GLOBAL) {
    do vec_push(p->tmp, &rets, parse_operand(p));
    while (accept(p, ','));
  }
  ir_block_set_rets(p->m, b, rets.len, (IrValue **)rets.data);
}

/* -------------------------------------------------------------- top level */

/* '(' [%a ':' type {',' %b ':' type}] ')' -- the arguments of block b */
static void parse_params(P *p, IrBlock *b) {
  expect(p, '(');
  if (!is_punct(p, ')')) {
    do {
      Tok t = p->tok;
      if (t.kind != TK_VALUE || t.i >= 0) ERR(p, "expected an argument name");
      next(p);
      expect(p, ':');
      IrValue *v = ir_block_add_arg(p->m, b, parse_type(p), t.text);
      define(p, &t, t.text, v, NULL);
    } while (accept(p, ','));
  }
  expect(p, ')');
}

/* '(' [NAME ':' type {',' NAME ':' type}] ')' -- NAME is an identifier or
** @state.name; names and types are pushed to *names and *types. */
static void parse_results(P *p, Vec *names, Vec *types) {
  expect(p, '(');
  if (!is_punct(p, ')')) {
    do {
      const char *rn;
      if (p->tok.kind == TK_IDENT)
        rn = p->tok.text;
      else if (p->tok.kind == TK_GLOBAL)
        rn = arena_printf(p->tmp, "@%s", p->tok.text);
      else
        ERR(p, "expected a result name");
      next(p);
      expect(p, ':');
      IrType *t = ARENA_NEW(p->tmp, IrType);
      *t = parse_type(p);
      vec_push(p->tmp, names, (void *)rn);
      vec_push(p->tmp, types, t);
    } while (accept(p, ','));
  }
  expect(p, ')');
}

/* func := 'func' @NAME params '->' results '{' stmts 'return' ... '}' */
static void parse_func(P *p) {
  next(p);
  Tok nt = p->tok;
  const char *name = expect_global(p, "a function name");
  if (ir_func_find(p->m, name))
    error_at(p, nt.line, nt.col, "redefinition of function @%s", name);
  IrFunc *f = ir_func_new(p->m, name);
  p->func = f;
  p->nent = 0; /* a fresh scope per function */
  p->mcap = p->mused = 0;
  p->mkeys = NULL;
  p->mval = NULL;
  parse_params(p, f->body);
  if (p->tok.kind != TK_ARROW) ERR(p, "expected '->'");
  next(p);
  Vec names = {NULL, 0, 0}, types = {NULL, 0, 0};
  parse_results(p, &names, &types);
  expect(p, '{');
  parse_block_body(p, f->body, "return");
  Tok end = p->tok;
  expect(p, '}');
  if (f->body->nrets != names.len)
    error_at(p, end.line, end.col, "return gives %d values, the signature has %d",
             f->body->nrets, names.len);
  for (int i = 0; i < names.len; i++) {
    const IrType *want = types.data[i], *got = &f->body->rets[i]->type;
    if (!ir_type_eq(want, got))
      error_at(p, end.line, end.col,
               "return type mismatch: result %d is %s, the signature says %s", i,
               ir_type_str(p->tmp, p->m, got), ir_type_str(p->tmp, p->m, want));
  }
  f->ret_names = ARENA_ARRAY(p->m->arena, const char *, names.len + 1);
  for (int i = 0; i < names.len; i++) f->ret_names[i] = intern(p, names.data[i]);
  p->func = NULL;
}

/* dim := 'dim' NAME ('=' | '<=') INT */
static void parse_dim(P *p) {
  next(p);
  Tok nt = p->tok;
  const char *name = expect_ident(p, "a dimension name");
  if (ir_sym_find(p->m, name) >= 0)
    error_at(p, nt.line, nt.col, "redefinition of dimension '%s'", name);
  if (p->m->nsyms >= INT16_MAX) error_at(p, nt.line, nt.col, "too many dimensions");
  bool bounded = p->tok.kind == TK_LE;
  if (bounded)
    next(p);
  else
    expect(p, '=');
  Tok vt = p->tok;
  int64_t v = expect_int(p, "a dimension size");
  if (v < 0 || v > MAX_DIM)
    error_at(p, vt.line, vt.col, "dimension size %lld out of range", (long long)v);
  ir_sym_add(p->m, name, v, bounded);
}

/* global := ('param' | 'state') @NAME ':' type ['=' INIT [attrdict]] [loc] */
static void parse_global(P *p) {
  IrGlobalKind k = is_kw(p, "param") ? IRG_PARAM : IRG_STATE;
  next(p);
  Tok nt = p->tok;
  const char *name = expect_global(p, "a global name");
  if (ir_global_find(p->m, name))
    error_at(p, nt.line, nt.col, "redefinition of global @%s", name);
  expect(p, ':');
  IrType t = parse_type(p);
  const char *init = NULL;
  IrAttrs ia = {NULL, 0};
  if (accept(p, '=')) {
    init = expect_ident(p, "an initialiser name");
    if (is_punct(p, '{')) parse_attr_dict(p, &ia);
  }
  SrcLoc loc = {NULL, 0, 0, 0, 0};
  if (is_kw(p, "loc")) loc = parse_loc(p);
  IrGlobal *g = ir_global_add(p->m, k, name, t, init, loc);
  g->init_attrs = ia;
}

/* train := 'train' [@MODEL] '{' {NAME '=' value} '}' */
static void parse_train(P *p) {
  Tok kt = p->tok;
  next(p);
  if (p->m->train) error_at(p, kt.line, kt.col, "more than one train block");
  IrTrain *t = ARENA_NEW(p->m->arena, IrTrain);
  if (p->tok.kind == TK_GLOBAL) {
    t->model = intern(p, p->tok.text);
    next(p);
  }
  expect(p, '{');
  while (!is_punct(p, '}')) {
    if (p->tok.kind == TK_EOF) ERR(p, "expected '}'");
    parse_setting(p, &t->settings, "setting");
  }
  next(p);
  p->m->train = t;
}

static void parse_module(P *p) {
  next(p);
  if (is_kw(p, "module")) {
    next(p);
    p->m->name = intern(p, expect_global(p, "a module name"));
  }
  while (p->tok.kind != TK_EOF) {
    if (is_kw(p, "dim"))
      parse_dim(p);
    else if (is_kw(p, "param") || is_kw(p, "state"))
      parse_global(p);
    else if (is_kw(p, "func"))
      parse_func(p);
    else if (is_kw(p, "train"))
      parse_train(p);
    else
      ERR(p, "expected 'dim', 'param', 'state', 'func' or 'train'");
  }
}

IrModule *ir_parse(const char *filename, const char *text, size_t len,
                   Arena *errarena, const char **err) {
  /* The parser state lives in its own arena, not in automatic storage, so
  ** that it is intact after longjmp. */
  Arena *tmp = arena_new();
  P *p = ARENA_NEW(tmp, P);
  p->file = filename ? filename : "<input>";
  p->src = text ? text : "";
  p->len = text ? len : 0;
  p->line = p->col = 1;
  p->tmp = tmp;
  p->errarena = errarena;
  p->names = strtab_new(tmp);
  p->m = ir_module_new(NULL);
  if (setjmp(p->fail)) {
    if (err) *err = p->err;
    ir_module_free(p->m);
    arena_free(tmp);
    return NULL;
  }
  parse_module(p);
  IrModule *m = p->m;
  arena_free(tmp);
  if (err) *err = NULL;
  return m;
}

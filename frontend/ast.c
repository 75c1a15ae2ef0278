/*
** This file contains the AST builders, the program's life cycle and the
** S-expression dump (`nnc build --emit=ast`).  The parser itself is
** parser.y (ast_parse is defined there, next to yyparse).
**
** Dump format: one S-expression per declaration, separated by blank lines.
** A node prints as `(KIND ATTRS... CHILDREN...)`: ATTRS are its name, its
** operator and flags such as `:tensor`, `:reverse` or `:as NAME`; leaf
** children (numbers, strings, booleans, identifiers, `...`) stay on the
** parent's line, every other child goes on its own line, indented two
** spaces more than its parent.  Integers print as written (`42`), other
** numbers with the shortest %.17g form that round-trips, always with a '.'
** or an exponent (`1000.0`, `0.001`).
*/
#include "ast.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

AstNode *ast_new(AstProgram *p, AstKind k, SrcLoc loc) {
  AstNode *n = ARENA_NEW(p->arena, AstNode);
  n->kind = k;
  n->loc = loc;
  return n;
}

/* Capacity is implicit: 4, then powers of two, so a list is full exactly
** when n is 4 or a larger power of two. */
void ast_list_push(AstProgram *p, AstList *l, AstNode *n) {
  if (l->n == 0 || (l->n >= 4 && (l->n & (l->n - 1)) == 0)) {
    int cap = l->n ? 2 * l->n : 4;
    AstNode **v = ARENA_ARRAY(p->arena, AstNode *, cap);
    if (l->n) memcpy(v, l->v, sizeof *v * (size_t)l->n);
    l->v = v;
  }
  l->v[l->n++] = n;
}

void ast_program_free(AstProgram *p) {
  if (p) arena_free(p->arena);
}

const char *ast_op_str(AstOp op) {
  static const char *const names[] = {
      [AOP_ADD] = "+",  [AOP_SUB] = "-",  [AOP_MUL] = "*",   [AOP_DIV] = "/",
      [AOP_MOD] = "%",  [AOP_MATMUL] = "@", [AOP_POW] = "**", [AOP_EQ] = "==",
      [AOP_NE] = "!=",  [AOP_LT] = "<",   [AOP_GT] = ">",    [AOP_LE] = "<=",
      [AOP_GE] = ">=",  [AOP_AND] = "and", [AOP_OR] = "or",  [AOP_NEG] = "-",
      [AOP_PLUS] = "+", [AOP_NOT] = "not",
  };
  if ((unsigned)op >= sizeof names / sizeof names[0] || !names[op]) return "?";
  return names[op];
}

/* ORDER AstKind */
static const char *const kind_names[AST_KIND_COUNT] = {
    [AST_NUM] = "num",           [AST_STR] = "str",
    [AST_BOOL] = "bool",         [AST_IDENT] = "ident",
    [AST_UNARY] = "unary",       [AST_BINARY] = "binary",
    [AST_CALL] = "call",         [AST_NAMED_ARG] = "named_arg",
    [AST_INDEX] = "index",       [AST_FIELD] = "field",
    [AST_TUPLE] = "tuple",       [AST_LIST] = "list",
    [AST_RANGE] = "range",       [AST_ELLIPSIS] = "ellipsis",
    [AST_SCAN] = "scan",         [AST_SEQ] = "seq",
    [AST_TYPE] = "type",         [AST_TUPLE_TYPE] = "tuple_type",
    [AST_BLOCK] = "block",       [AST_LET] = "let",
    [AST_ASSIGN] = "assign",     [AST_UPDATE] = "update",
    [AST_EXPR_STMT] = "expr_stmt", [AST_RETURN] = "return",
    [AST_EMIT] = "emit",         [AST_FOR] = "for",
    [AST_IF] = "if",             [AST_PARAM] = "param",
    [AST_STATE] = "state",       [AST_INPUT] = "input",
    [AST_OUTPUT] = "output",     [AST_LOSS] = "loss",
    [AST_METRIC] = "metric",     [AST_IMPORT] = "import",
    [AST_CONST] = "const",       [AST_FN] = "fn",
    [AST_LAYER] = "layer",       [AST_ARG] = "arg",
    [AST_MODEL] = "model",       [AST_TRAIN] = "train",
    [AST_SETTING] = "setting",   [AST_DATA] = "data",
};

const char *ast_kind_name(AstKind k) {
  if ((unsigned)k >= AST_KIND_COUNT || !kind_names[k]) return "?";
  return kind_names[k];
}

/* ---------------------------------------------------------------- dump */

/* The shortest %.*g form of x that reads back as x, marked as a float. */
static void dump_float(FILE *out, double x) {
  char buf[40];
  if (x == floor(x) && fabs(x) < 1e16) {
    fprintf(out, "%.1f", x);
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, x);
    if (strtod(buf, NULL) == x) break;
  }
  fputs(buf, out);
  if (isfinite(x) && !strpbrk(buf, ".e")) fputs(".0", out);
}

static void dump_str(FILE *out, const char *s) {
  fputc('"', out);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    switch (c) {
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    case '\r': fputs("\\r", out); break;
    case '\\': fputs("\\\\", out); break;
    case '"': fputs("\\\"", out); break;
    default:
      if (c < ' ' || c == 0x7f) fprintf(out, "\\x%02x", c);
      else fputc(c, out);
    }
  }
  fputc('"', out);
}

static bool is_leaf(const AstNode *n) {
  switch (n->kind) {
  case AST_NUM: case AST_STR: case AST_BOOL: case AST_IDENT:
  case AST_ELLIPSIS:
    return true;
  default:
    return false;
  }
}

/* The children of each kind in dump order: a, b, type (t), list (l),
** list2 (m), body (y).  ORDER AstKind */
static const char *child_order(AstKind k) {
  switch (k) {
  case AST_FN: case AST_LAYER: return "lty";
  case AST_IF: return "ayb";
  case AST_FOR: return "ay";
  case AST_LET: case AST_DATA: return "la";
  case AST_SCAN: return "lmy";
  case AST_CONST: case AST_PARAM: case AST_STATE: case AST_ARG: return "ta";
  default: return "abltmy";
  }
}

static void dump_node(FILE *out, const AstNode *n, int indent);

/* Leaf children stay on the parent's line until the first compound child;
** from there on every child gets its own line (*broken). */
static void dump_child(FILE *out, const AstNode *c, int indent, bool *broken) {
  if (!is_leaf(c)) *broken = true;
  if (*broken) fprintf(out, "\n%*s", indent + 2, "");
  else fputc(' ', out);
  dump_node(out, c, indent + 2);
}

static void dump_list(FILE *out, AstList l, int indent, bool *broken) {
  for (int i = 0; i < l.n; i++) dump_child(out, l.v[i], indent, broken);
}

/* Kind-specific attributes after the kind name. */
static void dump_attrs(FILE *out, const AstNode *n) {
  switch (n->kind) {
  case AST_NUM:
    if (n->is_int) fprintf(out, " %lld", (long long)n->ival);
    else {
      fputc(' ', out);
      dump_float(out, n->num);
    }
    return;
  case AST_BOOL:
    fputs(n->ival ? " true" : " false", out);
    return;
  case AST_UNARY: case AST_BINARY:
    fprintf(out, " %s", ast_op_str(n->op));
    return;
  default:
    break;
  }
  if (n->name) fprintf(out, " %s", n->name);
  if (n->str) {
    fputc(' ', out);
    dump_str(out, n->str);
  }
  if (n->kind == AST_TYPE && n->is_tensor) fputs(" :tensor", out);
  if (n->kind == AST_SCAN && n->ival) fputs(" :reverse", out);
  if (n->scope) fprintf(out, " :as %s", n->scope);
}

static void dump_node(FILE *out, const AstNode *n, int indent) {
  fprintf(out, "(%s", ast_kind_name(n->kind));
  dump_attrs(out, n);
  bool broken = false;
  for (const char *o = child_order(n->kind); *o; o++) {
    switch (*o) {
    case 'a': if (n->a) dump_child(out, n->a, indent, &broken); break;
    case 'b': if (n->b) dump_child(out, n->b, indent, &broken); break;
    case 't': if (n->type) dump_child(out, n->type, indent, &broken); break;
    case 'y': if (n->body) dump_child(out, n->body, indent, &broken); break;
    case 'l': dump_list(out, n->list, indent, &broken); break;
    case 'm': dump_list(out, n->list2, indent, &broken); break;
    default: nnc_unreachable();
    }
  }
  fputc(')', out);
}

void ast_dump(FILE *out, const AstProgram *p) {
  for (int i = 0; i < p->decls.n; i++) {
    if (i) fputc('\n', out);
    dump_node(out, p->decls.v[i], 0);
    fputc('\n', out);
  }
}

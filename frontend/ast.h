/*
** This file contains the abstract syntax tree of .nn programs.  The parser
** builds it without any checks (PostgreSQL style: no semantics in grammar
** actions); sema.c resolves names and lower.c instantiates it into IR.
**
** All nodes live in one arena (AstProgram.arena), freed after lowering.
** Every node has a SrcLoc covering its whole text, so diagnostics can put
** tildes under the exact sub-expression.
*/
#ifndef NNC_AST_H
#define NNC_AST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../ir/arena.h"
#include "../ir/diag.h"
#include "../ir/srcloc.h"

typedef struct AstNode AstNode;

/* Operators of AST_UNARY and AST_BINARY (independent of bison's token
** numbers).  Precedence, loosest first: or; and; not; == != < > <= >=;
** + -; * / % @; unary - +; ** (right-assoc, binds tighter than unary minus
** on its left: -x**2 is -(x**2)); postfix call, index, field. */
typedef enum AstOp {
  AOP_ADD, AOP_SUB, AOP_MUL, AOP_DIV, AOP_MOD, AOP_MATMUL, AOP_POW,
  AOP_EQ, AOP_NE, AOP_LT, AOP_GT, AOP_LE, AOP_GE, AOP_AND, AOP_OR,
  AOP_NEG, AOP_PLUS, AOP_NOT
} AstOp;
const char *ast_op_str(AstOp op); /* "+", "**", "and", ... */

/* A list of nodes in source order. */
typedef struct AstList {
  AstNode **v;
  int n;
} AstList;

/* Node kinds.  The comment of each kind says which fields it uses; fields
** not named are zero/NULL. */
typedef enum AstKind {
  /* ---- expressions ---- */
  AST_NUM,      /* num; is_int (written without '.' and 'e'; a size suffix
                   keeps it integral: `256 MiB`) and ival */
  AST_STR,      /* str (escapes processed) */
  AST_BOOL,     /* ival: 0 or 1 (true/false) */
  AST_IDENT,    /* name */
  AST_UNARY,    /* op: AOP_NEG, AOP_PLUS or AOP_NOT; a: operand */
  AST_BINARY,   /* op: AOP_ADD .. AOP_OR; a, b */
  AST_CALL,     /* a: callee expression (usually AST_IDENT); list: arguments,
                   each an expression or an AST_NAMED_ARG; scope: `as NAME`
                   (NULL when absent) */
  AST_NAMED_ARG,/* name: argument name; a: value */
  AST_INDEX,    /* a: indexed expression; list: index expressions
                   (`w[idx]`, `zeros[B, hidden]`) */
  AST_FIELD,    /* a: expression; name: field (`x.shape`) */
  AST_TUPLE,    /* list: elements of `(a, b)` (two or more) */
  AST_LIST,     /* list: elements of `[a, b]` (zero or more) */
  AST_RANGE,    /* a: start; b: end (exclusive): `0..L` */
  AST_ELLIPSIS, /* `...` inside a tensor type's dimensions */
  AST_SCAN,     /* list: carries (AST_NAMED_ARG: name = init); list2:
                   sequences (AST_SEQ); body: AST_BLOCK; ival: 1 if
                   `scan reverse (...)` */
  AST_SEQ,      /* name: element name; a: sequence expression; b: axis
                   expression (`xt in x along 1`; b NULL means axis 0) */
  /* ---- types ---- */
  AST_TYPE,     /* name: "f32", "int", "bool", "float", "str" ...; list:
                   dimension expressions (with AST_ELLIPSIS) when is_tensor;
                   is_tensor: written with brackets (`f32[]` is a scalar
                   tensor, `int` is a compile-time integer) */
  AST_TUPLE_TYPE, /* list: AST_TYPE elements of `(T1, T2)` */
  /* ---- statements (in AST_BLOCK.list) ---- */
  AST_BLOCK,    /* list: statements */
  AST_LET,      /* list: AST_IDENT targets (one or more); a: value */
  AST_ASSIGN,   /* name: target; a: value (`h = e`) */
  AST_UPDATE,   /* name: state name; a: value (`s <- e`) */
  AST_EXPR_STMT,/* a: expression */
  AST_RETURN,   /* a: value (NULL for bare return); AST_TUPLE for several */
  AST_EMIT,     /* list: emitted expressions */
  AST_FOR,      /* name: loop variable; a: AST_RANGE or list expression;
                   body: AST_BLOCK */
  AST_IF,       /* a: condition; body: then-block; b: else-block (AST_BLOCK
                   or AST_IF for `else if`) or NULL */
  AST_PARAM,    /* name; type: AST_TYPE; a: initialiser expression (AST_IDENT
                   or AST_CALL such as normal(std: 0.02)); NULL: zeros */
  AST_STATE,    /* as AST_PARAM, for `state` */
  AST_INPUT,    /* name; type: AST_TYPE */
  AST_OUTPUT,   /* name: output name; a: value (for `output logits`, a is
                   the AST_IDENT and name is its name) */
  AST_LOSS,     /* a: value */
  AST_METRIC,   /* name: metric name (explicit `metric f = e`, else the
                   callee's name); a: value */
  /* ---- declarations (in AstProgram.decls) ---- */
  AST_IMPORT,   /* str: the imported path as written ("std") */
  AST_CONST,    /* name; a: value; type: optional AST_TYPE */
  AST_FN,       /* name; list: AST_ARG params; type: return type (may be
                   NULL); body: AST_BLOCK */
  AST_LAYER,    /* as AST_FN */
  AST_ARG,      /* a declared parameter: name; type: AST_TYPE (NULL when
                   omitted); a: default value or NULL */
  AST_MODEL,    /* name; body: AST_BLOCK */
  AST_TRAIN,    /* name: model trained; list: AST_SETTING and AST_DATA */
  AST_SETTING,  /* name: key (`batch`, `lr`, ...); a: value expression */
  AST_DATA,     /* name: "data" or "eval_data"; list: AST_IDENT names;
                   a: source expression (`idx("a", "b")`) */
  AST_KIND_COUNT
} AstKind;

struct AstNode {
  AstKind kind;
  SrcLoc loc;          /* whole text of the node */
  SrcLoc name_loc;     /* the name token, when the node has one */
  const char *name;    /* interned */
  const char *str;
  const char *scope;   /* AST_CALL: `as NAME` */
  AstOp op;            /* AST_UNARY, AST_BINARY */
  bool is_int;
  bool is_tensor;
  int64_t ival;
  double num;
  AstNode *a, *b;
  AstNode *type;
  AstNode *body;
  AstList list, list2;
};

/* A parsed file. */
typedef struct AstProgram {
  Arena *arena;
  StrTab *strs;
  const char *file;    /* as registered with the Diag */
  AstList decls;       /* AST_IMPORT, AST_CONST, AST_FN, AST_LAYER,
                          AST_MODEL, AST_TRAIN in source order */
} AstProgram;

/* Parse text (already registered with d as file) into a new program.
** Syntax errors are reported to d; the result is still returned (with the
** declarations that parsed) so callers check d->nerrors. */
AstProgram *ast_parse(Diag *d, const char *file, const char *text,
                      size_t len);
void ast_program_free(AstProgram *p);

/* Builders used by the parser. */
AstNode *ast_new(AstProgram *p, AstKind k, SrcLoc loc);
void ast_list_push(AstProgram *p, AstList *l, AstNode *n);

/* Print the AST as an S-expression (`nnc build --emit=ast`), one
** declaration per paragraph; deterministic, no addresses. */
void ast_dump(FILE *out, const AstProgram *p);
const char *ast_kind_name(AstKind k);

#endif

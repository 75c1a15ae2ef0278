/*
** This file contains the unit tests of the parser (frontend/parser.y) and
** of the AST module (frontend/ast.c): the AST shape of every construct of
** the grammar (fields, not just success), operator precedence and
** associativity, the source locations of nested nodes, syntax error
** messages and recovery, the error cap, and the exact S-expression dump.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "ast.h"

#ifndef NNC_SOURCE_DIR
#define NNC_SOURCE_DIR "."
#endif

/* Test state: an arena for scratch data, one Diag writing to a temporary
** file, and the programs parsed (freed in teardown). */
typedef struct Ctx {
  Arena *a;
  FILE *f;
  Diag *d;
  long read;          /* bytes of f already returned by errors() */
  AstProgram *progs[64];
  int nprogs;
} Ctx;

static int arena_setup(void **state) {
  Arena *a = arena_new();
  Ctx *c = ARENA_NEW(a, Ctx);
  c->a = a;
  c->f = tmpfile();
  if (!c->f) return -1;
  c->d = diag_new(c->f);
  *state = c;
  return 0;
}

static int arena_teardown(void **state) {
  Ctx *c = *state;
  for (int i = 0; i < c->nprogs; i++) ast_program_free(c->progs[i]);
  diag_free(c->d);
  fclose(c->f);
  arena_free(c->a);
  return 0;
}

/* Parse text as "t.nn"; errors go to the context's Diag. */
static AstProgram *parse_any(void **state, const char *text) {
  Ctx *c = *state;
  assert_true(c->nprogs < 64);
  size_t len = strlen(text);
  const char *file = diag_add_file(c->d, "t.nn", text, len);
  const DiagFile *df = diag_find_file(c->d, file);
  AstProgram *p = ast_parse(c->d, file, df->text, len);
  c->progs[c->nprogs++] = p;
  assert_non_null(p);
  assert_ptr_equal(p->file, file);
  return p;
}

/* The diagnostics printed since the last call. */
static char *errors(void **state) {
  Ctx *c = *state;
  long end = ftell(c->f);
  assert_true(end >= c->read);
  char *s = arena_alloc(c->a, (size_t)(end - c->read) + 1, 1);
  fseek(c->f, c->read, SEEK_SET);
  size_t n = fread(s, 1, (size_t)(end - c->read), c->f);
  s[n] = '\0';
  fseek(c->f, end, SEEK_SET);
  c->read = end;
  return s;
}

/* Parse text that must be free of errors. */
static AstProgram *parse(void **state, const char *text) {
  Ctx *c = *state;
  AstProgram *p = parse_any(state, text);
  if (c->d->nerrors) fail_msg("unexpected errors:\n%s", errors(state));
  return p;
}

/* The only declaration of a program. */
static AstNode *decl1(void **state, const char *text) {
  AstProgram *p = parse(state, text);
  assert_int_equal(p->decls.n, 1);
  return p->decls.v[0];
}

/* The statements of `model m { TEXT }`. */
static AstList stmts(void **state, const char *body) {
  Ctx *c = *state;
  char *text = arena_printf(c->a, "model m {\n%s\n}\n", body);
  AstNode *m = decl1(state, text);
  assert_int_equal(m->kind, AST_MODEL);
  assert_int_equal(m->body->kind, AST_BLOCK);
  return m->body->list;
}

/* The expression of `model m { let v = TEXT }`. */
static AstNode *expr(void **state, const char *text) {
  Ctx *c = *state;
  AstList l = stmts(state, arena_printf(c->a, "let v = %s", text));
  assert_int_equal(l.n, 1);
  assert_int_equal(l.v[0]->kind, AST_LET);
  return l.v[0]->a;
}

/* The AST dump of a node or program as a string. */
static char *dump(void **state, const AstProgram *p) {
  Ctx *c = *state;
  FILE *f = tmpfile();
  assert_non_null(f);
  ast_dump(f, p);
  long n = ftell(f);
  rewind(f);
  char *s = arena_alloc(c->a, (size_t)n + 1, 1);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = '\0';
  fclose(f);
  return s;
}

/* The text a location covers in the program's source. */
static char *loc_text(void **state, SrcLoc l) {
  Ctx *c = *state;
  const DiagFile *f = diag_find_file(c->d, l.file);
  assert_non_null(f);
  assert_true(l.offset + l.len <= f->len);
  return arena_strndup(c->a, f->text + l.offset, l.len);
}

static void assert_ident(const AstNode *n, const char *name) {
  assert_non_null(n);
  assert_int_equal(n->kind, AST_IDENT);
  assert_string_equal(n->name, name);
}

static void assert_int_num(const AstNode *n, int64_t v) {
  assert_non_null(n);
  assert_int_equal(n->kind, AST_NUM);
  assert_true(n->is_int);
  assert_int_equal(n->ival, v);
}

static void assert_binary(const AstNode *n, AstOp op) {
  assert_non_null(n);
  assert_int_equal(n->kind, AST_BINARY);
  assert_int_equal(n->op, op);
}

/* -------------------------------------------------------- declarations */

static void test_parser_import_and_const(void **state) {
  AstProgram *p = parse(state, "import \"std\"\n\nconst D = 256\n"
                               "const E: int = 2\n");
  assert_int_equal(p->decls.n, 3);
  AstNode *imp = p->decls.v[0];
  assert_int_equal(imp->kind, AST_IMPORT);
  assert_string_equal(imp->str, "std");
  AstNode *d = p->decls.v[1];
  assert_int_equal(d->kind, AST_CONST);
  assert_string_equal(d->name, "D");
  assert_null(d->type);
  assert_int_num(d->a, 256);
  assert_string_equal(loc_text(state, d->name_loc), "D");
  assert_string_equal(loc_text(state, d->loc), "const D = 256");
  AstNode *e = p->decls.v[2];
  assert_int_equal(e->type->kind, AST_TYPE);
  assert_string_equal(e->type->name, "int");
  assert_false(e->type->is_tensor);
  assert_int_num(e->a, 2);
}

static void test_parser_fn_signature(void **state) {
  AstNode *f = decl1(state, "fn gelu_mlp(x: f32[..., D], w1: f32[D, 4*D],\n"
                            "            s = 0.5, n: int = 3,) -> f32[] {\n"
                            "  return x\n}\n");
  assert_int_equal(f->kind, AST_FN);
  assert_string_equal(f->name, "gelu_mlp");
  assert_string_equal(loc_text(state, f->name_loc), "gelu_mlp");
  assert_int_equal(f->list.n, 4);
  AstNode *x = f->list.v[0];
  assert_int_equal(x->kind, AST_ARG);
  assert_string_equal(x->name, "x");
  assert_true(x->type->is_tensor);
  assert_string_equal(x->type->name, "f32");
  assert_int_equal(x->type->list.n, 2);
  assert_int_equal(x->type->list.v[0]->kind, AST_ELLIPSIS);
  assert_ident(x->type->list.v[1], "D");
  assert_null(x->a);
  AstNode *w1 = f->list.v[1];
  assert_binary(w1->type->list.v[1], AOP_MUL);
  AstNode *s = f->list.v[2];
  assert_null(s->type);
  assert_int_equal(s->a->kind, AST_NUM);
  assert_false(s->a->is_int);
  assert_true(s->a->num == 0.5);
  AstNode *n = f->list.v[3];
  assert_string_equal(n->type->name, "int");
  assert_int_num(n->a, 3);
  /* `f32[]` is a scalar tensor */
  assert_int_equal(f->type->kind, AST_TYPE);
  assert_true(f->type->is_tensor);
  assert_int_equal(f->type->list.n, 0);
  assert_int_equal(f->body->kind, AST_BLOCK);
  assert_int_equal(f->body->list.n, 1);
  assert_string_equal(loc_text(state, x->loc), "x: f32[..., D]");
  assert_string_equal(loc_text(state, x->type->loc), "f32[..., D]");
}

static void test_parser_layer_tuple_return_and_no_args(void **state) {
  AstProgram *p = parse(state, "layer l(x) -> (f32[B], i32[]) { return x }\n"
                               "fn g() { }\n");
  AstNode *l = p->decls.v[0];
  assert_int_equal(l->kind, AST_LAYER);
  assert_int_equal(l->list.n, 1);
  assert_null(l->list.v[0]->type);
  assert_int_equal(l->type->kind, AST_TUPLE_TYPE);
  assert_int_equal(l->type->list.n, 2);
  assert_string_equal(l->type->list.v[1]->name, "i32");
  assert_int_equal(l->body->list.n, 1);
  AstNode *g = p->decls.v[1];
  assert_int_equal(g->kind, AST_FN);
  assert_int_equal(g->list.n, 0);
  assert_null(g->type);
  assert_int_equal(g->body->list.n, 0);
}

static void test_parser_train_block(void **state) {
  AstNode *t = decl1(state,
      "train classifier {\n"
      "  data      image, label = idx(\"a.gz\", \"b.gz\")\n"
      "  eval_data x = npy(\"x.npy\")\n"
      "\n"
      "  batch     128\n"
      "  optimizer adamw(lr: 1e-3, betas: (0.9, 0.999))\n"
      "  precision mixed(bf16)\n"
      "  remat     budget(256 MiB)\n"
      "  lr        0.5 / (1 + step) ** 0.6\n"
      "  average   none }\n");
  assert_int_equal(t->kind, AST_TRAIN);
  assert_string_equal(t->name, "classifier");
  assert_int_equal(t->list.n, 8);
  AstNode *data = t->list.v[0];
  assert_int_equal(data->kind, AST_DATA);
  assert_string_equal(data->name, "data");
  assert_int_equal(data->list.n, 2);
  assert_ident(data->list.v[0], "image");
  assert_ident(data->list.v[1], "label");
  assert_int_equal(data->a->kind, AST_CALL);
  assert_ident(data->a->a, "idx");
  assert_string_equal(data->a->list.v[1]->str, "b.gz");
  AstNode *ev = t->list.v[1];
  assert_int_equal(ev->kind, AST_DATA);
  assert_string_equal(ev->name, "eval_data");
  assert_int_equal(ev->list.n, 1);
  AstNode *batch = t->list.v[2];
  assert_int_equal(batch->kind, AST_SETTING);
  assert_string_equal(batch->name, "batch");
  assert_string_equal(loc_text(state, batch->name_loc), "batch");
  assert_int_num(batch->a, 128);
  AstNode *opt = t->list.v[3];
  AstNode *betas = opt->a->list.v[1];
  assert_int_equal(betas->kind, AST_NAMED_ARG);
  assert_int_equal(betas->a->kind, AST_TUPLE);
  assert_int_equal(betas->a->list.n, 2);
  AstNode *prec = t->list.v[4];
  assert_ident(prec->a->list.v[0], "bf16");
  assert_int_num(t->list.v[5]->a->list.v[0], 256 << 20);
  assert_binary(t->list.v[6]->a, AOP_DIV);
  assert_ident(t->list.v[7]->a, "none");
}

/* --------------------------------------------------------- statements */

static void test_parser_statements(void **state) {
  AstList l = stmts(state,
      "  input image: u8[B, 28, 28]\n"
      "  param w: f32[I, out] = glorot_uniform\n"
      "  param b: f32[out]\n"
      "  state s: f32[C] = zeros\n"
      "  let q, k, v = split(x, 3, axis: -1)\n"
      "  h = h + 1\n"
      "  s <- 0.9 * s\n"
      "  output logits\n"
      "  output y = x\n"
      "  loss cross_entropy(logits, label)\n"
      "  metric accuracy(logits, label)\n"
      "  metric f = f1(logits, label)\n"
      "  metric x.y\n"
      "  emit h, c\n"
      "  f(x)\n");
  assert_int_equal(l.n, 15);
  AstNode *in = l.v[0];
  assert_int_equal(in->kind, AST_INPUT);
  assert_string_equal(in->name, "image");
  assert_string_equal(in->type->name, "u8");
  assert_int_equal(in->type->list.n, 3);
  assert_int_num(in->type->list.v[2], 28);
  AstNode *w = l.v[1];
  assert_int_equal(w->kind, AST_PARAM);
  assert_string_equal(w->name, "w");
  assert_ident(w->a, "glorot_uniform");
  assert_int_equal(l.v[2]->kind, AST_PARAM);
  assert_null(l.v[2]->a);
  AstNode *s = l.v[3];
  assert_int_equal(s->kind, AST_STATE);
  assert_ident(s->a, "zeros");
  AstNode *let = l.v[4];
  assert_int_equal(let->kind, AST_LET);
  assert_int_equal(let->list.n, 3);
  assert_ident(let->list.v[2], "v");
  assert_string_equal(loc_text(state, let->list.v[1]->name_loc), "k");
  AstNode *axis = let->a->list.v[2];
  assert_int_equal(axis->kind, AST_NAMED_ARG);
  assert_string_equal(axis->name, "axis");
  assert_int_equal(axis->a->kind, AST_UNARY);
  assert_int_equal(axis->a->op, AOP_NEG);
  AstNode *as = l.v[5];
  assert_int_equal(as->kind, AST_ASSIGN);
  assert_string_equal(as->name, "h");
  assert_binary(as->a, AOP_ADD);
  AstNode *up = l.v[6];
  assert_int_equal(up->kind, AST_UPDATE);
  assert_string_equal(up->name, "s");
  assert_binary(up->a, AOP_MUL);
  AstNode *o1 = l.v[7];
  assert_int_equal(o1->kind, AST_OUTPUT);
  assert_string_equal(o1->name, "logits");
  assert_ident(o1->a, "logits");
  AstNode *o2 = l.v[8];
  assert_string_equal(o2->name, "y");
  assert_ident(o2->a, "x");
  AstNode *loss = l.v[9];
  assert_int_equal(loss->kind, AST_LOSS);
  assert_int_equal(loss->a->kind, AST_CALL);
  AstNode *m1 = l.v[10];
  assert_int_equal(m1->kind, AST_METRIC);
  assert_string_equal(m1->name, "accuracy");
  assert_string_equal(loc_text(state, m1->name_loc), "accuracy");
  AstNode *m2 = l.v[11];
  assert_string_equal(m2->name, "f");
  assert_ident(m2->a->a, "f1");
  AstNode *m3 = l.v[12]; /* not a call: no name */
  assert_null(m3->name);
  assert_int_equal(m3->a->kind, AST_FIELD);
  AstNode *em = l.v[13];
  assert_int_equal(em->kind, AST_EMIT);
  assert_int_equal(em->list.n, 2);
  assert_ident(em->list.v[1], "c");
  AstNode *es = l.v[14];
  assert_int_equal(es->kind, AST_EXPR_STMT);
  assert_int_equal(es->a->kind, AST_CALL);
}

static void test_parser_return_forms(void **state) {
  AstProgram *p = parse(state, "fn f() { return }\nfn g() { return x }\n"
                               "fn h() {\n  return a, b + 1, c\n}\n");
  AstNode *r0 = p->decls.v[0]->body->list.v[0];
  assert_int_equal(r0->kind, AST_RETURN);
  assert_null(r0->a);
  AstNode *r1 = p->decls.v[1]->body->list.v[0];
  assert_ident(r1->a, "x");
  AstNode *r3 = p->decls.v[2]->body->list.v[0];
  assert_int_equal(r3->a->kind, AST_TUPLE);
  assert_int_equal(r3->a->list.n, 3);
  assert_binary(r3->a->list.v[1], AOP_ADD);
  assert_string_equal(loc_text(state, r3->a->loc), "a, b + 1, c");
  assert_string_equal(loc_text(state, r3->loc), "return a, b + 1, c");
}

static void test_parser_for_and_if(void **state) {
  AstList l = stmts(state,
      "  for i in 0..L { h = f(h) }\n"
      "  if bias {\n    return x\n  } else if n > 2 {\n    x = 1\n"
      "  } else {\n  }\n"
      "  if training { x = y }\n");
  assert_int_equal(l.n, 3);
  AstNode *f = l.v[0];
  assert_int_equal(f->kind, AST_FOR);
  assert_string_equal(f->name, "i");
  assert_int_equal(f->a->kind, AST_RANGE);
  assert_int_num(f->a->a, 0);
  assert_ident(f->a->b, "L");
  assert_int_equal(f->body->list.n, 1);
  AstNode *i = l.v[1];
  assert_int_equal(i->kind, AST_IF);
  assert_ident(i->a, "bias");
  assert_int_equal(i->body->kind, AST_BLOCK);
  assert_int_equal(i->b->kind, AST_IF);
  assert_binary(i->b->a, AOP_GT);
  assert_int_equal(i->b->b->kind, AST_BLOCK);
  assert_int_equal(i->b->b->list.n, 0);
  assert_null(l.v[2]->b);
}

/* --------------------------------------------------------- expressions */

static void test_parser_precedence(void **state) {
  /* -x**2 is -(x**2) */
  AstNode *e = expr(state, "-x**2");
  assert_int_equal(e->kind, AST_UNARY);
  assert_int_equal(e->op, AOP_NEG);
  assert_binary(e->a, AOP_POW);
  /* a + b * c @ d is a + ((b * c) @ d) */
  e = expr(state, "a + b * c @ d");
  assert_binary(e, AOP_ADD);
  assert_ident(e->a, "a");
  assert_binary(e->b, AOP_MATMUL);
  assert_binary(e->b->a, AOP_MUL);
  assert_ident(e->b->b, "d");
  /* not a and b is (not a) and b */
  e = expr(state, "not a and b");
  assert_binary(e, AOP_AND);
  assert_int_equal(e->a->kind, AST_UNARY);
  assert_int_equal(e->a->op, AOP_NOT);
  /* not a == b is not (a == b) */
  e = expr(state, "not a == b");
  assert_int_equal(e->kind, AST_UNARY);
  assert_binary(e->a, AOP_EQ);
  /* a or b and c */
  e = expr(state, "a or b and c");
  assert_binary(e, AOP_OR);
  assert_binary(e->b, AOP_AND);
  /* 2**-1 and right associativity of ** */
  e = expr(state, "2**-1");
  assert_binary(e, AOP_POW);
  assert_int_equal(e->b->kind, AST_UNARY);
  e = expr(state, "2**3**2");
  assert_binary(e, AOP_POW);
  assert_int_num(e->a, 2);
  assert_binary(e->b, AOP_POW);
  /* left associativity of - and / */
  e = expr(state, "a - b - c");
  assert_binary(e, AOP_SUB);
  assert_binary(e->a, AOP_SUB);
  assert_ident(e->b, "c");
  /* comparisons bind looser than arithmetic; .. loosest */
  e = expr(state, "a + 1 <= b % 2");
  assert_binary(e, AOP_LE);
  assert_binary(e->b, AOP_MOD);
  e = expr(state, "1..n+1");
  assert_int_equal(e->kind, AST_RANGE);
  assert_binary(e->b, AOP_ADD);
  /* unary plus and parentheses */
  e = expr(state, "+(a - b) * c");
  assert_binary(e, AOP_MUL);
  assert_int_equal(e->a->kind, AST_UNARY);
  assert_int_equal(e->a->op, AOP_PLUS);
  assert_binary(e->a->a, AOP_SUB);
  /* every comparison operator */
  static const struct { const char *s; AstOp op; } cmp[] = {
      {"a == b", AOP_EQ}, {"a != b", AOP_NE}, {"a < b", AOP_LT},
      {"a > b", AOP_GT},  {"a <= b", AOP_LE}, {"a >= b", AOP_GE},
      {"a / b", AOP_DIV},
  };
  for (size_t k = 0; k < sizeof cmp / sizeof cmp[0]; k++)
    assert_binary(expr(state, cmp[k].s), cmp[k].op);
}

static void test_parser_comparison_is_nonassoc(void **state) {
  Ctx *c = *state;
  parse_any(state, "const x = a < b < c\n");
  assert_int_equal(c->d->nerrors, 1);
  assert_string_equal(errors(state),
                      "t.nn:1:17: error: syntax error, unexpected '<'\n"
                      "    1 | const x = a < b < c\n"
                      "      |                 ^\n");
}

static void test_parser_postfix(void **state) {
  AstNode *e = expr(state, "linear(relu(x), 512, bias: false,) as fc1");
  assert_int_equal(e->kind, AST_CALL);
  assert_ident(e->a, "linear");
  assert_string_equal(e->scope, "fc1");
  assert_int_equal(e->list.n, 3);
  assert_int_equal(e->list.v[0]->kind, AST_CALL);
  assert_null(e->list.v[0]->scope);
  assert_int_equal(e->list.v[2]->kind, AST_NAMED_ARG);
  assert_string_equal(e->list.v[2]->name, "bias");
  assert_int_equal(e->list.v[2]->a->kind, AST_BOOL);
  assert_int_equal(e->list.v[2]->a->ival, 0);
  e = expr(state, "zeros[B, hidden].shape[0]");
  assert_int_equal(e->kind, AST_INDEX);
  assert_int_equal(e->list.n, 1);
  assert_int_equal(e->a->kind, AST_FIELD);
  assert_string_equal(e->a->name, "shape");
  assert_int_equal(e->a->a->kind, AST_INDEX);
  assert_int_equal(e->a->a->list.n, 2);
  e = expr(state, "f()(1)");
  assert_int_equal(e->kind, AST_CALL);
  assert_int_equal(e->list.n, 1);
  assert_int_equal(e->a->kind, AST_CALL);
  assert_int_equal(e->a->list.n, 0);
}

static void test_parser_primaries(void **state) {
  AstNode *e = expr(state, "(1, \"s\", true)");
  assert_int_equal(e->kind, AST_TUPLE);
  assert_int_equal(e->list.n, 3);
  assert_int_equal(e->list.v[1]->kind, AST_STR);
  assert_string_equal(e->list.v[1]->str, "s");
  assert_int_equal(e->list.v[2]->ival, 1);
  e = expr(state, "[]");
  assert_int_equal(e->kind, AST_LIST);
  assert_int_equal(e->list.n, 0);
  e = expr(state, "[B, 784]");
  assert_int_equal(e->kind, AST_LIST);
  assert_int_equal(e->list.n, 2);
  e = expr(state, "(x)");
  assert_ident(e, "x");
  e = expr(state, "1e-3");
  assert_false(e->is_int);
  assert_true(e->num == 1e-3);
  e = expr(state, "7");
  assert_true(e->is_int);
  assert_true(e->num == 7.0);
}

static void test_parser_scan(void **state) {
  AstNode *e = expr(state,
      "scan (h = zeros[B, H], c = 0; xt in x along 1, m in mask) {\n"
      "    c = c + xt\n"
      "    emit h\n"
      "  }");
  assert_int_equal(e->kind, AST_SCAN);
  assert_int_equal(e->ival, 0);
  assert_int_equal(e->list.n, 2);
  assert_int_equal(e->list.v[0]->kind, AST_NAMED_ARG);
  assert_string_equal(e->list.v[0]->name, "h");
  assert_int_equal(e->list.v[0]->a->kind, AST_INDEX);
  assert_int_equal(e->list2.n, 2);
  AstNode *s0 = e->list2.v[0];
  assert_int_equal(s0->kind, AST_SEQ);
  assert_string_equal(s0->name, "xt");
  assert_ident(s0->a, "x");
  assert_int_num(s0->b, 1);
  assert_null(e->list2.v[1]->b);
  assert_int_equal(e->body->kind, AST_BLOCK);
  assert_int_equal(e->body->list.n, 2);
  e = expr(state, "scan reverse (h = h0) { emit h }");
  assert_int_equal(e->ival, 1);
  assert_int_equal(e->list.n, 1);
  assert_int_equal(e->list2.n, 0);
  e = expr(state, "scan (; xt in x) { emit xt }");
  assert_int_equal(e->list.n, 0);
  assert_int_equal(e->list2.n, 1);
  /* a scan inside a call: its body's newlines count again */
  e = expr(state, "f(scan (h = 0; t in x) {\n  h = h + t\n  emit h\n}, 2)");
  assert_int_equal(e->kind, AST_CALL);
  assert_int_equal(e->list.v[0]->kind, AST_SCAN);
  assert_int_equal(e->list.v[0]->body->list.n, 2);
}

static void test_parser_multiline_expressions(void **state) {
  AstList l = stmts(state, "let x = a +\n    b\nlet y = f(1,\n  2,\n)\n");
  assert_int_equal(l.n, 2);
  assert_binary(l.v[0]->a, AOP_ADD);
  assert_int_equal(l.v[1]->a->list.n, 2);
}

/* ----------------------------------------------------------- locations */

static void test_parser_locations(void **state) {
  AstNode *e = expr(state, "a + f(b, c) * (d - 1)");
  assert_string_equal(loc_text(state, e->loc), "a + f(b, c) * (d - 1)");
  AstNode *mul = e->b;
  assert_string_equal(loc_text(state, mul->loc), "f(b, c) * (d - 1)");
  assert_string_equal(loc_text(state, mul->a->loc), "f(b, c)");
  assert_string_equal(loc_text(state, mul->b->loc), "d - 1");
  assert_int_equal(mul->a->loc.line, 2);
  assert_int_equal(mul->a->loc.col, 13);
  e = expr(state, "linear(x,\n   512) as fc1");
  assert_string_equal(loc_text(state, e->loc), "linear(x,\n   512) as fc1");
  e = expr(state, "-x**2");
  assert_string_equal(loc_text(state, e->a->loc), "x**2");
  e = expr(state, "w[i].t");
  assert_string_equal(loc_text(state, e->loc), "w[i].t");
  assert_string_equal(loc_text(state, e->name_loc), "t");
  assert_string_equal(loc_text(state, e->a->loc), "w[i]");
  AstList l = stmts(state, "param w: f32[4] = normal(std: 0.02)\n");
  assert_string_equal(loc_text(state, l.v[0]->loc),
                      "param w: f32[4] = normal(std: 0.02)");
  assert_string_equal(loc_text(state, l.v[0]->name_loc), "w");
  assert_string_equal(loc_text(state, l.v[0]->a->list.v[0]->loc), "std: 0.02");
  assert_string_equal(loc_text(state, l.v[0]->a->list.v[0]->name_loc), "std");
}

static void test_parser_decl_and_block_locations(void **state) {
  AstNode *m = decl1(state, "model m {\n  x = 1\n}   # done\n");
  assert_string_equal(loc_text(state, m->loc), "model m {\n  x = 1\n}");
  assert_string_equal(loc_text(state, m->body->loc), "{\n  x = 1\n}");
  assert_string_equal(loc_text(state, m->body->list.v[0]->loc), "x = 1");
}

/* -------------------------------------------------------------- errors */

static void test_parser_error_message_and_caret(void **state) {
  Ctx *c = *state;
  AstProgram *p = parse_any(state, "model m {\n  let x = (a +\n}\n");
  assert_int_equal(c->d->nerrors, 1);
  assert_string_equal(errors(state),
                      "t.nn:3:1: error: syntax error, unexpected '}'\n"
                      "    3 | }\n"
                      "      | ^\n");
  assert_int_equal(p->decls.n, 1); /* the model still parsed */
}

static void test_parser_unexpected_end_of_line(void **state) {
  Ctx *c = *state;
  /* after '.' a line break is not the end of the statement */
  parse_any(state, "model m {\n  input x: f32[B]\n  let y = x.\n}\n");
  assert_int_equal(c->d->nerrors, 1);
  assert_string_equal(errors(state),
                      "t.nn:4:1: error: syntax error, unexpected '}', "
                      "expecting identifier\n"
                      "    4 | }\n"
                      "      | ^\n");
  parse_any(state, "model m {\n  input x: f32[B]\n  let y = x)\n}\n");
  assert_string_equal(errors(state),
                      "t.nn:3:12: error: syntax error, unexpected ')'\n"
                      "    3 |   let y = x)\n"
                      "      |            ^\n");
  parse_any(state, "fn f(x: f32[B] {\n}\n");
  assert_string_equal(errors(state),
                      "t.nn:1:16: error: syntax error, unexpected '{', "
                      "expecting '=' or ')' or ','\n"
                      "    1 | fn f(x: f32[B] {\n"
                      "      |                ^\n");
  parse_any(state, "model m {\n  loss f(x\n");
  assert_string_equal(errors(state),
                      "t.nn:2:11: error: syntax error, unexpected end of "
                      "file\n"
                      "    2 |   loss f(x\n"
                      "      |           ^\n");
}

static void test_parser_end_of_line_in_statement(void **state) {
  Ctx *c = *state;
  parse_any(state, "model m {\n  let x\n  loss x\n}\n");
  assert_int_equal(c->d->nerrors, 1);
  assert_string_equal(errors(state),
                      "t.nn:2:8: error: syntax error, unexpected end of "
                      "line, expecting '=' or ','\n"
                      "    2 |   let x\n"
                      "      |        ^\n");
}

static void test_parser_recovery_in_blocks(void **state) {
  Ctx *c = *state;
  AstProgram *p = parse_any(state,
      "model m {\n"
      "  let = 1\n"
      "  loss x\n"
      "  output )\n"
      "  metric acc(x)\n"
      "}\n"
      "model n { let a = 1 }\n");
  assert_int_equal(c->d->nerrors, 2);
  char *err = errors(state);
  assert_non_null(strstr(err, "t.nn:2:7: error: syntax error, unexpected '='"));
  assert_non_null(strstr(err, "t.nn:4:10: error: syntax error, unexpected ')'"));
  /* the statements around the errors are kept */
  assert_int_equal(p->decls.n, 2);
  AstList l = p->decls.v[0]->body->list;
  assert_int_equal(l.n, 2);
  assert_int_equal(l.v[0]->kind, AST_LOSS);
  assert_int_equal(l.v[1]->kind, AST_METRIC);
  assert_string_equal(p->decls.v[1]->name, "n");
}

static void test_parser_recovery_at_top_level(void **state) {
  Ctx *c = *state;
  AstProgram *p = parse_any(state,
      "fn f(x: ) {\n  return x\n}\n"
      "const a = 1\n"
      "model (\n"
      "train t { batch 1 }\n"
      "x y z\n"
      "const b = 2\n");
  assert_int_equal(c->d->nerrors, 3);
  char *err = errors(state);
  assert_non_null(strstr(err, "t.nn:1:9: error: syntax error, unexpected ')'"));
  assert_non_null(strstr(err, "t.nn:5:7: error: syntax error, unexpected '('"));
  assert_non_null(strstr(err, "t.nn:7:1: error: syntax error, unexpected "
                              "identifier"));
  assert_int_equal(p->decls.n, 3);
  assert_string_equal(p->decls.v[0]->name, "a");
  assert_int_equal(p->decls.v[1]->kind, AST_TRAIN);
  assert_string_equal(p->decls.v[2]->name, "b");
}

static void test_parser_recovery_in_train_block(void **state) {
  Ctx *c = *state;
  AstProgram *p = parse_any(state,
      "train m {\n  batch\n  steps 10\n  data x, = f()\n  seed 1\n}\n");
  assert_int_equal(c->d->nerrors, 2);
  errors(state);
  AstNode *t = p->decls.v[0];
  assert_int_equal(t->list.n, 2);
  assert_string_equal(t->list.v[0]->name, "steps");
  assert_string_equal(t->list.v[1]->name, "seed");
}

static void test_parser_lexical_errors_reported(void **state) {
  Ctx *c = *state;
  AstProgram *p = parse_any(state, "const a = 1 $ 2\nconst b = \"x\n");
  assert_true(c->d->nerrors >= 2);
  char *err = errors(state);
  assert_non_null(strstr(err, "t.nn:1:13: error: invalid character '$'"));
  assert_non_null(strstr(err, "t.nn:2:11: error: unterminated string"));
  assert_true(p->decls.n >= 1);
}

static void test_parser_error_cap(void **state) {
  Ctx *c = *state;
  c->d->max_errors = 3;
  char text[2048] = "";
  for (int i = 0; i < 50; i++) strcat(text, "model m { let = }\n");
  parse_any(state, text);
  assert_int_equal(c->d->nerrors, 4);
  char *err = errors(state);
  const char *too = strstr(err, "nnc: too many errors; stopping\n");
  assert_non_null(too);
  assert_string_equal(too, "nnc: too many errors; stopping\n");
}

static void test_parser_empty_and_blank_input(void **state) {
  AstProgram *p = parse(state, "");
  assert_int_equal(p->decls.n, 0);
  p = parse(state, "\n\n# only a comment\n\n");
  assert_int_equal(p->decls.n, 0);
  assert_string_equal(dump(state, p), "");
}

static void test_parser_many_list_elements(void **state) {
  Ctx *c = *state;
  char *text = arena_strdup(c->a, "[0");
  for (int i = 1; i < 100; i++) text = arena_printf(c->a, "%s, %d", text, i);
  AstNode *e = expr(state, arena_printf(c->a, "%s]", text));
  assert_int_equal(e->list.n, 100);
  for (int i = 0; i < 100; i++) assert_int_num(e->list.v[i], i);
}

static void test_parser_depth_limit(void **state) {
  Ctx *c = *state;
  /* a left-associative chain does not grow bison's stack, so the parser
  ** bounds the depth of the tree for the recursive consumers */
  char *ok = arena_strdup(c->a, "const x = a");
  for (int i = 1; i < 999; i++) ok = arena_printf(c->a, "%s+a", ok);
  AstProgram *p = parse(state, ok);
  assert_int_equal(p->decls.n, 1);
  char *deep = arena_printf(c->a, "const y = 1\n%s+a+a\nconst z = 2\n", ok);
  p = parse_any(state, deep);
  assert_int_equal(c->d->nerrors, 1);
  assert_non_null(strstr(errors(state),
                         "error: expression is nested too deeply (more than "
                         "1000 levels)\n"));
  assert_int_equal(p->decls.n, 2); /* the deep declaration is dropped */
  assert_string_equal(p->decls.v[0]->name, "y");
  assert_string_equal(p->decls.v[1]->name, "z");
}

/* Every .nn file of dir parses without errors into at least one
** declaration; returns how many files there were. */
static int parse_dir(void **state, const char *dir) {
  Ctx *c = *state;
  DIR *dp = opendir(dir);
  if (!dp) return 0;
  int nfiles = 0;
  struct dirent *e;
  while ((e = readdir(dp))) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 3, ".nn") != 0) continue;
    char *path = arena_printf(c->a, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *text = arena_alloc(c->a, 1 << 20, 1);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    text[len] = '\0';
    Diag *d = diag_new(c->f);
    const char *file = diag_add_file(d, path, text, len);
    AstProgram *p = ast_parse(d, file, text, len);
    if (d->nerrors) fail_msg("%s: %d syntax errors", path, d->nerrors);
    assert_true(p->decls.n > 0);
    ast_program_free(p);
    diag_free(d);
    nfiles++;
  }
  closedir(dp);
  return nfiles;
}

static void test_parser_examples_and_std(void **state) {
  int n = parse_dir(state, NNC_SOURCE_DIR "/examples");
  n += parse_dir(state, NNC_SOURCE_DIR "/std");
  assert_true(n >= 1);
}

/* ---------------------------------------------------------------- dump */

static void test_parser_dump(void **state) {
  AstProgram *p = parse(state,
      "import \"std\"\n"
      "const S = 1.0\n"
      "layer lin(x: f32[..., I], out: int = 4) -> f32[..., out] {\n"
      "  param w: f32[I, out] = normal(std: 0.02)\n"
      "  return x @ w\n"
      "}\n"
      "model m {\n"
      "  let h = scan reverse (s = 0; t in x along 1) { emit -s ** 2 }\n"
      "  metric acc(h, \"a\\n\") as q\n"
      "}\n");
  assert_string_equal(dump(state, p),
      "(import \"std\")\n"
      "\n"
      "(const S (num 1.0))\n"
      "\n"
      "(layer lin\n"
      "  (arg x\n"
      "    (type f32 :tensor (ellipsis) (ident I)))\n"
      "  (arg out\n"
      "    (type int)\n"
      "    (num 4))\n"
      "  (type f32 :tensor (ellipsis) (ident out))\n"
      "  (block\n"
      "    (param w\n"
      "      (type f32 :tensor (ident I) (ident out))\n"
      "      (call (ident normal)\n"
      "        (named_arg std (num 0.02))))\n"
      "    (return\n"
      "      (binary @ (ident x) (ident w)))))\n"
      "\n"
      "(model m\n"
      "  (block\n"
      "    (let (ident h)\n"
      "      (scan :reverse\n"
      "        (named_arg s (num 0))\n"
      "        (seq t (ident x) (num 1))\n"
      "        (block\n"
      "          (emit\n"
      "            (unary -\n"
      "              (binary ** (ident s) (num 2)))))))\n"
      "    (metric acc\n"
      "      (call :as q (ident acc) (ident h) (str \"a\\n\")))))\n");
}

static void test_parser_dump_numbers(void **state) {
  AstProgram *p = parse(state, "const a = 0.1\nconst b = 1e300\n"
                               "const c = 2.5e-8\nconst d = 1e3\n"
                               "const e = 9007199254740993\n");
  assert_string_equal(dump(state, p),
                      "(const a (num 0.1))\n\n"
                      "(const b (num 1e+300))\n\n"
                      "(const c (num 2.5e-08))\n\n"
                      "(const d (num 1000.0))\n\n"
                      "(const e (num 9007199254740993))\n");
}

static void test_parser_kind_and_op_names(void **state) {
  (void)state;
  for (int k = 0; k < AST_KIND_COUNT; k++) {
    const char *s = ast_kind_name((AstKind)k);
    assert_non_null(s);
    if (strcmp(s, "?") == 0) fail_msg("AstKind %d has no name", k);
    for (int j = 0; j < k; j++)
      assert_string_not_equal(s, ast_kind_name((AstKind)j));
  }
  assert_string_equal(ast_kind_name(AST_NAMED_ARG), "named_arg");
  assert_string_equal(ast_kind_name(AST_KIND_COUNT), "?");
  static const char *const ops[] = {"+",  "-",  "*",  "/",   "%",  "@",
                                    "**", "==", "!=", "<",   ">",  "<=",
                                    ">=", "and", "or", "-",  "+",  "not"};
  for (int op = AOP_ADD; op <= AOP_NOT; op++)
    assert_string_equal(ast_op_str((AstOp)op), ops[op]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, arena_setup, arena_teardown)
      T(test_parser_import_and_const),
      T(test_parser_fn_signature),
      T(test_parser_layer_tuple_return_and_no_args),
      T(test_parser_train_block),
      T(test_parser_statements),
      T(test_parser_return_forms),
      T(test_parser_for_and_if),
      T(test_parser_precedence),
      T(test_parser_comparison_is_nonassoc),
      T(test_parser_postfix),
      T(test_parser_primaries),
      T(test_parser_scan),
      T(test_parser_multiline_expressions),
      T(test_parser_locations),
      T(test_parser_decl_and_block_locations),
      T(test_parser_error_message_and_caret),
      T(test_parser_unexpected_end_of_line),
      T(test_parser_end_of_line_in_statement),
      T(test_parser_recovery_in_blocks),
      T(test_parser_recovery_at_top_level),
      T(test_parser_recovery_in_train_block),
      T(test_parser_lexical_errors_reported),
      T(test_parser_error_cap),
      T(test_parser_empty_and_blank_input),
      T(test_parser_many_list_elements),
      T(test_parser_depth_limit),
      T(test_parser_examples_and_std),
      T(test_parser_dump),
      T(test_parser_dump_numbers),
      T(test_parser_kind_and_op_names),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
** This file contains the unit tests of the .nnir text: parse + print round
** trips (byte-identical) of modules that use every construct of the format,
** the canonical form the printer gives to non-canonical input, printing of
** built modules, exact parse errors with positions, and a deterministic
** mini-fuzz (every truncation and byte mutation of a valid module must give
** a module or an error, never a crash).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "ir.h"

static int arena_setup(void **state) {
  *state = arena_new();
  return 0;
}

static int arena_teardown(void **state) {
  arena_free(*state);
  return 0;
}

/* The printed module as a string in arena a. */
static char *print_str(Arena *a, const IrModule *m, bool locs) {
  FILE *f = tmpfile();
  assert_non_null(f);
  IrPrintOpts o = {.locs = locs};
  ir_print_module(f, m, &o);
  long n = ftell(f);
  rewind(f);
  char *s = arena_alloc(a, (size_t)n + 1, 1);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = 0;
  fclose(f);
  return s;
}

static IrModule *parse_ok(Arena *a, const char *text) {
  const char *err = NULL;
  IrModule *m = ir_parse("t.nnir", text, strlen(text), a, &err);
  if (!m) fail_msg("unexpected parse error: %s", err);
  if (!ir_verify(m, stderr)) fail_msg("parsed module does not verify");
  return m;
}

/* text parses, prints as `want` (text itself when NULL), and the printed
** text parses and prints identically. */
static void roundtrip(Arena *a, const char *text, const char *want, bool locs) {
  IrModule *m = parse_ok(a, text);
  char *p1 = print_str(a, m, locs);
  assert_string_equal(p1, want ? want : text);
  IrModule *m2 = parse_ok(a, p1);
  char *p2 = print_str(a, m2, locs);
  assert_string_equal(p1, p2);
  ir_module_free(m);
  ir_module_free(m2);
}

static void parse_err(Arena *a, const char *text, const char *want) {
  const char *err = NULL;
  IrModule *m = ir_parse("t.nnir", text, strlen(text), a, &err);
  if (m) fail_msg("parsed, expected error: %s", want);
  assert_non_null(err);
  assert_string_equal(err, want);
}

/* ------------------------------------------------------------ round trips */

static const char *const mlp =
    "module @classifier\n"
    "\n"
    "dim B <= 128\n"
    "\n"
    "param @fc1.w : f32[784,512] = glorot_uniform\n"
    "param @fc1.b : f32[512] = zeros\n"
    "param @fc2.w : f32[512,10] = normal {mean = 0.0, std = 0.02}\n"
    "state @bn.running_mean : f32[10] = zeros\n"
    "param @free : f32[2]\n"
    "\n"
    "func @forward(%image: u8[B,28,28]) -> (logits: f32[B,10]) {\n"
    "  %0 = cast %image : f32[B,28,28]\n"
    "  %1 = constant {value = 255.0} : f32[]\n"
    "  %2 = div %0, %1 : f32[B,28,28]\n"
    "  %3 = reshape %2 : f32[B,784]\n"
    "  %4 = matmul %3, @fc1.w : f32[B,512]\n"
    "  %5 = add %4, @fc1.b : f32[B,512]\n"
    "  %6 = relu %5 : f32[B,512]\n"
    "  %7 = matmul %6, @fc2.w : f32[B,10]\n"
    "  return %7\n"
    "}\n"
    "\n"
    "func @loss(%image: u8[B,28,28], %label: i32[B]) -> (loss: f32[], "
    "metric.accuracy: f32[], @bn.running_mean: f32[10]) {\n"
    "  %0 = cast %image : f32[B,28,28]\n"
    "  %1 = reshape %0 : f32[B,784]\n"
    "  %2 = matmul %1, @fc1.w : f32[B,512]\n"
    "  %3 = matmul %2, @fc2.w : f32[B,10]\n"
    "  %4 = cross_entropy %3, %label {label_smoothing = 0.1} : f32[]\n"
    "  %5 = accuracy %3, %label : f32[]\n"
    "  %6 = mean %3 {axes = [0]} : f32[10]\n"
    "  return %4, %5, %6\n"
    "}\n"
    "\n"
    "train @classifier {\n"
    "  average = polyak\n"
    "  batch = 128\n"
    "  data = idx {files = [\"train-images-idx3-ubyte.gz\", "
    "\"train-labels-idx1-ubyte.gz\"], names = [\"image\", \"label\"]}\n"
    "  epochs = 3\n"
    "  lr = @lr\n"
    "  optimizer = adamw {betas = [0.9, 0.999], eps = 1e-08, lr = 0.001, "
    "weight_decay = 0.01}\n"
    "  precision = bf16\n"
    "  schedule = cosine {}\n"
    "  shuffle = true\n"
    "  tag = \"a\\\"b\\\\c\\n\\t\\001\"\n"
    "}\n";

static void test_irtext_roundtrip_mlp(void **state) {
  roundtrip(*state, mlp, NULL, false);
}

/* scan inside scan, multi-results, %N#K uses, captured outer values, the
** uniquing of block argument names. */
static const char *const scans =
    "module @rnn\n"
    "\n"
    "dim B = 4\n"
    "dim T = 6\n"
    "\n"
    "param @w : f32[8,8] = glorot_uniform\n"
    "\n"
    "func @forward(%h0: f32[B,8], %x: f32[B,T,8], %c: f32[8]) -> (h: f32[B,8], "
    "hs: f32[B,T,8], s: f32[T,B,8]) {\n"
    "  %0 = relu %h0 : f32[B,8]\n"
    "  %1:3 = scan %0, %x, %x {axes = [1, -2], ncarry = 1, reverse = true} : "
    "f32[B,8], f32[B,T,8], f32[B,T,8] {\n"
    "  ^(%h: f32[B,8], %xt: f32[B,8], %xt.1: f32[B,8]):\n"
    "    %2 = matmul %xt, @w : f32[B,8]\n"
    "    %3 = add %2, %c : f32[B,8]\n"
    "    %4:2 = scan %3, %h {axes = [0], ncarry = 1} : f32[B,8], f32[B,8] {\n"
    "    ^(%h.1: f32[B,8], %r: f32[8]):\n"
    "      %5 = add %h.1, %r : f32[B,8]\n"
    "      %6 = tanh %5 : f32[B,8]\n"
    "      yield %6, %r\n"
    "    }\n"
    "    %7 = add %4#0, %xt.1 : f32[B,8]\n"
    "    yield %7, %7, %4#0\n"
    "  }\n"
    "  %8 = transpose %1#2 {perm = [1, 0, 2]} : f32[T,B,8]\n"
    "  return %1#0, %1#1, %8\n"
    "}\n";

static void test_irtext_roundtrip_nested_scan(void **state) {
  roundtrip(*state, scans, NULL, false);
}

/* every attribute kind and float formatting */
static const char *const attrs =
    "module @attrs\n"
    "\n"
    "func @f(%x: f32[2,3]) -> (y: f32[2,3]) {\n"
    "  %0 = clamp %x {hi = 1e+20, lo = -0.5} : f32[2,3]\n"
    "  %1 = clamp %0 {hi = inf, lo = -inf} : f32[2,3]\n"
    "  %2 = leaky_relu %1 {alpha = 0.30000000000000004} : f32[2,3]\n"
    "  %3 = constant {value = nan} : f32[]\n"
    "  %4 = constant {value = -0.0} : f32[]\n"
    "  %5 = constant {value = 1e-300} : f64[]\n"
    "  %6 = rand {seed = 7} : f32[2,3]\n"
    "  %7 = mul %2, %6 : f32[2,3]\n"
    "  %8 = sum %7 {axes = [-1], cast = f16 {}, keepdims = true, "
    "note = \"q\\\"\", "
    "opt = sgd {lr = 0.5, nest = inner {k = [1, 2]}}, sched = @lr, "
    "tags = [\"a\", \"b\"], to = f16, vals = [1.5, -2.0, 3.0], w = none, "
    "z = []} : f32[2,1]\n"
    "  %9 = broadcast %8 : f32[2,3]\n"
    "  return %9\n"
    "}\n";

static void test_irtext_roundtrip_attrs(void **state) {
  roundtrip(*state, attrs, NULL, false);
}

/* loc() is printed only with locs = true, and parsed always */
static void test_irtext_locs(void **state) {
  Arena *a = *state;
  const char *text =
      "module @m\n"
      "\n"
      "param @w : f32[3,4] = zeros  loc(\"m.nn\":2:5)\n"
      "\n"
      "func @f(%x: f32[2,3]) -> (y: f32[2,4]) {\n"
      "  %0 = matmul %x, @w : f32[2,4]  loc(\"dir/m.nn\":10:18)\n"
      "  %1:2 = scan %0 {length = 3, ncarry = 1} : f32[2,4], f32[3,2,4]  "
      "loc(\"m.nn\":11:1) {\n"
      "  ^(%c: f32[2,4]):\n"
      "    yield %c, %c\n"
      "  }\n"
      "  return %1#0\n"
      "}\n";
  roundtrip(a, text, NULL, true);
  IrModule *m = parse_ok(a, text);
  const IrNode *n = m->funcs->body->first;
  assert_string_equal(n->loc.file, "dir/m.nn");
  assert_int_equal(n->loc.line, 10);
  assert_int_equal(n->loc.col, 18);
  assert_ptr_equal(n->loc.file, strtab_cstr(m->strs, "dir/m.nn"));
  assert_string_equal(m->globals->loc.file, "m.nn");
  char *plain = print_str(a, m, false);
  assert_null(strstr(plain, "loc("));
  ir_module_free(m);
}

/* Non-canonical input: comments, sparse names, unsorted attributes, ints
** for floats, odd spacing, arguments named like printed ones. */
static void test_irtext_canonical_form(void **state) {
  const char *in =
      "; leading comment\n"
      "module @m   ; trailing comment\n"
      "param @p:f32[3]=uniform{b=1.0,a=-1.0}\n"
      "dim N = 3\n"
      "func @f(%a: f32[N], %x: f32[N]) -> (out: f32[N]) {\n"
      "  %10 = add %a,%x:f32[N]\n"
      "  %zz = mul %10, @p : f32[3]\n"
      "  %7:1 = scan %zz {ncarry=1,length=2}: f32[N] {\n"
      "  ^(%a2: f32[N]) :\n"
      "    yield %a2\n"
      "  }\n"
      "  return %7\n"
      "}\n";
  const char *want =
      "module @m\n"
      "\n"
      "dim N = 3\n"
      "\n"
      "param @p : f32[3] = uniform {a = -1.0, b = 1.0}\n"
      "\n"
      "func @f(%a: f32[N], %x: f32[N]) -> (out: f32[N]) {\n"
      "  %0 = add %a, %x : f32[N]\n"
      "  %1 = mul %0, @p : f32[3]\n"
      "  %2 = scan %1 {length = 2, ncarry = 1} : f32[N] {\n"
      "  ^(%a2: f32[N]):\n"
      "    yield %a2\n"
      "  }\n"
      "  return %2\n"
      "}\n";
  roundtrip(*state, in, want, false);
}

/* A module built with the builder API prints exactly. */
static void test_irtext_print_built(void **state) {
  Arena *a = *state;
  IrModule *m = ir_module_new("built");
  int b = ir_sym_add(m, "B", 32, true);
  IrType xt = ir_type_make(DT_F32, 2, (int64_t[]){32, 4});
  xt.sym[0] = (int16_t)b;
  SrcLoc none = {NULL, 0, 0, 0, 0};
  IrGlobal *w = ir_global_add(m, IRG_PARAM, "lin.w", ir_type_make(DT_F32, 2,
                              (int64_t[]){4, 3}), "glorot_uniform", none);
  ir_attr_set_float(m, &w->init_attrs, "gain", 2.0);
  IrFunc *f = ir_func_new(m, "forward");
  IrValue *x = ir_block_add_arg(m, f->body, xt, "x");
  IrValue *x2 = ir_block_add_arg(m, f->body, xt, "x");
  IrValue *anon = ir_block_add_arg(m, f->body, xt, NULL);
  IrValue *weird = ir_block_add_arg(m, f->body, xt, "9 lives");
  const char *err = NULL;
  int bad;
  IrValue *s = ir_build(m, f->body, IR_OP_ADD, 2, (IrValue *[]){x, x2}, NULL,
                        NULL, none, &err, &bad);
  assert_non_null(s);
  s = ir_build(m, f->body, IR_OP_SUB, 2, (IrValue *[]){s, anon}, NULL, NULL,
               none, &err, &bad);
  s = ir_build(m, f->body, IR_OP_MUL, 2, (IrValue *[]){s, weird}, NULL, NULL,
               none, &err, &bad);
  IrValue *y = ir_build(m, f->body, IR_OP_MATMUL, 2, (IrValue *[]){s, w->value},
                        NULL, NULL, none, &err, &bad);
  assert_non_null(y);
  ir_func_set_rets(m, f, 1, &y, (const char *[]){"logits"});
  assert_true(ir_verify(m, stderr));
  const char *want =
      "module @built\n"
      "\n"
      "dim B <= 32\n"
      "\n"
      "param @lin.w : f32[4,3] = glorot_uniform {gain = 2.0}\n"
      "\n"
      "func @forward(%x: f32[B,4], %x.1: f32[B,4], %arg2: f32[B,4], "
      "%_9_lives: f32[B,4]) -> (logits: f32[B,3]) {\n"
      "  %0 = add %x, %x.1 : f32[B,4]\n"
      "  %1 = sub %0, %arg2 : f32[B,4]\n"
      "  %2 = mul %1, %_9_lives : f32[B,4]\n"
      "  %3 = matmul %2, @lin.w : f32[B,3]\n"
      "  return %3\n"
      "}\n";
  char *got = print_str(a, m, false);
  assert_string_equal(got, want);
  roundtrip(a, got, NULL, false);
  ir_module_free(m);
}

/* A node removed by a pass disappears from the output and numbering stays
** dense. */
static void test_irtext_dense_after_remove(void **state) {
  Arena *a = *state;
  IrModule *m = parse_ok(a,
                         "func @f(%x: f32[2]) -> (y: f32[2]) {\n"
                         "  %0 = neg %x : f32[2]\n"
                         "  %1 = exp %x : f32[2]\n"
                         "  return %1\n"
                         "}\n");
  ir_node_remove(m->funcs->body->first);
  assert_string_equal(print_str(a, m, false),
                      "func @f(%x: f32[2]) -> (y: f32[2]) {\n"
                      "  %0 = exp %x : f32[2]\n"
                      "  return %0\n"
                      "}\n");
  ir_module_free(m);
}

/* ----------------------------------------------------------------- errors */

static void test_irtext_errors(void **state) {
  Arena *a = *state;
  const char *head = "func @f(%x: f32[4,5], %w: f32[5,6]) -> (y: f32[4,6]) {\n";
  parse_err(a, arena_printf(a, "%s  %%0 = matmull %%x, %%w : f32[4,6]\n", head),
            "t.nnir:2:8: error: unknown op 'matmull'");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%x, %%7 : f32[4,6]\n", head),
            "t.nnir:2:19: error: use of undefined value %7");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%x, %%w f32[4,6]\n", head),
            "t.nnir:2:22: error: expected ':'");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%x, %%w : f32[4,5]\n", head),
            "t.nnir:2:8: error: type mismatch: matmul gives f32[4,6], printed "
            "f32[4,5]");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%w, %%x : f32[4,6]\n", head),
            "t.nnir:2:19: error: matmul: inner dimensions differ (6 vs 4)");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%x, %%w : f33[4,6]\n", head),
            "t.nnir:2:24: error: unknown dtype 'f33'");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%x, @w : f32[4,6]\n", head),
            "t.nnir:2:19: error: use of undefined global @w");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%x, %%w : f32[4,6]\n"
                               "  %%0 = relu %%0 : f32[4,6]\n", head),
            "t.nnir:3:3: error: redefinition of value %0");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%x, %%w : f32[4,6]\n"
                               "  return %%x\n}\n", head),
            "t.nnir:4:1: error: return type mismatch: result 0 is f32[4,5], "
            "the signature says f32[4,6]");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%x, %%w : f32[4,6]\n"
                               "  return\n}\n", head),
            "t.nnir:4:1: error: return gives 0 values, the signature has 1");
  parse_err(a, arena_printf(a, "%s  %%0 = matmul %%x, %%w : f32[4,6]\n", head),
            "t.nnir:3:1: error: expected a node or 'return'");
  parse_err(a, arena_printf(a, "%s  %%0 = relu %%x {alpha = \"x} : f32[4,5]\n", head),
            "t.nnir:2:25: error: unterminated string");
  parse_err(a, arena_printf(a, "%s  %%0 = relu %%x {a = 1, a = 2} : f32[4,5]\n", head),
            "t.nnir:2:24: error: duplicate attribute 'a'");
  parse_err(a, arena_printf(a, "%s  %%0 = neg %%x, %%x : f32[4,5]\n", head),
            "t.nnir:2:8: error: neg: expected 1 operand, got 2");
  parse_err(a, "func @f(%x: f32[B]) -> () {\n",
            "t.nnir:1:17: error: unknown dimension symbol 'B'");
  parse_err(a, "dim B = 3\ndim B = 4\n",
            "t.nnir:2:5: error: redefinition of dimension 'B'");
  parse_err(a, "param @w : f32[2]\nstate @w : f32[2]\n",
            "t.nnir:2:7: error: redefinition of global @w");
  parse_err(a, "module @m\n\n  \x01",
            "t.nnir:3:3: error: unexpected character '\\x01'");
  parse_err(a, "module @m\nfoo\n",
            "t.nnir:2:1: error: expected 'dim', 'param', 'state', 'func' or "
            "'train'");
  parse_err(a, "func @f(%x: f32[99999999999999999999]) -> () {\n",
            "t.nnir:1:17: error: integer out of range");
  parse_err(a, "func @f(%x: f32[1,1,1,1,1,1,1,1,1]) -> () {\n",
            "t.nnir:1:33: error: too many dimensions (at most 8)");
  parse_err(a,
            "func @f(%x: f32[3]) -> (y: f32[3]) {\n"
            "  %0:2 = scan %x {ncarry = 1, length = 2} : f32[3], f32[2,4] {\n"
            "  ^(%c: f32[3]):\n"
            "    yield %c, %c\n"
            "  }\n",
            "t.nnir:2:10: error: scan: result 1 is f32[2,4], expected f32[2,3]");
  parse_err(a,
            "func @f(%x: f32[3]) -> (y: f32[3]) {\n"
            "  %0:2 = scan %x {ncarry = 1, length = 2} : f32[3], f32[2,3] {\n"
            "  ^(%c: f32[3]):\n"
            "    %1 = neg %c : f32[3]\n"
            "    yield %c, %c\n"
            "  }\n"
            "  return %1\n",
            "t.nnir:7:10: error: use of undefined value %1");
  parse_err(a,
            "func @f(%x: f32[3]) -> (y: f32[3]) {\n"
            "  %0:2 = scan %x {ncarry = 1, length = 2} : f32[3], f32[2,3] {\n"
            "  ^(%c: f32[3]):\n"
            "    yield %c, %c\n"
            "  }\n"
            "  return %0\n",
            "t.nnir:6:10: error: %0 has 2 results; use %0#0 ...");
  parse_err(a, "train @m {\n  lr = 0.1\n  lr = 0.2\n}\n",
            "t.nnir:3:3: error: duplicate setting 'lr'");
  roundtrip(a, "", NULL, false); /* the empty module */
}

/* Deep nesting is an error, not a stack overflow. */
static void test_irtext_depth_limit(void **state) {
  Arena *a = *state;
  char *s = arena_printf(a, "train {\n  x = ");
  for (int i = 0; i < 200; i++) s = arena_printf(a, "%sf {y = ", s);
  const char *err = NULL;
  assert_null(ir_parse("t.nnir", s, strlen(s), a, &err));
  assert_non_null(strstr(err, "error: nesting too deep"));
}

/* Every truncation and many single-byte mutations of valid modules parse
** or fail cleanly with a positioned error; whatever parses verifies and
** round-trips. */
static void test_irtext_mini_fuzz(void **state) {
  Arena *a = *state;
  const char *srcs[] = {mlp, scans, attrs};
  uint64_t rng = 88172645463325252ull;
  for (int k = 0; k < 3; k++) {
    size_t n = strlen(srcs[k]);
    char *buf = arena_alloc(a, n + 1, 1);
    for (size_t cut = 0; cut <= n; cut += 3) {
      const char *err = NULL;
      IrModule *m = ir_parse("t.nnir", srcs[k], cut, a, &err);
      if (m) {
        assert_true(ir_verify(m, stderr));
        ir_module_free(m);
      } else {
        assert_true(strncmp(err, "t.nnir:", 7) == 0);
      }
    }
    static const char bytes[] = "%@#:,{}[]()^=-<>\"\\ \n;0129.eaf";
    for (int it = 0; it < 600; it++) {
      memcpy(buf, srcs[k], n + 1);
      for (int j = 0; j < 3; j++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        buf[rng % n] = bytes[(rng >> 32) % (sizeof bytes - 1)];
      }
      const char *err = NULL;
      IrModule *m = ir_parse("t.nnir", buf, n, a, &err);
      if (m) {
        assert_true(ir_verify(m, NULL));
        char *p1 = print_str(a, m, false);
        IrModule *m2 = ir_parse("p.nnir", p1, strlen(p1), a, &err);
        if (!m2) fail_msg("printed text does not parse: %s\n%s", err, p1);
        assert_string_equal(p1, print_str(a, m2, false));
        ir_module_free(m2);
        ir_module_free(m);
      } else {
        assert_true(strncmp(err, "t.nnir:", 7) == 0);
      }
    }
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, arena_setup, arena_teardown)
      T(test_irtext_roundtrip_mlp),
      T(test_irtext_roundtrip_nested_scan),
      T(test_irtext_roundtrip_attrs),
      T(test_irtext_locs),
      T(test_irtext_canonical_form),
      T(test_irtext_print_built),
      T(test_irtext_dense_after_remove),
      T(test_irtext_errors),
      T(test_irtext_depth_limit),
      T(test_irtext_mini_fuzz),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

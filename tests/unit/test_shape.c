/*
** This file contains the unit tests of the shape rules (ir/shape.c): for
** every op of ops.def at least one accepted case with the exact result type
** and one rejected case with the exact message and operand at fault.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"

typedef struct St {
  IrModule *m;
  Arena *a;
} St;

static int arena_setup(void **state) {
  Arena *a = arena_new();
  St *s = ARENA_NEW(a, St);
  s->a = a;
  s->m = ir_module_new("t");
  ir_sym_add(s->m, "B", 128, true);
  ir_sym_add(s->m, "T", 16, false);
  *state = s;
  return 0;
}

static int arena_teardown(void **state) {
  St *s = *state;
  ir_module_free(s->m);
  arena_free(s->a);
  return 0;
}

/* A type from its text, e.g. "f32[B,784]" (B looked up in the module). */
static IrType ty(St *s, const char *txt) {
  const char *br = strchr(txt, '[');
  assert_non_null(br);
  char dt[8] = {0};
  memcpy(dt, txt, (size_t)(br - txt));
  DType d;
  assert_true(ir_dtype_parse(dt, &d));
  IrType t = ir_type_scalar(d);
  const char *p = br + 1;
  while (*p && *p != ']') {
    if (isdigit((unsigned char)*p) || *p == '-') {
      t.dim[t.rank++] = strtoll(p, (char **)&p, 10);
    } else {
      char name[16] = {0};
      int n = 0;
      while (isalnum((unsigned char)*p)) name[n++] = *p++;
      int sym = ir_sym_find(s->m, name);
      assert_true(sym >= 0);
      t.dim[t.rank] = s->m->syms[sym].value;
      t.sym[t.rank++] = (int16_t)sym;
    }
    if (*p == ',') p++;
  }
  return t;
}

typedef struct Res {
  int n;
  IrType t[4];
  const char *err;
  int bad;
} Res;

static Res infer_v(St *s, IrOp op, const IrAttrs *at, const char *given,
                   int n, va_list ap) {
  IrType args[8];
  Res r;
  memset(&r, 0, sizeof r);
  for (int i = 0; i < n; i++) args[i] = ty(s, va_arg(ap, const char *));
  if (given) r.t[0] = ty(s, given);
  r.n = ir_infer(s->m, op, n, args, at, r.t, 4, &r.err, &r.bad, s->a);
  return r;
}

/* Expect op(args...) to give the type `want` (OPF_TYPED: given = want). */
static void ok(St *s, IrOp op, const IrAttrs *at, const char *want, int n, ...) {
  va_list ap;
  va_start(ap, n);
  const char *given = (ir_op_info[op].flags & OPF_TYPED) ? want : NULL;
  Res r = infer_v(s, op, at, given, n, ap);
  va_end(ap);
  if (r.n != 1) fail_msg("%s: unexpected error: %s", ir_op_info[op].name, r.err);
  assert_string_equal(ir_type_str(s->a, s->m, &r.t[0]), want);
}

/* Expect op(args...) to fail with message msg on operand bad. */
static void bad(St *s, IrOp op, const IrAttrs *at, const char *given,
                const char *msg, int badarg, int n, ...) {
  va_list ap;
  va_start(ap, n);
  Res r = infer_v(s, op, at, given, n, ap);
  va_end(ap);
  if (r.n != 0) fail_msg("%s: accepted, expected '%s'", ir_op_info[op].name, msg);
  assert_string_equal(r.err, msg);
  assert_int_equal(r.bad, badarg);
}

static IrAttrs ints(St *s, const char *name, int n, ...) {
  IrAttrs at = {NULL, 0};
  int64_t v[16];
  va_list ap;
  va_start(ap, n);
  for (int i = 0; i < n; i++) v[i] = va_arg(ap, int);
  va_end(ap);
  ir_attr_set_ints(s->m, &at, name, n, v);
  return at;
}

static IrAttrs int1(St *s, const char *name, int64_t v) {
  IrAttrs at = {NULL, 0};
  ir_attr_set_int(s->m, &at, name, v);
  return at;
}

/* ------------------------------------------------------------------ tests */

static void test_shape_every_op_has_rule(void **state) {
  St *s = *state;
  /* An op without a rule answers "no shape rule"; scan answers its own. */
  for (int op = 0; op < IR_OP_COUNT; op++) {
    IrType args[4], res[4];
    const char *err = NULL;
    int badarg;
    int n = ir_op_info[op].min_args;
    for (int i = 0; i < n; i++) args[i] = ty(s, "f32[2,2]");
    res[0] = ty(s, "f32[2,2]");
    int r = ir_infer(s->m, (IrOp)op, n, args, NULL, res, 4, &err, &badarg, s->a);
    if (r == 0 && strcmp(err, "no shape rule") == 0)
      fail_msg("op %s has no shape rule", ir_op_info[op].name);
  }
}

static void test_shape_arity(void **state) {
  St *s = *state;
  bad(s, IR_OP_ADD, NULL, NULL, "expected 2 operands, got 1", -1, 1, "f32[2]");
  bad(s, IR_OP_NEG, NULL, NULL, "expected 1 operand, got 2", -1, 2, "f32[2]",
      "f32[2]");
  bad(s, IR_OP_CONV2D, NULL, NULL, "expected 2 to 3 operands, got 1", -1, 1,
      "f32[1,1,4,4]");
  bad(s, IR_OP_CONCAT, NULL, NULL, "expected at least 1 operand, got 0", -1, 0);
}

static void test_shape_typed(void **state) {
  St *s = *state;
  IrAttrs v = {NULL, 0};
  ir_attr_set_float(s->m, &v, "value", 255.0);
  ok(s, IR_OP_CONSTANT, &v, "f32[]", 0);
  ok(s, IR_OP_CONSTANT, &v, "i32[B,3]", 0);
  bad(s, IR_OP_CONSTANT, NULL, "f32[]", "missing attribute 'value'", -1, 0);
  ok(s, IR_OP_CAUSAL_MASK, NULL, "f32[T,T]", 0);
  bad(s, IR_OP_CAUSAL_MASK, NULL, "f32[3,4]",
      "result must be a square matrix [T,T], got [3,4]", -1, 0);
  bad(s, IR_OP_CAUSAL_MASK, NULL, "i32[3,3]",
      "expected a floating-point result, got i32", -1, 0);
  ok(s, IR_OP_RAND, NULL, "f32[B,7]", 0);
  bad(s, IR_OP_RAND, NULL, "i64[3]", "expected a floating-point result, got i64",
      -1, 0);
  IrAttrs ax = int1(s, "axis", 1);
  ok(s, IR_OP_IOTA, &ax, "i32[4,5]", 0);
  bad(s, IR_OP_IOTA, &ax, "i32[4]", "axis 1 is out of range for rank 1", -1, 0);
  ok(s, IR_OP_RESHAPE, NULL, "f32[B,784]", 1, "f32[B,28,28]");
  bad(s, IR_OP_RESHAPE, NULL, "f32[3,5]", "element counts differ (12 vs 15)", 0,
      1, "f32[3,4]");
  bad(s, IR_OP_RESHAPE, NULL, "i32[12]", "dtype changes from f32 to i32", 0, 1,
      "f32[3,4]");
  ok(s, IR_OP_BROADCAST, NULL, "f32[5,3,4]", 1, "f32[3,1]");
  bad(s, IR_OP_BROADCAST, NULL, "f32[3,4]",
      "cannot broadcast dimension 0 of size 2 to 3", 0, 1, "f32[2,4]");
  bad(s, IR_OP_BROADCAST, NULL, "f32[4]", "cannot broadcast rank 2 to rank 1",
      0, 1, "f32[1,4]");
  ok(s, IR_OP_CAST, NULL, "f32[B,28,28]", 1, "u8[B,28,28]");
  bad(s, IR_OP_CAST, NULL, "f32[3,2]", "shapes differ ([2,3] vs [3,2])", 0, 1,
      "u8[2,3]");
  bad(s, IR_OP_CAST, NULL, "f32[-1]", "result dimension 0 has invalid size -1",
      -1, 1, "u8[2]");
}

static void test_shape_unary(void **state) {
  St *s = *state;
  static const IrOp float_ops[] = {
      IR_OP_EXP, IR_OP_LOG, IR_OP_SQRT, IR_OP_RSQRT, IR_OP_SIN, IR_OP_COS,
      IR_OP_ERF, IR_OP_STEP, IR_OP_SIGMOID, IR_OP_TANH, IR_OP_RELU,
      IR_OP_RELU6, IR_OP_LEAKY_RELU, IR_OP_ELU, IR_OP_SELU, IR_OP_GELU,
      IR_OP_GELU_TANH, IR_OP_SILU, IR_OP_MISH, IR_OP_SOFTPLUS, IR_OP_SOFTSIGN,
      IR_OP_HARD_SIGMOID, IR_OP_HARD_SWISH};
  for (size_t i = 0; i < sizeof float_ops / sizeof float_ops[0]; i++) {
    ok(s, float_ops[i], NULL, "f32[B,3]", 1, "f32[B,3]");
    ok(s, float_ops[i], NULL, "f16[]", 1, "f16[]");
    bad(s, float_ops[i], NULL, NULL, "expected a floating-point tensor, got i32",
        0, 1, "i32[2]");
  }
  static const IrOp num_ops[] = {IR_OP_NEG, IR_OP_ABS, IR_OP_SIGN, IR_OP_CLAMP};
  for (size_t i = 0; i < 4; i++) {
    ok(s, num_ops[i], NULL, "i32[7]", 1, "i32[7]");
    ok(s, num_ops[i], NULL, "f64[2,B]", 1, "f64[2,B]");
    bad(s, num_ops[i], NULL, NULL, "expected a numeric tensor, got bool", 0, 1,
        "bool[2]");
  }
  IrAttrs c = {NULL, 0};
  ir_attr_set_float(s->m, &c, "lo", 1.0);
  ir_attr_set_float(s->m, &c, "hi", 0.5);
  bad(s, IR_OP_CLAMP, &c, NULL, "lo 1 is greater than hi 0.5", -1, 1, "f32[2]");
  ok(s, IR_OP_NOT, NULL, "bool[3]", 1, "bool[3]");
  bad(s, IR_OP_NOT, NULL, NULL, "expected a bool tensor, got f32", 0, 1, "f32[3]");
}

static void test_shape_glu(void **state) {
  St *s = *state;
  IrOp ops[] = {IR_OP_GLU, IR_OP_SWIGLU, IR_OP_GEGLU};
  IrAttrs ax0 = int1(s, "axis", 0);
  for (int i = 0; i < 3; i++) {
    ok(s, ops[i], NULL, "f32[B,4]", 1, "f32[B,8]");
    ok(s, ops[i], &ax0, "f32[3,5]", 1, "f32[6,5]");
    bad(s, ops[i], NULL, NULL, "axis 1 has odd size 5", 0, 1, "f32[2,5]");
    bad(s, ops[i], &ax0, NULL, "axis 0 is out of range for rank 0", 0, 1,
        "f32[]");
  }
}

static void test_shape_binary(void **state) {
  St *s = *state;
  for (int op = IR_OP_ADD; op <= IR_OP_MINIMUM; op++) {
    ok(s, op, NULL, "f32[B,3]", 2, "f32[B,3]", "f32[]");
    ok(s, op, NULL, "f32[4,B,3]", 2, "f32[4,1,3]", "f32[B,1]");
    bad(s, op, NULL, NULL, "shapes cannot be broadcast (dimension 1: 3 vs 4)", 1,
        2, "f32[2,3]", "f32[4]");
    bad(s, op, NULL, NULL, "operand dtypes differ (f32 vs i32)", 1, 2, "f32[2]",
        "i32[2]");
    bad(s, op, NULL, NULL, "expected a numeric tensor, got bool", 0, 2,
        "bool[2]", "bool[2]");
  }
  /* the non-1 side's symbol is kept, whichever operand it is on */
  ok(s, IR_OP_ADD, NULL, "i32[B,5]", 2, "i32[1,5]", "i32[B,1]");
  for (int op = IR_OP_EQ; op <= IR_OP_GE; op++) {
    ok(s, op, NULL, "bool[2,3]", 2, "i32[2,3]", "i32[3]");
    bad(s, op, NULL, NULL, "shapes cannot be broadcast (dimension 0: 2 vs 3)", 1,
        2, "f32[2]", "f32[3]");
  }
  ok(s, IR_OP_EQ, NULL, "bool[2]", 2, "bool[2]", "bool[2]");
  bad(s, IR_OP_LT, NULL, NULL, "expected a numeric tensor, got bool", 0, 2,
      "bool[2]", "bool[2]");
  ok(s, IR_OP_AND, NULL, "bool[4,2]", 2, "bool[4,1]", "bool[2]");
  ok(s, IR_OP_OR, NULL, "bool[2]", 2, "bool[2]", "bool[]");
  bad(s, IR_OP_OR, NULL, NULL, "expected a bool tensor, got f32", 0, 2, "f32[2]",
      "f32[2]");
  bad(s, IR_OP_AND, NULL, NULL, "expected a bool tensor, got i32", 0, 2, "i32[2]",
      "i32[2]");
  bad(s, IR_OP_AND, NULL, NULL, "shapes cannot be broadcast (dimension 0: 2 vs 3)",
      1, 2, "bool[2]", "bool[3]");
  ok(s, IR_OP_WHERE, NULL, "f32[3,4,5]", 3, "bool[4,1]", "f32[3,1,5]", "f32[5]");
  bad(s, IR_OP_WHERE, NULL, NULL, "expected a bool tensor, got f32", 0, 3,
      "f32[2]", "f32[2]", "f32[2]");
  bad(s, IR_OP_WHERE, NULL, NULL, "operand dtypes differ (f32 vs f64)", 2, 3,
      "bool[2]", "f32[2]", "f64[2]");
  bad(s, IR_OP_WHERE, NULL, NULL,
      "shapes cannot be broadcast (dimension 0: 3 vs 2)", 0, 3, "bool[3]",
      "f32[2]", "f32[2]");
}

static void test_shape_reduce(void **state) {
  St *s = *state;
  IrAttrs a1 = ints(s, "axes", 1, 1);
  IrAttrs keep = ints(s, "axes", 2, 0, -1);
  ir_attr_set_bool(s->m, &keep, "keepdims", true);
  IrAttrs dup = ints(s, "axes", 2, 1, -1);
  IrAttrs out = ints(s, "axes", 1, 2);
  for (int op = IR_OP_SUM; op <= IR_OP_VAR; op++) {
    ok(s, op, NULL, "f32[]", 1, "f32[B,3,4]");
    ok(s, op, &a1, "f32[B,4]", 1, "f32[B,3,4]");
    ok(s, op, &keep, "f32[1,3,1]", 1, "f32[B,3,4]");
    bad(s, op, &dup, NULL, "axis 1 appears twice", 0, 1, "f32[3,4]");
    bad(s, op, &out, NULL, "axis 2 is out of range for rank 2", 0, 1, "f32[3,4]");
  }
  ok(s, IR_OP_SUM, &a1, "i32[2]", 1, "i32[2,3]");
  bad(s, IR_OP_MEAN, NULL, NULL, "expected a floating-point tensor, got i32", 0,
      1, "i32[2]");
  bad(s, IR_OP_VAR, NULL, NULL, "expected a floating-point tensor, got i64", 0,
      1, "i64[2]");
  ok(s, IR_OP_ARGMAX, NULL, "i32[B]", 1, "f32[B,10]");
  IrAttrs ak = int1(s, "axis", 0);
  ir_attr_set_bool(s->m, &ak, "keepdims", true);
  ok(s, IR_OP_ARGMAX, &ak, "i32[1,10]", 1, "f32[B,10]");
  IrAttrs a5 = int1(s, "axis", 5);
  bad(s, IR_OP_ARGMAX, &a5, NULL, "axis 5 is out of range for rank 2", 0, 1,
      "f32[2,3]");
}

static void test_shape_transpose_concat_stack(void **state) {
  St *s = *state;
  IrAttrs p = ints(s, "perm", 3, 2, 0, 1);
  ok(s, IR_OP_TRANSPOSE, &p, "f32[4,B,3]", 1, "f32[B,3,4]");
  IrAttrs pd = ints(s, "perm", 3, 0, 0, 1);
  bad(s, IR_OP_TRANSPOSE, &pd, NULL, "perm is not a permutation of 3 axes", -1,
      1, "f32[2,3,4]");
  bad(s, IR_OP_TRANSPOSE, &p, NULL, "perm has 3 entries for rank 2", 0, 1,
      "f32[2,3]");
  bad(s, IR_OP_TRANSPOSE, NULL, NULL, "missing attribute 'perm'", -1, 1,
      "f32[2,3]");
  IrAttrs a1 = int1(s, "axis", 1), am1 = int1(s, "axis", -1);
  ok(s, IR_OP_CONCAT, &a1, "f32[B,7]", 3, "f32[B,3]", "f32[B,1]", "f32[B,3]");
  ok(s, IR_OP_CONCAT, &am1, "f32[B,3]", 1, "f32[B,3]");
  bad(s, IR_OP_CONCAT, &a1, NULL, "dimension 0 differs (2 vs 3)", 1, 2,
      "f32[2,3]", "f32[3,3]");
  bad(s, IR_OP_CONCAT, &a1, NULL, "operand dtypes differ (f32 vs i32)", 1, 2,
      "f32[2,3]", "i32[2,3]");
  bad(s, IR_OP_CONCAT, &a1, NULL, "ranks differ (2 vs 1)", 1, 2, "f32[2,3]",
      "f32[2]");
  IrAttrs a2 = int1(s, "axis", 2);
  bad(s, IR_OP_CONCAT, &a2, NULL, "axis 2 is out of range for rank 2", 0, 2,
      "f32[2,3]", "f32[2,3]");
  ok(s, IR_OP_STACK, &a1, "f32[B,2,3]", 2, "f32[B,3]", "f32[B,3]");
  ok(s, IR_OP_STACK, &a2, "f32[B,3,3]", 3, "f32[B,3]", "f32[B,3]", "f32[B,3]");
  IrAttrs a3 = int1(s, "axis", 3);
  bad(s, IR_OP_STACK, &a3, NULL, "axis 3 is out of range for rank 3", 0, 1,
      "f32[2,3]");
  bad(s, IR_OP_STACK, &a1, NULL, "shapes differ ([2,3] vs [2,4])", 1, 2,
      "f32[2,3]", "f32[2,4]");
}

static IrAttrs slice_attrs(St *s, int axis, int start, int end, int step) {
  IrAttrs at = int1(s, "axis", axis);
  ir_attr_set_int(s->m, &at, "start", start);
  ir_attr_set_int(s->m, &at, "end", end);
  ir_attr_set_int(s->m, &at, "step", step);
  return at;
}

static void test_shape_slice_pad(void **state) {
  St *s = *state;
  IrAttrs a = slice_attrs(s, 1, 1, 8, 3); /* 1,4,7 */
  ok(s, IR_OP_SLICE, &a, "f32[B,3]", 1, "f32[B,10]");
  a = slice_attrs(s, -1, -3, 100, 1); /* clamp */
  ok(s, IR_OP_SLICE, &a, "f32[B,3]", 1, "f32[B,10]");
  a = slice_attrs(s, 0, 0, 128, 1); /* the whole axis keeps the symbol */
  ok(s, IR_OP_SLICE, &a, "f32[B,10]", 1, "f32[B,10]");
  a = slice_attrs(s, 0, 5, 2, 1);
  ok(s, IR_OP_SLICE, &a, "f32[0]", 1, "f32[10]");
  a = slice_attrs(s, 0, 0, 2, 0);
  bad(s, IR_OP_SLICE, &a, NULL, "step must be positive, got 0", -1, 1, "f32[10]");
  a = int1(s, "axis", 0);
  bad(s, IR_OP_SLICE, &a, NULL, "missing attribute 'start'", -1, 1, "f32[10]");
  IrAttrs p = ints(s, "pads", 4, 1, 2, 0, 0);
  ok(s, IR_OP_PAD, &p, "f32[5,B]", 1, "f32[2,B]");
  p = ints(s, "pads", 4, 1, 2, 0, 3);
  ok(s, IR_OP_PAD, &p, "f32[5,131]", 1, "f32[2,B]");
  ok(s, IR_OP_PAD, &p, "f32[5,7]", 1, "f32[2,4]");
  bad(s, IR_OP_PAD, &p, NULL, "pads has 4 entries, expected 2 (2 per axis)", -1,
      1, "f32[2]");
  p = ints(s, "pads", 2, 0, -1);
  bad(s, IR_OP_PAD, &p, NULL, "invalid padding -1 on axis 0", -1, 1, "f32[2]");
}

static void test_shape_one_hot_gather(void **state) {
  St *s = *state;
  IrAttrs c = int1(s, "classes", 10);
  ok(s, IR_OP_ONE_HOT, &c, "f32[B,10]", 1, "i32[B]");
  ok(s, IR_OP_ONE_HOT, &c, "f32[10]", 1, "u8[]");
  bad(s, IR_OP_ONE_HOT, &c, NULL, "expected an integer tensor, got f32", 0, 1,
      "f32[3]");
  IrAttrs c0 = int1(s, "classes", 0);
  bad(s, IR_OP_ONE_HOT, &c0, NULL, "classes must be at least 1, got 0", -1, 1,
      "i32[3]");
  ok(s, IR_OP_GATHER, NULL, "f32[B,T,64]", 2, "f32[65,64]", "i32[B,T]");
  ok(s, IR_OP_GATHER, NULL, "f16[]", 2, "f16[65]", "i64[]");
  bad(s, IR_OP_GATHER, NULL, NULL, "expected an integer tensor, got f32", 1, 2,
      "f32[65,64]", "f32[3]");
  bad(s, IR_OP_GATHER, NULL, NULL, "expected a table of rank >= 1, got a scalar",
      0, 2, "f32[]", "i32[3]");
}

static void test_shape_matmul(void **state) {
  St *s = *state;
  ok(s, IR_OP_MATMUL, NULL, "f32[B,512]", 2, "f32[B,784]", "f32[784,512]");
  ok(s, IR_OP_MATMUL, NULL, "f32[]", 2, "f32[3]", "f32[3]");
  ok(s, IR_OP_MATMUL, NULL, "f32[2]", 2, "f32[2,3]", "f32[3]");
  ok(s, IR_OP_MATMUL, NULL, "f32[4]", 2, "f32[3]", "f32[3,4]");
  ok(s, IR_OP_MATMUL, NULL, "f32[5,B,2,4]", 2, "f32[B,2,3]", "f32[5,1,3,4]");
  ok(s, IR_OP_MATMUL, NULL, "f32[B,2]", 2, "f32[B,2,3]", "f32[3]");
  bad(s, IR_OP_MATMUL, NULL, NULL, "inner dimensions differ (784 vs 512)", 1, 2,
      "f32[B,784]", "f32[512,256]");
  bad(s, IR_OP_MATMUL, NULL, NULL,
      "batch dimensions cannot be broadcast (dimension 0: 2 vs 3)", 1, 2,
      "f32[2,4,5]", "f32[3,5,6]");
  bad(s, IR_OP_MATMUL, NULL, NULL, "expected a tensor of rank >= 1, got a scalar",
      0, 2, "f32[]", "f32[3]");
  bad(s, IR_OP_MATMUL, NULL, NULL, "operand dtypes differ (f32 vs f16)", 1, 2,
      "f32[2,3]", "f16[3,2]");
}

static void test_shape_softmax_attention(void **state) {
  St *s = *state;
  IrAttrs a0 = int1(s, "axis", 0), a2 = int1(s, "axis", 2);
  ok(s, IR_OP_SOFTMAX, NULL, "f32[B,10]", 1, "f32[B,10]");
  ok(s, IR_OP_LOG_SOFTMAX, &a0, "f32[B,10]", 1, "f32[B,10]");
  bad(s, IR_OP_SOFTMAX, &a2, NULL, "axis 2 is out of range for rank 2", 0, 1,
      "f32[3,4]");
  bad(s, IR_OP_LOG_SOFTMAX, NULL, NULL, "expected a floating-point tensor, got i32",
      0, 1, "i32[3]");
  ok(s, IR_OP_ATTENTION, NULL, "f32[B,4,T,32]", 3, "f32[B,4,T,64]",
     "f32[B,4,20,64]", "f32[B,4,20,32]");
  ok(s, IR_OP_ATTENTION, NULL, "f32[B,T,8]", 4, "f32[B,T,8]", "f32[B,T,8]",
     "f32[B,T,8]", "f32[T,T]");
  bad(s, IR_OP_ATTENTION, NULL, NULL, "key dimensions differ (64 vs 32)", 1, 3,
      "f32[2,5,64]", "f32[2,6,32]", "f32[2,6,32]");
  bad(s, IR_OP_ATTENTION, NULL, NULL, "key and value lengths differ (6 vs 7)", 2,
      3, "f32[2,5,8]", "f32[2,6,8]", "f32[2,7,8]");
  bad(s, IR_OP_ATTENTION, NULL, NULL, "batch dimension 0 differs (2 vs 3)", 1, 3,
      "f32[2,5,8]", "f32[3,6,8]", "f32[3,6,8]");
  bad(s, IR_OP_ATTENTION, NULL, NULL,
      "mask cannot be broadcast (dimension 2: 5 vs 6)", 3, 4, "f32[2,5,8]",
      "f32[2,6,8]", "f32[2,6,8]", "f32[5,5]");
}

static IrAttrs conv_attrs(St *s, int stride, int pad, int opad) {
  IrAttrs at = ints(s, "stride", 1, stride);
  ir_attr_set_ints(s->m, &at, "padding", 1, (int64_t[]){pad});
  if (opad >= 0) ir_attr_set_ints(s->m, &at, "output_padding", 1, (int64_t[]){opad});
  return at;
}

static void test_shape_conv(void **state) {
  St *s = *state;
  IrAttrs c = conv_attrs(s, 2, 1, -1);
  /* algorithms.md section 10: conv (8 or 7, k3, s2, p1) -> 4 */
  ok(s, IR_OP_CONV2D, &c, "f32[B,16,4,4]", 2, "f32[B,3,8,8]", "f32[16,3,3,3]");
  ok(s, IR_OP_CONV2D, &c, "f32[B,16,4,4]", 3, "f32[B,3,7,7]", "f32[16,3,3,3]",
     "f32[16]");
  ok(s, IR_OP_CONV2D, NULL, "f32[1,8,26,24]", 2, "f32[1,3,28,28]",
     "f32[8,3,3,5]");
  IrAttrs g = int1(s, "groups", 2);
  ir_attr_set_ints(s->m, &g, "dilation", 2, (int64_t[]){2, 1});
  ok(s, IR_OP_CONV2D, &g, "f32[1,6,6,8]", 2, "f32[1,4,10,10]", "f32[6,2,3,3]");
  bad(s, IR_OP_CONV2D, &g, NULL, "groups 2 does not divide input channels 3", 0,
      2, "f32[1,3,10,10]", "f32[6,2,3,3]");
  bad(s, IR_OP_CONV2D, &g, NULL, "groups 2 does not divide output channels 5", 1,
      2, "f32[1,4,10,10]", "f32[5,2,3,3]");
  bad(s, IR_OP_CONV2D, NULL, NULL,
      "input channels 3 do not match weight's 1*groups (1)", 1, 2,
      "f32[1,3,8,8]", "f32[4,1,3,3]");
  bad(s, IR_OP_CONV2D, NULL, NULL, "bias shape [5] does not match 4 output channels",
      2, 3, "f32[1,3,8,8]", "f32[4,3,3,3]", "f32[5]");
  bad(s, IR_OP_CONV2D, NULL, NULL,
      "spatial dimension 0: output size -2 is not positive (input 2, kernel 5)",
      0, 2, "f32[1,3,2,8]", "f32[4,3,5,3]");
  bad(s, IR_OP_CONV2D, NULL, NULL, "expected a rank-4 tensor, got rank 3", 0, 2,
      "f32[3,8,8]", "f32[4,3,3,3]");
  IrAttrs s3 = ints(s, "stride", 3, 1, 1, 1);
  bad(s, IR_OP_CONV2D, &s3, NULL, "stride has 3 values, expected 1 or 2", -1, 2,
      "f32[1,3,8,8]", "f32[4,3,3,3]");
  IrAttrs s0 = ints(s, "stride", 1, 0);
  bad(s, IR_OP_CONV2D, &s0, NULL, "stride must be positive, got 0", -1, 2,
      "f32[1,3,8,8]", "f32[4,3,3,3]");
  ok(s, IR_OP_CONV1D, &c, "f32[B,8,50]", 3, "f32[B,4,100]", "f32[8,4,3]",
     "f32[8]");
  bad(s, IR_OP_CONV1D, NULL, NULL, "expected a rank-3 tensor, got rank 4", 0, 2,
      "f32[1,4,10,10]", "f32[8,4,3]");
}

static void test_shape_conv_transpose(void **state) {
  St *s = *state;
  /* algorithms.md section 10 oracles */
  IrAttrs c = conv_attrs(s, 2, 1, 1);
  ok(s, IR_OP_CONV_TRANSPOSE2D, &c, "f32[B,8,8,8]", 2, "f32[B,16,4,4]",
     "f32[16,8,3,3]");
  c = conv_attrs(s, 2, 1, -1);
  ok(s, IR_OP_CONV_TRANSPOSE2D, &c, "f32[B,8,8,8]", 3, "f32[B,16,4,4]",
     "f32[16,8,4,4]", "f32[8]");
  ok(s, IR_OP_CONV_TRANSPOSE2D, &c, "f32[1,8,13,13]", 2, "f32[1,16,7,7]",
     "f32[16,8,3,3]");
  IrAttrs g = int1(s, "groups", 2);
  ok(s, IR_OP_CONV_TRANSPOSE2D, &g, "f32[1,6,6,6]", 2, "f32[1,4,4,4]",
     "f32[4,3,3,3]");
  c = conv_attrs(s, 2, 1, 2);
  bad(s, IR_OP_CONV_TRANSPOSE2D, &c, NULL,
      "output_padding 2 must be smaller than stride or dilation (2)", -1, 2,
      "f32[1,16,4,4]", "f32[16,8,3,3]");
  bad(s, IR_OP_CONV_TRANSPOSE2D, NULL, NULL,
      "input channels 16 do not match weight's 8", 1, 2, "f32[1,16,4,4]",
      "f32[8,8,3,3]");
  c = conv_attrs(s, 1, 3, -1);
  bad(s, IR_OP_CONV_TRANSPOSE2D, &c, NULL,
      "spatial dimension 0: output size -3 is not positive (input 1, kernel 3)",
      0, 2, "f32[1,2,1,1]", "f32[2,2,3,3]");
}

static void test_shape_pool(void **state) {
  St *s = *state;
  IrAttrs k = ints(s, "kernel", 1, 2);
  for (int op = IR_OP_MAX_POOL2D; op <= IR_OP_AVG_POOL2D; op++) {
    ok(s, op, &k, "f32[B,3,14,14]", 1, "f32[B,3,28,28]");
    ok(s, op, &k, "f32[B,3,3,2]", 1, "f32[B,3,7,5]");
    bad(s, op, NULL, NULL, "missing attribute 'kernel'", -1, 1, "f32[1,3,8,8]");
    bad(s, op, &k, NULL, "expected a rank-4 tensor, got rank 2", 0, 1,
        "f32[8,8]");
  }
  IrAttrs k3 = ints(s, "kernel", 1, 3);
  ir_attr_set_ints(s->m, &k3, "stride", 1, (int64_t[]){2});
  ir_attr_set_ints(s->m, &k3, "padding", 1, (int64_t[]){1});
  ok(s, IR_OP_MAX_POOL2D, &k3, "f32[1,64,56,56]", 1, "f32[1,64,112,112]");
  IrAttrs kd = ints(s, "kernel", 1, 3);
  ir_attr_set_ints(s->m, &kd, "dilation", 1, (int64_t[]){2});
  ir_attr_set_ints(s->m, &kd, "stride", 1, (int64_t[]){1});
  ok(s, IR_OP_MAX_POOL2D, &kd, "f32[1,2,6,3]", 1, "f32[1,2,10,7]");
  bad(s, IR_OP_AVG_POOL2D, &kd, NULL, "avg_pool2d takes no dilation", -1, 1,
      "f32[1,2,10,7]");
  IrAttrs pbig = ints(s, "kernel", 1, 3);
  ir_attr_set_ints(s->m, &pbig, "padding", 1, (int64_t[]){2});
  bad(s, IR_OP_MAX_POOL2D, &pbig, NULL,
      "padding 2 must be at most half the kernel 3", -1, 1, "f32[1,1,8,8]");
  IrAttrs k5 = ints(s, "kernel", 1, 5);
  bad(s, IR_OP_AVG_POOL2D, &k5, NULL,
      "spatial dimension 0: output size 0 is not positive (input 4, kernel 5)",
      0, 1, "f32[1,1,4,8]");
  bad(s, IR_OP_AVG_POOL2D, &k, NULL, "expected a floating-point tensor, got i32",
      0, 1, "i32[1,1,4,4]");
}

static void test_shape_upsample_pixel_shuffle(void **state) {
  St *s = *state;
  IrAttrs sz = ints(s, "size", 2, 5, 8);
  ok(s, IR_OP_UPSAMPLE_NEAREST, &sz, "f32[B,3,5,8]", 1, "f32[B,3,3,4]");
  ir_attr_set_bool(s->m, &sz, "align_corners", true);
  ok(s, IR_OP_UPSAMPLE_BILINEAR, &sz, "f32[B,3,5,8]", 1, "f32[B,3,2,2]");
  IrAttrs s1 = ints(s, "size", 1, 4);
  bad(s, IR_OP_UPSAMPLE_NEAREST, &s1, NULL, "size has 1 values, expected 2", -1,
      1, "f32[1,1,2,2]");
  bad(s, IR_OP_UPSAMPLE_BILINEAR, NULL, NULL, "missing attribute 'size'", -1, 1,
      "f32[1,1,2,2]");
  IrAttrs r = int1(s, "r", 2);
  ok(s, IR_OP_PIXEL_SHUFFLE, &r, "f32[B,3,8,10]", 1, "f32[B,12,4,5]");
  ok(s, IR_OP_PIXEL_UNSHUFFLE, &r, "f32[B,12,4,5]", 1, "f32[B,3,8,10]");
  bad(s, IR_OP_PIXEL_SHUFFLE, &r, NULL, "channels 6 are not divisible by r^2 = 4",
      0, 1, "f32[1,6,4,4]");
  bad(s, IR_OP_PIXEL_UNSHUFFLE, &r, NULL, "height 5 is not divisible by r = 2",
      0, 1, "f32[1,3,5,4]");
  bad(s, IR_OP_PIXEL_UNSHUFFLE, &r, NULL, "width 3 is not divisible by r = 2", 0,
      1, "f32[1,3,4,3]");
}

static void test_shape_losses(void **state) {
  St *s = *state;
  for (int op = IR_OP_CROSS_ENTROPY; op <= IR_OP_NLL; op++) {
    ok(s, op, NULL, "f32[]", 2, "f32[B,10]", "i32[B]");
    ok(s, op, NULL, "f16[]", 2, "f16[B,T,65]", "i64[B,T]");
    bad(s, op, NULL, NULL,
        "labels do not match the logits' leading shape (dimension 0: 5 vs 4)", 1,
        2, "f32[4,10]", "i32[5]");
    bad(s, op, NULL, NULL, "labels have rank 2, expected 1 (the logits' rank - 1)",
        1, 2, "f32[4,10]", "i32[4,10]");
    bad(s, op, NULL, NULL, "expected an integer tensor, got f32", 1, 2,
        "f32[4,10]", "f32[4]");
  }
  IrAttrs ls = {NULL, 0};
  ir_attr_set_float(s->m, &ls, "label_smoothing", 1.0);
  bad(s, IR_OP_CROSS_ENTROPY, &ls, NULL,
      "label_smoothing must be in [0, 1), got 1", -1, 2, "f32[4,10]", "i32[4]");
  ok(s, IR_OP_SOFT_ACCURACY, NULL, "f32[]", 2, "f32[B,10]", "i32[B]");
  ok(s, IR_OP_SOFT_ACCURACY, NULL, "f32[]", 2, "f32[B]", "i32[B]");
  bad(s, IR_OP_SOFT_ACCURACY, NULL, NULL, "expected a floating-point tensor, got i32",
      0, 2, "i32[4,10]", "i32[4]");
  for (int op = IR_OP_BCE_WITH_LOGITS; op <= IR_OP_HUBER; op++) {
    ok(s, op, NULL, "f32[]", 2, "f32[B,3]", "f32[B,3]");
    bad(s, op, NULL, NULL, "shapes differ ([2,3] vs [3,2])", 1, 2, "f32[2,3]",
        "f32[3,2]");
    bad(s, op, NULL, NULL, "operand dtypes differ (f32 vs i32)", 1, 2, "f32[3]",
        "i32[3]");
  }
  IrAttrs d = {NULL, 0};
  ir_attr_set_float(s->m, &d, "delta", 0.0);
  bad(s, IR_OP_HUBER, &d, NULL, "delta must be positive, got 0", -1, 2, "f32[3]",
      "f32[3]");
  ok(s, IR_OP_SOFT_F1, NULL, "f32[]", 2, "f32[B]", "i32[B]");
  ok(s, IR_OP_SOFT_F1, NULL, "f32[]", 2, "f32[B,5]", "i32[B]");
  bad(s, IR_OP_SOFT_F1, NULL, NULL, "expected logits [N] or [N,C], got rank 3", 0,
      2, "f32[2,3,4]", "i32[2,3]");
}

static void test_shape_metrics(void **state) {
  St *s = *state;
  for (int op = IR_OP_ACCURACY; op <= IR_OP_F1; op++) {
    ok(s, op, NULL, "f32[]", 2, "f32[B,10]", "i32[B]");
    ok(s, op, NULL, "f32[]", 2, "f16[B]", "i32[B]");
    bad(s, op, NULL, NULL, "shapes differ ([4] vs [5])", 1, 2, "f32[4]",
        "i32[5]");
    bad(s, op, NULL, NULL,
        "labels do not match the logits' leading shape (dimension 0: 3 vs 4)",
        1, 2, "f32[4,10]", "i32[3]");
  }
  ok(s, IR_OP_TOP_K, NULL, "f32[]", 2, "f32[B,10]", "i32[B]");
  IrAttrs k = int1(s, "k", 11);
  bad(s, IR_OP_TOP_K, &k, NULL, "k 11 exceeds the number of classes 10", 0, 2,
      "f32[4,10]", "i32[4]");
  bad(s, IR_OP_TOP_K, NULL, NULL,
      "labels have rank 1, expected 0 (the logits' rank - 1)", 1, 2, "f32[4]",
      "i32[4]");
}

static void test_shape_scan_not_inferred(void **state) {
  St *s = *state;
  bad(s, IR_OP_SCAN, NULL, NULL, "scan is typed by its builder", -1, 1, "f32[2]");
}

static void test_shape_broadcast_axis_helpers(void **state) {
  St *s = *state;
  IrType a = ty(s, "f32[B,1,3]"), b = ty(s, "f32[4,1]"), o;
  assert_true(ir_broadcast(&a, &b, &o));
  assert_string_equal(ir_type_str(s->a, s->m, &o), "f32[B,4,3]");
  assert_string_equal(ir_type_str(s->a, NULL, &o), "f32[128,4,3]");
  b = ty(s, "f32[2,4]");
  assert_false(ir_broadcast(&a, &b, &o));
  int ax = -9;
  assert_true(ir_axis(-1, 3, &ax));
  assert_int_equal(ax, 2);
  assert_true(ir_axis(0, 1, &ax));
  assert_int_equal(ax, 0);
  assert_false(ir_axis(3, 3, &ax));
  assert_false(ir_axis(-4, 3, &ax));
  assert_false(ir_axis(0, 0, &ax));
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, arena_setup, arena_teardown)
      T(test_shape_every_op_has_rule),
      T(test_shape_arity),
      T(test_shape_typed),
      T(test_shape_unary),
      T(test_shape_glu),
      T(test_shape_binary),
      T(test_shape_reduce),
      T(test_shape_transpose_concat_stack),
      T(test_shape_slice_pad),
      T(test_shape_one_hot_gather),
      T(test_shape_matmul),
      T(test_shape_softmax_attention),
      T(test_shape_conv),
      T(test_shape_conv_transpose),
      T(test_shape_pool),
      T(test_shape_upsample_pixel_shuffle),
      T(test_shape_losses),
      T(test_shape_metrics),
      T(test_shape_scan_not_inferred),
      T(test_shape_broadcast_axis_helpers),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

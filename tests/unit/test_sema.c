/*
** This file contains the unit tests of the frontend's checker
** (frontend/sema.c and the compile-time parts of lower.c): unification of
** argument types (bind, agree, disagree, `...`), return types, constants
** and -D overrides, dimension variables of inputs, compile-time if/for,
** rebinding, destructuring, imports and duplicate definitions.  Programs
** are compiled from strings through frontend_compile.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend_fixture.h"

/* ------------------------------------------------------- unification */

static void test_unify_binds_and_agrees(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "fn project(x: f32[B, I], w: f32[I, O]) -> f32[B, O] {\n"
      "    return x @ w\n"
      "}\n"
      "model m {\n"
      "    input x: f32[3, 7]\n"
      "    param w: f32[7, 5] = zeros\n"
      "    output y = project(x, w)\n"
      "}\n");
  assert_string_equal(ret_type(fx, "forward", "y"), "f32[3,5]");
}

static void test_unify_disagrees(void **state) {
  Fx *fx = *state;
  assert_null(fx_compile(fx,
      "fn project(x: f32[B, I], w: f32[I, O]) -> f32[B, O] {\n"
      "    return x @ w\n"
      "}\n"
      "model m {\n"
      "    input x: f32[2, 784]\n"
      "    param w: f32[512, 10] = zeros\n"
      "    output y = project(x, w)\n"
      "}\n"));
  const char *e = fx_errors(fx);
  assert_non_null(strstr(e, "t.nn:7:27: error: dimension I is 512 here but "
                            "784 from argument 'x'"));
  assert_non_null(strstr(e, "t.nn:7:24: note: dimension I bound to 784 here"));
  assert_int_equal(fx->d->nerrors, 1);
}

static void test_unify_ellipsis(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "layer dense(x: f32[..., I], out: int) -> f32[..., out] {\n"
      "    param w: f32[I, out] = zeros\n"
      "    return x @ w\n"
      "}\n"
      "model m {\n"
      "    input x: f32[2, 3, 8]\n"
      "    input v: f32[8]\n"
      "    output y = dense(x, 4)\n"
      "    output z = dense(v, 6)\n"
      "}\n");
  assert_string_equal(ret_type(fx, "forward", "y"), "f32[2,3,4]");
  assert_string_equal(ret_type(fx, "forward", "z"), "f32[6]");
  assert_string_equal(global_type(fx, "dense.0.w"), "f32[8,4]");
  assert_string_equal(global_type(fx, "dense.1.w"), "f32[8,6]");
}

static void test_unify_rank_and_dtype(void **state) {
  Fx *fx = *state;
  const char *head = "fn rows(x: f32[N, M]) -> f32[N] {\n"
                     "    return sum(x, axis: 1)\n"
                     "}\n";
  char buf[512];
  snprintf(buf, sizeof buf, "%smodel m {\n    input x: f32[2, 3, 4]\n"
           "    output y = rows(x)\n}\n", head);
  assert_null(fx_compile(fx, buf));
  assert_non_null(strstr(fx_errors(fx), "(rank 3, expected 2)"));
  snprintf(buf, sizeof buf, "%smodel m {\n    input x: i32[2, 3]\n"
           "    output y = rows(x)\n}\n", head);
  assert_null(fx_compile(fx, buf));
  assert_non_null(strstr(fx_errors(fx), "argument 'x' of 'rows' has type "
                                        "i32[2,3] but f32[N, M] is expected"));
}

static void test_return_type_checked(void **state) {
  Fx *fx = *state;
  assert_null(fx_compile(fx,
      "fn f(x: f32[N, M]) -> f32[M, N] {\n"
      "    return x\n"
      "}\n"
      "model m {\n"
      "    input x: f32[2, 3]\n"
      "    output y = f(x)\n"
      "}\n"));
  const char *e = fx_errors(fx);
  assert_non_null(strstr(e, "t.nn:2:12: error: dimension M is 2 here but 3 "
                            "from argument 'x'"));
  assert_non_null(strstr(e, "t.nn:6:18: note: dimension M bound to 3 here"));
  assert_null(fx_compile(fx,
      "fn g(x: f32[N, M]) -> f32[N, 5] {\n"
      "    return x\n"
      "}\n"
      "model m {\n"
      "    input x: f32[2, 3]\n"
      "    output y = g(x)\n"
      "}\n"));
  assert_non_null(strstr(fx_errors(fx), "t.nn:2:12: error: the value "
      "returned by 'g' has type f32[2,3] but f32[N, 5] is expected "
      "(dimension 1 is 3, expected 5)"));
}

/* ------------------------------------------------ constants and -D */

static const char *const const_prog =
    "const H = 16\n"
    "const SCALE = 0.5\n"
    "model m {\n"
    "    input x: f32[B, 8]\n"
    "    param w: f32[8, H * 2] = zeros\n"
    "    output y = x @ w * SCALE\n"
    "}\n";

static void test_const_eval(void **state) {
  Fx *fx = *state;
  const char *defs[] = {"B=4"};
  assert_non_null(fx_compile_d(fx, const_prog, defs, 1));
  assert_string_equal(global_type(fx, "w"), "f32[8,32]");
  assert_int_equal(fx->m->nsyms, 1);
  assert_string_equal(fx->m->syms[0].name, "B");
  assert_int_equal(fx->m->syms[0].value, 4);
  assert_string_equal(ret_type(fx, "forward", "y"), "f32[B,32]");
}

static void test_define_overrides_const(void **state) {
  Fx *fx = *state;
  const char *defs[] = {"B=2", "H=5"};
  assert_non_null(fx_compile_d(fx, const_prog, defs, 2));
  assert_string_equal(global_type(fx, "w"), "f32[8,10]");
  assert_int_equal(fx->m->syms[0].value, 2);
}

static void test_define_unknown(void **state) {
  Fx *fx = *state;
  const char *defs[] = {"B=2", "Q=5"};
  assert_null(fx_compile_d(fx, const_prog, defs, 2));
  assert_non_null(strstr(fx_errors(fx), "-D Q: no constant or dimension "
                                        "variable named 'Q'"));
}

static void test_input_dim_unbound(void **state) {
  Fx *fx = *state;
  assert_null(fx_compile(fx, const_prog));
  assert_non_null(strstr(fx_errors(fx), "t.nn:4:18: error: dimension "
      "variable 'B' of input 'x' is not bound; give it with -D B=N or a "
      "train block 'batch'"));
}

static void test_batch_binds_input_dim(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "model m {\n"
      "    input x: f32[B, 8]\n"
      "    input t: f32[B, 8]\n"
      "    loss mse(x, t)\n"
      "}\n"
      "train m {\n"
      "    batch 64\n"
      "}\n");
  assert_int_equal(fx->m->syms[0].value, 64);
  assert_string_equal(fx_type(fx, &ir_func_find(fx->m, "loss")->body->args[0]->type),
                      "f32[B,8]");
}

static void test_const_arith_and_logic(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "const A = 2 ** 3 + 7 % 4 - 10 / 5\n"   /* 8 + 3 - 2 = 9 */
      "const C = (A > 8 and not (A == 10)) or false\n"
      "const D = (A + 15) / 16\n"             /* integer division: 1 */
      "model m {\n"
      "    input x: f32[A, D]\n"
      "    if C {\n"
      "        output y = x\n"
      "    } else {\n"
      "        output z = x\n"
      "    }\n"
      "}\n");
  assert_string_equal(ret_type(fx, "forward", "y"), "f32[9,1]");
  assert_string_equal(ret_type(fx, "forward", "z"), "<no result>");
}

/* ---------------------------------------------------- statements */

static void test_for_unrolls_and_rebinds(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "model m {\n"
      "    input x: f32[2, 4]\n"
      "    let h = x\n"
      "    for i in 0..3 {\n"
      "        h = h * 2\n"
      "    }\n"
      "    for s in [1.5, 2.5] {\n"
      "        h = h + s\n"
      "    }\n"
      "    output y = h\n"
      "}\n");
  IrFunc *f = ir_func_find(fx->m, "forward");
  assert_int_equal(count_op(f->body, IR_OP_MUL), 3);
  assert_int_equal(count_op(f->body, IR_OP_ADD), 2);
}

static void test_rebind_unbound_is_error(void **state) {
  Fx *fx = *state;
  assert_null(fx_compile(fx,
      "model m {\n"
      "    input x: f32[2, 4]\n"
      "    for i in 0..2 {\n"
      "        let h = x\n"
      "    }\n"
      "    h = x\n"
      "    output y = x\n"
      "}\n"));
  assert_non_null(strstr(fx_errors(fx), "t.nn:6:5: error: 'h' is not bound; "
                                        "use 'let h = ...'"));
}

static void test_if_needs_constant(void **state) {
  Fx *fx = *state;
  assert_null(fx_compile(fx,
      "model m {\n"
      "    input x: f32[2, 4]\n"
      "    if x > 0 {\n"
      "        output y = x\n"
      "    }\n"
      "}\n"));
  assert_non_null(strstr(fx_errors(fx), "t.nn:3:8: error: if needs a "
      "compile-time condition; use where(c, a, b) for tensors"));
}

static void test_destructuring(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "model m {\n"
      "    input x: f32[2, 12]\n"
      "    let q, k, v = split(x, 3, axis: -1)\n"
      "    let a, b = split(x, [4, 8], axis: 1)\n"
      "    output y = q + k + v\n"
      "    output z = b\n"
      "}\n");
  assert_string_equal(ret_type(fx, "forward", "y"), "f32[2,4]");
  assert_string_equal(ret_type(fx, "forward", "z"), "f32[2,8]");
  assert_null(fx_compile(fx,
      "model m {\n"
      "    input x: f32[2, 12]\n"
      "    let q, k = split(x, 3, axis: -1)\n"
      "    output y = q\n"
      "}\n"));
  assert_non_null(strstr(fx_errors(fx), "2 names are bound but the value "
                                        "has 3 elements"));
}

static void test_errors_recover(void **state) {
  Fx *fx = *state;
  /* two independent mistakes give two errors; a poisoned value gives none */
  assert_null(fx_compile(fx,
      "model m {\n"
      "    input x: f32[2, 4]\n"
      "    let a = nope(x)\n"
      "    let b = relu(a) + a\n"
      "    let c = x @ x\n"
      "    output y = b + c\n"
      "}\n"));
  const char *e = fx_errors(fx);
  assert_non_null(strstr(e, "t.nn:3:13: error: unknown function 'nope'"));
  assert_non_null(strstr(e, "t.nn:5:17: error: matmul:"));
  assert_int_equal(fx->d->nerrors, 2);
}

static void test_training_flag(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "layer noisy(x: f32[N]) -> f32[N] {\n"
      "    if training {\n"
      "        return x * 3\n"
      "    }\n"
      "    return x\n"
      "}\n"
      "model m {\n"
      "    input x: f32[4]\n"
      "    input t: f32[4]\n"
      "    let y = noisy(x)\n"
      "    output y\n"
      "    loss mse(y, t)\n"
      "}\n");
  assert_int_equal(count_op(ir_func_find(fx->m, "forward")->body, IR_OP_MUL), 0);
  assert_int_equal(count_op(ir_func_find(fx->m, "loss")->body, IR_OP_MUL), 1);
  assert_int_equal(count_op(ir_func_find(fx->m, "eval_step")->body, IR_OP_MUL), 0);
}

/* ------------------------------------------------ imports and names */

static void test_import_and_duplicates(void **state) {
  Fx *fx = *state;
  fx_write(fx, "lib.nn", "fn twice(x: f32[N]) -> f32[N] {\n"
                         "    return x + x\n"
                         "}\n");
  assert_compiles(fx,
      "import \"lib\"\n"
      "import \"lib\"\n"
      "model m {\n"
      "    input x: f32[4]\n"
      "    output y = twice(x)\n"
      "}\n");
  assert_int_equal(count_op(ir_func_find(fx->m, "forward")->body, IR_OP_ADD), 1);
  assert_null(fx_compile(fx,
      "import \"lib\"\n"
      "fn twice(x: f32[N]) -> f32[N] {\n"
      "    return x * 2\n"
      "}\n"
      "model m {\n"
      "    input x: f32[4]\n"
      "    output y = twice(x)\n"
      "}\n"));
  const char *e = fx_errors(fx);
  assert_non_null(strstr(e, "t.nn:2:4: error: 'twice' is defined twice"));
  assert_non_null(strstr(e, "lib.nn:1:4: note: first definition of 'twice'"));
}

static void test_missing_import(void **state) {
  Fx *fx = *state;
  assert_null(fx_compile(fx, "import \"nothere\"\nmodel m {\n"
                             "    input x: f32[4]\n    output y = x\n}\n"));
  assert_non_null(strstr(fx_errors(fx), "t.nn:1:1: error: cannot find "
                                        "import \"nothere\""));
}

static void test_std_import(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "import \"std\"\n"
      "model m {\n"
      "    input x: f32[2, 16]\n"
      "    output y = layernorm(mlp(x, 32, 8) as head)\n"
      "}\n");
  assert_string_equal(global_type(fx, "head.fc1.w"), "f32[16,32]");
  assert_string_equal(global_type(fx, "head.fc2.w"), "f32[32,8]");
  assert_string_equal(global_type(fx, "layernorm.0.w"), "f32[8]");
}

static void test_const_of_other_file_is_dimvar(void **state) {
  Fx *fx = *state;
  fx_write(fx, "lib.nn", "fn rows(x: f32[N, M]) -> f32[N] {\n"
                         "    return sum(x, axis: 1)\n"
                         "}\n"
                         "const K = 3\n"
                         "fn fixed(x: f32[K]) -> f32[K] {\n"
                         "    return x\n"
                         "}\n");
  /* the program's N does not fix the N of lib's signature */
  assert_compiles(fx,
      "import \"lib\"\n"
      "const N = 10\n"
      "model m {\n"
      "    input x: f32[4, N]\n"
      "    input v: f32[3]\n"
      "    output y = rows(x)\n"
      "    output z = fixed(v)\n"
      "}\n");
  assert_string_equal(ret_type(fx, "forward", "y"), "f32[4]");
  assert_string_equal(ret_type(fx, "forward", "z"), "f32[3]");
  /* K is a const of lib.nn itself: fixed's K is 3 */
  assert_null(fx_compile(fx,
      "import \"lib\"\n"
      "model m {\n"
      "    input v: f32[5]\n"
      "    output z = fixed(v)\n"
      "}\n"));
  assert_non_null(strstr(fx_errors(fx), "argument 'x' of 'fixed' has type "
      "f32[5] but f32[K] is expected (dimension 0 is 5, expected 3)"));
}

static void test_duplicate_outputs(void **state) {
  Fx *fx = *state;
  assert_null(fx_compile(fx,
      "model m {\n"
      "    input x: f32[8, 4]\n"
      "    input t: i32[8]\n"
      "    output y = x\n"
      "    output y = x * 2\n"
      "    loss cross_entropy(x, t)\n"
      "    metric accuracy(x, t)\n"
      "    metric accuracy(x * 2, t)\n"
      "}\n"));
  const char *e = fx_errors(fx);
  assert_non_null(strstr(e, "t.nn:5:12: error: output 'y' is declared twice"));
  assert_non_null(strstr(e, "error: metric 'accuracy' is declared twice"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
      T(test_unify_binds_and_agrees),
      T(test_unify_disagrees),
      T(test_unify_ellipsis),
      T(test_unify_rank_and_dtype),
      T(test_return_type_checked),
      T(test_const_eval),
      T(test_define_overrides_const),
      T(test_define_unknown),
      T(test_input_dim_unbound),
      T(test_batch_binds_input_dim),
      T(test_const_arith_and_logic),
      T(test_for_unrolls_and_rebinds),
      T(test_rebind_unbound_is_error),
      T(test_if_needs_constant),
      T(test_destructuring),
      T(test_errors_recover),
      T(test_training_flag),
      T(test_import_and_duplicates),
      T(test_missing_import),
      T(test_std_import),
      T(test_const_of_other_file_is_dimvar),
      T(test_duplicate_outputs),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

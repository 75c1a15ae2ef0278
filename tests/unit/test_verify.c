/*
** This file contains the unit tests of the verifier (ir/verify.c): a valid
** module passes silently, and each invariant, broken on purpose in a parsed
** module, gives false and the expected line.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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

static const char *const src =
    "module @m\n"
    "\n"
    "dim B = 4\n"
    "\n"
    "param @w : f32[3,3] = zeros\n"
    "\n"
    "func @f(%x: f32[B,3], %s: f32[B,5,3]) -> (y: f32[B,3], z: f32[B,3]) {\n"
    "  %0 = matmul %x, @w : f32[B,3]\n"
    "  %1 = relu %0 : f32[B,3]\n"
    "  %2:2 = scan %1, %s {axes = [1], ncarry = 1} : f32[B,3], f32[B,5,3] {\n"
    "  ^(%h: f32[B,3], %t: f32[B,3]):\n"
    "    %3 = add %h, %t : f32[B,3]\n"
    "    yield %3, %3\n"
    "  }\n"
    "  %4 = neg %2#0 : f32[B,3]\n"
    "  return %4, %1\n"
    "}\n";

static IrModule *parse(Arena *a) {
  const char *err = NULL;
  IrModule *m = ir_parse("v.nnir", src, strlen(src), a, &err);
  if (!m) fail_msg("%s", err);
  return m;
}

/* The verifier's output on m (asserting it fails) as a string. */
static char *verify_fails(Arena *a, const IrModule *m) {
  FILE *f = tmpfile();
  assert_non_null(f);
  bool ok = ir_verify(m, f);
  long n = ftell(f);
  rewind(f);
  char *s = arena_alloc(a, (size_t)n + 1, 1);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = 0;
  fclose(f);
  assert_false(ok);
  assert_true(n > 0);
  return s;
}

static void expect_line(Arena *a, const IrModule *m, const char *line) {
  char *out = verify_fails(a, m);
  if (!strstr(out, line)) fail_msg("expected '%s' in:\n%s", line, out);
  assert_false(ir_verify(m, NULL)); /* NULL errs is allowed */
}

/* nodes of @f's body in order: 0 matmul, 1 relu, 2 scan, 3 neg */
static IrNode *nth(IrModule *m, int k) {
  IrNode *n = m->funcs->body->first;
  while (k--) n = n->next;
  return n;
}

static void test_verify_valid(void **state) {
  IrModule *m = parse(*state);
  FILE *f = tmpfile();
  assert_true(ir_verify(m, f));
  assert_int_equal(ftell(f), 0);
  fclose(f);
  ir_module_free(m);
}

static void test_verify_type_mismatch(void **state) {
  IrModule *m = parse(*state);
  nth(m, 1)->res[0]->type.dim[1] = 4;
  expect_line(*state, m,
              "verify: @f: %1 = relu: type mismatch: ir_infer gives f32[B,3], "
              "the node has f32[B,4]");
  ir_module_free(m);
}

static void test_verify_shape_error(void **state) {
  IrModule *m = parse(*state);
  m->globals->value->type.dim[0] = 5;
  m->globals->type.dim[0] = 5;
  expect_line(*state, m, "verify: @f: %0 = matmul: inner dimensions differ (3 vs 5)");
  ir_module_free(m);
}

static void test_verify_use_before_def(void **state) {
  IrModule *m = parse(*state);
  IrNode *relu = nth(m, 1);
  ir_node_remove(relu);
  ir_node_insert_before(nth(m, 0), relu);
  expect_line(*state, m,
              "verify: @f: %0 = relu: operand 0 is not defined before use in "
              "this or an enclosing block");
  ir_module_free(m);
}

static void test_verify_inner_value_outside(void **state) {
  IrModule *m = parse(*state);
  IrValue *inner = nth(m, 2)->body->first->res[0];
  nth(m, 3)->args[0] = inner;
  expect_line(*state, m,
              "verify: @f: %4 = neg: operand 0 is not defined before use in "
              "this or an enclosing block");
  ir_module_free(m);
}

static void test_verify_removed_node_used(void **state) {
  IrModule *m = parse(*state);
  ir_node_remove(nth(m, 1)); /* relu, still used by scan and return */
  expect_line(*state, m,
              "verify: @f: %1 = scan: operand 0 is the result of a removed node");
  expect_line(*state, m, "verify: @f: returned value 1 is the result of a removed node");
  ir_module_free(m);
}

static void test_verify_arg_count(void **state) {
  IrModule *m = parse(*state);
  IrNode *neg = nth(m, 3);
  neg->nargs = 0;
  expect_line(*state, m, "verify: @f: %4 = neg: 0 operands, the op takes 1 to 1");
  ir_module_free(m);
}

static void test_verify_links(void **state) {
  IrModule *m = parse(*state);
  nth(m, 3)->prev = nth(m, 0);
  expect_line(*state, m, "verify: @f: %4 = neg: prev link is inconsistent");
  ir_module_free(m);
  m = parse(*state);
  nth(m, 1)->parent = nth(m, 2)->body;
  expect_line(*state, m, "verify: @f: %1 = relu: parent link does not point at its block");
  ir_module_free(m);
  m = parse(*state);
  m->funcs->body->last = nth(m, 1);
  expect_line(*state, m, "verify: @f: the block's last node is not the end of its list");
  ir_module_free(m);
}

static void test_verify_back_pointers(void **state) {
  IrModule *m = parse(*state);
  nth(m, 0)->res[0]->idx = 1;
  expect_line(*state, m, "verify: @f: %0 = matmul: result 0 does not point back at its node");
  ir_module_free(m);
  m = parse(*state);
  m->funcs->body->args[1]->idx = 0;
  expect_line(*state, m, "verify: @f: block argument 1 does not point back at its block");
  ir_module_free(m);
  m = parse(*state);
  nth(m, 2)->body->owner = NULL;
  expect_line(*state, m, "verify: @f: %2 = scan: body's owner is not the node");
  ir_module_free(m);
}

static void test_verify_returns(void **state) {
  IrModule *m = parse(*state);
  m->funcs->ret_names[1] = NULL;
  expect_line(*state, m, "verify: @f: returned value 1 has no name");
  ir_module_free(m);
  m = parse(*state);
  m->funcs->ret_names = NULL;
  expect_line(*state, m, "verify: @f: returned values have no names");
  ir_module_free(m);
  m = parse(*state);
  m->funcs->body->rets[0] = nth(m, 2)->body->args[0];
  expect_line(*state, m,
              "verify: @f: returned value 0 is not defined before use in this "
              "or an enclosing block");
  ir_module_free(m);
}

static void test_verify_foreign_global(void **state) {
  IrModule *m = parse(*state);
  IrModule *other = parse(*state);
  nth(m, 0)->args[1] = other->globals->value;
  expect_line(*state, m,
              "verify: @f: %0 = matmul: operand 1 refers to a global that is "
              "not in the module");
  ir_module_free(other);
  ir_module_free(m);
}

static void test_verify_globals_and_funcs(void **state) {
  IrModule *m = parse(*state);
  SrcLoc none = {NULL, 0, 0, 0, 0};
  ir_global_add(m, IRG_STATE, "w", ir_type_scalar(DT_F32), NULL, none);
  expect_line(*state, m, "verify: duplicate global @w");
  ir_module_free(m);
  m = parse(*state);
  IrFunc *g = ir_func_new(m, "f");
  ir_func_set_rets(m, g, 0, NULL, NULL);
  expect_line(*state, m, "verify: @f: duplicate function name");
  ir_module_free(m);
  m = parse(*state);
  m->globals->value->type.dim[1] = 7;
  expect_line(*state, m, "verify: global @w: value type differs from the global's");
  ir_module_free(m);
}

static void test_verify_symbols(void **state) {
  IrModule *m = parse(*state);
  m->funcs->body->args[0]->type.sym[1] = 3;
  expect_line(*state, m, "verify: @f: block argument 0: invalid dimension symbol");
  ir_module_free(m);
  m = parse(*state);
  nth(m, 3)->res[0]->type.dim[0] = 8;
  expect_line(*state, m,
              "verify: @f: %4 = neg: result 0: dimension 0 has size 8 but symbol "
              "B is 4");
  ir_module_free(m);
  m = parse(*state);
  ir_sym_add(m, "B", 2, false);
  expect_line(*state, m, "verify: duplicate dimension symbol B");
  ir_module_free(m);
}

static void test_verify_scan(void **state) {
  IrModule *m = parse(*state);
  IrNode *scan = nth(m, 2);
  scan->body->args[1]->type.dim[1] = 2;
  expect_line(*state, m,
              "verify: @f: %2 = scan: body argument 1 is f32[B,2], expected "
              "f32[B,3]");
  ir_module_free(m);
  m = parse(*state);
  scan = nth(m, 2);
  scan->res[1]->type.dim[1] = 6;
  expect_line(*state, m,
              "verify: @f: %2 = scan: result 1 is f32[B,6,3], expected f32[B,5,3]");
  ir_module_free(m);
  m = parse(*state);
  scan = nth(m, 2);
  scan->attrs.n = 0;
  expect_line(*state, m, "verify: @f: %2 = scan: missing attribute 'ncarry'");
  ir_module_free(m);
  m = parse(*state);
  nth(m, 2)->body = NULL;
  expect_line(*state, m, "verify: @f: %2 = scan: scan has no body");
  ir_module_free(m);
  m = parse(*state);
  nth(m, 1)->body = nth(m, 2)->body;
  expect_line(*state, m, "verify: @f: %1 = relu: relu has a body");
  ir_module_free(m);
}

static void test_verify_attrs_sorted(void **state) {
  IrModule *m = parse(*state);
  IrAttrs *at = &nth(m, 2)->attrs; /* axes, ncarry */
  IrAttr tmp = at->v[0];
  at->v[0] = at->v[1];
  at->v[1] = tmp;
  expect_line(*state, m,
              "verify: @f: %2 = scan: attributes are not sorted by name (ncarry, axes)");
  at->v[1] = at->v[0];
  expect_line(*state, m,
              "verify: @f: %2 = scan: attributes are not sorted by name (ncarry, ncarry)");
  ir_module_free(m);
}

static void test_verify_scan_check_direct(void **state) {
  Arena *a = *state;
  IrModule *m = parse(a);
  IrNode *scan = nth(m, 2);
  assert_null(ir_scan_check(m, scan, a));
  ir_attr_set_ints(m, &scan->attrs, "axes", 2, (int64_t[]){1, 1});
  assert_string_equal(ir_scan_check(m, scan, a), "axes has 2 entries for 1 sequences");
  ir_attr_set_ints(m, &scan->attrs, "axes", 1, (int64_t[]){3});
  assert_string_equal(ir_scan_check(m, scan, a),
                      "axis 3 is out of range for sequence 0 of rank 3");
  ir_attr_set_ints(m, &scan->attrs, "axes", 1, (int64_t[]){-2});
  assert_null(ir_scan_check(m, scan, a));
  ir_attr_set_int(m, &scan->attrs, "ncarry", 2);
  assert_string_equal(ir_scan_check(m, scan, a),
                      "body argument 1 is f32[B,3], expected f32[B,5,3]");
  ir_module_free(m);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, arena_setup, arena_teardown)
      T(test_verify_valid),
      T(test_verify_type_mismatch),
      T(test_verify_shape_error),
      T(test_verify_use_before_def),
      T(test_verify_inner_value_outside),
      T(test_verify_removed_node_used),
      T(test_verify_arg_count),
      T(test_verify_links),
      T(test_verify_back_pointers),
      T(test_verify_returns),
      T(test_verify_foreign_global),
      T(test_verify_globals_and_funcs),
      T(test_verify_symbols),
      T(test_verify_scan),
      T(test_verify_attrs_sorted),
      T(test_verify_scan_check_direct),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
** This file contains the unit tests of the IR core (ir/ir.c): dtype and
** type helpers, the op table, symbols, globals, functions, the node
** builders, attribute lists (kept sorted, deep copies), node insertion and
** removal, and ir_replace_uses across nested blocks.
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
  *state = ir_module_new("t");
  return 0;
}

static int arena_teardown(void **state) {
  ir_module_free(*state);
  return 0;
}

static const SrcLoc noloc = {NULL, 0, 0, 0, 0};

static IrType f32(int rank, const int64_t *d) {
  return ir_type_make(DT_F32, rank, d);
}

static void test_ir_dtypes(void **state) {
  static const char *names[DT_COUNT] = {"f32", "f16", "bf16", "f64",
                                        "i32", "i64", "u8",   "bool"};
  static const int sizes[DT_COUNT] = {4, 2, 2, 8, 4, 8, 1, 1};
  for (int t = 0; t < DT_COUNT; t++) {
    DType back;
    assert_string_equal(ir_dtype_name((DType)t), names[t]);
    assert_true(ir_dtype_parse(names[t], &back));
    assert_int_equal(back, t);
    assert_int_equal(ir_dtype_size((DType)t), sizes[t]);
    assert_int_equal(ir_dtype_is_float((DType)t), t <= DT_F64);
    assert_int_equal(ir_dtype_is_int((DType)t),
                     t == DT_I32 || t == DT_I64 || t == DT_U8);
  }
  DType d;
  assert_false(ir_dtype_parse("f33", &d));
  assert_false(ir_dtype_parse("", &d));
}

static void test_ir_types(void **state) {
  IrModule *m = *state;
  IrType s = ir_type_scalar(DT_I64);
  assert_int_equal(s.rank, 0);
  assert_int_equal(ir_type_numel(&s), 1);
  IrType a = f32(3, (int64_t[]){2, 3, 4}), b = f32(3, (int64_t[]){2, 3, 4});
  assert_int_equal(ir_type_numel(&a), 24);
  for (int i = 0; i < IR_MAX_RANK; i++) assert_int_equal(a.sym[i], IR_NO_SYM);
  b.sym[0] = (int16_t)ir_sym_add(m, "N", 2, false);
  assert_true(ir_type_eq(&a, &b)); /* symbols do not count */
  b.dtype = DT_F16;
  assert_false(ir_type_eq(&a, &b));
  assert_true(ir_shape_eq(&a, &b));
  b.dim[2] = 5;
  assert_false(ir_shape_eq(&a, &b));
  assert_string_equal(ir_type_str(m->arena, m, &b), "f16[N,3,5]");
  assert_string_equal(ir_type_str(m->arena, NULL, &b), "f16[2,3,5]");
  assert_string_equal(ir_type_str(m->arena, m, &s), "i64[]");
}

static void test_ir_op_table(void **state) {
  for (int op = 0; op < IR_OP_COUNT; op++) {
    IrOp back;
    const IrOpInfo *in = &ir_op_info[op];
    assert_non_null(in->name);
    assert_true(ir_op_lookup(in->name, &back));
    assert_int_equal(back, op);
    assert_true(in->max_args < 0 || in->max_args >= in->min_args);
  }
  IrOp op;
  assert_true(ir_op_lookup("matmul", &op));
  assert_int_equal(op, IR_OP_MATMUL);
  assert_int_equal(ir_op_info[IR_OP_ATTENTION].min_args, 3);
  assert_int_equal(ir_op_info[IR_OP_ATTENTION].max_args, 4);
  assert_true(ir_op_info[IR_OP_SCAN].flags & OPF_REGION);
  assert_false(ir_op_lookup("matmull", &op));
}

static void test_ir_syms_globals_funcs(void **state) {
  IrModule *m = *state;
  for (int i = 0; i < 20; i++) {
    char name[8];
    snprintf(name, sizeof name, "S%d", i);
    assert_int_equal(ir_sym_add(m, name, 10 + i, i % 2), i);
  }
  assert_int_equal(m->nsyms, 20);
  assert_int_equal(ir_sym_find(m, "S13"), 13);
  assert_int_equal(m->syms[13].value, 23);
  assert_true(m->syms[13].bounded);
  assert_int_equal(ir_sym_find(m, "S99"), -1);
  assert_string_equal(m->syms[0].name, "S0");

  IrGlobal *g1 = ir_global_add(m, IRG_PARAM, "a.w", ir_type_scalar(DT_F32),
                               "zeros", noloc);
  IrGlobal *g2 = ir_global_add(m, IRG_STATE, "a.s", ir_type_scalar(DT_I32),
                               NULL, noloc);
  assert_ptr_equal(m->globals, g1);
  assert_ptr_equal(g1->next, g2);
  assert_ptr_equal(m->globals_last, g2);
  assert_ptr_equal(ir_global_find(m, "a.s"), g2);
  assert_null(ir_global_find(m, "a.x"));
  assert_int_equal(g1->value->kind, IRV_GLOBAL);
  assert_ptr_equal(g1->value->global, g1);
  assert_string_equal(g1->init, "zeros");
  assert_null(g2->init);

  IrFunc *f1 = ir_func_new(m, "f1"), *f2 = ir_func_new(m, "f2"),
         *f3 = ir_func_new(m, "f3");
  assert_non_null(f1->body);
  assert_ptr_equal(f1->body->func, f1);
  assert_ptr_equal(ir_func_find(m, "f2"), f2);
  ir_func_remove(m, f2);
  assert_null(ir_func_find(m, "f2"));
  assert_ptr_equal(f1->next, f3);
  ir_func_remove(m, f3);
  assert_ptr_equal(m->funcs_last, f1);
  IrFunc *f4 = ir_func_new(m, "f4");
  assert_ptr_equal(f1->next, f4);
  ir_func_remove(m, f1);
  assert_ptr_equal(m->funcs, f4);
}

static void test_ir_attrs_sorted(void **state) {
  IrModule *m = *state;
  IrAttrs a = {NULL, 0};
  ir_attr_set_int(m, &a, "stride", 2);
  ir_attr_set_float(m, &a, "alpha", 0.5);
  ir_attr_set_bool(m, &a, "keepdims", true);
  ir_attr_set_ints(m, &a, "axes", 2, (int64_t[]){0, -1});
  ir_attr_set_str(m, &a, "name", "x");
  ir_attr_set_sym(m, &a, "mode", "polyak");
  ir_attr_set_floats(m, &a, "betas", 2, (double[]){0.9, 0.999});
  ir_attr_set_strs(m, &a, "files", 2, (const char *[]){"a", "b"});
  static const char *order[] = {"alpha", "axes", "betas", "files",
                                "keepdims", "mode", "name", "stride"};
  assert_int_equal(a.n, 8);
  for (int i = 0; i < 8; i++) assert_string_equal(a.v[i].name, order[i]);
  ir_attr_set_int(m, &a, "stride", 3); /* replaces, keeps the order */
  assert_int_equal(a.n, 8);
  assert_int_equal(ir_attr_int(&a, "stride", 0), 3);
  assert_int_equal(ir_attr_int(&a, "missing", 42), 42);
  assert_true(ir_attr_float(&a, "alpha", 0) == 0.5);
  assert_true(ir_attr_float(&a, "stride", 0) == 3.0); /* int reads as float */
  assert_true(ir_attr_float(&a, "missing", -1) == -1.0);
  assert_true(ir_attr_bool(&a, "keepdims", false));
  assert_false(ir_attr_bool(&a, "missing", false));
  const IrAttr *x = ir_attr_get(&a, "axes");
  assert_int_equal(x->kind, ATTR_INTS);
  assert_int_equal(x->n, 2);
  assert_int_equal(x->ints[1], -1);
  assert_int_equal(ir_attr_get(&a, "mode")->kind, ATTR_SYM);
  assert_string_equal(ir_attr_get(&a, "files")->strs[1], "b");
  assert_null(ir_attr_get(&a, "nope"));
  /* names are interned */
  assert_ptr_equal(ir_attr_get(&a, "name")->name, strtab_cstr(m->strs, "name"));
}

static void test_ir_attr_deep_copy(void **state) {
  IrModule *m = *state;
  int64_t ks[2] = {1, 2};
  IrAttr inner = {.name = "k", .kind = ATTR_INTS, .n = 2, .ints = ks};
  IrAttr args[2] = {{.name = "lr", .kind = ATTR_FLOAT, .f = 0.001}, inner};
  IrAttr call = {.name = "optimizer", .kind = ATTR_CALL, .s = "adamw", .n = 2,
                 .args = args};
  IrAttrs a = {NULL, 0};
  ir_attr_set(m, &a, &call);
  ks[0] = 99; /* the copy must not alias the source */
  args[0].f = 7;
  const IrAttr *c = ir_attr_get(&a, "optimizer");
  assert_int_equal(c->kind, ATTR_CALL);
  assert_string_equal(c->s, "adamw");
  assert_int_equal(c->n, 2);
  /* call arguments are sorted by name: k before lr */
  assert_string_equal(c->args[0].name, "k");
  assert_int_equal(c->args[0].ints[0], 1);
  assert_true(c->args[1].f == 0.001);
}

static void test_ir_build_and_errors(void **state) {
  IrModule *m = *state;
  IrFunc *f = ir_func_new(m, "f");
  IrValue *x = ir_block_add_arg(m, f->body, f32(2, (int64_t[]){4, 5}), "x");
  IrValue *w = ir_block_add_arg(m, f->body, f32(2, (int64_t[]){5, 6}), "w");
  assert_int_equal(x->kind, IRV_ARG);
  assert_int_equal(w->idx, 1);
  assert_ptr_equal(w->block, f->body);
  assert_string_equal(x->name, "x");
  const char *err = NULL;
  int bad = 7;
  IrAttrs at = {NULL, 0};
  ir_attr_set_int(m, &at, "unused", 1);
  IrValue *y = ir_build(m, f->body, IR_OP_MATMUL, 2, (IrValue *[]){x, w}, &at,
                        NULL, noloc, &err, &bad);
  assert_non_null(y);
  assert_int_equal(y->type.dim[0], 4);
  assert_int_equal(y->type.dim[1], 6);
  assert_int_equal(y->kind, IRV_RESULT);
  assert_ptr_equal(y->def->parent, f->body);
  assert_int_equal(y->def->attrs.n, 1); /* attrs copied */
  assert_ptr_not_equal(y->def->attrs.v, at.v);
  assert_null(ir_build(m, f->body, IR_OP_MATMUL, 2, (IrValue *[]){w, x}, NULL,
                       NULL, noloc, &err, &bad));
  assert_string_equal(err, "inner dimensions differ (6 vs 4)");
  assert_int_equal(bad, 1);
  assert_ptr_equal(f->body->first, f->body->last); /* nothing appended */
  IrType want = f32(1, (int64_t[]){20});
  IrValue *r = ir_build(m, f->body, IR_OP_RESHAPE, 1, &x, NULL, &want, noloc,
                        &err, &bad);
  assert_non_null(r);
  assert_true(ir_type_eq(&r->type, &want));
  want.dim[0] = 21;
  assert_null(ir_build(m, f->body, IR_OP_RESHAPE, 1, &x, NULL, &want, noloc,
                       &err, &bad));
  assert_string_equal(err, "element counts differ (20 vs 21)");
}

static void test_ir_insert_remove(void **state) {
  IrModule *m = *state;
  IrFunc *f = ir_func_new(m, "f");
  IrType t = f32(1, (int64_t[]){3});
  IrValue *x = ir_block_add_arg(m, f->body, t, "x");
  IrNode *a = ir_node_new(m, f->body, IR_OP_NEG, 1, &x, 1, &t, noloc);
  IrNode *c = ir_node_new(m, f->body, IR_OP_EXP, 1, &x, 1, &t, noloc);
  IrNode *b = ir_node_new(m, NULL, IR_OP_LOG, 1, &x, 1, &t, noloc);
  assert_null(b->parent);
  ir_node_insert_before(c, b);
  assert_ptr_equal(a->next, b);
  assert_ptr_equal(b->next, c);
  assert_ptr_equal(c->prev, b);
  assert_ptr_equal(b->parent, f->body);
  IrNode *z = ir_node_new(m, NULL, IR_OP_SIN, 1, &x, 1, &t, noloc);
  ir_node_insert_before(a, z);
  assert_ptr_equal(f->body->first, z);
  ir_node_remove(z);
  assert_ptr_equal(f->body->first, a);
  assert_null(a->prev);
  ir_node_remove(c);
  assert_ptr_equal(f->body->last, b);
  assert_null(b->next);
  assert_null(c->parent);
  ir_node_remove(b);
  ir_node_remove(a);
  assert_null(f->body->first);
  assert_null(f->body->last);
  ir_node_append(f->body, c);
  assert_ptr_equal(f->body->first, c);
  assert_ptr_equal(f->body->last, c);
}

static void test_ir_replace_uses(void **state) {
  IrModule *m = *state;
  IrFunc *f = ir_func_new(m, "f");
  IrType t = f32(1, (int64_t[]){3});
  IrValue *x = ir_block_add_arg(m, f->body, t, "x");
  IrValue *y = ir_block_add_arg(m, f->body, t, "y");
  IrNode *a = ir_node_new(m, f->body, IR_OP_ADD, 2, (IrValue *[]){x, x}, 1, &t,
                          noloc);
  IrNode *s = ir_node_new(m, f->body, IR_OP_SCAN, 1, &x, 1, &t, noloc);
  s->body = ir_block_new(m, f);
  s->body->owner = s;
  IrValue *c = ir_block_add_arg(m, s->body, t, "c");
  IrNode *in = ir_node_new(m, s->body, IR_OP_MUL, 2, (IrValue *[]){c, x}, 1, &t,
                           noloc);
  ir_block_set_rets(m, s->body, 1, (IrValue *[]){x});
  ir_func_set_rets(m, f, 2, (IrValue *[]){x, a->res[0]},
                   (const char *[]){"out", "@st.x"});
  ir_replace_uses(f, x, y);
  assert_ptr_equal(a->args[0], y);
  assert_ptr_equal(a->args[1], y);
  assert_ptr_equal(s->args[0], y);
  assert_ptr_equal(in->args[0], c);
  assert_ptr_equal(in->args[1], y);
  assert_ptr_equal(s->body->rets[0], y);
  assert_ptr_equal(f->body->rets[0], y);
  assert_ptr_equal(f->body->rets[1], a->res[0]);
  assert_string_equal(f->ret_names[1], "@st.x");
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, arena_setup, arena_teardown)
      T(test_ir_dtypes),
      T(test_ir_types),
      T(test_ir_op_table),
      T(test_ir_syms_globals_funcs),
      T(test_ir_attrs_sorted),
      T(test_ir_attr_deep_copy),
      T(test_ir_build_and_errors),
      T(test_ir_insert_remove),
      T(test_ir_replace_uses),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
** This file contains the unit tests of the lowering of .nn into the tensor
** IR (frontend/lower.c, frontend/builtins.c): parameter naming by call
** path, the functions a model produces and their signatures, shapes reached
** through the frontend (broadcasting, matmul, reshape with symbols), dtype
** promotion of literals, scan nodes, state updates, the train block's
** settings and the @lr schedule (evaluated with the reference interpreter).
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend_fixture.h"

static const char *arg_type(Fx *fx, const char *fn, int i) {
  IrFunc *f = ir_func_find(fx->m, fn);
  if (!f || i >= f->body->nargs) return "<no arg>";
  return fx_type(fx, &f->body->args[i]->type);
}

static IrNode *first_op(IrBlock *b, IrOp op) {
  for (IrNode *x = b->first; x; x = x->next) {
    if (x->op == op) return x;
    if (x->body) {
      IrNode *y = first_op(x->body, op);
      if (y) return y;
    }
  }
  return NULL;
}

static const char *const dense =
    "layer dense(x: f32[..., I], out: int, bias: bool = true) -> f32[..., out] {\n"
    "    param w: f32[I, out] = glorot_uniform\n"
    "    if bias {\n"
    "        param b: f32[out] = zeros\n"
    "        return x @ w + b\n"
    "    }\n"
    "    return x @ w\n"
    "}\n";

static IrModule *with_dense(Fx *fx, const char *rest) {
  char *buf = arena_printf(fx->a, "%s%s", dense, rest);
  IrModule *m = fx_compile(fx, buf);
  if (!m) fail_msg("errors:\n%s", fx_errors(fx));
  return m;
}

/* ------------------------------------------------- parameter naming */

static void test_param_names_counted(void **state) {
  Fx *fx = *state;
  with_dense(fx, "model m {\n"
                 "    input x: f32[2, 8]\n"
                 "    let h = dense(x, 16)\n"
                 "    let g = dense(h, 4, bias: false)\n"
                 "    output y = dense(g, 3) as head\n"
                 "}\n");
  assert_string_equal(global_type(fx, "dense.0.w"), "f32[8,16]");
  assert_string_equal(global_type(fx, "dense.0.b"), "f32[16]");
  assert_string_equal(global_type(fx, "dense.1.w"), "f32[16,4]");
  assert_null(ir_global_find(fx->m, "dense.1.b"));
  assert_string_equal(global_type(fx, "head.w"), "f32[4,3]");
  assert_null(ir_global_find(fx->m, "dense.2.w"));
  IrGlobal *g = ir_global_find(fx->m, "dense.0.w");
  assert_string_equal(g->init, "glorot_uniform");
  assert_int_equal(g->kind, IRG_PARAM);
  assert_string_equal(ir_global_find(fx->m, "dense.0.b")->init, "zeros");
}

static void test_param_names_nested_and_loops(void **state) {
  Fx *fx = *state;
  with_dense(fx, "layer attn(x: f32[B, D]) -> f32[B, D] {\n"
                 "    let q = dense(x, D) as qkv\n"
                 "    return dense(q, D)\n"
                 "}\n"
                 "layer block(x: f32[B, D]) -> f32[B, D] {\n"
                 "    let h = x + attn(x) as attn\n"
                 "    return h + attn(h)\n"
                 "}\n"
                 "model m {\n"
                 "    input x: f32[2, 8]\n"
                 "    let h = x\n"
                 "    for i in 0..3 {\n"
                 "        h = block(h)\n"
                 "    }\n"
                 "    output y = h\n"
                 "}\n");
  static const char *const names[] = {
      "block.0.attn.qkv.w", "block.0.attn.dense.0.w", "block.0.attn.0.qkv.w",
      "block.0.attn.0.dense.0.b", "block.2.attn.qkv.b", "block.2.attn.0.qkv.w"};
  for (int i = 0; i < 6; i++) {
    if (!ir_global_find(fx->m, names[i])) fail_msg("no global %s", names[i]);
    assert_string_equal(global_type(fx, names[i]),
                        strchr(names[i], 'b') && names[i][strlen(names[i]) - 1] == 'b'
                            ? "f32[8]" : "f32[8,8]");
  }
  assert_null(ir_global_find(fx->m, "block.3.attn.qkv.w"));
  int n = 0;
  for (IrGlobal *g = fx->m->globals; g; g = g->next) n++;
  assert_int_equal(n, 3 * 2 * 2 * 2); /* 3 blocks x 2 attn x 2 dense x w,b */
}

static void test_param_init_attrs(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "layer emb(idx: i32[N], vocab: int, dim: int) -> f32[N, dim] {\n"
      "    param w: f32[vocab, dim] = normal(std: 0.02)\n"
      "    param c: f32[dim] = constant(0.5)\n"
      "    state s: f32[dim] = ones\n"
      "    return w[idx] + c + s\n"
      "}\n"
      "model m {\n"
      "    input t: i32[5]\n"
      "    output y = emb(t, 100, 16)\n"
      "}\n");
  IrGlobal *w = ir_global_find(fx->m, "emb.0.w");
  assert_non_null(w);
  assert_string_equal(w->init, "normal");
  assert_true(fabs(ir_attr_float(&w->init_attrs, "std", 0) - 0.02) < 1e-12);
  IrGlobal *c = ir_global_find(fx->m, "emb.0.c");
  assert_true(ir_attr_float(&c->init_attrs, "value", 0) == 0.5);
  assert_int_equal(ir_global_find(fx->m, "emb.0.s")->kind, IRG_STATE);
  assert_string_equal(ret_type(fx, "forward", "y"), "f32[5,16]");
  assert_non_null(first_op(ir_func_find(fx->m, "forward")->body, IR_OP_GATHER));
}

/* --------------------------------------------- functions and shapes */

static const char *const clf =
    "model clf {\n"
    "    input image: u8[B, 4, 4]\n"
    "    input label: i32[B]\n"
    "    input unused: f32[B, 3]\n"
    "    let x = reshape(f32(image) / 255, [B, 16])\n"
    "    param w: f32[16, 10] = zeros\n"
    "    let logits = x @ w\n"
    "    output logits\n"
    "    loss cross_entropy(logits, label)\n"
    "    metric accuracy(logits, label)\n"
    "    metric top = top_k(logits, label, k: 3)\n"
    "}\n"
    "train clf {\n"
    "    batch 32\n"
    "}\n";

static void test_model_functions(void **state) {
  Fx *fx = *state;
  assert_compiles(fx, clf);
  assert_string_equal(fx->m->name, "clf");
  IrFunc *f = ir_func_find(fx->m, "forward");
  assert_non_null(f);
  assert_int_equal(f->body->nargs, 1); /* only the input the output uses */
  assert_string_equal(f->body->args[0]->name, "image");
  assert_string_equal(arg_type(fx, "forward", 0), "u8[B,4,4]");
  assert_string_equal(ret_type(fx, "forward", "logits"), "f32[B,10]");
  IrFunc *l = ir_func_find(fx->m, "loss");
  assert_int_equal(l->body->nargs, 3); /* every input */
  assert_int_equal(l->body->nrets, 1);
  assert_string_equal(l->ret_names[0], "loss");
  assert_string_equal(ret_type(fx, "loss", "loss"), "f32[]");
  IrFunc *e = ir_func_find(fx->m, "eval_step");
  assert_int_equal(e->body->nrets, 3);
  assert_string_equal(e->ret_names[0], "loss");
  assert_string_equal(e->ret_names[1], "metric.accuracy");
  assert_string_equal(e->ret_names[2], "metric.top");
  IrNode *tk = first_op(e->body, IR_OP_TOP_K);
  assert_int_equal(ir_attr_int(&tk->attrs, "k", 0), 3);
  /* forward has no loss node left */
  assert_null(first_op(f->body, IR_OP_CROSS_ENTROPY));
  IrNode *rs = first_op(f->body, IR_OP_RESHAPE);
  assert_string_equal(fx_type(fx, &rs->res[0]->type), "f32[B,16]");
  assert_null(ir_func_find(fx->m, "lr"));
}

static void test_no_loss_only_forward(void **state) {
  Fx *fx = *state;
  assert_compiles(fx, "model m {\n    input x: f32[3]\n    output y = x * 2\n}\n");
  assert_non_null(ir_func_find(fx->m, "forward"));
  assert_null(ir_func_find(fx->m, "loss"));
  assert_null(ir_func_find(fx->m, "eval_step"));
}

static void test_broadcast_and_matmul(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "model m {\n"
      "    input a: f32[4, 1, 3]\n"
      "    input b: f32[5, 1]\n"
      "    input p: f32[2, 7, 3, 6]\n"
      "    input q: f32[6, 9]\n"
      "    output s = a + b\n"
      "    output t = p @ q\n"
      "    output u = transpose(p) @ p\n"
      "}\n");
  assert_string_equal(ret_type(fx, "forward", "s"), "f32[4,5,3]");
  assert_string_equal(ret_type(fx, "forward", "t"), "f32[2,7,3,9]");
  assert_string_equal(ret_type(fx, "forward", "u"), "f32[2,7,6,6]");
  assert_null(fx_compile(fx, "model m {\n    input a: f32[4, 3]\n"
                             "    input b: f32[4, 3]\n    output t = a @ b\n}\n"));
  assert_non_null(strstr(fx_errors(fx), "t.nn:4:20: error: matmul: "));
  assert_non_null(strstr(fx_errors(fx), "a is f32[4,3], b is f32[4,3]"));
}

static void test_literal_promotion(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "model m {\n"
      "    input n: i32[4]\n"
      "    input k: i32[4]\n"
      "    input x: f32[4]\n"
      "    output a = n + 1\n"      /* int literal keeps i32 */
      "    output b = n * 0.5\n"    /* float literal promotes to f32 */
      "    output c = n / k\n"      /* true division */
      "    output d = x * 2\n"
      "    output e = i32(x) - n\n"
      "}\n");
  assert_string_equal(ret_type(fx, "forward", "a"), "i32[4]");
  assert_string_equal(ret_type(fx, "forward", "b"), "f32[4]");
  assert_string_equal(ret_type(fx, "forward", "c"), "f32[4]");
  assert_string_equal(ret_type(fx, "forward", "d"), "f32[4]");
  assert_string_equal(ret_type(fx, "forward", "e"), "i32[4]");
  IrFunc *f = ir_func_find(fx->m, "forward");
  assert_true(count_op(f->body, IR_OP_CAST) >= 4);
}

static void test_builtins_attrs(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "model m {\n"
      "    input x: f32[2, 3, 8, 8]\n"
      "    input w: f32[4, 3, 3, 3]\n"
      "    let c = conv2d(x, w, stride: 2, padding: 1)\n"
      "    output p = max_pool2d(c, 2)\n"
      "    output pd = max_pool2d(x, 3, stride: 1, dilation: 2)\n"
      "    output s = sum(x, axis: [2, 3], keepdims: true)\n"
      "    output m = max(x, axis: 1)\n"
      "    output e = max(x, 0.0)\n"
      "    output u = upsample_bilinear(x, scale: 2, align_corners: true)\n"
      "    output q = pad(x, [1, 1, 2, 2])\n"
      "    output r = permute(x, [0, 2, 3, 1])\n"
      "}\n");
  assert_string_equal(ret_type(fx, "forward", "p"), "f32[2,4,2,2]");
  assert_string_equal(ret_type(fx, "forward", "pd"), "f32[2,3,4,4]");
  assert_string_equal(ret_type(fx, "forward", "s"), "f32[2,3,1,1]");
  assert_string_equal(ret_type(fx, "forward", "m"), "f32[2,8,8]");
  assert_string_equal(ret_type(fx, "forward", "e"), "f32[2,3,8,8]");
  assert_string_equal(ret_type(fx, "forward", "u"), "f32[2,3,16,16]");
  assert_string_equal(ret_type(fx, "forward", "q"), "f32[2,3,10,12]");
  assert_string_equal(ret_type(fx, "forward", "r"), "f32[2,8,8,3]");
  IrFunc *f = ir_func_find(fx->m, "forward");
  IrNode *cv = first_op(f->body, IR_OP_CONV2D);
  const IrAttr *st = ir_attr_get(&cv->attrs, "stride");
  assert_non_null(st);
  assert_int_equal(st->n, 2);
  assert_int_equal(st->ints[1], 2);
  assert_non_null(first_op(f->body, IR_OP_MAXIMUM));
  IrNode *up = first_op(f->body, IR_OP_UPSAMPLE_BILINEAR);
  assert_int_equal(ir_attr_get(&up->attrs, "size")->ints[0], 16);
}

static void test_causal_attention_pattern(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "model m {\n"
      "    input q: f32[B, 2, 6, 4]\n"
      "    input k: f32[B, 2, 6, 4]\n"
      "    input v: f32[B, 2, 6, 4]\n"
      "    output y = softmax(q @ transpose(k) / sqrt(4) + causal_mask(6)) @ v\n"
      "    output z = attention(q, k, v, causal: true)\n"
      "}\n"
      "train m {\n    batch 3\n}\n");
  assert_string_equal(ret_type(fx, "forward", "y"), "f32[B,2,6,4]");
  assert_string_equal(ret_type(fx, "forward", "z"), "f32[B,2,6,4]");
  IrFunc *f = ir_func_find(fx->m, "forward");
  IrNode *d = first_op(f->body, IR_OP_DIV);
  /* sqrt(4) was folded to the constant 2 */
  assert_int_equal(d->args[1]->def->op, IR_OP_CONSTANT);
  assert_true(ir_attr_float(&d->args[1]->def->attrs, "value", 0) == 2.0);
  assert_true(ir_attr_bool(&first_op(f->body, IR_OP_ATTENTION)->attrs,
                           "causal", false));
}

/* ------------------------------------------------------------- scan */

static void test_scan_lowering(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "model m {\n"
      "    input x: f32[B, 5, 3]\n"
      "    param wx: f32[3, 4] = zeros\n"
      "    let hs = scan (h = zeros[B, 4], c = zeros[B, 4]; xt in x along 1) {\n"
      "        c = c + xt @ wx\n"
      "        h = tanh(c)\n"
      "        emit h, c * 2\n"
      "    }\n"
      "    let a, b = hs\n"
      "    output y = a\n"
      "    output z = b\n"
      "    output last = scan reverse (s = zeros[B, 3]; xt in x along 1) {\n"
      "        s = s + xt\n"
      "    }\n"
      "}\n"
      "train m {\n    batch 2\n}\n");
  assert_string_equal(ret_type(fx, "forward", "y"), "f32[B,5,4]");
  assert_string_equal(ret_type(fx, "forward", "z"), "f32[B,5,4]");
  assert_string_equal(ret_type(fx, "forward", "last"), "f32[B,3]");
  IrFunc *f = ir_func_find(fx->m, "forward");
  IrNode *sc = first_op(f->body, IR_OP_SCAN);
  assert_non_null(sc);
  assert_int_equal(ir_attr_int(&sc->attrs, "ncarry", 0), 2);
  assert_int_equal(ir_attr_get(&sc->attrs, "axes")->ints[0], 1);
  assert_false(ir_attr_bool(&sc->attrs, "reverse", false));
  assert_int_equal(sc->nargs, 3);
  assert_int_equal(sc->nres, 4);
  assert_int_equal(sc->body->nargs, 3);
  assert_string_equal(sc->body->args[0]->name, "h");
  assert_string_equal(sc->body->args[2]->name, "xt");
  assert_string_equal(fx_type(fx, &sc->body->args[2]->type), "f32[B,3]");
  assert_int_equal(sc->body->nrets, 4);
  assert_ptr_equal(sc->body, sc->body->owner->body);
  assert_int_equal(count_op(f->body, IR_OP_SCAN), 2);
  IrNode *rv = sc->next;
  while (rv && rv->op != IR_OP_SCAN) rv = rv->next;
  assert_non_null(rv);
  assert_true(ir_attr_bool(&rv->attrs, "reverse", false));
  assert_int_equal(rv->nres, 1);
}

static void test_scan_carry_type_change(void **state) {
  Fx *fx = *state;
  assert_null(fx_compile(fx,
      "model m {\n"
      "    input x: f32[2, 5, 4]\n"
      "    output y = scan (h = zeros[2, 4]; xt in x along 1) {\n"
      "        h = sum(h + xt, axis: 1)\n"
      "        emit h\n"
      "    }\n"
      "}\n"));
  assert_non_null(strstr(fx_errors(fx), "error: carry 'h' changes type: "
                                        "f32[2,4] before, f32[2] after"));
}

/* ----------------------------------------------------- state, train */

static void test_state_updates(void **state) {
  Fx *fx = *state;
  assert_compiles(fx,
      "layer bn(x: f32[N, C]) -> f32[N, C] {\n"
      "    state avg: f32[C] = zeros\n"
      "    if training {\n"
      "        avg <- 0.9 * avg + 0.1 * mean(x, axis: 0)\n"
      "        return x - mean(x, axis: 0)\n"
      "    }\n"
      "    return x - avg\n"
      "}\n"
      "model m {\n"
      "    input x: f32[8, 4]\n"
      "    input t: f32[8, 4]\n"
      "    let y = bn(x) as norm\n"
      "    output y\n"
      "    loss mse(y, t)\n"
      "}\n");
  IrFunc *l = ir_func_find(fx->m, "loss");
  assert_int_equal(l->body->nrets, 2);
  assert_string_equal(l->ret_names[1], "@norm.avg");
  assert_string_equal(ret_type(fx, "loss", "@norm.avg"), "f32[4]");
  assert_int_equal(ir_func_find(fx->m, "eval_step")->body->nrets, 1);
  assert_int_equal(ir_func_find(fx->m, "forward")->body->nrets, 1);
}

static const char *const trained =
    "model m {\n"
    "    input x: f32[B, 4]\n"
    "    input t: f32[B, 4]\n"
    "    loss mse(x, t)\n"
    "}\n"
    "train m {\n"
    "    data      x, t = npy(\"x.npy\", \"t.npy\")\n"
    "    eval_data x, t = text(\"e.txt\", block: 16)\n"
    "    batch     16\n"
    "    epochs    3\n"
    "    optimizer adamw(lr: 1e-3, betas: (0.9, 0.999), weight_decay: 0)\n"
    "    lr        %s\n"
    "    clip      1\n"
    "    precision mixed(bf16)\n"
    "    remat     budget(4096)\n"
    "    average   ema(0.99)\n"
    "    seed      7\n"
    "}\n";

static void test_train_settings(void **state) {
  Fx *fx = *state;
  assert_compiles(fx, arena_printf(fx->a, trained, "0.1"));
  IrTrain *t = fx->m->train;
  assert_non_null(t);
  assert_string_equal(t->model, "m");
  IrAttrs *s = &t->settings;
  assert_int_equal(ir_attr_get(s, "batch")->kind, ATTR_INT);
  assert_int_equal(ir_attr_int(s, "batch", 0), 16);
  assert_int_equal(ir_attr_int(s, "epochs", 0), 3);
  assert_int_equal(ir_attr_int(s, "seed", 0), 7);
  assert_int_equal(ir_attr_get(s, "clip")->kind, ATTR_FLOAT);
  const IrAttr *o = ir_attr_get(s, "optimizer");
  assert_int_equal(o->kind, ATTR_CALL);
  assert_string_equal(o->s, "adamw");
  IrAttrs oa = {o->args, o->n};
  const IrAttr *betas = ir_attr_get(&oa, "betas");
  assert_int_equal(betas->kind, ATTR_FLOATS);
  assert_true(betas->floats[1] == 0.999);
  assert_int_equal(ir_attr_get(&oa, "weight_decay")->kind, ATTR_FLOAT);
  const IrAttr *p = ir_attr_get(s, "precision");
  assert_int_equal(p->kind, ATTR_CALL);
  assert_string_equal(p->s, "mixed");
  assert_int_equal(p->args[0].kind, ATTR_DTYPE);
  assert_int_equal(p->args[0].i, DT_BF16);
  const IrAttr *r = ir_attr_get(s, "remat");
  assert_string_equal(r->args[0].name, "bytes");
  assert_int_equal(r->args[0].i, 4096);
  const IrAttr *av = ir_attr_get(s, "average");
  assert_true(av->args[0].f == 0.99);
  const IrAttr *d = ir_attr_get(s, "data");
  assert_string_equal(d->s, "npy");
  IrAttrs da = {d->args, d->n};
  assert_int_equal(ir_attr_get(&da, "files")->n, 2);
  assert_string_equal(ir_attr_get(&da, "names")->strs[1], "t");
  const IrAttr *ed = ir_attr_get(s, "eval_data");
  IrAttrs ea = {ed->args, ed->n};
  assert_int_equal(ir_attr_int(&ea, "block", 0), 16);
  assert_int_equal(ir_attr_get(s, "lr")->kind, ATTR_FUNC);
  IrFunc *lr = ir_func_find(fx->m, "lr");
  assert_non_null(lr);
  assert_int_equal(lr->body->nargs, 3);
  assert_string_equal(lr->body->args[2]->name, "total_steps");
  assert_string_equal(lr->ret_names[0], "lr");
  assert_int_equal(fx->m->syms[0].value, 16);
}

static void test_train_errors(void **state) {
  Fx *fx = *state;
  assert_null(fx_compile(fx, arena_printf(fx->a, trained, "1e-3 * bogus(step)")));
  assert_non_null(strstr(fx_errors(fx), "unknown function 'bogus'"));
  char *bad = arena_printf(fx->a, trained, "0.1");
  char *k = strstr(bad, "seed");
  memcpy(k, "sead", 4);
  assert_null(fx_compile(fx, bad));
  assert_non_null(strstr(fx_errors(fx), "unknown train setting 'sead'"));
}

/* Run @lr at a step with the interpreter. */
static double lr_at(Fx *fx, double step, double total) {
  IrFunc *f = ir_func_find(fx->m, "lr");
  float in[3] = {(float)step, 0.0f, (float)total};
  IrTensor ins[3];
  for (int i = 0; i < 3; i++) {
    ins[i].type = ir_type_scalar(DT_F32);
    ins[i].data = &in[i];
  }
  IrTensor out;
  IrInterpOpts o = {0};
  const char *err = NULL;
  if (!ir_interp(fx->m, f, ins, NULL, &out, &o, fx->a, &err))
    fail_msg("interp: %s", err ? err : "?");
  return *(float *)out.data;
}

static void test_lr_schedules(void **state) {
  Fx *fx = *state;
  const double pi = 3.14159265358979;
  assert_compiles(fx, arena_printf(fx->a, trained,
      "2 * warmup_cosine(step, warmup: 10, total: total_steps)"));
  assert_true(fabs(lr_at(fx, 4, 110) - 2 * 5.0 / 10) < 1e-5);
  assert_true(fabs(lr_at(fx, 10, 110) - 2.0) < 1e-5);
  assert_true(fabs(lr_at(fx, 60, 110) - 2 * 0.5 * (1 + cos(pi * 0.5))) < 1e-5);
  assert_true(fabs(lr_at(fx, 200, 110)) < 1e-5);
  assert_compiles(fx, arena_printf(fx->a, trained,
      "0.5 / (1 + step) ** 0.6"));
  assert_true(fabs(lr_at(fx, 9, 100) - 0.5 / pow(10, 0.6)) < 1e-5);
  assert_compiles(fx, arena_printf(fx->a, trained,
      "step_decay(step, every: 10, gamma: 0.5)"));
  assert_true(fabs(lr_at(fx, 25, 100) - 0.25) < 1e-6);
  assert_compiles(fx, arena_printf(fx->a, trained,
      "linear_decay(step, total: total_steps)"));
  assert_true(fabs(lr_at(fx, 25, 100) - 0.75) < 1e-6);
  assert_compiles(fx, arena_printf(fx->a, trained,
      "inverse_sqrt(step, warmup: 4)"));
  assert_true(fabs(lr_at(fx, 1, 100) - 0.5) < 1e-6);
  assert_true(fabs(lr_at(fx, 16, 100) - 0.5) < 1e-5);
}

static void test_model_choice(void **state) {
  Fx *fx = *state;
  assert_compiles(fx, "model a {\n    input x: f32[2]\n    output y = x\n}\n"
                      "model b {\n    input x: f32[3]\n    output y = x\n}\n");
  assert_string_equal(fx->m->name, "b");
  assert_compiles(fx, "model a {\n    input x: f32[B]\n    input t: f32[B]\n"
                      "    loss mse(x, t)\n}\n"
                      "model b {\n    input x: f32[3]\n    output y = x\n}\n"
                      "train a {\n    batch 5\n}\n");
  assert_string_equal(fx->m->name, "a");
  assert_string_equal(arg_type(fx, "loss", 0), "f32[B]");
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
      T(test_param_names_counted),
      T(test_param_names_nested_and_loops),
      T(test_param_init_attrs),
      T(test_model_functions),
      T(test_no_loss_only_forward),
      T(test_broadcast_and_matmul),
      T(test_literal_promotion),
      T(test_builtins_attrs),
      T(test_causal_attention_pattern),
      T(test_scan_lowering),
      T(test_scan_carry_type_change),
      T(test_state_updates),
      T(test_train_settings),
      T(test_train_errors),
      T(test_lr_schedules),
      T(test_model_choice),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
** This file contains the unit tests of the reference interpreter's core
** (ir/interp.c, interp_ew.c, interp_shape.c): the kernel table against
** ops.def, elementwise ops and the activation oracles of algorithms.md
** section 8, f32/f16/bf16 rounding against f64, integer arithmetic and
** casts, reductions, shape ops, scan (linear recurrence, LSTM, reverse),
** rand (Philox known answers, determinism, distribution), globals,
** dimension symbols and run-time errors.  Linear algebra, vision, losses
** and metrics are in test_interp_nn.c.
*/
#include "test_interp_util.h"

/* ------------------------------------------------------------ table */

static void test_interp_kernel_table_complete(void **state) {
  (void)state;
  for (int op = 0; op < IR_OP_COUNT; op++) {
    if (!ir_interp_has_kernel((IrOp)op))
      fail_msg("op %s has no interpreter kernel", ir_op_info[op].name);
    double x[3] = {0.5, 0.25, 2}, r;
    bool want = (ir_op_info[op].flags & OPF_FUSABLE) && op != IR_OP_CAST;
    bool got = ir_interp_scalar((IrOp)op, NULL, ir_op_info[op].min_args, x, &r);
    if (got != want)
      fail_msg("ir_interp_scalar(%s) returned %d", ir_op_info[op].name, got);
  }
  assert_false(ir_interp_has_kernel(IR_OP_COUNT));
}

/* -------------------------------------------------------- activations */

static const double act_x[8] = {-3, -1, -0.5, 0, 0.5, 1, 2, 3};

typedef struct ActRow {
  IrOp op;
  double v[8];
} ActRow;

/* algorithms.md section 8, value oracles. */
static const ActRow act_table[] = {
    {IR_OP_GELU, {-0.0040497, -0.1586553, -0.1542688, 0, 0.3457312, 0.8413447,
                  1.9544997, 2.9959503}},
    {IR_OP_GELU_TANH, {-0.0036374, -0.1588080, -0.1542860, 0, 0.3457140,
                       0.8411920, 1.9545977, 2.9963626}},
    {IR_OP_SILU, {-0.1422776, -0.2689414, -0.1887703, 0, 0.3112297, 0.7310586,
                  1.7615942, 2.8577224}},
    {IR_OP_MISH, {-0.1456475, -0.3034015, -0.2207438, 0, 0.3752452, 0.8650984,
                  1.9439590, 2.9865350}},
    {IR_OP_SOFTPLUS, {0.0485874, 0.3132617, 0.4740770, 0.6931472, 0.9740770,
                      1.3132617, 2.1269280, 3.0485874}},
    {IR_OP_ELU, {-0.9502129, -0.6321206, -0.3934693, 0, 0.5, 1, 2, 3}},
    {IR_OP_SELU, {-1.6705687, -1.1113307, -0.6917582, 0, 0.5253505, 1.0507010,
                  2.1014020, 3.1521030}},
    {IR_OP_HARD_SIGMOID, {0, 1.0 / 3, 0.4166667, 0.5, 0.5833333, 2.0 / 3,
                          0.8333333, 1}},
    {IR_OP_HARD_SWISH, {0, -1.0 / 3, -0.2083333, 0, 0.2916667, 2.0 / 3,
                        1.6666667, 3}},
    {IR_OP_RELU, {0, 0, 0, 0, 0.5, 1, 2, 3}},
    {IR_OP_LEAKY_RELU, {-0.03, -0.01, -0.005, 0, 0.5, 1, 2, 3}},
    {IR_OP_SOFTSIGN, {-0.75, -0.5, -1.0 / 3, 0, 1.0 / 3, 0.5, 2.0 / 3, 0.75}},
    {IR_OP_STEP, {0, 0, 0, 0, 1, 1, 1, 1}},
    {IR_OP_SIGMOID, {0.0474259, 0.2689414, 0.3775407, 0.5, 0.6224593,
                     0.7310586, 0.8807971, 0.9525741}},
    {IR_OP_TANH, {-0.9950548, -0.7615942, -0.4621172, 0, 0.4621172, 0.7615942,
                  0.9640276, 0.9950548}},
};

static void test_interp_activation_oracles(void **state) {
  Fx *fx = *state;
  In in = {T1(DT_F32, 8), act_x};
  for (size_t r = 0; r < sizeof act_table / sizeof act_table[0]; r++) {
    const ActRow *row = &act_table[r];
    const char *name = ir_op_info[row->op].name;
    double *y64 = op1(fx, row->op, 1, &in, NULL, T1(DT_F32, 8), true, NULL);
    double *y32 = op1(fx, row->op, 1, &in, NULL, T1(DT_F32, 8), false, NULL);
    for (int i = 0; i < 8; i++) {
      if (fabs(y64[i] - row->v[i]) > 1e-6)
        fail_msg("%s(%g) = %.9g, want %.7f", name, act_x[i], y64[i], row->v[i]);
      if (fabs(y32[i] - row->v[i]) > 1e-6)
        fail_msg("f32 %s(%g) = %.9g", name, act_x[i], y32[i]);
      assert_true(y32[i] == (double)(float)y64[i]); /* rounded once */
      double s;
      assert_true(ir_interp_scalar(row->op, NULL, 1, &act_x[i], &s));
      assert_true(s == y64[i]); /* the same code as the tensor kernel */
    }
  }
}

static void test_interp_activation_attrs(void **state) {
  Fx *fx = *state;
  IrAttrs at = {0};
  ir_attr_set_float(fx->m, &at, "threshold", 0.5);
  In in = {T1(DT_F32, 8), act_x};
  double *s = op1(fx, IR_OP_STEP, 1, &in, &at, T1(DT_F32, 8), true, NULL);
  double ws[8] = {0, 0, 0, 0, 0, 1, 1, 1}; /* 0.5 > 0.5 is false */
  assert_close(s, ws, 8, 0, "step");

  IrAttrs sp = {0};
  ir_attr_set_float(fx->m, &sp, "beta", 2);
  ir_attr_set_float(fx->m, &sp, "threshold", 1);
  double xs[3] = {3, 0.25, -1};
  In i3 = {T1(DT_F32, 3), xs};
  double *y = op1(fx, IR_OP_SOFTPLUS, 1, &i3, &sp, T1(DT_F32, 3), true, NULL);
  double wy[3] = {3, log1p(exp(0.5)) / 2, log1p(exp(-2)) / 2};
  assert_close(y, wy, 3, 1e-15, "softplus beta 2");

  double x6[4] = {-1, 3, 6, 7}, w6[4] = {0, 3, 6, 6};
  In i4 = {T1(DT_F32, 4), x6};
  assert_close(op1(fx, IR_OP_RELU6, 1, &i4, NULL, T1(DT_F32, 4), true, NULL),
               w6, 4, 0, "relu6");
  IrAttrs la = {0};
  ir_attr_set_float(fx->m, &la, "alpha", 0.2);
  double wl[4] = {-0.2, 3, 6, 7};
  assert_close(op1(fx, IR_OP_LEAKY_RELU, 1, &i4, &la, T1(DT_F32, 4), true, NULL),
               wl, 4, 1e-15, "leaky_relu alpha");
}

/* glu / swiglu / geglu split the axis into halves a, b. */
static void test_interp_gated(void **state) {
  Fx *fx = *state;
  uint64_t s = 7;
  double *x = rnd_vec(fx, &s, 3 * 6, -2, 2);
  In in = {T2(DT_F32, 3, 6), x};
  IrOp ops[3] = {IR_OP_GLU, IR_OP_SWIGLU, IR_OP_GEGLU};
  for (int k = 0; k < 3; k++) {
    double *y = op1(fx, ops[k], 1, &in, NULL, T2(DT_F32, 3, 3), true, NULL);
    for (int r = 0; r < 3; r++)
      for (int j = 0; j < 3; j++) {
        double a = x[r * 6 + j], b = x[r * 6 + j + 3], w;
        if (k == 0) w = a / (1 + exp(-b));
        else if (k == 1) w = a / (1 + exp(-a)) * b;
        else w = 0.5 * a * (1 + erf(a / sqrt(2.0))) * b;
        assert_close(&y[r * 3 + j], &w, 1, 1e-14, ir_op_info[ops[k]].name);
      }
  }
  /* axis 0 of [4, 3]: a = rows 0-1, b = rows 2-3 */
  IrAttrs at = {0};
  ir_attr_set_int(fx->m, &at, "axis", 0);
  In i2 = {T2(DT_F32, 4, 3), x};
  double *y = op1(fx, IR_OP_GLU, 1, &i2, &at, T2(DT_F32, 2, 3), true, NULL);
  for (int i = 0; i < 6; i++) {
    double w = x[i] / (1 + exp(-x[i + 6]));
    assert_close(&y[i], &w, 1, 1e-14, "glu axis 0");
  }
}

/* -------------------------------------------------------- elementwise */

static void test_interp_unary_math(void **state) {
  Fx *fx = *state;
  uint64_t s = 3;
  double *x = rnd_vec(fx, &s, 17, 0.1, 4);
  In in = {T1(DT_F32, 17), x};
  struct { IrOp op; double (*f)(double); } fs[] = {
      {IR_OP_EXP, exp}, {IR_OP_LOG, log}, {IR_OP_SQRT, sqrt},
      {IR_OP_SIN, sin}, {IR_OP_COS, cos}, {IR_OP_ERF, erf},
      {IR_OP_ABS, fabs}, {IR_OP_TANH, tanh}};
  for (size_t k = 0; k < sizeof fs / sizeof fs[0]; k++) {
    double *y = op1(fx, fs[k].op, 1, &in, NULL, T1(DT_F32, 17), true, NULL);
    for (int i = 0; i < 17; i++) {
      double w = fs[k].f(x[i]);
      assert_close(&y[i], &w, 1, 1e-15, ir_op_info[fs[k].op].name);
    }
  }
  double *y = op1(fx, IR_OP_RSQRT, 1, &in, NULL, T1(DT_F32, 17), true, NULL);
  double *ng = op1(fx, IR_OP_NEG, 1, &in, NULL, T1(DT_F32, 17), true, NULL);
  for (int i = 0; i < 17; i++) {
    assert_true(fabs(y[i] - 1 / sqrt(x[i])) < 1e-15);
    assert_true(ng[i] == -x[i]);
  }
  double sx[3] = {-2, 0, 3}, sw[3] = {-1, 0, 1};
  In si = {T1(DT_F32, 3), sx};
  assert_close(op1(fx, IR_OP_SIGN, 1, &si, NULL, T1(DT_F32, 3), false, NULL),
               sw, 3, 0, "sign");
  IrAttrs at = {0};
  ir_attr_set_float(fx->m, &at, "lo", -1);
  ir_attr_set_float(fx->m, &at, "hi", 0.5);
  double cw[3] = {-1, 0, 0.5};
  assert_close(op1(fx, IR_OP_CLAMP, 1, &si, &at, T1(DT_F32, 3), false, NULL),
               cw, 3, 0, "clamp");
  IrAttrs lo = {0};
  ir_attr_set_float(fx->m, &lo, "lo", 0);
  double lw[3] = {0, 0, 3};
  assert_close(op1(fx, IR_OP_CLAMP, 1, &si, &lo, T1(DT_F32, 3), false, NULL),
               lw, 3, 0, "clamp lo only");
  double bx[3] = {0, 1, 1}, bw[3] = {1, 0, 0};
  In bi = {T1(DT_BOOL, 3), bx};
  assert_close(op1(fx, IR_OP_NOT, 1, &bi, NULL, T1(DT_BOOL, 3), false, NULL),
               bw, 3, 0, "not");
}

static double binop(IrOp op, double a, double b) {
  switch (op) {
  case IR_OP_ADD: return a + b;
  case IR_OP_SUB: return a - b;
  case IR_OP_MUL: return a * b;
  case IR_OP_DIV: return a / b;
  case IR_OP_POW: return pow(a, b);
  case IR_OP_MAXIMUM: return a > b ? a : b;
  case IR_OP_MINIMUM: return a < b ? a : b;
  case IR_OP_EQ: return a == b;
  case IR_OP_NE: return a != b;
  case IR_OP_LT: return a < b;
  case IR_OP_LE: return a <= b;
  case IR_OP_GT: return a > b;
  default: return a >= b;
  }
}

/* [3,1] op [17] -> [3,17], every binary op, against a written-out loop. */
static void test_interp_binary_broadcast(void **state) {
  Fx *fx = *state;
  double a[3] = {1, 2, 3}, b[17];
  for (int j = 0; j < 17; j++) b[j] = 0.5 * (j % 7);
  In in[2] = {{T2(DT_F32, 3, 1), a}, {T1(DT_F32, 17), b}};
  IrOp ops[] = {IR_OP_ADD, IR_OP_SUB, IR_OP_MUL, IR_OP_DIV, IR_OP_POW,
                IR_OP_MAXIMUM, IR_OP_MINIMUM, IR_OP_EQ, IR_OP_NE, IR_OP_LT,
                IR_OP_LE, IR_OP_GT, IR_OP_GE};
  for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
    bool cmp = ops[k] >= IR_OP_EQ;
    IrType rt = T2(cmp ? DT_BOOL : DT_F32, 3, 17);
    double *y = op1(fx, ops[k], 2, in, NULL, rt, true, NULL);
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 17; j++) {
        double w = binop(ops[k], a[i], b[j]);
        assert_close(&y[i * 17 + j], &w, 1, 1e-15, ir_op_info[ops[k]].name);
      }
  }
  /* where(cond[3,1], x[1,4], y[]) -> [3,4] */
  double c[3] = {1, 0, 1}, x[4] = {10, 11, 12, 13}, z = -1;
  In w3[3] = {{T2(DT_BOOL, 3, 1), c}, {T2(DT_F32, 1, 4), x}, {T0(DT_F32), &z}};
  double *y = op1(fx, IR_OP_WHERE, 3, w3, NULL, T2(DT_F32, 3, 4), false, NULL);
  for (int i = 0; i < 12; i++) {
    double w = c[i / 4] ? x[i % 4] : z;
    assert_close(&y[i], &w, 1, 0, "where");
  }
  /* size-1 dimensions: [17,1] * [1,1,3] -> [1,17,3] */
  double c17[17], c3[3] = {2, -1, 0.5};
  for (int i = 0; i < 17; i++) c17[i] = i - 8;
  In o1[2] = {{T2(DT_F32, 17, 1), c17}, {T3(DT_F32, 1, 1, 3), c3}};
  double *m1 = op1(fx, IR_OP_MUL, 2, o1, NULL, T3(DT_F32, 1, 17, 3), false, NULL);
  for (int i = 0; i < 51; i++) assert_true(m1[i] == c17[i / 3] * c3[i % 3]);
  In o2[2] = {{T1(DT_F32, 1), c3}, {T1(DT_F32, 1), c17}};
  assert_true(op1(fx, IR_OP_SUB, 2, o2, NULL, T1(DT_F32, 1), false, NULL)[0] == 10);
  double p[2] = {0, 1}, q[2] = {0, 1};
  In l2[2] = {{T2(DT_BOOL, 2, 1), p}, {T2(DT_BOOL, 1, 2), q}};
  double wa[4] = {0, 0, 0, 1}, wo[4] = {0, 1, 1, 1};
  assert_close(op1(fx, IR_OP_AND, 2, l2, NULL, T2(DT_BOOL, 2, 2), false, NULL),
               wa, 4, 0, "and");
  assert_close(op1(fx, IR_OP_OR, 2, l2, NULL, T2(DT_BOOL, 2, 2), false, NULL),
               wo, 4, 0, "or");
  /* maximum/minimum propagate NaN (PyTorch) */
  double na[2] = {NAN, 1}, nb[2] = {2, NAN};
  In nn[2] = {{T1(DT_F32, 2), na}, {T1(DT_F32, 2), nb}};
  double *mx = op1(fx, IR_OP_MAXIMUM, 2, nn, NULL, T1(DT_F32, 2), false, NULL);
  assert_true(isnan(mx[0]) && isnan(mx[1]));
}

/* f32 mode rounds after every op; f64 mode does not. */
static void test_interp_f32_vs_f64(void **state) {
  Fx *fx = *state;
  double one = 1, tiny = 1e-8;
  In in[2] = {{T0(DT_F32), &one}, {T0(DT_F32), &tiny}};
  double *y32 = op1(fx, IR_OP_ADD, 2, in, NULL, T0(DT_F32), false, NULL);
  double *y64 = op1(fx, IR_OP_ADD, 2, in, NULL, T0(DT_F32), true, NULL);
  assert_true(y32[0] == 1.0);
  assert_true(y64[0] == 1.0 + 1e-8 && y64[0] != 1.0);
  /* a chain: (1 + 1e-8) - 1 is 0 in f32, 1e-8 in f64 */
  Fn g = fn_new(fx);
  IrValue *a = fn_arg(fx, &g, T0(DT_F32)), *b = fn_arg(fx, &g, T0(DT_F32));
  IrValue *s = node(fx, &g, IR_OP_ADD, 2, (IrValue *[]){a, b}, NULL, T0(DT_F32));
  IrValue *d = node(fx, &g, IR_OP_SUB, 2, (IrValue *[]){s, a}, NULL, T0(DT_F32));
  IrTensor h32[2] = {host(fx, T0(DT_F32), &one, false),
                     host(fx, T0(DT_F32), &tiny, false)};
  IrTensor h64[2] = {host(fx, T0(DT_F32), &one, true),
                     host(fx, T0(DT_F32), &tiny, true)};
  IrTensor o32, o64;
  fn_run(fx, &g, 1, &d, h32, &o32, false, NULL);
  assert_true(((float *)o32.data)[0] == 0.0f);
  IrInterpOpts o = {.f64 = true};
  assert_true(ir_interp(fx->m, g.f, h64, NULL, &o64, &o, fx->a, NULL));
  double d64 = ((double *)o64.data)[0];
  assert_true(d64 == (1.0 + 1e-8) - 1.0 && fabs(d64 - 1e-8) < 1e-15);
}

static void test_interp_round_formats(void **state) {
  Fx *fx = *state;
  /* bf16 oracles of algorithms.md section 4 */
  assert_true(ir_interp_round(DT_BF16, 1.00390625) == 1.0);
  assert_true(ir_interp_round(DT_BF16, 1.01171875) == 1.015625);
  assert_true(ir_interp_round(DT_BF16, 3.14159265) == 3.140625);
  assert_true(ir_interp_round(DT_BF16, 65504) == 65536);
  assert_true(isinf(ir_interp_round(DT_BF16, 3.4e38)));
  /* f16: ties to even, overflow, subnormals */
  assert_true(ir_interp_round(DT_F16, 65504) == 65504);
  assert_true(ir_interp_round(DT_F16, 65519) == 65504);
  assert_true(isinf(ir_interp_round(DT_F16, 65520)));
  assert_true(ir_interp_round(DT_F16, 1 + 0x1p-11) == 1);
  assert_true(ir_interp_round(DT_F16, 1 + 3 * 0x1p-11) == 1 + 0x1p-9);
  assert_true(ir_interp_round(DT_F16, 0x1p-25) == 0);
  assert_true(ir_interp_round(DT_F16, 3 * 0x1p-25) == 0x1p-23);
  assert_true(ir_interp_round(DT_F16, -0x1p-24) == -0x1p-24);
  assert_true(ir_interp_round(DT_F16, 0.1) == 0.0999755859375);
  assert_true(ir_interp_round(DT_F32, 0.1) == (double)0.1f);
  assert_true(ir_interp_round(DT_I32, -2.7) == -2);
  assert_true(ir_interp_round(DT_BOOL, 0.5) == 1);
  /* an op in bf16 rounds its result */
  double a[2] = {1, 1}, b[2] = {0.00390625, 0.01171875}, w[2] = {1, 1.015625};
  In in[2] = {{T1(DT_BF16, 2), a}, {T1(DT_BF16, 2), b}};
  assert_close(op1(fx, IR_OP_ADD, 2, in, NULL, T1(DT_BF16, 2), false, NULL), w,
               2, 0, "bf16 add");
  /* an unrounded bf16 input is rounded when loaded */
  double ua[1] = {1 + 3 * 0x1p-9}, uo[1] = {1}, uw[1] = {0x1p-7};
  In un[2] = {{T1(DT_BF16, 1), ua}, {T1(DT_BF16, 1), uo}};
  assert_close(op1(fx, IR_OP_SUB, 2, un, NULL, T1(DT_BF16, 1), false, NULL), uw,
               1, 0, "bf16 input rounded");
  double w64[2] = {1.00390625, 1.01171875};
  assert_close(op1(fx, IR_OP_ADD, 2, in, NULL, T1(DT_BF16, 2), true, NULL),
               w64, 2, 0, "bf16 add in f64 mode");
}

static void test_interp_int_arith(void **state) {
  Fx *fx = *state;
  double a[5] = {2147483647, -7, 7, 65536, 3}, b[5] = {1, 2, -2, 65536, 4};
  In in[2] = {{T1(DT_I32, 5), a}, {T1(DT_I32, 5), b}};
  double wadd[5] = {-2147483648.0, -5, 5, 131072, 7};
  double wdiv[5] = {2147483647, -3, -3, 1, 0};
  double wmul[5] = {2147483647, -14, -14, 0, 12};
  double wpow[5] = {2147483647, 49, 0, 0, 81};
  assert_close(op1(fx, IR_OP_ADD, 2, in, NULL, T1(DT_I32, 5), false, NULL),
               wadd, 5, 0, "i32 add wraps");
  assert_close(op1(fx, IR_OP_DIV, 2, in, NULL, T1(DT_I32, 5), false, NULL),
               wdiv, 5, 0, "i32 div truncates");
  assert_close(op1(fx, IR_OP_MUL, 2, in, NULL, T1(DT_I32, 5), false, NULL),
               wmul, 5, 0, "i32 mul wraps");
  double pb[5] = {1, 2, 0, 2, 4};
  wpow[2] = 1;
  In pin[2] = {{T1(DT_I32, 5), a}, {T1(DT_I32, 5), pb}};
  assert_close(op1(fx, IR_OP_POW, 2, pin, NULL, T1(DT_I32, 5), false, NULL),
               wpow, 5, 0, "i32 pow");
  double ua[2] = {250, 3}, ub[2] = {10, 5}, uw[2] = {4, 254};
  In uin[2] = {{T1(DT_U8, 2), ua}, {T1(DT_U8, 2), ub}};
  assert_close(op1(fx, IR_OP_ADD, 2, uin, NULL, T1(DT_U8, 2), false, NULL),
               uw, 1, 0, "u8 add wraps");
  assert_close(op1(fx, IR_OP_SUB, 2, uin, NULL, T1(DT_U8, 2), false, NULL) + 1,
               uw + 1, 1, 0, "u8 sub wraps");
  double z[5] = {1, 1, 0, 1, 1};
  In zin[2] = {{T1(DT_I32, 5), a}, {T1(DT_I32, 5), z}};
  const char *err = NULL;
  assert_null(op1(fx, IR_OP_DIV, 2, zin, NULL, T1(DT_I32, 5), false, &err));
  assert_string_equal(err, "div: integer division by zero at index 2");
}

static void test_interp_cast(void **state) {
  Fx *fx = *state;
  double x[5] = {-2.7, 2.7, 1e10, NAN, -0.5};
  In in = {T1(DT_F32, 5), x};
  double wi[5] = {-2, 2, 2147483647, 0, 0};
  assert_close(op1(fx, IR_OP_CAST, 1, &in, NULL, T1(DT_I32, 5), false, NULL),
               wi, 5, 0, "f32 -> i32");
  double wb[5] = {1, 1, 1, 1, 1};
  assert_close(op1(fx, IR_OP_CAST, 1, &in, NULL, T1(DT_BOOL, 5), false, NULL),
               wb, 5, 0, "f32 -> bool");
  double iv[3] = {300, -1, 16777217}, wu[3] = {44, 255, 1};
  In ii = {T1(DT_I32, 3), iv};
  assert_close(op1(fx, IR_OP_CAST, 1, &ii, NULL, T1(DT_U8, 3), false, NULL),
               wu, 3, 0, "i32 -> u8 wraps");
  double wf[3] = {300, -1, 16777216};
  assert_close(op1(fx, IR_OP_CAST, 1, &ii, NULL, T1(DT_F32, 3), false, NULL),
               wf, 3, 0, "i32 -> f32 rounds");
  double hv[2] = {1 + 0x1p-11, 0.1}, wh[2] = {1, 0.0999755859375};
  In hi = {T1(DT_F64, 2), hv};
  assert_close(op1(fx, IR_OP_CAST, 1, &hi, NULL, T1(DT_F16, 2), false, NULL),
               wh, 2, 0, "f64 -> f16");
  double lv[2] = {4294967297.0, -3}, wl[2] = {1, -3};
  In li = {T1(DT_I64, 2), lv};
  assert_close(op1(fx, IR_OP_CAST, 1, &li, NULL, T1(DT_I32, 2), false, NULL),
               wl, 2, 0, "i64 -> i32 wraps");
}

/* --------------------------------------------------------- reductions */

static void test_interp_reductions(void **state) {
  Fx *fx = *state;
  uint64_t s = 11;
  double *x = rnd_vec(fx, &s, 2 * 3 * 5, -2, 2);
  In in = {T3(DT_F32, 2, 3, 5), x};
  IrAttrs ax1 = {0}, ax02 = {0}, keep = {0}, corr0 = {0};
  ir_attr_set_ints(fx->m, &ax1, "axes", 1, (int64_t[]){1});
  ir_attr_set_ints(fx->m, &ax02, "axes", 2, (int64_t[]){0, -1});
  ir_attr_set_ints(fx->m, &keep, "axes", 1, (int64_t[]){1});
  ir_attr_set_bool(fx->m, &keep, "keepdims", true);
  ir_attr_set_ints(fx->m, &corr0, "axes", 1, (int64_t[]){1});
  ir_attr_set_int(fx->m, &corr0, "correction", 0);
  double ws[10], wm[10], wmax[10], wmin[10], wl[10], wv[10], wv0[10];
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 5; k++) {
      double sum = 0, mx = -INFINITY, mn = INFINITY, e = 0, ss = 0;
      for (int j = 0; j < 3; j++) {
        double v = x[(i * 3 + j) * 5 + k];
        sum += v;
        mx = fmax(mx, v);
        mn = fmin(mn, v);
        e += exp(v);
      }
      for (int j = 0; j < 3; j++) {
        double d = x[(i * 3 + j) * 5 + k] - sum / 3;
        ss += d * d;
      }
      int o = i * 5 + k;
      ws[o] = sum, wm[o] = sum / 3, wmax[o] = mx, wmin[o] = mn;
      wl[o] = log(e), wv[o] = ss / 2, wv0[o] = ss / 3;
    }
  IrType r = T2(DT_F32, 2, 5);
  assert_close(op1(fx, IR_OP_SUM, 1, &in, &ax1, r, true, NULL), ws, 10, 1e-14, "sum");
  assert_close(op1(fx, IR_OP_MEAN, 1, &in, &ax1, r, true, NULL), wm, 10, 1e-14, "mean");
  assert_close(op1(fx, IR_OP_MAX, 1, &in, &ax1, r, true, NULL), wmax, 10, 0, "max");
  assert_close(op1(fx, IR_OP_MIN, 1, &in, &ax1, r, true, NULL), wmin, 10, 0, "min");
  assert_close(op1(fx, IR_OP_LOGSUMEXP, 1, &in, &ax1, r, true, NULL), wl, 10,
               1e-14, "logsumexp");
  assert_close(op1(fx, IR_OP_VAR, 1, &in, &ax1, r, true, NULL), wv, 10, 1e-14, "var");
  assert_close(op1(fx, IR_OP_VAR, 1, &in, &corr0, r, true, NULL), wv0, 10, 1e-14,
               "var correction 0");
  assert_close(op1(fx, IR_OP_SUM, 1, &in, &keep, T3(DT_F32, 2, 1, 5), true, NULL),
               ws, 10, 1e-14, "sum keepdims");
  /* axes [0, -1] -> [3]; no axes -> [] */
  double w3[3] = {0}, wall = 0;
  for (int i = 0; i < 30; i++) w3[(i / 5) % 3] += x[i], wall += x[i];
  assert_close(op1(fx, IR_OP_SUM, 1, &in, &ax02, T1(DT_F32, 3), true, NULL), w3,
               3, 1e-14, "sum axes 0,-1");
  assert_close(op1(fx, IR_OP_SUM, 1, &in, NULL, T0(DT_F32), true, NULL), &wall,
               1, 1e-14, "sum all");
  /* the LSE oracle of section 6, and a row of -inf */
  double l3[3] = {1, 2, 3}, lw = 3.407606;
  In li = {T1(DT_F32, 3), l3};
  assert_close(op1(fx, IR_OP_LOGSUMEXP, 1, &li, NULL, T0(DT_F32), false, NULL),
               &lw, 1, 1e-7, "lse(1,2,3)");
  double big[2] = {1000, 1000}, wbig = 1000 + log(2.0);
  In bi = {T1(DT_F32, 2), big};
  assert_close(op1(fx, IR_OP_LOGSUMEXP, 1, &bi, NULL, T0(DT_F32), true, NULL),
               &wbig, 1, 1e-15, "lse stable");
  double ninf[2] = {-INFINITY, -INFINITY};
  In ni = {T1(DT_F32, 2), ninf};
  double *y = op1(fx, IR_OP_LOGSUMEXP, 1, &ni, NULL, T0(DT_F32), false, NULL);
  assert_true(isinf(y[0]) && y[0] < 0);
}

static void test_interp_argmax(void **state) {
  Fx *fx = *state;
  double x[8] = {1, 3, 3, 2, 5, 0, 5, 1};
  In in = {T2(DT_F32, 2, 4), x};
  double w1[2] = {1, 0};
  assert_close(op1(fx, IR_OP_ARGMAX, 1, &in, NULL, T1(DT_I32, 2), false, NULL),
               w1, 2, 0, "argmax -1 first wins");
  IrAttrs at = {0};
  ir_attr_set_int(fx->m, &at, "axis", 0);
  double w0[4] = {1, 0, 1, 0};
  assert_close(op1(fx, IR_OP_ARGMAX, 1, &in, &at, T1(DT_I32, 4), false, NULL),
               w0, 4, 0, "argmax axis 0");
  ir_attr_set_bool(fx->m, &at, "keepdims", true);
  assert_close(op1(fx, IR_OP_ARGMAX, 1, &in, &at, T2(DT_I32, 1, 4), false, NULL),
               w0, 4, 0, "argmax keepdims");
}

/* ---------------------------------------------------------- shape ops */

static void test_interp_shape_ops(void **state) {
  Fx *fx = *state;
  double x[30];
  for (int i = 0; i < 30; i++) x[i] = i;
  In in = {T3(DT_F32, 2, 3, 5), x};
  /* reshape keeps order */
  assert_close(op1(fx, IR_OP_RESHAPE, 1, &in, NULL, T2(DT_F32, 5, 6), false, NULL),
               x, 30, 0, "reshape");
  /* transpose perm [2, 0, 1]: y[k, i, j] = x[i, j, k] */
  IrAttrs pa = {0};
  ir_attr_set_ints(fx->m, &pa, "perm", 3, (int64_t[]){2, 0, 1});
  double *t = op1(fx, IR_OP_TRANSPOSE, 1, &in, &pa, T3(DT_F32, 5, 2, 3), false, NULL);
  for (int k = 0; k < 5; k++)
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        assert_true(t[(k * 2 + i) * 3 + j] == x[(i * 3 + j) * 5 + k]);
  /* broadcast [3,1] -> [2,3,4] */
  In b31 = {T2(DT_F32, 3, 1), x};
  double *b = op1(fx, IR_OP_BROADCAST, 1, &b31, NULL, T3(DT_F32, 2, 3, 4), false, NULL);
  for (int i = 0; i < 24; i++) assert_true(b[i] == x[(i / 4) % 3]);
  /* concat axis 1: [2,1] ++ [2,3] */
  IrAttrs c1 = {0};
  ir_attr_set_int(fx->m, &c1, "axis", 1);
  double p[2] = {-1, -2};
  In cc[2] = {{T2(DT_F32, 2, 1), p}, {T2(DT_F32, 2, 3), x}};
  double wc[8] = {-1, 0, 1, 2, -2, 3, 4, 5};
  assert_close(op1(fx, IR_OP_CONCAT, 2, cc, &c1, T2(DT_F32, 2, 4), false, NULL),
               wc, 8, 0, "concat");
  /* stack axis 1: two [2,3] -> [2,2,3] */
  In st[2] = {{T2(DT_F32, 2, 3), x}, {T2(DT_F32, 2, 3), x + 6}};
  double ws[12] = {0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11};
  assert_close(op1(fx, IR_OP_STACK, 2, st, &c1, T3(DT_F32, 2, 2, 3), false, NULL),
               ws, 12, 0, "stack");
  /* pad [2,3] with [1,0,2,1], value 9 -> [3,6] */
  IrAttrs pd = {0};
  ir_attr_set_ints(fx->m, &pd, "pads", 4, (int64_t[]){1, 0, 2, 1});
  ir_attr_set_float(fx->m, &pd, "value", 9);
  double wp[18] = {9, 9, 9, 9, 9, 9, 9, 9, 0, 1, 2, 9, 9, 9, 3, 4, 5, 9};
  assert_close(op1(fx, IR_OP_PAD, 1, &st[0], &pd, T2(DT_F32, 3, 6), false, NULL),
               wp, 18, 0, "pad");
  /* iota, constant, causal_mask */
  IrAttrs io = {0};
  ir_attr_set_int(fx->m, &io, "axis", 1);
  double wi1[6] = {0, 1, 2, 0, 1, 2}, wi0[6] = {0, 0, 0, 1, 1, 1};
  assert_close(op1(fx, IR_OP_IOTA, 0, NULL, &io, T2(DT_I32, 2, 3), false, NULL),
               wi1, 6, 0, "iota axis 1");
  assert_close(op1(fx, IR_OP_IOTA, 0, NULL, NULL, T2(DT_F32, 2, 3), false, NULL),
               wi0, 6, 0, "iota axis 0");
  IrAttrs cv = {0};
  ir_attr_set_float(fx->m, &cv, "value", 2.5);
  double w25[3] = {2.5, 2.5, 2.5};
  assert_close(op1(fx, IR_OP_CONSTANT, 0, NULL, &cv, T1(DT_F32, 3), false, NULL),
               w25, 3, 0, "constant");
  double *cm = op1(fx, IR_OP_CAUSAL_MASK, 0, NULL, NULL, T2(DT_F32, 3, 3), false, NULL);
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      assert_true(j <= i ? cm[i * 3 + j] == 0 : isinf(cm[i * 3 + j]) && cm[i * 3 + j] < 0);
}

static double *slice17(Fx *fx, int64_t start, int64_t end, int64_t step,
                       int64_t cnt) {
  static const double x[34] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                               12, 13, 14, 15, 16, 100, 101, 102, 103, 104,
                               105, 106, 107, 108, 109, 110, 111, 112, 113,
                               114, 115, 116};
  IrAttrs at = {0};
  ir_attr_set_int(fx->m, &at, "axis", -1);
  ir_attr_set_int(fx->m, &at, "start", start);
  ir_attr_set_int(fx->m, &at, "end", end);
  ir_attr_set_int(fx->m, &at, "step", step);
  In in = {T2(DT_F32, 2, 17), x};
  return op1(fx, IR_OP_SLICE, 1, &in, &at, T2(DT_F32, 2, cnt), false, NULL);
}

static void test_interp_slice(void **state) {
  Fx *fx = *state;
  double w1[6] = {12, 14, 16, 112, 114, 116};
  assert_close(slice17(fx, -5, 100, 2, 3), w1, 6, 0, "slice -5:100:2");
  double w2[6] = {10, 7, 4, 110, 107, 104};
  assert_close(slice17(fx, 10, 2, -3, 3), w2, 6, 0, "slice 10:2:-3");
  double *y = slice17(fx, 0, -1, 1, 16);
  for (int i = 0; i < 16; i++) assert_true(y[i] == i && y[16 + i] == 100 + i);
  double w4[4] = {16, 0, 116, 100};
  assert_close(slice17(fx, 100, -100, -16, 2), w4, 4, 0, "slice clamped negative");
}

static void test_interp_one_hot_gather(void **state) {
  Fx *fx = *state;
  double l[3] = {2, 0, 1};
  IrAttrs at = {0};
  ir_attr_set_int(fx->m, &at, "classes", 3);
  In li = {T1(DT_I32, 3), l};
  double w[9] = {0, 0, 1, 1, 0, 0, 0, 1, 0};
  assert_close(op1(fx, IR_OP_ONE_HOT, 1, &li, &at, T2(DT_F32, 3, 3), false, NULL),
               w, 9, 0, "one_hot");
  double tab[8] = {0, 1, 10, 11, 20, 21, 30, 31}, idx[6] = {3, 0, 1, 1, 2, 3};
  In gi[2] = {{T2(DT_F32, 4, 2), tab}, {T2(DT_I32, 2, 3), idx}};
  double *y = op1(fx, IR_OP_GATHER, 2, gi, NULL, T3(DT_F32, 2, 3, 2), false, NULL);
  for (int i = 0; i < 6; i++)
    for (int c = 0; c < 2; c++) assert_true(y[i * 2 + c] == idx[i] * 10 + c);
}

/* --------------------------------------------------------------- errors */

static void test_interp_label_errors(void **state) {
  Fx *fx = *state;
  double lg[60] = {0}, lab[6] = {1, 2, 3, 4, 5, 12};
  In in[2] = {{T2(DT_F32, 6, 10), lg}, {T1(DT_I32, 6), lab}};
  const char *err = NULL;
  assert_null(op1(fx, IR_OP_CROSS_ENTROPY, 2, in, NULL, T0(DT_F32), false, &err));
  assert_string_equal(err, "cross_entropy: label 12 out of range [0, 10) at index 5");
  lab[0] = -1;
  assert_null(op1(fx, IR_OP_NLL, 2, in, NULL, T0(DT_F32), false, &err));
  assert_string_equal(err, "nll: label -1 out of range [0, 10) at index 0");
  lab[0] = 1;
  lab[5] = 10;
  assert_null(op1(fx, IR_OP_ACCURACY, 2, in, NULL, T0(DT_F32), false, &err));
  assert_string_equal(err, "accuracy: label 10 out of range [0, 10) at index 5");
  assert_null(op1(fx, IR_OP_TOP_K, 2, in, NULL, T0(DT_F32), false, &err));
  assert_null(op1(fx, IR_OP_F1, 2, in, NULL, T0(DT_F32), false, &err));
  assert_null(op1(fx, IR_OP_SOFT_ACCURACY, 2, in, NULL, T0(DT_F32), false, &err));
  assert_null(op1(fx, IR_OP_SOFT_F1, 2, in, NULL, T0(DT_F32), false, &err));
  IrAttrs at = {0};
  ir_attr_set_int(fx->m, &at, "classes", 10);
  In oh = {T1(DT_I32, 6), lab};
  assert_null(op1(fx, IR_OP_ONE_HOT, 1, &oh, &at, T2(DT_F32, 6, 10), false, &err));
  assert_string_equal(err, "one_hot: label 10 out of range [0, 10) at index 5");
  double tab[4] = {0}, idx[2] = {1, 4};
  In gi[2] = {{T2(DT_F32, 4, 1), tab}, {T1(DT_I32, 2), idx}};
  assert_null(op1(fx, IR_OP_GATHER, 2, gi, NULL, T2(DT_F32, 2, 1), false, &err));
  assert_string_equal(err, "gather: index 4 out of range [0, 4) at index 1");
  /* binary metrics need 0/1 labels */
  double bx[2] = {1, -1}, by[2] = {1, 2};
  In bi[2] = {{T1(DT_F32, 2), bx}, {T1(DT_I32, 2), by}};
  assert_null(op1(fx, IR_OP_ACCURACY, 2, bi, NULL, T0(DT_F32), false, &err));
  assert_string_equal(err, "accuracy: label 2 is not 0 or 1 at index 1");
}

/* IR whose result types disagree with the operands is an error, not an
** out-of-bounds access. */
static void test_interp_type_disagreement(void **state) {
  Fx *fx = *state;
  double x[17] = {0};
  const char *err = NULL;
  In a4[2] = {{T1(DT_F32, 4), x}, {T1(DT_F32, 4), x}};
  assert_null(op1(fx, IR_OP_ADD, 2, a4, NULL, T1(DT_F32, 3), false, &err));
  assert_string_equal(err, "add: operand 0 does not broadcast to the result");
  IrAttrs pa = {0};
  ir_attr_set_ints(fx->m, &pa, "perm", 2, (int64_t[]){1, 0});
  In t23 = {T2(DT_F32, 2, 3), x};
  assert_null(op1(fx, IR_OP_TRANSPOSE, 1, &t23, &pa, T2(DT_F32, 2, 3), false, &err));
  assert_null(op1(fx, IR_OP_SUM, 1, &t23, NULL, T1(DT_F32, 2), false, &err));
  assert_null(op1(fx, IR_OP_RESHAPE, 1, &t23, NULL, T1(DT_F32, 5), false, &err));
  assert_null(op1(fx, IR_OP_MATMUL, 2, (In[]){t23, t23}, NULL, T2(DT_F32, 2, 3),
                  false, &err));
  /* a scan whose stacked result is shorter than the sequence */
  Fn g = fn_new(fx);
  IrValue *h = fn_arg(fx, &g, T0(DT_F32)), *xs = fn_arg(fx, &g, T1(DT_F32, 3));
  IrType res[2] = {T0(DT_F32), T1(DT_F32, 2)};
  SrcLoc loc = {0};
  IrNode *sn = ir_node_new(fx->m, g.b, IR_OP_SCAN, 2, (IrValue *[]){h, xs}, 2,
                           res, loc);
  ir_attr_set_int(fx->m, &sn->attrs, "ncarry", 1);
  ir_attr_set_ints(fx->m, &sn->attrs, "axes", 1, (int64_t[]){0});
  sn->body = ir_block_new(fx->m, g.f);
  sn->body->owner = sn;
  IrValue *bh = ir_block_add_arg(fx->m, sn->body, T0(DT_F32), NULL);
  IrValue *bx = ir_block_add_arg(fx->m, sn->body, T0(DT_F32), NULL);
  ir_block_set_rets(fx->m, sn->body, 2, (IrValue *[]){bx, bh});
  IrTensor ins[2] = {host(fx, T0(DT_F32), x, false), host(fx, T1(DT_F32, 3), x, false)};
  IrTensor outs[2];
  assert_false(fn_run(fx, &g, 2, sn->res, ins, outs, false, &err));
  assert_string_equal(err, "scan: result 1 has 2 positions along axis 0, not 3");
}

/* ----------------------------------------------------------------- scan */

/* A scan node with the given operands and result types; returns the node
** (its body is empty, with the argument types given). */
static IrNode *scan_node(Fx *fx, Fn *g, int nargs, IrValue **args, int nres,
                         const IrType *res, int ncarry, int naxes,
                         const int64_t *axes, bool reverse, int nbargs,
                         const IrType *bargs, IrValue **bvals) {
  SrcLoc loc = {0};
  IrNode *n = ir_node_new(fx->m, g->b, IR_OP_SCAN, nargs, args, nres, res, loc);
  ir_attr_set_int(fx->m, &n->attrs, "ncarry", ncarry);
  ir_attr_set_ints(fx->m, &n->attrs, "axes", naxes, axes);
  if (reverse) ir_attr_set_bool(fx->m, &n->attrs, "reverse", true);
  n->body = ir_block_new(fx->m, g->f);
  n->body->owner = n;
  for (int i = 0; i < nbargs; i++)
    bvals[i] = ir_block_add_arg(fx->m, n->body, bargs[i], NULL);
  return n;
}

/* h_t = a_t * h_{t-1} + x_t along axis 1 of [B, T], forward and reverse,
** against a plain loop; includes the oracle of algorithms.md section 2.1. */
static void run_linear_scan(Fx *fx, bool reverse) {
  enum { B = 3, T = 17 };
  double a[B * T], x[B * T], h0[B] = {0, 0.5, -1};
  for (int t = 0; t < T; t++)
    for (int b = 0; b < B; b++) {
      a[b * T + t] = 0.5 + 0.04 * t - 0.1 * b;
      x[b * T + t] = sin(t) + b;
    }
  Fn g = fn_new(fx);
  IrValue *args[3] = {fn_arg(fx, &g, T1(DT_F32, B)), fn_arg(fx, &g, T2(DT_F32, B, T)),
                      fn_arg(fx, &g, T2(DT_F32, B, T))};
  IrType res[2] = {T1(DT_F32, B), T2(DT_F32, B, T)};
  IrType bt[3] = {T1(DT_F32, B), T1(DT_F32, B), T1(DT_F32, B)};
  IrValue *bv[3];
  IrNode *sn = scan_node(fx, &g, 3, args, 2, res, 1, 2, (int64_t[]){1, -1},
                         reverse, 3, bt, bv);
  IrValue *m = nodeb(fx, sn->body, IR_OP_MUL, 2, (IrValue *[]){bv[1], bv[0]},
                     NULL, T1(DT_F32, B));
  IrValue *hn = nodeb(fx, sn->body, IR_OP_ADD, 2, (IrValue *[]){m, bv[2]}, NULL,
                      T1(DT_F32, B));
  ir_block_set_rets(fx->m, sn->body, 2, (IrValue *[]){hn, hn});
  IrTensor ins[3] = {host(fx, T1(DT_F32, B), h0, true),
                     host(fx, T2(DT_F32, B, T), a, true),
                     host(fx, T2(DT_F32, B, T), x, true)};
  IrTensor outs[2];
  fn_run(fx, &g, 2, sn->res, ins, outs, true, NULL);
  double *hf = vals(fx, &outs[0], true), *hs = vals(fx, &outs[1], true);
  for (int b = 0; b < B; b++) {
    double h = h0[b];
    for (int s = 0; s < T; s++) {
      int t = reverse ? T - 1 - s : s;
      h = a[b * T + t] * h + x[b * T + t];
      assert_close(&hs[b * T + t], &h, 1, 1e-14, "scan emitted");
    }
    assert_close(&hf[b], &h, 1, 1e-14, "scan final carry");
  }
  if (!reverse) {
    /* row 0: a_t = 0.5 + 0.04 t, b_t = sin t, h_-1 = 0 */
    double w[6] = {0, 0.841471, 1.397351, 1.007477, -0.091867, -1.023231};
    assert_close(hs, w, 6, 1e-6, "section 2.1 oracle");
    double h15 = 0.970105708;
    assert_close(&hs[15], &h15, 1, 1e-9, "section 2.1 h[15]");
  }
}

static void test_interp_scan_linear(void **state) { run_linear_scan(*state, false); }
static void test_interp_scan_reverse(void **state) { run_linear_scan(*state, true); }

static double sigm(double x) { return 1 / (1 + exp(-x)); }

/* An LSTM cell over x[B,T,I] along axis 1 with carries h, c and the
** weights captured from the enclosing function. */
static void test_interp_scan_lstm(void **state) {
  Fx *fx = *state;
  enum { B = 2, T = 5, I = 3, H = 4 };
  uint64_t s = 5;
  double *x = rnd_vec(fx, &s, B * T * I, -1, 1);
  double *wx = rnd_vec(fx, &s, I * 4 * H, -0.5, 0.5);
  double *wh = rnd_vec(fx, &s, H * 4 * H, -0.5, 0.5);
  double *h0 = rnd_vec(fx, &s, B * H, -0.1, 0.1), *c0 = rnd_vec(fx, &s, B * H, -0.1, 0.1);
  Fn g = fn_new(fx);
  IrType th = T2(DT_F32, B, H), tg = T2(DT_F32, B, 4 * H);
  IrValue *vh = fn_arg(fx, &g, th), *vc = fn_arg(fx, &g, th);
  IrValue *vx = fn_arg(fx, &g, T3(DT_F32, B, T, I));
  IrValue *vwx = fn_arg(fx, &g, T2(DT_F32, I, 4 * H));
  IrValue *vwh = fn_arg(fx, &g, T2(DT_F32, H, 4 * H));
  IrType res[3] = {th, th, T3(DT_F32, B, T, H)};
  IrType bt[3] = {th, th, T2(DT_F32, B, I)};
  IrValue *bv[3];
  IrNode *sn = scan_node(fx, &g, 3, (IrValue *[]){vh, vc, vx}, 3, res, 2, 1,
                         (int64_t[]){1}, false, 3, bt, bv);
  IrBlock *bb = sn->body;
  IrValue *gx = nodeb(fx, bb, IR_OP_MATMUL, 2, (IrValue *[]){bv[2], vwx}, NULL, tg);
  IrValue *gh = nodeb(fx, bb, IR_OP_MATMUL, 2, (IrValue *[]){bv[0], vwh}, NULL, tg);
  IrValue *ga = nodeb(fx, bb, IR_OP_ADD, 2, (IrValue *[]){gx, gh}, NULL, tg);
  IrValue *q[4];
  for (int k = 0; k < 4; k++) {
    IrAttrs at = {0};
    ir_attr_set_int(fx->m, &at, "axis", 1);
    ir_attr_set_int(fx->m, &at, "start", k * H);
    ir_attr_set_int(fx->m, &at, "end", (k + 1) * H);
    q[k] = nodeb(fx, bb, IR_OP_SLICE, 1, &ga, &at, th);
  }
  IrValue *si = nodeb(fx, bb, IR_OP_SIGMOID, 1, &q[0], NULL, th);
  IrValue *sf = nodeb(fx, bb, IR_OP_SIGMOID, 1, &q[1], NULL, th);
  IrValue *so = nodeb(fx, bb, IR_OP_SIGMOID, 1, &q[2], NULL, th);
  IrValue *tu = nodeb(fx, bb, IR_OP_TANH, 1, &q[3], NULL, th);
  IrValue *fc = nodeb(fx, bb, IR_OP_MUL, 2, (IrValue *[]){sf, bv[1]}, NULL, th);
  IrValue *iu = nodeb(fx, bb, IR_OP_MUL, 2, (IrValue *[]){si, tu}, NULL, th);
  IrValue *cn = nodeb(fx, bb, IR_OP_ADD, 2, (IrValue *[]){fc, iu}, NULL, th);
  IrValue *tc = nodeb(fx, bb, IR_OP_TANH, 1, &cn, NULL, th);
  IrValue *hn = nodeb(fx, bb, IR_OP_MUL, 2, (IrValue *[]){so, tc}, NULL, th);
  ir_block_set_rets(fx->m, bb, 3, (IrValue *[]){hn, cn, hn});
  IrTensor ins[5] = {host(fx, th, h0, true), host(fx, th, c0, true),
                     host(fx, T3(DT_F32, B, T, I), x, true),
                     host(fx, T2(DT_F32, I, 4 * H), wx, true),
                     host(fx, T2(DT_F32, H, 4 * H), wh, true)};
  IrTensor outs[3];
  fn_run(fx, &g, 3, sn->res, ins, outs, true, NULL);
  double *hT = vals(fx, &outs[0], true), *cT = vals(fx, &outs[1], true);
  double *hs = vals(fx, &outs[2], true);
  double h[B][H], c[B][H];
  for (int b = 0; b < B; b++)
    for (int j = 0; j < H; j++) h[b][j] = h0[b * H + j], c[b][j] = c0[b * H + j];
  for (int t = 0; t < T; t++) {
    double hn2[B][H];
    for (int b = 0; b < B; b++) {
      double z[4 * H];
      for (int k = 0; k < 4 * H; k++) {
        z[k] = 0;
        for (int i = 0; i < I; i++) z[k] += x[(b * T + t) * I + i] * wx[i * 4 * H + k];
        for (int j = 0; j < H; j++) z[k] += h[b][j] * wh[j * 4 * H + k];
      }
      for (int j = 0; j < H; j++) {
        c[b][j] = sigm(z[H + j]) * c[b][j] + sigm(z[j]) * tanh(z[3 * H + j]);
        hn2[b][j] = sigm(z[2 * H + j]) * tanh(c[b][j]);
      }
    }
    for (int b = 0; b < B; b++)
      for (int j = 0; j < H; j++) {
        h[b][j] = hn2[b][j];
        assert_close(&hs[(b * T + t) * H + j], &h[b][j], 1, 1e-13, "lstm h_t");
      }
  }
  for (int b = 0; b < B; b++)
    for (int j = 0; j < H; j++) {
      assert_close(&hT[b * H + j], &h[b][j], 1, 1e-13, "lstm h_T");
      assert_close(&cT[b * H + j], &c[b][j], 1, 1e-13, "lstm c_T");
    }
}

/* A body that swaps its two carries: the double buffering must not let
** one overwrite the other. */
static void test_interp_scan_swap_carries(void **state) {
  Fx *fx = *state;
  Fn g = fn_new(fx);
  IrValue *a = fn_arg(fx, &g, T0(DT_F32)), *b = fn_arg(fx, &g, T0(DT_F32));
  IrValue *xs = fn_arg(fx, &g, T1(DT_F32, 3));
  IrType res[3] = {T0(DT_F32), T0(DT_F32), T1(DT_F32, 3)};
  IrType bt[3] = {T0(DT_F32), T0(DT_F32), T0(DT_F32)};
  IrValue *bv[3];
  IrNode *sn = scan_node(fx, &g, 3, (IrValue *[]){a, b, xs}, 3, res, 2, 1,
                         (int64_t[]){0}, false, 3, bt, bv);
  IrValue *s = nodeb(fx, sn->body, IR_OP_ADD, 2, (IrValue *[]){bv[0], bv[2]},
                     NULL, T0(DT_F32));
  ir_block_set_rets(fx->m, sn->body, 3, (IrValue *[]){bv[1], s, bv[0]});
  double va = 1, vb = 2, vx[3] = {10, 20, 30};
  IrTensor ins[3] = {host(fx, T0(DT_F32), &va, false), host(fx, T0(DT_F32), &vb, false),
                     host(fx, T1(DT_F32, 3), vx, false)};
  IrTensor outs[3];
  fn_run(fx, &g, 3, sn->res, ins, outs, false, NULL);
  /* (a,b): (1,2) -> (2,11) -> (11,22) -> (22,41); emits a: 1, 2, 11 */
  double wa = 22, wb = 41, we[3] = {1, 2, 11};
  assert_close(vals(fx, &outs[0], false), &wa, 1, 0, "a");
  assert_close(vals(fx, &outs[1], false), &wb, 1, 0, "b");
  assert_close(vals(fx, &outs[2], false), we, 3, 0, "emitted");
}

/* A parsed module (the text of tests/ir/scan.nnir): a reverse scan over two
** sequences on different axes, with a nested scan that captures values of
** both enclosing blocks and globals, against a plain loop. */
static const char scan_text[] =
    "module @rnn\n"
    "dim B = 3\n"
    "dim T = 5\n"
    "param @w.x : f32[8,16] = glorot_uniform\n"
    "param @w.h : f32[16,16] = orthogonal\n"
    "func @forward(%h0: f32[B,16], %x: f32[B,T,8], %xr: f32[T,B,8], %bias: f32[16])"
    " -> (h: f32[B,16], hs: f32[B,T,16], xs: f32[B,T,8]) {\n"
    "  %0:3 = scan %h0, %x, %xr {axes = [1, 0], ncarry = 1, reverse = true}"
    " : f32[B,16], f32[B,T,16], f32[B,T,8] {\n"
    "  ^(%h: f32[B,16], %xt: f32[B,8], %xt.1: f32[B,8]):\n"
    "    %1 = matmul %xt, @w.x : f32[B,16]\n"
    "    %2 = matmul %h, @w.h : f32[B,16]\n"
    "    %3 = add %1, %2 : f32[B,16]\n"
    "    %4:2 = scan %3, %bias {axes = [0], ncarry = 1} : f32[B,16], f32[16,B] {\n"
    "    ^(%h.1: f32[B,16], %b: f32[]):\n"
    "      %5 = add %h.1, %b : f32[B,16]\n"
    "      %6 = add %5, %h : f32[B,16]\n"
    "      %7 = tanh %6 : f32[B,16]\n"
    "      %8 = sum %7 {axes = [1]} : f32[B]\n"
    "      yield %7, %8\n"
    "    }\n"
    "    %9 = add %xt, %xt.1 : f32[B,8]\n"
    "    yield %4#0, %4#0, %9\n"
    "  }\n"
    "  %10 = neg %0#0 : f32[B,16]\n"
    "  return %10, %0#1, %0#2\n"
    "}\n";

static void test_interp_parsed_nested_scan(void **state) {
  Fx *fx = *state;
  enum { B = 3, T = 5, I = 8, H = 16 };
  const char *err = NULL;
  IrModule *m = ir_parse("scan.nnir", scan_text, sizeof scan_text - 1, fx->a, &err);
  if (!m) fail_msg("parse: %s", err);
  uint64_t s = 17;
  double *h0 = rnd_vec(fx, &s, B * H, -1, 1), *x = rnd_vec(fx, &s, B * T * I, -1, 1);
  double *xr = rnd_vec(fx, &s, T * B * I, -1, 1), *bias = rnd_vec(fx, &s, H, -0.1, 0.1);
  double *wx = rnd_vec(fx, &s, I * H, -0.3, 0.3), *wh = rnd_vec(fx, &s, H * H, -0.3, 0.3);
  IrTensor ins[4] = {host(fx, T2(DT_F32, B, H), h0, true),
                     host(fx, T3(DT_F32, B, T, I), x, true),
                     host(fx, T3(DT_F32, T, B, I), xr, true),
                     host(fx, T1(DT_F32, H), bias, true)};
  IrTensor gl[2] = {host(fx, T2(DT_F32, I, H), wx, true),
                    host(fx, T2(DT_F32, H, H), wh, true)};
  IrTensor outs[3];
  IrInterpOpts o = {.f64 = true};
  bool ok = ir_interp(m, m->funcs, ins, gl, outs, &o, fx->a, &err);
  if (!ok) fail_msg("interp: %s", err);
  double *gh = vals(fx, &outs[0], true), *ghs = vals(fx, &outs[1], true);
  double *gxs = vals(fx, &outs[2], true);
  assert_int_equal(outs[1].type.rank, 3);
  assert_int_equal(outs[1].type.dim[1], T);
  double h[B][H], c[B][H], hn[B][H];
  for (int b = 0; b < B; b++)
    for (int j = 0; j < H; j++) h[b][j] = h0[b * H + j];
  for (int t = T - 1; t >= 0; t--) {
    for (int b = 0; b < B; b++)
      for (int j = 0; j < H; j++) {
        double a = 0;
        for (int i = 0; i < I; i++) a += x[(b * T + t) * I + i] * wx[i * H + j];
        for (int k = 0; k < H; k++) a += h[b][k] * wh[k * H + j];
        c[b][j] = a;
      }
    for (int q = 0; q < H; q++) /* the inner scan over bias */
      for (int b = 0; b < B; b++)
        for (int j = 0; j < H; j++) hn[b][j] = tanh(c[b][j] + bias[q] + h[b][j]),
                                    c[b][j] = hn[b][j];
    for (int b = 0; b < B; b++)
      for (int j = 0; j < H; j++) {
        h[b][j] = c[b][j];
        assert_close(&ghs[(b * T + t) * H + j], &h[b][j], 1, 1e-13, "hs");
      }
    for (int b = 0; b < B; b++)
      for (int i = 0; i < I; i++) {
        double w = x[(b * T + t) * I + i] + xr[(t * B + b) * I + i];
        assert_close(&gxs[(b * T + t) * I + i], &w, 1, 1e-15, "xs");
      }
  }
  for (int b = 0; b < B; b++)
    for (int j = 0; j < H; j++) {
      double w = -h[b][j];
      assert_close(&gh[b * H + j], &w, 1, 1e-13, "h");
    }
  ir_module_free(m);
}

/* ----------------------------------------------------------------- rand */

static void test_interp_philox_kat(void **state) {
  (void)state;
  /* Random123 kat_vectors, philox4x32 10 rounds */
  static const uint32_t kat[3][10] = {
      {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
      {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
       0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
      {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
       0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}};
  for (int k = 0; k < 3; k++) {
    uint32_t out[4];
    ir_philox4x32_10(kat[k], kat[k] + 4, out);
    for (int i = 0; i < 4; i++) assert_int_equal(out[i], kat[k][6 + i]);
  }
}

static double *run_rand(Fx *fx, int64_t n, int64_t seed_attr, uint64_t seed,
                        uint64_t step, bool f64) {
  Fn g = fn_new(fx);
  IrAttrs at = {0};
  ir_attr_set_int(fx->m, &at, "seed", seed_attr);
  IrValue *r = node(fx, &g, IR_OP_RAND, 0, NULL, &at, T1(DT_F32, n));
  ir_func_set_rets(fx->m, g.f, 1, &r, (const char *[]){"r"});
  IrInterpOpts o = {.f64 = f64, .seed = seed, .step = step};
  IrTensor out;
  const char *err = NULL;
  assert_true(ir_interp(fx->m, g.f, NULL, NULL, &out, &o, fx->a, &err));
  return vals(fx, &out, f64);
}

static void test_interp_rand(void **state) {
  Fx *fx = *state;
  enum { N = 100000 };
  double *a = run_rand(fx, N, 7, 42, 3, false);
  double *b = run_rand(fx, N, 7, 42, 3, false);
  double *c = run_rand(fx, N, 7, 42, 4, false);
  double *d = run_rand(fx, N, 8, 42, 3, false);
  double *e = run_rand(fx, N, 7, 42, 3, true);
  double sum = 0, sq = 0;
  int64_t diff_step = 0, diff_seed = 0;
  for (int64_t i = 0; i < N; i++) {
    assert_true(a[i] >= 0 && a[i] < 1);
    assert_true(a[i] == b[i] && a[i] == e[i]);
    sum += a[i];
    sq += (a[i] - 0.5) * (a[i] - 0.5);
    diff_step += a[i] != c[i];
    diff_seed += a[i] != d[i];
  }
  assert_true(fabs(sum / N - 0.5) < 0.01);
  assert_true(fabs(sq / N - 1.0 / 12) < 0.005);
  assert_true(diff_step > N * 99 / 100);
  assert_true(diff_seed > N * 99 / 100);
  /* element i depends only on (seed, stream, step, i) */
  double *f = run_rand(fx, 5, 7, 42, 3, false);
  for (int i = 0; i < 5; i++) {
    assert_true(f[i] == a[i]);
    assert_true(f[i] == ir_interp_uniform(42, 7, 3, (uint64_t)i));
  }
  /* f16 keeps 11 bits: never rounds up to 1 */
  Fn g = fn_new(fx);
  IrValue *r = node(fx, &g, IR_OP_RAND, 0, NULL, NULL, T1(DT_F16, 4096));
  IrTensor ho;
  fn_run(fx, &g, 1, &r, NULL, &ho, false, NULL);
  double *h = vals(fx, &ho, false), hmax = 0;
  for (int i = 0; i < 4096; i++) {
    assert_true(h[i] >= 0 && h[i] < 1 && h[i] * 2048 == floor(h[i] * 2048));
    hmax = fmax(hmax, h[i]);
  }
  assert_true(hmax > 0.99);
  /* the documented mapping: element 5 is word 1 of block 1 */
  uint32_t ctr[4] = {1, 0, 3, 0}, key[2] = {42, 7}, out[4];
  ir_philox4x32_10(ctr, key, out);
  assert_true(a[5] == (double)(out[1] >> 8) * 0x1p-24);
}

/* ------------------------------------------------- globals and symbols */

static void test_interp_globals(void **state) {
  Fx *fx = *state;
  SrcLoc loc = {0};
  IrGlobal *g1 = ir_global_add(fx->m, IRG_PARAM, "w", T1(DT_F32, 3), "zeros", loc);
  IrGlobal *g2 = ir_global_add(fx->m, IRG_STATE, "s", T0(DT_F32), "zeros", loc);
  Fn g = fn_new(fx);
  IrValue *x = fn_arg(fx, &g, T1(DT_F32, 3));
  IrValue *a = node(fx, &g, IR_OP_ADD, 2, (IrValue *[]){x, g1->value}, NULL, T1(DT_F32, 3));
  IrValue *r = node(fx, &g, IR_OP_MUL, 2, (IrValue *[]){a, g2->value}, NULL, T1(DT_F32, 3));
  ir_func_set_rets(fx->m, g.f, 1, &r, (const char *[]){"y"});
  double xv[3] = {1, 2, 3}, wv[3] = {10, 20, 30}, sv = 2, want[3] = {22, 44, 66};
  IrTensor in = host(fx, T1(DT_F32, 3), xv, false);
  IrTensor gl[2] = {host(fx, T1(DT_F32, 3), wv, false), host(fx, T0(DT_F32), &sv, false)};
  IrTensor out;
  IrInterpOpts o = {0};
  const char *err = NULL;
  assert_true(ir_interp(fx->m, g.f, &in, gl, &out, &o, fx->a, &err));
  assert_close(vals(fx, &out, false), want, 3, 0, "globals");
  gl[1].data = NULL;
  assert_false(ir_interp(fx->m, g.f, &in, gl, &out, &o, fx->a, &err));
  assert_string_equal(err, "global @s is not bound");
  gl[1] = host(fx, T1(DT_F32, 1), &sv, false);
  assert_false(ir_interp(fx->m, g.f, &in, gl, &out, &o, fx->a, &err));
}

/* A bounded batch symbol takes its size from the inputs. */
static void test_interp_symbolic_batch(void **state) {
  Fx *fx = *state;
  int sb = ir_sym_add(fx->m, "B", 8, true);
  IrType xt = T2(DT_F32, 8, 3), rt = T1(DT_F32, 8);
  xt.sym[0] = (int16_t)sb;
  rt.sym[0] = (int16_t)sb;
  Fn g = fn_new(fx);
  IrValue *x = fn_arg(fx, &g, xt);
  IrAttrs at = {0};
  ir_attr_set_ints(fx->m, &at, "axes", 1, (int64_t[]){1});
  IrValue *r = node(fx, &g, IR_OP_SUM, 1, &x, &at, rt);
  ir_func_set_rets(fx->m, g.f, 1, &r, (const char *[]){"y"});
  double xv[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, want[3] = {6, 15, 24};
  IrTensor in = host(fx, T2(DT_F32, 3, 3), xv, false), out;
  IrInterpOpts o = {0};
  const char *err = NULL;
  assert_true(ir_interp(fx->m, g.f, &in, NULL, &out, &o, fx->a, &err));
  assert_int_equal(out.type.rank, 1);
  assert_int_equal(out.type.dim[0], 3);
  assert_close(vals(fx, &out, false), want, 3, 0, "sum over symbolic batch");
  double big[27] = {0};
  in = host(fx, T2(DT_F32, 9, 3), big, false);
  assert_false(ir_interp(fx->m, g.f, &in, NULL, &out, &o, fx->a, &err));
  in = host(fx, T2(DT_F32, 3, 4), big, false);
  assert_false(ir_interp(fx->m, g.f, &in, NULL, &out, &o, fx->a, &err));
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, arena_setup, arena_teardown)
      T(test_interp_kernel_table_complete),
      T(test_interp_activation_oracles),
      T(test_interp_activation_attrs),
      T(test_interp_gated),
      T(test_interp_unary_math),
      T(test_interp_binary_broadcast),
      T(test_interp_f32_vs_f64),
      T(test_interp_round_formats),
      T(test_interp_int_arith),
      T(test_interp_cast),
      T(test_interp_reductions),
      T(test_interp_argmax),
      T(test_interp_shape_ops),
      T(test_interp_slice),
      T(test_interp_one_hot_gather),
      T(test_interp_label_errors),
      T(test_interp_type_disagreement),
      T(test_interp_scan_linear),
      T(test_interp_scan_reverse),
      T(test_interp_scan_lstm),
      T(test_interp_scan_swap_carries),
      T(test_interp_parsed_nested_scan),
      T(test_interp_philox_kat),
      T(test_interp_rand),
      T(test_interp_globals),
      T(test_interp_symbolic_batch),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

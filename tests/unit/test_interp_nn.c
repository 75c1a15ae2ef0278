/*
** This file contains the unit tests of the reference interpreter's linear
** algebra, vision, loss and metric kernels (ir/interp_nn.c,
** ir/interp_loss.c): matmul broadcasting against a naive loop, softmax,
** attention against the oracle of algorithms.md section 1.6 and against
** its written-out composition run by the interpreter itself, conv1d/conv2d
** against a direct formula, conv_transpose2d as the adjoint of conv2d,
** pooling, the upsampling and pixel-shuffle oracles of section 10, and the
** smooth-metric oracles of section 6.
*/
#include "test_interp_util.h"

/* -------------------------------------------------------------- matmul */

/* y[i][j] = sum_k a[i][k] b[k][j] */
static void naive_mm(double *y, const double *a, const double *b, int N, int K,
                     int M) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < M; j++) {
      double s = 0;
      for (int k = 0; k < K; k++) s += a[i * K + k] * b[k * M + j];
      y[i * M + j] = s;
    }
}

static void test_interp_matmul_batch_broadcast(void **state) {
  Fx *fx = *state;
  uint64_t s = 1;
  /* [2,1,3,4] @ [5,4,17] -> [2,5,3,17] */
  double *a = rnd_vec(fx, &s, 2 * 3 * 4, -1, 1);
  double *b = rnd_vec(fx, &s, 5 * 4 * 17, -1, 1);
  In in[2] = {{T4(DT_F32, 2, 1, 3, 4), a}, {T3(DT_F32, 5, 4, 17), b}};
  double *y = op1(fx, IR_OP_MATMUL, 2, in, NULL, T4(DT_F32, 2, 5, 3, 17), true, NULL);
  for (int i = 0; i < 2; i++)
    for (int j = 0; j < 5; j++) {
      double w[3 * 17];
      naive_mm(w, a + i * 12, b + j * 68, 3, 4, 17);
      assert_close(y + (i * 5 + j) * 51, w, 51, 1e-14, "batched matmul");
    }
  /* 1-D rules */
  double w3[3];
  In v1[2] = {{T1(DT_F32, 4), a}, {T2(DT_F32, 4, 3), b}};
  naive_mm(w3, a, b, 1, 4, 3);
  assert_close(op1(fx, IR_OP_MATMUL, 2, v1, NULL, T1(DT_F32, 3), true, NULL), w3,
               3, 1e-14, "[4]@[4,3]");
  In v2[2] = {{T2(DT_F32, 3, 4), a}, {T1(DT_F32, 4), b}};
  naive_mm(w3, a, b, 3, 4, 1);
  assert_close(op1(fx, IR_OP_MATMUL, 2, v2, NULL, T1(DT_F32, 3), true, NULL), w3,
               3, 1e-14, "[3,4]@[4]");
  In v3[2] = {{T1(DT_F32, 4), a}, {T1(DT_F32, 4), b}};
  naive_mm(w3, a, b, 1, 4, 1);
  assert_close(op1(fx, IR_OP_MATMUL, 2, v3, NULL, T0(DT_F32), true, NULL), w3, 1,
               1e-14, "[4]@[4]");
  /* [2,3,4] @ [4] -> [2,3] */
  double w6[6];
  In v4[2] = {{T3(DT_F32, 2, 3, 4), a}, {T1(DT_F32, 4), b}};
  naive_mm(w6, a, b, 6, 4, 1);
  assert_close(op1(fx, IR_OP_MATMUL, 2, v4, NULL, T2(DT_F32, 2, 3), true, NULL),
               w6, 6, 1e-14, "[2,3,4]@[4]");
  /* f32 mode rounds the double accumulation once */
  double *y32 = op1(fx, IR_OP_MATMUL, 2, v3, NULL, T0(DT_F32), false, NULL);
  double fa[4], fb[4], acc = 0;
  for (int k = 0; k < 4; k++) fa[k] = (float)a[k], fb[k] = (float)b[k], acc += fa[k] * fb[k];
  assert_true(y32[0] == (double)(float)acc);
}

/* ------------------------------------------------------------- softmax */

static void test_interp_softmax(void **state) {
  Fx *fx = *state;
  uint64_t s = 2;
  double *x = rnd_vec(fx, &s, 3 * 17, -5, 5);
  x[0] = 1000; /* stability */
  In in = {T2(DT_F32, 3, 17), x};
  double *p = op1(fx, IR_OP_SOFTMAX, 1, &in, NULL, T2(DT_F32, 3, 17), true, NULL);
  double *lp = op1(fx, IR_OP_LOG_SOFTMAX, 1, &in, NULL, T2(DT_F32, 3, 17), true, NULL);
  for (int r = 0; r < 3; r++) {
    double sum = 0;
    for (int j = 0; j < 17; j++) {
      sum += p[r * 17 + j];
      assert_true(p[r * 17 + j] >= 0);
      assert_true(fabs(lp[r * 17 + j] - log(p[r * 17 + j])) < 1e-12 ||
                  p[r * 17 + j] == 0);
    }
    assert_true(fabs(sum - 1) < 1e-14);
  }
  assert_true(fabs(p[0] - 1) < 1e-15 && fabs(lp[0]) < 1e-12);
  /* axis 0: columns sum to 1 */
  IrAttrs at = {0};
  ir_attr_set_int(fx->m, &at, "axis", 0);
  double *q = op1(fx, IR_OP_SOFTMAX, 1, &in, &at, T2(DT_F32, 3, 17), true, NULL);
  for (int j = 0; j < 17; j++) {
    double sum = q[j] + q[17 + j] + q[34 + j];
    assert_true(fabs(sum - 1) < 1e-14);
    double m = fmax(fmax(x[j], x[17 + j]), x[34 + j]);
    double w = exp(x[17 + j] - m) /
               (exp(x[j] - m) + exp(x[17 + j] - m) + exp(x[34 + j] - m));
    assert_close(&q[17 + j], &w, 1, 1e-14, "softmax axis 0");
  }
}

/* ----------------------------------------------------------- attention */

static const double Qo[16] = {1, 0, 2, 0, 0, 1, 1, 0, 1, 1, 0, 1, 0, 2, 1, 1};
static const double Ko[16] = {2, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 2, 1};
static const double Vo[8] = {1, 0, 0, 1, 1, 1, 2, 1};

static void test_interp_attention_oracle(void **state) {
  Fx *fx = *state;
  In in[3] = {{T2(DT_F32, 4, 4), Qo}, {T2(DT_F32, 4, 4), Ko}, {T2(DT_F32, 4, 2), Vo}};
  double w[8] = {1.269873, 0.842940, 1.0, 0.811230, 1.0, 0.573067, 1.0, 0.811230};
  assert_close(op1(fx, IR_OP_ATTENTION, 3, in, NULL, T2(DT_F32, 4, 2), false, NULL),
               w, 8, 1e-6, "attention (section 1.6)");
  IrAttrs at = {0};
  ir_attr_set_bool(fx->m, &at, "causal", true);
  double wc[8] = {1, 0, 0.377541, 0.622459, 0.813676, 0.493520, 1.0, 0.811230};
  assert_close(op1(fx, IR_OP_ATTENTION, 3, in, &at, T2(DT_F32, 4, 2), false, NULL),
               wc, 8, 1e-6, "causal attention (section 1.6)");
}

/* attention(q, k, v, mask) == softmax(q k^T * scale + mask) v written out
** with the interpreter's own matmul, transpose, mul, add and softmax; k
** and v broadcast over the leading batch dimension. */
static void check_attention_composition(Fx *fx, bool causal, bool with_mask) {
  enum { B = 2, H = 3, Tq = 5, Tk = 5, D = 4, Dv = 6 };
  uint64_t s = causal ? 9 : 8;
  double *q = rnd_vec(fx, &s, B * H * Tq * D, -1, 1);
  double *k = rnd_vec(fx, &s, H * Tk * D, -1, 1);
  double *v = rnd_vec(fx, &s, H * Tk * Dv, -1, 1);
  double *mk = rnd_vec(fx, &s, Tq * Tk, -2, 0);
  double scale = 0.37;
  IrType tq = T4(DT_F32, B, H, Tq, D), tk = T3(DT_F32, H, Tk, D);
  IrType tv = T3(DT_F32, H, Tk, Dv), tm = T2(DT_F32, Tq, Tk);
  IrType ts = T4(DT_F32, B, H, Tq, Tk), to = T4(DT_F32, B, H, Tq, Dv);
  Fn g = fn_new(fx);
  IrValue *vq = fn_arg(fx, &g, tq), *vk = fn_arg(fx, &g, tk);
  IrValue *vv = fn_arg(fx, &g, tv), *vm = fn_arg(fx, &g, tm);
  IrAttrs at = {0}, pa = {0}, ca = {0};
  ir_attr_set_float(fx->m, &at, "scale", scale);
  if (causal) ir_attr_set_bool(fx->m, &at, "causal", true);
  int na = with_mask ? 4 : 3;
  IrValue *fused = node(fx, &g, IR_OP_ATTENTION, na, (IrValue *[]){vq, vk, vv, vm},
                        &at, to);
  ir_attr_set_ints(fx->m, &pa, "perm", 3, (int64_t[]){0, 2, 1});
  IrValue *kt = node(fx, &g, IR_OP_TRANSPOSE, 1, &vk, &pa, T3(DT_F32, H, D, Tk));
  IrValue *sc = node(fx, &g, IR_OP_MATMUL, 2, (IrValue *[]){vq, kt}, NULL, ts);
  ir_attr_set_float(fx->m, &ca, "value", scale);
  IrValue *cs = node(fx, &g, IR_OP_CONSTANT, 0, NULL, &ca, T0(DT_F32));
  IrValue *ss = node(fx, &g, IR_OP_MUL, 2, (IrValue *[]){sc, cs}, NULL, ts);
  if (with_mask) ss = node(fx, &g, IR_OP_ADD, 2, (IrValue *[]){ss, vm}, NULL, ts);
  if (causal) {
    IrValue *cm = node(fx, &g, IR_OP_CAUSAL_MASK, 0, NULL, NULL, T2(DT_F32, Tq, Tk));
    ss = node(fx, &g, IR_OP_ADD, 2, (IrValue *[]){ss, cm}, NULL, ts);
  }
  IrValue *p = node(fx, &g, IR_OP_SOFTMAX, 1, &ss, NULL, ts);
  IrValue *o = node(fx, &g, IR_OP_MATMUL, 2, (IrValue *[]){p, vv}, NULL, to);
  IrTensor ins[4] = {host(fx, tq, q, true), host(fx, tk, k, true),
                     host(fx, tv, v, true), host(fx, tm, mk, true)};
  IrTensor outs[2];
  fn_run(fx, &g, 2, (IrValue *[]){fused, o}, ins, outs, true, NULL);
  assert_close(vals(fx, &outs[0], true), vals(fx, &outs[1], true),
               B * H * Tq * Dv, 1e-13, "attention vs composition");
}

static void test_interp_attention_composition(void **state) {
  check_attention_composition(*state, false, true);
  check_attention_composition(*state, true, true);
  check_attention_composition(*state, true, false);
}

/* A fully masked row gives 0; a bool mask keeps where true. */
static void test_interp_attention_masked_rows(void **state) {
  Fx *fx = *state;
  double m[16] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
  In in[4] = {{T2(DT_F32, 4, 4), Qo}, {T2(DT_F32, 4, 4), Ko},
              {T2(DT_F32, 4, 2), Vo}, {T2(DT_F32, 4, 4), m}};
  double *y = op1(fx, IR_OP_ATTENTION, 4, in, NULL, T2(DT_F32, 4, 2), false, NULL);
  double w[8] = {0, 0, 1.0, 0.811230, 1.0, 0.573067, 1.0, 0.811230};
  assert_close(y, w, 8, 1e-6, "masked row 0");
  /* bool mask = lower triangle: the causal result */
  double bm[16];
  for (int i = 0; i < 16; i++) bm[i] = (i % 4) <= (i / 4);
  In bi[4] = {in[0], in[1], in[2], {T2(DT_BOOL, 4, 4), bm}};
  double wc[8] = {1, 0, 0.377541, 0.622459, 0.813676, 0.493520, 1.0, 0.811230};
  assert_close(op1(fx, IR_OP_ATTENTION, 4, bi, NULL, T2(DT_F32, 4, 2), false, NULL),
               wc, 8, 1e-6, "bool mask");
}

/* -------------------------------------------------------- convolution */

typedef struct Geo {
  int N, C, H, W, O, KH, KW, sh, sw, ph, pw, dh, dw, g;
} Geo;

static int conv_out(int in, int k, int s, int p, int d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;
}

/* The direct formula of PyTorch's Conv2d. */
static void naive_conv2d(double *y, const double *x, const double *w,
                         const double *b, const Geo *G) {
  int OH = conv_out(G->H, G->KH, G->sh, G->ph, G->dh);
  int OW = conv_out(G->W, G->KW, G->sw, G->pw, G->dw);
  int cin = G->C / G->g, cout = G->O / G->g;
  for (int n = 0; n < G->N; n++)
    for (int o = 0; o < G->O; o++)
      for (int i = 0; i < OH; i++)
        for (int j = 0; j < OW; j++) {
          double s = b ? b[o] : 0;
          int grp = o / cout;
          for (int c = 0; c < cin; c++)
            for (int u = 0; u < G->KH; u++)
              for (int v = 0; v < G->KW; v++) {
                int h = i * G->sh + u * G->dh - G->ph;
                int ww = j * G->sw + v * G->dw - G->pw;
                if (h >= 0 && h < G->H && ww >= 0 && ww < G->W)
                  s += x[((n * G->C + grp * cin + c) * G->H + h) * G->W + ww] *
                       w[((o * cin + c) * G->KH + u) * G->KW + v];
              }
          y[((n * G->O + o) * OH + i) * OW + j] = s;
        }
}

static IrAttrs conv_attrs(Fx *fx, const Geo *G, int sr) {
  IrAttrs at = {0};
  int64_t s[2] = {G->sh, G->sw}, p[2] = {G->ph, G->pw}, d[2] = {G->dh, G->dw};
  ir_attr_set_ints(fx->m, &at, "stride", sr, s + 2 - sr);
  ir_attr_set_ints(fx->m, &at, "padding", sr, p + 2 - sr);
  ir_attr_set_ints(fx->m, &at, "dilation", sr, d + 2 - sr);
  ir_attr_set_int(fx->m, &at, "groups", G->g);
  return at;
}

static void test_interp_conv2d_naive(void **state) {
  Fx *fx = *state;
  Geo geos[3] = {{2, 4, 7, 6, 6, 3, 2, 2, 1, 1, 2, 2, 1, 2},
                 {1, 3, 5, 5, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1},
                 {3, 6, 9, 8, 3, 1, 3, 3, 2, 0, 1, 1, 3, 3}};
  uint64_t s = 4;
  for (int t = 0; t < 3; t++) {
    const Geo *G = &geos[t];
    int OH = conv_out(G->H, G->KH, G->sh, G->ph, G->dh);
    int OW = conv_out(G->W, G->KW, G->sw, G->pw, G->dw);
    double *x = rnd_vec(fx, &s, G->N * G->C * G->H * G->W, -1, 1);
    double *w = rnd_vec(fx, &s, G->O * (G->C / G->g) * G->KH * G->KW, -1, 1);
    double *b = rnd_vec(fx, &s, G->O, -1, 1);
    double *want = ARENA_ARRAY(fx->a, double, G->N * G->O * OH * OW);
    naive_conv2d(want, x, w, b, G);
    IrAttrs at = conv_attrs(fx, G, 2);
    In in[3] = {{T4(DT_F32, G->N, G->C, G->H, G->W), x},
                {T4(DT_F32, G->O, G->C / G->g, G->KH, G->KW), w},
                {T1(DT_F32, G->O), b}};
    double *y = op1(fx, IR_OP_CONV2D, 3, in, &at,
                    T4(DT_F32, G->N, G->O, OH, OW), true, NULL);
    assert_close(y, want, G->N * G->O * OH * OW, 1e-13, "conv2d");
    naive_conv2d(want, x, w, NULL, G);
    y = op1(fx, IR_OP_CONV2D, 2, in, &at, T4(DT_F32, G->N, G->O, OH, OW), true, NULL);
    assert_close(y, want, G->N * G->O * OH * OW, 1e-13, "conv2d without bias");
  }
  /* a result type that disagrees with the geometry is an error */
  const char *err = NULL;
  double z[64] = {0};
  In bad[2] = {{T4(DT_F32, 1, 1, 4, 4), z}, {T4(DT_F32, 1, 1, 3, 3), z}};
  assert_null(op1(fx, IR_OP_CONV2D, 2, bad, NULL, T4(DT_F32, 1, 1, 3, 3), false, &err));
  assert_non_null(err);
}

static void test_interp_conv1d_naive(void **state) {
  Fx *fx = *state;
  /* conv1d = conv2d with H = KH = 1 */
  Geo G = {2, 4, 1, 11, 6, 1, 3, 1, 2, 0, 1, 1, 2, 2};
  uint64_t s = 6;
  int L = conv_out(G.W, G.KW, G.sw, G.pw, G.dw);
  double *x = rnd_vec(fx, &s, G.N * G.C * G.W, -1, 1);
  double *w = rnd_vec(fx, &s, G.O * 2 * G.KW, -1, 1);
  double *b = rnd_vec(fx, &s, G.O, -1, 1);
  double *want = ARENA_ARRAY(fx->a, double, G.N * G.O * L);
  naive_conv2d(want, x, w, b, &G);
  IrAttrs at = conv_attrs(fx, &G, 1);
  In in[3] = {{T3(DT_F32, G.N, G.C, G.W), x}, {T3(DT_F32, G.O, 2, G.KW), w},
              {T1(DT_F32, G.O), b}};
  assert_int_equal(L, 5);
  assert_close(op1(fx, IR_OP_CONV1D, 3, in, &at, T3(DT_F32, G.N, G.O, L), true, NULL),
               want, G.N * G.O * L, 1e-13, "conv1d");
  /* an int stride applies to every spatial dim */
  IrAttrs ai = {0};
  ir_attr_set_int(fx->m, &ai, "stride", 2);
  ir_attr_set_int(fx->m, &ai, "groups", 2);
  Geo G2 = {2, 4, 1, 11, 6, 1, 3, 1, 2, 0, 0, 1, 1, 2};
  naive_conv2d(want, x, w, NULL, &G2);
  assert_close(op1(fx, IR_OP_CONV1D, 2, in, &ai, T3(DT_F32, G.N, G.O, 5), true, NULL),
               want, G.N * G.O * 5, 1e-13, "conv1d int stride");
}

/* <conv2d(x), r> == <x, conv_transpose2d(r)> with the same weights. */
static void test_interp_conv_transpose_adjoint(void **state) {
  Fx *fx = *state;
  Geo G = {2, 4, 8, 6, 6, 3, 2, 2, 1, 1, 0, 2, 2, 2};
  uint64_t s = 12;
  int OH = conv_out(G.H, G.KH, G.sh, G.ph, G.dh);
  int OW = conv_out(G.W, G.KW, G.sw, G.pw, G.dw);
  int oph = G.H - ((OH - 1) * G.sh - 2 * G.ph + G.dh * (G.KH - 1) + 1);
  int opw = G.W - ((OW - 1) * G.sw - 2 * G.pw + G.dw * (G.KW - 1) + 1);
  assert_int_equal(oph, 1); /* the even size needs output_padding */
  int nx = G.N * G.C * G.H * G.W, ny = G.N * G.O * OH * OW;
  double *x = rnd_vec(fx, &s, nx, -1, 1), *r = rnd_vec(fx, &s, ny, -1, 1);
  double *w = rnd_vec(fx, &s, G.O * 2 * G.KH * G.KW, -1, 1);
  double *bias = rnd_vec(fx, &s, G.C, -1, 1);
  IrAttrs at = conv_attrs(fx, &G, 2);
  IrType tw = T4(DT_F32, G.O, 2, G.KH, G.KW);
  In ci[2] = {{T4(DT_F32, G.N, G.C, G.H, G.W), x}, {tw, w}};
  double *cx = op1(fx, IR_OP_CONV2D, 2, ci, &at, T4(DT_F32, G.N, G.O, OH, OW), true, NULL);
  IrAttrs ta = conv_attrs(fx, &G, 2);
  ir_attr_set_ints(fx->m, &ta, "output_padding", 2, (int64_t[]){oph, opw});
  In ti[3] = {{T4(DT_F32, G.N, G.O, OH, OW), r}, {tw, w}, {T1(DT_F32, G.C), bias}};
  IrType tx = T4(DT_F32, G.N, G.C, G.H, G.W);
  double *tr = op1(fx, IR_OP_CONV_TRANSPOSE2D, 2, ti, &ta, tx, true, NULL);
  double lhs = 0, rhs = 0;
  for (int i = 0; i < ny; i++) lhs += cx[i] * r[i];
  for (int i = 0; i < nx; i++) rhs += x[i] * tr[i];
  assert_true(fabs(lhs) > 1e-3);
  assert_close(&lhs, &rhs, 1, 1e-12, "adjoint");
  /* the bias is added per output channel */
  double *tb = op1(fx, IR_OP_CONV_TRANSPOSE2D, 3, ti, &ta, tx, true, NULL);
  for (int i = 0; i < nx; i++) {
    double want = tr[i] + bias[(i / (G.H * G.W)) % G.C];
    assert_close(&tb[i], &want, 1, 1e-14, "conv_transpose2d bias");
  }
}

/* Output sizes of algorithms.md section 10 (the kernel checks the result
** type against its own size formula). */
static void test_interp_conv_transpose_sizes(void **state) {
  Fx *fx = *state;
  struct { int in, k, s, p, op, out; } c[3] = {
      {4, 3, 2, 1, 1, 8}, {4, 4, 2, 1, 0, 8}, {7, 3, 2, 1, 0, 13}};
  double z[13 * 13 * 2] = {0};
  for (int i = 0; i < 3; i++) {
    IrAttrs at = {0};
    ir_attr_set_int(fx->m, &at, "stride", c[i].s);
    ir_attr_set_int(fx->m, &at, "padding", c[i].p);
    ir_attr_set_int(fx->m, &at, "output_padding", c[i].op);
    In in[2] = {{T4(DT_F32, 1, 1, c[i].in, c[i].in), z},
                {T4(DT_F32, 1, 1, c[i].k, c[i].k), z}};
    const char *err = NULL;
    assert_non_null(op1(fx, IR_OP_CONV_TRANSPOSE2D, 2, in, &at,
                        T4(DT_F32, 1, 1, c[i].out, c[i].out), false, &err));
    assert_null(op1(fx, IR_OP_CONV_TRANSPOSE2D, 2, in, &at,
                    T4(DT_F32, 1, 1, c[i].out + 1, c[i].out + 1), false, &err));
  }
}

/* ------------------------------------------------------------- pooling */

static void test_interp_pool2d(void **state) {
  Fx *fx = *state;
  double x[40];
  for (int i = 0; i < 40; i++) x[i] = i % 20 + (i / 20) * 100; /* [2,1,4,5] */
  In in = {T4(DT_F32, 2, 1, 4, 5), x};
  IrAttrs k2 = {0};
  ir_attr_set_ints(fx->m, &k2, "kernel", 2, (int64_t[]){2, 2});
  double w2[8] = {6, 8, 16, 18, 106, 108, 116, 118};
  assert_close(op1(fx, IR_OP_MAX_POOL2D, 1, &in, &k2, T4(DT_F32, 2, 1, 2, 2), false, NULL),
               w2, 8, 0, "max_pool2d k2");
  IrAttrs k3 = {0};
  ir_attr_set_int(fx->m, &k3, "kernel", 3);
  ir_attr_set_int(fx->m, &k3, "stride", 2);
  ir_attr_set_int(fx->m, &k3, "padding", 1);
  double w3[6] = {6, 8, 9, 16, 18, 19};
  double *y = op1(fx, IR_OP_MAX_POOL2D, 1, &in, &k3, T4(DT_F32, 2, 1, 2, 3), false, NULL);
  assert_close(y, w3, 6, 0, "max_pool2d k3 s2 p1");
  /* avg: windows [-1,2)x[-1,2) etc.; padding counts in the divisor */
  double *ai = op1(fx, IR_OP_AVG_POOL2D, 1, &in, &k3, T4(DT_F32, 2, 1, 2, 3), true, NULL);
  IrAttrs k3x = k3;
  k3x.v = NULL, k3x.n = 0;
  for (int i = 0; i < k3.n; i++) ir_attr_set(fx->m, &k3x, &k3.v[i]);
  ir_attr_set_bool(fx->m, &k3x, "count_include_pad", false);
  double *ae = op1(fx, IR_OP_AVG_POOL2D, 1, &in, &k3x, T4(DT_F32, 2, 1, 2, 3), true, NULL);
  for (int oh = 0; oh < 2; oh++)
    for (int ow = 0; ow < 3; ow++) {
      double sum = 0;
      int cnt = 0;
      for (int h = 2 * oh - 1; h < 2 * oh + 2; h++)
        for (int w = 2 * ow - 1; w < 2 * ow + 2; w++)
          if (h >= 0 && h < 4 && w >= 0 && w < 5) sum += x[h * 5 + w], cnt++;
      double wi = sum / 9, we = sum / cnt;
      assert_close(&ai[oh * 3 + ow], &wi, 1, 1e-15, "avg_pool2d include pad");
      assert_close(&ae[oh * 3 + ow], &we, 1, 1e-15, "avg_pool2d exclude pad");
    }
}

/* ---------------------------------------------------------- upsampling */

static void test_interp_upsample_bilinear(void **state) {
  Fx *fx = *state;
  double x[4] = {1, 2, 3, 4};
  In in = {T4(DT_F32, 1, 1, 2, 2), x};
  IrAttrs at = {0};
  ir_attr_set_ints(fx->m, &at, "size", 2, (int64_t[]){4, 4});
  double wf[16] = {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5,
                   2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4};
  assert_close(op1(fx, IR_OP_UPSAMPLE_BILINEAR, 1, &in, &at, T4(DT_F32, 1, 1, 4, 4),
                   false, NULL), wf, 16, 1e-7, "bilinear align_corners=false");
  ir_attr_set_bool(fx->m, &at, "align_corners", true);
  double wt[16] = {1, 4.0 / 3, 5.0 / 3, 2, 5.0 / 3, 2, 7.0 / 3, 8.0 / 3,
                   7.0 / 3, 8.0 / 3, 3, 10.0 / 3, 3, 10.0 / 3, 11.0 / 3, 4};
  assert_close(op1(fx, IR_OP_UPSAMPLE_BILINEAR, 1, &in, &at, T4(DT_F32, 1, 1, 4, 4),
                   true, NULL), wt, 16, 1e-14, "bilinear align_corners=true");
}

/* Nearest source indices: 3 -> 5 [0,0,1,1,2]; 5 -> 3 [0,1,3]; 2 -> 4
** [0,0,1,1] (algorithms.md section 10). */
static void test_interp_upsample_nearest(void **state) {
  Fx *fx = *state;
  double x[5] = {10, 11, 12, 13, 14};
  struct { int in, out; double w[5]; } c[3] = {
      {3, 5, {10, 10, 11, 11, 12}}, {5, 3, {10, 11, 13}}, {2, 4, {10, 10, 11, 11}}};
  for (int i = 0; i < 3; i++) {
    IrAttrs at = {0};
    ir_attr_set_ints(fx->m, &at, "size", 2, (int64_t[]){1, c[i].out});
    In in = {T4(DT_F32, 1, 1, 1, c[i].in), x};
    assert_close(op1(fx, IR_OP_UPSAMPLE_NEAREST, 1, &in, &at,
                     T4(DT_F32, 1, 1, 1, c[i].out), false, NULL),
                 c[i].w, c[i].out, 0, "nearest along W");
    IrAttrs ah = {0};
    ir_attr_set_ints(fx->m, &ah, "size", 2, (int64_t[]){c[i].out, 1});
    In ih = {T3(DT_F32, 1, c[i].in, 1), x};
    assert_close(op1(fx, IR_OP_UPSAMPLE_NEAREST, 1, &ih, &ah,
                     T3(DT_F32, 1, c[i].out, 1), false, NULL),
                 c[i].w, c[i].out, 0, "nearest along H");
  }
}

static void test_interp_pixel_shuffle(void **state) {
  Fx *fx = *state;
  double x[32];
  for (int c = 0; c < 8; c++)
    for (int h = 0; h < 2; h++)
      for (int w = 0; w < 2; w++) x[(c * 2 + h) * 2 + w] = 100 * c + 10 * h + w;
  IrAttrs at = {0};
  ir_attr_set_int(fx->m, &at, "r", 2);
  In in = {T4(DT_F32, 1, 8, 2, 2), x};
  double *y = op1(fx, IR_OP_PIXEL_SHUFFLE, 1, &in, &at, T4(DT_F32, 1, 2, 4, 4), false, NULL);
  double w0[16] = {0, 100, 1, 101, 200, 300, 201, 301,
                   10, 110, 11, 111, 210, 310, 211, 311};
  assert_close(y, w0, 16, 0, "pixel_shuffle channel 0 (section 10)");
  /* unshuffle inverts shuffle at odd sizes */
  uint64_t s = 3;
  double *r = rnd_vec(fx, &s, 2 * 12 * 3 * 5, -1, 1);
  In ri = {T4(DT_F32, 2, 12, 3, 5), r};
  double *sh = op1(fx, IR_OP_PIXEL_SHUFFLE, 1, &ri, &at, T4(DT_F32, 2, 3, 6, 10), true, NULL);
  In si = {T4(DT_F32, 2, 3, 6, 10), sh};
  double *un = op1(fx, IR_OP_PIXEL_UNSHUFFLE, 1, &si, &at, T4(DT_F32, 2, 12, 3, 5), true, NULL);
  assert_close(un, r, 2 * 12 * 3 * 5, 0, "unshuffle(shuffle(x))");
  assert_true(sh[1] == r[15]); /* y[0,0,0,1] = x[0,1,0,0] */
}

/* ------------------------------------------------------------ losses */

static const double lg3[9] = {2, 0.5, -1, 0.1, 0.2, 0.3, 1, 3, 0};
static const double lb3[3] = {0, 0, 1};
static const double sb[5] = {2, -1, 0.5, -0.3, 1.5};
static const double tb[5] = {1, 0, 0, 1, 1};

static double scalar_op(Fx *fx, IrOp op, const In *in, const IrAttrs *at) {
  return op1(fx, op, 2, in, at, T0(DT_F32), false, NULL)[0];
}

/* algorithms.md section 6 oracles. */
static void test_interp_metric_oracles(void **state) {
  Fx *fx = *state;
  In c3[2] = {{T2(DT_F32, 3, 3), lg3}, {T1(DT_I32, 3), lb3}};
  assert_true(fabs(scalar_op(fx, IR_OP_ACCURACY, c3, NULL) - 0.666667) < 1e-6);
  assert_true(fabs(scalar_op(fx, IR_OP_SOFT_ACCURACY, c3, NULL) - 0.356666) < 1e-6);
  assert_true(fabs(scalar_op(fx, IR_OP_CROSS_ENTROPY, c3, NULL) - 0.537700) < 1e-6);
  In b5[2] = {{T1(DT_F32, 5), sb}, {T1(DT_I32, 5), tb}};
  assert_true(fabs(scalar_op(fx, IR_OP_SOFT_F1, b5, NULL) - 0.293828) < 1e-6);
  assert_true(fabs(scalar_op(fx, IR_OP_F1, b5, NULL) - 0.666667) < 1e-6);
  assert_true(fabs(scalar_op(fx, IR_OP_ACCURACY, b5, NULL) - 0.6) < 1e-7);
  double py = 0;
  for (int i = 0; i < 5; i++) {
    double p = 1 / (1 + exp(-sb[i]));
    py += tb[i] ? p : 1 - p;
  }
  assert_true(fabs(scalar_op(fx, IR_OP_SOFT_ACCURACY, b5, NULL) - (1 - py / 5)) < 1e-7);
  /* float 0/1 labels give the same binary metrics */
  In bf[2] = {{T1(DT_F32, 5), sb}, {T1(DT_F32, 5), tb}};
  assert_true(fabs(scalar_op(fx, IR_OP_SOFT_F1, bf, NULL) - 0.293828) < 1e-6);
  /* top_k: row 1 ranks its label last */
  IrAttrs k1 = {0}, k2 = {0}, k3 = {0};
  ir_attr_set_int(fx->m, &k1, "k", 1);
  ir_attr_set_int(fx->m, &k2, "k", 2);
  ir_attr_set_int(fx->m, &k3, "k", 3);
  assert_true(fabs(scalar_op(fx, IR_OP_TOP_K, c3, &k1) - 2.0 / 3) < 1e-7);
  assert_true(fabs(scalar_op(fx, IR_OP_TOP_K, c3, &k2) - 2.0 / 3) < 1e-7);
  assert_true(scalar_op(fx, IR_OP_TOP_K, c3, &k3) == 1);
  assert_true(scalar_op(fx, IR_OP_TOP_K, c3, NULL) == 1); /* k = 5 */
  /* ties rank the lower class first */
  double tl[6] = {1, 1, 0, 1, 1, 0}, tyl[2] = {1, 0};
  In ti[2] = {{T2(DT_F32, 2, 3), tl}, {T1(DT_I32, 2), tyl}};
  assert_true(scalar_op(fx, IR_OP_TOP_K, ti, &k1) == 0.5);
  assert_true(scalar_op(fx, IR_OP_TOP_K, ti, &k2) == 1);
  assert_true(scalar_op(fx, IR_OP_ACCURACY, ti, NULL) == 0.5);
}

static void test_interp_cross_entropy(void **state) {
  Fx *fx = *state;
  enum { A = 2, B = 3, C = 5 };
  uint64_t s = 21;
  double *x = rnd_vec(fx, &s, A * B * C, -3, 3), lab[A * B];
  for (int i = 0; i < A * B; i++) lab[i] = (i * 3) % C;
  In in[2] = {{T3(DT_F32, A, B, C), x}, {T2(DT_I32, A, B), lab}};
  double eps = 0.1, ce = 0, ls = 0, nll = 0, sacc = 0;
  double *lp = ARENA_ARRAY(fx->a, double, A * B * C);
  for (int i = 0; i < A * B; i++) {
    double m = -INFINITY, z = 0, mean = 0;
    for (int c = 0; c < C; c++) m = fmax(m, x[i * C + c]);
    for (int c = 0; c < C; c++) z += exp(x[i * C + c] - m);
    double lse = m + log(z);
    for (int c = 0; c < C; c++) {
      lp[i * C + c] = x[i * C + c] - lse;
      mean += -lp[i * C + c] / C;
    }
    int y = (int)lab[i];
    ce += -lp[i * C + y];
    ls += (1 - eps) * -lp[i * C + y] + eps * mean;
    sacc += exp(lp[i * C + y]);
  }
  ce /= A * B, ls /= A * B, sacc = 1 - sacc / (A * B);
  double got = op1(fx, IR_OP_CROSS_ENTROPY, 2, in, NULL, T0(DT_F32), true, NULL)[0];
  assert_close(&got, &ce, 1, 1e-14, "cross_entropy over [2,3]");
  IrAttrs at = {0};
  ir_attr_set_float(fx->m, &at, "label_smoothing", eps);
  got = op1(fx, IR_OP_CROSS_ENTROPY, 2, in, &at, T0(DT_F32), true, NULL)[0];
  assert_close(&got, &ls, 1, 1e-14, "label smoothing");
  In ni[2] = {{T3(DT_F32, A, B, C), lp}, {T2(DT_I32, A, B), lab}};
  got = op1(fx, IR_OP_NLL, 2, ni, NULL, T0(DT_F32), true, NULL)[0];
  nll = ce;
  assert_close(&got, &nll, 1, 1e-14, "nll of log_softmax");
  got = op1(fx, IR_OP_SOFT_ACCURACY, 2, in, NULL, T0(DT_F32), true, NULL)[0];
  assert_close(&got, &sacc, 1, 1e-14, "soft_accuracy over [2,3]");
}

static void test_interp_pointwise_losses(void **state) {
  Fx *fx = *state;
  uint64_t s = 5;
  double *x = rnd_vec(fx, &s, 3 * 17, -3, 3), *y = rnd_vec(fx, &s, 3 * 17, -1, 2);
  double *t = rnd_vec(fx, &s, 3 * 17, 0, 1);
  In in[2] = {{T2(DT_F32, 3, 17), x}, {T2(DT_F32, 3, 17), y}};
  In bi[2] = {{T2(DT_F32, 3, 17), x}, {T2(DT_F32, 3, 17), t}};
  double mse = 0, l1 = 0, hub = 0, bce = 0, delta = 0.5;
  for (int i = 0; i < 51; i++) {
    double d = x[i] - y[i], p = 1 / (1 + exp(-x[i]));
    mse += d * d / 51;
    l1 += fabs(d) / 51;
    hub += (fabs(d) < delta ? 0.5 * d * d : delta * (fabs(d) - 0.5 * delta)) / 51;
    bce += -(t[i] * log(p) + (1 - t[i]) * log(1 - p)) / 51;
  }
  IrAttrs at = {0};
  ir_attr_set_float(fx->m, &at, "delta", delta);
  double g;
  g = op1(fx, IR_OP_MSE, 2, in, NULL, T0(DT_F32), true, NULL)[0];
  assert_close(&g, &mse, 1, 1e-14, "mse");
  g = op1(fx, IR_OP_L1, 2, in, NULL, T0(DT_F32), true, NULL)[0];
  assert_close(&g, &l1, 1, 1e-14, "l1");
  g = op1(fx, IR_OP_HUBER, 2, in, &at, T0(DT_F32), true, NULL)[0];
  assert_close(&g, &hub, 1, 1e-14, "huber");
  g = op1(fx, IR_OP_BCE_WITH_LOGITS, 2, bi, NULL, T0(DT_F32), true, NULL)[0];
  assert_close(&g, &bce, 1, 1e-12, "bce_with_logits");
  /* default delta 1: d = 0.5 -> 0.125; d = 3 -> 2.5 */
  double hx[2] = {0.5, 3}, hy[2] = {0, 0}, hw = (0.125 + 2.5) / 2;
  In hi[2] = {{T1(DT_F32, 2), hx}, {T1(DT_F32, 2), hy}};
  g = op1(fx, IR_OP_HUBER, 2, hi, NULL, T0(DT_F32), true, NULL)[0];
  assert_close(&g, &hw, 1, 1e-15, "huber delta 1");
  /* bce is stable for large logits */
  double bx[2] = {100, -100}, by[2] = {0, 1}, bw = 100;
  In bb[2] = {{T1(DT_F32, 2), bx}, {T1(DT_F32, 2), by}};
  g = op1(fx, IR_OP_BCE_WITH_LOGITS, 2, bb, NULL, T0(DT_F32), true, NULL)[0];
  assert_close(&g, &bw, 1, 1e-14, "bce stable");
}

/* Macro soft-F1 and hard F1 over classes. */
static void test_interp_f1_multiclass(void **state) {
  Fx *fx = *state;
  /* labels [0,0,1,2], predictions [0,1,1,0], class 3 absent:
  ** F1_0 = 2/4, F1_1 = 2/3, F1_2 = 0 -> macro over present classes */
  double lg[16] = {5, 0, 0, 0, 0, 5, 0, 0, 0, 5, 0, 0, 5, 0, 0, 0};
  double lb[4] = {0, 0, 1, 2};
  In in[2] = {{T2(DT_F32, 4, 4), lg}, {T1(DT_I32, 4), lb}};
  double want = (0.5 + 2.0 / 3 + 0) / 3;
  double g = op1(fx, IR_OP_F1, 2, in, NULL, T0(DT_F32), true, NULL)[0];
  assert_close(&g, &want, 1, 1e-15, "macro f1");
  /* soft-F1: p = softmax rows, macro over all C classes */
  double tp[4] = {0}, den[4] = {0}, f = 0;
  for (int i = 0; i < 4; i++) {
    double z = 0;
    for (int c = 0; c < 4; c++) z += exp(lg[i * 4 + c]);
    for (int c = 0; c < 4; c++) {
      double p = exp(lg[i * 4 + c]) / z, yc = c == (int)lb[i];
      tp[c] += p * yc;
      den[c] += p + yc;
    }
  }
  for (int c = 0; c < 4; c++) f += 2 * tp[c] / den[c] / 4;
  double sw = 1 - f;
  g = op1(fx, IR_OP_SOFT_F1, 2, in, NULL, T0(DT_F32), true, NULL)[0];
  assert_close(&g, &sw, 1, 1e-14, "macro soft_f1");
  /* binary F1 with no positives anywhere is 0 */
  double nx[3] = {-1, -2, -3}, ny[3] = {0, 0, 0};
  In ni[2] = {{T1(DT_F32, 3), nx}, {T1(DT_I32, 3), ny}};
  assert_true(op1(fx, IR_OP_F1, 2, ni, NULL, T0(DT_F32), true, NULL)[0] == 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, arena_setup, arena_teardown)
      T(test_interp_matmul_batch_broadcast),
      T(test_interp_softmax),
      T(test_interp_attention_oracle),
      T(test_interp_attention_composition),
      T(test_interp_attention_masked_rows),
      T(test_interp_conv2d_naive),
      T(test_interp_conv1d_naive),
      T(test_interp_conv_transpose_adjoint),
      T(test_interp_conv_transpose_sizes),
      T(test_interp_pool2d),
      T(test_interp_upsample_bilinear),
      T(test_interp_upsample_nearest),
      T(test_interp_pixel_shuffle),
      T(test_interp_metric_oracles),
      T(test_interp_cross_entropy),
      T(test_interp_pointwise_losses),
      T(test_interp_f1_multiclass),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
** This file contains the interpreter kernels of linear algebra and vision:
** matmul (NumPy rules), softmax and log_softmax, attention, conv1d/conv2d,
** conv_transpose2d, max/avg pooling and the gradient of max pooling,
** nearest and bilinear upsampling and pixel (un)shuffle, with PyTorch
** semantics (algorithms.md sections 1 and 10).  Each op has an llm.c-style kernel on raw arrays with a shape
** comment, and a wrapper that reads attributes and checks shapes.
*/
#include <math.h>
#include <string.h>

#include "interp_int.h"

/* -------------------------------------------------------------- matmul */

/* out[N,M] = a[N,K] b[K,M] */
static void interp_matmul_fwd(double *out, const double *a, const double *b,
                              int64_t N, int64_t K, int64_t M) {
  for (int64_t i = 0; i < N; i++)
    for (int64_t j = 0; j < M; j++) {
      double s = 0;
      for (int64_t k = 0; k < K; k++) s += a[i * K + k] * b[k * M + j];
      out[i * M + j] = s;
    }
}

/* The batch dimensions of t (all but the last two). */
static IrType batch_of(const IrType *t, int keep) {
  IrType b = *t;
  b.rank = t->rank - keep;
  if (b.rank < 0) b.rank = 0;
  return b;
}

/* matmul: a[..., N, K] @ b[..., K, M] with batch broadcasting; a 1-D a is
** [1, K] and a 1-D b is [K, 1], the added dimension dropped from y. */
bool interp_run_matmul(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  IrType a = x[0]->type, b = x[1]->type;
  if (a.rank == 0 || b.rank == 0) return interp_fail(in, "matmul: scalar operand");
  if (a.rank == 1) {
    a.rank = 2;
    a.dim[1] = a.dim[0];
    a.dim[0] = 1;
  }
  if (b.rank == 1) {
    b.rank = 2;
    b.dim[1] = 1;
  }
  int64_t N = a.dim[a.rank - 2], K = a.dim[a.rank - 1], M = b.dim[b.rank - 1];
  IrType ba = batch_of(&a, 2), bb = batch_of(&b, 2), bo;
  if (b.dim[b.rank - 2] != K || !interp_bcast_shape(&ba, &bb, &bo))
    return interp_fail(in, "matmul: shapes do not agree");
  int64_t nb = ir_type_numel(&bo), sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  if (y->n != nb * N * M) return interp_fail(in, "matmul: result type disagrees");
  interp_bcast_strides(&ba, &bo, sa);
  interp_bcast_strides(&bb, &bo, sb);
  for (int64_t i = 0; i < nb; i++)
    interp_matmul_fwd(y->d + i * N * M,
                      x[0]->d + interp_bcast_off(i, &bo, sa) * N * K,
                      x[1]->d + interp_bcast_off(i, &bo, sb) * K * M, N, K, M);
  return true;
}

/* ------------------------------------------------------------- softmax */

/* out[O,L,I] = softmax (or log_softmax) of inp along L, stable. */
static void interp_softmax_fwd(double *out, const double *inp, int64_t O,
                               int64_t L, int64_t I, bool logp) {
  for (int64_t o = 0; o < O; o++)
    for (int64_t i = 0; i < I; i++) {
      const double *x = inp + o * L * I + i;
      double *y = out + o * L * I + i, m = -INFINITY, s = 0;
      for (int64_t j = 0; j < L; j++) m = fmax(m, x[j * I]);
      for (int64_t j = 0; j < L; j++) s += exp(x[j * I] - m);
      for (int64_t j = 0; j < L; j++)
        y[j * I] = logp ? x[j * I] - m - log(s) : exp(x[j * I] - m) / s;
    }
}

bool interp_run_softmax(Interp *in, const IrNode *n, Ten *const *xs, Ten *y) {
  const Ten *x = xs[0];
  int ax;
  if (!interp_axis(in, n, ir_attr_int(&n->attrs, "axis", -1), x->type.rank, &ax))
    return false;
  if (y->n != x->n)
    return interp_fail(in, "%s: result type disagrees", ir_op_info[n->op].name);
  interp_softmax_fwd(y->d, x->d, interp_dims(&x->type, 0, ax), x->type.dim[ax],
                     interp_dims(&x->type, ax + 1, x->type.rank),
                     n->op == IR_OP_LOG_SOFTMAX);
  return true;
}

/* ----------------------------------------------------------- attention */

/* One query row: out[Dv] = softmax(s[Tk]) v[Tk,Dv]; all -inf gives 0. */
static void attend_row(double *out, const double *s, const double *v,
                       int64_t Tk, int64_t Dv) {
  double m = -INFINITY, sum = 0;
  for (int64_t j = 0; j < Tk; j++) m = fmax(m, s[j]);
  for (int64_t c = 0; c < Dv; c++) out[c] = 0;
  if (m == -INFINITY) return;
  for (int64_t j = 0; j < Tk; j++) {
    double p = exp(s[j] - m);
    sum += p;
    for (int64_t c = 0; c < Dv; c++) out[c] += p * v[j * Dv + c];
  }
  for (int64_t c = 0; c < Dv; c++) out[c] /= sum;
}

/* attention: y[..., Tq, Dv] = softmax(q k^T scale + mask) v, batch dims
** broadcast; causal adds the top-left mask (j > i is -inf); a bool mask
** keeps the positions where it is true. */
bool interp_run_attention(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  const Ten *q = x[0], *k = x[1], *v = x[2], *mask = n->nargs > 3 ? x[3] : NULL;
  if (q->type.rank < 2 || k->type.rank < 2 || v->type.rank < 2 || y->type.rank < 2)
    return interp_fail(in, "attention: operands need rank >= 2");
  int64_t Tq = q->type.dim[q->type.rank - 2], D = q->type.dim[q->type.rank - 1];
  int64_t Tk = k->type.dim[k->type.rank - 2], Dv = v->type.dim[v->type.rank - 1];
  if (k->type.dim[k->type.rank - 1] != D || v->type.dim[v->type.rank - 2] != Tk)
    return interp_fail(in, "attention: q, k, v shapes do not agree");
  IrType yb = batch_of(&y->type, 2), qb = batch_of(&q->type, 2);
  IrType kb = batch_of(&k->type, 2), vb = batch_of(&v->type, 2), st = y->type;
  int64_t nb = ir_type_numel(&yb), sq[IR_MAX_RANK], sk[IR_MAX_RANK],
          sv[IR_MAX_RANK], sm[IR_MAX_RANK];
  st.dim[st.rank - 1] = Tk; /* the scores: [batch..., Tq, Tk] */
  if (y->n != nb * Tq * Dv || y->type.dim[y->type.rank - 2] != Tq ||
      !interp_bcast_ok(&qb, &yb) || !interp_bcast_ok(&kb, &yb) ||
      !interp_bcast_ok(&vb, &yb) || (mask && !interp_bcast_ok(&mask->type, &st)))
    return interp_fail(in, "attention: operands do not broadcast to the result");
  interp_bcast_strides(&qb, &yb, sq);
  interp_bcast_strides(&kb, &yb, sk);
  interp_bcast_strides(&vb, &yb, sv);
  if (mask) interp_bcast_strides(&mask->type, &st, sm);
  double scale = ir_attr_float(&n->attrs, "scale", 1 / sqrt((double)D));
  bool causal = ir_attr_bool(&n->attrs, "causal", false);
  bool bmask = mask && mask->type.dtype == DT_BOOL;
  double *s = interp_alloc(in, Tk);
  for (int64_t b = 0; b < nb; b++) {
    const double *qp = q->d + interp_bcast_off(b, &yb, sq) * Tq * D;
    const double *kp = k->d + interp_bcast_off(b, &yb, sk) * Tk * D;
    const double *vp = v->d + interp_bcast_off(b, &yb, sv) * Tk * Dv;
    for (int64_t i = 0; i < Tq; i++) {
      for (int64_t j = 0; j < Tk; j++) {
        double dot = 0;
        for (int64_t c = 0; c < D; c++) dot += qp[i * D + c] * kp[j * D + c];
        s[j] = dot * scale;
        if (mask) {
          double mv = mask->d[interp_bcast_off((b * Tq + i) * Tk + j, &st, sm)];
          s[j] = bmask ? (mv != 0 ? s[j] : -INFINITY) : s[j] + mv;
        }
        if (causal && j > i) s[j] = -INFINITY;
      }
      attend_row(y->d + (b * Tq + i) * Dv, s, vp, Tk, Dv);
    }
  }
  return true;
}

/* -------------------------------------------------------- convolution */

typedef struct ConvGeom {
  int64_t N, C, H, W, O, KH, KW, OH, OW, groups;
  int64_t sh, sw, ph, pw, dh, dw, oph, opw;
} ConvGeom;

/* out[N,O,OH,OW] = b[O] + sum over c < C/g, kh, kw of
**   inp[N, g*(C/g) + c, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw]
**   * w[O, c, kh, kw],  g = o / (O/g); taps outside the input are 0. */
static void interp_conv2d_fwd(double *out, const double *inp, const double *w,
                              const double *b, const ConvGeom *g) {
  int64_t Cg = g->C / g->groups, Og = g->O / g->groups;
  for (int64_t n = 0; n < g->N; n++)
    for (int64_t o = 0; o < g->O; o++) {
      int64_t c0 = (o / Og) * Cg;
      for (int64_t oh = 0; oh < g->OH; oh++)
        for (int64_t ow = 0; ow < g->OW; ow++) {
          double s = b ? b[o] : 0;
          for (int64_t c = 0; c < Cg; c++)
            for (int64_t kh = 0; kh < g->KH; kh++) {
              int64_t ih = oh * g->sh - g->ph + kh * g->dh;
              if (ih < 0 || ih >= g->H) continue;
              for (int64_t kw = 0; kw < g->KW; kw++) {
                int64_t iw = ow * g->sw - g->pw + kw * g->dw;
                if (iw < 0 || iw >= g->W) continue;
                s += inp[((n * g->C + c0 + c) * g->H + ih) * g->W + iw] *
                     w[((o * Cg + c) * g->KH + kh) * g->KW + kw];
              }
            }
          out[((n * g->O + o) * g->OH + oh) * g->OW + ow] = s;
        }
    }
}

/* out[N,O,OH,OW] (O = groups * w.dim[1]) = b[O] + sum of
**   inp[N, g*(C/g) + c, ih, iw] * w[g*(C/g) + c, o, kh, kw]
** over the taps with oh = ih*sh - ph + kh*dh, ow = iw*sw - pw + kw*dw:
** the adjoint of conv2d with the same weights. */
static void interp_conv_transpose2d_fwd(double *out, const double *inp,
                                        const double *w, const double *b,
                                        const ConvGeom *g) {
  int64_t Cg = g->C / g->groups, Og = g->O / g->groups;
  for (int64_t n = 0; n < g->N; n++) {
    for (int64_t o = 0; o < g->O; o++)
      for (int64_t p = 0; p < g->OH * g->OW; p++)
        out[(n * g->O + o) * g->OH * g->OW + p] = b ? b[o] : 0;
    for (int64_t c = 0; c < g->C; c++) {
      int64_t grp = c / Cg;
      for (int64_t ih = 0; ih < g->H; ih++)
        for (int64_t iw = 0; iw < g->W; iw++) {
          double xv = inp[((n * g->C + c) * g->H + ih) * g->W + iw];
          for (int64_t o = 0; o < Og; o++)
            for (int64_t kh = 0; kh < g->KH; kh++) {
              int64_t oh = ih * g->sh - g->ph + kh * g->dh;
              if (oh < 0 || oh >= g->OH) continue;
              for (int64_t kw = 0; kw < g->KW; kw++) {
                int64_t ow = iw * g->sw - g->pw + kw * g->dw;
                if (ow < 0 || ow >= g->OW) continue;
                out[((n * g->O + grp * Og + o) * g->OH + oh) * g->OW + ow] +=
                    xv * w[((c * Og + o) * g->KH + kh) * g->KW + kw];
              }
            }
        }
    }
  }
}

/* Read stride/padding/dilation (and output_padding) for spatial rank sr. */
static bool conv_attrs(Interp *in, const IrNode *n, int sr, ConvGeom *g) {
  int64_t s[2], p[2], d[2], op[2];
  if (!interp_attr_ivec(in, n, "stride", sr, 1, s) ||
      !interp_attr_ivec(in, n, "padding", sr, 0, p) ||
      !interp_attr_ivec(in, n, "dilation", sr, 1, d) ||
      !interp_attr_ivec(in, n, "output_padding", sr, 0, op))
    return false;
  int h = sr == 2 ? 0 : -1, w = sr - 1;
  g->sh = h < 0 ? 1 : s[h];
  g->ph = h < 0 ? 0 : p[h];
  g->dh = h < 0 ? 1 : d[h];
  g->oph = h < 0 ? 0 : op[h];
  g->sw = s[w];
  g->pw = p[w];
  g->dw = d[w];
  g->opw = op[w];
  g->groups = ir_attr_int(&n->attrs, "groups", 1);
  if (g->sh < 1 || g->sw < 1 || g->dh < 1 || g->dw < 1 || g->groups < 1)
    return interp_fail(in, "%s: stride, dilation and groups must be >= 1",
                       ir_op_info[n->op].name);
  return true;
}

/* Shapes of x[N,C,(H,)W], w[?,?,(KH,)KW] for spatial rank sr. */
static bool conv_shapes(Interp *in, const IrNode *n, Ten *const *x, int sr,
                        ConvGeom *g) {
  const IrType *xt = &x[0]->type, *wt = &x[1]->type;
  if (xt->rank != sr + 2 || wt->rank != sr + 2)
    return interp_fail(in, "%s: input and weight need rank %d",
                       ir_op_info[n->op].name, sr + 2);
  g->N = xt->dim[0];
  g->C = xt->dim[1];
  g->H = sr == 2 ? xt->dim[2] : 1;
  g->W = xt->dim[sr + 1];
  g->KH = sr == 2 ? wt->dim[2] : 1;
  g->KW = wt->dim[sr + 1];
  return true;
}

static bool conv_check_out(Interp *in, const IrNode *n, const Ten *y,
                           const ConvGeom *g, int sr) {
  int64_t want[4] = {g->N, g->O, g->OH, g->OW};
  bool ok = y->type.rank == sr + 2 && g->OH > 0 && g->OW > 0;
  for (int k = 0; ok && k < sr + 2; k++)
    ok = y->type.dim[k] == want[sr == 2 ? k : (k < 2 ? k : 3)];
  if (!ok)
    return interp_fail(in, "%s: result type disagrees with the geometry "
                       "(%lld x %lld output)", ir_op_info[n->op].name,
                       (long long)g->OH, (long long)g->OW);
  return true;
}

/* conv1d x[N,C,L] w[O,C/g,K] [b[O]]; conv2d x[N,C,H,W] w[O,C/g,KH,KW]. */
bool interp_run_conv(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int sr = n->op == IR_OP_CONV1D ? 1 : 2;
  ConvGeom g;
  if (!conv_shapes(in, n, x, sr, &g) || !conv_attrs(in, n, sr, &g)) return false;
  g.O = x[1]->type.dim[0];
  if (g.C % g.groups || g.O % g.groups || x[1]->type.dim[1] != g.C / g.groups ||
      (n->nargs > 2 && x[2]->n != g.O))
    return interp_fail(in, "%s: channels do not agree with groups",
                       ir_op_info[n->op].name);
  g.OH = (g.H + 2 * g.ph - g.dh * (g.KH - 1) - 1) / g.sh + 1;
  g.OW = (g.W + 2 * g.pw - g.dw * (g.KW - 1) - 1) / g.sw + 1;
  if (!conv_check_out(in, n, y, &g, sr)) return false;
  interp_conv2d_fwd(y->d, x[0]->d, x[1]->d, n->nargs > 2 ? x[2]->d : NULL, &g);
  return true;
}

/* conv_transpose2d x[N,C,H,W] w[C,O/g,KH,KW] [b[O]]:
** OH = (H-1)*sh - 2*ph + dh*(KH-1) + output_padding + 1. */
bool interp_run_conv_transpose2d(Interp *in, const IrNode *n, Ten *const *x,
                                 Ten *y) {
  ConvGeom g;
  if (!conv_shapes(in, n, x, 2, &g) || !conv_attrs(in, n, 2, &g)) return false;
  g.O = x[1]->type.dim[1] * g.groups;
  if (g.C % g.groups || x[1]->type.dim[0] != g.C ||
      (n->nargs > 2 && x[2]->n != g.O))
    return interp_fail(in, "conv_transpose2d: channels do not agree");
  g.OH = (g.H - 1) * g.sh - 2 * g.ph + g.dh * (g.KH - 1) + g.oph + 1;
  g.OW = (g.W - 1) * g.sw - 2 * g.pw + g.dw * (g.KW - 1) + g.opw + 1;
  if (!conv_check_out(in, n, y, &g, 2)) return false;
  interp_conv_transpose2d_fwd(y->d, x[0]->d, x[1]->d,
                              n->nargs > 2 ? x[2]->d : NULL, &g);
  return true;
}

/* ------------------------------------------------------------- pooling */

/* out[P,OH,OW] from inp[P,H,W] (P = all leading dims): max over the window
** (padding is -inf, NaN propagates) or its mean, divided by the window size
** clipped to the padded input (count_include_pad) or by the number of
** input taps. */
static void interp_pool2d_fwd(double *out, const double *inp, const ConvGeom *g,
                              bool is_max, bool include_pad) {
  for (int64_t p = 0; p < g->N; p++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0 = oh * g->sh - g->ph, w0 = ow * g->sw - g->pw, cnt = 0;
        double acc = is_max ? -INFINITY : 0;
        for (int64_t kh = 0; kh < g->KH; kh++)
          for (int64_t kw = 0; kw < g->KW; kw++) {
            int64_t ih = h0 + kh * g->dh, iw = w0 + kw * g->dw;
            if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
            double v = inp[(p * g->H + ih) * g->W + iw];
            cnt++;
            if (!is_max) acc += v;
            else if (v > acc || isnan(v)) acc = v; /* a NaN stays */
          }
        if (!is_max) {
          int64_t hend = h0 + g->KH > g->H + g->ph ? g->H + g->ph : h0 + g->KH;
          int64_t wend = w0 + g->KW > g->W + g->pw ? g->W + g->pw : w0 + g->KW;
          int64_t div = include_pad ? (hend - h0) * (wend - w0) : cnt;
          acc = div > 0 ? acc / (double)div : NAN;
        }
        out[(p * g->OH + oh) * g->OW + ow] = acc;
      }
}

/* dinp[P,H,W] (zeroed) += dout[P,OH,OW] at the first maximum of each
** window: the first tap in window order (kh, then kw) inside the input
** whose value equals the window's max_pool2d value.  A window whose
** maximum is NaN passes no gradient; padding never takes it.  Windows are
** visited in (oh, ow) order, so overlapping ones add in that order. */
static void interp_max_pool2d_bwd(double *dinp, const double *dout,
                                  const double *inp, const ConvGeom *g) {
  for (int64_t p = 0; p < g->N; p++)
    for (int64_t oh = 0; oh < g->OH; oh++)
      for (int64_t ow = 0; ow < g->OW; ow++) {
        int64_t h0 = oh * g->sh - g->ph, w0 = ow * g->sw - g->pw, at = -1;
        double m = -INFINITY;
        bool nan = false;
        for (int64_t kh = 0; kh < g->KH; kh++)
          for (int64_t kw = 0; kw < g->KW; kw++) {
            int64_t ih = h0 + kh * g->dh, iw = w0 + kw * g->dw;
            if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W) continue;
            double v = inp[(p * g->H + ih) * g->W + iw];
            nan = nan || isnan(v);
            if (v > m || (at < 0 && !isnan(v))) {
              m = v;
              at = (p * g->H + ih) * g->W + iw;
            }
          }
        if (at >= 0 && !nan) dinp[at] += dout[(p * g->OH + oh) * g->OW + ow];
      }
}

/* The geometry of pooling x over its last two dims: kernel*, stride
** (= kernel), padding (0), dilation (1, max pooling only). */
static bool pool_geom(Interp *in, const IrNode *n, const Ten *x, bool is_max,
                      ConvGeom *g) {
  int r = x->type.rank;
  int64_t k[2], s[2], p[2], d[2];
  if (r < 2) return interp_fail(in, "%s: rank < 2", ir_op_info[n->op].name);
  if (!ir_attr_get(&n->attrs, "kernel"))
    return interp_fail(in, "%s: no kernel", ir_op_info[n->op].name);
  if (!interp_attr_ivec(in, n, "kernel", 2, 1, k) ||
      !interp_attr_ivec(in, n, "stride", 2, 0, s) ||
      !interp_attr_ivec(in, n, "padding", 2, 0, p) ||
      !interp_attr_ivec(in, n, "dilation", 2, 1, d))
    return false;
  *g = (ConvGeom){.N = interp_dims(&x->type, 0, r - 2), .H = x->type.dim[r - 2],
                  .W = x->type.dim[r - 1], .KH = k[0], .KW = k[1],
                  .sh = ir_attr_get(&n->attrs, "stride") ? s[0] : k[0],
                  .sw = ir_attr_get(&n->attrs, "stride") ? s[1] : k[1],
                  .ph = p[0], .pw = p[1], .dh = is_max ? d[0] : 1,
                  .dw = is_max ? d[1] : 1};
  if (g->sh < 1 || g->sw < 1 || g->KH < 1 || g->KW < 1 || g->dh < 1 || g->dw < 1)
    return interp_fail(in, "%s: kernel, stride, dilation must be >= 1",
                       ir_op_info[n->op].name);
  g->OH = (g->H + 2 * g->ph - g->dh * (g->KH - 1) - 1) / g->sh + 1;
  g->OW = (g->W + 2 * g->pw - g->dw * (g->KW - 1) - 1) / g->sw + 1;
  return true;
}

/* True when t is the pooled shape of x under g. */
static bool pool_shape_ok(const Ten *x, const IrType *t, const ConvGeom *g) {
  int r = x->type.rank;
  return t->rank == r && t->dim[r - 2] == g->OH && t->dim[r - 1] == g->OW &&
         interp_dims(t, 0, r - 2) == g->N;
}

/* max_pool2d / avg_pool2d over the last two dims; count_include_pad
** (true, avg_pool2d only). */
bool interp_run_pool2d(Interp *in, const IrNode *n, Ten *const *xs, Ten *y) {
  bool is_max = n->op == IR_OP_MAX_POOL2D;
  ConvGeom g;
  if (!pool_geom(in, n, xs[0], is_max, &g)) return false;
  if (!pool_shape_ok(xs[0], &y->type, &g))
    return interp_fail(in, "%s: result type disagrees (%lld x %lld output)",
                       ir_op_info[n->op].name, (long long)g.OH, (long long)g.OW);
  interp_pool2d_fwd(y->d, xs[0]->d, &g, is_max,
                    ir_attr_bool(&n->attrs, "count_include_pad", true));
  return true;
}

/* max_pool2d_grad x, dy -> dx (x's shape), max_pool2d's attributes. */
bool interp_run_max_pool2d_grad(Interp *in, const IrNode *n, Ten *const *xs,
                                Ten *y) {
  ConvGeom g;
  if (!pool_geom(in, n, xs[0], true, &g)) return false;
  if (!pool_shape_ok(xs[0], &xs[1]->type, &g) || y->n != xs[0]->n)
    return interp_fail(in, "max_pool2d_grad: dy disagrees with the pooled "
                       "shape (%lld x %lld)", (long long)g.OH, (long long)g.OW);
  interp_max_pool2d_bwd(y->d, xs[1]->d, xs[0]->d, &g);
  return true;
}

/* ---------------------------------------------------------- upsampling */

/* Planes and sizes for an op on the last two dims: x[P..,H,W] -> y[P..,OH,OW]. */
static bool plane_geom(Interp *in, const IrNode *n, const Ten *x, const Ten *y,
                       int64_t *P, int64_t *H, int64_t *W, int64_t *OH,
                       int64_t *OW) {
  int r = x->type.rank;
  if (r < 2 || y->type.rank != r)
    return interp_fail(in, "%s: needs rank >= 2", ir_op_info[n->op].name);
  *P = interp_dims(&x->type, 0, r - 2);
  *H = x->type.dim[r - 2];
  *W = x->type.dim[r - 1];
  *OH = y->type.dim[r - 2];
  *OW = y->type.dim[r - 1];
  int64_t sz[2];
  if (!interp_attr_ivec(in, n, "size", 2, 0, sz)) return false;
  if (ir_attr_get(&n->attrs, "size") && (sz[0] != *OH || sz[1] != *OW))
    return interp_fail(in, "%s: size disagrees with the result type",
                       ir_op_info[n->op].name);
  if (*P * *OH * *OW != y->n || *H < 1 || *W < 1)
    return interp_fail(in, "%s: result type disagrees", ir_op_info[n->op].name);
  return true;
}

/* upsample_nearest (legacy 'nearest'): src = min(floor(dst*in/out), in-1). */
bool interp_run_upsample_nearest(Interp *in, const IrNode *n, Ten *const *x,
                                 Ten *y) {
  int64_t P, H, W, OH, OW;
  if (!plane_geom(in, n, x[0], y, &P, &H, &W, &OH, &OW)) return false;
  for (int64_t p = 0; p < P; p++)
    for (int64_t oh = 0; oh < OH; oh++)
      for (int64_t ow = 0; ow < OW; ow++) {
        int64_t ih = oh * H / OH, iw = ow * W / OW;
        if (ih > H - 1) ih = H - 1;
        if (iw > W - 1) iw = W - 1;
        y->d[(p * OH + oh) * OW + ow] = x[0]->d[(p * H + ih) * W + iw];
      }
  return true;
}

/* Source index of linear interpolation (PyTorch area_pixel_compute_source
** _index): i0, i1 and the weight lam of i1. */
static void lin_src(int64_t dst, int64_t in, int64_t out, bool ac, int64_t *i0,
                    int64_t *i1, double *lam) {
  double src;
  if (ac) {
    double scale = out > 1 ? (double)(in - 1) / (double)(out - 1) : 0;
    src = scale * (double)dst;
  } else {
    src = (double)in / (double)out * ((double)dst + 0.5) - 0.5;
    if (src < 0) src = 0;
  }
  *i0 = (int64_t)src;
  if (*i0 > in - 1) *i0 = in - 1;
  *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
  *lam = src - (double)*i0;
}

/* upsample_bilinear: size*, align_corners (false). */
bool interp_run_upsample_bilinear(Interp *in, const IrNode *n, Ten *const *x,
                                  Ten *y) {
  int64_t P, H, W, OH, OW;
  if (!plane_geom(in, n, x[0], y, &P, &H, &W, &OH, &OW)) return false;
  bool ac = ir_attr_bool(&n->attrs, "align_corners", false);
  for (int64_t oh = 0; oh < OH; oh++) {
    int64_t h0, h1, w0, w1;
    double lh, lw;
    lin_src(oh, H, OH, ac, &h0, &h1, &lh);
    for (int64_t ow = 0; ow < OW; ow++) {
      lin_src(ow, W, OW, ac, &w0, &w1, &lw);
      for (int64_t p = 0; p < P; p++) {
        const double *s = x[0]->d + p * H * W;
        y->d[(p * OH + oh) * OW + ow] =
            (1 - lh) * ((1 - lw) * s[h0 * W + w0] + lw * s[h0 * W + w1]) +
            lh * ((1 - lw) * s[h1 * W + w0] + lw * s[h1 * W + w1]);
      }
    }
  }
  return true;
}

/* pixel_shuffle: x[*, C*r*r, H, W] -> y[*, C, H*r, W*r],
**   y[c, h*r + i, w*r + j] = x[c*r*r + i*r + j, h, w];
** pixel_unshuffle is the inverse map. */
bool interp_run_pixel_shuffle(Interp *in, const IrNode *n, Ten *const *xs,
                              Ten *y) {
  bool shuf = n->op == IR_OP_PIXEL_SHUFFLE;
  const Ten *big = shuf ? y : xs[0], *small = shuf ? xs[0] : y;
  int64_t r = ir_attr_int(&n->attrs, "r", 0);
  int rk = big->type.rank;
  if (rk < 3 || small->type.rank != rk || r < 1 || xs[0]->n != y->n)
    return interp_fail(in, "%s: needs rank >= 3 and r >= 1",
                       ir_op_info[n->op].name);
  int64_t C = big->type.dim[rk - 3], H = small->type.dim[rk - 2];
  int64_t W = small->type.dim[rk - 1], P = interp_dims(&big->type, 0, rk - 3);
  if (small->type.dim[rk - 3] != C * r * r || big->type.dim[rk - 2] != H * r ||
      big->type.dim[rk - 1] != W * r)
    return interp_fail(in, "%s: shapes disagree with r = %lld",
                       ir_op_info[n->op].name, (long long)r);
  for (int64_t p = 0; p < P; p++)
    for (int64_t c = 0; c < C; c++)
      for (int64_t i = 0; i < r; i++)
        for (int64_t j = 0; j < r; j++)
          for (int64_t h = 0; h < H; h++)
            for (int64_t w = 0; w < W; w++) {
              int64_t so = (((p * C + c) * r * r + i * r + j) * H + h) * W + w;
              int64_t bo = ((p * C + c) * H * r + h * r + i) * W * r + w * r + j;
              if (shuf) y->d[bo] = xs[0]->d[so];
              else y->d[so] = xs[0]->d[bo];
            }
  return true;
}

/*
** This file contains the interpreter kernels of the losses and metrics.
** Every loss is a mean over all leading positions (PyTorch reduction =
** 'mean').  Class ops take logits[..., C] and integer labels[...]; the
** binary forms of soft_accuracy, soft_f1, accuracy and f1 take logits with
** the same shape as the labels (labels 0 or 1; soft_accuracy and soft_f1
** also accept float labels in [0, 1]).  A label out of range is a run-time
** error: "cross_entropy: label 12 out of range [0, 10) at index 5".
** Smooth metrics follow algorithms.md section 6.
*/
#include <math.h>

#include "interp_int.h"

/* Positions and classes of a class op; false unless logits are
** [labels..., C]. */
static bool class_geom(Interp *in, const IrNode *n, const Ten *x,
                       const Ten *lab, int64_t *P, int64_t *C) {
  int r = x->type.rank;
  bool ok = r >= 1 && lab->type.rank == r - 1;
  for (int k = 0; ok && k < r - 1; k++) ok = x->type.dim[k] == lab->type.dim[k];
  if (!ok)
    return interp_fail(in, "%s: logits must be [labels..., C]",
                       ir_op_info[n->op].name);
  *P = lab->n;
  *C = x->type.dim[r - 1];
  return true;
}

/* Label i as a class index in [0, C). */
static bool label_at(Interp *in, const IrNode *n, const Ten *lab, int64_t i,
                     int64_t C, int64_t *out) {
  double l = lab->d[i];
  if (!(l >= 0 && l < (double)C) || l != floor(l))
    return interp_fail(in, "%s: label %.0f out of range [0, %lld) at index "
                       "%lld", ir_op_info[n->op].name, l, (long long)C,
                       (long long)i);
  *out = (int64_t)l;
  return true;
}

/* A binary label (in [0, 1]; exactly 0 or 1 unless soft). */
static bool binary_at(Interp *in, const IrNode *n, const Ten *lab, int64_t i,
                      bool soft, double *out) {
  double l = lab->d[i];
  if (!(l >= 0 && l <= 1) || (!soft && l != 0 && l != 1))
    return interp_fail(in, "%s: label %g is not %s at index %lld",
                       ir_op_info[n->op].name, l, soft ? "in [0, 1]" : "0 or 1",
                       (long long)i);
  *out = l;
  return true;
}

static bool is_binary(const Ten *x, const Ten *lab) {
  return x->type.rank == lab->type.rank && x->n == lab->n;
}

/* log sum exp of row[0..C), stable. */
static double row_lse(const double *row, int64_t C) {
  double m = -INFINITY, s = 0;
  for (int64_t c = 0; c < C; c++) m = fmax(m, row[c]);
  if (isinf(m)) return m;
  for (int64_t c = 0; c < C; c++) s += exp(row[c] - m);
  return m + log(s);
}

/* The first maximum of row[0..C) (NaN counts as the maximum). */
static int64_t row_argmax(const double *row, int64_t C) {
  int64_t best = 0;
  for (int64_t c = 1; c < C && !isnan(row[best]); c++)
    if (row[c] > row[best] || isnan(row[c])) best = c;
  return best;
}

/* cross_entropy: mean of (1-e)(lse - x_y) + e * mean_c(lse - x_c),
** e = label_smoothing (0). */
bool interp_run_cross_entropy(Interp *in, const IrNode *n, Ten *const *x,
                              Ten *y) {
  int64_t P = 0, C = 0, l = 0;
  if (!class_geom(in, n, x[0], x[1], &P, &C)) return false;
  double eps = ir_attr_float(&n->attrs, "label_smoothing", 0), s = 0;
  for (int64_t i = 0; i < P; i++) {
    const double *row = x[0]->d + i * C;
    if (!label_at(in, n, x[1], i, C, &l)) return false;
    double lse = row_lse(row, C), mean = 0;
    for (int64_t c = 0; c < C; c++) mean += row[c];
    mean /= (double)C;
    s += (1 - eps) * (lse - row[l]) + (eps != 0 ? eps * (lse - mean) : 0);
  }
  y->d[0] = s / (double)P;
  return true;
}

/* nll: mean of -logp[y]. */
bool interp_run_nll(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int64_t P = 0, C = 0, l = 0;
  if (!class_geom(in, n, x[0], x[1], &P, &C)) return false;
  double s = 0;
  for (int64_t i = 0; i < P; i++) {
    if (!label_at(in, n, x[1], i, C, &l)) return false;
    s -= x[0]->d[i * C + l];
  }
  y->d[0] = s / (double)P;
  return true;
}

/* bce_with_logits max(x,0) - x*y + log1p(exp(-|x|)); mse (x-y)^2; l1 |x-y|;
** huber 0.5 d^2 if |d| < delta else delta (|d| - 0.5 delta); means over the
** broadcast shape of the operands. */
bool interp_run_pointwise_loss(Interp *in, const IrNode *n, Ten *const *x,
                               Ten *y) {
  IrType shape;
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  if (!interp_bcast_shape(&x[0]->type, &x[1]->type, &shape))
    return interp_fail(in, "%s: shapes do not broadcast", ir_op_info[n->op].name);
  int64_t N = ir_type_numel(&shape);
  interp_bcast_strides(&x[0]->type, &shape, sa);
  interp_bcast_strides(&x[1]->type, &shape, sb);
  double delta = ir_attr_float(&n->attrs, "delta", 1.0), s = 0;
  for (int64_t i = 0; i < N; i++) {
    double a = x[0]->d[interp_bcast_off(i, &shape, sa)];
    double b = x[1]->d[interp_bcast_off(i, &shape, sb)], d = a - b;
    switch (n->op) {
    case IR_OP_BCE_WITH_LOGITS:
      s += fmax(a, 0) - a * b + log1p(exp(-fabs(a)));
      break;
    case IR_OP_MSE: s += d * d; break;
    case IR_OP_L1: s += fabs(d); break;
    default:
      s += fabs(d) < delta ? 0.5 * d * d : delta * (fabs(d) - 0.5 * delta);
      break;
    }
  }
  y->d[0] = s / (double)N;
  return true;
}

/* soft_accuracy = 1 - mean p_y: p = softmax over classes, or for binary
** logits p = sigmoid(x) and p_y = t p + (1 - t)(1 - p). */
bool interp_run_soft_accuracy(Interp *in, const IrNode *n, Ten *const *x,
                              Ten *y) {
  double s = 0;
  if (is_binary(x[0], x[1])) {
    for (int64_t i = 0; i < x[1]->n; i++) {
      double t = 0, p = interp_sigmoid(x[0]->d[i]);
      if (!binary_at(in, n, x[1], i, true, &t)) return false;
      s += t * p + (1 - t) * (1 - p);
    }
    y->d[0] = 1 - s / (double)x[1]->n;
    return true;
  }
  int64_t P = 0, C = 0, l = 0;
  if (!class_geom(in, n, x[0], x[1], &P, &C)) return false;
  for (int64_t i = 0; i < P; i++) {
    const double *row = x[0]->d + i * C;
    if (!label_at(in, n, x[1], i, C, &l)) return false;
    s += exp(row[l] - row_lse(row, C));
  }
  y->d[0] = 1 - s / (double)P;
  return true;
}

/* 2 tp / den, 0 when den is 0. */
static double f1_of(double tp, double den) { return den > 0 ? 2 * tp / den : 0; }

/* soft_f1 = 1 - F1 with probabilities: binary 2 sum(p t) / (sum p + sum t),
** p = sigmoid(x); classes: macro mean over c of 2 sum(p_c y_c) /
** sum(p_c + y_c), p = softmax, y one-hot. */
bool interp_run_soft_f1(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  if (is_binary(x[0], x[1])) {
    double tp = 0, sp = 0, st = 0, t = 0;
    for (int64_t i = 0; i < x[1]->n; i++) {
      double p = interp_sigmoid(x[0]->d[i]);
      if (!binary_at(in, n, x[1], i, true, &t)) return false;
      tp += p * t;
      sp += p;
      st += t;
    }
    y->d[0] = 1 - f1_of(tp, sp + st);
    return true;
  }
  int64_t P = 0, C = 0, l = 0;
  if (!class_geom(in, n, x[0], x[1], &P, &C)) return false;
  double *tp = interp_alloc(in, C), *den = interp_alloc(in, C), f = 0;
  for (int64_t i = 0; i < P; i++) {
    const double *row = x[0]->d + i * C;
    if (!label_at(in, n, x[1], i, C, &l)) return false;
    double lse = row_lse(row, C);
    for (int64_t c = 0; c < C; c++) den[c] += exp(row[c] - lse);
    tp[l] += exp(row[l] - lse);
    den[l] += 1;
  }
  for (int64_t c = 0; c < C; c++) f += f1_of(tp[c], den[c]);
  y->d[0] = 1 - f / (double)C;
  return true;
}

/* The predicted class of position i: argmax, or x > 0 for binary. */
static int64_t predict(const Ten *x, bool bin, int64_t i, int64_t C) {
  return bin ? x->d[i] > 0 : row_argmax(x->d + i * C, C);
}

/* Positions, classes and the binary flag of a metric. */
static bool metric_geom(Interp *in, const IrNode *n, Ten *const *x, bool *bin,
                        int64_t *P, int64_t *C) {
  *bin = is_binary(x[0], x[1]);
  if (*bin) {
    *P = x[1]->n;
    *C = 2;
    if (x[0]->n == *P) return true;
    return interp_fail(in, "%s: logits and labels differ in size",
                       ir_op_info[n->op].name);
  }
  return class_geom(in, n, x[0], x[1], P, C);
}

static bool metric_label(Interp *in, const IrNode *n, const Ten *lab, bool bin,
                         int64_t i, int64_t C, int64_t *l) {
  double t = 0;
  if (!bin) return label_at(in, n, lab, i, C, l);
  if (!binary_at(in, n, lab, i, false, &t)) return false;
  *l = (int64_t)t;
  return true;
}

/* accuracy: mean of (prediction == label). */
bool interp_run_accuracy(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int64_t P = 0, C = 0, l = 0, hits = 0;
  bool bin;
  if (!metric_geom(in, n, x, &bin, &P, &C)) return false;
  for (int64_t i = 0; i < P; i++) {
    if (!metric_label(in, n, x[1], bin, i, C, &l)) return false;
    hits += predict(x[0], bin, i, C) == l;
  }
  y->d[0] = (double)hits / (double)P;
  return true;
}

/* f1: binary F1 of class 1, or the macro mean of 2TP/(2TP+FP+FN) over the
** classes where that denominator is not 0 (0 when there is none). */
bool interp_run_f1(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int64_t P = 0, C = 0, l = 0;
  bool bin;
  if (!metric_geom(in, n, x, &bin, &P, &C)) return false;
  double *tp = interp_alloc(in, C), *den = interp_alloc(in, C);
  for (int64_t i = 0; i < P; i++) {
    if (!metric_label(in, n, x[1], bin, i, C, &l)) return false;
    int64_t p = predict(x[0], bin, i, C);
    tp[l] += p == l;
    den[l] += 1; /* TP + FN */
    den[p] += 1; /* TP + FP */
  }
  if (bin) {
    y->d[0] = f1_of(tp[1], den[1]);
    return true;
  }
  double f = 0;
  int64_t m = 0;
  for (int64_t c = 0; c < C; c++)
    if (den[c] > 0) {
      f += f1_of(tp[c], den[c]);
      m++;
    }
  y->d[0] = m ? f / (double)m : 0;
  return true;
}

/* top_k (k = 5): label y is a hit when fewer than k classes rank before it
** (x_c > x_y, or x_c == x_y with c < y). */
bool interp_run_top_k(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int64_t P = 0, C = 0, l = 0, hits = 0, k = ir_attr_int(&n->attrs, "k", 5);
  if (!class_geom(in, n, x[0], x[1], &P, &C)) return false;
  for (int64_t i = 0; i < P; i++) {
    const double *row = x[0]->d + i * C;
    int64_t before = 0;
    if (!label_at(in, n, x[1], i, C, &l)) return false;
    for (int64_t c = 0; c < C; c++)
      before += row[c] > row[l] || (row[c] == row[l] && c < l);
    hits += before < k;
  }
  y->d[0] = (double)hits / (double)P;
  return true;
}

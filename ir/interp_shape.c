/*
** This file contains the interpreter kernels of the source ops (constant,
** causal_mask, iota; rand is in interp.c beside its generator) and of the
** shape ops: reshape, transpose, broadcast, concat, slice, pad, stack,
** one_hot and gather.  Result shapes come from the node's result types.
*/
#include <math.h>
#include <string.h>

#include "interp_int.h"

/* constant: every element is `value` (default 0). */
bool interp_run_constant(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  double v = ir_attr_float(&n->attrs, "value", 0);
  for (int64_t i = 0; i < y->n; i++) y->d[i] = v;
  return true;
}

/* causal_mask: y[..., i, j] = 0 when j <= i, else -inf. */
bool interp_run_causal_mask(Interp *in, const IrNode *n, Ten *const *x,
                            Ten *y) {
  int r = y->type.rank;
  if (r < 2) return interp_fail(in, "causal_mask: result needs rank >= 2");
  int64_t rows = y->type.dim[r - 2], cols = y->type.dim[r - 1];
  for (int64_t k = 0; k < y->n; k++) {
    int64_t j = k % cols, i = (k / cols) % rows;
    y->d[k] = j <= i ? 0 : -INFINITY;
  }
  return true;
}

/* iota: y[...] = index along axis (default 0). */
bool interp_run_iota(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  if (y->type.rank == 0) return true;
  int ax;
  if (!interp_axis(in, n, ir_attr_int(&n->attrs, "axis", 0), y->type.rank, &ax))
    return false;
  int64_t len = y->type.dim[ax];
  int64_t inner = interp_dims(&y->type, ax + 1, y->type.rank);
  for (int64_t k = 0; k < y->n; k++) y->d[k] = (double)((k / inner) % len);
  return true;
}

/* reshape: the same elements in the same order. */
bool interp_run_reshape(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  if (x[0]->n != y->n)
    return interp_fail(in, "reshape: %lld elements into %lld",
                       (long long)x[0]->n, (long long)y->n);
  memcpy(y->d, x[0]->d, sizeof(double) * (size_t)y->n);
  return true;
}

/* transpose: y dim k is x dim perm[k] (perm absent: reverse). */
bool interp_run_transpose(Interp *in, const IrNode *n, Ten *const *xs, Ten *y) {
  const Ten *x = xs[0];
  int r = x->type.rank;
  int64_t perm[IR_MAX_RANK], xst[IR_MAX_RANK], st[IR_MAX_RANK];
  for (int k = 0; k < r; k++) perm[k] = r - 1 - k;
  const IrAttr *a = ir_attr_get(&n->attrs, "perm");
  if (a && (a->kind != ATTR_INTS || a->n != r))
    return interp_fail(in, "transpose: perm needs %d ints", r);
  interp_strides(&x->type, xst);
  for (int k = 0; k < r; k++) {
    int p = (int)perm[k];
    if (a && !interp_axis(in, n, a->ints[k], r, &p)) return false;
    st[k] = xst[p];
    if (y->type.rank != r || y->type.dim[k] != x->type.dim[p])
      return interp_fail(in, "transpose: result type disagrees with perm");
  }
  for (int64_t i = 0; i < y->n; i++)
    y->d[i] = x->d[interp_bcast_off(i, &y->type, st)];
  return true;
}

/* broadcast: NumPy broadcast of x to the result shape. */
bool interp_run_broadcast(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int64_t st[IR_MAX_RANK];
  if (!interp_bcast_ok(&x[0]->type, &y->type))
    return interp_fail(in, "broadcast: operand does not broadcast to the "
                       "result");
  interp_bcast_strides(&x[0]->type, &y->type, st);
  for (int64_t i = 0; i < y->n; i++)
    y->d[i] = x[0]->d[interp_bcast_off(i, &y->type, st)];
  return true;
}

/* concat along axis: the operands' blocks one after the other. */
bool interp_run_concat(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int ax;
  if (!interp_axis(in, n, ir_attr_int(&n->attrs, "axis", 0), y->type.rank, &ax))
    return false;
  int64_t outer = interp_dims(&y->type, 0, ax), ylen = y->type.dim[ax];
  int64_t inner = interp_dims(&y->type, ax + 1, y->type.rank), at = 0;
  for (int j = 0; j < n->nargs; j++) {
    int64_t len = x[j]->type.rank > ax ? x[j]->type.dim[ax] : 0;
    if (at + len > ylen || x[j]->n != outer * len * inner)
      return interp_fail(in, "concat: operand %d does not fit the result", j);
    for (int64_t o = 0; o < outer; o++)
      memcpy(y->d + (o * ylen + at) * inner, x[j]->d + o * len * inner,
             sizeof(double) * (size_t)(len * inner));
    at += len;
  }
  if (at != ylen) return interp_fail(in, "concat: sizes do not add up");
  return true;
}

/* Python slice bounds of [start:end:step] over a dimension of size len:
** the first index and the number of elements. */
static int64_t slice_bounds(int64_t start, int64_t end, int64_t step,
                            int64_t len, int64_t *first) {
  if (start < 0) start += len;
  if (end < 0) end += len;
  if (step > 0) {
    start = start < 0 ? 0 : start > len ? len : start;
    end = end < 0 ? 0 : end > len ? len : end;
    *first = start;
    return end > start ? (end - start + step - 1) / step : 0;
  }
  start = start < -1 ? -1 : start > len - 1 ? len - 1 : start;
  end = end < -1 ? -1 : end > len - 1 ? len - 1 : end;
  *first = start;
  return start > end ? (start - end - step - 1) / -step : 0;
}

/* slice: x[..., start:end:step, ...] along axis, Python-style bounds. */
bool interp_run_slice(Interp *in, const IrNode *n, Ten *const *xs, Ten *y) {
  const Ten *x = xs[0];
  int ax;
  if (!interp_axis(in, n, ir_attr_int(&n->attrs, "axis", 0), x->type.rank, &ax))
    return false;
  int64_t step = ir_attr_int(&n->attrs, "step", 1), first;
  if (step == 0) return interp_fail(in, "slice: step is 0");
  int64_t len = x->type.dim[ax];
  int64_t cnt = slice_bounds(ir_attr_int(&n->attrs, "start", 0),
                             ir_attr_int(&n->attrs, "end", INT64_MAX / 2),
                             step, len, &first);
  int64_t outer = interp_dims(&x->type, 0, ax);
  int64_t inner = interp_dims(&x->type, ax + 1, x->type.rank);
  if (y->n != outer * cnt * inner)
    return interp_fail(in, "slice: %lld elements along axis %d, result "
                       "type disagrees", (long long)cnt, ax);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < cnt; j++)
      memcpy(y->d + (o * cnt + j) * inner,
             x->d + (o * len + first + j * step) * inner,
             sizeof(double) * (size_t)inner);
  return true;
}

/* pad: pads = [lo0, hi0, lo1, hi1, ...] from the first axis (missing pairs
** are 0; negative pads crop), filled with value (default 0). */
bool interp_run_pad(Interp *in, const IrNode *n, Ten *const *xs, Ten *y) {
  const Ten *x = xs[0];
  int r = x->type.rank;
  const IrAttr *a = ir_attr_get(&n->attrs, "pads");
  int64_t lo[IR_MAX_RANK] = {0}, xst[IR_MAX_RANK];
  if (a && (a->kind != ATTR_INTS || a->n > 2 * r || a->n % 2))
    return interp_fail(in, "pad: pads needs at most %d ints, in pairs", 2 * r);
  for (int k = 0; a && k < a->n / 2; k++) lo[k] = a->ints[2 * k];
  double v = ir_attr_float(&n->attrs, "value", 0);
  if (y->type.rank != r) return interp_fail(in, "pad: rank differs");
  interp_strides(&x->type, xst);
  for (int64_t i = 0; i < y->n; i++) {
    int64_t rem = i, off = 0;
    bool inside = true;
    for (int k = r - 1; k >= 0; k--) {
      int64_t c = rem % y->type.dim[k] - lo[k];
      rem /= y->type.dim[k];
      if (c < 0 || c >= x->type.dim[k]) inside = false;
      off += c * xst[k];
    }
    y->d[i] = inside ? x->d[off] : v;
  }
  return true;
}

/* stack along a new axis: y[..., j, ...] = x_j. */
bool interp_run_stack(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int ax;
  if (!interp_axis(in, n, ir_attr_int(&n->attrs, "axis", 0), y->type.rank, &ax))
    return false;
  int64_t outer = interp_dims(&y->type, 0, ax);
  int64_t inner = interp_dims(&y->type, ax + 1, y->type.rank);
  if (y->type.dim[ax] != n->nargs)
    return interp_fail(in, "stack: %d operands, result axis has %lld",
                       n->nargs, (long long)y->type.dim[ax]);
  for (int j = 0; j < n->nargs; j++) {
    if (x[j]->n != outer * inner)
      return interp_fail(in, "stack: operand %d has another size", j);
    for (int64_t o = 0; o < outer; o++)
      memcpy(y->d + (o * n->nargs + j) * inner, x[j]->d + o * inner,
             sizeof(double) * (size_t)inner);
  }
  return true;
}

/* one_hot: y[..., c] = (x[...] == c) for c < classes. */
bool interp_run_one_hot(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  int64_t c = ir_attr_int(&n->attrs, "classes", 0);
  if (c <= 0 && y->type.rank > 0) c = y->type.dim[y->type.rank - 1];
  if (y->n != x[0]->n * c)
    return interp_fail(in, "one_hot: result type disagrees with classes");
  for (int64_t i = 0; i < x[0]->n; i++) {
    double l = x[0]->d[i];
    if (!(l >= 0 && l < (double)c))
      return interp_fail(in, "one_hot: label %.0f out of range [0, %lld) "
                         "at index %lld", l, (long long)c,
                         (long long)i);
    y->d[i * c + (int64_t)l] = 1;
  }
  return true;
}

/* gather: y[idx..., rest...] = table[idx[...], rest...] (rows). */
bool interp_run_gather(Interp *in, const IrNode *n, Ten *const *x, Ten *y) {
  const Ten *t = x[0], *idx = x[1];
  if (t->type.rank < 1) return interp_fail(in, "gather: scalar table");
  int64_t rows = t->type.dim[0], row = interp_dims(&t->type, 1, t->type.rank);
  if (y->n != idx->n * row)
    return interp_fail(in, "gather: result type disagrees");
  for (int64_t i = 0; i < idx->n; i++) {
    double k = idx->d[i];
    if (!(k >= 0 && k < (double)rows))
      return interp_fail(in, "gather: index %.0f out of range [0, %lld) at "
                         "index %lld", k, (long long)rows,
                         (long long)i);
    memcpy(y->d + i * row, t->d + (int64_t)k * row,
           sizeof(double) * (size_t)row);
  }
  return true;
}

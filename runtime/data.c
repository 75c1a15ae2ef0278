/*
** data.c: the training data of a model.  A data source of the train block
** (NnrtDataSource: idx, npy, npz, csv, text) and the command line's
** `--data NAME=FILE` overrides become one column per train input: every
** sample converted to the input's dtype, so that a batch is a gather of
** rows (nnrt_data_gather).  Checked on load, before any training: the
** per-sample shape against the input, the sample counts of all inputs,
** integer values of float files, and value ranges (train_input_limits).
** Text columns keep the ids of the file and cut blocks when gathered.
*/
#include "internal.h"

#include <math.h>
#include <stdlib.h>

/* Where one train input comes from. */
typedef struct Bind {
  NnrtDataKind kind;   /* NNRT_DATA_NONE: unbound */
  const char *path;
  const char *key;     /* npz member */
  int shift;           /* text: 0 = x, 1 = y */
  int order;           /* position among the bindings (csv columns) */
  int64_t col0;        /* csv: first column */
} Bind;

/* ------------------------------------------------------------ numbers */

static double half_to_double(uint16_t h) {
  int ex = h >> 10 & 31, man = h & 1023;
  double v = ex == 0    ? ldexp(man, -24)
             : ex == 31 ? (man ? NAN : INFINITY)
                        : ldexp(man + 1024, ex - 25);
  return h >> 15 ? -v : v;
}

/* Element i of a buffer of dtype t, as a double. */
static double get(const void *p, NnrtDType t, int64_t i) {
  uint16_t h;
  uint32_t u;
  float f;
  switch (t) {
  case NNRT_F32: memcpy(&f, (const char *)p + 4 * i, 4); return f;
  case NNRT_F64: { double d; memcpy(&d, (const char *)p + 8 * i, 8); return d; }
  case NNRT_F16: memcpy(&h, (const char *)p + 2 * i, 2); return half_to_double(h);
  case NNRT_BF16:
    memcpy(&h, (const char *)p + 2 * i, 2);
    u = (uint32_t)h << 16;
    memcpy(&f, &u, 4);
    return f;
  case NNRT_I32: { int32_t v; memcpy(&v, (const char *)p + 4 * i, 4); return v; }
  case NNRT_I64: { int64_t v; memcpy(&v, (const char *)p + 8 * i, 8); return (double)v; }
  case NNRT_U8: return ((const uint8_t *)p)[i];
  case NNRT_BOOL: return ((const uint8_t *)p)[i] != 0;
  default: return 0;
  }
}

static bool is_int(NnrtDType t) {
  return t == NNRT_I32 || t == NNRT_I64 || t == NNRT_U8 || t == NNRT_BOOL;
}

/* Writes element i of dst (dtype t) from v (already checked integral
** for integer types). */
static void put(void *dst, NnrtDType t, int64_t i, double v) {
  char *p = dst;
  switch (t) {
  case NNRT_F64: memcpy(p + 8 * i, &v, 8); break;
  case NNRT_I32: { int32_t x = (int32_t)v; memcpy(p + 4 * i, &x, 4); break; }
  case NNRT_I64: { int64_t x = (int64_t)v; memcpy(p + 8 * i, &x, 8); break; }
  case NNRT_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
  case NNRT_BOOL: ((uint8_t *)p)[i] = v != 0; break;
  default: {
    float f = (float)v;
    nnrt_from_f32(p + nnrt_dtype_size(t) * (size_t)i, t, &f, 1);
  }
  }
}

/* Range of integer dtype t. */
static bool fits(NnrtDType t, double v) {
  switch (t) {
  case NNRT_I32: return v >= -2147483648.0 && v <= 2147483647.0;
  case NNRT_I64: return v >= -9223372036854775808.0 && v < 9223372036854775808.0;
  case NNRT_U8: return v >= 0 && v <= 255;
  default: return true;
  }
}

/* ------------------------------------------------------------ columns */

static int64_t sample_numel(const NnrtTensorDesc *in) {
  return nnrt_numel(in->dims + 1, in->rank - 1);
}

/* Fills column c from n samples of `numel` values each, element (s, j) at
** index s * stride + off + j of src (dtype st).  Checks integrality,
** dtype range and the input's limit. */
static int fill_col(NnrtDataCol *c, const void *src, NnrtDType st, int64_t n,
                    int64_t stride, int64_t off, int64_t limit, NnrtErr *e) {
  const NnrtTensorDesc *in = c->in;
  int64_t k = sample_numel(in);
  c->row = (size_t)k * nnrt_dtype_size(in->dtype);
  if (!(c->data = malloc(c->row * (size_t)n + 1)))
    return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", c->path);
  if (st == in->dtype && stride == k && !off && limit <= 0) {
    memcpy(c->data, src, c->row * (size_t)n);
    return 0;
  }
  for (int64_t s = 0; s < n; s++)
    for (int64_t j = 0; j < k; j++) {
      double v = get(src, st, s * stride + off + j);
      if (is_int(in->dtype) && (v != floor(v) || !fits(in->dtype, v)))
        return nnrt_err_set(e, NNRT_E_FORMAT, "%s: sample %lld: value %.9g "
                            "for input '%s' is not an integer of its dtype %s",
                            c->path, (long long)s, v, in->name,
                            nnrt_dtype_name(in->dtype));
      if (limit > 0 && (v < 0 || v >= (double)limit))
        return nnrt_err_set(e, NNRT_E_FORMAT, "%s: sample %lld: '%s' is %.9g, "
                            "outside [0, %lld) (the model's range for it)",
                            c->path, (long long)s, in->name, v,
                            (long long)limit);
      put(c->data, in->dtype, s * k + j, v);
    }
  return 0;
}

/* A tensor of n samples for input `in`: per-sample element counts agree. */
static int check_shape(const NnrtTensor *t, const NnrtDataCol *c, NnrtErr *e) {
  char a[200], b[200], s[200];
  if (t->rank < 1 || nnrt_numel(t->dims + 1, t->rank - 1) != sample_numel(c->in))
    return nnrt_err_set(e, NNRT_E_MISMATCH, "%s: array of shape %s does not "
                        "fit input '%s' %s%s (samples of shape %s expected)",
                        c->path, nnrt_shape_str(a, sizeof a, t->dims, t->rank),
                        c->in->name, nnrt_dtype_name(c->in->dtype),
                        nnrt_shape_str(b, sizeof b, c->in->dims, c->in->rank),
                        nnrt_shape_str(s, sizeof s, c->in->dims + 1,
                                       c->in->rank - 1));
  return 0;
}

static int from_tensor(NnrtDataCol *c, const NnrtTensor *t, int64_t limit,
                       int64_t *n, NnrtErr *e) {
  int rc = check_shape(t, c, e);
  if (rc) return rc;
  *n = t->dims[0];
  return fill_col(c, t->data, t->dtype, *n, sample_numel(c->in), 0, limit, e);
}

static int load_idx_npy(NnrtDataCol *c, const Bind *b, int64_t limit,
                        int64_t *n, NnrtErr *e) {
  NnrtTensor t;
  int rc = b->kind == NNRT_DATA_IDX ? nnrt_idx_read(b->path, &t, e)
                                    : nnrt_npy_read(b->path, &t, e);
  if (rc) return rc;
  rc = from_tensor(c, &t, limit, n, e);
  nnrt_tensor_free(&t);
  return rc;
}

static int load_npz(NnrtDataCol *c, const Bind *b, int64_t limit, int64_t *n,
                    NnrtErr *e) {
  NnrtTensorFile f;
  int rc = nnrt_npz_read(b->path, &f, e);
  if (rc) return rc;
  const NnrtTensor *t = nnrt_tf_find(&f, b->key);
  if (!t) {
    rc = nnrt_err_set(e, NNRT_E_NOTFOUND, "%s: no array '%s' for input '%s' "
                      "(the file has:", b->path, b->key, c->in->name);
    for (int i = 0; i < f.n && e; i++) {
      size_t l = strlen(e->msg);
      snprintf(e->msg + l, sizeof e->msg - l, " %s", f.t[i].name);
    }
    if (e && strlen(e->msg) + 2 < sizeof e->msg) strcat(e->msg, ")");
  } else {
    rc = from_tensor(c, t, limit, n, e);
  }
  nnrt_tf_free(&f);
  return rc;
}

/* Columns [col0, col0 + width) of a CSV file, `used` columns in all. */
static int load_csv(NnrtDataCol *c, const Bind *b, int header, int64_t used,
                    int64_t limit, int64_t *n, NnrtErr *e) {
  NnrtCsv t;
  int rc = nnrt_csv_read(b->path, header, &t, e);
  if (rc && !header) { /* a first row of names */
    NnrtErr e2 = {0};
    if (!nnrt_csv_read(b->path, 1, &t, &e2)) rc = 0;
  }
  if (rc) return rc;
  if (t.cols != used)
    rc = nnrt_err_set(e, NNRT_E_MISMATCH, "%s: %lld columns, the inputs it "
                      "fills take %lld (input '%s' takes %lld from column %lld)",
                      b->path, (long long)t.cols, (long long)used, c->in->name,
                      (long long)sample_numel(c->in), (long long)b->col0 + 1);
  else {
    *n = t.rows;
    rc = fill_col(c, t.data, NNRT_F32, t.rows, t.cols, b->col0, limit, e);
  }
  nnrt_csv_free(&t);
  return rc;
}

/* Text: a shared NnrtText (an earlier column of the same file) or a new one. */
static int load_text(NnrtData *d, int ci, const Bind *b, int64_t block,
                     int64_t limit, int64_t *n, NnrtErr *e) {
  NnrtDataCol *c = &d->cols[ci];
  int64_t T = block ? block : c->in->rank >= 2 ? c->in->dims[1] : 0;
  if (c->in->rank != 2 || c->in->dims[1] != T ||
      (c->in->dtype != NNRT_I32 && c->in->dtype != NNRT_I64))
    return nnrt_err_set(e, NNRT_E_MISMATCH, "%s: text blocks of %lld ids do "
                        "not fit input '%s' (i32[B,%lld] expected)", b->path,
                        (long long)T, c->in->name, (long long)T);
  for (int k = 0; k < ci && !c->text; k++)
    if (d->cols[k].text && !strcmp(d->cols[k].path, b->path))
      c->text = d->cols[k].text;
  if (!c->text) {
    if (!(c->text = calloc(1, sizeof *c->text)))
      return nnrt_err_set(e, NNRT_E_NOMEM, "out of memory");
    int rc = nnrt_text_read(b->path, c->text, e);
    if (rc) {
      free(c->text);
      c->text = NULL;
      return rc;
    }
  }
  c->shift = b->shift;
  c->row = (size_t)T * nnrt_dtype_size(c->in->dtype);
  if (limit > 0 && c->text->vocab_size > limit)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: %d distinct symbols, input '%s' "
                        "takes ids below %lld", b->path, c->text->vocab_size,
                        c->in->name, (long long)limit);
  *n = nnrt_text_npairs(c->text, T);
  return 0;
}

/* ------------------------------------------------------------ bindings */

static int find_input(const NnrtModel *m, const char *name, size_t len) {
  for (int k = 0; k < m->ntrain_inputs; k++)
    if (strlen(m->train_inputs[k].name) == len &&
        !memcmp(m->train_inputs[k].name, name, len))
      return k;
  return -1;
}

static bool ends(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* The kind of a file named on the command line without a source. */
static NnrtDataKind kind_of(const char *path) {
  if (ends(path, ".npy")) return NNRT_DATA_NPY;
  if (ends(path, ".npz")) return NNRT_DATA_NPZ;
  if (ends(path, ".csv")) return NNRT_DATA_CSV;
  if (ends(path, ".idx") || ends(path, "ubyte") || ends(path, "ubyte.gz") ||
      ends(path, ".gz"))
    return NNRT_DATA_IDX;
  return NNRT_DATA_NONE;
}

static int bind_all(const NnrtModel *m, const NnrtDataSource *src,
                    const char *const *over, int nover, const char *what,
                    Bind *b, NnrtErr *e) {
  int order = 0;
  for (int i = 0; src && i < src->nnames; i++) {
    int k = find_input(m, src->names[i], strlen(src->names[i]));
    if (k < 0)
      return nnrt_err_set(e, NNRT_E_ARG, "%s: the source names '%s', not an "
                          "input of model '%s'", what, src->names[i], m->name);
    bool per = src->kind == NNRT_DATA_IDX || src->kind == NNRT_DATA_NPY;
    b[k] = (Bind){src->kind, src->kind ? src->files[per ? i : 0] : NULL,
                  src->keys ? src->keys[i] : src->names[i], i, order++, 0};
  }
  for (int i = 0; i < nover; i++) {
    const char *eq = strchr(over[i], '=');
    int k = eq ? find_input(m, over[i], (size_t)(eq - over[i])) : -1;
    if (k < 0) {
      char names[512] = "";
      for (int j = 0; j < m->ntrain_inputs; j++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof names - l, "%s%s", j ? ", " : "",
                 m->train_inputs[j].name);
      }
      return nnrt_err_set(e, NNRT_E_ARG, "%s: '%s' does not name an input of "
                          "model '%s' (%s); write NAME=FILE", what, over[i],
                          m->name, names);
    }
    if (b[k].kind == NNRT_DATA_NONE) {
      b[k] = (Bind){kind_of(eq + 1), NULL, m->train_inputs[k].name, 0, order++, 0};
      if (b[k].kind == NNRT_DATA_NONE)
        return nnrt_err_set(e, NNRT_E_ARG, "%s: cannot tell the format of '%s' "
                            "for input '%s' (name it .npy, .npz, .csv or .idx, "
                            "or give the model a data source)", what, eq + 1,
                            m->train_inputs[k].name);
    }
    b[k].path = eq + 1;
  }
  for (int k = 0; k < m->ntrain_inputs; k++)
    if (b[k].kind == NNRT_DATA_NONE || !b[k].path)
      return nnrt_err_set(e, NNRT_E_ARG, "%s: nothing fills input '%s' (pass "
                          "--%s %s=FILE)", what, m->train_inputs[k].name,
                          !strncmp(what, "eval data", 9) ? "eval-data" : "data",
                          m->train_inputs[k].name);
  /* csv: columns in binding order, per file */
  for (int k = 0; k < m->ntrain_inputs; k++)
    for (int j = 0; j < m->ntrain_inputs; j++)
      if (b[k].kind == NNRT_DATA_CSV && b[j].kind == NNRT_DATA_CSV &&
          b[j].order < b[k].order && !strcmp(b[j].path, b[k].path))
        b[k].col0 += sample_numel(&m->train_inputs[j]);
  return 0;
}

/* Total columns of the csv file of binding k. */
static int64_t csv_used(const NnrtModel *m, const Bind *b, int k) {
  int64_t used = 0;
  for (int j = 0; j < m->ntrain_inputs; j++)
    if (b[j].kind == NNRT_DATA_CSV && !strcmp(b[j].path, b[k].path))
      used += sample_numel(&m->train_inputs[j]);
  return used;
}

int nnrt_data_load(const NnrtModel *m, const NnrtDataSource *src,
                   const char *const *over, int nover, const char *what,
                   NnrtData *d, NnrtErr *e) {
  memset(d, 0, sizeof *d);
  int ni = m->ntrain_inputs, rc = 0;
  Bind *b = calloc((size_t)ni + 1, sizeof *b);
  d->cols = calloc((size_t)ni + 1, sizeof *d->cols);
  int64_t *n = calloc((size_t)ni + 1, sizeof *n);
  if (!b || !d->cols || !n) rc = nnrt_err_set(e, NNRT_E_NOMEM, "out of memory");
  if (!rc) rc = bind_all(m, src, over, nover, what, b, e);
  for (int k = 0; k < ni && !rc; k++) {
    NnrtDataCol *c = &d->cols[k];
    c->in = &m->train_inputs[k];
    c->path = b[k].path;
    d->ncols = k + 1;
    int64_t lim = m->train_input_limits ? m->train_input_limits[k] : 0;
    switch (b[k].kind) {
    case NNRT_DATA_IDX:
    case NNRT_DATA_NPY: rc = load_idx_npy(c, &b[k], lim, &n[k], e); break;
    case NNRT_DATA_NPZ: rc = load_npz(c, &b[k], lim, &n[k], e); break;
    case NNRT_DATA_CSV:
      rc = load_csv(c, &b[k], src && src->kind == NNRT_DATA_CSV && src->header,
                    csv_used(m, b, k), lim, &n[k], e);
      break;
    case NNRT_DATA_TEXT:
      rc = load_text(d, k, &b[k], src ? src->block : 0, lim, &n[k], e);
      break;
    default: rc = nnrt_err_set(e, NNRT_E_ARG, "%s: bad source", what);
    }
  }
  for (int k = 1; k < ni && !rc; k++)
    if (n[k] != n[0])
      rc = nnrt_err_set(e, NNRT_E_MISMATCH, "%s: '%s' has %lld samples (%s) "
                        "but '%s' has %lld (%s)", what, m->train_inputs[0].name,
                        (long long)n[0], b[0].path, m->train_inputs[k].name,
                        (long long)n[k], b[k].path);
  if (!rc) d->n = n[0];
  free(b);
  free(n);
  if (rc) nnrt_data_free(d);
  return rc;
}

void nnrt_data_gather(const NnrtData *d, int c, const int64_t *idx,
                      int64_t n, void *dst) {
  const NnrtDataCol *col = &d->cols[c];
  char *out = dst;
  if (!col->text) {
    for (int64_t i = 0; i < n; i++)
      memcpy(out + (size_t)i * col->row, col->data + (size_t)idx[i] * col->row,
             col->row);
    return;
  }
  int64_t T = col->in->dims[1];
  for (int64_t i = 0; i < n; i++)
    for (int64_t t = 0; t < T; t++) {
      int32_t id = col->text->ids[idx[i] + col->shift + t];
      if (col->in->dtype == NNRT_I64) {
        int64_t v = id;
        memcpy(out + ((size_t)(i * T + t)) * 8, &v, 8);
      } else {
        memcpy(out + ((size_t)(i * T + t)) * 4, &id, 4);
      }
    }
}

void nnrt_data_free(NnrtData *d) {
  for (int k = 0; d->cols && k < d->ncols; k++) {
    NnrtDataCol *c = &d->cols[k];
    bool shared = false;
    for (int j = 0; j < k; j++) shared |= d->cols[j].text == c->text;
    if (c->text && !shared) {
      nnrt_text_free(c->text);
      free(c->text);
    }
    free(c->data);
  }
  free(d->cols);
  memset(d, 0, sizeof *d);
}

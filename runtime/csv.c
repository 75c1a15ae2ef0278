/*
** csv.c: CSV files of numbers: comma-separated fields, an optional header
** row of names, every row with the same number of fields.  A field that is
** not a number is reported with its line and column (1-based), as
** "data.csv:3:7: bad number 'abc'".
*/
#include "internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

static bool blank_line(const char *s, const char *end) {
  for (; s < end; s++)
    if (*s != ' ' && *s != '\t' && *s != '\r') return false;
  return true;
}

/* Field [s, end) without surrounding blanks (and quotes for names). */
static void trim(const char **s, const char **end) {
  while (*s < *end && (**s == ' ' || **s == '\t')) (*s)++;
  while (*end > *s && ((*end)[-1] == ' ' || (*end)[-1] == '\t' ||
                       (*end)[-1] == '\r'))
    (*end)--;
}

static int64_t count_fields(const char *s, const char *end) {
  int64_t n = 1;
  for (; s < end; s++) n += *s == ',';
  return n;
}

static int read_header(const char *path, const char *s, const char *end,
                       NnrtCsv *out, NnrtErr *e) {
  out->cols = count_fields(s, end);
  out->names = calloc((size_t)out->cols, sizeof *out->names);
  if (!out->names) return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  for (int64_t c = 0; c < out->cols; c++) {
    const char *f = s, *fe = s;
    while (fe < end && *fe != ',') fe++;
    s = fe + 1;
    trim(&f, &fe);
    if (fe - f >= 2 && *f == '"' && fe[-1] == '"') f++, fe--;
    out->names[c] = malloc((size_t)(fe - f) + 1);
    if (!out->names[c])
      return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
    memcpy(out->names[c], f, (size_t)(fe - f));
    out->names[c][fe - f] = 0;
  }
  return 0;
}

/* Parses one data row [s, end) of line `line` into row. */
static int read_row(const char *path, int64_t line, const char *s,
                    const char *end, const char *lstart, int64_t cols,
                    float *row, NnrtErr *e) {
  int64_t nf = count_fields(s, end);
  if (nf != cols)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s:%lld: %lld fields, expected %lld",
                        path, (long long)line, (long long)nf, (long long)cols);
  for (int64_t c = 0; c < cols; c++) {
    const char *f = s, *fe = s;
    while (fe < end && *fe != ',') fe++;
    s = fe + 1;
    trim(&f, &fe);
    char buf[64], *ep;
    size_t n = (size_t)(fe - f);
    double v = 0;
    bool ok = n > 0 && n < sizeof buf;
    if (ok) {
      memcpy(buf, f, n);
      buf[n] = 0;
      errno = 0;
      v = strtod(buf, &ep);
      ok = *ep == 0 && (errno != ERANGE || fabs(v) < 1);
    }
    if (!ok)
      return nnrt_err_set(e, NNRT_E_FORMAT, "%s:%lld:%lld: bad number '%.*s'",
                          path, (long long)line, (long long)(f - lstart + 1),
                          (int)(n > 40 ? 40 : n), f);
    row[c] = (float)v;
  }
  return 0;
}

static int parse_csv(const char *path, const char *b, size_t n, int has_header,
                     NnrtCsv *out, NnrtErr *e) {
  const char *s = b, *end = b + n;
  int64_t line = 0, cap = 0;
  bool first = true;
  while (s < end) {
    const char *le = memchr(s, '\n', (size_t)(end - s));
    if (!le) le = end;
    line++;
    if (!blank_line(s, le)) {
      int rc;
      if (first && has_header) {
        if ((rc = read_header(path, s, le, out, e))) return rc;
      } else {
        if (first) out->cols = count_fields(s, le);
        if (out->rows == cap) {
          cap = cap ? cap * 2 : 64;
          float *d = realloc(out->data, (size_t)(cap * out->cols) * sizeof *d);
          if (!d) return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
          out->data = d;
        }
        rc = read_row(path, line, s, le, s, out->cols,
                      out->data + out->rows * out->cols, e);
        if (rc) return rc;
        out->rows++;
      }
      first = false;
    }
    s = le + 1;
  }
  if (first) return nnrt_err_set(e, NNRT_E_FORMAT, "%s: empty CSV file", path);
  return 0;
}

int nnrt_csv_read(const char *path, int has_header, NnrtCsv *out, NnrtErr *e) {
  memset(out, 0, sizeof *out);
  uint8_t *b;
  size_t n;
  int rc = nnrt_read_file(path, &b, &n, e);
  if (rc) return rc;
  rc = parse_csv(path, (const char *)b, n, has_header, out, e);
  free(b);
  if (rc) nnrt_csv_free(out);
  return rc;
}

void nnrt_csv_free(NnrtCsv *c) {
  if (!c) return;
  for (int64_t i = 0; c->names && i < c->cols; i++) free(c->names[i]);
  free(c->names);
  free(c->data);
  memset(c, 0, sizeof *c);
}

int nnrt_csv_write(const char *path, const float *data, int64_t rows,
                   int64_t cols, const char *const *names, NnrtErr *e) {
  if (rows < 0 || cols < 1)
    return nnrt_err_set(e, NNRT_E_ARG, "%s: bad CSV shape %lld x %lld", path,
                        (long long)rows, (long long)cols);
  NnrtAtomic a;
  int rc = nnrt_atomic_open(&a, path, e);
  if (rc) return rc;
  char buf[64];
  for (int64_t c = 0; names && c < cols; c++) {
    nnrt_atomic_write(&a, names[c], strlen(names[c]));
    nnrt_atomic_write(&a, c + 1 < cols ? "," : "\n", 1);
  }
  for (int64_t r = 0; r < rows; r++)
    for (int64_t c = 0; c < cols; c++) {
      int k = snprintf(buf, sizeof buf, "%.9g%s", (double)data[r * cols + c],
                       c + 1 < cols ? "," : "\n");
      nnrt_atomic_write(&a, buf, (size_t)k);
    }
  return nnrt_atomic_commit(&a, e);
}

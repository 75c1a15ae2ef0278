/*
** safetensors.c: weights files in the safetensors format: an 8-byte
** little-endian header length, a JSON header (a strict parser of its own
** for exactly this grammar: an object of tensor entries {"dtype", "shape",
** "data_offsets"} and an optional "__metadata__" string map), then the
** data section.  Nothing in the header is trusted: every length, offset
** and size is checked against the file before anything is read.
*/
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#define MAX_HEADER (100u << 20) /* as the reference implementation */

/* ORDER DTYPE */
static const char *const st_names[NNRT_DTYPE_COUNT] = {
    "F32", "F16", "BF16", "F64", "I32", "I64", "U8", "BOOL"};

const char *nnrt_st_dtype_name(NnrtDType t) {
  return (unsigned)t < NNRT_DTYPE_COUNT ? st_names[t] : "?";
}

/* ------------------------------------------------------------ JSON */

typedef struct Json {
  const char *s, *p, *end;
  const char *path;
  NnrtErr *e;
} Json;

static int jfail(Json *j, const char *what) {
  return nnrt_err_set(j->e, NNRT_E_FORMAT,
                      "%s: bad JSON header at byte %td: %s", j->path,
                      j->p - j->s, what);
}

static void ws(Json *j) {
  while (j->p < j->end &&
         (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
    j->p++;
}

/* True (and consumes it) if the next non-blank character is c. */
static bool eat(Json *j, char c) {
  ws(j);
  if (j->p < j->end && *j->p == c) {
    j->p++;
    return true;
  }
  return false;
}

static int hexval(int c) {
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                : -1;
}

static int put_utf8(char *o, uint32_t c) {
  if (c < 0x80) return o[0] = (char)c, 1;
  if (c < 0x800) {
    o[0] = (char)(0xc0 | c >> 6);
    o[1] = (char)(0x80 | (c & 0x3f));
    return 2;
  }
  if (c < 0x10000) {
    o[0] = (char)(0xe0 | c >> 12);
    o[1] = (char)(0x80 | (c >> 6 & 0x3f));
    o[2] = (char)(0x80 | (c & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | c >> 18);
  o[1] = (char)(0x80 | (c >> 12 & 0x3f));
  o[2] = (char)(0x80 | (c >> 6 & 0x3f));
  o[3] = (char)(0x80 | (c & 0x3f));
  return 4;
}

static int hex4(Json *j, uint32_t *v) {
  if (j->end - j->p < 4) return -1;
  *v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval((unsigned char)j->p[i]);
    if (h < 0) return -1;
    *v = *v << 4 | (uint32_t)h;
  }
  j->p += 4;
  return 0;
}

/* string: '"' chars '"', escapes decoded; *out malloc'd. */
static int jstring(Json *j, char **out) {
  *out = NULL;
  if (!eat(j, '"')) return jfail(j, "expected a string");
  const char *q = j->p;
  while (q < j->end && *q != '"') q += *q == '\\' ? 2 : 1;
  if (q >= j->end) return jfail(j, "unterminated string");
  char *o = malloc((size_t)(q - j->p) + 4), *w = o;
  if (!o) return nnrt_err_set(j->e, NNRT_E_NOMEM, "%s: out of memory", j->path);
  while (*j->p != '"') {
    unsigned char c = (unsigned char)*j->p++;
    if (c < 0x20) return free(o), jfail(j, "control character in a string");
    if (c != '\\') {
      *w++ = (char)c;
      continue;
    }
    static const char esc[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
    char x = *j->p++;
    const char *map = x ? strchr(esc, x) : NULL;
    if (map && (map - esc) % 2 == 0) {
      *w++ = map[1];
      continue;
    }
    uint32_t u, lo;
    if (x != 'u' || hex4(j, &u)) return free(o), jfail(j, "bad escape");
    if (u >= 0xd800 && u < 0xdc00) {
      if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u')
        return free(o), jfail(j, "lone surrogate");
      j->p += 2;
      if (hex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff)
        return free(o), jfail(j, "bad surrogate pair");
      u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
    } else if (u >= 0xdc00 && u < 0xe000) {
      return free(o), jfail(j, "lone surrogate");
    }
    if (u == 0) return free(o), jfail(j, "NUL in a string");
    w += put_utf8(w, u);
  }
  j->p++;
  *w = 0;
  *out = o;
  return 0;
}

/* A non-negative integer below 2^63, no sign, fraction or exponent. */
static int juint(Json *j, int64_t *v) {
  ws(j);
  const char *b = j->p;
  uint64_t x = 0;
  while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
    if (x > (uint64_t)(INT64_MAX - 9) / 10) return jfail(j, "integer too large");
    x = x * 10 + (uint64_t)(*j->p++ - '0');
  }
  if (j->p == b) return jfail(j, "expected a non-negative integer");
  if (j->p - b > 1 && *b == '0') return jfail(j, "leading zero");
  if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
    return jfail(j, "expected an integer");
  *v = (int64_t)x;
  return 0;
}

/* '[' uint (',' uint)* ']' into v (at most max); *n the count. */
static int juints(Json *j, int64_t *v, int max, int *n, const char *what) {
  *n = 0;
  if (!eat(j, '[')) return jfail(j, what);
  if (eat(j, ']')) return 0;
  do {
    int64_t x = 0;
    int rc = juint(j, &x);
    if (rc) return rc;
    if (*n >= max) return jfail(j, "too many dimensions");
    v[(*n)++] = x;
  } while (eat(j, ','));
  return eat(j, ']') ? 0 : jfail(j, "expected ',' or ']'");
}

/* One header entry being read. */
typedef struct Entry {
  char *name;
  int dtype; /* -1 until seen */
  int rank;  /* -1 until seen */
  int64_t dims[NNRT_MAX_RANK];
  int64_t off[2];
  int has_off;
} Entry;

/* { "dtype": str, "shape": [..], "data_offsets": [b, e] } */
static int jentry(Json *j, Entry *t) {
  t->dtype = t->rank = -1;
  if (!eat(j, '{')) return jfail(j, "expected '{' for a tensor");
  if (eat(j, '}')) goto check;
  do {
    char *k;
    int rc = jstring(j, &k);
    if (rc) return rc;
    if (!eat(j, ':')) return free(k), jfail(j, "expected ':'");
    if (!strcmp(k, "dtype") && t->dtype < 0) {
      char *v;
      if ((rc = jstring(j, &v))) return free(k), rc;
      for (int d = 0; d < NNRT_DTYPE_COUNT; d++)
        if (!strcmp(v, st_names[d])) t->dtype = d;
      if (t->dtype < 0) {
        nnrt_err_set(j->e, NNRT_E_FORMAT,
                     "%s: tensor '%s' has unknown dtype '%s' (known: F32 "
                     "F16 BF16 F64 I32 I64 U8 BOOL)",
                     j->path, t->name, v);
        free(v);
        free(k);
        return NNRT_E_FORMAT;
      }
      free(v);
    } else if (!strcmp(k, "shape") && t->rank < 0) {
      rc = juints(j, t->dims, NNRT_MAX_RANK, &t->rank, "expected a shape");
    } else if (!strcmp(k, "data_offsets") && !t->has_off) {
      int n;
      rc = juints(j, t->off, 2, &n, "expected data_offsets");
      if (!rc && n != 2) rc = jfail(j, "data_offsets needs two integers");
      t->has_off = 1;
    } else {
      rc = nnrt_err_set(j->e, NNRT_E_FORMAT,
                        "%s: tensor '%s': unexpected or repeated key '%s'",
                        j->path, t->name, k);
    }
    free(k);
    if (rc) return rc;
  } while (eat(j, ','));
  if (!eat(j, '}')) return jfail(j, "expected ',' or '}'");
check:
  if (t->dtype < 0 || t->rank < 0 || !t->has_off)
    return nnrt_err_set(j->e, NNRT_E_FORMAT,
                        "%s: tensor '%s' lacks %s", j->path, t->name,
                        t->dtype < 0   ? "a dtype"
                        : t->rank < 0 ? "a shape"
                                      : "data_offsets");
  return 0;
}

/* "__metadata__": { str: str, ... } */
static int jmeta(Json *j, NnrtTensorFile *f) {
  if (!eat(j, '{')) return jfail(j, "__metadata__ must be an object");
  if (eat(j, '}')) return 0;
  do {
    char *k, *v;
    int rc = jstring(j, &k);
    if (rc) return rc;
    if (!eat(j, ':')) return free(k), jfail(j, "expected ':'");
    if ((rc = jstring(j, &v))) return free(k), rc;
    char **nk = realloc(f->meta_key, (size_t)(f->nmeta + 1) * sizeof *nk);
    if (nk) f->meta_key = nk;
    char **nv = realloc(f->meta_val, (size_t)(f->nmeta + 1) * sizeof *nv);
    if (nv) f->meta_val = nv;
    if (!nk || !nv) {
      free(k);
      free(v);
      return nnrt_err_set(j->e, NNRT_E_NOMEM, "%s: out of memory", j->path);
    }
    f->meta_key[f->nmeta] = k;
    f->meta_val[f->nmeta++] = v;
  } while (eat(j, ','));
  return eat(j, '}') ? 0 : jfail(j, "expected ',' or '}'");
}

/* The whole header into entries (*ents, *n) and f's metadata. */
static int jheader(Json *j, Entry **ents, int *n, NnrtTensorFile *f) {
  int cap = 0, seen_meta = 0;
  *ents = NULL;
  *n = 0;
  if (!eat(j, '{')) return jfail(j, "the header must be a JSON object");
  if (!eat(j, '}')) {
    do {
      char *k;
      int rc = jstring(j, &k);
      if (rc) return rc;
      if (!eat(j, ':')) return free(k), jfail(j, "expected ':'");
      if (!strcmp(k, "__metadata__")) {
        free(k);
        if (seen_meta++) return jfail(j, "repeated __metadata__");
        if ((rc = jmeta(j, f))) return rc;
        continue;
      }
      for (int i = 0; i < *n; i++)
        if (!strcmp((*ents)[i].name, k)) {
          nnrt_err_set(j->e, NNRT_E_FORMAT, "%s: duplicate tensor name '%s'",
                       j->path, k);
          free(k);
          return NNRT_E_FORMAT;
        }
      if (*n == cap) {
        cap = cap ? 2 * cap : 16;
        Entry *ne = realloc(*ents, (size_t)cap * sizeof *ne);
        if (!ne) {
          free(k);
          return nnrt_err_set(j->e, NNRT_E_NOMEM, "%s: out of memory", j->path);
        }
        *ents = ne;
      }
      Entry *t = &(*ents)[(*n)++];
      memset(t, 0, sizeof *t);
      t->name = k;
      if ((rc = jentry(j, t))) return rc;
    } while (eat(j, ','));
    if (!eat(j, '}')) return jfail(j, "expected ',' or '}'");
  }
  ws(j);
  if (j->p != j->end) return jfail(j, "trailing characters after the header");
  return 0;
}

/* ------------------------------------------------------------ checks */

static int cmp_off(const void *a, const void *b) {
  const Entry *x = *(Entry *const *)a, *y = *(Entry *const *)b;
  return x->off[0] < y->off[0] ? -1 : x->off[0] > y->off[0];
}

/* Offsets inside the data section, sizes matching shapes, no overlap. */
static int check_entries(const char *path, Entry *t, int n, uint64_t dsize,
                         NnrtErr *e) {
  char s[160];
  for (int i = 0; i < n; i++) {
    int64_t numel = nnrt_numel(t[i].dims, t[i].rank);
    uint64_t want = (uint64_t)numel * nnrt_dtype_size((NnrtDType)t[i].dtype);
    if (numel < 0 || (numel && want / (uint64_t)numel !=
                                   nnrt_dtype_size((NnrtDType)t[i].dtype)))
      return nnrt_err_set(e, NNRT_E_FORMAT, "%s: tensor '%s': shape %s is too "
                          "large", path, t[i].name,
                          nnrt_shape_str(s, sizeof s, t[i].dims, t[i].rank));
    if (t[i].off[0] > t[i].off[1] || (uint64_t)t[i].off[1] > dsize)
      return nnrt_err_set(e, NNRT_E_FORMAT,
                          "%s: tensor '%s': data_offsets [%lld,%lld] outside "
                          "the data section of %llu bytes", path, t[i].name,
                          (long long)t[i].off[0], (long long)t[i].off[1],
                          (unsigned long long)dsize);
    if ((uint64_t)(t[i].off[1] - t[i].off[0]) != want)
      return nnrt_err_set(e, NNRT_E_FORMAT,
                          "%s: tensor '%s': %s %s needs %llu bytes, "
                          "data_offsets [%lld,%lld] hold %lld", path,
                          t[i].name, st_names[t[i].dtype],
                          nnrt_shape_str(s, sizeof s, t[i].dims, t[i].rank),
                          (unsigned long long)want, (long long)t[i].off[0],
                          (long long)t[i].off[1],
                          (long long)(t[i].off[1] - t[i].off[0]));
  }
  Entry **v = malloc((n > 0 ? (size_t)n : 1) * sizeof *v);
  if (!v) return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  for (int i = 0; i < n; i++) v[i] = &t[i];
  qsort(v, (size_t)n, sizeof *v, cmp_off);
  const Entry *last = NULL; /* the non-empty tensor reaching furthest */
  for (int i = 0; i < n; i++) {
    if (v[i]->off[1] == v[i]->off[0]) continue;
    if (last && v[i]->off[0] < last->off[1]) {
      nnrt_err_set(e, NNRT_E_FORMAT,
                   "%s: tensors '%s' [%lld,%lld] and '%s' [%lld,%lld] overlap",
                   path, last->name, (long long)last->off[0],
                   (long long)last->off[1], v[i]->name,
                   (long long)v[i]->off[0], (long long)v[i]->off[1]);
      free(v);
      return NNRT_E_FORMAT;
    }
    if (!last || v[i]->off[1] > last->off[1]) last = v[i];
  }
  free(v);
  return 0;
}

/* ------------------------------------------------------------ reader */

static int read_exact(FILE *f, void *p, size_t n) {
  return fread(p, 1, n, f) == n ? 0 : -1;
}

static int st_read_file(FILE *fp, const char *path, NnrtTensorFile *out,
                        char **hdr, Entry **ents, int *nents, NnrtErr *e) {
  struct stat st;
  uint8_t lenb[8];
  if (fstat(fileno(fp), &st) || !S_ISREG(st.st_mode))
    return nnrt_err_set(e, NNRT_E_IO, "%s: not a regular file", path);
  uint64_t fsize = (uint64_t)st.st_size;
  if (fsize < 8 || read_exact(fp, lenb, 8))
    return nnrt_err_set(e, NNRT_E_TRUNCATED,
                        "%s: truncated: %llu bytes, shorter than the 8-byte "
                        "header length", path, (unsigned long long)fsize);
  uint64_t hlen = nnrt_rd_le64(lenb);
  if (hlen > fsize - 8)
    return nnrt_err_set(e, NNRT_E_TRUNCATED,
                        "%s: truncated: header length %llu past the end of the "
                        "file (%llu bytes after the length)", path,
                        (unsigned long long)hlen,
                        (unsigned long long)(fsize - 8));
  if (hlen > MAX_HEADER || hlen < 2)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: implausible header length %llu",
                        path, (unsigned long long)hlen);
  *hdr = malloc(hlen + 1);
  if (!*hdr) return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  if (read_exact(fp, *hdr, hlen))
    return nnrt_err_set(e, NNRT_E_IO, "%s: read error", path);
  Json j = {*hdr, *hdr, *hdr + hlen, path, e};
  int rc = jheader(&j, ents, nents, out);
  if (rc) return rc;
  uint64_t dsize = fsize - 8 - hlen;
  if ((rc = check_entries(path, *ents, *nents, dsize, e))) return rc;
  out->buf = nnrt_arena_new(dsize);
  if (!out->buf)
    return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory (%llu bytes)",
                        path, (unsigned long long)dsize);
  if (read_exact(fp, out->buf, dsize))
    return nnrt_err_set(e, NNRT_E_IO, "%s: read error", path);
  out->t = calloc((size_t)(*nents ? *nents : 1), sizeof *out->t);
  if (!out->t) return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  for (int i = 0; i < *nents; i++) {
    Entry *t = &(*ents)[i];
    NnrtTensor *o = &out->t[out->n++];
    nnrt_tensor_shape(o, (NnrtDType)t->dtype, t->dims, t->rank);
    o->name = t->name;
    t->name = NULL;
    o->data = (char *)out->buf + t->off[0];
  }
  return 0;
}

int nnrt_st_read(const char *path, NnrtTensorFile *out, NnrtErr *e) {
  memset(out, 0, sizeof *out);
  FILE *fp = fopen(path, "rb");
  if (!fp) return nnrt_err_set(e, NNRT_E_IO, "%s: %s", path, strerror(errno));
  char *hdr = NULL;
  Entry *ents = NULL;
  int n = 0;
  int rc = st_read_file(fp, path, out, &hdr, &ents, &n, e);
  fclose(fp);
  for (int i = 0; i < n; i++) free(ents[i].name);
  free(ents);
  free(hdr);
  if (rc) nnrt_tf_free(out);
  return rc;
}

/* ------------------------------------------------------------ writer */

typedef struct Buf {
  char *p;
  size_t n, cap;
  int oom;
} Buf;

static void bput(Buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t c = b->cap ? b->cap : 256;
    while (c < b->n + n + 1) c *= 2;
    char *q = realloc(b->p, c);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = c;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void bputs(Buf *b, const char *s) { bput(b, s, strlen(s)); }

static void bstr(Buf *b, const char *s) {
  bputs(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      bput(b, esc, 2);
    } else if (c < 0x20) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      bputs(b, esc);
    } else {
      bput(b, (const char *)&c, 1);
    }
  }
  bputs(b, "\"");
}

static int check_tensors(const char *path, const NnrtTensor *t, int n,
                         NnrtErr *e) {
  for (int i = 0; i < n; i++) {
    int64_t numel = nnrt_numel(t[i].dims, t[i].rank);
    if (!t[i].name || (unsigned)t[i].dtype >= NNRT_DTYPE_COUNT || numel < 0 ||
        (uint64_t)numel * nnrt_dtype_size(t[i].dtype) != t[i].nbytes ||
        (t[i].nbytes && !t[i].data))
      return nnrt_err_set(e, NNRT_E_ARG, "%s: tensor %d ('%s') is malformed "
                          "(dtype, shape and byte count disagree)", path, i,
                          t[i].name ? t[i].name : "?");
    for (int k = 0; k < i; k++)
      if (!strcmp(t[k].name, t[i].name))
        return nnrt_err_set(e, NNRT_E_ARG, "%s: duplicate tensor name '%s'",
                            path, t[i].name);
  }
  return 0;
}

int nnrt_st_write(const char *path, const NnrtTensor *t, int n,
                  const char *const *meta, int nmeta, NnrtErr *e) {
  int rc = check_tensors(path, t, n, e);
  if (rc) return rc;
  Buf b = {0};
  char num[64];
  uint64_t off = 0;
  bputs(&b, "{");
  if (nmeta > 0) {
    bputs(&b, "\"__metadata__\":{");
    for (int i = 0; i < nmeta; i++) {
      if (i) bputs(&b, ",");
      bstr(&b, meta[2 * i]);
      bputs(&b, ":");
      bstr(&b, meta[2 * i + 1]);
    }
    bputs(&b, "}");
  }
  for (int i = 0; i < n; i++) {
    if (i || nmeta > 0) bputs(&b, ",");
    bstr(&b, t[i].name);
    bputs(&b, ":{\"dtype\":\"");
    bputs(&b, st_names[t[i].dtype]);
    bputs(&b, "\",\"shape\":[");
    for (int d = 0; d < t[i].rank; d++) {
      snprintf(num, sizeof num, d ? ",%lld" : "%lld", (long long)t[i].dims[d]);
      bputs(&b, num);
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}",
             (unsigned long long)off, (unsigned long long)(off + t[i].nbytes));
    bputs(&b, num);
    off += t[i].nbytes;
  }
  bputs(&b, "}");
  while (b.n % 8) bputs(&b, " ");
  if (b.oom) {
    free(b.p);
    return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  }
  NnrtAtomic a;
  if ((rc = nnrt_atomic_open(&a, path, e))) {
    free(b.p);
    return rc;
  }
  uint8_t len[8];
  nnrt_wr_le64(len, b.n);
  nnrt_atomic_write(&a, len, 8);
  nnrt_atomic_write(&a, b.p, b.n);
  free(b.p);
  for (int i = 0; i < n; i++) nnrt_atomic_write(&a, t[i].data, t[i].nbytes);
  return nnrt_atomic_commit(&a, e);
}

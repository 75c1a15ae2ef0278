/*
** npy.c: NumPy's NPY files (v1.0, v2.0 and v3.0 headers; little-endian
** <f4 <f8 <f2 <i4 <i8 |u1 |b1; C order only) and NPZ archives (a zip of
** NAME.npy members: stored or deflated members are read, through zlib's
** raw inflate, with zip64 sizes as NumPy writes them; stored members are
** written).  Every size in a header is checked against the bytes present.
*/
#include "internal.h"

#include <stdlib.h>
#include <zlib.h>

/* ORDER DTYPE: NPY descr of each NnrtDType (NULL: none). */
static const char *const descrs[NNRT_DTYPE_COUNT] = {
    "<f4", "<f2", NULL, "<f8", "<i4", "<i8", "|u1", "|b1"};

/* ------------------------------------------------------------ header */

typedef struct Lit {
  const char *p, *end;
} Lit;

static void lws(Lit *l) {
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\t')) l->p++;
}

static bool leat(Lit *l, char c) {
  lws(l);
  if (l->p < l->end && *l->p == c) return l->p++, true;
  return false;
}

/* A quoted Python string ('..' or "..", no escapes) into buf. */
static bool lstr(Lit *l, char *buf, size_t n) {
  lws(l);
  if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return false;
  char q = *l->p++;
  size_t k = 0;
  while (l->p < l->end && *l->p != q) {
    if (*l->p == '\\' || k + 1 >= n) return false;
    buf[k++] = *l->p++;
  }
  if (l->p >= l->end) return false;
  l->p++;
  buf[k] = 0;
  return true;
}

static bool lword(Lit *l, const char *w) {
  lws(l);
  size_t n = strlen(w);
  if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n)) return false;
  l->p += n;
  return true;
}

/* '(' [int (',' int)* [',']] ')' */
static bool ltuple(Lit *l, int64_t *dims, int *rank) {
  *rank = 0;
  if (!leat(l, '(')) return false;
  for (;;) {
    lws(l);
    if (leat(l, ')')) return true;
    if (*rank && !leat(l, ',')) return false;
    if (leat(l, ')')) return true; /* (5,) */
    lws(l);
    int64_t v = 0;
    const char *b = l->p;
    while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
      if (v > (INT64_MAX - 9) / 10) return false;
      v = v * 10 + (*l->p++ - '0');
    }
    if (l->p == b || *rank >= NNRT_MAX_RANK) return false;
    dims[(*rank)++] = v;
  }
}

/* Parses the header dict {'descr': .., 'fortran_order': .., 'shape': ..}. */
static int parse_dict(const char *what, const char *h, size_t n,
                      NnrtTensor *t, NnrtErr *e) {
  Lit l = {h, h + n};
  char key[32], descr[32];
  int seen = 0, fortran = 0, rank = 0;
  int64_t dims[NNRT_MAX_RANK];
  if (!leat(&l, '{')) goto bad;
  while (!leat(&l, '}')) {
    if (seen && !leat(&l, ',')) goto bad;
    if (leat(&l, '}')) break;
    if (!lstr(&l, key, sizeof key) || !leat(&l, ':')) goto bad;
    if (!strcmp(key, "descr") && !(seen & 1)) {
      if (!lstr(&l, descr, sizeof descr)) goto bad;
      seen |= 1;
    } else if (!strcmp(key, "fortran_order") && !(seen & 2)) {
      if (lword(&l, "True")) fortran = 1;
      else if (!lword(&l, "False")) goto bad;
      seen |= 2;
    } else if (!strcmp(key, "shape") && !(seen & 4)) {
      if (!ltuple(&l, dims, &rank)) {
        return nnrt_err_set(e, NNRT_E_FORMAT, "%s: bad NPY shape (a tuple of "
                            "at most %d non-negative integers expected)",
                            what, NNRT_MAX_RANK);
      }
      seen |= 4;
    } else {
      return nnrt_err_set(e, NNRT_E_FORMAT, "%s: unexpected NPY header key "
                          "'%s'", what, key);
    }
  }
  lws(&l);
  while (l.p < l.end && (*l.p == ' ' || *l.p == '\n')) l.p++;
  if (l.p != l.end || seen != 7) goto bad;
  if (fortran)
    return nnrt_err_set(e, NNRT_E_UNSUPPORTED, "%s: fortran_order is True; "
                        "only C-order arrays are supported (save a "
                        "np.ascontiguousarray)", what);
  for (int d = 0; d < NNRT_DTYPE_COUNT; d++)
    if (descrs[d] && (!strcmp(descr, descrs[d]) ||
                      (descrs[d][0] == '|' && !strcmp(descr, descrs[d] + 1)))) {
      if (nnrt_tensor_shape(t, (NnrtDType)d, dims, rank))
        return nnrt_err_set(e, NNRT_E_FORMAT, "%s: NPY shape too large", what);
      return 0;
    }
  return nnrt_err_set(e, NNRT_E_UNSUPPORTED, "%s: unsupported NPY dtype '%s' "
                      "(supported: <f4 <f8 <f2 <i4 <i8 |u1 |b1)", what, descr);
bad:
  return nnrt_err_set(e, NNRT_E_FORMAT, "%s: malformed NPY header '%.*s'",
                      what, (int)(n > 120 ? 120 : n), h);
}

int nnrt_npy_parse(const void *p, size_t n, const char *what, NnrtTensor *out,
                   NnrtErr *e) {
  const uint8_t *b = p;
  memset(out, 0, sizeof *out);
  if (n < 10 || memcmp(b, "\x93NUMPY", 6))
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: not an NPY file (bad magic)",
                        what);
  int major = b[6];
  size_t hl, pre;
  if (major == 1) {
    hl = nnrt_rd_le16(b + 8);
    pre = 10;
  } else if (major == 2 || major == 3) {
    if (n < 12)
      return nnrt_err_set(e, NNRT_E_TRUNCATED, "%s: truncated NPY header", what);
    hl = nnrt_rd_le32(b + 8);
    pre = 12;
  } else {
    return nnrt_err_set(e, NNRT_E_UNSUPPORTED, "%s: NPY version %d.%d", what,
                        major, b[7]);
  }
  if (hl > n - pre)
    return nnrt_err_set(e, NNRT_E_TRUNCATED, "%s: truncated: NPY header of "
                        "%zu bytes, file holds %zu", what, hl, n - pre);
  int rc = parse_dict(what, (const char *)b + pre, hl, out, e);
  if (rc) return rc;
  size_t have = n - pre - hl;
  char s[160];
  if (have != out->nbytes)
    return nnrt_err_set(e, have < out->nbytes ? NNRT_E_TRUNCATED : NNRT_E_FORMAT,
                        "%s: %s: header says %s %s (%zu bytes), file holds %zu "
                        "bytes of data", what,
                        have < out->nbytes ? "truncated" : "trailing bytes",
                        descrs[out->dtype],
                        nnrt_shape_str(s, sizeof s, out->dims, out->rank),
                        out->nbytes, have);
  out->owned = malloc(out->nbytes ? out->nbytes : 1);
  if (!out->owned) return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", what);
  memcpy(out->owned, b + pre + hl, out->nbytes);
  out->data = out->owned;
  return 0;
}

int nnrt_npy_read(const char *path, NnrtTensor *out, NnrtErr *e) {
  uint8_t *buf;
  size_t n;
  memset(out, 0, sizeof *out);
  int rc = nnrt_read_file(path, &buf, &n, e);
  if (rc) return rc;
  rc = nnrt_npy_parse(buf, n, path, out, e);
  free(buf);
  return rc;
}

/* The NPY preamble of t (magic, version, length, dict, padding to 64). */
static int npy_preamble(const NnrtTensor *t, char *h, size_t cap, size_t *len,
                        const char *path, NnrtErr *e) {
  if ((unsigned)t->dtype >= NNRT_DTYPE_COUNT || !descrs[t->dtype])
    return nnrt_err_set(e, NNRT_E_UNSUPPORTED, "%s: NPY has no %s dtype",
                        path, nnrt_dtype_name(t->dtype));
  int64_t numel = nnrt_numel(t->dims, t->rank);
  if (numel < 0 || (uint64_t)numel * nnrt_dtype_size(t->dtype) != t->nbytes ||
      (t->nbytes && !t->data))
    return nnrt_err_set(e, NNRT_E_ARG, "%s: tensor '%s' is malformed", path,
                        t->name ? t->name : "");
  char dict[400], shape[300];
  size_t k = 0;
  shape[k++] = '(';
  for (int i = 0; i < t->rank; i++)
    k += (size_t)snprintf(shape + k, sizeof shape - k, i ? ", %lld" : "%lld",
                          (long long)t->dims[i]);
  snprintf(shape + k, sizeof shape - k, t->rank == 1 ? ",)" : ")");
  int dn = snprintf(dict, sizeof dict,
                    "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                    descrs[t->dtype], shape);
  size_t total = 10 + (size_t)dn + 1;
  total = (total + 63) / 64 * 64;
  if (total > cap) return nnrt_err_set(e, NNRT_E_ARG, "%s: header too long", path);
  memcpy(h, "\x93NUMPY\x01\x00", 8);
  nnrt_wr_le16((uint8_t *)h + 8, (uint32_t)(total - 10));
  memcpy(h + 10, dict, (size_t)dn);
  memset(h + 10 + dn, ' ', total - 10 - (size_t)dn);
  h[total - 1] = '\n';
  *len = total;
  return 0;
}

int nnrt_npy_write(const char *path, const NnrtTensor *t, NnrtErr *e) {
  char h[512];
  size_t hl;
  int rc = npy_preamble(t, h, sizeof h, &hl, path, e);
  if (rc) return rc;
  NnrtAtomic a;
  if ((rc = nnrt_atomic_open(&a, path, e))) return rc;
  nnrt_atomic_write(&a, h, hl);
  nnrt_atomic_write(&a, t->data, t->nbytes);
  return nnrt_atomic_commit(&a, e);
}

/* ------------------------------------------------------------ NPZ */

/* One central-directory entry. */
typedef struct Member {
  char name[256];
  int method;
  uint32_t crc;
  uint64_t csize, usize, off;
} Member;

/* Reads zip64 sizes/offset from a central extra field where needed. */
static int zip64_extra(const uint8_t *x, size_t n, Member *m) {
  while (n >= 4) {
    unsigned id = nnrt_rd_le16(x), len = nnrt_rd_le16(x + 2);
    if (len > n - 4) return -1;
    if (id == 1) {
      const uint8_t *q = x + 4;
      size_t left = len;
      uint64_t *f[3] = {&m->usize, &m->csize, &m->off};
      for (int i = 0; i < 3; i++)
        if (*f[i] == 0xffffffffu) {
          if (left < 8) return -1;
          *f[i] = nnrt_rd_le64(q);
          q += 8;
          left -= 8;
        }
      return 0;
    }
    x += 4 + len;
    n -= 4 + len;
  }
  return 0;
}

/* Finds the end of central directory; fills count, cd offset and size. */
static int find_eocd(const char *path, const uint8_t *b, size_t n,
                     uint64_t *count, uint64_t *cdoff, uint64_t *cdsize,
                     size_t *eocd, NnrtErr *e) {
  if (n < 22) goto bad;
  size_t lo = n > 22 + 65535 ? n - 22 - 65535 : 0;
  for (size_t i = n - 22 + 1; i-- > lo;) {
    if (nnrt_rd_le32(b + i) != 0x06054b50u) continue;
    if (i + 22 + nnrt_rd_le16(b + i + 20) != n) continue;
    *eocd = i;
    *count = nnrt_rd_le16(b + i + 10);
    *cdsize = nnrt_rd_le32(b + i + 12);
    *cdoff = nnrt_rd_le32(b + i + 16);
    if (*count == 0xffff || *cdoff == 0xffffffffu || *cdsize == 0xffffffffu) {
      /* zip64: a locator just before, pointing at the zip64 record */
      if (i < 20 || nnrt_rd_le32(b + i - 20) != 0x07064b50u) goto bad;
      uint64_t r = nnrt_rd_le64(b + i - 20 + 8);
      if (r > i - 20 || i - 20 - r < 56 || nnrt_rd_le32(b + r) != 0x06064b50u)
        goto bad;
      *count = nnrt_rd_le64(b + r + 32);
      *cdsize = nnrt_rd_le64(b + r + 40);
      *cdoff = nnrt_rd_le64(b + r + 48);
      *eocd = (size_t)r;
    }
    if (*cdoff > *eocd || *cdsize > *eocd - *cdoff)
      return nnrt_err_set(e, NNRT_E_FORMAT, "%s: bad zip central directory "
                          "(offset %llu + size %llu past its end at %zu)", path,
                          (unsigned long long)*cdoff,
                          (unsigned long long)*cdsize, *eocd);
    return 0;
  }
bad:
  return nnrt_err_set(e, NNRT_E_FORMAT, "%s: not an NPZ (zip) file: no valid "
                      "end of central directory", path);
}

/* Parses central entry at b[*p]; advances *p. */
static int central_entry(const char *path, const uint8_t *b, size_t end,
                         size_t *p, Member *m, NnrtErr *e) {
  size_t q = *p;
  if (end - q < 46 || nnrt_rd_le32(b + q) != 0x02014b50u)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: bad zip central directory entry "
                        "at byte %zu", path, q);
  unsigned nl = nnrt_rd_le16(b + q + 28), xl = nnrt_rd_le16(b + q + 30),
           cl = nnrt_rd_le16(b + q + 32);
  if (end - q - 46 < (size_t)nl + xl + cl || nl == 0 || nl >= sizeof m->name)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: bad zip central directory entry "
                        "at byte %zu (name or extra length)", path, q);
  m->method = nnrt_rd_le16(b + q + 10);
  m->crc = nnrt_rd_le32(b + q + 16);
  m->csize = nnrt_rd_le32(b + q + 20);
  m->usize = nnrt_rd_le32(b + q + 24);
  m->off = nnrt_rd_le32(b + q + 42);
  memcpy(m->name, b + q + 46, nl);
  m->name[nl] = 0;
  if (memchr(m->name, 0, nl) ||
      zip64_extra(b + q + 46 + nl, xl, m))
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: bad zip entry '%s'", path,
                        m->name);
  *p = q + 46 + nl + xl + cl;
  return 0;
}

/* Locates member data through its local header and decompresses it. */
static int member_data(const char *path, const uint8_t *b, size_t n,
                       const Member *m, uint8_t **out, NnrtErr *e) {
  *out = NULL;
  if (m->off > n || n - m->off < 30 || nnrt_rd_le32(b + m->off) != 0x04034b50u)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: member '%s': bad local header "
                        "at byte %llu", path, m->name,
                        (unsigned long long)m->off);
  const uint8_t *h = b + m->off;
  size_t nl = nnrt_rd_le16(h + 26), xl = nnrt_rd_le16(h + 28);
  uint64_t start = m->off + 30 + nl + xl;
  if (start > n || nl != strlen(m->name) || memcmp(h + 30, m->name, nl) ||
      nnrt_rd_le16(h + 8) != m->method)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: member '%s': local header "
                        "disagrees with the central directory", path, m->name);
  if (m->csize > n - start)
    return nnrt_err_set(e, NNRT_E_TRUNCATED, "%s: member '%s': truncated: %llu "
                        "compressed bytes past the end of the file", path,
                        m->name, (unsigned long long)m->csize);
  if (m->method != 0 && m->method != 8)
    return nnrt_err_set(e, NNRT_E_UNSUPPORTED, "%s: member '%s': compression "
                        "method %d (only stored and deflated)", path, m->name,
                        m->method);
  if (m->method == 0 && m->usize != m->csize)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: member '%s': stored with sizes "
                        "%llu and %llu", path, m->name,
                        (unsigned long long)m->csize,
                        (unsigned long long)m->usize);
  if (m->usize > m->csize * 1100 + 1024 || m->usize > SIZE_MAX / 2)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: member '%s': implausible size "
                        "%llu", path, m->name, (unsigned long long)m->usize);
  uint8_t *u = malloc(m->usize ? m->usize : 1);
  if (!u) return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  if (m->method == 0) {
    memcpy(u, b + start, m->usize);
  } else {
    z_stream z = {0};
    if (inflateInit2(&z, -15) != Z_OK) {
      free(u);
      return nnrt_err_set(e, NNRT_E_NOMEM, "%s: inflateInit failed", path);
    }
    z.next_in = (Bytef *)(b + start);
    z.avail_in = (uInt)m->csize;
    z.next_out = u;
    z.avail_out = (uInt)m->usize;
    int zr = inflate(&z, Z_FINISH);
    uint64_t got = z.total_out;
    inflateEnd(&z);
    if (m->csize > UINT32_MAX || m->usize > UINT32_MAX || zr != Z_STREAM_END ||
        got != m->usize) {
      free(u);
      return nnrt_err_set(e, NNRT_E_FORMAT, "%s: member '%s': corrupt deflate "
                          "data (inflated %llu of %llu bytes)", path, m->name,
                          (unsigned long long)got,
                          (unsigned long long)m->usize);
    }
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t k = 0; k < m->usize; k += 1u << 30) {
    uint64_t len = m->usize - k < (1u << 30) ? m->usize - k : 1u << 30;
    crc = crc32(crc, u + k, (uInt)len);
  }
  if ((uint32_t)crc != m->crc) {
    free(u);
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: member '%s': CRC mismatch",
                        path, m->name);
  }
  *out = u;
  return 0;
}

static int npz_members(const char *path, const uint8_t *b, size_t n,
                       NnrtTensorFile *out, NnrtErr *e) {
  uint64_t count = 0, cdoff = 0, cdsize = 0;
  size_t eocd = 0;
  int rc = find_eocd(path, b, n, &count, &cdoff, &cdsize, &eocd, e);
  if (rc) return rc;
  if (count > cdsize / 46)
    return nnrt_err_set(e, NNRT_E_FORMAT, "%s: bad zip central directory (%llu "
                        "entries in %llu bytes)", path,
                        (unsigned long long)count, (unsigned long long)cdsize);
  out->t = calloc(count ? count : 1, sizeof *out->t);
  if (!out->t) return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  size_t p = cdoff, end = cdoff + cdsize;
  for (uint64_t i = 0; i < count; i++) {
    Member m;
    uint8_t *u;
    if ((rc = central_entry(path, b, end, &p, &m, e))) return rc;
    if ((rc = member_data(path, b, n, &m, &u, e))) return rc;
    size_t nl = strlen(m.name);
    if (nl > 4 && !strcmp(m.name + nl - 4, ".npy")) m.name[nl - 4] = 0;
    char what[600];
    snprintf(what, sizeof what, "%s: %s", path, m.name);
    NnrtTensor *t = &out->t[out->n];
    rc = nnrt_npy_parse(u, m.usize, what, t, e);
    free(u);
    if (rc) return rc;
    if (nnrt_tf_find(out, m.name)) {
      nnrt_tensor_free(t);
      return nnrt_err_set(e, NNRT_E_FORMAT, "%s: duplicate member '%s'", path,
                          m.name);
    }
    if (!(t->name = nnrt_strdup(m.name))) {
      nnrt_tensor_free(t);
      return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
    }
    out->n++;
  }
  return 0;
}

int nnrt_npz_read(const char *path, NnrtTensorFile *out, NnrtErr *e) {
  memset(out, 0, sizeof *out);
  uint8_t *b;
  size_t n;
  int rc = nnrt_read_file(path, &b, &n, e);
  if (rc) return rc;
  rc = npz_members(path, b, n, out, e);
  free(b);
  if (rc) nnrt_tf_free(out);
  return rc;
}

int nnrt_npz_write(const char *path, const NnrtTensor *t, int n, NnrtErr *e) {
  NnrtAtomic a;
  int rc = nnrt_atomic_open(&a, path, e);
  if (rc) return rc;
  uint8_t *cd = malloc((size_t)(n ? n : 1) * (46 + 260));
  if (!cd) {
    nnrt_atomic_abort(&a);
    return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  }
  size_t cdn = 0;
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    char h[512], name[260];
    size_t hl;
    int nl = snprintf(name, sizeof name, "%s.npy", t[i].name ? t[i].name : "");
    if ((rc = npy_preamble(&t[i], h, sizeof h, &hl, path, e))) break;
    uint64_t size = hl + t[i].nbytes;
    if (nl < 5 || nl >= (int)sizeof name || size > 0xfffffffeu ||
        off > 0xfffffffeu - size) {
      rc = nnrt_err_set(e, NNRT_E_UNSUPPORTED, "%s: member '%s' is too large "
                        "or badly named for a zip without zip64", path, name);
      break;
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)h, (uInt)hl);
    if (t[i].nbytes) crc = crc32(crc, t[i].data, (uInt)t[i].nbytes);
    uint8_t lh[30] = {0};
    nnrt_wr_le32(lh, 0x04034b50u);
    nnrt_wr_le16(lh + 4, 20);
    nnrt_wr_le16(lh + 12, 0x21); /* 1980-01-01 */
    nnrt_wr_le32(lh + 14, (uint32_t)crc);
    nnrt_wr_le32(lh + 18, (uint32_t)size);
    nnrt_wr_le32(lh + 22, (uint32_t)size);
    nnrt_wr_le16(lh + 26, (uint32_t)nl);
    uint8_t *c = cd + cdn;
    memset(c, 0, 46);
    nnrt_wr_le32(c, 0x02014b50u);
    nnrt_wr_le16(c + 4, 20);
    memcpy(c + 6, lh + 4, 26); /* version needed .. name length */
    nnrt_wr_le32(c + 42, (uint32_t)off);
    memcpy(c + 46, name, (size_t)nl);
    cdn += 46 + (size_t)nl;
    nnrt_atomic_write(&a, lh, 30);
    nnrt_atomic_write(&a, name, (size_t)nl);
    nnrt_atomic_write(&a, h, hl);
    nnrt_atomic_write(&a, t[i].data, t[i].nbytes);
    off += 30 + (uint64_t)nl + size;
  }
  if (!rc && (off > 0xffffffffu || n > 0xffff))
    rc = nnrt_err_set(e, NNRT_E_UNSUPPORTED, "%s: archive too large", path);
  if (rc) {
    free(cd);
    nnrt_atomic_abort(&a);
    return rc;
  }
  uint8_t end[22] = {0};
  nnrt_wr_le32(end, 0x06054b50u);
  nnrt_wr_le16(end + 8, (uint32_t)n);
  nnrt_wr_le16(end + 10, (uint32_t)n);
  nnrt_wr_le32(end + 12, (uint32_t)cdn);
  nnrt_wr_le32(end + 16, (uint32_t)off);
  nnrt_atomic_write(&a, cd, cdn);
  nnrt_atomic_write(&a, end, 22);
  free(cd);
  return nnrt_atomic_commit(&a, e);
}

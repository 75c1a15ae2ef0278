/*
** text.c: text corpora for character-level language models: a whole file
** as bytes, its vocabulary (the sorted set of distinct bytes), the file
** encoded as int32 vocabulary indices, and the next-token pairs of block
** length T: x = ids[k .. k+T), y = ids[k+1 .. k+T+1).
*/
#include "internal.h"

#include <stdlib.h>

int nnrt_text_read(const char *path, NnrtText *out, NnrtErr *e) {
  memset(out, 0, sizeof *out);
  size_t n;
  int rc = nnrt_read_file(path, &out->bytes, &n, e);
  if (rc) return rc;
  out->n = (int64_t)n;
  bool seen[256] = {0};
  for (size_t i = 0; i < n; i++) seen[out->bytes[i]] = true;
  for (int c = 0; c < 256; c++) {
    out->index[c] = -1;
    if (seen[c]) {
      out->index[c] = (int16_t)out->vocab_size;
      out->vocab[out->vocab_size++] = (uint8_t)c;
    }
  }
  out->ids = malloc((n ? n : 1) * sizeof *out->ids);
  if (!out->ids) {
    nnrt_text_free(out);
    return nnrt_err_set(e, NNRT_E_NOMEM, "%s: out of memory", path);
  }
  for (size_t i = 0; i < n; i++) out->ids[i] = out->index[out->bytes[i]];
  return 0;
}

int nnrt_text_encode(const NnrtText *t, const uint8_t *s, int64_t n,
                     int32_t *out, NnrtErr *e) {
  for (int64_t i = 0; i < n; i++) {
    if (t->index[s[i]] < 0)
      return nnrt_err_set(e, NNRT_E_ARG, "byte %lld (0x%02x '%c') is not in "
                          "the vocabulary of %d characters", (long long)i,
                          s[i], s[i] >= 32 && s[i] < 127 ? s[i] : '?',
                          t->vocab_size);
    out[i] = t->index[s[i]];
  }
  return 0;
}

void nnrt_text_decode(const NnrtText *t, const int32_t *ids, int64_t n,
                      uint8_t *out) {
  for (int64_t i = 0; i < n; i++)
    out[i] = ids[i] >= 0 && ids[i] < t->vocab_size ? t->vocab[ids[i]] : '?';
}

int64_t nnrt_text_npairs(const NnrtText *t, int64_t T) {
  return T > 0 && t->n > T ? t->n - T : 0;
}

void nnrt_text_pair(const NnrtText *t, int64_t k, int64_t T, int32_t *x,
                    int32_t *y) {
  memcpy(x, t->ids + k, (size_t)T * sizeof *x);
  memcpy(y, t->ids + k + 1, (size_t)T * sizeof *y);
}

void nnrt_text_free(NnrtText *t) {
  if (!t) return;
  free(t->bytes);
  free(t->ids);
  memset(t, 0, sizeof *t);
}

/*
** This file contains the diagnostics engine: errors, warnings and notes are
** collected (never exit) and printed chibicc-style, with the source line and
** a caret plus tildes under the located text:
**
**   mlp.nn:14:17: error: matmul shape mismatch
**      14 |   h = matmul(x, w1)
**         |                 ^~
**
** The line number is right-aligned in 5 columns.  The marker line copies the
** tabs of the source prefix so that the caret lines up in any tab setting.
** After max_errors errors one "too many errors" line is printed and every
** later error, note and warning is dropped (nerrors then stays at
** max_errors + 1, which callers may test to stop early).
*/
#include "diag.h"

#include <stdarg.h>
#include <string.h>

typedef enum Severity { SEV_ERROR, SEV_WARNING, SEV_NOTE } Severity;

static const char *const sev_names[] = {"error", "warning", "note"};

Diag *diag_new(FILE *out) {
  Arena *a = arena_new();
  Diag *d = ARENA_NEW(a, Diag);
  d->arena = a;
  d->out = out ? out : stderr;
  d->max_errors = 20;
  return d;
}

void diag_free(Diag *d) {
  if (d) arena_free(d->arena);
}

const DiagFile *diag_find_file(const Diag *d, const char *name) {
  if (!name) return NULL;
  for (int i = 0; i < d->nfiles; i++)
    if (d->files[i].name == name) return &d->files[i];
  for (int i = 0; i < d->nfiles; i++)
    if (strcmp(d->files[i].name, name) == 0) return &d->files[i];
  return NULL;
}

const char *diag_add_file(Diag *d, const char *name, const char *text,
                          size_t len) {
  NNC_ASSERT(name && (text || len == 0));
  DiagFile *f = (DiagFile *)diag_find_file(d, name);
  if (!f) {
    if (d->nfiles == d->capfiles) {
      int cap = d->capfiles ? 2 * d->capfiles : 8;
      DiagFile *v = ARENA_ARRAY(d->arena, DiagFile, cap);
      if (d->nfiles) memcpy(v, d->files, sizeof *v * (size_t)d->nfiles);
      d->files = v;
      d->capfiles = cap;
    }
    f = &d->files[d->nfiles++];
    f->name = arena_strdup(d->arena, name);
  }
  char *copy = arena_alloc(d->arena, len + 1, 1); /* NUL-terminated too */
  if (len) memcpy(copy, text, len);
  copy[len] = '\0';
  f->text = copy;
  f->len = len;
  return f->name;
}

/* Fill line and col from offset when the producer of loc only knew the
** byte offset. */
static void fill_line_col(const DiagFile *f, SrcLoc *loc) {
  uint32_t line = 1, col = 1;
  for (size_t i = 0; i < loc->offset && i < f->len; i++) {
    if (f->text[i] == '\n') {
      line++;
      col = 1;
    } else {
      col++;
    }
  }
  loc->line = line;
  loc->col = col;
}

/* Start and length (without '\n' or "\r\n") of line number `line` of f, or
** false when the file has fewer lines. */
static bool find_line(const DiagFile *f, uint32_t line, size_t *start,
                      size_t *len) {
  size_t i = 0;
  for (uint32_t l = 1; l < line; l++) {
    const char *nl = memchr(f->text + i, '\n', f->len - i);
    if (!nl) return false;
    i = (size_t)(nl - f->text) + 1;
  }
  if (i >= f->len && line > 1 && (i > f->len || f->text[i - 1] == '\n'))
    return false; /* the empty "line" after a final newline */
  const char *nl = memchr(f->text + i, '\n', f->len - i);
  size_t end = nl ? (size_t)(nl - f->text) : f->len;
  if (end > i && f->text[end - 1] == '\r') end--;
  *start = i;
  *len = end - i;
  return true;
}

static bool utf8_cont(char c) { return ((unsigned char)c & 0xC0) == 0x80; }

/*   14 |   h = matmul(x, w1)
**      |                 ^~
** Columns are bytes; the marker counts characters (UTF-8 continuation
** bytes take no room) so that it lines up under multi-byte text too. */
static void print_snippet(FILE *out, const DiagFile *f, SrcLoc loc) {
  size_t start, n;
  if (!find_line(f, loc.line, &start, &n)) return;
  const char *s = f->text + start;
  fprintf(out, "%5u | ", loc.line);
  fwrite(s, 1, n, out);
  fputs("\n      | ", out);
  size_t col = loc.col ? loc.col - 1 : 0;
  if (col > n) col = n;
  for (size_t i = 0; i < col; i++)
    if (!utf8_cont(s[i])) fputc(s[i] == '\t' ? '\t' : ' ', out);
  fputc('^', out);
  size_t end = col + (loc.len ? loc.len : 1);
  if (end > n) end = n;
  bool first = true;
  for (size_t i = col; i < end; i++) {
    if (utf8_cont(s[i])) continue;
    if (!first) fputc('~', out);
    first = false;
  }
  fputc('\n', out);
}

static void report(Diag *d, Severity sev, SrcLoc loc, const char *fmt,
                   va_list ap) {
  bool capped = d->max_errors > 0;
  if (capped && d->nerrors > d->max_errors) return; /* stopped */
  if (sev == SEV_ERROR) {
    if (capped && d->nerrors == d->max_errors) {
      fputs("nnc: too many errors; stopping\n", d->out);
      d->nerrors++;
      return;
    }
    d->nerrors++;
  }
  if (!loc.file) {
    fprintf(d->out, "nnc: %s: ", sev_names[sev]);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    return;
  }
  const DiagFile *f = diag_find_file(d, loc.file);
  if (f && loc.line == 0) fill_line_col(f, &loc);
  if (loc.line)
    fprintf(d->out, "%s:%u:%u: %s: ", loc.file, loc.line, loc.col ? loc.col : 1,
            sev_names[sev]);
  else
    fprintf(d->out, "%s: %s: ", loc.file, sev_names[sev]);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  if (f && loc.line) print_snippet(d->out, f, loc);
}

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(d, SEV_ERROR, loc, fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(d, SEV_NOTE, loc, fmt, ap);
  va_end(ap);
}

void diag_warning(Diag *d, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report(d, SEV_WARNING, loc, fmt, ap);
  va_end(ap);
}

SrcLoc srcloc_span(SrcLoc a, SrcLoc b) {
  if (!a.file) return b;
  if (!b.file) return a;
  uint32_t end = b.offset + b.len;
  if (end < a.offset + a.len) end = a.offset + a.len;
  if (b.offset < a.offset) return srcloc_span(b, a);
  a.len = end - a.offset;
  return a;
}

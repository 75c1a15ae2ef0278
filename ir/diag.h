/*
** This file contains the diagnostics engine: errors and notes are collected
** (never exit), printed chibicc-style with the source line, a caret and
** tildes under the located text:
**
**   examples/mlp.nn:14:17: error: matmul shape mismatch: f32[B=128,784] x f32[512,256]
**      14 |   h = matmul(x, w1)
**         |                 ^~
**   examples/mlp.nn:3:5: note: 'w1' declared here as f32[512,256]
**
** It lives in ir/ (the hub) because the frontend and the passes both report
** through it.  Source texts are registered so that carets can be drawn.
*/
#ifndef NNC_DIAG_H
#define NNC_DIAG_H

#include <stdbool.h>
#include <stdio.h>

#include "arena.h"
#include "srcloc.h"

typedef struct DiagFile {
  const char *name;
  const char *text;
  size_t len;
} DiagFile;

typedef struct Diag {
  Arena *arena;     /* owns registered texts and formatted messages */
  FILE *out;        /* where messages go (stderr by default) */
  int nerrors;
  int max_errors;   /* stop collecting after this many (default 20) */
  DiagFile *files;  /* registered sources */
  int nfiles, capfiles;
  bool color;       /* never set in tests */
} Diag;

Diag *diag_new(FILE *out);
void diag_free(Diag *d);
/* Register a source text (the Diag keeps its own copy) under name; returns
** the interned copy of name to put in SrcLoc.file. */
const char *diag_add_file(Diag *d, const char *name, const char *text,
                          size_t len);
const DiagFile *diag_find_file(const Diag *d, const char *name);

/* Report at loc (a zero loc prints "nnc: error: ..." without position).
** Errors count towards nerrors; notes attach to the preceding error. */
void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A location spanning from the start of a to the end of b (same file). */
SrcLoc srcloc_span(SrcLoc a, SrcLoc b);

#endif

/*
** This file contains SrcLoc, the source position every AST node and every IR
** node carries, so that any diagnostic and every dump can point back at the
** user's .nn text.  A zero SrcLoc (file == NULL) means "no location".
*/
#ifndef NNC_SRCLOC_H
#define NNC_SRCLOC_H

#include <stdint.h>

typedef struct SrcLoc {
  const char *file; /* file name as given on the command line; NULL: none */
  uint32_t line;    /* 1-based */
  uint32_t col;     /* 1-based, in bytes */
  uint32_t offset;  /* byte offset of the first character in the file */
  uint32_t len;     /* length in bytes of the located text (>= 1 when set) */
} SrcLoc;

#endif

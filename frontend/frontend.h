/*
** This file contains the entry point of the frontend: read a .nn file and
** its imports, check it, and lower the model into a tensor IR module.
** It is the only interface the driver uses; ast.h stays private to
** frontend/.
*/
#ifndef NNC_FRONTEND_H
#define NNC_FRONTEND_H

#include <stdbool.h>
#include <stdio.h>

#include "../ir/diag.h"
#include "../ir/ir.h"

typedef struct FrontendOpts {
  const char **incdirs;  /* searched for imports after the importing file's
                            folder, in order; the driver appends the std/
                            folders (next to the binary, then the source
                            tree) */
  int nincdirs;
  const char **defines;  /* "NAME=VALUE" from -D: override consts and bind
                            dimension variables */
  int ndefines;
  const char *model;     /* model to lower; NULL: the trained one, else the
                            last model of the file */
  FILE *ast_out;         /* when non-NULL, dump the AST here (--emit=ast) */
} FrontendOpts;

/* Parse, check and lower path.  Returns the module, or NULL when any error
** was reported to d (d->nerrors > 0). */
IrModule *frontend_compile(Diag *d, const char *path, const FrontendOpts *o);

#endif

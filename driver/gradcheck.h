/*
** This file contains the interface of `nnc gradcheck`: the gradients that
** the autodiff pass builds (@loss_grad, run in the f64 interpreter)
** against central finite differences of @loss, parameter by parameter.
*/
#ifndef NNC_GRADCHECK_H
#define NNC_GRADCHECK_H

#include <stdint.h>

#include "../ir/diag.h"
#include "../ir/ir.h"

/* Settings; 0 takes the default given beside each. */
typedef struct GcOpts {
  double eps, tol;   /* 1e-6, 1e-5 */
  uint64_t seed;     /* 1 */
  int samples;       /* elements checked per parameter: 20 */
} GcOpts;

/* Runs the check on m (autodiff is run on it first) and prints one line
** per parameter and a summary to stdout.  Returns the exit status: 0 when
** every parameter passes, 1 when one fails or the model cannot be checked
** (no @loss; errors go to d or stderr, naming input). */
int nnc_gradcheck(Diag *d, const char *input, const GcOpts *opts, IrModule *m);

#endif

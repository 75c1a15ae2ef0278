/*
** This file contains the queries over the memory plan that the memplan
** pass (passes/memplan.c) records in the IR: the arena size of a
** function, and a checker that no two buffers live at the same time
** overlap.  The backend, the driver (`nnc build -v`) and the tests read
** the plan through these; the pass itself is pass_memplan (pass.h).
**
** The plan: every result of a node gets the attribute
**   mem_offset = [OFF0, OFF1, ...]     (one entry per result)
** the byte offset of the result's buffer in the function's arena (a
** multiple of MEMPLAN_ALIGN), or -1 for a result that is not placed in
** the arena (a value the function returns: it is written to the caller's
** output buffer).  A buffer takes numel * dtype size bytes rounded up to
** MEMPLAN_ALIGN, with bounded dimension symbols at their bound.
*/
#ifndef NNC_MEMPLAN_H
#define NNC_MEMPLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "../ir/arena.h"
#include "../ir/ir.h"

#define MEMPLAN_ALIGN 64
#define MEMPLAN_ATTR "mem_offset"

/* Bytes a value of type t takes in the arena (rounded up to the
** alignment). */
int64_t memplan_value_bytes(const IrType *t);

/* The arena bytes function f needs under its recorded plan: the maximum of
** offset + bytes over its placed results, nested bodies included; 0 when
** nothing is placed, -1 when some node has no plan (memplan did not run
** after the last change). */
int64_t memplan_func_bytes(const IrFunc *f);

/* The arena bytes f would need under a fresh plan, computed without
** recording it (what `nnc build -v` prints when memplan did not run). */
int64_t memplan_plan_bytes(const IrFunc *f, Arena *scratch);

/* The maximum of memplan_func_bytes over m's functions (-1 as above). */
int64_t memplan_module_bytes(const IrModule *m);

/* The sum of the bytes of m's parameters and states (unrounded). */
int64_t memplan_param_bytes(const IrModule *m);

/* Check f's recorded plan against a fresh liveness analysis: offsets are
** aligned, and no two results whose live ranges meet share a byte.
** Returns true when sound; otherwise false with *err (in scratch) naming
** the two values by their node numbers. */
bool memplan_check(const IrModule *m, const IrFunc *f, Arena *scratch,
                   const char **err);

#endif

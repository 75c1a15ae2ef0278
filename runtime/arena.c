/*
** arena.c: the one aligned allocation of a model instance.  The backend's
** memory plan places every buffer at a fixed offset in it; the size is
** known at compile time (NnrtModel.arena_bytes).
*/
#include "internal.h"

#include <stdlib.h>

void *nnrt_arena_new(size_t bytes) {
  if (bytes > SIZE_MAX - 63) return NULL;
  size_t n = (bytes + 63) & ~(size_t)63;
  if (!n) n = 64;
  void *p = aligned_alloc(64, n);
  if (p) memset(p, 0, n);
  return p;
}

void nnrt_arena_free(void *arena) { free(arena); }

/*
** This file contains the arena allocator and the small utilities every layer
** of nnc shares: growable vectors, string interning and formatted strings.
** ir/ is the hub of the compiler (QBE util.c): frontend/, passes/ and
** backend/ all include this header.  malloc appears only in arena.c.
*/
#ifndef NNC_ARENA_H
#define NNC_ARENA_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ArenaChunk ArenaChunk;

/* An arena hands out memory that is released all at once by arena_reset
** or arena_free.  There is no per-object free. */
typedef struct Arena {
  ArenaChunk *head;
  size_t total; /* bytes handed out since the last reset */
} Arena;

Arena *arena_new(void);
void arena_free(Arena *a);
void arena_reset(Arena *a);
/* Uninitialised memory of n bytes aligned to align (a power of two). */
void *arena_alloc(Arena *a, size_t n, size_t align);
/* Zeroed memory of n bytes aligned to align. */
void *arena_zalloc(Arena *a, size_t n, size_t align);
/* A copy of the n bytes at p. */
void *arena_memdup(Arena *a, const void *p, size_t n);
/* A NUL-terminated copy of the first n bytes of s. */
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_strdup(Arena *a, const char *s);
/* printf into the arena. */
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(Arena *a, const char *fmt, va_list ap);

#define ARENA_NEW(a, T) ((T *)arena_zalloc((a), sizeof(T), _Alignof(T)))
#define ARENA_ARRAY(a, T, n) \
  ((T *)arena_zalloc((a), sizeof(T) * (size_t)(n), _Alignof(T)))

/* A growable array of pointers living in an arena: vec_push copies to a
** larger block when full (the old block is simply abandoned). */
typedef struct Vec {
  void **data;
  int len, cap;
} Vec;

void vec_push(Arena *a, Vec *v, void *p);

/* String interning: equal strings give the same pointer, so names can be
** compared with ==.  The table lives in the given arena. */
typedef struct StrTab StrTab;
StrTab *strtab_new(Arena *a);
const char *strtab_intern(StrTab *t, const char *s, size_t n);
const char *strtab_cstr(StrTab *t, const char *s);

/* Always-on assertion for compiler bugs (never for user errors). */
#define NNC_ASSERT(c)                                                  \
  do {                                                                 \
    if (!(c)) nnc_assert_fail(__FILE__, __LINE__, #c);                 \
  } while (0)
#define nnc_unreachable() nnc_assert_fail(__FILE__, __LINE__, "unreachable")
_Noreturn void nnc_assert_fail(const char *file, int line, const char *what);

#endif

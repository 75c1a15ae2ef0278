/*
** This file contains the arena allocator, growable pointer vectors, string
** interning and the always-on assertion handler.  It is the only file of the
** compiler that calls malloc.
*/
#include "arena.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ArenaChunk {
  ArenaChunk *next;
  size_t size, used;
  _Alignas(max_align_t) unsigned char data[];
};

enum { CHUNK_MIN = 64 * 1024 };

Arena *arena_new(void) {
  Arena *a = calloc(1, sizeof *a);
  if (!a) nnc_assert_fail(__FILE__, __LINE__, "out of memory");
  return a;
}

void arena_reset(Arena *a) {
  ArenaChunk *c = a->head;
  while (c) {
    ArenaChunk *next = c->next;
    free(c);
    c = next;
  }
  a->head = NULL;
  a->total = 0;
}

void arena_free(Arena *a) {
  if (!a) return;
  arena_reset(a);
  free(a);
}

void *arena_alloc(Arena *a, size_t n, size_t align) {
  NNC_ASSERT(align && (align & (align - 1)) == 0);
  ArenaChunk *c = a->head;
  if (c) {
    size_t off = (c->used + align - 1) & ~(align - 1);
    if (off + n <= c->size) {
      c->used = off + n;
      a->total += n;
      return c->data + off;
    }
  }
  size_t size = n + align > CHUNK_MIN ? n + align : CHUNK_MIN;
  c = malloc(sizeof *c + size);
  if (!c) nnc_assert_fail(__FILE__, __LINE__, "out of memory");
  c->size = size;
  c->next = a->head;
  a->head = c;
  size_t off = ((uintptr_t)c->data + align - 1) / align * align -
               (uintptr_t)c->data;
  c->used = off + n;
  a->total += n;
  return c->data + off;
}

void *arena_zalloc(Arena *a, size_t n, size_t align) {
  void *p = arena_alloc(a, n ? n : 1, align);
  memset(p, 0, n);
  return p;
}

void *arena_memdup(Arena *a, const void *p, size_t n) {
  void *q = arena_alloc(a, n ? n : 1, _Alignof(max_align_t));
  if (n) memcpy(q, p, n);
  return q;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *q = arena_alloc(a, n + 1, 1);
  memcpy(q, s, n);
  q[n] = 0;
  return q;
}

char *arena_strdup(Arena *a, const char *s) {
  return arena_strndup(a, s, strlen(s));
}

char *arena_vprintf(Arena *a, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  NNC_ASSERT(n >= 0);
  char *s = arena_alloc(a, (size_t)n + 1, 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = arena_vprintf(a, fmt, ap);
  va_end(ap);
  return s;
}

void vec_push(Arena *a, Vec *v, void *p) {
  if (v->len == v->cap) {
    int cap = v->cap ? v->cap * 2 : 8;
    void **data = arena_alloc(a, sizeof(void *) * (size_t)cap, _Alignof(void *));
    if (v->len) memcpy(data, v->data, sizeof(void *) * (size_t)v->len);
    v->data = data;
    v->cap = cap;
  }
  v->data[v->len++] = p;
}

/* ---------------------------------------------------------- interning */

typedef struct StrEntry {
  const char *s;
  size_t n;
  uint64_t hash;
} StrEntry;

struct StrTab {
  Arena *arena;
  StrEntry *slots;
  size_t cap, used;
};

static uint64_t fnv1a(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
  return h;
}

StrTab *strtab_new(Arena *a) {
  StrTab *t = ARENA_NEW(a, StrTab);
  t->arena = a;
  t->cap = 256;
  t->slots = ARENA_ARRAY(a, StrEntry, t->cap);
  return t;
}

static void strtab_grow(StrTab *t) {
  size_t cap = t->cap * 2;
  StrEntry *slots = ARENA_ARRAY(t->arena, StrEntry, cap);
  for (size_t i = 0; i < t->cap; i++) {
    if (!t->slots[i].s) continue;
    size_t j = t->slots[i].hash & (cap - 1);
    while (slots[j].s) j = (j + 1) & (cap - 1);
    slots[j] = t->slots[i];
  }
  t->slots = slots;
  t->cap = cap;
}

const char *strtab_intern(StrTab *t, const char *s, size_t n) {
  if (2 * (t->used + 1) > t->cap) strtab_grow(t);
  uint64_t h = fnv1a(s, n);
  size_t j = h & (t->cap - 1);
  for (; t->slots[j].s; j = (j + 1) & (t->cap - 1)) {
    StrEntry *e = &t->slots[j];
    if (e->hash == h && e->n == n && memcmp(e->s, s, n) == 0) return e->s;
  }
  t->slots[j] = (StrEntry){arena_strndup(t->arena, s, n), n, h};
  t->used++;
  return t->slots[j].s;
}

const char *strtab_cstr(StrTab *t, const char *s) {
  return strtab_intern(t, s, strlen(s));
}

_Noreturn void nnc_assert_fail(const char *file, int line, const char *what) {
  fflush(stdout);
  fprintf(stderr, "nnc: internal error: %s:%d: assertion failed: %s\n", file,
          line, what);
  abort();
}

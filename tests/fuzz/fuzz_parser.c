/*
** This file contains the libFuzzer target of the frontend: any byte string
** is registered with a Diag, lexed, parsed and dumped, then everything is
** freed.  Crashes, sanitizer reports, leaks and hangs are bugs; syntax
** errors are not.
**
**   CC=clang-19 cmake -S . -B build-fuzz -DNNC_FUZZ=ON
**   cmake --build build-fuzz --target fuzz_parser
**   ./build-fuzz/tests/fuzz/fuzz_parser -max_len=4096 tests/fuzz/corpus
*/
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ast.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every node lies inside the text and inside its parent. */
static void check_node(const AstNode *n, SrcLoc parent, size_t size) {
  NNC_ASSERT(n->loc.file == parent.file && n->loc.len >= 1);
  NNC_ASSERT(n->loc.offset + n->loc.len <= size);
  NNC_ASSERT(n->loc.offset >= parent.offset &&
             n->loc.offset + n->loc.len <= parent.offset + parent.len);
  const AstNode *kids[] = {n->a, n->b, n->type, n->body};
  for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++)
    if (kids[i]) check_node(kids[i], n->loc, size);
  for (int i = 0; i < n->list.n; i++) check_node(n->list.v[i], n->loc, size);
  for (int i = 0; i < n->list2.n; i++) check_node(n->list2.v[i], n->loc, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FILE *null = fopen("/dev/null", "w");
  if (!null) return 0;
  Diag *d = diag_new(null);
  const char *file = diag_add_file(d, "fuzz.nn", (const char *)data, size);
  const DiagFile *f = diag_find_file(d, file);
  AstProgram *p = ast_parse(d, file, f->text, f->len);
  ast_dump(null, p);
  SrcLoc all = {file, 1, 1, 0, (uint32_t)size};
  for (int i = 0; i < p->decls.n; i++) check_node(p->decls.v[i], all, size);
  ast_program_free(p);
  diag_free(d);
  fclose(null);
  return 0;
}

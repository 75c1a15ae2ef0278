/*
** This file contains the unit tests of the diagnostics engine (ir/diag.c):
** the exact rendering of errors, notes and warnings (header line, source
** line, caret and tildes, tabs, clipping at the end of a line, locations
** past the end of a line), located and unlocated messages, unregistered
** files, the max_errors cap, and srcloc_span.
*/
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../ir/arena.h"
#include "../../ir/diag.h"

static int arena_setup(void **state) {
  *state = arena_new();
  return 0;
}

static int arena_teardown(void **state) {
  arena_free(*state);
  return 0;
}

/* A Diag writing to a temporary file, read back by output(). */
typedef struct Fixture {
  Arena *a;
  FILE *f;
  Diag *d;
} Fixture;

static Fixture open_diag(void **state) {
  Fixture x = {*state, tmpfile(), NULL};
  assert_non_null(x.f);
  x.d = diag_new(x.f);
  return x;
}

/* Everything printed so far; closes the fixture. */
static char *output(Fixture *x) {
  long n = ftell(x->f);
  assert_true(n >= 0);
  rewind(x->f);
  char *s = arena_alloc(x->a, (size_t)n + 1, 1);
  assert_int_equal(fread(s, 1, (size_t)n, x->f), (size_t)n);
  s[n] = '\0';
  fclose(x->f);
  diag_free(x->d);
  return s;
}

static SrcLoc at(const char *file, uint32_t line, uint32_t col,
                 uint32_t offset, uint32_t len) {
  return (SrcLoc){file, line, col, offset, len};
}

static const char mlp[] =
    "model m {\n"
    "  param w1: f32[512,256]\n"
    "  h = matmul(x, w1)\n"
    "}\n";

/* ------------------------------------------------------------- rendering */

static void test_diag_error_caret_and_tildes(void **state) {
  Fixture x = open_diag(state);
  const char *f = diag_add_file(x.d, "mlp.nn", mlp, strlen(mlp));
  /* `w1` on line 3: offset 10 + 25 + 16 */
  diag_error(x.d, at(f, 3, 17, 51, 2), "matmul shape mismatch: %s", "f32");
  diag_note(x.d, at(f, 2, 9, 18, 2), "'w1' declared here");
  assert_int_equal(x.d->nerrors, 1);
  assert_string_equal(output(&x),
                      "mlp.nn:3:17: error: matmul shape mismatch: f32\n"
                      "    3 |   h = matmul(x, w1)\n"
                      "      |                 ^~\n"
                      "mlp.nn:2:9: note: 'w1' declared here\n"
                      "    2 |   param w1: f32[512,256]\n"
                      "      |         ^~\n");
}

static void test_diag_warning_single_caret(void **state) {
  Fixture x = open_diag(state);
  const char *f = diag_add_file(x.d, "a.nn", mlp, strlen(mlp));
  diag_warning(x.d, at(f, 1, 1, 0, 1), "unused model");
  assert_int_equal(x.d->nerrors, 0);
  assert_string_equal(output(&x), "a.nn:1:1: warning: unused model\n"
                                  "    1 | model m {\n"
                                  "      | ^\n");
}

static void test_diag_tabs_kept_in_marker(void **state) {
  Fixture x = open_diag(state);
  const char text[] = "\tlet\tx = y\n";
  const char *f = diag_add_file(x.d, "t.nn", text, strlen(text));
  diag_error(x.d, at(f, 1, 6, 5, 1), "bad");
  assert_string_equal(output(&x), "t.nn:1:6: error: bad\n"
                                  "    1 | \tlet\tx = y\n"
                                  "      | \t   \t^\n");
}

static void test_diag_tildes_clipped_at_line_end(void **state) {
  Fixture x = open_diag(state);
  const char text[] = "let x = foo(\n  a)\n";
  const char *f = diag_add_file(x.d, "c.nn", text, strlen(text));
  diag_error(x.d, at(f, 1, 9, 8, 9), "call spans lines");
  assert_string_equal(output(&x), "c.nn:1:9: error: call spans lines\n"
                                  "    1 | let x = foo(\n"
                                  "      |         ^~~~\n");
}

static void test_diag_past_end_of_line(void **state) {
  Fixture x = open_diag(state);
  const char text[] = "let x = (1 +\n";
  const char *f = diag_add_file(x.d, "e.nn", text, strlen(text));
  /* the '\n' itself (an "end of line" token) */
  diag_error(x.d, at(f, 1, 13, 12, 1), "unexpected end of line");
  /* a column further out still puts the caret after the last character */
  diag_error(x.d, at(f, 1, 40, 12, 3), "far");
  assert_string_equal(output(&x), "e.nn:1:13: error: unexpected end of line\n"
                                  "    1 | let x = (1 +\n"
                                  "      |             ^\n"
                                  "e.nn:1:40: error: far\n"
                                  "    1 | let x = (1 +\n"
                                  "      |             ^\n");
}

static void test_diag_line_without_newline_and_crlf(void **state) {
  Fixture x = open_diag(state);
  const char text[] = "a\r\nbc d";
  const char *f = diag_add_file(x.d, "r.nn", text, strlen(text));
  diag_error(x.d, at(f, 1, 1, 0, 1), "one");
  diag_error(x.d, at(f, 2, 4, 6, 5), "two");
  assert_string_equal(output(&x), "r.nn:1:1: error: one\n"
                                  "    1 | a\n"
                                  "      | ^\n"
                                  "r.nn:2:4: error: two\n"
                                  "    2 | bc d\n"
                                  "      |    ^\n");
}

static void test_diag_line_number_alignment(void **state) {
  Fixture x = open_diag(state);
  char text[4096] = "";
  /* 123 lines: "x\n" each, error on the last */
  for (int i = 0; i < 123; i++) strcat(text, "x\n");
  const char *f = diag_add_file(x.d, "n.nn", text, strlen(text));
  diag_error(x.d, at(f, 123, 1, 244, 1), "here");
  assert_string_equal(output(&x), "n.nn:123:1: error: here\n"
                                  "  123 | x\n"
                                  "      | ^\n");
}

static void test_diag_utf8_marker(void **state) {
  Fixture x = open_diag(state);
  const char text[] = "# \xc3\xa9t\xc3\xa9 $\n";
  const char *f = diag_add_file(x.d, "u.nn", text, strlen(text));
  diag_error(x.d, at(f, 1, 3, 2, 5), "word");
  diag_error(x.d, at(f, 1, 9, 8, 1), "dollar");
  assert_string_equal(output(&x), "u.nn:1:3: error: word\n"
                                  "    1 | # \xc3\xa9t\xc3\xa9 $\n"
                                  "      |   ^~~\n"
                                  "u.nn:1:9: error: dollar\n"
                                  "    1 | # \xc3\xa9t\xc3\xa9 $\n"
                                  "      |       ^\n");
}

static void test_diag_empty_file(void **state) {
  Fixture x = open_diag(state);
  const char *f = diag_add_file(x.d, "z.nn", "", 0);
  diag_error(x.d, at(f, 1, 1, 0, 1), "unexpected end of file");
  assert_string_equal(output(&x), "z.nn:1:1: error: unexpected end of file\n"
                                  "    1 | \n"
                                  "      | ^\n");
}

/* ------------------------------------------------------- no location */

static void test_diag_zero_loc(void **state) {
  Fixture x = open_diag(state);
  diag_error(x.d, (SrcLoc){0}, "cannot open '%s'", "x.nn");
  diag_warning(x.d, (SrcLoc){0}, "w");
  diag_note(x.d, (SrcLoc){0}, "n");
  assert_int_equal(x.d->nerrors, 1);
  assert_string_equal(output(&x), "nnc: error: cannot open 'x.nn'\n"
                                  "nnc: warning: w\n"
                                  "nnc: note: n\n");
}

static void test_diag_unregistered_file(void **state) {
  Fixture x = open_diag(state);
  diag_error(x.d, at("other.nn", 4, 2, 30, 3), "no text");
  assert_string_equal(output(&x), "other.nn:4:2: error: no text\n");
}

static void test_diag_line_from_offset(void **state) {
  Fixture x = open_diag(state);
  const char *f = diag_add_file(x.d, "mlp.nn", mlp, strlen(mlp));
  diag_error(x.d, at(f, 0, 0, 51, 2), "from offset");
  assert_string_equal(output(&x), "mlp.nn:3:17: error: from offset\n"
                                  "    3 |   h = matmul(x, w1)\n"
                                  "      |                 ^~\n");
}

static void test_diag_line_past_end_of_file(void **state) {
  Fixture x = open_diag(state);
  const char *f = diag_add_file(x.d, "mlp.nn", mlp, strlen(mlp));
  diag_error(x.d, at(f, 9, 1, 900, 1), "beyond");
  assert_string_equal(output(&x), "mlp.nn:9:1: error: beyond\n");
}

/* ------------------------------------------------------------- files */

static void test_diag_add_and_find_files(void **state) {
  Fixture x = open_diag(state);
  char name[] = "a.nn";
  const char *f = diag_add_file(x.d, name, "x", 1);
  name[0] = 'b'; /* the Diag keeps its own copy of the name */
  assert_string_equal(f, "a.nn");
  for (int i = 0; i < 20; i++) {
    char n[16];
    snprintf(n, sizeof n, "f%d.nn", i);
    diag_add_file(x.d, n, n, strlen(n));
  }
  const DiagFile *df = diag_find_file(x.d, "a.nn");
  assert_non_null(df);
  assert_ptr_equal(df->name, f);
  assert_int_equal(df->len, 1);
  assert_string_equal(diag_find_file(x.d, "f13.nn")->text, "f13.nn");
  assert_null(diag_find_file(x.d, "b.nn"));
  assert_ptr_equal(diag_add_file(x.d, "a.nn", "yy", 2), f);
  assert_int_equal(diag_find_file(x.d, f)->len, 2);
  assert_int_equal(x.d->nfiles, 21);
  output(&x);
}

/* ------------------------------------------------------------- the cap */

static void test_diag_max_errors_cap(void **state) {
  Fixture x = open_diag(state);
  assert_int_equal(x.d->max_errors, 20);
  x.d->max_errors = 2;
  diag_error(x.d, (SrcLoc){0}, "e1");
  diag_note(x.d, (SrcLoc){0}, "n1");
  diag_error(x.d, (SrcLoc){0}, "e2");
  diag_error(x.d, (SrcLoc){0}, "e3");
  diag_note(x.d, (SrcLoc){0}, "n3");
  diag_warning(x.d, (SrcLoc){0}, "w3");
  diag_error(x.d, (SrcLoc){0}, "e4");
  assert_int_equal(x.d->nerrors, 3); /* max_errors + 1: stopped */
  assert_string_equal(output(&x), "nnc: error: e1\n"
                                  "nnc: note: n1\n"
                                  "nnc: error: e2\n"
                                  "nnc: too many errors; stopping\n");
}

static void test_diag_no_cap_when_zero(void **state) {
  Fixture x = open_diag(state);
  x.d->max_errors = 0;
  for (int i = 0; i < 30; i++) diag_error(x.d, (SrcLoc){0}, "e");
  assert_int_equal(x.d->nerrors, 30);
  assert_null(strstr(output(&x), "too many"));
}

/* ------------------------------------------------------------- spans */

static void test_diag_srcloc_span(void **state) {
  (void)state;
  SrcLoc a = at("f", 2, 3, 10, 2), b = at("f", 4, 1, 30, 5);
  SrcLoc s = srcloc_span(a, b);
  assert_string_equal(s.file, "f");
  assert_int_equal(s.line, 2);
  assert_int_equal(s.col, 3);
  assert_int_equal(s.offset, 10);
  assert_int_equal(s.len, 25);
  /* order does not matter; containment keeps the outer span */
  SrcLoc r = srcloc_span(b, a);
  assert_int_equal(r.offset, 10);
  assert_int_equal(r.len, 25);
  SrcLoc in = srcloc_span(s, at("f", 2, 5, 12, 1));
  assert_int_equal(in.offset, 10);
  assert_int_equal(in.len, 25);
  /* a zero location is the identity */
  assert_int_equal(srcloc_span((SrcLoc){0}, b).offset, 30);
  assert_int_equal(srcloc_span(a, (SrcLoc){0}).len, 2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, arena_setup, arena_teardown)
      T(test_diag_error_caret_and_tildes),
      T(test_diag_warning_single_caret),
      T(test_diag_tabs_kept_in_marker),
      T(test_diag_tildes_clipped_at_line_end),
      T(test_diag_past_end_of_line),
      T(test_diag_line_without_newline_and_crlf),
      T(test_diag_line_number_alignment),
      T(test_diag_utf8_marker),
      T(test_diag_empty_file),
      T(test_diag_zero_loc),
      T(test_diag_unregistered_file),
      T(test_diag_line_from_offset),
      T(test_diag_line_past_end_of_file),
      T(test_diag_add_and_find_files),
      T(test_diag_max_errors_cap),
      T(test_diag_no_cap_when_zero),
      T(test_diag_srcloc_span),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

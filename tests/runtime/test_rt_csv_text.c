/*
** test_rt_csv_text.c: CSV round trips (with and without a header row,
** blank lines, CRLF), bad fields reported at line:column, wrong field
** counts; text files (vocabulary, encoding, decoding, next-token pairs);
** and the CSV log of the progress helper.
*/
#include "rt_test.h"

static void test_csv_roundtrip(void **state) {
  Tmp *t = *state;
  float d[6] = {1, -2.5f, 3e-8f, 4, 1e30f, 0.1f};
  const char *names[3] = {"a", "b", "label"};
  const char *p = tpath(t, "x.csv");
  NnrtErr e = {0};
  assert_int_equal(nnrt_csv_write(p, d, 2, 3, names, &e), 0);
  char *raw = read_bytes(p, NULL);
  assert_string_equal(raw, "a,b,label\n1,-2.5,2.99999989e-08\n4,1.00000002e+30,"
                           "0.100000001\n");
  free(raw);
  NnrtCsv c;
  assert_int_equal(nnrt_csv_read(p, 1, &c, &e), 0);
  assert_int_equal(c.rows, 2);
  assert_int_equal(c.cols, 3);
  assert_string_equal(c.names[2], "label");
  assert_memory_equal(c.data, d, sizeof d);
  nnrt_csv_free(&c);
  /* no header, CRLF, blank lines, spaces around fields */
  write_bytes(p, "1, 2 ,3\r\n\r\n  \n4,5,6e1\r\n", 23);
  assert_int_equal(nnrt_csv_read(p, 0, &c, &e), 0);
  assert_int_equal(c.rows, 2);
  assert_null(c.names);
  float want[6] = {1, 2, 3, 4, 5, 60};
  assert_memory_equal(c.data, want, sizeof want);
  nnrt_csv_free(&c);
  /* many rows (the buffer grows) */
  float *big = malloc(1000 * 2 * sizeof *big);
  for (int i = 0; i < 2000; i++) big[i] = (float)i / 8;
  assert_int_equal(nnrt_csv_write(p, big, 1000, 2, NULL, &e), 0);
  assert_int_equal(nnrt_csv_read(p, 0, &c, &e), 0);
  assert_int_equal(c.rows, 1000);
  assert_memory_equal(c.data, big, 2000 * sizeof *big);
  nnrt_csv_free(&c);
  free(big);
}

static void expect_csv_bad(const char *path, int header, const char *text,
                           const char *want) {
  write_bytes(path, text, strlen(text));
  NnrtCsv c;
  NnrtErr e = {0};
  assert_int_equal(nnrt_csv_read(path, header, &c, &e), NNRT_E_FORMAT);
  assert_contains(e.msg, want);
  assert_null(c.data);
}

static void test_csv_errors(void **state) {
  Tmp *t = *state;
  const char *p = tpath(t, "bad.csv");
  char want[300];
  snprintf(want, sizeof want, "%s:3:6: bad number 'abc'", p);
  expect_csv_bad(p, 1, "x,y,z\n1,2,3\n4,5, abc\n", want);
  snprintf(want, sizeof want, "%s:2:1: bad number ''", p);
  expect_csv_bad(p, 0, "1,2\n,2\n", want);
  snprintf(want, sizeof want, "%s:2:3: bad number '1.5.2'", p);
  expect_csv_bad(p, 0, "1,2\n0,1.5.2\n", want);
  snprintf(want, sizeof want, "%s:3: 2 fields, expected 3", p);
  expect_csv_bad(p, 1, "a,b,c\n1,2,3\n1,2\n", want);
  expect_csv_bad(p, 0, "\n\n", "empty CSV file");
  snprintf(want, sizeof want, "%s:1:1: bad number '1e999'", p);
  expect_csv_bad(p, 0, "1e999\n", want);
}

static void test_text(void **state) {
  Tmp *t = *state;
  const char *p = tpath(t, "t.txt");
  write_bytes(p, "hello world\n", 12);
  NnrtText x;
  NnrtErr e = {0};
  assert_int_equal(nnrt_text_read(p, &x, &e), 0);
  assert_int_equal(x.n, 12);
  assert_int_equal(x.vocab_size, 9);
  assert_memory_equal(x.vocab, "\n dehlorw", 9); /* sorted distinct bytes */
  int32_t want[12] = {4, 3, 5, 5, 6, 1, 8, 6, 7, 5, 2, 0};
  assert_memory_equal(x.ids, want, sizeof want);
  assert_int_equal(x.index['z'], -1);
  int32_t ids[4];
  assert_int_equal(nnrt_text_encode(&x, (const uint8_t *)"hold", 4, ids, &e), 0);
  int32_t hold[4] = {4, 6, 5, 2};
  assert_memory_equal(ids, hold, sizeof hold);
  assert_int_equal(nnrt_text_encode(&x, (const uint8_t *)"hat", 3, ids, &e),
                   NNRT_E_ARG);
  assert_string_equal(e.msg, "byte 1 (0x61 'a') is not in the vocabulary of 9 "
                             "characters");
  uint8_t dec[5] = {0};
  int32_t back[4] = {8, 6, 7, 99};
  nnrt_text_decode(&x, back, 4, dec);
  assert_string_equal((char *)dec, "wor?");
  assert_int_equal(nnrt_text_npairs(&x, 4), 8);
  assert_int_equal(nnrt_text_npairs(&x, 12), 0);
  int32_t px[4], py[4];
  nnrt_text_pair(&x, 2, 4, px, py);
  int32_t wx[4] = {5, 5, 6, 1}, wy[4] = {5, 6, 1, 8};
  assert_memory_equal(px, wx, sizeof wx);
  assert_memory_equal(py, wy, sizeof wy);
  nnrt_text_pair(&x, 7, 4, px, py); /* the last pair ends at the last byte */
  assert_int_equal(py[3], 0);
  nnrt_text_free(&x);
  write_bytes(p, "", 0);
  assert_int_equal(nnrt_text_read(p, &x, &e), 0);
  assert_int_equal(x.vocab_size, 0);
  assert_int_equal(nnrt_text_npairs(&x, 1), 0);
  nnrt_text_free(&x);
  assert_int_equal(nnrt_text_read(tpath(t, "nope.txt"), &x, &e), NNRT_E_IO);
  assert_contains(e.msg, "nope.txt: No such file or directory");
}

static void test_progress_csv(void **state) {
  Tmp *t = *state;
  const char *p = tpath(t, "log.csv");
  FILE *out = tmpfile();
  NnrtProgress pr;
  NnrtErr e = {0};
  assert_int_equal(nnrt_progress_begin(&pr, out, 2, p, &e), 0);
  assert_null(pr.tty); /* a file is not a terminal: no live line */
  const char *names[2] = {"accuracy", "f1"};
  double m1[2] = {0.25, 0.125}, m2[2] = {0.5, 0.75};
  nnrt_progress_step(&pr, 1, 1, 0.5, names, m1, 2, 32);
  nnrt_progress_step(&pr, 1, 2, 0.25, names, m2, 2, 32);
  nnrt_progress_end(&pr);
  assert_int_equal(ftell(out), 0);
  fclose(out);
  char *raw = read_bytes(p, NULL);
  char *l2 = strchr(raw, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
  assert_int_equal(strncmp(raw, "epoch,step,loss,accuracy,f1,samples_per_s,"
                                "elapsed_s\n", 43), 0);
  assert_int_equal(strncmp(l2, "1,1,0.5,0.25,0.125,", 19), 0);
  assert_int_equal(strncmp(l3, "1,2,0.25,0.5,0.75,", 18), 0);
  int fields = 1;
  for (char *c = l3; *c && *c != '\n'; c++) fields += *c == ',';
  assert_int_equal(fields, 7);
  double rate, el;
  assert_int_equal(sscanf(strrchr(l3, ',') - 0, ",%lf", &el), 1);
  char *c5 = l3;
  for (int k = 0; k < 5; k++) c5 = strchr(c5, ',') + 1;
  assert_int_equal(sscanf(c5, "%lf", &rate), 1);
  assert_true(rate > 0 && el >= 0);
  free(raw);
  assert_int_equal(nnrt_progress_begin(&pr, NULL, 0, tpath(t, "no/dir.csv"), &e),
                   NNRT_E_IO);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_csv_roundtrip, tmp_setup,
                                      tmp_teardown),
      cmocka_unit_test_setup_teardown(test_csv_errors, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_text, tmp_setup, tmp_teardown),
      cmocka_unit_test_setup_teardown(test_progress_csv, tmp_setup,
                                      tmp_teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

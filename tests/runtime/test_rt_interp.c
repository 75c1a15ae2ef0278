/*
** test_rt_interp.c: the runtime's uniform stream equals the reference
** interpreter's rand stream element for element, so generated code that
** calls nnrt_uniform(nnrt_rng_key(S, s), T, i) matches ir/interp.c for
** seed S, rand seed s and step T.  (Links nnc_ir; the runtime itself
** never includes ir/.)
*/
#include "rt_test.h"

#include "../../ir/ir.h"

static void test_uniform_matches_interp(void **state) {
  const uint64_t seeds[] = {0, 1, 42, 0x123456789abcdefull, UINT64_MAX};
  const uint64_t streams[] = {0, 7, 0xffffffffull};
  const uint64_t steps[] = {0, 3, 1ull << 40};
  for (int a = 0; a < 5; a++)
    for (int b = 0; b < 3; b++)
      for (int c = 0; c < 3; c++) {
        uint64_t key = nnrt_rng_key(seeds[a], streams[b]);
        for (uint64_t i = 0; i < 37; i++) {
          double want = ir_interp_uniform(seeds[a], streams[b], steps[c], i);
          float got = nnrt_uniform(key, steps[c], i);
          assert_true((double)got == want);
        }
        uint64_t big = (1ull << 33) + 5; /* block index above 32 bits */
        assert_true((double)nnrt_uniform(key, steps[c], big) ==
                    ir_interp_uniform(seeds[a], streams[b], steps[c], big));
      }
}

static void test_philox_matches_interp(void **state) {
  uint32_t ctr[4] = {1, 2, 3, 4}, key[2] = {5, 6}, a[4], b[4];
  ir_philox4x32_10(ctr, key, a);
  nnrt_philox(6ull << 32 | 5, 4ull << 32 | 3, 2ull << 32 | 1, b);
  assert_memory_equal(a, b, sizeof a);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_uniform_matches_interp),
      cmocka_unit_test(test_philox_matches_interp),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}

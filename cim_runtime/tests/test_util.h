/* Helpers shared by the host test programs. */
#ifndef PG_TEST_UTIL_H
#define PG_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "interpreter.h"
#include "pico_gpt/runtime.h"

/* Whole file into a malloc'd buffer (NULL on failure). */
uint8_t *read_file(const char *path, size_t *size);
/* 16-byte aligned malloc'd copy (free() it). */
uint8_t *aligned_copy(const uint8_t *data, size_t size);
/* A model file in a 16-byte aligned malloc'd buffer (constants must be aligned); NULL on
 * failure. */
uint8_t *read_model(const char *path, size_t *size);
/* Compares an output tensor with expected bytes; prints the first
 * mismatches. Returns 0 if identical. */
int compare_tensor_bytes(const char *name, int invocation, int output, const pg_tensor *t,
                         const uint8_t *expect);
/* Init with arena_used - 16 must fail with ARENA_TOO_SMALL naming arena_used;
 * init with arena_used must succeed. Returns 0 if both hold. */
int check_exact_arena(const char *name, const uint8_t *model, size_t model_size, size_t arena_used,
                      uint8_t *arena);

/* Selects the SIMD path the PICOGPT_SIMD environment variable names (ctest sets it to force
 * each path this CPU runs; unset or empty: the best one) and prints the path in use. Returns
 * 0, or prints why not (an unknown name, a path this CPU lacks) and returns 1. */
int test_select_simd(void);

/* Checks counted by CHECK; test_summary() prints "N passed, N failed" and returns the exit
 * status, so ctest (and its output) sees every failed check, not just the first. */
extern int g_test_passed, g_test_failed;
#define CHECK(cond, ...)                            \
  do {                                              \
    if (cond) {                                     \
      ++g_test_passed;                              \
    } else {                                        \
      ++g_test_failed;                              \
      printf("FAIL %s:%d: ", __FILE__, __LINE__);   \
      printf(__VA_ARGS__);                          \
      printf("\n");                                 \
    }                                               \
  } while (0)
int test_summary(void);

#endif

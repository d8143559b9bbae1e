/* Helpers shared by the host test programs. */
#include "test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint8_t *read_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = n >= 0 ? (uint8_t *)malloc((size_t)n + 1) : NULL;
  if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf != NULL) *size = (size_t)n;
  return buf;
}

uint8_t *aligned_copy(const uint8_t *data, size_t size) {
  uint8_t *p = (uint8_t *)aligned_alloc(16, (size + 15) & ~(size_t)15);
  if (p != NULL) memcpy(p, data, size);
  return p;
}

uint8_t *read_model(const char *path, size_t *size) {
  uint8_t *raw = read_file(path, size);
  uint8_t *aligned = raw ? aligned_copy(raw, *size) : NULL;
  free(raw);
  return aligned;
}

int compare_tensor_bytes(const char *name, int invocation, int output, const pg_tensor *t,
                         const uint8_t *expect) {
  int mismatches = 0;
  const uint32_t es = t->type == PG_INT8 || t->type == PG_BOOL ? 1 : 4;
  for (uint32_t i = 0; i < t->bytes; i += es) {
    if (memcmp((const uint8_t *)t->data + i, expect + i, es) == 0) continue;
    if (mismatches < 5) {
      if (t->type == PG_INT8) {
        printf("FAIL %s: invocation %d output %d element %u: got %d, TFLM %d\n", name, invocation,
               output, i, ((const int8_t *)t->data)[i], (int8_t)expect[i]);
      } else {
        printf("FAIL %s: invocation %d output %d element %u differs\n", name, invocation, output,
               i / es);
      }
    }
    ++mismatches;
  }
  if (mismatches) {
    printf("FAIL %s: invocation %d output %d: %d of %u elements differ\n", name, invocation, output,
           mismatches, t->bytes / es);
  }
  return mismatches != 0;
}

int check_exact_arena(const char *name, const uint8_t *model, size_t model_size, size_t arena_used,
                      uint8_t *arena) {
  pg_interpreter it;
  char exact[64];
  snprintf(exact, sizeof exact, "needs %zu bytes", arena_used);
  picogpt_status st = pg_interpreter_init(&it, model, model_size, arena, arena_used - 16, NULL);
  /* When even the model's tables do not fit, the planner cannot run and the
   * message gives a lower bound ("needs at least K bytes", K <= the total). */
  const char *at_least = strstr(it.error.message, "needs at least ");
  const int bound_ok = at_least != NULL && strtoull(at_least + 15, NULL, 10) <= arena_used &&
                       strtoull(at_least + 15, NULL, 10) > arena_used / 2;
  /* The same numbers, machine-readable: exact need, or the lower bound of the message. */
  const int field_ok = it.arena_needed_exact ? it.arena_needed == arena_used
                                             : (at_least != NULL &&
                                                it.arena_needed == strtoull(at_least + 15, NULL, 10));
  if (st != PICOGPT_ERR_ARENA_TOO_SMALL || (strstr(it.error.message, exact) == NULL && !bound_ok) ||
      !field_ok) {
    printf("FAIL %s: arena of %zu bytes: expected ARENA_TOO_SMALL '%s', got %s '%s' "
           "(arena_needed %zu, exact %d)\n", name, arena_used - 16, exact,
           picogpt_status_name(st), it.error.message, it.arena_needed, (int)it.arena_needed_exact);
    return 1;
  }
  st = pg_interpreter_init(&it, model, model_size, arena, arena_used, NULL);
  if (st != PICOGPT_OK || it.arena_needed != arena_used) {
    printf("FAIL %s: the reported %zu bytes do not suffice: %s\n", name, arena_used,
           it.error.message);
    return 1;
  }
  return 0;
}

int g_test_passed, g_test_failed;

int test_select_simd(void) {
  const char *name = getenv("PICOGPT_SIMD");
  picogpt_simd path = picogpt_simd_best();
  if (name != NULL && name[0] != '\0') {
    if (picogpt_simd_parse(name, &path) != PICOGPT_OK) {
      printf("FAIL PICOGPT_SIMD=%s: not a SIMD path (auto, scalar, avx2, avx512vnni)\n", name);
      return 1;
    }
    if (picogpt_simd_select(path) != PICOGPT_OK) {
      printf("FAIL PICOGPT_SIMD=%s: this CPU or build cannot run it (best: %s)\n", name,
             picogpt_simd_name(picogpt_simd_best()));
      return 1;
    }
  }
  printf("SIMD path: %s\n", picogpt_simd_name(picogpt_simd_active()));
  return 0;
}

int test_summary(void) {
  printf("%d passed, %d failed\n", g_test_passed, g_test_failed);
  return g_test_failed == 0 ? 0 : 1;
}

/* Golden-vector test runner: every case in a .pgtv file (written by
 * gen_kernel_golden.py from the TFLite Micro interpreter) must produce
 * bit-identical outputs in cim_runtime. Also checks, per model, that the arena
 * size the planner reports is exact: one alignment unit less fails with
 * PICOGPT_ERR_ARENA_TOO_SMALL and a message naming the size, the exact size
 * works.
 *
 * Usage: test_golden FILE.pgtv [FILE.pgtv ...]
 * Prints one line per case and a final "N passed, M failed". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interpreter.h"
#include "pico_gpt/runtime.h"
#include "test_util.h"

#define ARENA_BYTES (4u * 1024u * 1024u)
static _Alignas(16) uint8_t g_arena[ARENA_BYTES];
static _Alignas(16) uint8_t g_arena_exact[ARENA_BYTES];

typedef struct reader {
  const uint8_t *p, *end;
  int ok;
} reader;

static uint32_t rd_u32(reader *r) {
  if (r->end - r->p < 4) {
    r->ok = 0;
    return 0;
  }
  uint32_t v = (uint32_t)r->p[0] | ((uint32_t)r->p[1] << 8) | ((uint32_t)r->p[2] << 16) |
               ((uint32_t)r->p[3] << 24);
  r->p += 4;
  return v;
}

static const uint8_t *rd_bytes(reader *r, uint32_t n) {
  if ((uint32_t)(r->end - r->p) < n) {
    r->ok = 0;
    return NULL;
  }
  const uint8_t *q = r->p;
  r->p += n;
  return q;
}

/* Runs one invocation; returns 0 when all outputs match. */
static int run_invocation(pg_interpreter *it, reader *r, const char *name, int inv) {
  const uint32_t n_in = rd_u32(r);
  for (uint32_t i = 0; i < n_in && r->ok; ++i) {
    const uint32_t idx = rd_u32(r), nbytes = rd_u32(r);
    const uint8_t *data = rd_bytes(r, nbytes);
    pg_tensor *t = pg_interpreter_input(it, (int)idx);
    if (!r->ok || t == NULL || t->bytes != nbytes) {
      printf("FAIL %s: input %u: size mismatch\n", name, idx);
      return 1;
    }
    memcpy(t->data, data, nbytes);
  }
  const picogpt_status st = pg_interpreter_invoke(it);
  if (st != PICOGPT_OK) {
    printf("FAIL %s: invoke %d: %s: %s\n", name, inv, picogpt_status_name(st), it->error.message);
    return 1;
  }
  int failed = 0;
  const uint32_t n_out = rd_u32(r);
  for (uint32_t o = 0; o < n_out && r->ok; ++o) {
    const uint32_t idx = rd_u32(r), nbytes = rd_u32(r);
    const uint8_t *expect = rd_bytes(r, nbytes);
    pg_tensor *t = pg_interpreter_output(it, (int)idx);
    if (!r->ok || t == NULL || t->bytes != nbytes) {
      printf("FAIL %s: output %u: size mismatch\n", name, idx);
      return 1;
    }
    failed |= compare_tensor_bytes(name, inv, (int)o, t, expect);
  }
  return failed;
}

int main(int argc, char **argv) {
  int passed = 0, failed = 0;
  if (test_select_simd() != 0) return 1;
  for (int a = 1; a < argc; ++a) {
    size_t size;
    uint8_t *file = read_file(argv[a], &size);
    if (file == NULL || size < 12 || memcmp(file, "PGTV", 4) != 0) {
      printf("FAIL cannot read golden file %s\n", argv[a]);
      ++failed;
      free(file);
      continue;
    }
    reader r = {file + 4, file + size, 1};
    (void)rd_u32(&r); /* version */
    const uint32_t n_cases = rd_u32(&r);
    for (uint32_t c = 0; c < n_cases && r.ok; ++c) {
      char name[128] = {0};
      const uint32_t name_len = rd_u32(&r);
      const uint8_t *name_bytes = rd_bytes(&r, name_len);
      if (!r.ok) break;
      memcpy(name, name_bytes, name_len < sizeof name - 1 ? name_len : sizeof name - 1);
      const uint32_t model_len = rd_u32(&r);
      const uint8_t *model_in_file = rd_bytes(&r, model_len);
      if (!r.ok) break;
      uint8_t *model = aligned_copy(model_in_file, model_len);
      pg_interpreter it;
      picogpt_status st = pg_interpreter_init(&it, model, model_len, g_arena, ARENA_BYTES, NULL);
      int case_failed = 0;
      if (st != PICOGPT_OK) {
        printf("FAIL %s: init: %s: %s\n", name, picogpt_status_name(st), it.error.message);
        case_failed = 1;
      } else {
        case_failed |= check_exact_arena(name, model, model_len, it.arena_used, g_arena_exact);
      }
      const uint32_t n_inv = rd_u32(&r);
      for (uint32_t i = 0; i < n_inv && r.ok; ++i) {
        if (case_failed) {
          /* Skip the invocation's bytes. */
          for (int group = 0; group < 2; ++group) {
            const uint32_t n = rd_u32(&r);
            for (uint32_t k = 0; k < n && r.ok; ++k) {
              (void)rd_u32(&r);
              (void)rd_bytes(&r, rd_u32(&r));
            }
          }
          continue;
        }
        /* The golden invocations run on the interpreter whose arena was checked. */
        case_failed |= run_invocation(&it, &r, name, (int)i);
      }
      free(model);
      if (case_failed) {
        ++failed;
      } else {
        ++passed;
        printf("ok   %s (%u invocations, arena %zu bytes)\n", name, n_inv, it.arena_used);
      }
    }
    if (!r.ok) {
      printf("FAIL %s: truncated golden file\n", argv[a]);
      ++failed;
    }
    free(file);
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}

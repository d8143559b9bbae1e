/* Robustness: corrupt, truncated or unsupported models, bad arguments, small
 * arenas and bad inputs must give an error code and message, never a crash or
 * an out-of-bounds access (this test runs under ASan/UBSan).
 *
 * Usage: test_robustness MODEL.tflite   (the exported step model)
 * Targeted mutations locate fields with the flatbuffer layout (root table ->
 * vtable -> field), so they hit exactly the field they name. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pico_gpt/runtime.h"
#include "runtime_internal.h" /* GATHER at eval: the interpreter under the token API */
#include "test_util.h"

#define ARENA_BYTES (1024u * 1024u)
static _Alignas(16) uint8_t g_arena[ARENA_BYTES];
static picogpt_runtime g_rt;

/* ---- minimal flatbuffer navigation on a known-good model ---------------------- */
static uint32_t u32(const uint8_t *m, uint32_t p) {
  return (uint32_t)m[p] | ((uint32_t)m[p + 1] << 8) | ((uint32_t)m[p + 2] << 16) |
         ((uint32_t)m[p + 3] << 24);
}
static void put_u32(uint8_t *m, uint32_t p, uint32_t v) {
  m[p] = (uint8_t)v;
  m[p + 1] = (uint8_t)(v >> 8);
  m[p + 2] = (uint8_t)(v >> 16);
  m[p + 3] = (uint8_t)(v >> 24);
}
/* Position of field `id` of the table at `t` (0 if absent). */
static uint32_t field(const uint8_t *m, uint32_t t, int id) {
  const uint32_t vt = t - u32(m, t);
  const uint16_t vt_size = (uint16_t)(m[vt] | (m[vt + 1] << 8));
  if (4 + 2 * id >= vt_size) return 0;
  const uint16_t off = (uint16_t)(m[vt + 4 + 2 * id] | (m[vt + 5 + 2 * id] << 8));
  return off ? t + off : 0;
}
static uint32_t deref(const uint8_t *m, uint32_t p) { return p + u32(m, p); }
/* Element i (a table) of the vector field `id` of table t. */
static uint32_t vec_table(const uint8_t *m, uint32_t t, int id, uint32_t i) {
  const uint32_t v = deref(m, field(m, t, id));
  const uint32_t e = v + 4 + 4 * i;
  return deref(m, e);
}
static uint32_t root(const uint8_t *m) { return u32(m, 0); }
static uint32_t subgraph0(const uint8_t *m) { return vec_table(m, root(m), 2, 0); }

static picogpt_status init_copy(const uint8_t *model, size_t size) {
  return picogpt_init(&g_rt, model, size, g_arena, ARENA_BYTES);
}

static void expect_status(const char *what, const uint8_t *model, size_t size,
                          picogpt_status want) {
  const picogpt_status st = init_copy(model, size);
  CHECK(st == want && picogpt_last_error(&g_rt)[0] != '\0', "%s: expected %s, got %s '%s'", what,
        picogpt_status_name(want), picogpt_status_name(st), picogpt_last_error(&g_rt));
  if (st == want) printf("ok   %s -> %s: %s\n", what, picogpt_status_name(st), picogpt_last_error(&g_rt));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.tflite\n", argv[0]);
    return 2;
  }
  size_t size = 0;
  uint8_t *raw = read_file(argv[1], &size);
  if (raw == NULL) {
    printf("FAIL cannot read %s\n", argv[1]);
    return 1;
  }
  uint8_t *good = aligned_copy(raw, size);
  uint8_t *m = aligned_copy(raw, size);
  free(raw);
  CHECK(init_copy(good, size) == PICOGPT_OK, "the unmodified model loads: %s", picogpt_last_error(&g_rt));

  /* Arguments. */
  CHECK(picogpt_init(&g_rt, NULL, size, g_arena, ARENA_BYTES) == PICOGPT_ERR_ARGUMENT,
        "NULL model");
  CHECK(picogpt_init(&g_rt, good, size, NULL, ARENA_BYTES) == PICOGPT_ERR_ARGUMENT, "NULL arena");
  CHECK(picogpt_init(NULL, good, size, g_arena, ARENA_BYTES) == PICOGPT_ERR_ARGUMENT,
        "NULL runtime");
  CHECK(picogpt_step(NULL, 0, NULL) == PICOGPT_ERR_ARGUMENT, "step on NULL");

  /* Truncation at many lengths. */
  const size_t cuts[] = {0, 4, 7, 8, 16, 64, 1000, size / 3, size / 2, size - 100, size - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; ++i) {
    const picogpt_status st = init_copy(good, cuts[i]);
    CHECK(st != PICOGPT_OK && picogpt_last_error(&g_rt)[0], "truncated to %zu bytes: %s", cuts[i],
          picogpt_status_name(st));
  }
  expect_status("truncated to half", good, size / 2, PICOGPT_ERR_MODEL_TRUNCATED);

  /* Root offset past the end. */
  memcpy(m, good, size);
  put_u32(m, 0, 0xFFFFFFF0u);
  expect_status("root offset out of range", m, size, PICOGPT_ERR_MODEL_TRUNCATED);

  /* File identifier. */
  memcpy(m, good, size);
  memcpy(m + 4, "XXXX", 4);
  expect_status("wrong file identifier", m, size, PICOGPT_ERR_MODEL_CORRUPT);

  /* Schema version. */
  memcpy(m, good, size);
  put_u32(m, field(m, root(m), 0), 2);
  expect_status("schema version 2", m, size, PICOGPT_ERR_MODEL_VERSION);

  /* Unknown / custom op: operator_codes[0].builtin_code (field 3) and the
   * deprecated byte (field 0). */
  memcpy(m, good, size);
  {
    const uint32_t oc = vec_table(m, root(m), 1, 0);
    const uint32_t f3 = field(m, oc, 3), f0 = field(m, oc, 0);
    if (f3) put_u32(m, f3, 150); /* GELU */
    if (f0) m[f0] = 127;
    expect_status("unsupported op (GELU)", m, size, PICOGPT_ERR_UNSUPPORTED_OP);
    if (f3) put_u32(m, f3, 32); /* CUSTOM */
    if (f0) m[f0] = 32;
    expect_status("custom op", m, size, PICOGPT_ERR_UNSUPPORTED_OP);
  }

  /* Tensor type: tensors[0].type (field 1) -> INT16, FLOAT64. */
  memcpy(m, good, size);
  {
    const uint32_t t0 = vec_table(m, subgraph0(m), 0, 0);
    const uint32_t ft = field(m, t0, 1);
    CHECK(ft != 0, "tensor 0 has a type field");
    if (ft) {
      m[ft] = 7;
      expect_status("tensor type INT16", m, size, PICOGPT_ERR_UNSUPPORTED_TYPE);
      m[ft] = 10;
      expect_status("tensor type FLOAT64", m, size, PICOGPT_ERR_UNSUPPORTED_TYPE);
    }
  }

  /* Shapes: grow one dimension of every tensor in turn until an op rejects it;
   * each attempt must fail cleanly (buffer size or op shape check). */
  {
    const uint32_t sg = subgraph0(good);
    const uint32_t tensors = deref(good, field(good, sg, 0));
    const uint32_t n = u32(good, tensors);
    int shape_errors = 0, clean = 1;
    for (uint32_t i = 0; i < n; ++i) {
      memcpy(m, good, size);
      const uint32_t t = vec_table(m, sg, 0, i);
      const uint32_t fs = field(m, t, 0);
      if (!fs) continue;
      const uint32_t shape = deref(m, fs);
      if (u32(m, shape) == 0) continue;
      const uint32_t last = shape + 4 * u32(m, shape);
      put_u32(m, last, u32(m, last) + 1);
      const picogpt_status st = init_copy(m, size);
      if (st == PICOGPT_ERR_SHAPE) ++shape_errors;
      if (st == PICOGPT_OK || picogpt_last_error(&g_rt)[0] == '\0') clean = 0;
    }
    CHECK(clean, "every grown dimension is rejected with a message");
    CHECK(shape_errors > 0, "grown dimensions give PICOGPT_ERR_SHAPE");
    printf("ok   grown dimension of each of %u tensors rejected (%d as SHAPE)\n", n, shape_errors);
  }

  /* Operator input index out of range: operators[0].inputs[0] = 1e6. */
  memcpy(m, good, size);
  {
    const uint32_t op0 = vec_table(m, subgraph0(m), 3, 0);
    const uint32_t ins = deref(m, field(m, op0, 1));
    put_u32(m, ins + 4, 1000000);
    expect_status("tensor index out of range", m, size, PICOGPT_ERR_MODEL_CORRUPT);
    /* opcode_index: take an operator that stores it (0 is the default and omitted). */
    memcpy(m, good, size);
    uint32_t f_opcode = 0;
    for (uint32_t i = 0; f_opcode == 0 && i < 90; ++i) f_opcode = field(m, vec_table(m, subgraph0(m), 3, i), 0);
    CHECK(f_opcode != 0, "an operator stores opcode_index");
    if (f_opcode) {
      put_u32(m, f_opcode, 100000);
      expect_status("opcode index out of range", m, size, PICOGPT_ERR_MODEL_CORRUPT);
    }
  }

  /* Arena too small: a tiny arena and one just below the requirement. */
  {
    CHECK(init_copy(good, size) == PICOGPT_OK, "reload");
    const size_t need = picogpt_info(&g_rt)->arena_used;
    const pg_interpreter *it = &pg_runtime_of(&g_rt)->interp;
    picogpt_status st = picogpt_init(&g_rt, good, size, g_arena, 256);
    CHECK(st == PICOGPT_ERR_ARENA_TOO_SMALL && strstr(picogpt_last_error(&g_rt), "at least"),
          "256-byte arena: %s", picogpt_last_error(&g_rt));
    CHECK(!it->arena_needed_exact && it->arena_needed > 256 &&
              it->arena_needed <= need,
          "256-byte arena: arena_needed %zu is not a lower bound of %zu",
          it->arena_needed, need);
    st = picogpt_init(&g_rt, good, size, g_arena, need - 1);
    char want[64];
    snprintf(want, sizeof want, "needs %zu bytes", need);
    CHECK(st == PICOGPT_ERR_ARENA_TOO_SMALL && strstr(picogpt_last_error(&g_rt), want),
          "arena one byte short: %s", picogpt_last_error(&g_rt));
    CHECK(it->arena_needed_exact && it->arena_needed == need,
          "arena one byte short: arena_needed %zu (exact %d), expected %zu",
          it->arena_needed, (int)it->arena_needed_exact, need);
    printf("ok   arena of %zu bytes -> %s\n", need - 1, picogpt_last_error(&g_rt));
    /* Unaligned arena start: the skipped bytes are counted. */
    st = picogpt_init(&g_rt, good, size, g_arena + 3, need + 13);
    CHECK(st == PICOGPT_OK, "unaligned arena with room for the skip: %s", picogpt_last_error(&g_rt));
  }

  /* Misaligned model bytes: constant int32/float data would be misaligned. */
  {
    uint8_t *shifted = (uint8_t *)malloc(size + 16);
    memcpy(shifted + 1, good, size);
    const picogpt_status st = init_copy(shifted + 1, size);
    CHECK(st == PICOGPT_ERR_MODEL_CORRUPT || st == PICOGPT_OK, "misaligned model: %s",
          picogpt_last_error(&g_rt));
    free(shifted);
  }

  /* GATHER index out of range at eval (bypassing the token check). */
  {
    CHECK(init_copy(good, size) == PICOGPT_OK, "reload");
    pg_runtime *rt = pg_runtime_of(&g_rt);
    *(int32_t *)rt->token_in->data = 100000;
    *(int32_t *)rt->pos_in->data = 0;
    const picogpt_status st = pg_interpreter_invoke(&rt->interp);
    CHECK(st == PICOGPT_ERR_EVAL && strstr(rt->interp.error.message, "GATHER"),
          "gather out of range at eval: %s", rt->interp.error.message);
  }

  /* Random corruption: 400 seeded byte flips in the graph structure (the
   * tail of the file, where flatbuffers keep tables and vectors) and anywhere. */
  {
    uint32_t rng = 12345;
    int ok_loads = 0, errors = 0;
    for (int trial = 0; trial < 400; ++trial) {
      memcpy(m, good, size);
      for (int k = 0; k < 4; ++k) {
        rng = rng * 1664525u + 1013904223u;
        const size_t region = trial % 2 ? size : (size < 40000 ? size : 40000);
        const size_t pos = trial % 2 ? rng % region : size - 1 - rng % region;
        rng = rng * 1664525u + 1013904223u;
        m[pos] ^= (uint8_t)(1u << (rng >> 29));
      }
      if (init_copy(m, size) == PICOGPT_OK) {
        ++ok_loads;
        picogpt_step(&g_rt, 1, NULL); /* must not crash either way */
      } else {
        errors += picogpt_last_error(&g_rt)[0] != '\0';
      }
    }
    CHECK(ok_loads + errors == 400, "every corrupted model loads or fails with a message");
    printf("ok   400 corrupted models: %d still load and run, %d rejected with a message\n",
           ok_loads, errors);
  }

  free(good);
  free(m);
  return test_summary();
}

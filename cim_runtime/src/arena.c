/* The init-time arena allocator (see arena.h). */
#include "arena.h"

#include <string.h>

void pg_arena_begin(pg_arena *a, pg_interpreter *it, uint8_t *base, size_t usable, size_t skip) {
  memset(a, 0, sizeof *a);
  a->it = it;
  a->base = base;
  a->end = base + usable;
  a->skip = skip;
  a->head = base;
  a->tail = a->end;
}

static void *too_small(pg_arena *a, size_t need) {
  a->it->arena_needed = need;
  pg_fail(a->it, PICOGPT_ERR_ARENA_TOO_SMALL,
          "arena too small: the model needs at least %z bytes for its tables (arena has %z)",
          need, a->it->arena_size);
  return NULL;
}

void *pg_arena_init_only(pg_arena *a, size_t bytes) {
  const size_t size = pg_align_up(bytes == 0 ? 1 : bytes);
  if ((size_t)(a->tail - a->head) < size) {
    return too_small(a, a->skip + a->head_bytes + size + a->tail_needed);
  }
  void *p = a->head;
  a->head += size;
  a->head_bytes += size;
  memset(p, 0, size);
  return p;
}

void *pg_arena_persistent(pg_arena *a, size_t bytes) {
  const size_t size = pg_align_up(bytes == 0 ? 1 : bytes);
  a->tail_needed += size;
  if ((size_t)(a->tail - a->head) < size) {
    return too_small(a, a->skip + a->head_bytes + a->tail_needed);
  }
  a->tail -= size;
  memset(a->tail, 0, size);
  return a->tail;
}

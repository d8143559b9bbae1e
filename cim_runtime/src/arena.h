/* Internal: the arena while init runs (TFLite Micro's single-arena allocator
 * idea). Init-only records grow up from the start (the head); persistent data
 * grows down from the end (the tail). After init the planner puts graph inputs
 * and activations at the start, over the init-only records. Every allocation
 * is 16-byte aligned and zeroed; a failed one sets PICOGPT_ERR_ARENA_TOO_SMALL
 * with a lower bound of the need and returns NULL. */
#ifndef PG_ARENA_H
#define PG_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "interpreter.h"

typedef struct pg_arena {
  pg_interpreter *it;   /* gets the error and arena_needed when an allocation fails */
  uint8_t *base;        /* 16-byte aligned start */
  uint8_t *end;         /* base + usable bytes (a multiple of 16) */
  size_t skip;          /* bytes skipped to align the caller's arena start */
  uint8_t *head;        /* next init-only byte */
  size_t head_bytes;    /* init-only bytes so far (the planned part reuses them) */
  uint8_t *tail;        /* lowest persistent byte so far */
  size_t tail_needed;   /* bytes the tail would need (keeps counting on failure) */
} pg_arena;

void pg_arena_begin(pg_arena *a, pg_interpreter *it, uint8_t *base, size_t usable, size_t skip);
/* Init-only memory from the head (before any persistent allocation needs the room). */
void *pg_arena_init_only(pg_arena *a, size_t bytes);
/* Persistent memory from the tail: survives init. */
void *pg_arena_persistent(pg_arena *a, size_t bytes);
/* Bytes the tail holds now. */
static inline size_t pg_arena_persistent_bytes(const pg_arena *a) {
  return (size_t)(a->end - a->tail);
}

#endif /* PG_ARENA_H */

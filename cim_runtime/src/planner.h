/* Internal: lifetime planning of the interpreter's tensors (planner.c). */
#ifndef PG_PLANNER_H
#define PG_PLANNER_H

#include <stddef.h>

#include "interpreter.h"

/* Dataflow checks and lifetimes: every tensor an op reads is a constant, a variable, a
 * graph input or written by an earlier op; no tensor is written twice; every graph output
 * is written. Sets first_use (producing op; -2 for graph inputs, planned for the whole
 * graph and never reused) and last_use (last consuming op; num_nodes for graph outputs). */
picogpt_status pg_compute_lifetimes(pg_interpreter *it);

/* Whether a tensor gets arena memory from the planner: graph inputs and activations that
 * some op uses, not constants or variables. */
int pg_is_planned(const pg_tensor *t);

/* Greedy by size (largest first), each planned tensor at the lowest 16-byte aligned
 * offset that does not overlap a placed one with an intersecting lifetime; the same idea
 * as TFLite Micro's GreedyMemoryPlanner. Needs no scratch memory (arena_offset ==
 * UINT32_MAX marks "not placed yet"), so an arena of exactly the reported size always
 * works. Sets each tensor's arena_offset; returns the high-water mark. O(n^2) to O(n^3)
 * in the number of tensors; runs once at init. */
size_t pg_plan_activations(pg_interpreter *it);

#endif /* PG_PLANNER_H */

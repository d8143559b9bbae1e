/* Lifetime planning: dataflow checks, tensor lifetimes and the greedy arena
 * placement of graph inputs and activations (see planner.h). */
#include "planner.h"

#include <stddef.h>

#include "kernels/kernels.h"

picogpt_status pg_compute_lifetimes(pg_interpreter *it) {
  /* first_use: producing op; last_use: last consuming op. Graph inputs are
   * marked with first_use = -2 (planned for the whole graph, never reused). From scratch:
   * init runs this again after fusing ops. */
  for (int32_t i = 0; i < it->num_tensors; ++i) {
    it->tensors[i].first_use = -1;
    it->tensors[i].last_use = -1;
  }
  for (int i = 0; i < it->num_inputs; ++i) {
    pg_tensor *t = &it->tensors[it->inputs[i]];
    if (t->is_constant) {
      return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "graph input %d '%s' is a constant", i,
                     t->name);
    }
    t->first_use = -2;
  }
  for (int n = 0; n < it->num_nodes; ++n) {
    const pg_node *node = &it->nodes[n];
    for (int i = 0; i < node->num_inputs; ++i) {
      if (node->inputs[i] < 0) continue;
      pg_tensor *t = &it->tensors[node->inputs[i]];
      if (t->is_constant) continue;
      if (t->first_use == -1 && !t->is_variable) {
        return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT,
                       "%s (op %d) reads tensor %d '%s' before any op writes it",
                       pg_op_name(node->opcode), n, (int)node->inputs[i], t->name);
      }
      t->last_use = n;
    }
    for (int o = 0; o < node->num_outputs; ++o) {
      pg_tensor *t = &it->tensors[node->outputs[o]];
      if (t->is_constant || t->first_use != -1 || t->is_variable) {
        return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT,
                       "%s (op %d) writes tensor %d '%s', which is constant, an input, a "
                       "variable or written twice",
                       pg_op_name(node->opcode), n, (int)node->outputs[o], t->name);
      }
      t->first_use = n;
      if (t->last_use < n) t->last_use = n;
    }
  }
  for (int i = 0; i < it->num_outputs; ++i) {
    pg_tensor *t = &it->tensors[it->outputs[i]];
    if (t->first_use == -1 && !t->is_constant && !t->is_variable) {
      return pg_fail(it, PICOGPT_ERR_MODEL_CORRUPT, "graph output %d '%s' is never written", i,
                     t->name);
    }
    t->last_use = it->num_nodes; /* alive after the last op */
  }
  return PICOGPT_OK;
}

int pg_is_planned(const pg_tensor *t) {
  return !t->is_constant && !t->is_variable && (t->first_use >= 0 || t->first_use == -2) &&
         t->bytes > 0;
}

size_t pg_plan_activations(pg_interpreter *it) {
  /* Graph inputs (first_use -2) are alive for the whole graph: past every op. */
  const int32_t lifetime_end = it->num_nodes + 1;
  for (int32_t i = 0; i < it->num_tensors; ++i) it->tensors[i].arena_offset = UINT32_MAX;
  size_t high_water = 0;
  for (;;) {
    /* Next: largest unplaced, then earliest first use, then lowest index. */
    pg_tensor *t = NULL;
    for (int32_t i = 0; i < it->num_tensors; ++i) {
      pg_tensor *c = &it->tensors[i];
      if (!pg_is_planned(c) || c->arena_offset != UINT32_MAX) continue;
      if (t == NULL || c->bytes > t->bytes ||
          (c->bytes == t->bytes && c->first_use < t->first_use)) {
        t = c;
      }
    }
    if (t == NULL) break;
    const size_t size = pg_align_up(t->bytes);
    size_t candidate = 0;
    int moved = 1;
    while (moved) {
      moved = 0;
      for (int32_t i = 0; i < it->num_tensors; ++i) {
        const pg_tensor *o = &it->tensors[i];
        if (o == t || !pg_is_planned(o) || o->arena_offset == UINT32_MAX) continue;
        const int32_t t_last = t->first_use == -2 ? lifetime_end : t->last_use;
        const int32_t o_last = o->first_use == -2 ? lifetime_end : o->last_use;
        if (o_last < t->first_use || t_last < o->first_use) continue;
        const size_t o_start = o->arena_offset, o_end = o_start + pg_align_up(o->bytes);
        if (candidate < o_end && o_start < candidate + size) {
          candidate = o_end;
          moved = 1;
        }
      }
    }
    t->arena_offset = (uint32_t)candidate;
    if (candidate + size > high_water) high_water = candidate + size;
  }
  return high_water;
}


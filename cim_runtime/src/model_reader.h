/* Internal: reads a TFLite flatbuffer into the interpreter's tables
 * (model_reader.c). */
#ifndef PG_MODEL_READER_H
#define PG_MODEL_READER_H

#include "arena.h"
#include "flatbuffer.h"
#include "interpreter.h"
#include "kernels/kernels.h"

/* Validates the model's one subgraph and fills it->tensors (init-only records at the
 * arena's head), it->nodes (persistent), the graph inputs and outputs, and
 * *node_options: each node's builtin options, init-only, for prepare. Every op must be
 * in the registry. */
picogpt_status pg_read_model(pg_interpreter *it, pg_arena *arena, const pg_fb *fb,
                             pg_node_options **node_options);

#endif /* PG_MODEL_READER_H */

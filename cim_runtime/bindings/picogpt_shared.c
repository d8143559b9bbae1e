/* picogpt_shared: the runtime as a shared library, for the Python binding (tf_model/chip.py).
 *
 * The runtime allocates nothing; a firmware declares its model, state and arena statically.
 * This host-only layer is that app for Python: a session owns a 16-byte aligned copy of the
 * model bytes, the runtime state and an arena of exactly the size the model needs. Python
 * calls everything else straight from pico_gpt/runtime.h on picogpt_session_runtime(). */
#include <stdlib.h>
#include <string.h>

#include "pico_gpt/runtime.h"

/* Options of a session. Later fields are appended: a caller passes the struct_size it knows,
 * and fields past it keep their defaults (zero), so an older binding keeps working with a
 * newer library. */
typedef struct picogpt_session_options {
  uint32_t struct_size;    /* sizeof the struct as the caller knows it */
  uint32_t reserved;       /* 0 */
  uint64_t arena_bytes;    /* tensor arena to offer; 0: exactly what the model needs */
  picogpt_options runtime; /* picogpt_init_with_options': CIM device, CPU fallback (0: default) */
} picogpt_session_options;

typedef struct picogpt_session {
  picogpt_runtime rt;
  void *model; /* (model_size,) 16-byte aligned copy: constant tensors are read in place */
  void *arena; /* (arena_bytes,) 16-byte aligned */
  size_t arena_bytes;
} picogpt_session;

/* Declared here, not in a header: only the Python binding calls them (through ctypes). */
picogpt_session *picogpt_session_open(const void *model, size_t model_size,
                                      const picogpt_session_options *options,
                                      picogpt_status *status, char *error, size_t error_size);
void picogpt_session_close(picogpt_session *session);
picogpt_runtime *picogpt_session_runtime(picogpt_session *session);
size_t picogpt_session_arena_bytes(const picogpt_session *session);
size_t picogpt_struct_size(const char *name);

static void *aligned_copy(const void *data, size_t size) {
  void *p = aligned_alloc(16, (size + 15) & ~(size_t)15);
  if (p != NULL && data != NULL) memcpy(p, data, size);
  return p;
}

static void put_error(char *error, size_t error_size, const char *text) {
  if (error == NULL || error_size == 0) return;
  strncpy(error, text, error_size - 1);
  error[error_size - 1] = '\0';
}

void picogpt_session_close(picogpt_session *session) {
  if (session == NULL) return;
  free(session->arena);
  free(session->model);
  free(session);
}

/* Initializes the runtime in session->arena_bytes; with want == 0 it grows the arena to what
 * init reports the model needs (exact after at most two tries: the first failure may only
 * know a lower bound). */
static picogpt_status init_runtime(picogpt_session *s, size_t model_size,
                                   const picogpt_session_options *o) {
  const size_t want = (size_t)o->arena_bytes;
  size_t bytes = want != 0 ? want : 256u * 1024u;
  picogpt_status st = PICOGPT_ERR_ARENA_TOO_SMALL;
  for (int attempt = 0; attempt < 8; ++attempt) {
    free(s->arena);
    s->arena_bytes = bytes;
    s->arena = aligned_copy(NULL, bytes);
    if (s->arena == NULL) return PICOGPT_ERR_ARENA_TOO_SMALL;
    st = picogpt_init_with_options(&s->rt, s->model, model_size, s->arena, bytes, &o->runtime);
    const picogpt_model_info *info = picogpt_info(&s->rt);
    if (st != PICOGPT_ERR_ARENA_TOO_SMALL || want != 0) break;
    bytes = info->arena_needed_exact ? info->arena_needed : 2 * info->arena_needed;
  }
  return st;
}

picogpt_session *picogpt_session_open(const void *model, size_t model_size,
                                      const picogpt_session_options *options,
                                      picogpt_status *status, char *error, size_t error_size) {
  picogpt_session_options o;
  memset(&o, 0, sizeof o);
  o.struct_size = sizeof o;
  if (options != NULL) {
    const size_t known = options->struct_size < sizeof o ? options->struct_size : sizeof o;
    memcpy(&o, options, known);
  }
  picogpt_session *s = (picogpt_session *)aligned_copy(NULL, sizeof *s);
  if (s == NULL || model == NULL || model_size == 0) {
    free(s);
    *status = PICOGPT_ERR_ARGUMENT;
    put_error(error, error_size, model == NULL || model_size == 0 ? "the model is empty"
                                                                  : "out of memory");
    return NULL;
  }
  memset(s, 0, sizeof *s);
  s->model = aligned_copy(model, model_size);
  *status = s->model != NULL ? init_runtime(s, model_size, &o) : PICOGPT_ERR_ARGUMENT;
  if (*status != PICOGPT_OK) {
    put_error(error, error_size, s->model != NULL ? picogpt_last_error(&s->rt) : "out of memory");
    picogpt_session_close(s);
    return NULL;
  }
  put_error(error, error_size, "");
  return s;
}

picogpt_runtime *picogpt_session_runtime(picogpt_session *session) { return &session->rt; }

size_t picogpt_session_arena_bytes(const picogpt_session *session) {
  return session->arena_bytes;
}

/* sizeof the public structs ctypes mirrors, so the binding can refuse a layout it does not
 * know instead of reading garbage. 0 for an unknown name. */
size_t picogpt_struct_size(const char *name) {
  static const struct {
    const char *name;
    size_t size;
  } sizes[] = {
      {"picogpt_model_info", sizeof(picogpt_model_info)},
      {"picogpt_sampling", sizeof(picogpt_sampling)},
      {"picogpt_window", sizeof(picogpt_window)},
      {"picogpt_stats", sizeof(picogpt_stats)},
      {"picogpt_session_options", sizeof(picogpt_session_options)},
      {"picogpt_options", sizeof(picogpt_options)},
      {"picogpt_cim_nonideal", sizeof(picogpt_cim_nonideal)},
      {"picogpt_cim_mapping", sizeof(picogpt_cim_mapping)},
      {"picogpt_cim_layer", sizeof(picogpt_cim_layer)},
  };
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; ++i) {
    if (strcmp(name, sizes[i].name) == 0) return sizes[i].size;
  }
  return 0;
}

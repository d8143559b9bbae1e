/* PicoGPT status codes: every runtime function that can fail returns one.
 * picogpt_status_name() gives the enum name; picogpt_last_error() (runtime.h)
 * a message with the details. */
#ifndef PICO_GPT_STATUS_H
#define PICO_GPT_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum picogpt_status {
  PICOGPT_OK = 0,
  PICOGPT_ERR_ARGUMENT,         /* NULL pointer, bad size or parameter */
  PICOGPT_ERR_MODEL_TRUNCATED,  /* an offset or length points past the end */
  PICOGPT_ERR_MODEL_CORRUPT,    /* structurally invalid flatbuffer/graph */
  PICOGPT_ERR_MODEL_VERSION,    /* schema version is not 3 */
  PICOGPT_ERR_UNSUPPORTED_OP,   /* builtin op (or option) not implemented */
  PICOGPT_ERR_UNSUPPORTED_TYPE, /* tensor type an op cannot handle */
  PICOGPT_ERR_SHAPE,            /* shapes inconsistent for an op */
  PICOGPT_ERR_QUANTIZATION,     /* missing/invalid scale or zero point */
  PICOGPT_ERR_SIGNATURE,        /* model inputs/outputs are not a PicoGPT */
  PICOGPT_ERR_ARENA_TOO_SMALL,  /* message says how many bytes are needed */
  PICOGPT_ERR_TOKEN_RANGE,      /* token id outside [0, vocab_size) */
  PICOGPT_ERR_CONTEXT_FULL,     /* position reached block_size */
  PICOGPT_ERR_EVAL,             /* a kernel rejected its input at run time */
  PICOGPT_ERR_CIM_CAPACITY,     /* the model needs more CIM macros than the device has */
  PICOGPT_ERR_CIM_HAL,          /* the CIM HAL refused a call (message: which, and why) */
  PICOGPT_STATUS_COUNT
} picogpt_status;

/* "PICOGPT_OK", "PICOGPT_ERR_ARGUMENT", ...; "PICOGPT_ERR_UNKNOWN" for other values. */
const char *picogpt_status_name(picogpt_status status);

#ifdef __cplusplus
}
#endif

#endif /* PICO_GPT_STATUS_H */

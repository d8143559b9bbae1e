/* The vocabulary of an exported .tflite, read from its "pico_gpt" metadata: the
 * JSON object the exporter writes (tf_model/export/convert.py), whose "itos" member is the
 * array of token strings (token id -> UTF-8 text).
 *
 * The reader is strict JSON (RFC 8259): any syntax error, a bad escape or UTF-8
 * sequence, a lone surrogate, a second "itos", a token with a NUL byte, or a
 * vocabulary larger than the runtime's limits is an error with a message that
 * says what and where (byte offset in the JSON). Host only (picogpt_generate);
 * the firmware embeds its vocabulary as C arrays. */
#ifndef PICOGPT_METADATA_VOCAB_H
#define PICOGPT_METADATA_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "pico_gpt/runtime.h"

/* Storage for a vocabulary read from metadata, in the exporter's layout (model_data.h). */
typedef struct metadata_vocab {
  char bytes[UINT16_MAX];                   /* token texts, back to back (offsets are uint16) */
  uint16_t offsets[PICOGPT_MAX_VOCAB + 1];
  picogpt_vocab vocab;                      /* points into the arrays above */
} metadata_vocab;

/* Reads "itos" from the JSON bytes json[0..size). Returns 0 (out->vocab is ready), or -1
 * with a one-line message in error. */
int metadata_vocab_read(const uint8_t *json, size_t size, metadata_vocab *out, char *error,
                        size_t error_size);

#endif /* PICOGPT_METADATA_VOCAB_H */

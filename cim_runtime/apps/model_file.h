/* Reading an exported .tflite into memory for the host apps. */
#ifndef PICOGPT_APPS_MODEL_FILE_H
#define PICOGPT_APPS_MODEL_FILE_H

#include <stddef.h>
#include <stdint.h>

/* The whole model file, 16-byte aligned (constant tensors must be aligned; free() it), or NULL
 * after printing "error: ..." to stderr: a path that does not open, a directory or other
 * non-regular file, an empty file or one past the runtime's 2^31 - 1 bytes, a short read. */
uint8_t *read_model_file(const char *path, size_t *size);

#endif /* PICOGPT_APPS_MODEL_FILE_H */

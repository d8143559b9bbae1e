/* Reading an exported .tflite into memory for the host apps (model_file.h). */
#define _POSIX_C_SOURCE 200809L /* fileno */
#include "model_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_MODEL_BYTES 0x7fffffffu /* the runtime's limit */

uint8_t *read_model_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "error: cannot open model file '%s': %s\n", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  uint8_t *buf = NULL;
  if (fstat(fileno(f), &st) != 0) {
    fprintf(stderr, "error: cannot read model file '%s': %s\n", path, strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    fprintf(stderr,
            "error: model file '%s' is %s, not a file; pass an exported .tflite "
            "(tf_convert_to_tflite.py writes one)\n",
            path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
  } else if (st.st_size == 0 || (uint64_t)st.st_size > MAX_MODEL_BYTES) {
    fprintf(stderr, "error: model file '%s' has %lld bytes; a model has 1..%u\n", path,
            (long long)st.st_size, MAX_MODEL_BYTES);
  } else {
    *size = (size_t)st.st_size;
    buf = (uint8_t *)aligned_alloc(16, (*size + 15) & ~(size_t)15);
    if (buf == NULL || fread(buf, 1, *size, f) != *size) {
      fprintf(stderr, "error: cannot read the %zu bytes of model file '%s'\n", *size, path);
      free(buf);
      buf = NULL;
    }
  }
  fclose(f);
  return buf;
}

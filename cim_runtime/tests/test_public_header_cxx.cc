// The public headers compile as C++ (extern "C", no C-only constructs) on their own.
#include "pico_gpt/runtime.h"
#include "pico_gpt/status.h"

extern "C" int picogpt_public_header_cxx_probe(void);
int picogpt_public_header_cxx_probe(void) {
  picogpt_sampling sampling = {0.8f, 20, 7u};
  return sizeof(picogpt_runtime) >= sizeof(sampling) ? PICOGPT_OK : PICOGPT_ERR_ARGUMENT;
}

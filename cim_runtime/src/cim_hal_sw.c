/* Software implementation of the CIM HAL (include/pico_gpt/cim_hal.h): a bit-exact
 * emulation of weight-stationary int8 macros on the CPU.
 *
 * "Programming" a tile records where its weights are (the model bytes outlive the runtime,
 * so nothing is copied: a 400 KB model could not be copied into an MCU's RAM anyway); a
 * product runs the CPU's int8 matrix-vector product (src/matvec.c, the active SIMD path's)
 * over the recorded tile. On an x86-64 CPU with AVX-512 VNNI the HAL asks for tile memory:
 * given it, programming also writes the tile's emulated cells (matvec.h) there, which the
 * VNNI path streams instead of the row-major weights (the other paths, the scalar reference
 * among them, keep reading those). Every protocol check a hardware driver
 * needs is here, so the software HAL is also the reference for what a driver must refuse.
 *
 * With PICOGPT_CIM_SW_INSTRET on RISC-V (the firmware build), program and matvec read the
 * instret counter at entry and exit and add the difference to the counters'
 * emulation_instructions: the firmware subtracts it to report the instructions its core
 * executes outside the accelerator (docs/firmware.md). */
#include <string.h>

#include "matvec.h"
#include "pico_gpt/cim_hal.h"

#define MAX_MACROS 65535
#define MAX_MACRO_SIDE 4096

typedef struct sw_tile {
  const int8_t *weights; /* NULL: not programmed */
#if PG_SIMD_DISPATCH
  const uint8_t *cells; /* the emulated cells in the tile memory, or NULL */
  int narrow;           /* no weight is -128 (pg_weights_narrow): matvec_narrow may run */
#endif
  int32_t rows, cols, stride;
} sw_tile;

struct cim_hal {
  cim_hal_device device;
  cim_hal_counters counters;
  sw_tile tiles[]; /* [device.num_macros] */
};

#if defined(__riscv) && defined(PICOGPT_CIM_SW_INSTRET)
static inline uint32_t instret_low(void) {
  uint32_t v;
  __asm__ volatile("rdinstret %0" : "=r"(v));
  return v;
}
#define EMULATION_BEGIN() const uint32_t instret_begin = instret_low()
/* The low word's difference is exact for any product shorter than 2^32 instructions. */
#define EMULATION_END(hal) (hal)->counters.emulation_instructions += instret_low() - instret_begin
#else
#define EMULATION_BEGIN() ((void)0)
#define EMULATION_END(hal) ((void)0)
#endif

size_t cim_hal_state_bytes(const cim_hal_device *device) {
  if (device == NULL || device->num_macros < 1 || device->num_macros > MAX_MACROS ||
      device->rows < 1 || device->rows > MAX_MACRO_SIDE || device->cols < 1 ||
      device->cols > MAX_MACRO_SIDE || device->input_bits != 8 || device->weight_bits != 8) {
    return 0;
  }
  return sizeof(cim_hal) + sizeof(sw_tile) * (size_t)device->num_macros;
}

cim_hal_status cim_hal_open(void *memory, const cim_hal_device *device, cim_hal **hal) {
  const size_t bytes = cim_hal_state_bytes(device);
  if (bytes == 0 || memory == NULL || hal == NULL) return CIM_HAL_ERR_DEVICE;
  memset(memory, 0, bytes);
  *hal = (cim_hal *)memory;
  (*hal)->device = *device;
  return CIM_HAL_OK;
}

size_t cim_hal_tile_memory_bytes(const cim_hal *hal, int32_t rows, int32_t cols) {
#if PG_SIMD_DISPATCH
  /* Only on a CPU whose best path reads cells (picogpt_simd_select may switch paths later;
   * the others read the row-major weights, which the tile keeps too). */
  if (rows <= hal->device.rows && cols <= hal->device.cols &&
      picogpt_simd_supported(PICOGPT_SIMD_AVX512VNNI)) {
    return pg_cells_bytes(rows, cols);
  }
#else
  (void)hal, (void)rows, (void)cols;
#endif
  return 0;
}

cim_hal_status cim_hal_program(cim_hal *hal, int32_t tile, const int8_t *weights, int32_t rows,
                               int32_t cols, int32_t stride, void *tile_memory) {
  EMULATION_BEGIN();
  if (tile < 0 || tile >= hal->device.num_macros) return CIM_HAL_ERR_TILE;
  if (weights == NULL || rows < 1 || rows > hal->device.rows || cols < 1 ||
      cols > hal->device.cols || stride < rows) {
    return CIM_HAL_ERR_SHAPE;
  }
  sw_tile *t = &hal->tiles[tile];
  t->weights = weights;
  t->rows = rows;
  t->cols = cols;
  t->stride = stride;
#if PG_SIMD_DISPATCH
  t->cells = NULL;
  t->narrow = pg_weights_narrow(weights, cols, rows, stride);
  if (tile_memory != NULL && cim_hal_tile_memory_bytes(hal, rows, cols) > 0) {
    pg_cells_pack(weights, rows, cols, stride, (uint8_t *)tile_memory);
    t->cells = (const uint8_t *)tile_memory;
  }
#else
  (void)tile_memory; /* never asked for (cim_hal_tile_memory_bytes is 0) */
#endif
  hal->counters.programs += 1;
  hal->counters.program_cells += (uint64_t)rows * (uint64_t)cols;
  EMULATION_END(hal);
  return CIM_HAL_OK;
}

cim_hal_status cim_hal_matvec(cim_hal *hal, int32_t tile, const int8_t *x, int32_t x_len,
                              int32_t *out, int32_t out_len) {
  EMULATION_BEGIN();
  if (tile < 0 || tile >= hal->device.num_macros) return CIM_HAL_ERR_TILE;
  const sw_tile *t = &hal->tiles[tile];
  if (t->weights == NULL) return CIM_HAL_ERR_UNPROGRAMMED;
  if (x_len != t->rows || out_len != t->cols) return CIM_HAL_ERR_SHAPE;
#if PG_SIMD_DISPATCH
  if (t->cells != NULL && pg_simd.cells_matvec != NULL) {
    pg_simd.cells_matvec(t->cells, t->rows, t->cols, x, out);
  } else if (t->narrow && pg_simd.matvec_narrow != NULL) {
    pg_simd.matvec_narrow(t->weights, t->cols, t->rows, t->stride, x, out);
  } else {
    pg_matvec(t->weights, t->cols, t->rows, t->stride, x, 0, out);
  }
#else
  pg_matvec(t->weights, t->cols, t->rows, t->stride, x, 0, out);
#endif
  hal->counters.matvecs += 1;
  hal->counters.macs += (uint64_t)t->rows * (uint64_t)t->cols;
  hal->counters.outputs += (uint64_t)t->cols;
  EMULATION_END(hal);
  return CIM_HAL_OK;
}

void cim_hal_get_counters(const cim_hal *hal, cim_hal_counters *counters) {
  *counters = hal->counters;
}

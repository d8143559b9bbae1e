/* CIM HAL v2: the interface a CIMv3 compute-in-memory driver implements.
 *
 * The accelerator is weight-stationary: it has `num_macros` macros of `rows` x `cols`
 * int8 weights each. At init the runtime writes every constant weight matrix of the model
 * into macros, one tile per macro (cim_hal_program); each step it streams an input vector
 * through a programmed tile and reads back `cols` int32 partial sums (cim_hal_matvec).
 *
 *   rows = word lines = inputs per tile (a slice of the matrix's K inputs)
 *   cols = bit lines  = outputs per tile (a slice of its N outputs; one ADC read-out each)
 *
 * The runtime owns the tiling (src/cim_map.c): it splits an N x K weight matrix into
 * ceil(K / rows) row tiles times ceil(N / cols) column tiles, adds up the partial sums of
 * the row tiles, and keeps the zero-point corrections, requantization and activations.
 * A driver computes nothing but raw dot products of int8 inputs and int8 weights.
 *
 * Contract for a driver writer:
 * - The runtime reserves cim_hal_state_bytes(device) bytes (16-byte aligned) in its arena
 *   for the driver's state and calls cim_hal_open on them once per picogpt_init, before
 *   any other call; the state lives as long as the runtime. One state = one device, so
 *   several runtimes in one process each drive their own (a software one in tests, or a
 *   hardware driver that hands out disjoint macros).
 * - cim_hal_program runs at init only, once per tile, with tile ids 0, 1, 2, ... in order.
 *   The weights point into the model bytes, which outlive the runtime: a driver may keep
 *   the pointer (the software HAL does by default) or copy the weights into the macro
 *   (hardware).
 * - Tile memory: a driver may ask for host memory per tile (cim_hal_tile_memory_bytes; a
 *   hardware driver, whose macros hold the weights, asks for none). When the application
 *   opts in (picogpt_options.cim_tile_memory), the runtime takes it from its arena and
 *   passes it to cim_hal_program; it lives as long as the runtime. The software HAL on
 *   x86-64 stores the tile's emulated cells there, in the order its SIMD kernels stream
 *   them (src/matvec.h): the products get faster, the results stay the same.
 * - cim_hal_matvec runs during picogpt_step, any number of times, on programmed tiles.
 * - Every call returns a status. A protocol violation (unknown tile, a tile that was never
 *   programmed, vector lengths that differ from the programmed tile) is an error, never
 *   undefined behaviour; the runtime turns it into PICOGPT_ERR_CIM_HAL with a message.
 * - All calls are synchronous: when matvec returns, out[] holds the partial sums.
 *
 * The software implementation is src/cim_hal_sw.c (scalar reference + AVX2 / AVX-512 VNNI). A firmware
 * build links a driver instead with the CMake option PICOGPT_CIM_HAL_SOFTWARE=OFF.
 */
#ifndef PICO_GPT_CIM_HAL_H
#define PICO_GPT_CIM_HAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What the mapper tiles for. The runtime accepts rows and cols of 128, 256 or 512 and
 * 8-bit inputs and weights (the models are int8); a driver may support less. */
typedef struct cim_hal_device {
  int32_t num_macros;  /* macros on the device; each holds one tile */
  int32_t rows;        /* word lines per macro: inputs per tile */
  int32_t cols;        /* bit lines per macro: outputs per tile */
  int32_t input_bits;  /* input precision, applied bit-serially (8) */
  int32_t weight_bits; /* weight precision (8) */
} cim_hal_device;

/* The default device: 32 macros of 128 x 128 int8 weights (512 KiB of weights). The
 * default model needs 25 of them (cim_runtime/README.md, "Mapping"). */
#define CIM_HAL_DEFAULT_MACROS 32
#define CIM_HAL_DEVICE_DEFAULT {CIM_HAL_DEFAULT_MACROS, 128, 128, 8, 8}

typedef enum cim_hal_status {
  CIM_HAL_OK = 0,
  CIM_HAL_ERR_DEVICE,       /* the device description is not one this driver supports */
  CIM_HAL_ERR_TILE,         /* tile id outside [0, num_macros) */
  CIM_HAL_ERR_SHAPE,        /* tile larger than a macro, or vector lengths != the tile's */
  CIM_HAL_ERR_UNPROGRAMMED, /* matvec on a tile that was never programmed */
  CIM_HAL_ERR_WRITE,        /* the hardware failed to write the weights */
} cim_hal_status;

/* Work counters of one device since cim_hal_open. */
typedef struct cim_hal_counters {
  uint64_t programs;      /* tiles written */
  uint64_t program_cells; /* weights written: rows x cols per tile */
  uint64_t matvecs;       /* tile products */
  uint64_t macs;          /* multiply-accumulates: rows x cols per product */
  uint64_t outputs;       /* partial sums read out: cols per product */
  /* Instructions the CPU spent inside program/matvec emulating the macros: counted by the
   * software HAL on RISC-V builds with PICOGPT_CIM_SW_INSTRET (the firmware), so that the
   * instructions the core executes outside the accelerator can be measured; 0 otherwise
   * and for a hardware driver. */
  uint64_t emulation_instructions;
} cim_hal_counters;

/* A driver's state for one device; its layout is private to the driver. */
typedef struct cim_hal cim_hal;

/* ---- implemented by a driver (the software one: src/cim_hal_sw.c) ---------------------- */

/* Bytes of state the driver needs for this device (0: a device it cannot drive). */
size_t cim_hal_state_bytes(const cim_hal_device *device);
/* Initializes the state in `memory` (cim_hal_state_bytes(device) bytes, 16-byte aligned):
 * no tile is programmed, counters are zero. */
cim_hal_status cim_hal_open(void *memory, const cim_hal_device *device, cim_hal **hal);
/* Host memory the driver can use for a tile of rows x cols (0: none; also for shapes the
 * device cannot hold). Asked once per tile at init, before cim_hal_program. */
size_t cim_hal_tile_memory_bytes(const cim_hal *hal, int32_t rows, int32_t cols);
/* Writes one tile into macro `tile`: weights[o * stride + i] is the weight from input i
 * (< rows, a word line) to output o (< cols, a bit line); rows <= device rows, cols <=
 * device cols, stride >= rows. tile_memory: NULL, or cim_hal_tile_memory_bytes(hal, rows,
 * cols) bytes (16-byte aligned) that stay the driver's for the state's lifetime. */
cim_hal_status cim_hal_program(cim_hal *hal, int32_t tile, const int8_t *weights, int32_t rows,
                               int32_t cols, int32_t stride, void *tile_memory);
/* out[o] = sum_i weights[o * stride + i] * x[i] over the programmed tile; x_len must equal
 * its rows, out_len its cols. out is overwritten. */
cim_hal_status cim_hal_matvec(cim_hal *hal, int32_t tile, const int8_t *x, int32_t x_len,
                              int32_t *out, int32_t out_len);
void cim_hal_get_counters(const cim_hal *hal, cim_hal_counters *counters);

/* ---- provided by the runtime (src/status.c) -------------------------------------------- */
/* "CIM_HAL_OK", "CIM_HAL_ERR_TILE", ... ("CIM_HAL_ERR_UNKNOWN" for other values). */
const char *cim_hal_status_name(cim_hal_status status);

#ifdef __cplusplus
}
#endif

#endif /* PICO_GPT_CIM_HAL_H */

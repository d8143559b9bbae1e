/* The op registry: which builtin op codes this runtime runs and the prepare
 * function of each (TFLite Micro's op resolver, fixed at compile time). */
#include <stddef.h>

#include "kernels.h"

/* A build may link only the kernels its embedded model uses (the firmware: flash is nearly
 * full of model): it defines PG_KERNELS_SELECTED and PG_KERNEL_<OP> for each op of the model
 * (cim_runtime/firmware/CMakeLists.txt, from the model header's PICOGPT_MODEL_OPS); the
 * prepare and eval functions of the others are then never referenced and the linker drops
 * them. Every other build registers every kernel. */
#ifndef PG_KERNELS_SELECTED
#define PG_KERNEL_ADD 1
#define PG_KERNEL_SUB 1
#define PG_KERNEL_MUL 1
#define PG_KERNEL_SQUARED_DIFFERENCE 1
#define PG_KERNEL_FULLY_CONNECTED 1
#define PG_KERNEL_BATCH_MATMUL 1
#define PG_KERNEL_SOFTMAX 1
#define PG_KERNEL_MEAN 1
#define PG_KERNEL_RSQRT 1
#define PG_KERNEL_QUANTIZE 1
#define PG_KERNEL_DEQUANTIZE 1
#define PG_KERNEL_RESHAPE 1
#define PG_KERNEL_SQUEEZE 1
#define PG_KERNEL_EXPAND_DIMS 1
#define PG_KERNEL_TRANSPOSE 1
#define PG_KERNEL_STRIDED_SLICE 1
#define PG_KERNEL_CONCATENATION 1
#define PG_KERNEL_GATHER 1
#define PG_KERNEL_SELECT_V2 1
#define PG_KERNEL_SELECT 1
#define PG_KERNEL_LESS 1
#define PG_KERNEL_LESS_EQUAL 1
#endif

static const pg_kernel kKernels[] = {
#ifdef PG_KERNEL_ADD
    {PG_OP_ADD, "ADD", pg_prepare_binary},
#endif
#ifdef PG_KERNEL_SUB
    {PG_OP_SUB, "SUB", pg_prepare_binary},
#endif
#ifdef PG_KERNEL_MUL
    {PG_OP_MUL, "MUL", pg_prepare_binary},
#endif
#ifdef PG_KERNEL_SQUARED_DIFFERENCE
    {PG_OP_SQUARED_DIFFERENCE, "SQUARED_DIFFERENCE", pg_prepare_binary},
#endif
#ifdef PG_KERNEL_FULLY_CONNECTED
    {PG_OP_FULLY_CONNECTED, "FULLY_CONNECTED", pg_prepare_fully_connected},
#endif
#ifdef PG_KERNEL_BATCH_MATMUL
    {PG_OP_BATCH_MATMUL, "BATCH_MATMUL", pg_prepare_batch_matmul},
#endif
#ifdef PG_KERNEL_SOFTMAX
    {PG_OP_SOFTMAX, "SOFTMAX", pg_prepare_softmax},
#endif
#ifdef PG_KERNEL_MEAN
    {PG_OP_MEAN, "MEAN", pg_prepare_mean},
#endif
#ifdef PG_KERNEL_RSQRT
    {PG_OP_RSQRT, "RSQRT", pg_prepare_rsqrt},
#endif
#ifdef PG_KERNEL_QUANTIZE
    {PG_OP_QUANTIZE, "QUANTIZE", pg_prepare_quantize},
#endif
#ifdef PG_KERNEL_DEQUANTIZE
    {PG_OP_DEQUANTIZE, "DEQUANTIZE", pg_prepare_dequantize},
#endif
#ifdef PG_KERNEL_RESHAPE
    {PG_OP_RESHAPE, "RESHAPE", pg_prepare_reshape},
#endif
#ifdef PG_KERNEL_SQUEEZE
    {PG_OP_SQUEEZE, "SQUEEZE", pg_prepare_reshape},
#endif
#ifdef PG_KERNEL_EXPAND_DIMS
    {PG_OP_EXPAND_DIMS, "EXPAND_DIMS", pg_prepare_reshape},
#endif
#ifdef PG_KERNEL_TRANSPOSE
    {PG_OP_TRANSPOSE, "TRANSPOSE", pg_prepare_transpose},
#endif
#ifdef PG_KERNEL_STRIDED_SLICE
    {PG_OP_STRIDED_SLICE, "STRIDED_SLICE", pg_prepare_strided_slice},
#endif
#ifdef PG_KERNEL_CONCATENATION
    {PG_OP_CONCATENATION, "CONCATENATION", pg_prepare_concatenation},
#endif
#ifdef PG_KERNEL_GATHER
    {PG_OP_GATHER, "GATHER", pg_prepare_gather},
#endif
#ifdef PG_KERNEL_SELECT_V2
    {PG_OP_SELECT_V2, "SELECT_V2", pg_prepare_select},
#endif
#ifdef PG_KERNEL_SELECT
    {PG_OP_SELECT, "SELECT", pg_prepare_select},
#endif
#ifdef PG_KERNEL_LESS
    {PG_OP_LESS, "LESS", pg_prepare_compare},
#endif
#ifdef PG_KERNEL_LESS_EQUAL
    {PG_OP_LESS_EQUAL, "LESS_EQUAL", pg_prepare_compare},
#endif
    {-1, NULL, NULL}, /* the end (and the array is never empty) */
};

const pg_kernel *pg_find_kernel(int32_t opcode) {
  for (size_t i = 0; kKernels[i].prepare != NULL; ++i) {
    if (kKernels[i].opcode == opcode) return &kKernels[i];
  }
  return NULL;
}

const char *pg_op_name(int32_t opcode) {
  const pg_kernel *k = pg_find_kernel(opcode);
  if (k != NULL) return k->name;
  switch (opcode) {
    case 32: return "CUSTOM";
    case 3: return "CONV_2D";
    case 65: return "SLICE";
    case 71: return "EQUAL";
    case 142: return "VAR_HANDLE";
    case 143: return "READ_VARIABLE";
    case 144: return "ASSIGN_VARIABLE";
    case 150: return "GELU";
    case 151: return "DYNAMIC_UPDATE_SLICE";
    default: return "unknown op";
  }
}

/* The op registry: which builtin op codes this runtime runs and the prepare
 * function of each (TFLite Micro's op resolver, fixed at compile time). */
#include <stddef.h>

#include "kernels.h"

static const pg_kernel kKernels[] = {
    {PG_OP_ADD, "ADD", pg_prepare_binary},
    {PG_OP_SUB, "SUB", pg_prepare_binary},
    {PG_OP_MUL, "MUL", pg_prepare_binary},
    {PG_OP_SQUARED_DIFFERENCE, "SQUARED_DIFFERENCE", pg_prepare_binary},
    {PG_OP_FULLY_CONNECTED, "FULLY_CONNECTED", pg_prepare_fully_connected},
    {PG_OP_BATCH_MATMUL, "BATCH_MATMUL", pg_prepare_batch_matmul},
    {PG_OP_SOFTMAX, "SOFTMAX", pg_prepare_softmax},
    {PG_OP_MEAN, "MEAN", pg_prepare_mean},
    {PG_OP_RSQRT, "RSQRT", pg_prepare_rsqrt},
    {PG_OP_QUANTIZE, "QUANTIZE", pg_prepare_quantize},
    {PG_OP_DEQUANTIZE, "DEQUANTIZE", pg_prepare_dequantize},
    {PG_OP_RESHAPE, "RESHAPE", pg_prepare_reshape},
    {PG_OP_SQUEEZE, "SQUEEZE", pg_prepare_reshape},
    {PG_OP_EXPAND_DIMS, "EXPAND_DIMS", pg_prepare_reshape},
    {PG_OP_TRANSPOSE, "TRANSPOSE", pg_prepare_transpose},
    {PG_OP_STRIDED_SLICE, "STRIDED_SLICE", pg_prepare_strided_slice},
    {PG_OP_CONCATENATION, "CONCATENATION", pg_prepare_concatenation},
    {PG_OP_GATHER, "GATHER", pg_prepare_gather},
    {PG_OP_SELECT_V2, "SELECT_V2", pg_prepare_select},
    {PG_OP_SELECT, "SELECT", pg_prepare_select},
    {PG_OP_LESS, "LESS", pg_prepare_compare},
    {PG_OP_LESS_EQUAL, "LESS_EQUAL", pg_prepare_compare},
};

const pg_kernel *pg_find_kernel(int32_t opcode) {
  for (size_t i = 0; i < sizeof kKernels / sizeof kKernels[0]; ++i) {
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

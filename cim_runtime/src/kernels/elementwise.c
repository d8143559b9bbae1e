/* Elementwise int8 ops: ADD, SUB, MUL, SQUARED_DIFFERENCE (with broadcasting),
 * RSQRT, QUANTIZE, DEQUANTIZE.
 *
 * Multipliers are derived exactly as TFLite Micro's Prepare does, including
 * its float-vs-double choices (ADD and MUL in double, SUB partly in float,
 * SQUARED_DIFFERENCE's output denominator in float). Unary int8 -> int8 ops
 * have only 256 possible inputs, so prepare tabulates them and eval is a
 * lookup: bit-identical by construction. */
#include <string.h>

#include "kernel_util.h"

/* ---- binary ops with broadcasting ------------------------------------------ */

typedef struct binary_data {
  pg_binary_params p;                /* the arithmetic (src/quant.h) */
  int32_t broadcast;                 /* 0: same shapes, flat loop */
  int32_t count;                     /* output elements */
  int32_t dims[PG_MAX_RANK];         /* output shape, extended with leading 1s */
  int32_t stride[2][PG_MAX_RANK];    /* element strides of inputs 1 and 2 (0 = broadcast) */
} binary_data;

static picogpt_status eval_binary(pg_interpreter *it, const pg_node *node) {
  const binary_data *d = (const binary_data *)node->data;
  const int8_t *in1 = (const int8_t *)pg_in_data(it, node, 0);
  const int8_t *in2 = (const int8_t *)pg_in_data(it, node, 1);
  int8_t *out = (int8_t *)pg_out_data(it, node, 0);
  if (!d->broadcast) {
    pg_binary(&d->p, in1, 1, in2, 1, out, d->count);
    return PICOGPT_OK;
  }
  /* Runs along the innermost dimension (input steps 0 or 1), odometer over the rest. */
  const int32_t inner = d->dims[PG_MAX_RANK - 1];
  const int32_t step1 = d->stride[0][PG_MAX_RANK - 1], step2 = d->stride[1][PG_MAX_RANK - 1];
  int32_t idx[PG_MAX_RANK] = {0};
  int32_t off[2] = {0, 0};
  for (int32_t i = 0; i < d->count; i += inner) {
    pg_binary(&d->p, in1 + off[0], step1, in2 + off[1], step2, out + i, inner);
    pg_index_step(idx, d->dims, PG_MAX_RANK - 2, 2, d->stride, off);
  }
  return PICOGPT_OK;
}

/* ADD and SQUARED_DIFFERENCE rescale both inputs to twice the larger input scale, in
 * double; returns that twice_max. */
static double input_multipliers_in_double(pg_binary_params *p, float s1, float s2, int *shift1,
                                          int *shift2, int *bad) {
  const double twice_max = 2.0 * (double)(s1 > s2 ? s1 : s2);
  *bad |= pg_quantize_multiplier_smaller_than_one((double)s1 / twice_max, &p->input1_multiplier,
                                                  shift1);
  *bad |= pg_quantize_multiplier_smaller_than_one((double)s2 / twice_max, &p->input2_multiplier,
                                                  shift2);
  return twice_max;
}

picogpt_status pg_prepare_binary(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 2, 2, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in1 = pg_in(it, node, 0);
  const pg_tensor *in2 = pg_in(it, node, 1);
  const pg_tensor *out = pg_out(it, node, 0);
  if ((st = pg_check_int8_quant(ctx, node, in1, "input 1")) != PICOGPT_OK) return st;
  if ((st = pg_check_int8_quant(ctx, node, in2, "input 2")) != PICOGPT_OK) return st;
  if ((st = pg_check_int8_quant(ctx, node, out, "output")) != PICOGPT_OK) return st;
  binary_data *d = (binary_data *)pg_alloc_persistent(ctx, sizeof(binary_data));
  if (d == NULL) return it->error.status;
  pg_binary_params *p = &d->p;
  p->op = node->opcode == PG_OP_ADD   ? PG_BIN_ADD
          : node->opcode == PG_OP_SUB ? PG_BIN_SUB
          : node->opcode == PG_OP_MUL ? PG_BIN_MUL
                                      : PG_BIN_SQUARED_DIFFERENCE;
  const pg_tensor *const ins[2] = {in1, in2};
  st = pg_broadcast_tensors(ctx, node, 2, ins, out, d->dims, d->stride);
  if (st != PICOGPT_OK) return st;
  d->count = out->num_elements;
  d->broadcast = !pg_same_shape(in1, in2) || !pg_same_shape(in1, out);

  int8_t activation = 0;
  const int expected_options = node->opcode == PG_OP_ADD   ? PG_OPT_ADD
                               : node->opcode == PG_OP_SUB ? PG_OPT_SUB
                               : node->opcode == PG_OP_MUL ? PG_OPT_MUL
                                                           : -1;
  if (expected_options > 0) {
    if ((st = pg_check_options_type(ctx, node, expected_options)) != PICOGPT_OK) return st;
    if (pg_fb_i8(&ctx->fb, &ctx->options, 0, 0, &activation) != 0) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_MODEL_TRUNCATED, "options unreadable");
    }
  }
  p->input1_offset = -in1->zero_point;
  p->input2_offset = -in2->zero_point;
  p->output_offset = out->zero_point;
  const float s1 = in1->scale, s2 = in2->scale, so = out->scale;
  int bad = 0;
  int shift1 = 0, shift2 = 0, shift_out = 0;
  switch (node->opcode) {
    case PG_OP_ADD: { /* add_common.cc: all in double */
      p->left_shift = 20;
      const double twice_max = input_multipliers_in_double(p, s1, s2, &shift1, &shift2, &bad);
      bad |= pg_quantize_multiplier_smaller_than_one(
          twice_max / ((1 << p->left_shift) * (double)so), &p->output_multiplier, &shift_out);
      break;
    }
    case PG_OP_SUB: { /* sub_common.cc: ratios in float, then widened */
      p->left_shift = 20;
      const float twice_max = 2 * (s1 > s2 ? s1 : s2);
      bad |= pg_quantize_multiplier_smaller_than_one((double)(s1 / twice_max),
                                                     &p->input1_multiplier, &shift1);
      bad |= pg_quantize_multiplier_smaller_than_one((double)(s2 / twice_max),
                                                     &p->input2_multiplier, &shift2);
      bad |= pg_quantize_multiplier_smaller_than_one(
          (double)(twice_max / ((float)(1 << p->left_shift) * so)), &p->output_multiplier,
          &shift_out);
      break;
    }
    case PG_OP_MUL: /* mul_common.cc: double */
      bad |= pg_quantize_multiplier((double)s1 * (double)s2 / (double)so, &p->output_multiplier,
                                    &shift_out);
      break;
    default: { /* SQUARED_DIFFERENCE: left shift 7, output denominator in float */
      p->left_shift = 7;
      const double twice_max = input_multipliers_in_double(p, s1, s2, &shift1, &shift2, &bad);
      bad |= pg_quantize_multiplier(
          (twice_max * twice_max) / (double)((float)(1 << (p->left_shift * 2)) * so),
          &p->output_multiplier, &shift_out);
      break;
    }
  }
  if (bad || shift_out < -31 || shift_out > 30) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION,
                        "scales give a multiplier TFLite cannot represent");
  }
  p->input1_shift = shift1;
  p->input2_shift = shift2;
  p->output_shift = shift_out;
  if (node->opcode == PG_OP_SQUARED_DIFFERENCE) {
    p->act_min = -128;
    p->act_max = 127;
  } else {
    st = pg_activation_range_int8(ctx, node, activation, out, &p->act_min, &p->act_max);
    if (st != PICOGPT_OK) return st;
  }
  node->data = d;
  node->eval = eval_binary;
  return PICOGPT_OK;
}

/* ---- unary int8 -> int8 by table ------------------------------------------------ */

typedef struct unary_lut_data {
  int8_t table[256];     /* output for input value (int8)i, indexed by (uint8_t)i */
  int32_t count;
  int32_t min_valid;     /* inputs below this are rejected at eval (RSQRT) */
} unary_lut_data;

static picogpt_status eval_unary_lut(pg_interpreter *it, const pg_node *node) {
  const unary_lut_data *d = (const unary_lut_data *)node->data;
  const int8_t *in = (const int8_t *)pg_in_data(it, node, 0);
  int8_t *out = (int8_t *)pg_out_data(it, node, 0);
  for (int32_t i = 0; i < d->count; ++i) {
    if (in[i] < d->min_valid) {
      return pg_fail(it, PICOGPT_ERR_EVAL, "%s (op %d): input %d is below the zero point %d "
                     "(RSQRT of a negative value)",
                     pg_op_name(node->opcode), (int)node->index, (int)in[i], (int)d->min_valid);
    }
    out[i] = d->table[(uint8_t)in[i]];
  }
  return PICOGPT_OK;
}

static picogpt_status prepare_unary_common(pg_prepare_ctx *ctx, pg_node *node,
                                           unary_lut_data **out_data) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 1, 1, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in = pg_in(it, node, 0);
  const pg_tensor *out = pg_out(it, node, 0);
  if ((st = pg_check_int8_quant(ctx, node, in, "input")) != PICOGPT_OK) return st;
  if ((st = pg_check_int8_quant(ctx, node, out, "output")) != PICOGPT_OK) return st;
  if (in->num_elements != out->num_elements) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "input and output sizes differ");
  }
  unary_lut_data *d = (unary_lut_data *)pg_alloc_persistent(ctx, sizeof(unary_lut_data));
  if (d == NULL) return it->error.status;
  d->count = in->num_elements;
  d->min_valid = -128;
  *out_data = d;
  node->data = d;
  node->eval = eval_unary_lut;
  return PICOGPT_OK;
}

picogpt_status pg_prepare_rsqrt(pg_prepare_ctx *ctx, pg_node *node) {
  unary_lut_data *d;
  picogpt_status st = prepare_unary_common(ctx, node, &d);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in = pg_in(ctx->it, node, 0);
  const pg_tensor *out = pg_out(ctx->it, node, 0);
  if (!pg_same_shape(in, out)) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "input and output shapes differ");
  }
  /* elementwise.cc SetRsqrtOutputMultiplier: sqrt and product in float. */
  int32_t multiplier;
  int shift;
  const float denominator = pg_sqrtf(in->scale) * out->scale;
  if (pg_quantize_multiplier(1. / (double)denominator, &multiplier, &shift) != 0 ||
      shift - 20 < -31 || shift - 20 > 30) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "multiplier out of range");
  }
  const int32_t kShift = 20;
  for (int v = -128; v <= 127; ++v) {
    const int32_t value = v - in->zero_point;
    int32_t result;
    if (value < 0) {
      result = 0; /* rejected at eval */
    } else if (value == 0) {
      result = 127; /* TFLM: values at the zero point give the maximum output */
    } else {
      int32_t inv_sqrt_multiplier;
      int inv_sqrt_shift;
      pg_get_inv_sqrt_quantized_multiplier_exp(value, -1, &inv_sqrt_multiplier, &inv_sqrt_shift);
      const int32_t data =
          pg_multiply_by_quantized_multiplier(1, inv_sqrt_multiplier, inv_sqrt_shift + kShift);
      result = pg_multiply_by_quantized_multiplier(data, multiplier, shift - kShift) +
               out->zero_point;
      result = pg_clamp(result, -128, 127);
    }
    d->table[(uint8_t)(int8_t)v] = (int8_t)result;
  }
  d->min_valid = in->zero_point;
  return PICOGPT_OK;
}

/* ---- QUANTIZE / DEQUANTIZE ------------------------------------------------------- */

typedef struct float_quant_data {
  int32_t count;
  int32_t zero_point;
  float scale;        /* QUANTIZE: float(double(scale)) divisor */
  double dscale;      /* DEQUANTIZE: multiplier in double */
} float_quant_data;

static picogpt_status eval_quantize_float(pg_interpreter *it, const pg_node *node) {
  const float_quant_data *d = (const float_quant_data *)node->data;
  const float *in = (const float *)pg_in_data(it, node, 0);
  int8_t *out = (int8_t *)pg_out_data(it, node, 0);
  for (int32_t i = 0; i < d->count; ++i) {
    /* AffineQuantize: round(val / scale) in float, + zero point, clamp. */
    const float q = pg_roundf(in[i] / d->scale);
    int32_t v;
    if (q != q) {
      v = d->zero_point; /* NaN: TFLM's cast is undefined; pick the zero point */
    } else if (q > 1.0e6f) {
      v = 127;
    } else if (q < -1.0e6f) {
      v = -128;
    } else {
      v = (int32_t)q + d->zero_point;
    }
    out[i] = (int8_t)pg_clamp(v, -128, 127);
  }
  return PICOGPT_OK;
}

picogpt_status pg_prepare_quantize(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 1, 1, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in = pg_in(it, node, 0);
  const pg_tensor *out = pg_out(it, node, 0);
  if (in->type == PG_FLOAT32) {
    if ((st = pg_check_int8_quant(ctx, node, out, "output")) != PICOGPT_OK) return st;
    if (in->num_elements != out->num_elements) {
      return pg_node_fail(ctx, node, PICOGPT_ERR_SHAPE, "input and output sizes differ");
    }
    float_quant_data *d = (float_quant_data *)pg_alloc_persistent(ctx, sizeof(float_quant_data));
    if (d == NULL) return it->error.status;
    d->count = in->num_elements;
    d->zero_point = out->zero_point;
    d->scale = (float)(double)out->scale;
    node->data = d;
    node->eval = eval_quantize_float;
    return PICOGPT_OK;
  }
  /* int8 -> int8 requantization (reference_ops::Requantize). */
  unary_lut_data *d;
  st = prepare_unary_common(ctx, node, &d);
  if (st != PICOGPT_OK) return st;
  int32_t multiplier;
  int shift;
  if (pg_quantize_multiplier((double)in->scale / (double)out->scale, &multiplier, &shift) != 0 ||
      shift < -31 || shift > 30) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_QUANTIZATION, "multiplier out of range");
  }
  for (int v = -128; v <= 127; ++v) {
    const int32_t r =
        pg_multiply_by_quantized_multiplier(v - in->zero_point, multiplier, shift) +
        out->zero_point;
    d->table[(uint8_t)(int8_t)v] = (int8_t)pg_clamp(r, -128, 127);
  }
  return PICOGPT_OK;
}

static picogpt_status eval_dequantize(pg_interpreter *it, const pg_node *node) {
  const float_quant_data *d = (const float_quant_data *)node->data;
  const int8_t *in = (const int8_t *)pg_in_data(it, node, 0);
  float *out = (float *)pg_out_data(it, node, 0);
  for (int32_t i = 0; i < d->count; ++i) out[i] = (float)(d->dscale * (in[i] - d->zero_point));
  return PICOGPT_OK;
}

picogpt_status pg_prepare_dequantize(pg_prepare_ctx *ctx, pg_node *node) {
  pg_interpreter *it = ctx->it;
  picogpt_status st = pg_check_io(ctx, node, 1, 1, 1);
  if (st != PICOGPT_OK) return st;
  const pg_tensor *in = pg_in(it, node, 0);
  const pg_tensor *out = pg_out(it, node, 0);
  if ((st = pg_check_int8_quant(ctx, node, in, "input")) != PICOGPT_OK) return st;
  if (out->type != PG_FLOAT32 || out->num_elements != in->num_elements) {
    return pg_node_fail(ctx, node, PICOGPT_ERR_UNSUPPORTED_TYPE,
                        "output must be FLOAT32 of the input's size");
  }
  float_quant_data *d = (float_quant_data *)pg_alloc_persistent(ctx, sizeof(float_quant_data));
  if (d == NULL) return it->error.status;
  d->count = in->num_elements;
  d->zero_point = in->zero_point;
  d->dscale = (double)in->scale;
  node->data = d;
  node->eval = eval_dequantize;
  return PICOGPT_OK;
}

/* The CIM mapping report and the per-token cost of a run, as text (picogpt_generate
 * --cim_report). The numbers come from the runtime (picogpt_cim_info, picogpt_cim_layer_info,
 * picogpt_cim_cost_of, picogpt_get_stats); this file only formats them. */
#ifndef PICOGPT_CIM_REPORT_H
#define PICOGPT_CIM_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "pico_gpt/runtime.h"

/* The warning for layers that did not fit the device (cim_cpu_fallback); nothing if all fit. */
void cim_report_warn_fallback(FILE *out, const picogpt_runtime *rt);

/* The mapping per layer and in total, the share of MACs on the accelerator (static, and
 * measured in the run behind rt's stats), and the cost per token. cpu_instructions: the RISC-V
 * core's instructions per token outside the accelerator as the firmware measures them
 * (its cpu_instructions_per_token); 0: not known, so no tokens/s or uJ/token. */
void cim_report_print(FILE *out, const picogpt_runtime *rt, uint64_t cpu_instructions);

#endif /* PICOGPT_CIM_REPORT_H */

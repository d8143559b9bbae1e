/* The CIM mapping report; see cim_report.h. */
#include "cim_report.h"

static double percent(uint64_t part, uint64_t whole) {
  return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

void cim_report_warn_fallback(FILE *out, const picogpt_runtime *rt) {
  const picogpt_cim_mapping *map = picogpt_cim_info(rt);
  if (map == NULL || map->layers_on_cpu == 0) return;
  fprintf(out,
          "warning: %d of %d FULLY_CONNECTED layers do not fit the %d CIM macros of %d x %d "
          "(the model needs %d) and run on the CPU\n",
          (int)map->layers_on_cpu, (int)map->num_layers, (int)map->device.num_macros,
          (int)map->device.rows, (int)map->device.cols, (int)map->macros_needed);
}

void cim_report_print(FILE *out, const picogpt_runtime *rt, uint64_t cpu_instructions) {
  const picogpt_cim_mapping *map = picogpt_cim_info(rt);
  const picogpt_stats *stats = picogpt_get_stats(rt);
  if (map == NULL || stats == NULL) return;
  const cim_hal_device *dev = &map->device;
  const uint64_t cells = (uint64_t)map->macros_used * (uint64_t)dev->rows * (uint64_t)dev->cols;
  fprintf(out,
          "CIM mapping: %d of %d macros of %d x %d (%d-bit inputs, %d-bit weights), "
          "utilisation %.1f %%\n",
          (int)map->macros_used, (int)dev->num_macros, (int)dev->rows, (int)dev->cols,
          (int)dev->input_bits, (int)dev->weight_bits, percent(map->weights_on_macros, cells));
  fprintf(out, "  %4s  %-13s %-12s %-9s %11s  %s\n", "op", "weights N x K", "tiles c x r",
          "macros", "MACs/step", "utilisation");
  picogpt_cim_layer layer;
  for (int32_t i = 0; picogpt_cim_layer_info(rt, i, &layer) == PICOGPT_OK; ++i) {
    const int32_t tiles = layer.row_tiles * layer.col_tiles;
    char where[24];
    if (layer.first_tile < 0) {
      snprintf(where, sizeof where, "CPU");
    } else if (tiles == 1) {
      snprintf(where, sizeof where, "%d", (int)layer.first_tile);
    } else {
      snprintf(where, sizeof where, "%d-%d", (int)layer.first_tile,
               (int)(layer.first_tile + tiles - 1));
    }
    const uint64_t weights = (uint64_t)layer.out_features * (uint64_t)layer.in_features;
    const uint64_t held = (uint64_t)tiles * (uint64_t)dev->rows * (uint64_t)dev->cols;
    fprintf(out, "  %4d  %4d x %-6d %4d x %-5d %-9s %11llu  %.1f %%\n", (int)layer.op_index,
            (int)layer.out_features, (int)layer.in_features, (int)layer.col_tiles,
            (int)layer.row_tiles, where,
            (unsigned long long)(weights * (uint64_t)layer.products), percent(weights, held));
  }
  const uint64_t fc_macs = map->macs_on_macros + map->macs_fc_on_cpu;
  fprintf(out,
          "  FULLY_CONNECTED: %d layers, %d tiles; %llu MACs/step on the macros (%.1f %%), %llu "
          "on the CPU\n",
          (int)map->num_layers, (int)map->macros_needed,
          (unsigned long long)map->macs_on_macros, percent(map->macs_on_macros, fc_macs),
          (unsigned long long)map->macs_fc_on_cpu);
  const uint64_t steps = stats->steps ? stats->steps : 1;
  const uint64_t cim_run = stats->cim.macs / steps, cpu_run = stats->cpu_macs / steps;
  fprintf(out,
          "  BATCH_MATMUL (attention, CPU): %llu MACs/step over a full context\n"
          "  this run: %llu MACs/step on the macros, %llu on the CPU (attention over the live "
          "positions, and layers that did not fit)\n",
          (unsigned long long)map->macs_batch_matmul, (unsigned long long)cim_run,
          (unsigned long long)cpu_run);
  fprintf(out,
          "  MACs on the accelerator: %.1f %% over a full context, %.1f %% in this run "
          "(%llu steps)\n",
          percent(map->macs_on_macros,
                  map->macs_on_macros + map->macs_fc_on_cpu + map->macs_batch_matmul),
          percent(cim_run, cim_run + cpu_run), (unsigned long long)stats->steps);

  picogpt_cim_cost cost;
  if (picogpt_cim_cost_of(rt, NULL, cpu_instructions, &cost) != PICOGPT_OK) return;
  fprintf(out,
          "cost per token (PICOGPT_CIM_COST_DEFAULT, %.0f MHz): accelerator %llu cycles, %llu ADC "
          "conversions, %.1f nJ; programming once at init: %llu cycles, %.1f nJ\n",
          (double)cost.clock_hz / 1e6, (unsigned long long)cost.cim_cycles,
          (unsigned long long)cost.conversions, (double)cost.cim_energy_fj / 1e6,
          (unsigned long long)cost.program_cycles, (double)cost.program_energy_fj / 1e6);
  if (cpu_instructions == 0) {
    fprintf(out,
            "  CPU: pass --cim_cpu_instructions N (the firmware's cpu_instructions_per_token, "
            "measured on rv32imac) for tokens/s and uJ/token\n");
    return;
  }
  fprintf(out,
          "  CPU: %llu instructions/token outside the accelerator, %.1f nJ; total %llu cycles: "
          "%.1f tokens/s, %.3f uJ/token\n",
          (unsigned long long)cost.cpu_instructions, (double)cost.cpu_energy_fj / 1e6,
          (unsigned long long)cost.cycles, (double)cost.tokens_per_s_milli / 1e3,
          (double)cost.energy_fj / 1e9);
}

/* Command-line options of the host CLI (picogpt_generate) and the firmware
 * (picogpt_firmware): one strict parser, compiled into both, so they accept
 * and reject the same values the same way.
 *
 * Strict means: a number is digits only (a decimal may have one '.'), with no
 * sign unless the range allows negatives, no exponent, no spaces and nothing
 * after it, and it must lie in the option's range; "nan", "inf", "1e3",
 * "10x" and "" are errors that name the option and the allowed range. No heap,
 * no stdio, no strtod (the firmware's flash budget): errors come back as text. */
#ifndef PICOGPT_CLI_OPTIONS_H
#define PICOGPT_CLI_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

typedef enum cli_kind {
  CLI_TEXT,    /* any word: const char ** */
  CLI_INT,     /* decimal integer in [min, max]: int64_t * */
  CLI_UINT64,  /* decimal integer in [0, 2^64 - 1]: uint64_t * */
  CLI_DECIMAL, /* plain decimal number ("0.8", "1", ".25") in [0, max]: double * */
  CLI_FLAG,    /* no value; sets an int * to 1 */
  CLI_CHOICE,  /* one of the names in choices: its index, int64_t * */
} cli_kind;

typedef struct cli_option {
  const char *name;  /* "--length" */
  cli_kind kind;
  void *value;       /* where the parsed value goes; its type follows the kind */
  int64_t min, max;  /* CLI_INT: the range; CLI_DECIMAL: max (min is 0); otherwise unused */
  const char *const *choices; /* CLI_CHOICE: the names, NULL-terminated; otherwise unused */
} cli_option;

/* The names of --window, in the order of picogpt_window_policy (pico_gpt/runtime.h). */
extern const char *const cli_window_policies[];

/* Parses argv[first..argc): each option of the table followed by its value (flags take
 * none), and up to max_positional words that do not start with '-' into positional[]
 * (*n_positional of them). The same option twice: the last one counts. Returns 0, or -1
 * with a one-line message in error, e.g. "bad option '--top_k -3': --top_k needs an
 * integer in [0, 1024]". */
int cli_parse(const cli_option *options, int n_options, int argc, char *const *argv, int first,
              const char **positional, int max_positional, int *n_positional, char *error,
              size_t error_size);

/* The double nearest to a plain decimal, bit-identical to strtod's for up to 15
 * significant digits and 22 fraction digits (what it accepts). 0 or -1. */
int cli_parse_decimal(const char *text, double *value);

/* The decimal text of v, NUL-terminated: for the messages here and the firmware's stats line
 * (its integer-only printf has no 64-bit conversion). */
#define CLI_U64_TEXT_SIZE 21
void cli_format_u64(uint64_t v, char text[CLI_U64_TEXT_SIZE]);

#endif /* PICOGPT_CLI_OPTIONS_H */

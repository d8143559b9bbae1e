/* The strict option parser shared by the host CLI and the firmware (see cli_options.h). */
#include "cli_options.h"

#include <string.h>

#include "pico_gpt/runtime.h"

const char *const cli_window_policies[] = {"shift", "exact", NULL};
_Static_assert(PICOGPT_WINDOW_SHIFT == 0 && PICOGPT_WINDOW_EXACT == 1,
               "cli_window_policies lists the policies in the order of their values");

/* ---- the message buffer (no stdio: the firmware has integer-only printf) --------------- */

typedef struct message {
  char *p;
  size_t left; /* room for characters, excluding the final NUL */
} message;

static void put_text(message *m, const char *s) {
  for (; *s && m->left > 0; ++s, --m->left) *m->p++ = *s;
  *m->p = '\0';
}

void cli_format_u64(uint64_t v, char text[CLI_U64_TEXT_SIZE]) {
  char digits[CLI_U64_TEXT_SIZE];
  int n = 0;
  do {
    digits[n++] = (char)('0' + (int)(v % 10u));
    v /= 10u;
  } while (v != 0);
  int k = 0;
  while (n > 0) text[k++] = digits[--n];
  text[k] = '\0';
}

static void put_u64(message *m, uint64_t v) {
  char text[CLI_U64_TEXT_SIZE];
  cli_format_u64(v, text);
  put_text(m, text);
}

static void put_i64(message *m, int64_t v) {
  if (v < 0) {
    put_text(m, "-");
    put_u64(m, (uint64_t)0 - (uint64_t)v);
  } else {
    put_u64(m, (uint64_t)v);
  }
}

/* What a value of this option must look like: "an integer in [0, 1024]". */
static void put_expected(message *m, const cli_option *o) {
  switch (o->kind) {
    case CLI_INT:
      put_text(m, "an integer in [");
      put_i64(m, o->min);
      put_text(m, ", ");
      put_i64(m, o->max);
      put_text(m, "]");
      break;
    case CLI_UINT64:
      put_text(m, "an integer in [0, 18446744073709551615]");
      break;
    case CLI_DECIMAL:
      put_text(m, "a decimal number in [0, ");
      put_i64(m, o->max);
      put_text(m, "] (digits with at most one '.', e.g. 0.8)");
      break;
    case CLI_CHOICE:
      put_text(m, "one of ");
      for (int i = 0; o->choices[i] != NULL; ++i) {
        if (i > 0) put_text(m, ", ");
        put_text(m, o->choices[i]);
      }
      break;
    default:
      put_text(m, "a value");
      break;
  }
}

/* ---- numbers --------------------------------------------------------------------------- */

static int parse_u64(const char *s, uint64_t *out) {
  if (*s == '\0') return -1;
  uint64_t v = 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9') return -1;
    const unsigned d = (unsigned)(*s - '0');
    if (v > UINT64_MAX / 10u || (v == UINT64_MAX / 10u && d > UINT64_MAX % 10u)) return -1;
    v = v * 10u + d;
  }
  *out = v;
  return 0;
}

static int parse_int(const char *s, int64_t min, int64_t max, int64_t *out) {
  const int negative = *s == '-';
  uint64_t magnitude;
  if (parse_u64(s + negative, &magnitude) != 0) return -1;
  /* In range of [min, max] (both int64) without overflow: compare magnitudes. */
  if (negative) {
    if (min >= 0 || magnitude > (uint64_t)0 - (uint64_t)min) return -1;
    *out = (int64_t)((uint64_t)0 - magnitude);
  } else {
    if (max < 0 || magnitude > (uint64_t)max) return -1;
    *out = (int64_t)magnitude;
  }
  return *out >= min && *out <= max ? 0 : -1;
}

/* The digits form an integer below 2^53 and 10^k (k <= 22) is exact in double, so their
 * quotient is one correctly rounded IEEE division: the value strtod gives (Clinger's fast
 * path), without linking strtod (~3 KB of the firmware's flash). */
int cli_parse_decimal(const char *s, double *out) {
  uint64_t mantissa = 0;
  int digits = 0, any = 0, fraction = -1; /* fraction < 0: no decimal point seen yet */
  for (; *s; ++s) {
    if (*s == '.' && fraction < 0) {
      fraction = 0;
      continue;
    }
    if (*s < '0' || *s > '9') return -1;
    any = 1;
    if (fraction >= 0) fraction++;
    if (mantissa == 0 && *s == '0') continue; /* leading zeros are not significant */
    if (++digits > 15) return -1;
    mantissa = mantissa * 10u + (uint64_t)(*s - '0');
  }
  if (!any || fraction > 22) return -1;
  double scale = 1.0;
  for (int i = 0; i < fraction; ++i) scale *= 10.0; /* exact up to 1e22 */
  /* mantissa < 2^53: the conversion is exact (signed: one libgcc routine fewer on rv32). */
  *out = (double)(int64_t)mantissa / scale;
  return 0;
}

/* ---- options --------------------------------------------------------------------------- */

static int parse_value(const cli_option *o, const char *text) {
  switch (o->kind) {
    case CLI_TEXT:
      *(const char **)o->value = text;
      return 0;
    case CLI_INT:
      return parse_int(text, o->min, o->max, (int64_t *)o->value);
    case CLI_UINT64:
      return parse_u64(text, (uint64_t *)o->value);
    case CLI_DECIMAL: {
      double v;
      if (cli_parse_decimal(text, &v) != 0 || v > (double)o->max) return -1;
      *(double *)o->value = v;
      return 0;
    }
    case CLI_CHOICE:
      for (int64_t i = 0; o->choices[i] != NULL; ++i) {
        if (strcmp(text, o->choices[i]) == 0) {
          *(int64_t *)o->value = i;
          return 0;
        }
      }
      return -1;
    default:
      return -1;
  }
}

/* "--prompt TEXT, --length N, ..., --quiet, --window shift|exact" */
static void put_option_list(message *m, const cli_option *options, int n_options) {
  for (int i = 0; i < n_options; ++i) {
    static const char *const placeholder[] = {" TEXT", " N", " N", " X", "", " "};
    if (i > 0) put_text(m, ", ");
    put_text(m, options[i].name);
    put_text(m, placeholder[options[i].kind]);
    for (int k = 0; options[i].kind == CLI_CHOICE && options[i].choices[k] != NULL; ++k) {
      if (k > 0) put_text(m, "|");
      put_text(m, options[i].choices[k]);
    }
  }
}

int cli_parse(const cli_option *options, int n_options, int argc, char *const *argv, int first,
              const char **positional, int max_positional, int *n_positional, char *error,
              size_t error_size) {
  message m = {error, error_size > 0 ? error_size - 1 : 0};
  if (error_size > 0) error[0] = '\0';
  *n_positional = 0;
  for (int i = first; i < argc; ++i) {
    const char *word = argv[i];
    if (word[0] != '-') {
      if (*n_positional >= max_positional) {
        put_text(&m, "unexpected argument '");
        put_text(&m, word);
        put_text(&m, max_positional == 0 ? "': every word must be an option or its value"
                                         : "': only one model file can be given");
        return -1;
      }
      positional[(*n_positional)++] = word;
      continue;
    }
    const cli_option *o = NULL;
    for (int k = 0; k < n_options && o == NULL; ++k) {
      if (strcmp(word, options[k].name) == 0) o = &options[k];
    }
    if (o == NULL) {
      put_text(&m, "bad option '");
      put_text(&m, word);
      put_text(&m, "': unknown; the options are ");
      put_option_list(&m, options, n_options);
      return -1;
    }
    if (o->kind == CLI_FLAG) {
      *(int *)o->value = 1;
      continue;
    }
    if (i + 1 >= argc) {
      put_text(&m, "option ");
      put_text(&m, word);
      put_text(&m, " needs a value");
      return -1;
    }
    const char *text = argv[++i];
    if (parse_value(o, text) != 0) {
      put_text(&m, "bad option '");
      put_text(&m, word);
      put_text(&m, " ");
      put_text(&m, text);
      put_text(&m, "': ");
      put_text(&m, word);
      put_text(&m, " needs ");
      put_expected(&m, o);
      return -1;
    }
  }
  return 0;
}

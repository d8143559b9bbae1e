/* The apps' input parsers: the option parser the host CLI and the firmware share
 * (apps/cli_options.c) and the metadata vocabulary reader of the host CLI
 * (apps/metadata_vocab.c). Every accepted form and every error path, with the message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_options.h"
#include "metadata_vocab.h"
#include "test_util.h"

/* ---- options ----------------------------------------------------------------------------- */

typedef struct values {
  const char *prompt;
  int64_t length;
  double temperature;
  int64_t top_k;
  uint64_t seed;
  int quiet;
  int64_t window;
} values;

/* Parses the words of line (split at spaces) with the host CLI's table; returns cli_parse's
 * result, the message in error. */
static int parse(const char *line, values *v, const char **positional, int *n_positional,
                 char *error, size_t error_size) {
  static char buf[512];
  static char *words[32];
  int n = 0;
  snprintf(buf, sizeof buf, "%s", line);
  for (char *w = strtok(buf, " "); w != NULL && n < 32; w = strtok(NULL, " ")) words[n++] = w;
  *v = (values){"\n", 200, 0.8, 0, 1337, 0, 0};
  const cli_option table[] = {
      {"--prompt", CLI_TEXT, &v->prompt, 0, 0, NULL},
      {"--length", CLI_INT, &v->length, 0, 1000000, NULL},
      {"--temperature", CLI_DECIMAL, &v->temperature, 0, 100, NULL},
      {"--top_k", CLI_INT, &v->top_k, 0, 1024, NULL},
      {"--seed", CLI_UINT64, &v->seed, 0, 0, NULL},
      {"--shift", CLI_INT, &v->top_k, -31, 30, NULL}, /* a range with negatives */
      {"--quiet", CLI_FLAG, &v->quiet, 0, 0, NULL},
      {"--window", CLI_CHOICE, &v->window, 0, 0, cli_window_policies},
  };
  return cli_parse(table, (int)(sizeof table / sizeof table[0]), n, words, 0, positional, 1,
                   n_positional, error, error_size);
}

static void expect_ok(const char *line, values *v) {
  char error[256];
  const char *positional = NULL;
  int n_positional;
  const int rc = parse(line, v, &positional, &n_positional, error, sizeof error);
  CHECK(rc == 0, "'%s' should parse, got: %s", line, error);
}

static void expect_error(const char *line, const char *message) {
  char error[256];
  values v;
  const char *positional = NULL;
  int n_positional;
  const int rc = parse(line, &v, &positional, &n_positional, error, sizeof error);
  CHECK(rc == -1 && strstr(error, message) != NULL,
        "'%s': expected an error with '%s', got %d '%s'", line, message, rc, error);
}

static void test_options(void) {
  values v;
  expect_ok("model.tflite --prompt ROMEO: --length 0 --temperature 0 --top_k 1024 --seed 0", &v);
  CHECK(strcmp(v.prompt, "ROMEO:") == 0 && v.length == 0 && v.temperature == 0.0 &&
            v.top_k == 1024 && v.seed == 0,
        "values of the first line");
  expect_ok("--length 1000000 --seed 18446744073709551615 --temperature 100 --quiet", &v);
  CHECK(v.length == 1000000 && v.seed == UINT64_MAX && v.temperature == 100.0 && v.quiet == 1,
        "upper bounds");
  expect_ok("--shift -31 --shift 30", &v);
  CHECK(v.top_k == 30, "the last of a repeated option counts");
  expect_ok("--shift -31", &v);
  CHECK(v.top_k == -31, "negative in range");
  expect_ok("--length 007", &v);
  CHECK(v.length == 7, "leading zeros");
  expect_ok("--window exact", &v);
  CHECK(v.window == 1, "a choice gives its index");
  expect_ok("--window exact --window shift", &v);
  CHECK(v.window == 0, "the last choice counts");

  /* Each message names the option, the value and the allowed range. */
  expect_error("--temperature abc",
               "'--temperature abc': --temperature needs a decimal number in [0, 100]");
  expect_error("--temperature nan", "--temperature needs a decimal");
  expect_error("--temperature inf", "--temperature needs a decimal");
  expect_error("--temperature -1", "--temperature needs a decimal");
  expect_error("--temperature 1e3", "--temperature needs a decimal");
  expect_error("--temperature 100.5", "--temperature needs a decimal");
  expect_error("--temperature .", "--temperature needs a decimal");
  /* 16 significant digits: more than the exact fast path takes. */
  expect_error("--temperature 0.1234567890123456", "--temperature needs a decimal");
  expect_error("--length abc", "'--length abc': --length needs an integer in [0, 1000000]");
  expect_error("--length 10x", "'--length 10x': --length needs an integer in [0, 1000000]");
  expect_error("--length 1000001", "--length needs an integer in [0, 1000000]");
  expect_error("--length +5", "--length needs an integer");
  expect_error("--length -0", "--length needs an integer");
  expect_error("--top_k -3", "'--top_k -3': --top_k needs an integer in [0, 1024]");
  expect_error("--top_k 1025", "--top_k needs an integer in [0, 1024]");
  expect_error("--shift -32", "--shift needs an integer in [-31, 30]");
  expect_error("--shift 99999999999999999999", "--shift needs an integer in [-31, 30]");
  expect_error("--seed -1", "--seed needs an integer in [0, 18446744073709551615]");
  expect_error("--seed 18446744073709551616",
               "--seed needs an integer in [0, 18446744073709551615]");
  expect_error("--seed 1.5", "--seed needs an integer");
  expect_error("--bogus 1",
               "bad option '--bogus': unknown; the options are --prompt TEXT, --length N");
  expect_error("-x", "bad option '-x': unknown");
  expect_error("--bogus 1", "--quiet, --window shift|exact");
  expect_error("--window slide", "bad option '--window slide': --window needs one of shift, exact");
  expect_error("--window Shift", "--window needs one of shift, exact");
  expect_error("--window", "option --window needs a value");
  expect_error("--seed", "option --seed needs a value");
  expect_error("a.tflite b.tflite", "unexpected argument 'b.tflite'");

  /* Decimals are the doubles strtod gives. */
  const char *decimals[] = {"0.8", "1", ".25", "0.1", "1.0", "99.99", "0.000001",
                            "3.14159265358979", "0.7", "2.5", "00.30"};
  for (size_t i = 0; i < sizeof decimals / sizeof decimals[0]; ++i) {
    double got = -1.0;
    CHECK(cli_parse_decimal(decimals[i], &got) == 0 && got == strtod(decimals[i], NULL),
          "decimal %s: %.17g, strtod %.17g", decimals[i], got, strtod(decimals[i], NULL));
  }
}

/* ---- metadata vocabulary ----------------------------------------------------------------- */

static int read_vocab(const char *json, metadata_vocab *v, char *error, size_t error_size) {
  return metadata_vocab_read((const uint8_t *)json, strlen(json), v, error, error_size);
}

static void expect_vocab_error(const char *json, const char *message) {
  static metadata_vocab v;
  char error[256];
  const int rc = read_vocab(json, &v, error, sizeof error);
  CHECK(rc == -1 && strstr(error, message) != NULL, "%s: expected '%s', got %d '%s'", json,
        message, rc, error);
}

static void test_metadata_vocab(void) {
  static metadata_vocab v;
  char error[256];
  const char *good =
      " {\"config\": {\"n_layer\": 3, \"scale\": -1.5e-3, \"ok\": [true, false, null]},"
      " \"itos\": [\"\\n\", \" \", \"a\", \"\\u00e9\", \"\\ud83d\\ude00\", \"\\\"\\\\\\/\", "
      "\"\xc3\xa9\", \"ab\"], \"kind\": \"step\", \"nested\": [[{}], []]} ";
  CHECK(read_vocab(good, &v, error, sizeof error) == 0, "a valid vocabulary: %s", error);
  const char *const want[] = {"\n", " ", "a", "\xc3\xa9", "\xf0\x9f\x98\x80",
                              "\"\\/", "\xc3\xa9", "ab"};
  CHECK(v.vocab.size == 8, "8 tokens, got %d", (int)v.vocab.size);
  for (int t = 0; t < 8 && t < v.vocab.size; ++t) {
    const size_t len = (size_t)(v.vocab.offsets[t + 1] - v.vocab.offsets[t]);
    CHECK(len == strlen(want[t]) && memcmp(v.vocab.bytes + v.vocab.offsets[t], want[t], len) == 0,
          "token %d", t);
  }
  CHECK(read_vocab("{\"\\u0069tos\": [\"x\"]}", &v, error, sizeof error) == 0 && v.vocab.size == 1,
        "an escaped key is the same key: %s", error);

  expect_vocab_error("", "must be a JSON object");
  expect_vocab_error("[\"itos\"]", "must be a JSON object");
  expect_vocab_error("{\"kind\": \"step\"}", "no \"itos\" member");
  expect_vocab_error("{\"itos\": []}", "\"itos\" is empty");
  expect_vocab_error("{\"itos\": \"abc\"}", "\"itos\" must be an array of strings");
  expect_vocab_error("{\"itos\": [\"a\", 1]}", "\"itos\" must hold strings only");
  expect_vocab_error("{\"itos\": [\"a\"], \"itos\": [\"b\"]}", "a second \"itos\" member");
  expect_vocab_error("{\"itos\": [\"a\"]", "expected ',' or '}'");
  expect_vocab_error("{\"itos\": [\"a\" \"b\"]}", "expected ',' or ']'");
  expect_vocab_error("{\"itos\": [\"a]}", "unterminated string");
  expect_vocab_error("{\"itos\": [\"a\"]} x", "text after the JSON object");
  expect_vocab_error("{\"itos\" [\"a\"]}", "expected ':'");
  expect_vocab_error("{\"itos\": [\"\\x\"]}", "unknown escape");
  expect_vocab_error("{\"itos\": [\"\\u12\"]}", "four hex digits");
  expect_vocab_error("{\"itos\": [\"\\udc00\"]}", "lone low surrogate");
  expect_vocab_error("{\"itos\": [\"\\ud800x\"]}", "high surrogate without a low one");
  expect_vocab_error("{\"itos\": [\"\\ud800\\u0041\"]}", "bad low surrogate");
  expect_vocab_error("{\"itos\": [\"\\u0000\"]}", "NUL");
  expect_vocab_error("{\"itos\": [\"a\tb\"]}", "control character");
  expect_vocab_error("{\"itos\": [\"\xc3\"]}", "malformed UTF-8");
  expect_vocab_error("{\"itos\": [\"\xc0\xaf\"]}", "malformed UTF-8"); /* overlong */
  expect_vocab_error("{\"itos\": [\"\xed\xa0\x80\"]}", "malformed UTF-8"); /* surrogate */
  expect_vocab_error("{\"x\": tru, \"itos\": [\"a\"]}", "expected a value");
  expect_vocab_error("{\"x\": 01, \"itos\": [\"a\"]}", "expected ',' or '}'");
  expect_vocab_error("{\"x\": 1., \"itos\": [\"a\"]}", "digits must follow '.'");
  expect_vocab_error("{\"x\": 1e, \"itos\": [\"a\"]}", "digits must follow the exponent");
  expect_vocab_error("{\"x\": -, \"itos\": [\"a\"]}", "expected a value");

  /* Limits: nesting depth, token count, text bytes. */
  char deep[200] = "{\"x\": ";
  for (int i = 0; i < 40; ++i) strcat(deep, "[");
  expect_vocab_error(deep, "nested deeper than 32 levels");
  static char big[32 * 1024];
  strcpy(big, "{\"itos\": [");
  for (int i = 0; i <= PICOGPT_MAX_VOCAB; ++i) strcat(big, i ? ",\"a\"" : "\"a\"");
  strcat(big, "]}");
  expect_vocab_error(big, "more tokens than the runtime's PICOGPT_MAX_VOCAB");
  static char long_text[80 * 1024];
  strcpy(long_text, "{\"itos\": [\"");
  memset(long_text + strlen(long_text), 'a', 70000);
  strcat(long_text, "\"]}");
  expect_vocab_error(long_text, "longer than 65535 bytes");
}

int main(void) {
  test_options();
  test_metadata_vocab();
  return test_summary();
}

/* A strict JSON reader for the "itos" vocabulary of the exporter's metadata (see
 * metadata_vocab.h): recursive descent over RFC 8259, skipping every member but "itos". */
#include "metadata_vocab.h"

#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 32 /* nesting of objects and arrays the reader follows */

typedef struct reader {
  const uint8_t *json;
  size_t size;
  size_t pos;
  metadata_vocab *out;  /* NULL while skipping */
  int found_itos;
  char *error;
  size_t error_size;
} reader;

static int fail(reader *r, const char *what) {
  snprintf(r->error, r->error_size, "metadata JSON: %s at byte %zu of %zu", what, r->pos,
           r->size);
  return -1;
}

static void skip_space(reader *r) {
  while (r->pos < r->size && (r->json[r->pos] == ' ' || r->json[r->pos] == '\t' ||
                              r->json[r->pos] == '\n' || r->json[r->pos] == '\r')) {
    ++r->pos;
  }
}

static int peek(const reader *r) { return r->pos < r->size ? r->json[r->pos] : -1; }

static int expect(reader *r, char c, const char *what) {
  skip_space(r);
  if (peek(r) != (unsigned char)c) return fail(r, what);
  ++r->pos;
  return 0;
}

/* ---- strings --------------------------------------------------------------------------- */

/* Appends code point cp as UTF-8 to buf (room for 4 bytes). */
static size_t put_utf8(uint8_t *buf, uint32_t cp) {
  if (cp < 0x80) {
    buf[0] = (uint8_t)cp;
    return 1;
  }
  if (cp < 0x800) {
    buf[0] = (uint8_t)(0xC0 | (cp >> 6));
    buf[1] = (uint8_t)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    buf[0] = (uint8_t)(0xE0 | (cp >> 12));
    buf[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    buf[2] = (uint8_t)(0x80 | (cp & 0x3F));
    return 3;
  }
  buf[0] = (uint8_t)(0xF0 | (cp >> 18));
  buf[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
  buf[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
  buf[3] = (uint8_t)(0x80 | (cp & 0x3F));
  return 4;
}

static int hex4(reader *r, uint32_t *v) {
  *v = 0;
  for (int i = 0; i < 4; ++i, ++r->pos) {
    const int c = peek(r);
    const int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
    if (d < 0) return fail(r, "\\u needs four hex digits");
    *v = *v * 16u + (uint32_t)d;
  }
  return 0;
}

/* Length of the well-formed UTF-8 sequence at the reader (0 if malformed). */
static size_t utf8_length(const reader *r) {
  const uint8_t *p = r->json + r->pos;
  const size_t left = r->size - r->pos;
  size_t n;
  uint32_t min;
  if (p[0] < 0x80) return 1;
  if ((p[0] & 0xE0) == 0xC0) n = 2, min = 0x80;
  else if ((p[0] & 0xF0) == 0xE0) n = 3, min = 0x800;
  else if ((p[0] & 0xF8) == 0xF0) n = 4, min = 0x10000;
  else return 0;
  if (left < n) return 0;
  uint32_t cp = p[0] & (0x7Fu >> n);
  for (size_t i = 1; i < n; ++i) {
    if ((p[i] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0; /* overlong etc. */
  return n;
}

/* What read_string keeps of a string's text. */
typedef enum keep {
  KEEP_NOTHING,
  KEEP_PREFIX, /* an object key: the first cap bytes (keys are only compared with "itos") */
  KEEP_TOKEN,  /* a token: all of it (cap is the vocabulary's room left), no NUL */
} keep;

/* A JSON string; *len (may be NULL) gets the length of its UTF-8 text, out what `mode`
 * keeps of that text. */
static int read_string(reader *r, keep mode, uint8_t *out, size_t cap, size_t *len) {
  if (expect(r, '"', "expected a string") != 0) return -1;
  size_t n = 0;
  for (;;) {
    const int c = peek(r);
    if (c < 0) return fail(r, "unterminated string");
    uint8_t unit[4];
    size_t unit_len;
    if (c == '"') {
      ++r->pos;
      break;
    } else if (c < 0x20) {
      return fail(r, "control character inside a string (must be escaped)");
    } else if (c == '\\') {
      ++r->pos;
      const int e = peek(r);
      ++r->pos;
      uint32_t cp;
      switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
          if (hex4(r, &cp) != 0) return -1;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return fail(r, "lone low surrogate in \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) { /* a surrogate pair: \uD8xx\uDCxx */
            uint32_t low;
            if (peek(r) != '\\' || r->pos + 1 >= r->size || r->json[r->pos + 1] != 'u') {
              return fail(r, "high surrogate without a low one in \\u escape");
            }
            r->pos += 2;
            if (hex4(r, &low) != 0) return -1;
            if (low < 0xDC00 || low > 0xDFFF) return fail(r, "bad low surrogate in \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          break;
        }
        default:
          --r->pos;
          return fail(r, "unknown escape in a string");
      }
      unit_len = put_utf8(unit, cp);
    } else {
      unit_len = utf8_length(r);
      if (unit_len == 0) return fail(r, "malformed UTF-8 in a string");
      memcpy(unit, r->json + r->pos, unit_len);
      r->pos += unit_len;
    }
    if (mode == KEEP_TOKEN) {
      if (unit_len == 1 && unit[0] == 0) return fail(r, "token text contains a NUL character");
      if (n + unit_len > cap) return fail(r, "vocabulary text longer than 65535 bytes");
    }
    for (size_t i = 0; mode != KEEP_NOTHING && i < unit_len && n + i < cap; ++i) {
      out[n + i] = unit[i];
    }
    n += unit_len;
  }
  if (len != NULL) *len = n;
  return 0;
}

/* ---- values ---------------------------------------------------------------------------- */

static int skip_value(reader *r, int depth);

static int skip_number(reader *r) {
  const size_t start = r->pos;
  if (peek(r) == '-') ++r->pos;
  if (peek(r) == '0') {
    ++r->pos;
  } else if (peek(r) >= '1' && peek(r) <= '9') {
    while (peek(r) >= '0' && peek(r) <= '9') ++r->pos;
  } else {
    r->pos = start;
    return fail(r, "expected a value");
  }
  if (peek(r) == '.') {
    ++r->pos;
    if (!(peek(r) >= '0' && peek(r) <= '9')) return fail(r, "digits must follow '.'");
    while (peek(r) >= '0' && peek(r) <= '9') ++r->pos;
  }
  if (peek(r) == 'e' || peek(r) == 'E') {
    ++r->pos;
    if (peek(r) == '+' || peek(r) == '-') ++r->pos;
    if (!(peek(r) >= '0' && peek(r) <= '9')) return fail(r, "digits must follow the exponent");
    while (peek(r) >= '0' && peek(r) <= '9') ++r->pos;
  }
  return 0;
}

static int skip_literal(reader *r, const char *word) {
  const size_t n = strlen(word);
  if (r->size - r->pos < n || memcmp(r->json + r->pos, word, n) != 0) {
    return fail(r, "expected a value");
  }
  r->pos += n;
  return 0;
}

/* Elements of an array or members of an object up to the closing bracket; the opening one
 * is consumed. For each element, on_element is called with the reader before the value
 * (after "key": for objects, with key/key_len set). */
typedef int (*element_fn)(reader *r, int depth, const uint8_t *key, size_t key_len, int index);

static int read_container(reader *r, int depth, int is_object, element_fn on_element) {
  if (depth > MAX_DEPTH) return fail(r, "nested deeper than 32 levels");
  const char close = is_object ? '}' : ']';
  skip_space(r);
  if (peek(r) == close) {
    ++r->pos;
    return 0;
  }
  for (int index = 0;; ++index) {
    uint8_t key[8];
    size_t key_len = 0;
    if (is_object) {
      if (read_string(r, KEEP_PREFIX, key, sizeof key, &key_len) != 0) return -1;
      if (expect(r, ':', "expected ':' after an object key") != 0) return -1;
    }
    if (on_element(r, depth, key, key_len, index) != 0) return -1;
    skip_space(r);
    if (peek(r) == ',') {
      ++r->pos;
      continue;
    }
    if (peek(r) == close) {
      ++r->pos;
      return 0;
    }
    return fail(r, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int skip_element(reader *r, int depth, const uint8_t *key, size_t key_len, int index) {
  (void)key, (void)key_len, (void)index;
  return skip_value(r, depth + 1);
}

static int skip_value(reader *r, int depth) {
  skip_space(r);
  switch (peek(r)) {
    case '{':
      ++r->pos;
      return read_container(r, depth, 1, skip_element);
    case '[':
      ++r->pos;
      return read_container(r, depth, 0, skip_element);
    case '"':
      return read_string(r, KEEP_NOTHING, NULL, 0, NULL);
    case 't':
      return skip_literal(r, "true");
    case 'f':
      return skip_literal(r, "false");
    case 'n':
      return skip_literal(r, "null");
    default:
      return skip_number(r);
  }
}

/* ---- "itos" ---------------------------------------------------------------------------- */

static int token_element(reader *r, int depth, const uint8_t *key, size_t key_len, int index) {
  (void)depth, (void)key, (void)key_len;
  metadata_vocab *v = r->out;
  if (index >= PICOGPT_MAX_VOCAB) {
    return fail(r, "\"itos\" has more tokens than the runtime's PICOGPT_MAX_VOCAB");
  }
  const size_t used = v->offsets[index];
  size_t len;
  skip_space(r);
  if (peek(r) != '"') return fail(r, "\"itos\" must hold strings only");
  if (read_string(r, KEEP_TOKEN, (uint8_t *)v->bytes + used, sizeof v->bytes - used, &len) != 0) {
    return -1;
  }
  v->offsets[index + 1] = (uint16_t)(used + len);
  v->vocab.size = index + 1;
  return 0;
}

static int member(reader *r, int depth, const uint8_t *key, size_t key_len, int index) {
  (void)index;
  if (key_len != 4 || memcmp(key, "itos", 4) != 0) return skip_value(r, depth + 1);
  if (r->found_itos) return fail(r, "a second \"itos\" member");
  r->found_itos = 1;
  if (expect(r, '[', "\"itos\" must be an array of strings") != 0) return -1;
  return read_container(r, depth + 1, 0, token_element);
}

int metadata_vocab_read(const uint8_t *json, size_t size, metadata_vocab *out, char *error,
                        size_t error_size) {
  reader r = {json, size, 0, out, 0, error, error_size};
  memset(out, 0, sizeof *out);
  out->vocab.bytes = out->bytes;
  out->vocab.offsets = out->offsets;
  if (expect(&r, '{', "the metadata must be a JSON object") != 0) return -1;
  if (read_container(&r, 1, 1, member) != 0) return -1;
  skip_space(&r);
  if (r.pos != size) return fail(&r, "text after the JSON object");
  if (!r.found_itos) return fail(&r, "no \"itos\" member (the token list)");
  if (out->vocab.size == 0) return fail(&r, "\"itos\" is empty");
  return 0;
}

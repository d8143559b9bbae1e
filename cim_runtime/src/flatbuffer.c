/* Bounds-checked flatbuffer reader; see flatbuffer.h. */
#include "flatbuffer.h"

static uint16_t read_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* [pos, pos + len) inside the buffer, without overflow. */
static int in_range(const pg_fb *fb, uint64_t pos, uint64_t len) {
  return pos <= fb->size && len <= (uint64_t)fb->size - pos;
}

static int table_at(const pg_fb *fb, uint32_t pos, pg_fb_table *out) {
  if (pos == 0 || !in_range(fb, pos, 4)) return -1;
  const int64_t vtable = (int64_t)pos - (int32_t)pg_fb_read_u32(fb->data + pos);
  if (vtable < 0 || !in_range(fb, (uint64_t)vtable, 4)) return -1;
  const uint16_t vtable_size = read_u16(fb->data + vtable);
  const uint16_t table_size = read_u16(fb->data + vtable + 2);
  if (vtable_size < 4 || (vtable_size & 1) || !in_range(fb, (uint64_t)vtable, vtable_size)) {
    return -1;
  }
  if (table_size < 4 || !in_range(fb, pos, table_size)) return -1;
  out->pos = pos;
  out->vtable = (uint32_t)vtable;
  out->num_fields = (uint16_t)((vtable_size - 4) / 2);
  out->table_size = table_size;
  return 0;
}

/* Position of a field's inline bytes, 0 when absent. */
static int field_pos(const pg_fb *fb, const pg_fb_table *t, int field, uint32_t field_size,
                     uint32_t *pos) {
  *pos = 0;
  if (t->pos == 0 || field < 0 || field >= t->num_fields) return 0;
  const uint16_t off = read_u16(fb->data + t->vtable + 4 + 2 * field);
  if (off == 0) return 0;
  if (off < 4 || (uint32_t)off + field_size > t->table_size) return -1;
  *pos = t->pos + off;
  return 0;
}

int pg_fb_root(const pg_fb *fb, pg_fb_table *root) {
  root->pos = 0;
  if (fb->data == NULL || fb->size < 8) return -1;
  return table_at(fb, pg_fb_read_u32(fb->data), root);
}

#define SCALAR_FIELD(name, type, size, expr)                                             \
  int name(const pg_fb *fb, const pg_fb_table *t, int field, type def, type *out) {      \
    uint32_t pos;                                                                        \
    *out = def;                                                                          \
    if (field_pos(fb, t, field, size, &pos) != 0) return -1;                             \
    if (pos != 0) {                                                                      \
      const uint8_t *p = fb->data + pos;                                                 \
      *out = (expr);                                                                     \
    }                                                                                    \
    return 0;                                                                            \
  }

SCALAR_FIELD(pg_fb_u8, uint8_t, 1, p[0])
SCALAR_FIELD(pg_fb_i8, int8_t, 1, (int8_t)p[0])
SCALAR_FIELD(pg_fb_u32, uint32_t, 4, pg_fb_read_u32(p))
SCALAR_FIELD(pg_fb_i32, int32_t, 4, (int32_t)pg_fb_read_u32(p))
SCALAR_FIELD(pg_fb_u64, uint64_t, 8,
             (uint64_t)pg_fb_read_u32(p) | ((uint64_t)pg_fb_read_u32(p + 4) << 32))

int pg_fb_f32(const pg_fb *fb, const pg_fb_table *t, int field, float def, float *out) {
  uint32_t bits;
  uint32_t def_bits;
  __builtin_memcpy(&def_bits, &def, sizeof def_bits);
  if (pg_fb_u32(fb, t, field, def_bits, &bits) != 0) return -1;
  __builtin_memcpy(out, &bits, sizeof *out);
  return 0;
}

/* Follows the uoffset stored at a reference field. */
static int deref(const pg_fb *fb, const pg_fb_table *t, int field, uint32_t *target) {
  uint32_t pos;
  *target = 0;
  if (field_pos(fb, t, field, 4, &pos) != 0) return -1;
  if (pos == 0) return 0;
  const uint64_t dest = (uint64_t)pos + pg_fb_read_u32(fb->data + pos);
  if (dest == pos || !in_range(fb, dest, 4)) return -1;
  *target = (uint32_t)dest;
  return 0;
}

int pg_fb_table_field(const pg_fb *fb, const pg_fb_table *t, int field, pg_fb_table *out) {
  uint32_t target;
  out->pos = 0;
  if (deref(fb, t, field, &target) != 0) return -1;
  if (target == 0) return 0;
  return table_at(fb, target, out);
}

int pg_fb_vector_field(const pg_fb *fb, const pg_fb_table *t, int field, uint32_t elem_size,
                       pg_fb_vector *out) {
  uint32_t target;
  out->pos = 0;
  out->count = 0;
  if (deref(fb, t, field, &target) != 0) return -1;
  if (target == 0) return 0;
  const uint32_t count = pg_fb_read_u32(fb->data + target);
  if (!in_range(fb, (uint64_t)target + 4, (uint64_t)count * elem_size)) return -1;
  out->pos = target + 4;
  out->count = count;
  return 0;
}

int pg_fb_string_field(const pg_fb *fb, const pg_fb_table *t, int field, const char **out) {
  pg_fb_vector v;
  *out = "";
  if (pg_fb_vector_field(fb, t, field, 1, &v) != 0) return -1;
  if (v.pos == 0) return 0;
  /* The terminating NUL must be inside the buffer. */
  if (!in_range(fb, (uint64_t)v.pos + v.count, 1) || fb->data[v.pos + v.count] != 0) return -1;
  *out = (const char *)(fb->data + v.pos);
  return 0;
}

int pg_fb_vector_table(const pg_fb *fb, const pg_fb_vector *v, uint32_t i, pg_fb_table *out) {
  out->pos = 0;
  if (i >= v->count) return -1;
  const uint32_t elem = v->pos + 4u * i;
  const uint64_t dest = (uint64_t)elem + pg_fb_read_u32(fb->data + elem);
  if (dest == elem || dest > fb->size) return -1;
  return table_at(fb, (uint32_t)dest, out);
}

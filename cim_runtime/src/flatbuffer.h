/* Bounds-checked reader for the flatbuffer encoding (just what the TFLite
 * schema subset needs). Every access checks offsets and lengths against the
 * buffer, so truncated or corrupt bytes yield an error, never an
 * out-of-bounds read. Multi-byte values are read byte-wise (little-endian),
 * so no alignment is assumed.
 *
 * Encoding recap: the root is a uoffset (u32) to a table; a table starts with
 * a soffset (i32) to its vtable (vtable = table - soffset); a vtable is
 * u16 vtable_size, u16 table_size, then one u16 per field: the field's
 * offset inside the table (0 = absent, use the default). Reference fields
 * (tables, vectors, strings) hold a uoffset relative to the field itself;
 * vectors and strings start with a u32 element count.
 */
#ifndef PG_FLATBUFFER_H
#define PG_FLATBUFFER_H

#include <stddef.h>
#include <stdint.h>

typedef struct pg_fb {
  const uint8_t *data;
  uint32_t size;
} pg_fb;

/* A table; pos == 0 means "absent" (position 0 is the root offset, never a
 * table). */
typedef struct pg_fb_table {
  uint32_t pos;        /* table start */
  uint32_t vtable;     /* vtable start */
  uint16_t num_fields; /* fields described by the vtable */
  uint16_t table_size; /* inline size of the table */
} pg_fb_table;

/* A vector: count elements of elem_size bytes starting at pos. */
typedef struct pg_fb_vector {
  uint32_t pos;
  uint32_t count;
} pg_fb_vector;

/* All functions return 0 on success, -1 when the bytes are out of range or
 * malformed. Absent fields give the default / an empty vector / absent table. */
int pg_fb_root(const pg_fb *fb, pg_fb_table *root);
int pg_fb_u8(const pg_fb *fb, const pg_fb_table *t, int field, uint8_t def, uint8_t *out);
int pg_fb_i8(const pg_fb *fb, const pg_fb_table *t, int field, int8_t def, int8_t *out);
int pg_fb_u32(const pg_fb *fb, const pg_fb_table *t, int field, uint32_t def, uint32_t *out);
int pg_fb_i32(const pg_fb *fb, const pg_fb_table *t, int field, int32_t def, int32_t *out);
int pg_fb_u64(const pg_fb *fb, const pg_fb_table *t, int field, uint64_t def, uint64_t *out);
int pg_fb_f32(const pg_fb *fb, const pg_fb_table *t, int field, float def, float *out);
int pg_fb_table_field(const pg_fb *fb, const pg_fb_table *t, int field, pg_fb_table *out);
/* elem_size: 1, 4 or 8 (tables/strings in a vector are 4-byte offsets). */
int pg_fb_vector_field(const pg_fb *fb, const pg_fb_table *t, int field, uint32_t elem_size,
                       pg_fb_vector *out);
/* NUL-terminated string; *out = "" when absent. */
int pg_fb_string_field(const pg_fb *fb, const pg_fb_table *t, int field, const char **out);
/* Element i of a vector of tables. */
int pg_fb_vector_table(const pg_fb *fb, const pg_fb_vector *v, uint32_t i, pg_fb_table *out);

static inline uint32_t pg_fb_read_u32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline int32_t pg_fb_vec_i32(const pg_fb *fb, const pg_fb_vector *v, uint32_t i) {
  return (int32_t)pg_fb_read_u32(fb->data + v->pos + 4u * i);
}
static inline float pg_fb_vec_f32(const pg_fb *fb, const pg_fb_vector *v, uint32_t i) {
  uint32_t bits = pg_fb_read_u32(fb->data + v->pos + 4u * i);
  float f;
  __builtin_memcpy(&f, &bits, sizeof f);
  return f;
}
static inline int64_t pg_fb_vec_i64(const pg_fb *fb, const pg_fb_vector *v, uint32_t i) {
  const uint8_t *p = fb->data + v->pos + 8u * i;
  return (int64_t)((uint64_t)pg_fb_read_u32(p) | ((uint64_t)pg_fb_read_u32(p + 4) << 32));
}

#endif /* PG_FLATBUFFER_H */

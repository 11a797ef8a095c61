/* SPDX-License-Identifier: MIT */
#ifndef RM_SAFETENSORS_H
#define RM_SAFETENSORS_H

/*
 * Reading Hugging Face safetensors files, mapped read-only.
 *
 * The format: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 * "__metadata__": {...}}), then the raw little-endian tensor data, offsets
 * relative to its start.  A checkpoint folder holds model.safetensors, or
 * model.safetensors.index.json naming several files (its "weight_map").
 *
 * st_open_folder() maps every file of a folder and indexes every tensor;
 * lookups are by name.  Every header is checked (offsets inside the file,
 * no overlap with the header, the size matching dtype x shape): a malformed
 * or truncated file is refused with -EBADMSG and a message naming the file
 * and the tensor.  Errors are negative errnos; the message goes to errbuf.
 */

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8

enum st_dtype {
        ST_F32 = 1,
        ST_BF16 = 2,
        ST_F16 = 3,
};

struct st_tensor {
        char *name;
        enum st_dtype dtype;
        uint32_t ndim;
        int64_t shape[ST_MAX_DIMS];
        const void *data;             /* inside the mapping */
        uint64_t nbytes;
        uint32_t file;                /* index of the file it is in */
};

struct st_folder;

int st_open_folder(const char *dir, struct st_folder **ret, char *errbuf, size_t errsize);
struct st_folder *st_close(struct st_folder *f);

/* NULL when there is no such tensor. */
const struct st_tensor *st_find(const struct st_folder *f, const char *name);
/*
 * The tensor NAME with the shape config.json gives it: [cols] when rows is
 * 0, else [rows, cols].  -ENOENT (no such tensor) or -EINVAL (another
 * shape), with the reason in errbuf.
 */
int st_find_shaped(const struct st_folder *f, const char *name, int64_t rows, int64_t cols,
                   const struct st_tensor **ret, char *errbuf, size_t errsize);
size_t st_count(const struct st_folder *f);
const struct st_tensor *st_at(const struct st_folder *f, size_t i);
/* Bytes in all mapped files. */
uint64_t st_total_bytes(const struct st_folder *f);
const char *st_dtype_name(enum st_dtype d);
size_t st_dtype_size(enum st_dtype d);

/* One element as a float (bf16 and f16 are widened exactly). */
static inline float st_bf16_to_f32(uint16_t h) {
        union { uint32_t u; float f; } v = { .u = (uint32_t) h << 16 };
        return v.f;
}
float st_f16_to_f32(uint16_t h);

/*
 * Copies the rows [row0, row0 + nrows) and columns [col0, col0 + ncols) of a
 * 2-D tensor (a 1-D one is one row) into dst as float, row-major with
 * leading dimension ld.  -EINVAL when the window is outside the tensor.
 */
int st_copy_f32(const struct st_tensor *t, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols, float *dst,
                int64_t ld);
/* The same window as bf16 (f32 rounded to nearest even, f16 converted). */
int st_copy_bf16(const struct st_tensor *t, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols,
                 uint16_t *dst, int64_t ld);

#endif

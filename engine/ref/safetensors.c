/* SPDX-License-Identifier: MIT */
/*
 * safetensors files, mapped read-only (safetensors.h).  The JSON header is
 * parsed with the supervisor's strict parser (supervisor/json.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"
#include "safetensors.h"

#define MAX_FILES 4096
#define MAX_HEADER (UINT64_C(100) << 20)

struct st_file {
        char *path;
        void *map;
        size_t size;
};

struct st_folder {
        struct st_file *files;
        size_t n_files;
        struct st_tensor *tensors;
        size_t n_tensors;
        size_t *sorted;               /* tensor indices by name */
};

static int fail(char *errbuf, size_t errsize, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *errbuf, size_t errsize, int r, const char *fmt, ...) {
        va_list ap;

        if (errbuf && errsize) {
                va_start(ap, fmt);
                vsnprintf(errbuf, errsize, fmt, ap);
                va_end(ap);
        }
        return r;
}

const char *st_dtype_name(enum st_dtype d) {
        switch (d) {
        case ST_F32: return "F32";
        case ST_BF16: return "BF16";
        case ST_F16: return "F16";
        }
        return "?";
}

size_t st_dtype_size(enum st_dtype d) {
        switch (d) {
        case ST_F32: return 4;
        case ST_BF16: case ST_F16: return 2;
        }
        return 0;
}

float st_f16_to_f32(uint16_t h) {
        uint32_t sign = (uint32_t) (h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
        union { uint32_t u; float f; } v;

        if (exp == 0) {
                if (man == 0)
                        u = sign;
                else {                        /* subnormal: normalise */
                        exp = 127 - 15 + 1;
                        while (!(man & 0x400)) {
                                man <<= 1;
                                exp--;
                        }
                        man &= 0x3ff;
                        u = sign | (exp << 23) | (man << 13);
                }
        } else if (exp == 0x1f)
                u = sign | 0x7f800000u | (man << 13);
        else
                u = sign | ((exp - 15 + 127) << 23) | (man << 13);
        v.u = u;
        return v.f;
}

static bool parse_u64(const struct json_value *v, uint64_t *ret) {
        char *end;
        unsigned long long x;

        if (!v || v->type != JSON_NUMBER || v->len == 0 || v->text[0] == '-')
                return false;
        errno = 0;
        x = strtoull(v->text, &end, 10);
        if (errno || *end)
                return false;
        *ret = x;
        return true;
}

static int add_file(struct st_folder *f, const char *dir, const char *name, char *errbuf, size_t errsize) {
        struct st_file *file;
        struct stat st;
        char *path;
        int fd;

        for (size_t i = 0; i < f->n_files; i++) {
                const char *base = strrchr(f->files[i].path, '/') + 1;
                if (strcmp(base, name) == 0)
                        return 0;
        }
        if (strchr(name, '/') || strcmp(name, "..") == 0 || f->n_files >= MAX_FILES)
                return fail(errbuf, errsize, -EBADMSG, "%s: the index names an unusable file '%s'", dir, name);
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                fail(errbuf, errsize, r, "%s: %s", path, strerror(-r));
                free(path);
                return r;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                fail(errbuf, errsize, -EBADMSG, "%s: not a regular file", path);
                free(path);
                return -EBADMSG;
        }
        file = realloc(f->files, (f->n_files + 1) * sizeof(*file));
        if (!file) {
                close(fd);
                free(path);
                return -ENOMEM;
        }
        f->files = file;
        file = &f->files[f->n_files];
        file->path = path;
        file->size = (size_t) st.st_size;
        file->map = NULL;
        if (file->size > 0) {
                file->map = mmap(NULL, file->size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (file->map == MAP_FAILED) {
                        int r = -errno;
                        close(fd);
                        fail(errbuf, errsize, r, "%s: mmap: %s", path, strerror(-r));
                        free(path);
                        return r;
                }
        }
        close(fd);
        f->n_files++;
        return 0;
}

static int parse_header(struct st_folder *f, uint32_t fi, char *errbuf, size_t errsize) {
        struct st_file *file = &f->files[fi];
        const unsigned char *p = file->map;
        struct json_value *root = NULL;
        uint64_t hlen = 0, data_size;
        const unsigned char *data;
        int r;

        if (file->size < 8)
                return fail(errbuf, errsize, -EBADMSG, "%s: too short for a safetensors file (%zu bytes)",
                            file->path, file->size);
        for (int i = 7; i >= 0; i--)
                hlen = (hlen << 8) | p[i];
        if (hlen < 2 || hlen > MAX_HEADER || hlen > file->size - 8)
                return fail(errbuf, errsize, -EBADMSG,
                            "%s: not a safetensors file (header length %" PRIu64 ", file %zu bytes)", file->path,
                            hlen, file->size);
        data_size = file->size - 8 - hlen;
        data = p + 8 + hlen;
        /* Writers pad the header with spaces to an 8-byte boundary. */
        while (hlen > 0 && p[8 + hlen - 1] == ' ')
                hlen--;
        r = json_parse((const char *) p + 8, hlen, &root);
        if (r < 0) {
                return fail(errbuf, errsize, -EBADMSG, "%s: the header is not valid JSON", file->path);
        }
        if (root->type != JSON_OBJECT) {
                json_value_free(root);
                return fail(errbuf, errsize, -EBADMSG, "%s: the header is not a JSON object", file->path);
        }
        for (size_t i = 0; i < root->n; i++) {
                const struct json_value *e = root->items[i], *dt, *shape, *offs;
                struct st_tensor *t;
                uint64_t begin, end, count = 1;

                if (strcmp(root->keys[i], "__metadata__") == 0)
                        continue;
                dt = json_object_get(e, "dtype");
                shape = json_object_get(e, "shape");
                offs = json_object_get(e, "data_offsets");
                if (e->type != JSON_OBJECT || !dt || dt->type != JSON_STRING || !shape || shape->type != JSON_ARRAY ||
                    !offs || offs->type != JSON_ARRAY || offs->n != 2 || !parse_u64(offs->items[0], &begin) ||
                    !parse_u64(offs->items[1], &end) || begin > end || end > data_size ||
                    shape->n > ST_MAX_DIMS) {
                        r = fail(errbuf, errsize, -EBADMSG, "%s: tensor '%s': malformed entry (dtype, shape, data_offsets)",
                                 file->path, root->keys[i]);
                        goto out;
                }
                t = realloc(f->tensors, (f->n_tensors + 1) * sizeof(*t));
                if (!t) {
                        r = -ENOMEM;
                        goto out;
                }
                f->tensors = t;
                t = &f->tensors[f->n_tensors];
                memset(t, 0, sizeof(*t));
                if (strcmp(dt->text, "F32") == 0)
                        t->dtype = ST_F32;
                else if (strcmp(dt->text, "BF16") == 0)
                        t->dtype = ST_BF16;
                else if (strcmp(dt->text, "F16") == 0)
                        t->dtype = ST_F16;
                else {
                        r = fail(errbuf, errsize, -EOPNOTSUPP,
                                 "%s: tensor '%s' has dtype %s; the engine reads F32, BF16 and F16", file->path,
                                 root->keys[i], dt->text);
                        goto out;
                }
                t->ndim = (uint32_t) shape->n;
                for (size_t d = 0; d < shape->n; d++) {
                        uint64_t x;
                        if (!parse_u64(shape->items[d], &x) || x > (UINT64_C(1) << 40) ||
                            __builtin_mul_overflow(count, x, &count)) {
                                r = fail(errbuf, errsize, -EBADMSG, "%s: tensor '%s': bad shape", file->path,
                                         root->keys[i]);
                                goto out;
                        }
                        t->shape[d] = (int64_t) x;
                }
                if (__builtin_mul_overflow(count, st_dtype_size(t->dtype), &count) || count != end - begin) {
                        r = fail(errbuf, errsize, -EBADMSG,
                                 "%s: tensor '%s': %" PRIu64 " bytes of data for its dtype and shape, which need %" PRIu64,
                                 file->path, root->keys[i], end - begin, count);
                        goto out;
                }
                t->name = strdup(root->keys[i]);
                if (!t->name) {
                        r = -ENOMEM;
                        goto out;
                }
                t->data = data + begin;
                t->nbytes = end - begin;
                t->file = fi;
                f->n_tensors++;
        }
        r = 0;
out:
        json_value_free(root);
        return r;
}

static const struct st_folder *sort_folder;
static int cmp_names(const void *a, const void *b) {
        return strcmp(sort_folder->tensors[*(const size_t *) a].name, sort_folder->tensors[*(const size_t *) b].name);
}

static int read_text(const char *path, char **ret, size_t *ret_len) {
        FILE *fp = fopen(path, "re");
        char *buf = NULL;
        size_t len = 0, cap = 0;

        if (!fp)
                return -errno;
        for (;;) {
                if (len + 65536 > cap) {
                        char *n;
                        cap = cap ? cap * 2 : 131072;
                        n = realloc(buf, cap);
                        if (!n) {
                                free(buf);
                                fclose(fp);
                                return -ENOMEM;
                        }
                        buf = n;
                }
                size_t k = fread(buf + len, 1, cap - len - 1, fp);
                len += k;
                if (k == 0)
                        break;
        }
        fclose(fp);
        buf[len] = 0;
        *ret = buf;
        *ret_len = len;
        return 0;
}

int st_open_folder(const char *dir, struct st_folder **ret, char *errbuf, size_t errsize) {
        struct st_folder *f;
        char *path = NULL, *text = NULL;
        size_t len = 0;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        if (asprintf(&path, "%s/model.safetensors.index.json", dir) < 0) {
                free(f);
                return -ENOMEM;
        }
        r = read_text(path, &text, &len);
        if (r == 0) {
                struct json_value *idx = NULL;
                const struct json_value *map;

                r = json_parse(text, len, &idx);
                map = r == 0 ? json_object_get(idx, "weight_map") : NULL;
                if (!map || map->type != JSON_OBJECT) {
                        json_value_free(idx);
                        r = fail(errbuf, errsize, -EBADMSG, "%s: no \"weight_map\" object", path);
                        goto fail;
                }
                for (size_t i = 0; i < map->n && r == 0; i++) {
                        if (map->items[i]->type != JSON_STRING)
                                r = fail(errbuf, errsize, -EBADMSG, "%s: weight_map['%s'] is not a file name",
                                         path, map->keys[i]);
                        else
                                r = add_file(f, dir, map->items[i]->text, errbuf, errsize);
                }
                json_value_free(idx);
                if (r < 0)
                        goto fail;
        } else if (r == -ENOENT) {
                r = add_file(f, dir, "model.safetensors", errbuf, errsize);
                if (r == -ENOENT)
                        r = fail(errbuf, errsize, -ENOENT,
                                 "%s: no model.safetensors nor model.safetensors.index.json (a Hugging Face checkpoint "
                                 "folder saved with safe_serialization, the default, has one)",
                                 dir);
                if (r < 0)
                        goto fail;
        } else {
                r = fail(errbuf, errsize, r, "%s: %s", path, strerror(-r));
                goto fail;
        }
        for (uint32_t i = 0; i < f->n_files; i++) {
                r = parse_header(f, i, errbuf, errsize);
                if (r < 0)
                        goto fail;
        }
        f->sorted = malloc((f->n_tensors + 1) * sizeof(size_t));
        if (!f->sorted) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < f->n_tensors; i++)
                f->sorted[i] = i;
        sort_folder = f;
        qsort(f->sorted, f->n_tensors, sizeof(size_t), cmp_names);
        sort_folder = NULL;
        for (size_t i = 1; i < f->n_tensors; i++)
                if (strcmp(f->tensors[f->sorted[i]].name, f->tensors[f->sorted[i - 1]].name) == 0) {
                        r = fail(errbuf, errsize, -EBADMSG, "%s: tensor '%s' is stored twice", dir,
                                 f->tensors[f->sorted[i]].name);
                        goto fail;
                }
        free(path);
        free(text);
        *ret = f;
        return 0;
fail:
        free(path);
        free(text);
        st_close(f);
        return r;
}

struct st_folder *st_close(struct st_folder *f) {
        if (!f)
                return NULL;
        for (size_t i = 0; i < f->n_files; i++) {
                if (f->files[i].map)
                        munmap(f->files[i].map, f->files[i].size);
                free(f->files[i].path);
        }
        for (size_t i = 0; i < f->n_tensors; i++)
                free(f->tensors[i].name);
        free(f->files);
        free(f->tensors);
        free(f->sorted);
        free(f);
        return NULL;
}

const struct st_tensor *st_find(const struct st_folder *f, const char *name) {
        size_t lo = 0, hi = f->n_tensors;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(f->tensors[f->sorted[mid]].name, name);
                if (c == 0)
                        return &f->tensors[f->sorted[mid]];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

int st_find_shaped(const struct st_folder *f, const char *name, int64_t rows, int64_t cols,
                   const struct st_tensor **ret, char *errbuf, size_t errsize) {
        const struct st_tensor *t = st_find(f, name);
        char shape[64] = "";

        if (!t) {
                snprintf(errbuf, errsize, "the checkpoint has no tensor '%s'", name);
                return -ENOENT;
        }
        if (rows == 0 ? t->ndim == 1 && t->shape[0] == cols
                      : t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) {
                *ret = t;
                return 0;
        }
        for (uint32_t i = 0; i < t->ndim; i++)
                snprintf(shape + strlen(shape), sizeof(shape) - strlen(shape), "%s%lld", i ? "," : "",
                         (long long) t->shape[i]);
        if (rows == 0)
                snprintf(errbuf, errsize, "tensor '%s' has shape [%s], config.json says [%lld]", name, shape,
                         (long long) cols);
        else
                snprintf(errbuf, errsize, "tensor '%s' has shape [%s], config.json says [%lld,%lld]", name, shape,
                         (long long) rows, (long long) cols);
        return -EINVAL;
}

size_t st_count(const struct st_folder *f) {
        return f->n_tensors;
}

const struct st_tensor *st_at(const struct st_folder *f, size_t i) {
        return i < f->n_tensors ? &f->tensors[i] : NULL;
}

uint64_t st_total_bytes(const struct st_folder *f) {
        uint64_t n = 0;
        for (size_t i = 0; i < f->n_files; i++)
                n += f->files[i].size;
        return n;
}

static int window(const struct st_tensor *t, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols,
                  int64_t *ret_cols) {
        int64_t rows = t->ndim == 2 ? t->shape[0] : 1, cols = t->ndim == 2 ? t->shape[1] : t->shape[0];

        if (t->ndim != 1 && t->ndim != 2)
                return -EINVAL;
        if (row0 < 0 || nrows < 0 || col0 < 0 || ncols < 0 || row0 + nrows > rows || col0 + ncols > cols)
                return -EINVAL;
        *ret_cols = cols;
        return 0;
}

int st_copy_f32(const struct st_tensor *t, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols, float *dst,
                int64_t ld) {
        int64_t cols;
        int r = window(t, row0, nrows, col0, ncols, &cols);

        if (r < 0)
                return r;
        for (int64_t i = 0; i < nrows; i++) {
                float *d = dst + i * ld;
                int64_t off = (row0 + i) * cols + col0;
                if (t->dtype == ST_F32)
                        memcpy(d, (const float *) t->data + off, (size_t) ncols * sizeof(float));
                else if (t->dtype == ST_BF16) {
                        const uint16_t *s = (const uint16_t *) t->data + off;
                        for (int64_t j = 0; j < ncols; j++)
                                d[j] = st_bf16_to_f32(s[j]);
                } else {
                        const uint16_t *s = (const uint16_t *) t->data + off;
                        for (int64_t j = 0; j < ncols; j++)
                                d[j] = st_f16_to_f32(s[j]);
                }
        }
        return 0;
}

static uint16_t f32_to_bf16(float f) {
        union { float f; uint32_t u; } v = { .f = f };
        if ((v.u & 0x7fffffffu) > 0x7f800000u)
                return (uint16_t) ((v.u >> 16) | 0x40);  /* NaN stays NaN */
        return (uint16_t) ((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

int st_copy_bf16(const struct st_tensor *t, int64_t row0, int64_t nrows, int64_t col0, int64_t ncols,
                 uint16_t *dst, int64_t ld) {
        int64_t cols;
        int r = window(t, row0, nrows, col0, ncols, &cols);

        if (r < 0)
                return r;
        for (int64_t i = 0; i < nrows; i++) {
                uint16_t *d = dst + i * ld;
                int64_t off = (row0 + i) * cols + col0;
                if (t->dtype == ST_BF16)
                        memcpy(d, (const uint16_t *) t->data + off, (size_t) ncols * 2);
                else if (t->dtype == ST_F32) {
                        const float *s = (const float *) t->data + off;
                        for (int64_t j = 0; j < ncols; j++)
                                d[j] = f32_to_bf16(s[j]);
                } else {
                        const uint16_t *s = (const uint16_t *) t->data + off;
                        for (int64_t j = 0; j < ncols; j++)
                                d[j] = f32_to_bf16(st_f16_to_f32(s[j]));
                }
        }
        return 0;
}

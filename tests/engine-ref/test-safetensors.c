/* SPDX-License-Identifier: MIT */
/*
 * The safetensors reader: a well-formed file (F32, BF16 and F16 tensors,
 * a padded header, windows copied as float and bf16), an indexed folder of
 * two shards, and malformed files refused with -EBADMSG and a message that
 * names the file and the tensor, never read past their end.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safetensors.h"

#define CHECK(expr)                                                                         \
        do {                                                                                \
                if (!(expr)) {                                                              \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
                        exit(1);                                                            \
                }                                                                           \
        } while (0)

static char dir[256];

static void write_file(const char *name, const char *header, const void *data, size_t len, size_t pad) {
        char path[512];
        uint64_t hlen = strlen(header) + pad;
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        CHECK(f);
        for (int i = 0; i < 8; i++)
                fputc((int) ((hlen >> (8 * i)) & 0xff), f);
        fputs(header, f);
        for (size_t i = 0; i < pad; i++)
                fputc(' ', f);
        if (len)
                CHECK(fwrite(data, 1, len, f) == len);
        fclose(f);
}

static void write_text(const char *name, const char *text) {
        char path[512];
        FILE *f;
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        f = fopen(path, "w");
        CHECK(f);
        fputs(text, f);
        fclose(f);
}

static void clear(void) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -f %s/*", dir);
        CHECK(system(cmd) == 0);
}

static int open_expect(int want, const char *needle) {
        struct st_folder *f = NULL;
        char err[512] = "";
        int r = st_open_folder(dir, &f, err, sizeof(err));
        if (r != want || (needle && !strstr(err, needle))) {
                fprintf(stderr, "st_open_folder gave %d (%s), want %d with '%s'\n", r, err, want, needle ? needle : "");
                exit(1);
        }
        st_close(f);
        return 0;
}

int main(void) {
        struct st_folder *f;
        const struct st_tensor *t;
        char err[512];
        float fl[6] = { 1, 2, 3, 4, 5, 6 }, out[6];
        uint16_t bf[2] = { 0x3f80, 0xc000 };           /* 1.0, -2.0 */
        uint16_t hf[2] = { 0x3c00, 0x0001 };           /* 1.0, the smallest subnormal */
        unsigned char data[24 + 4 + 4];
        uint16_t b16[6];

        snprintf(dir, sizeof(dir), "%s/st-test.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        CHECK(mkdtemp(dir));

        memcpy(data, fl, 24);
        memcpy(data + 24, bf, 4);
        memcpy(data + 28, hf, 4);
        write_file("model.safetensors",
                   "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                   "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[24,28]},"
                   "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[28,32]}}",
                   data, sizeof(data), 5);
        CHECK(st_open_folder(dir, &f, err, sizeof(err)) == 0);
        CHECK(st_count(f) == 3);
        t = st_find(f, "w");
        CHECK(t && t->dtype == ST_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
        CHECK(st_copy_f32(t, 1, 1, 1, 2, out, 2) == 0);
        CHECK(out[0] == 5 && out[1] == 6);
        CHECK(st_copy_f32(t, 0, 2, 2, 1, out, 1) == 0);
        CHECK(out[0] == 3 && out[1] == 6);
        CHECK(st_copy_f32(t, 1, 2, 0, 1, out, 1) == -EINVAL);  /* outside */
        CHECK(st_copy_bf16(t, 0, 2, 0, 3, b16, 3) == 0);
        CHECK(b16[0] == 0x3f80 && b16[5] == 0x40c0);            /* 1.0, 6.0 */
        t = st_find(f, "b");
        CHECK(t && st_copy_f32(t, 0, 1, 0, 2, out, 2) == 0 && out[0] == 1.0f && out[1] == -2.0f);
        t = st_find(f, "h");
        CHECK(t && st_copy_f32(t, 0, 1, 0, 2, out, 2) == 0 && out[0] == 1.0f && out[1] == 0x1p-24f);
        CHECK(!st_find(f, "nope"));
        st_close(f);

        /* An index over two shards. */
        clear();
        write_file("a.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", fl, 4, 0);
        write_file("b.safetensors", "{\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", fl + 1, 4, 0);
        write_text("model.safetensors.index.json",
                   "{\"metadata\":{},\"weight_map\":{\"x\":\"a.safetensors\",\"y\":\"b.safetensors\"}}");
        CHECK(st_open_folder(dir, &f, err, sizeof(err)) == 0);
        CHECK(st_count(f) == 2);
        CHECK(st_copy_f32(st_find(f, "y"), 0, 1, 0, 1, out, 1) == 0 && out[0] == 2);
        st_close(f);

        /* Refused, with a reason. */
        clear();
        open_expect(-ENOENT, "no model.safetensors");
        write_text("model.safetensors.index.json", "{\"weight_map\":{\"x\":\"../escape\"}}");
        open_expect(-EBADMSG, "unusable file");
        clear();
        write_file("model.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", fl, 20, 0);
        open_expect(-EBADMSG, "'w': malformed");                 /* data runs past the end */
        clear();
        write_file("model.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,24]}}", fl, 24, 0);
        open_expect(-EBADMSG, "need 16");                        /* size does not match the shape */
        clear();
        write_file("model.safetensors", "{\"w\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]}}", fl, 24, 0);
        open_expect(-EOPNOTSUPP, "dtype I64");
        clear();
        write_file("model.safetensors", "{\"w\":", NULL, 0, 0);
        open_expect(-EBADMSG, "not valid JSON");
        clear();
        write_text("model.safetensors", "\xff\xff\xff\xff\xff\xff\xff\x7f{}");
        open_expect(-EBADMSG, "not a safetensors file");
        clear();
        write_text("model.safetensors", "abc");
        open_expect(-EBADMSG, "too short");

        clear();
        rmdir(dir);
        printf("test-safetensors: PASS\n");
        return 0;
}

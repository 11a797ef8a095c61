/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_JSON_H
#define RINGMASTER_JSON_H

/*
 * Just enough JSON for the report: a writer that always produces valid JSON
 * (strings are escaped; bytes that are not UTF-8 become U+FFFD), and a strict
 * RFC 8259 parser, bounded in depth, for the error files workers write
 * (TORCHELASTIC_ERROR_FILE), so that the report embeds them re-serialised
 * rather than trusting their bytes.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum json_type {
        JSON_NULL,
        JSON_FALSE,
        JSON_TRUE,
        JSON_NUMBER,
        JSON_STRING,
        JSON_ARRAY,
        JSON_OBJECT,
};

struct json_value {
        enum json_type type;
        char *text;                 /* STRING: the decoded bytes (NUL-terminated; may hold NULs);
                                       NUMBER: its literal */
        size_t len;                 /* STRING, NUMBER: bytes in text */
        size_t n;                   /* ARRAY, OBJECT: members */
        char **keys;                /* OBJECT: decoded keys */
        struct json_value **items;
};

#define JSON_MAX_DEPTH 64

/* -EBADMSG: not JSON (or trailing bytes); -E2BIG: nested deeper than JSON_MAX_DEPTH. */
int json_parse(const char *text, size_t len, struct json_value **ret);
struct json_value *json_value_free(struct json_value *v);
/* The member named key, or NULL (the last one when repeated). */
const struct json_value *json_object_get(const struct json_value *v, const char *key);

struct json_writer {
        FILE *f;
        int depth;
        bool first[JSON_MAX_DEPTH + 2];   /* nothing written yet at that depth */
        bool after_key;
};

void json_writer_init(struct json_writer *w, FILE *f);
void json_begin_object(struct json_writer *w);
void json_end_object(struct json_writer *w);
void json_begin_array(struct json_writer *w);
void json_end_array(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_string(struct json_writer *w, const char *s);      /* NULL writes null */
void json_string_len(struct json_writer *w, const char *s, size_t len);
void json_int(struct json_writer *w, int64_t v);
void json_uint(struct json_writer *w, uint64_t v);
void json_double(struct json_writer *w, double v);           /* non-finite: null */
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
void json_value(struct json_writer *w, const struct json_value *v);

#endif

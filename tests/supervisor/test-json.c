/* SPDX-License-Identifier: MIT */
/*
 * The JSON parser (for torchrun error files) and writer (for the report):
 * valid documents round-trip, invalid ones are refused, depth is bounded,
 * and the writer's output is always valid JSON whatever bytes it is given.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#include "unit.h"

static char *serialise(const struct json_value *v) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        struct json_writer w;

        json_writer_init(&w, f);
        json_value(&w, v);
        fclose(f);
        return buf;
}

/* Parses, serialises, parses again: the second serialisation equals the first. */
static void round_trip(const char *text) {
        struct json_value *a = NULL, *b = NULL;
        char *s1, *s2;
        int r;

        r = json_parse(text, strlen(text), &a);
        CHECK(r == 0, "valid JSON refused (%d): %s", r, text);
        if (r < 0)
                return;
        s1 = serialise(a);
        r = json_parse(s1, strlen(s1), &b);
        CHECK(r == 0, "own output refused: %s", s1);
        if (r == 0) {
                s2 = serialise(b);
                CHECK(strcmp(s1, s2) == 0, "not stable:\n%s\n%s", s1, s2);
                free(s2);
        }
        free(s1);
        json_value_free(a);
        json_value_free(b);
}

static void refused(const char *text, size_t len) {
        struct json_value *v = NULL;
        int r = json_parse(text, len, &v);

        CHECK(r < 0, "invalid JSON accepted: %.*s", (int) len, text);
        json_value_free(v);
}

int main(void) {
        static const char *const valid[] = {
                "null", "true", "false", "0", "-0", "1.5e10", "-12.25E-3", "\"\"", "[]", "{}",
                "\"caf\\u00e9 \\ud83d\\ude00 \\n\\t\\\"\\\\\\/\"",
                "{\"message\": {\"message\": \"boom\", \"extraInfo\": {\"py_callstack\": \"a\\nb\", \"timestamp\": \"1\"}}}",
                "[1, [2, [3, {\"a\": [4, null]}]], \"x\"]",
                " \t\r\n{ \"k\" : [ 1 , 2 ] } \n",
                "\"\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\"",
        };
        static const char *const invalid[] = {
                "", " ", "nul", "tru", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{1: 2}", "[1 2]", "01", "1.", ".5", "-",
                "1e", "+1", "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"a\tb\"", "[", "]",
                "{\"a\":1}}", "[1] [2]", "\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "NaN", "Infinity",
        };
        struct json_value *v = NULL;
        char deep[2 * (JSON_MAX_DEPTH + 2) + 1];

        for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
                round_trip(valid[i]);
        for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++)
                refused(invalid[i], strlen(invalid[i]));
        refused("\"a\0b\"", 5);            /* a raw NUL inside a string */
        refused("[1]\0", 4);                /* trailing NUL byte */

        /* Depth: JSON_MAX_DEPTH nested arrays parse, one more does not. */
        memset(deep, '[', JSON_MAX_DEPTH);
        memset(deep + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
        CHECK(json_parse(deep, 2 * JSON_MAX_DEPTH, &v) == 0, "depth %d refused", JSON_MAX_DEPTH);
        v = json_value_free(v);
        memset(deep, '[', JSON_MAX_DEPTH + 1);
        memset(deep + JSON_MAX_DEPTH + 1, ']', JSON_MAX_DEPTH + 1);
        CHECK(json_parse(deep, 2 * (JSON_MAX_DEPTH + 1), &v) == -E2BIG, "depth %d accepted", JSON_MAX_DEPTH + 1);

        /* Lookup and decoding. */
        {
                const char *t = "{\"message\": {\"message\": \"a\\u0000b\"}, \"message\": 3}";
                const struct json_value *m;

                CHECK(json_parse(t, strlen(t), &v) == 0, "parse for lookup");
                m = json_object_get(v, "message");
                CHECK(m && m->type == JSON_NUMBER && strcmp(m->text, "3") == 0, "the last duplicate key wins");
                v = json_value_free(v);
                t = "{\"m\": \"a\\u0000b\"}";
                CHECK(json_parse(t, strlen(t), &v) == 0, "parse NUL escape");
                m = json_object_get(v, "m");
                CHECK(m && m->len == 3 && m->text[1] == 0, "\\u0000 decodes to a NUL byte, length kept");
                v = json_value_free(v);
        }

        /* The writer escapes anything: control bytes, quotes, invalid UTF-8. */
        {
                char *buf = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&buf, &size);
                struct json_writer w;
                static const char nasty[] = "q\" b\\ nl\n cr\r tab\t nul\0 esc\x1b bad\xff\xfe ok\xc3\xa9";

                json_writer_init(&w, f);
                json_begin_object(&w);
                json_key(&w, "s");
                json_string_len(&w, nasty, sizeof(nasty) - 1);
                json_key(&w, "n");
                json_int(&w, -5);
                json_key(&w, "d");
                json_double(&w, 1.0 / 0.0);
                json_key(&w, "a");
                json_begin_array(&w);
                json_end_array(&w);
                json_end_object(&w);
                fclose(f);
                CHECK(json_parse(buf, size, &v) == 0, "writer output is not valid JSON: %s", buf);
                if (v) {
                        const struct json_value *s = json_object_get(v, "s"), *d = json_object_get(v, "d");

                        static const char head[] = "q\" b\\ nl\n cr\r tab\t nul\0 esc\x1b bad";
                        static const char rest[] = "\xef\xbf\xbd\xef\xbf\xbd ok\xc3\xa9";

                        CHECK(s && s->type == JSON_STRING && s->len == sizeof(head) - 1 + sizeof(rest) - 1 &&
                              memcmp(s->text, head, sizeof(head) - 1) == 0, "escaped string decodes back");
                        CHECK(s && s->len >= sizeof(head) - 1 && strcmp(s->text + sizeof(head) - 1, rest) == 0,
                              "invalid UTF-8 became U+FFFD, valid kept");
                        CHECK(d && d->type == JSON_NULL, "infinity written as null");
                }
                v = json_value_free(v);
                free(buf);
        }

        if (failures) {
                printf("%d failure(s)\n", failures);
                return 1;
        }
        printf("json: all checks passed\n");
        return 0;
}

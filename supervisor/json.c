/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "util.h"

/* ------------------------------------------------------------- parser */

struct json_parser {
        const char *p, *end;
        int depth;
};

struct json_value *json_value_free(struct json_value *v) {
        if (!v)
                return NULL;
        for (size_t i = 0; i < v->n; i++) {
                json_value_free(v->items[i]);
                if (v->keys)
                        free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
        free(v->text);
        free(v);
        return NULL;
}

static void skip_ws(struct json_parser *j) {
        while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
                j->p++;
}

static bool consume(struct json_parser *j, const char *lit) {
        size_t n = strlen(lit);

        if ((size_t) (j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
                return false;
        j->p += n;
        return true;
}

static int hex4(const char *s, uint32_t *ret) {
        uint32_t v = 0;

        for (int i = 0; i < 4; i++) {
                char c = s[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

static size_t utf8_encode(uint32_t cp, char *out) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xc0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xe0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
                out[2] = (char) (0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char) (0xf0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char) (0x80 | (cp & 0x3f));
        return 4;
}

/* Parses a string at j->p (on the opening quote) into a new buffer. */
static int parse_string(struct json_parser *j, char **ret, size_t *ret_len) {
        const char *start;
        char *out;
        size_t o = 0;

        assert(*j->p == '"');
        start = ++j->p;
        /* The decoded form is never longer than the source. */
        while (j->p < j->end && *j->p != '"') {
                if (*j->p == '\\')
                        j->p++;
                j->p++;
        }
        if (j->p >= j->end)
                return -EBADMSG;
        out = malloc((size_t) (j->p - start) + 1);
        if (!out)
                return -ENOMEM;

        for (const char *s = start; s < j->p;) {
                unsigned char c = (unsigned char) *s;

                if (c < 0x20)
                        goto bad;
                if (c == '\\') {
                        uint32_t cp;

                        s++;
                        switch (*s) {
                        case '"': out[o++] = '"'; s++; break;
                        case '\\': out[o++] = '\\'; s++; break;
                        case '/': out[o++] = '/'; s++; break;
                        case 'b': out[o++] = '\b'; s++; break;
                        case 'f': out[o++] = '\f'; s++; break;
                        case 'n': out[o++] = '\n'; s++; break;
                        case 'r': out[o++] = '\r'; s++; break;
                        case 't': out[o++] = '\t'; s++; break;
                        case 'u':
                                if (j->p - s < 5 || hex4(s + 1, &cp) < 0)
                                        goto bad;
                                s += 5;
                                if (cp >= 0xd800 && cp <= 0xdbff) {
                                        uint32_t lo;

                                        if (j->p - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &lo) < 0 ||
                                            lo < 0xdc00 || lo > 0xdfff)
                                                goto bad;
                                        s += 6;
                                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                } else if (cp >= 0xdc00 && cp <= 0xdfff)
                                        goto bad;
                                o += utf8_encode(cp, out + o);
                                break;
                        default:
                                goto bad;
                        }
                        continue;
                }
                {
                        size_t n = utf8_sequence_length((const unsigned char *) s, (size_t) (j->p - s));

                        if (n == 0)
                                goto bad;
                        memcpy(out + o, s, n);
                        o += n;
                        s += n;
                }
        }
        out[o] = 0;
        j->p++;       /* the closing quote */
        *ret = out;
        *ret_len = o;
        return 0;
bad:
        free(out);
        return -EBADMSG;
}

static int parse_number(struct json_parser *j, struct json_value *v) {
        const char *s = j->p;

        if (j->p < j->end && *j->p == '-')
                j->p++;
        if (j->p >= j->end)
                return -EBADMSG;
        if (*j->p == '0')
                j->p++;
        else if (*j->p >= '1' && *j->p <= '9')
                while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
                        j->p++;
        else
                return -EBADMSG;
        if (j->p < j->end && *j->p == '.') {
                j->p++;
                if (j->p >= j->end || *j->p < '0' || *j->p > '9')
                        return -EBADMSG;
                while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
                        j->p++;
        }
        if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
                j->p++;
                if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
                        j->p++;
                if (j->p >= j->end || *j->p < '0' || *j->p > '9')
                        return -EBADMSG;
                while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
                        j->p++;
        }
        v->len = (size_t) (j->p - s);
        v->text = strndup(s, v->len);
        return v->text ? 0 : -ENOMEM;
}

static int parse_value(struct json_parser *j, struct json_value **ret);

static int append_member(struct json_value *v, char *key, struct json_value *item) {
        struct json_value **items = realloc(v->items, (v->n + 1) * sizeof(*items));

        if (!items)
                return -ENOMEM;
        v->items = items;
        if (v->type == JSON_OBJECT) {
                char **keys = realloc(v->keys, (v->n + 1) * sizeof(*keys));
                if (!keys)
                        return -ENOMEM;
                v->keys = keys;
                v->keys[v->n] = key;
        }
        v->items[v->n++] = item;
        return 0;
}

static int parse_container(struct json_parser *j, struct json_value *v) {
        char close = v->type == JSON_OBJECT ? '}' : ']';
        int r;

        if (++j->depth > JSON_MAX_DEPTH)
                return -E2BIG;
        j->p++;
        skip_ws(j);
        if (j->p < j->end && *j->p == close) {
                j->p++;
                j->depth--;
                return 0;
        }
        for (;;) {
                struct json_value *item = NULL;
                char *key = NULL;
                size_t key_len;

                skip_ws(j);
                if (v->type == JSON_OBJECT) {
                        if (j->p >= j->end || *j->p != '"')
                                return -EBADMSG;
                        r = parse_string(j, &key, &key_len);
                        if (r < 0)
                                return r;
                        skip_ws(j);
                        if (j->p >= j->end || *j->p != ':') {
                                free(key);
                                return -EBADMSG;
                        }
                        j->p++;
                }
                r = parse_value(j, &item);
                if (r >= 0)
                        r = append_member(v, key, item);
                if (r < 0) {
                        free(key);
                        json_value_free(item);
                        return r;
                }
                skip_ws(j);
                if (j->p >= j->end)
                        return -EBADMSG;
                if (*j->p == ',') {
                        j->p++;
                        continue;
                }
                if (*j->p != close)
                        return -EBADMSG;
                j->p++;
                j->depth--;
                return 0;
        }
}

static int parse_value(struct json_parser *j, struct json_value **ret) {
        struct json_value *v;
        int r = 0;

        skip_ws(j);
        if (j->p >= j->end)
                return -EBADMSG;
        v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        switch (*j->p) {
        case '{':
                v->type = JSON_OBJECT;
                r = parse_container(j, v);
                break;
        case '[':
                v->type = JSON_ARRAY;
                r = parse_container(j, v);
                break;
        case '"':
                v->type = JSON_STRING;
                r = parse_string(j, &v->text, &v->len);
                break;
        case 't':
                v->type = JSON_TRUE;
                r = consume(j, "true") ? 0 : -EBADMSG;
                break;
        case 'f':
                v->type = JSON_FALSE;
                r = consume(j, "false") ? 0 : -EBADMSG;
                break;
        case 'n':
                v->type = JSON_NULL;
                r = consume(j, "null") ? 0 : -EBADMSG;
                break;
        default:
                v->type = JSON_NUMBER;
                r = parse_number(j, v);
                break;
        }
        if (r < 0) {
                json_value_free(v);
                return r;
        }
        *ret = v;
        return 0;
}

int json_parse(const char *text, size_t len, struct json_value **ret) {
        struct json_parser j = { .p = text, .end = text + len };
        struct json_value *v = NULL;
        int r;

        /* A UTF-8 byte order mark is tolerated, as Python's json.load does not write one. */
        if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
                j.p += 3;
        r = parse_value(&j, &v);
        if (r < 0)
                return r;
        skip_ws(&j);
        if (j.p != j.end) {
                json_value_free(v);
                return -EBADMSG;
        }
        *ret = v;
        return 0;
}

const struct json_value *json_object_get(const struct json_value *v, const char *key) {
        const struct json_value *found = NULL;

        if (!v || v->type != JSON_OBJECT)
                return NULL;
        for (size_t i = 0; i < v->n; i++)
                if (strcmp(v->keys[i], key) == 0)
                        found = v->items[i];
        return found;
}

/* ------------------------------------------------------------- writer */

void json_writer_init(struct json_writer *w, FILE *f) {
        *w = (struct json_writer) { .f = f };
        w->first[0] = true;
}

static void indent(struct json_writer *w) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; i++)
                fputs("  ", w->f);
}

/* Separator and indentation before a value or a key. */
static void before_item(struct json_writer *w) {
        if (w->after_key) {
                w->after_key = false;
                return;
        }
        if (!w->first[w->depth])
                fputc(',', w->f);
        w->first[w->depth] = false;
        if (w->depth > 0)
                indent(w);
}

static void begin(struct json_writer *w, char c) {
        before_item(w);
        fputc(c, w->f);
        assert(w->depth <= JSON_MAX_DEPTH);
        w->depth++;
        w->first[w->depth] = true;
}

static void end(struct json_writer *w, char c) {
        bool empty = w->first[w->depth];

        w->depth--;
        if (!empty)
                indent(w);
        fputc(c, w->f);
        if (w->depth == 0)
                fputc('\n', w->f);
}

void json_begin_object(struct json_writer *w) {
        begin(w, '{');
}

void json_end_object(struct json_writer *w) {
        end(w, '}');
}

void json_begin_array(struct json_writer *w) {
        begin(w, '[');
}

void json_end_array(struct json_writer *w) {
        end(w, ']');
}

static void write_escaped(FILE *f, const char *s, size_t len) {
        const unsigned char *u = (const unsigned char *) s;

        fputc('"', f);
        for (size_t i = 0; i < len;) {
                unsigned char c = u[i];
                size_t n;

                switch (c) {
                case '"': fputs("\\\"", f); i++; continue;
                case '\\': fputs("\\\\", f); i++; continue;
                case '\n': fputs("\\n", f); i++; continue;
                case '\r': fputs("\\r", f); i++; continue;
                case '\t': fputs("\\t", f); i++; continue;
                case '\b': fputs("\\b", f); i++; continue;
                case '\f': fputs("\\f", f); i++; continue;
                default: break;
                }
                if (c < 0x20 || c == 0x7f) {
                        fprintf(f, "\\u%04x", c);
                        i++;
                        continue;
                }
                n = utf8_sequence_length(u + i, len - i);
                if (n == 0) {
                        fputs("\\ufffd", f);   /* not UTF-8: the replacement character */
                        i++;
                        continue;
                }
                fwrite(u + i, 1, n, f);
                i += n;
        }
        fputc('"', f);
}

void json_key(struct json_writer *w, const char *key) {
        before_item(w);
        write_escaped(w->f, key, strlen(key));
        fputs(": ", w->f);
        w->after_key = true;
}

void json_string_len(struct json_writer *w, const char *s, size_t len) {
        before_item(w);
        write_escaped(w->f, s, len);
}

void json_string(struct json_writer *w, const char *s) {
        if (!s) {
                json_null(w);
                return;
        }
        json_string_len(w, s, strlen(s));
}

void json_int(struct json_writer *w, int64_t v) {
        before_item(w);
        fprintf(w->f, "%" PRId64, v);
}

void json_uint(struct json_writer *w, uint64_t v) {
        before_item(w);
        fprintf(w->f, "%" PRIu64, v);
}

void json_double(struct json_writer *w, double v) {
        if (!isfinite(v)) {
                json_null(w);
                return;
        }
        before_item(w);
        fprintf(w->f, "%.6f", v);
}

void json_bool(struct json_writer *w, bool v) {
        before_item(w);
        fputs(v ? "true" : "false", w->f);
}

void json_null(struct json_writer *w) {
        before_item(w);
        fputs("null", w->f);
}

void json_value(struct json_writer *w, const struct json_value *v) {
        if (!v) {
                json_null(w);
                return;
        }
        switch (v->type) {
        case JSON_NULL: json_null(w); break;
        case JSON_TRUE: json_bool(w, true); break;
        case JSON_FALSE: json_bool(w, false); break;
        case JSON_NUMBER:
                before_item(w);
                fwrite(v->text, 1, v->len, w->f);
                break;
        case JSON_STRING: json_string_len(w, v->text, v->len); break;
        case JSON_ARRAY:
                json_begin_array(w);
                for (size_t i = 0; i < v->n; i++)
                        json_value(w, v->items[i]);
                json_end_array(w);
                break;
        case JSON_OBJECT:
                json_begin_object(w);
                for (size_t i = 0; i < v->n; i++) {
                        json_key(w, v->keys[i]);
                        json_value(w, v->items[i]);
                }
                json_end_object(w);
                break;
        }
}

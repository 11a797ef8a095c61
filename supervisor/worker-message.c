/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "worker-message.h"

static bool token_is(const char *s, size_t len, const char *literal) {
        return strlen(literal) == len && memcmp(s, literal, len) == 0;
}

/* Decimal digits only, at most max. */
static int parse_int(const char *s, size_t len, long max, long *ret) {
        long v = 0;

        if (len == 0 || len > 10)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                v = v * 10 + (s[i] - '0');
        }
        if (v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* A text of min..max bytes, control characters as '?'. */
static int take_text(const char *v, size_t len, size_t min, size_t max, char *out) {
        if (len < min || len > max)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) v[i];

                out[i] = c < 0x20 || c == 0x7f ? '?' : (char) c;
        }
        out[len] = 0;
        return 0;
}

static int parse_line(struct worker_message *m, const char *k, size_t klen, const char *v, size_t len,
                      unsigned *group_parts) {
        long n;

        if (token_is(k, klen, RM_ANNOUNCE_KEY_WORKER)) {
                if (token_is(v, len, "python"))
                        m->native = false;
                else if (token_is(v, len, "native"))
                        m->native = true;
                else
                        return -EINVAL;
                m->keys |= WORKER_KEY_ANNOUNCE;
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_PPID)) {
                if (parse_int(v, len, INT32_MAX, &n) < 0)
                        return -EINVAL;
                m->ppid = (pid_t) n;
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_ARGV)) {
                return take_text(v, len, 0, WORKER_ARGV_MAX, m->argv);
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_NAME)) {
                return take_text(v, len, 1, WORKER_NAME_MAX, m->name);
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_INDEX)) {
                if (parse_int(v, len, INT32_MAX, &n) < 0)
                        return -EINVAL;
                m->index = (int) n;
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_CAPTURE)) {
                if (!token_is(v, len, "1"))
                        return -EINVAL;
                m->keys |= WORKER_KEY_CAPTURE;
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_GROUP)) {
                if (take_text(v, len, 1, WORKER_GROUP_KEY_MAX, m->group_key) < 0)
                        return -EINVAL;
                *group_parts |= 1;
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_GROUP_RANK)) {
                if (parse_int(v, len, WORKER_GROUP_WORLD_MAX - 1, &n) < 0)
                        return -EINVAL;
                m->group_rank = (int) n;
                *group_parts |= 2;
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_GROUP_WORLD)) {
                if (parse_int(v, len, WORKER_GROUP_WORLD_MAX, &n) < 0 || n < 1)
                        return -EINVAL;
                m->group_world = (int) n;
                *group_parts |= 4;
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_EXIT)) {
                if (parse_int(v, len, 255, &n) < 0)
                        return -EINVAL;
                m->exit_code = (int) n;
                m->keys |= WORKER_KEY_EXIT;
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_EXCEPTION)) {
                if (take_text(v, len, 1, WORKER_EXCEPTION_MAX, m->exception) < 0)
                        return -EINVAL;
                m->keys |= WORKER_KEY_EXCEPTION;
        } else if (token_is(k, klen, RM_ANNOUNCE_KEY_EXEC)) {
                if (!token_is(v, len, "1"))
                        return -EINVAL;
                m->keys |= WORKER_KEY_EXEC;
        }
        return 0;
}

int worker_message_parse(const void *data, size_t size, struct worker_message *ret) {
        struct worker_message m = { .index = -1 };
        const char *text = data;
        unsigned group_parts = 0;

        for (size_t start = 0; start < size;) {
                const char *line = text + start, *nl = memchr(line, '\n', size - start), *eq;
                size_t len = nl ? (size_t) (nl - line) : size - start;
                int r;

                start += len + 1;
                eq = memchr(line, '=', len);
                if (!eq)
                        continue;       /* notify_parse() decides what a line must be */
                r = parse_line(&m, line, (size_t) (eq - line), eq + 1, len - (size_t) (eq - line) - 1, &group_parts);
                if (r < 0)
                        return r;
        }
        if ((m.keys & WORKER_KEY_CAPTURE) && !(m.keys & WORKER_KEY_ANNOUNCE))
                return -EINVAL;
        if (group_parts) {
                if (group_parts != 7 || m.group_rank >= m.group_world)
                        return -EINVAL;
                m.keys |= WORKER_KEY_GROUP;
        }
        *ret = m;
        return 0;
}

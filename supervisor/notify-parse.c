/* SPDX-License-Identifier: MIT */
/*
 * notify_parse(): a pure function of a datagram's bytes, which depends on
 * util.c alone, so that the fuzz target (tests/supervisor/fuzz-notify.c)
 * builds with just the two.
 */
#include <errno.h>
#include <string.h>

#include "names.h"
#include "notify.h"
#include "util.h"

static bool key_valid(const char *s, size_t len) {
        if (len < 1 || len > 64 || (s[0] >= '0' && s[0] <= '9'))
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        return true;
}

static bool token_is(const char *s, size_t len, const char *literal) {
        return strlen(literal) == len && memcmp(s, literal, len) == 0;
}

/* Decimal digits only (no sign, no space), at most UINT64_MAX. */
static int parse_u64(const char *s, size_t len, uint64_t *ret) {
        uint64_t v = 0;

        if (len == 0 || len > 20)
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                unsigned d;

                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                d = (unsigned) (s[i] - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -EINVAL;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

/* Copies a phase name (checked) into a NOTIFY_PHASE_NAME_MAX + 1 buffer. */
static int take_phase_name(const char *v, size_t len, char *out) {
        if (!rm_name_valid_len(v, len, NOTIFY_PHASE_NAME_MAX, false))
                return -EINVAL;
        memcpy(out, v, len);
        out[len] = 0;
        return 0;
}

/*
 * A status is shown in the terminal and the report: control characters
 * (but tab) become '?', so that a worker cannot move the cursor or clear
 * ringmaster's screen.  The bytes are valid UTF-8 already.
 */
static void take_status(const char *v, size_t len, char *out) {
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) v[i];

                out[i] = (c < 0x20 && c != '\t') || c == 0x7f ? '?' : (char) c;
        }
        out[len] = 0;
}

static int parse_line(struct notify_message *m, const char *key, size_t key_len, const char *v, size_t len,
                      bool *phase_seen) {
        uint64_t a, b;

        if (token_is(key, key_len, "READY")) {
                if (!token_is(v, len, "1"))
                        return -EINVAL;
                m->keys |= NOTIFY_READY;
        } else if (token_is(key, key_len, "STATUS")) {
                take_status(v, len, m->status);
                m->keys |= NOTIFY_STATUS;
        } else if (token_is(key, key_len, "WATCHDOG")) {
                if (token_is(v, len, "1"))
                        m->keys |= NOTIFY_WATCHDOG;
                else if (token_is(v, len, "trigger"))
                        m->keys |= NOTIFY_WATCHDOG_TRIGGER;
                else
                        return -EINVAL;
        } else if (token_is(key, key_len, "EXTEND_TIMEOUT_USEC")) {
                if (parse_u64(v, len, &a) < 0)
                        return -EINVAL;
                m->extend_timeout_usec = a;
                m->keys |= NOTIFY_EXTEND_TIMEOUT;
        } else if (token_is(key, key_len, "STOPPING")) {
                if (!token_is(v, len, "1"))
                        return -EINVAL;
                m->keys |= NOTIFY_STOPPING;
        } else if (token_is(key, key_len, "ERRNO")) {
                if (parse_u64(v, len, &a) < 0 || a > INT32_MAX)
                        return -EINVAL;
                m->errno_value = (int) a;
                m->keys |= NOTIFY_ERRNO;
        } else if (token_is(key, key_len, RM_NOTIFY_KEY_PHASE)) {
                if (take_phase_name(v, len, m->phase) < 0)
                        return -EINVAL;
                m->keys |= NOTIFY_PHASE;
                *phase_seen = true;
                m->phase_end_first = (m->keys & NOTIFY_PHASE_END) != 0;
        } else if (token_is(key, key_len, RM_NOTIFY_KEY_PHASE_END)) {
                if (take_phase_name(v, len, m->phase_end) < 0)
                        return -EINVAL;
                m->keys |= NOTIFY_PHASE_END;
                m->phase_end_first = !*phase_seen;
        } else if (token_is(key, key_len, RM_NOTIFY_KEY_PROGRESS)) {
                const char *slash = memchr(v, '/', len);

                if (!slash || parse_u64(v, (size_t) (slash - v), &a) < 0 ||
                    parse_u64(slash + 1, len - (size_t) (slash - v) - 1, &b) < 0 || b < 1 || a > b)
                        return -EINVAL;
                m->progress_done = a;
                m->progress_total = b;
                m->keys |= NOTIFY_PROGRESS;
        } else
                m->unknown_keys++;
        return 0;
}

int notify_parse(const void *data, size_t size, struct notify_message *ret) {
        const unsigned char *u = data;
        const char *text = data;
        struct notify_message m = {};
        bool phase_seen = false, any = false;
        int r = 0;

        if (size > NOTIFY_DATAGRAM_MAX)
                return -EMSGSIZE;
        if (size == 0)
                return -ENODATA;
        for (size_t i = 0; i < size;) {
                size_t n;

                if (u[i] == 0)
                        return -EBADMSG;
                n = utf8_sequence_length(u + i, size - i);
                if (n == 0)
                        return -EILSEQ;
                i += n;
        }

        /* Built aside, so that ret is written only on success. */
        for (size_t start = 0; start < size && r == 0;) {
                const char *line = text + start, *nl = memchr(line, '\n', size - start), *eq;
                size_t len = nl ? (size_t) (nl - line) : size - start;

                start += len + 1;
                if (len == 0)
                        continue;
                any = true;
                eq = memchr(line, '=', len);
                if (!eq || !key_valid(line, (size_t) (eq - line))) {
                        r = -EBADMSG;
                        break;
                }
                r = parse_line(&m, line, (size_t) (eq - line), eq + 1, len - (size_t) (eq - line) - 1, &phase_seen);
        }
        if (r == 0 && !any)
                r = -ENODATA;
        if (r == 0)
                *ret = m;
        return r;
}


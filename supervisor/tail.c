/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "tail.h"
#include "util.h"

int tail_init(struct tail *t, size_t capacity) {
        *t = (struct tail) { .capacity = capacity };
        if (capacity == 0)
                return 0;
        t->buf = malloc(capacity);
        return t->buf ? 0 : -ENOMEM;
}

void tail_done(struct tail *t) {
        free(t->buf);
        *t = (struct tail) {};
}

static char tail_at(const struct tail *t, size_t i) {
        return t->buf[(t->start + i) % t->capacity];
}

/* Pushes out the oldest line. */
static void tail_drop_oldest(struct tail *t) {
        size_t first = MIN(t->used, t->capacity - t->start), i;
        const char *nl;

        nl = memchr(t->buf + t->start, '\n', first);
        if (nl)
                i = (size_t) (nl - (t->buf + t->start));
        else {
                nl = memchr(t->buf, '\n', t->used - first);
                i = nl ? first + (size_t) (nl - t->buf) : t->used;
        }
        i = MIN(i + 1, t->used);
        t->start = (t->start + i) % t->capacity;
        t->used -= i;
}

void tail_append(struct tail *t, const char *line, size_t len) {
        size_t end;

        if (t->capacity < 2)
                return;
        len = MIN(len, t->capacity - 1);
        while (t->capacity - t->used < len + 1)
                tail_drop_oldest(t);
        end = (t->start + t->used) % t->capacity;
        for (size_t done = 0; done < len;) {
                size_t chunk = MIN(len - done, t->capacity - end);

                memcpy(t->buf + end, line + done, chunk);
                done += chunk;
                end = (end + chunk) % t->capacity;
        }
        t->buf[end] = '\n';
        t->used += len + 1;
}

int tail_lines(const struct tail *t, size_t max_lines, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0, from;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        /* Walk back over max_lines line ends (the last byte is always one). */
        from = t->used;
        while (from > 0 && n < max_lines) {
                size_t i = from - 1;      /* the '\n' ending this line */

                while (i > 0 && tail_at(t, i - 1) != '\n')
                        i--;
                from = i;
                n++;
        }
        while (from < t->used) {
                size_t i = from;
                _cleanup_free_ char *s = NULL;

                while (tail_at(t, i) != '\n')
                        i++;
                s = malloc(i - from + 1);
                if (!s)
                        return -ENOMEM;
                for (size_t k = from; k < i; k++)
                        s[k - from] = tail_at(t, k);
                s[i - from] = 0;
                if (strv_extend(&l, s) < 0)
                        return -ENOMEM;
                from = i + 1;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "hostlist.h"
#include "util.h"

/* One bracket's item: LO..HI printed at width digits. */
struct range {
        unsigned long lo, hi;
        int width;
};

/* One entry ("node[01-04,07]-ib"): literal text and brackets, in order. */
struct segment {
        const char *text;               /* literal: text[0..len) */
        size_t len;
        struct range *ranges;           /* bracket: ranges[0..n_ranges) */
        size_t n_ranges;
        unsigned long count;            /* bracket: how many numbers it names */
};

struct entry {
        struct segment *segs;
        size_t n_segs;
        unsigned long count;            /* product of the brackets' counts */
};

static void entry_done(struct entry *e) {
        for (size_t i = 0; i < e->n_segs; i++)
                free(e->segs[i].ranges);
        free(e->segs);
        *e = (struct entry) {};
}

static int push_segment(struct entry *e, struct segment s) {
        struct segment *n = realloc(e->segs, (e->n_segs + 1) * sizeof(*n));

        if (!n)
                return -ENOMEM;
        e->segs = n;
        e->segs[e->n_segs++] = s;
        return 0;
}

static int parse_number(const char **p, const char *end, unsigned long *ret, int *ret_width) {
        const char *s = *p;
        unsigned long v = 0;

        if (s >= end || !isdigit((unsigned char) *s))
                return -EINVAL;
        while (s < end && isdigit((unsigned char) *s)) {
                if (v > (ULONG_MAX - 9) / 10)
                        return -EINVAL;
                v = v * 10 + (unsigned long) (*s - '0');
                s++;
        }
        *ret_width = (int) (s - *p);
        *ret = v;
        *p = s;
        return 0;
}

/* The inside of a bracket, [start, end): "01-04,07". */
static int parse_bracket(const char *start, const char *end, struct segment *ret) {
        struct segment s = {};
        const char *p = start;
        int r;

        if (p == end)
                return -EINVAL;
        while (p < end) {
                struct range rg;
                struct range *n;
                int w;

                r = parse_number(&p, end, &rg.lo, &rg.width);
                if (r < 0)
                        goto fail;
                rg.hi = rg.lo;
                if (p < end && *p == '-') {
                        p++;
                        r = parse_number(&p, end, &rg.hi, &w);
                        if (r < 0 || rg.hi < rg.lo) {
                                r = -EINVAL;
                                goto fail;
                        }
                }
                if (p < end) {
                        if (*p != ',' || p + 1 == end) {
                                r = -EINVAL;
                                goto fail;
                        }
                        p++;
                }
                if (rg.hi - rg.lo >= HOSTLIST_MAX_HOSTS || s.count + (rg.hi - rg.lo + 1) > HOSTLIST_MAX_HOSTS) {
                        r = -E2BIG;
                        goto fail;
                }
                n = realloc(s.ranges, (s.n_ranges + 1) * sizeof(*n));
                if (!n) {
                        r = -ENOMEM;
                        goto fail;
                }
                s.ranges = n;
                s.ranges[s.n_ranges++] = rg;
                s.count += rg.hi - rg.lo + 1;
        }
        *ret = s;
        return 0;
fail:
        free(s.ranges);
        return r;
}

/* One top-level entry, [start, end). */
static int parse_entry(const char *start, const char *end, struct entry *ret) {
        struct entry e = { .count = 1 };
        const char *p = start;
        int r;

        if (start == end)
                return -EINVAL;
        while (p < end) {
                const char *open = memchr(p, '[', (size_t) (end - p));
                const char *lit_end = open ? open : end;
                const char *close;
                struct segment s;

                if (memchr(p, ']', (size_t) (lit_end - p))) {
                        r = -EINVAL;
                        goto fail;
                }
                if (lit_end > p) {
                        r = push_segment(&e, (struct segment) { .text = p, .len = (size_t) (lit_end - p) });
                        if (r < 0)
                                goto fail;
                }
                if (!open)
                        break;
                close = memchr(open, ']', (size_t) (end - open));
                if (!close) {
                        r = -EINVAL;
                        goto fail;
                }
                r = parse_bracket(open + 1, close, &s);
                if (r < 0)
                        goto fail;
                r = push_segment(&e, s);
                if (r < 0) {
                        free(s.ranges);
                        goto fail;
                }
                if (e.count > HOSTLIST_MAX_HOSTS / s.count) {
                        r = -E2BIG;
                        goto fail;
                }
                e.count *= s.count;
                p = close + 1;
        }
        *ret = e;
        return 0;
fail:
        entry_done(&e);
        return r;
}

/* The n-th (0-based, n < e->count) name of an entry. */
static int entry_name(const struct entry *e, unsigned long n, char **ret) {
        char buf[HOSTLIST_MAX_NAME + 1];
        size_t len = 0;

        /* Mixed radix, the leftmost bracket most significant: decode from the right. */
        unsigned long digits[64];
        size_t nb = 0;

        for (size_t i = e->n_segs; i-- > 0;)
                if (e->segs[i].ranges) {
                        if (nb == ELEMENTSOF(digits))
                                return -EINVAL;
                        digits[nb++] = n % e->segs[i].count;
                        n /= e->segs[i].count;
                }
        for (size_t i = 0; i < e->n_segs; i++) {
                const struct segment *s = &e->segs[i];
                int w;

                if (!s->ranges) {
                        if (len + s->len > HOSTLIST_MAX_NAME)
                                return -ENAMETOOLONG;
                        memcpy(buf + len, s->text, s->len);
                        len += s->len;
                        continue;
                }
                unsigned long k = digits[--nb];
                for (size_t j = 0; j < s->n_ranges; j++) {
                        unsigned long size = s->ranges[j].hi - s->ranges[j].lo + 1;
                        if (k < size) {
                                w = snprintf(buf + len, sizeof(buf) - len, "%0*lu", s->ranges[j].width,
                                             s->ranges[j].lo + k);
                                if (w < 0 || (size_t) w >= sizeof(buf) - len)
                                        return -ENAMETOOLONG;
                                len += (size_t) w;
                                break;
                        }
                        k -= size;
                }
        }
        buf[len] = 0;
        *ret = strdup(buf);
        return *ret ? 0 : -ENOMEM;
}

/* Calls fn on each entry of list, in order; stops at the first non-zero return. */
static int for_each_entry(const char *list, int (*fn)(struct entry *e, void *userdata), void *userdata) {
        const char *p;
        int depth = 0;

        if (!list || !*list)
                return -EINVAL;
        p = list;
        for (const char *q = list;; q++) {
                if (*q == '[')
                        depth++;
                else if (*q == ']' && --depth < 0)
                        return -EINVAL;
                if ((*q == ',' && depth == 0) || *q == 0) {
                        struct entry e;
                        int r;

                        if (depth != 0)
                                return -EINVAL;
                        r = parse_entry(p, q, &e);
                        if (r < 0)
                                return r;
                        r = fn(&e, userdata);
                        entry_done(&e);
                        if (r != 0)
                                return r;
                        if (*q == 0)
                                return 0;
                        p = q + 1;
                }
        }
}

struct expand_state {
        size_t max;
        size_t n;
        char **hosts;
};

static int expand_one(struct entry *e, void *userdata) {
        struct expand_state *st = userdata;

        if (st->n + e->count > st->max)
                return -E2BIG;
        for (unsigned long i = 0; i < e->count; i++) {
                char *name;
                int r = entry_name(e, i, &name);

                if (r < 0)
                        return r;
                char **n = realloc(st->hosts, (st->n + 2) * sizeof(char *));
                if (!n) {
                        free(name);
                        return -ENOMEM;
                }
                st->hosts = n;
                st->hosts[st->n++] = name;
                st->hosts[st->n] = NULL;
        }
        return 0;
}

int hostlist_expand(const char *list, size_t max, char ***ret) {
        struct expand_state st = { .max = max ? max : HOSTLIST_MAX_HOSTS };
        int r;

        r = for_each_entry(list, expand_one, &st);
        if (r < 0) {
                strv_free(st.hosts);
                return r;
        }
        *ret = st.hosts;
        return 0;
}

struct nth_state {
        size_t n;
        char *name;
};

static int nth_one(struct entry *e, void *userdata) {
        struct nth_state *st = userdata;
        int r;

        if (st->n >= e->count) {
                st->n -= e->count;
                return 0;
        }
        r = entry_name(e, st->n, &st->name);
        return r < 0 ? r : 1;
}

int hostlist_nth(const char *list, size_t n, char **ret) {
        struct nth_state st = { .n = n };
        int r = for_each_entry(list, nth_one, &st);

        if (r < 0)
                return r;
        if (r == 0)
                return -ERANGE;
        *ret = st.name;
        return 0;
}

static int count_one(struct entry *e, void *userdata) {
        size_t *n = userdata;

        *n += e->count;
        return *n > HOSTLIST_MAX_HOSTS ? -E2BIG : 0;
}

int hostlist_count(const char *list, size_t *ret) {
        size_t n = 0;
        int r = for_each_entry(list, count_one, &n);

        if (r < 0)
                return r;
        *ret = n;
        return 0;
}

/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse-util.h"

int parse_int_range(const char *s, long long min, long long max, long long *ret) {
        char *end;
        long long v;

        if (!s || !*s || isspace((unsigned char) *s))
                return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (*end)
                return -EINVAL;
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        *ret = v;
        return 0;
}

/* A non-negative decimal with an optional fraction, then the unit's text. */
static int parse_decimal(const char *s, double *ret, const char **ret_unit) {
        const char *p = s;
        char *end;
        double v;

        if (!isdigit((unsigned char) *p) && !(*p == '.' && isdigit((unsigned char) p[1])))
                return -EINVAL;
        while (isdigit((unsigned char) *p) || *p == '.')
                p++;
        errno = 0;
        v = strtod(s, &end);
        if (end != p || errno != 0 || !isfinite(v))
                return -EINVAL;
        *ret = v;
        *ret_unit = p;
        return 0;
}

int parse_duration_usec(const char *s, uint64_t *ret) {
        static const struct { const char *unit; double usec; } units[] = {
                { "", 1e6 }, { "s", 1e6 }, { "sec", 1e6 }, { "ms", 1e3 }, { "us", 1 },
                { "m", 60e6 }, { "min", 60e6 }, { "h", 3600e6 },
        };
        const char *unit;
        double v;

        if (!s || parse_decimal(s, &v, &unit) < 0)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (strcmp(unit, units[i].unit) == 0) {
                        double usec = v * units[i].usec;

                        if (usec > 86400e6)
                                return -ERANGE;
                        *ret = (uint64_t) llround(usec);
                        /* 0 means "off" to many options: a positive duration is never 0. */
                        if (*ret == 0 && usec > 0)
                                *ret = 1;
                        return 0;
                }
        return -EINVAL;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct { const char *unit; uint64_t factor; } units[] = {
                { "", 1 }, { "B", 1 },
                { "K", 1ull << 10 }, { "KiB", 1ull << 10 }, { "k", 1ull << 10 },
                { "M", 1ull << 20 }, { "MiB", 1ull << 20 },
                { "G", 1ull << 30 }, { "GiB", 1ull << 30 },
        };
        const char *unit;
        double v;

        if (!s || parse_decimal(s, &v, &unit) < 0)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (strcmp(unit, units[i].unit) == 0) {
                        double bytes = v * (double) units[i].factor;

                        if (bytes > (double) (1ull << 40))
                                return -ERANGE;
                        if (bytes != floor(bytes))
                                return -EINVAL;
                        *ret = (uint64_t) bytes;
                        return 0;
                }
        return -EINVAL;
}

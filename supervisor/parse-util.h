/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_PARSE_UTIL_H
#define RINGMASTER_PARSE_UTIL_H

/* Strict parsers for option values: the whole string must parse. */

#include <stdint.h>

/* A decimal integer in [min, max]; -EINVAL (not a number) or -ERANGE. */
int parse_int_range(const char *s, long long min, long long max, long long *ret);

/*
 * A duration: "10", "1.5", "10s", "500ms", "2m", "1h" (no unit: seconds);
 * returns microseconds.  -EINVAL, or -ERANGE past a day.
 */
int parse_duration_usec(const char *s, uint64_t *ret);

/*
 * A byte size: "1024", "64K", "16M", "1G", also "KiB"/"MiB"/"GiB" and
 * lower case; powers of 1024.  -EINVAL, or -ERANGE past 1 TiB.
 */
int parse_size(const char *s, uint64_t *ret);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_TAIL_H
#define RINGMASTER_TAIL_H

/*
 * The last lines of a stream, in a fixed ring of bytes: each line is stored
 * with its '\n'; adding one that does not fit pushes the oldest out.  A line
 * longer than the ring keeps only its beginning.
 */

#include <stddef.h>

struct tail {
        char *buf;
        size_t capacity, start, used;
};

int tail_init(struct tail *t, size_t capacity);
void tail_done(struct tail *t);
void tail_append(struct tail *t, const char *line, size_t len);
/* Copies out the last max_lines lines (NULL-terminated); empty vector when none. */
int tail_lines(const struct tail *t, size_t max_lines, char ***ret);

#endif

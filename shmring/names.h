/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_NAMES_H
#define RINGMASTER_NAMES_H

/*
 * The one check of ringmaster's names: a run id, a channel or table name, a
 * phase name, a role, a communicator name, a descriptor or tensor key is
 * 1..max characters of [A-Za-z0-9._-] ('/' too where slash is set: keys
 * that name a path of things).  The same bytes are valid in every locale.
 *
 * Header-only and private (not installed): libshmring, librmworker, the
 * worker's notify calls (engine/notify.c, which must not link anything)
 * and the supervisor share it.  Python's copy is the regular expression
 * [A-Za-z0-9._-] in ringmaster/worker.py and ringmaster/shmring.py.
 */

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

static inline bool rm_name_char_valid(char c, bool slash) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-' || (slash && c == '/');
}

/* s[0..len): 1..max valid characters. */
static inline bool rm_name_valid_len(const char *s, size_t len, size_t max, bool slash) {
        if (len < 1 || len > max)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!rm_name_char_valid(s[i], slash))
                        return false;
        return true;
}

/* A string (NULL: false); it is read at most max + 1 bytes far. */
static inline bool rm_name_valid(const char *s, size_t max, bool slash) {
        return s && rm_name_valid_len(s, strnlen(s, max + 1), max, slash);
}

#endif

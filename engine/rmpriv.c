/* SPDX-License-Identifier: MIT */
/*
 * The rmpriv_ helpers (internal.h) that every part of the worker runtime
 * uses: rm_last_error()'s per-thread text and a random 64-bit value.
 * Exported from librmworker under the rmpriv_ prefix for librmworker-cuda,
 * never declared in a public header.
 */

#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>

#include "internal.h"

static _Thread_local char last_error[512];

_public_ const char *rm_last_error(void) {
        return last_error;
}

_public_ void rmpriv_clear_error(void) {
        last_error[0] = '\0';
}

static void set_error_va(const char *fmt, va_list ap) {
        vsnprintf(last_error, sizeof(last_error), fmt, ap);
}

_public_ void rmpriv_set_error(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        set_error_va(fmt, ap);
        va_end(ap);
}

_public_ int rmpriv_fail(int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        set_error_va(fmt, ap);
        va_end(ap);
        return r;
}

_public_ uint64_t rmpriv_random_u64(void) {
        uint64_t v = 0;

        /* getrandom() of 8 bytes does not fail once the pool is initialised;
         * should it, mix in what differs between processes. */
        if (getrandom(&v, sizeof(v), 0) != (ssize_t) sizeof(v))
                v = (uint64_t) now_ns() ^ ((uint64_t) getpid() << 32);
        return v;
}

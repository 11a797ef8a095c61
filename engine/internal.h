/* SPDX-License-Identifier: MIT */
#ifndef RM_ENGINE_INTERNAL_H
#define RM_ENGINE_INTERNAL_H

/*
 * Helpers shared by librmworker and librmworker-cuda.  The rmpriv_*
 * functions are exported under the version node LIBRMWORKER_PRIVATE for
 * librmworker-cuda alone: no ABI promise.
 */

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "names.h"
#include "rm_worker.h"
#include "shmring.h"

#define _public_ __attribute__((visibility("default")))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _unlikely_(x) __builtin_expect(!!(x), 0)
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Argument checks at the public edge, as systemd's assert_return(). */
#define check_arg(expr, err)             \
        do {                             \
                if (_unlikely_(!(expr))) \
                        return (err);    \
        } while (0)

#define NSEC_PER_SEC INT64_C(1000000000)
#define NSEC_PER_MSEC INT64_C(1000000)

static inline int64_t now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* A deadline from a relative timeout (RM_INFINITE: none, INT64_MAX). */
static inline int64_t deadline_after(int64_t timeout_ns) {
        if (timeout_ns < 0)
                return INT64_MAX;
        if (timeout_ns > INT64_MAX - now_ns())
                return INT64_MAX;
        return now_ns() + timeout_ns;
}

/* What is left of a deadline, as a shmring timeout (never negative). */
static inline int64_t deadline_left(int64_t deadline) {
        int64_t now;

        if (deadline == INT64_MAX)
                return RM_INFINITE;
        now = now_ns();
        return deadline > now ? deadline - now : 0;
}

static inline void close_fdp(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ __attribute__((cleanup(close_fdp)))

static inline int take_fd(int *fd) {
        int r = *fd;

        *fd = -EBADF;
        return r;
}


/* ------------------------------------------------ rmpriv.c: errors, randomness */

/* Sets the calling thread's rm_last_error() text. */
void rmpriv_set_error(const char *fmt, ...) _printf_(1, 2);
/* The same, returning r: `return rmpriv_fail(-EINVAL, "RANK=%s ...", v);` */
int rmpriv_fail(int r, const char *fmt, ...) _printf_(2, 3);
/* Clears it (at the start of a call that may set it). */
void rmpriv_clear_error(void);

/* A random 64-bit value (getrandom). */
uint64_t rmpriv_random_u64(void);

/* ------------------------------------------------ librmworker only */

struct fdshare;

struct rm_worker {
        pthread_mutex_t lock;           /* fds */
        struct shmring *seg;
        uint32_t rank;
        uint32_t world_size;
        uint32_t local_rank;
        uint32_t local_world_size;
        char run_id[SHMRING_RUN_ID_MAX + 1];
        char *run_dir;
        struct fdshare *fds;            /* NULL until the first rm_fd_share() */
};

/* Stops the fd server thread, unlinks its socket, closes every shared fd. */
struct fdshare *fdshare_free(struct fdshare *f);

#endif

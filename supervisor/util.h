/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_UTIL_H
#define RINGMASTER_UTIL_H

/*
 * Small helpers shared by the supervisor's files: cleanup attributes,
 * ownership hand-off, time, string vectors, signal names.
 */

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define NSEC_PER_USEC UINT64_C(1000)

/* ---------------------------------------------------------- cleanup */

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ __attribute__((cleanup(freep)))

static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void) close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ __attribute__((cleanup(closep)))

char **strv_free(char **l);
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ __attribute__((cleanup(strv_freep)))

/* Hands ownership out of a cleanup variable. */
#define TAKE_PTR(p) ({ __typeof__(p) _p = (p); (p) = NULL; _p; })
#define TAKE_FD(fd) ({ int _fd = (fd); (fd) = -EBADF; _fd; })

/* ---------------------------------------------------------- time */

/* Microseconds as seconds, for what people read. */
static inline double secs(uint64_t usec) {
        return (double) usec / 1e6;
}
/* The seconds from t to now; 0 when t is not before now. */
static inline double secs_since(uint64_t now, uint64_t t) {
        return now > t ? secs(now - t) : 0.0;
}

/* CLOCK_MONOTONIC in microseconds (the clock sd-event's timers use). */
uint64_t now_usec(void);
/* A condition variable whose timed waits count on CLOCK_MONOTONIC, now_usec()'s clock. */
void cond_init_monotonic(pthread_cond_t *cond);
/* Waits on cond (made by cond_init_monotonic()) until signalled or now_usec() reaches until_usec. */
void cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t until_usec);
/* CLOCK_REALTIME in microseconds. */
uint64_t wallclock_usec(void);
/* "2025-01-31T12:34:56.789Z" into buf (at least 32 bytes). */
char *format_utc_timestamp(char *buf, size_t size, uint64_t realtime_usec);

/* ---------------------------------------------------------- strings */

size_t strv_length(char *const *l);
/* Appends a copy of s; -ENOMEM. */
int strv_extend(char ***l, const char *s);
/* Appends a formatted string; -ENOMEM. */
int strv_extendf(char ***l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A deep copy; NULL on allocation failure. */
char **strv_copy(char *const *l);
/* The value of NAME in an environment vector (NAME=VALUE strings), or NULL. */
const char *strv_env_get(char *const *env, const char *name);

/*
 * For callers that report errors as text: the formatted message goes to
 * *ret_error (the caller frees it; a NULL ret_error drops it) and r is
 * returned, or -ENOMEM when the message cannot be made.
 */
int error_setf(char **ret_error, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * Closes f, an open_memstream(buf, ...) stream: 0, and the text moves from *buf to *ret (when ret is not
 * NULL); or -ENOMEM when the stream failed, *buf freed and NULL.
 */
int memstream_finish(FILE *f, char **buf, char **ret);

bool startswith(const char *s, const char *prefix);

/*
 * Length (1..4) of the well-formed UTF-8 sequence that starts s (len > 0
 * bytes), or 0 when it is not one: no overlong forms, surrogates or code
 * points past U+10FFFF.
 */
size_t utf8_sequence_length(const unsigned char *s, size_t len);

/* "SIGTERM" for 15, or "SIG42" style for unnamed ones (buf >= 16 bytes). */
const char *signal_name(int sig, char *buf, size_t size);

/* Fills buf with n random characters of [a-z0-9] and a NUL. */
int random_id(char *buf, size_t n);

/* Human-readable byte count ("16.0 MiB") into buf. */
char *format_bytes(char *buf, size_t size, uint64_t bytes);

/* Makes sure fds 0, 1 and 2 are open (on /dev/null when they were not). */
int ensure_stdio_open(void);

/* Reads a whole small file (at most max bytes, NUL-terminated); -EFBIG past max. */
int read_file_bounded(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_size);

#endif

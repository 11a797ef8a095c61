/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;

        if (l)
                while (l[n])
                        n++;
        return n;
}

static int strv_push(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **m;

        m = realloc(*l, (n + 2) * sizeof(char *));
        if (!m)
                return -ENOMEM;
        m[n] = s;
        m[n + 1] = NULL;
        *l = m;
        return 0;
}

int strv_extend(char ***l, const char *s) {
        char *c;
        int r;

        c = strdup(s);
        if (!c)
                return -ENOMEM;
        r = strv_push(l, c);
        if (r < 0)
                free(c);
        return r;
}

int strv_extendf(char ***l, const char *fmt, ...) {
        va_list ap;
        char *s;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        r = strv_push(l, s);
        if (r < 0)
                free(s);
        return r;
}

const char *strv_env_get(char *const *env, const char *name) {
        size_t n = strlen(name);

        for (size_t i = 0; env && env[i]; i++)
                if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
                        return env[i] + n + 1;
        return NULL;
}

int memstream_finish(FILE *f, char **buf, char **ret) {
        if (fclose(f) != 0) {
                free(*buf);
                *buf = NULL;
                return -ENOMEM;
        }
        if (ret) {
                *ret = *buf;
                *buf = NULL;
        }
        return 0;
}

int error_setf(char **ret_error, int r, const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        int k;

        va_start(ap, fmt);
        k = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        if (ret_error)
                *ret_error = s;
        else
                free(s);
        return r;
}

char **strv_copy(char *const *l) {
        _cleanup_strv_free_ char **c = NULL;

        c = calloc(1, sizeof(char *));
        if (!c)
                return NULL;
        for (size_t i = 0; l && l[i]; i++)
                if (strv_extend(&c, l[i]) < 0)
                        return NULL;
        return TAKE_PTR(c);
}

bool startswith(const char *s, const char *prefix) {
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

void cond_init_monotonic(pthread_cond_t *cond) {
        pthread_condattr_t ca;

        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(cond, &ca);
        pthread_condattr_destroy(&ca);
}

void cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, uint64_t until_usec) {
        struct timespec ts = { .tv_sec = (time_t) (until_usec / USEC_PER_SEC),
                               .tv_nsec = (long) (until_usec % USEC_PER_SEC * NSEC_PER_USEC) };

        (void) pthread_cond_timedwait(cond, lock, &ts);
}

uint64_t wallclock_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

char *format_utc_timestamp(char *buf, size_t size, uint64_t realtime_usec) {
        time_t sec = (time_t) (realtime_usec / USEC_PER_SEC);
        struct tm tm;
        char date[24];

        gmtime_r(&sec, &tm);
        strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf, size, "%s.%03uZ", date, (unsigned) (realtime_usec % USEC_PER_SEC / 1000));
        return buf;
}

const char *signal_name(int sig, char *buf, size_t size) {
        static const char *const names[] = {
                [SIGHUP] = "SIGHUP",   [SIGINT] = "SIGINT",       [SIGQUIT] = "SIGQUIT",
                [SIGILL] = "SIGILL",   [SIGTRAP] = "SIGTRAP",     [SIGABRT] = "SIGABRT",
                [SIGBUS] = "SIGBUS",   [SIGFPE] = "SIGFPE",       [SIGKILL] = "SIGKILL",
                [SIGUSR1] = "SIGUSR1", [SIGSEGV] = "SIGSEGV",     [SIGUSR2] = "SIGUSR2",
                [SIGPIPE] = "SIGPIPE", [SIGALRM] = "SIGALRM",     [SIGTERM] = "SIGTERM",
                [SIGSTKFLT] = "SIGSTKFLT", [SIGCHLD] = "SIGCHLD", [SIGCONT] = "SIGCONT",
                [SIGSTOP] = "SIGSTOP", [SIGTSTP] = "SIGTSTP",     [SIGTTIN] = "SIGTTIN",
                [SIGTTOU] = "SIGTTOU", [SIGURG] = "SIGURG",       [SIGXCPU] = "SIGXCPU",
                [SIGXFSZ] = "SIGXFSZ", [SIGVTALRM] = "SIGVTALRM", [SIGPROF] = "SIGPROF",
                [SIGWINCH] = "SIGWINCH", [SIGIO] = "SIGIO",       [SIGPWR] = "SIGPWR",
                [SIGSYS] = "SIGSYS",
        };

        if (sig > 0 && (size_t) sig < ELEMENTSOF(names) && names[sig])
                return names[sig];
        if (sig >= SIGRTMIN && sig <= SIGRTMAX)
                snprintf(buf, size, "SIGRTMIN+%d", sig - SIGRTMIN);
        else
                snprintf(buf, size, "SIG%d", sig);
        return buf;
}

int random_id(char *buf, size_t n) {
        static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
        uint8_t raw[64];

        if (n > sizeof(raw))
                return -EINVAL;
        if (getrandom(raw, n, 0) != (ssize_t) n)
                return errno > 0 ? -errno : -EIO;
        for (size_t i = 0; i < n; i++)
                buf[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
        buf[n] = 0;
        return 0;
}

char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
        double v = (double) bytes;
        size_t u = 0;

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRIu64 " B", bytes);
                return buf;
        }
        v /= 1024;
        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        snprintf(buf, size, "%.1f %s", v, units[u]);
        return buf;
}

int ensure_stdio_open(void) {
        for (int fd = 0; fd < 3; fd++) {
                int n;

                if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
                        continue;
                n = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
                if (n < 0)
                        return -errno;
                if (n != fd) {
                        /* A lower fd was closed too: open() returned it; the loop fixes it in turn. */
                        if (dup2(n, fd) < 0)
                                return -errno;
                        if (n > 2)
                                close(n);
                }
        }
        return 0;
}

int read_file_bounded(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + size, max + 1 - size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > max)
                        return -EFBIG;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

size_t utf8_sequence_length(const unsigned char *s, size_t len) {
        unsigned char c = s[0];
        size_t n;

        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef)
                n = 3;
        else if (c >= 0xf0 && c <= 0xf4)
                n = 4;
        else
                return 0;
        if (len < n)
                return 0;
        for (size_t i = 1; i < n; i++)
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
        if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
            (c == 0xf4 && s[1] > 0x8f))
                return 0;
        return n;
}

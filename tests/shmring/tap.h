/* SPDX-License-Identifier: MIT */
#ifndef SHMRING_TEST_TAP_H
#define SHMRING_TEST_TAP_H

/*
 * What the libshmring tests share: checks that print file:line and the
 * errno's name, a unique run id per segment, children that are killed when
 * the test ends (and die with their parent), and a check that the test left
 * no /dev/shm object carrying its run ids behind.
 *
 *   int main(void) {
 *           tap_init("test-foo");
 *           ...
 *           CHECK_OK(shmring_create(&spec, &s));
 *           CHECK_ERR(shmring_attach("nope", 0, &t), -ENOENT);
 *           ...
 *           return tap_done();
 *   }
 *
 * A failed check ends the test with exit status 1 (_exit(1) in a child
 * made by tap_fork()); tap_skip() ends it with 77.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shmring.h"

#define TAP_MAX_CHILDREN 256

struct tap_state {
        char name[40];
        char prefix[64];                /* "<name>-<pid>-": every run id starts so */
        unsigned next_run_id;
        pid_t main_pid;
        bool in_child;
        pid_t children[TAP_MAX_CHILDREN];
        unsigned n_children;
};

static struct tap_state tap;

static inline const char *tap_errno_name(int e) {
        if (e < 0)
                e = -e;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
        const char *n = strerrorname_np(e);
        if (n)
                return n;
#endif
        static __thread char unknown[24];
        snprintf(unknown, sizeof(unknown), "errno %d", e);
        return unknown;
}

__attribute__((noreturn)) static inline void tap_exit(int status) {
        if (tap.in_child)
                _exit(status);
        exit(status);
}

__attribute__((format(printf, 3, 4), noreturn))
static inline void tap_fail(const char *file, int line, const char *fmt, ...) {
        va_list ap;
        char text[1024];

        va_start(ap, fmt);
        vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);
        fprintf(stderr, "FAIL %s:%d%s: %s\n", file, line, tap.in_child ? " (child)" : "", text);
        tap_exit(1);
}

__attribute__((format(printf, 1, 2), noreturn))
static inline void tap_skip(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        fprintf(stderr, "SKIP %s: ", tap.name);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        tap_exit(77);
}

__attribute__((format(printf, 1, 2)))
static inline void tap_note(const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        fprintf(stderr, "# ");
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}

/* cond must hold. */
#define CHECK(cond)                                                                     \
        do {                                                                            \
                if (!(cond))                                                            \
                        tap_fail(__FILE__, __LINE__, "%s", #cond);                      \
        } while (0)

/* A libshmring call must succeed (return >= 0). */
#define CHECK_OK(expr)                                                                  \
        do {                                                                            \
                long long check_r_ = (long long) (expr);                                \
                if (check_r_ < 0)                                                       \
                        tap_fail(__FILE__, __LINE__, "%s: %s", #expr,                   \
                                 tap_errno_name((int) check_r_));                       \
        } while (0)

/* A libshmring call must fail with exactly this negative errno. */
#define CHECK_ERR(expr, err)                                                            \
        do {                                                                            \
                long long check_r_ = (long long) (expr);                                \
                if (check_r_ != (long long) (err) && check_r_ < 0)                      \
                        tap_fail(__FILE__, __LINE__, "%s: %s, expected %s", #expr,      \
                                 tap_errno_name((int) check_r_), tap_errno_name(err));  \
                if (check_r_ != (long long) (err))                                      \
                        tap_fail(__FILE__, __LINE__, "%s: returned %lld, expected %s",  \
                                 #expr, check_r_, tap_errno_name(err));                 \
        } while (0)

/* A libc call that returns -1 and sets errno on failure must succeed. */
#define CHECK_SYS(expr)                                                                 \
        do {                                                                            \
                if ((expr) == -1)                                                       \
                        tap_fail(__FILE__, __LINE__, "%s: %s (%s)", #expr,              \
                                 tap_errno_name(errno), strerror(errno));               \
        } while (0)

/* Two integers must be equal; prints both. */
#define CHECK_EQ(a, b)                                                                  \
        do {                                                                            \
                long long check_a_ = (long long) (a), check_b_ = (long long) (b);       \
                if (check_a_ != check_b_)                                               \
                        tap_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b,  \
                                 check_a_, check_b_);                                   \
        } while (0)

static inline uint64_t tap_now_ns(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

static inline void tap_sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L };

        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* An unsigned number from the environment, or def. */
static inline uint64_t tap_env_u64(const char *name, uint64_t def) {
        const char *v = getenv(name);
        char *end;
        unsigned long long n;

        if (!v || !*v)
                return def;
        errno = 0;
        n = strtoull(v, &end, 0);
        if (errno || *end) {
                fprintf(stderr, "FAIL %s: bad %s=%s\n", tap.name, name, v);
                tap_exit(99);
        }
        return n;
}

/* "/dev/shm/<name>" for a segment name with or without its leading '/'. */
static inline const char *tap_shm_path(const char *name) {
        static __thread char path[256];

        snprintf(path, sizeof(path), "/dev/shm/%s", name[0] == '/' ? name + 1 : name);
        return path;
}

/*
 * Counts (and removes, so that a failed run leaves nothing either) the
 * /dev/shm objects whose name contains one of this test's run ids.
 */
static inline unsigned tap_shm_leftovers(bool quiet) {
        DIR *d = opendir("/dev/shm");
        struct dirent *de;
        unsigned n = 0;

        if (!d)
                return 0;
        while ((de = readdir(d))) {
                if (!strstr(de->d_name, tap.prefix))
                        continue;
                if (!quiet)
                        fprintf(stderr, "FAIL %s: left behind: /dev/shm/%s\n", tap.name, de->d_name);
                if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno == EISDIR)
                        (void) unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
                n++;
        }
        closedir(d);
        return n;
}

static inline void tap_forget_child(pid_t pid) {
        for (unsigned i = 0; i < tap.n_children; i++)
                if (tap.children[i] == pid) {
                        tap.children[i] = tap.children[--tap.n_children];
                        return;
                }
}

static inline void tap_at_exit(void) {
        if (tap.in_child || getpid() != tap.main_pid)
                return;
        for (unsigned i = 0; i < tap.n_children; i++)
                (void) kill(tap.children[i], SIGKILL);
        for (unsigned i = 0; i < tap.n_children; i++)
                (void) waitpid(tap.children[i], NULL, 0);
        tap.n_children = 0;
        (void) tap_shm_leftovers(true);
}

static inline void tap_init(const char *name) {
        snprintf(tap.name, sizeof(tap.name), "%s", name);
        tap.main_pid = getpid();
        snprintf(tap.prefix, sizeof(tap.prefix), "%s-%d-", name, (int) tap.main_pid);
        setvbuf(stdout, NULL, _IOLBF, 0);
        atexit(tap_at_exit);
}

static inline void tap_write_file(const char *path, const char *text) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);

        if (fd < 0)
                return;
        (void) !write(fd, text, strlen(text));
        close(fd);
}

/*
 * Moves the calling process into a private mount namespace with a tmpfs of
 * its own on /dev/shm (tmpfs options `opts`, e.g. "size=64m"), where no
 * other test's (nor any ringmaster's) segments live and no concurrent
 * stale-segment sweep can reach.  Returns NULL, or why it cannot be had.
 */
static inline const char *tap_private_shm(const char *opts) {
        static char why[160];
        char data[128], map[64];
        uid_t uid = geteuid();
        gid_t gid = getegid();

        if (unshare(CLONE_NEWNS) < 0) {
                /* Not root: a user namespace can own a mount namespace. */
                if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
                        snprintf(why, sizeof(why), "no mount namespace: %s", strerror(errno));
                        return why;
                }
                tap_write_file("/proc/self/setgroups", "deny");
                snprintf(map, sizeof(map), "%u %u 1", (unsigned) uid, (unsigned) uid);
                tap_write_file("/proc/self/uid_map", map);
                snprintf(map, sizeof(map), "%u %u 1", (unsigned) gid, (unsigned) gid);
                tap_write_file("/proc/self/gid_map", map);
        }
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                snprintf(why, sizeof(why), "cannot make / private: %s", strerror(errno));
                return why;
        }
        snprintf(data, sizeof(data), "%s,mode=1777", opts);
        if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, data) < 0) {
                snprintf(why, sizeof(why), "cannot mount a tmpfs on /dev/shm: %s", strerror(errno));
                return why;
        }
        return NULL;
}

/* A run id no other test (nor another segment of this one) uses. */
static inline const char *tap_run_id(void) {
        static char ids[8][SHMRING_RUN_ID_MAX + 1];
        char *id = ids[tap.next_run_id % 8];

        snprintf(id, SHMRING_RUN_ID_MAX + 1, "%s%u", tap.prefix, tap.next_run_id++);
        return id;
}

/*
 * fork() for tests: the child dies with its parent (PR_SET_PDEATHSIG) and
 * its failed checks _exit(1); the parent kills it at exit if it is still
 * there.  Children must end with _exit().
 */
static inline pid_t tap_fork(void) {
        pid_t parent = getpid(), pid;

        CHECK(tap.n_children < TAP_MAX_CHILDREN);
        fflush(NULL);
        pid = fork();
        CHECK_SYS(pid);
        if (pid == 0) {
                tap.in_child = true;
                tap.n_children = 0;
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(99);
                return 0;
        }
        tap.children[tap.n_children++] = pid;
        return pid;
}

/* Reaps a child; returns its wait status. */
static inline int tap_wait(pid_t pid) {
        int status;

        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        tap_fail(__FILE__, __LINE__, "waitpid(%d): %s", (int) pid, strerror(errno));
        tap_forget_child(pid);
        return status;
}

/* Reaps a child that must exit with 0. */
#define CHECK_CHILD_OK(pid)                                                             \
        do {                                                                            \
                int check_st_ = tap_wait(pid);                                          \
                if (!WIFEXITED(check_st_) || WEXITSTATUS(check_st_) != 0)               \
                        tap_fail(__FILE__, __LINE__, "child %d %s %d", (int) (pid),     \
                                 WIFEXITED(check_st_) ? "exited with" : "killed by",    \
                                 WIFEXITED(check_st_) ? WEXITSTATUS(check_st_)          \
                                                      : WTERMSIG(check_st_));           \
        } while (0)

static inline void tap_kill(pid_t pid) {
        CHECK_SYS(kill(pid, SIGKILL));
}

/* Pipes for "I am ready" between parent and child. */
static inline void tap_pipe(int fds[2]) {
        CHECK_SYS(pipe2(fds, O_CLOEXEC));
}

static inline void tap_write_all(int fd, const void *p, size_t n) {
        const char *c = p;

        while (n > 0) {
                ssize_t k = write(fd, c, n);
                if (k < 0 && errno == EINTR)
                        continue;
                CHECK_SYS(k);
                c += k;
                n -= (size_t) k;
        }
}

/* Reads exactly n bytes, waiting at most timeout_ms in all; false on EOF. */
static inline bool tap_read_all(int fd, void *p, size_t n, int timeout_ms) {
        char *c = p;
        uint64_t deadline = tap_now_ns() + (uint64_t) timeout_ms * 1000000u;

        while (n > 0) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                uint64_t now = tap_now_ns();
                int r;

                if (now >= deadline)
                        tap_fail(__FILE__, __LINE__, "no answer from a peer within %d ms", timeout_ms);
                r = poll(&pfd, 1, (int) ((deadline - now) / 1000000u) + 1);
                if (r < 0 && errno == EINTR)
                        continue;
                CHECK_SYS(r);
                if (r == 0)
                        continue;
                ssize_t k = read(fd, c, n);
                if (k < 0 && errno == EINTR)
                        continue;
                CHECK_SYS(k);
                if (k == 0)
                        return false;
                c += k;
                n -= (size_t) k;
        }
        return true;
}

static inline void tap_signal(int fd) {
        tap_write_all(fd, "!", 1);
}

static inline void tap_await(int fd, int timeout_ms) {
        char c;

        if (!tap_read_all(fd, &c, 1, timeout_ms))
                tap_fail(__FILE__, __LINE__, "peer went away before it was ready");
}

/* Ends the test: fails when it left /dev/shm objects behind. */
static inline int tap_done(void) {
        if (tap_shm_leftovers(false) > 0)
                return 1;
        fprintf(stderr, "PASS %s\n", tap.name);
        return 0;
}

/* Whether all n bytes at p are byte (for sentinel checks). */
static inline bool tap_all_bytes(const void *p, size_t n, unsigned char byte) {
        const unsigned char *c = p;

        for (size_t i = 0; i < n; i++)
                if (c[i] != byte)
                        return false;
        return true;
}

#define SENTINEL 0xa5

#endif

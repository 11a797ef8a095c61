/* SPDX-License-Identifier: MIT */
/*
 * The worker side of the notify protocol (rm_notify.h): one datagram per
 * call to $RINGMASTER_NOTIFY_SOCKET or $NOTIFY_SOCKET, with plain sendmsg().
 *
 * Each call opens its own socket, as sd_notify() does: nothing is shared
 * between threads or across fork(), and a program that closes every fd it
 * does not know about cannot make a later call write into another file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "names.h"
#include "notify-internal.h"
#include "rm_notify.h"

static const char *notify_socket(void) {
        const char *e = getenv(RM_NOTIFY_SOCKET_ENV);

        if (!e || !*e)
                e = getenv("NOTIFY_SOCKET");
        return e && *e ? e : NULL;
}

int rm_notify_enabled(void) {
        return notify_socket() != NULL;
}

static int socket_address(const char *e, struct sockaddr_un *sa, socklen_t *ret_len) {
        size_t n = strlen(e);

        *sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        if (e[0] == '@') {
                /* The abstract namespace: a leading NUL, the name, no terminator. */
                if (n < 2)
                        return -EINVAL;
                if (n > sizeof(sa->sun_path))
                        return -ENAMETOOLONG;
                memcpy(sa->sun_path + 1, e + 1, n - 1);
                *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n);
                return 0;
        }
        if (e[0] != '/')
                return -EAFNOSUPPORT;
        if (n >= sizeof(sa->sun_path))
                return -ENAMETOOLONG;
        memcpy(sa->sun_path, e, n);
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

/* rmpriv_notify_send() with a bound on the wait for room in the receiver's queue. */
static int notify_send_within(const char *text, size_t len, const int *fds, size_t n_fds, int timeout_ms) {
        const char *e = notify_socket();
        struct timeval tv = {
                .tv_sec = timeout_ms / 1000,
                .tv_usec = (timeout_ms % 1000) * 1000,
        };
        struct sockaddr_un sa;
        struct iovec iov = { (void *) text, len };
        struct msghdr mh = { .msg_name = &sa, .msg_iov = &iov, .msg_iovlen = 1 };
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * RM_NOTIFY_FDS_MAX)];
        } control;
        socklen_t sa_len;
        ssize_t k;
        int fd, r;

        if (!e)
                return 0;
        if (n_fds > RM_NOTIFY_FDS_MAX)
                return -EINVAL;
        r = socket_address(e, &sa, &sa_len);
        if (r < 0)
                return r;
        mh.msg_namelen = sa_len;
        if (n_fds > 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
                memcpy(CMSG_DATA(c), fds, sizeof(int) * n_fds);
        }
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        /* A full receiver queue makes the send wait for room, as sd_notify's does, but not for ever. */
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        do
                k = sendmsg(fd, &mh, MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        r = k < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : 1;
        close(fd);
        return r;
}

/*
 * Sends text (already checked) when a socket is set, with n_fds descriptors
 * attached (SCM_RIGHTS; at most RM_NOTIFY_FDS_MAX): 1 sent, 0 no socket,
 * < 0 failed.  announce.c's capture request sends three.  A state change:
 * waits up to RM_NOTIFY_STATE_SEND_TIMEOUT_MS for room (rm_notify.h).
 */
int rmpriv_notify_send(const char *text, size_t len, const int *fds, size_t n_fds) {
        return notify_send_within(text, len, fds, n_fds, RM_NOTIFY_STATE_SEND_TIMEOUT_MS);
}

static int send_state(const char *text, size_t len) {
        return rmpriv_notify_send(text, len, NULL, 0);
}

/* What the next one replaces (STATUS, WATCHDOG=1, progress): RM_NOTIFY_SEND_TIMEOUT_MS. */
static int send_replaceable(const char *text, size_t len) {
        return notify_send_within(text, len, NULL, 0, RM_NOTIFY_SEND_TIMEOUT_MS);
}

/* Whether every line of text is one the next datagram replaces. */
static int replaceable(const char *text, size_t len) {
        static const char *const keys[] = { "STATUS=", "WATCHDOG=1", RM_NOTIFY_KEY_PROGRESS "=" };

        for (size_t i = 0; i < len;) {
                const char *nl = memchr(text + i, '\n', len - i);
                size_t n = nl ? (size_t) (nl - (text + i)) : len - i;
                int ok = 0;

                for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
                        if (n >= strlen(keys[k]) && memcmp(text + i, keys[k], strlen(keys[k])) == 0 &&
                            (strcmp(keys[k], "WATCHDOG=1") != 0 || n == strlen(keys[k])))
                                ok = 1;
                if (!ok)
                        return 0;
                i += n + 1;
        }
        return 1;
}

static int send_keyed_name(const char *key, const char *name) {
        char buf[sizeof(RM_NOTIFY_KEY_PHASE_END "=") + RM_NOTIFY_PHASE_NAME_MAX];
        int n;

        if (!rm_name_valid(name, RM_NOTIFY_PHASE_NAME_MAX, false))
                return -EINVAL;
        n = snprintf(buf, sizeof(buf), "%s=%s", key, name);
        return send_state(buf, (size_t) n);
}

int rm_phase(const char *name) {
        return send_keyed_name(RM_NOTIFY_KEY_PHASE, name);
}

int rm_phase_end(const char *name) {
        return send_keyed_name(RM_NOTIFY_KEY_PHASE_END, name);
}

int rm_progress(uint64_t done, uint64_t total) {
        char buf[96];
        int n;

        if (total < 1 || done > total)
                return -EINVAL;
        n = snprintf(buf, sizeof(buf), RM_NOTIFY_KEY_PROGRESS "=%llu/%llu", (unsigned long long) done,
                     (unsigned long long) total);
        return send_replaceable(buf, (size_t) n);
}

int rm_ready(void) {
        return send_state("READY=1", 7);
}

int rm_heartbeat(void) {
        return send_replaceable("WATCHDOG=1", 10);
}

int rm_stopping(void) {
        return send_state("STOPPING=1", 10);
}

int rm_extend_timeout(uint64_t usec) {
        char buf[64];
        int n = snprintf(buf, sizeof(buf), "EXTEND_TIMEOUT_USEC=%llu", (unsigned long long) usec);

        return send_state(buf, (size_t) n);
}

int rm_notify_errno(int error) {
        char buf[32];
        int n;

        if (error == INT_MIN)
                return -EINVAL;
        n = snprintf(buf, sizeof(buf), "ERRNO=%d", error < 0 ? -error : error);
        return send_state(buf, (size_t) n);
}

int rm_status(const char *format, ...) {
        /* "STATUS=" + the text cut to RM_NOTIFY_STATUS_MAX + room to see what was cut. */
        char buf[7 + RM_NOTIFY_STATUS_MAX + 8];
        size_t len;
        va_list ap;
        int n;

        if (!format)
                return -EINVAL;
        memcpy(buf, "STATUS=", 7);
        va_start(ap, format);
        n = vsnprintf(buf + 7, sizeof(buf) - 7, format, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        len = strlen(buf + 7);   /* a %c of 0 ends it early: what the receiver would see */
        if (memchr(buf + 7, '\n', len))
                return -EINVAL;
        if (len > RM_NOTIFY_STATUS_MAX) {
                /* Cut at a character boundary: never in the middle of a UTF-8 sequence. */
                len = RM_NOTIFY_STATUS_MAX;
                while (len > 0 && ((unsigned char) buf[7 + len] & 0xc0) == 0x80)
                        len--;
        }
        return send_replaceable(buf, 7 + len);
}

int rm_notify(const char *state) {
        size_t len;

        if (!state)
                return -EINVAL;
        len = strlen(state);
        if (len > RM_NOTIFY_DATAGRAM_MAX)
                return -EMSGSIZE;
        /* Each line KEY=VALUE with a non-empty key, as ringmaster.worker.notify() checks. */
        for (const char *p = state;;) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t) (nl - p) : strlen(p);
                const char *eq = memchr(p, '=', n);

                if (!eq || eq == p)
                        return -EINVAL;
                if (!nl)
                        break;
                p = nl + 1;
        }
        return replaceable(state, len) ? send_replaceable(state, len) : send_state(state, len);
}

int rm_notify_barrier(uint64_t timeout_usec) {
        struct pollfd p = { .events = POLLHUP };
        uint64_t left = timeout_usec;
        int fds[2], r;

        if (!notify_socket())
                return 0;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        /* The receiver gets the write end; once it and ours are closed, the read end hangs up. */
        r = rmpriv_notify_send("BARRIER=1", 9, &fds[1], 1);
        close(fds[1]);
        if (r <= 0) {
                close(fds[0]);
                return r;
        }
        p.fd = fds[0];
        for (;;) {
                struct timespec t0, t1;
                int ms = left / 1000 > INT_MAX ? INT_MAX : (int) ((left + 999) / 1000);

                clock_gettime(CLOCK_MONOTONIC, &t0);
                r = poll(&p, 1, ms);
                if (r > 0) {
                        r = 1;
                        break;
                }
                if (r == 0) {
                        r = -ETIMEDOUT;
                        break;
                }
                if (errno != EINTR) {
                        r = -errno;
                        break;
                }
                clock_gettime(CLOCK_MONOTONIC, &t1);
                {
                        uint64_t spent = (uint64_t) (t1.tv_sec - t0.tv_sec) * 1000000u +
                                         (uint64_t) ((t1.tv_nsec - t0.tv_nsec) / 1000);

                        left = spent >= left ? 0 : left - spent;
                }
        }
        close(fds[0]);
        return r;
}

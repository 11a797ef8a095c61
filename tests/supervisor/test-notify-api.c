/* SPDX-License-Identifier: MIT */
/*
 * The worker-side C API (engine/rm_notify.h) against a fake receiver: the
 * exact datagram of every call, to a path and to an abstract socket; no-ops
 * without a socket; argument checks with and without one; which variable
 * wins; the status cut at a character boundary; credentials from a forked
 * child; many threads at once; and the errors (nobody listening, a receiver
 * that stopped reading: -EAGAIN after RM_NOTIFY_SEND_TIMEOUT_MS, not a hang).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rm_notify.h"

#include "unit.h"

struct receiver {
        int fd;
        char address[128];      /* for the environment: a path or "@name" */
        char path[108];
};

static void receiver_open(struct receiver *rx, bool abstract) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t len;
        int one = 1;

        rx->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (rx->fd < 0 || setsockopt(rx->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
                perror("socket");
                exit(99);
        }
        if (abstract) {
                snprintf(rx->address, sizeof(rx->address), "@test-notify-api/%d/%ld", (int) getpid(), (long) random());
                memcpy(sa.sun_path + 1, rx->address + 1, strlen(rx->address) - 1);
                len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(rx->address));
                rx->path[0] = 0;
        } else {
                snprintf(rx->path, sizeof(rx->path), "/tmp/test-notify-api-%d-%ld", (int) getpid(), (long) random());
                snprintf(rx->address, sizeof(rx->address), "%s", rx->path);
                strcpy(sa.sun_path, rx->path);
                len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(rx->path) + 1);
        }
        if (bind(rx->fd, (struct sockaddr *) &sa, len) < 0) {
                perror("bind");
                exit(99);
        }
}

static void receiver_close(struct receiver *rx) {
        close(rx->fd);
        if (rx->path[0])
                unlink(rx->path);
}

/* One datagram, waiting at most 10 s: its length (text NUL-terminated) and sender pid; -1 when none came. */
static ssize_t receive(struct receiver *rx, char *text, size_t size, pid_t *ret_pid) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(struct ucred))];
        } control;
        struct iovec iov = { text, size - 1 };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        struct timeval tv = { 10, 0 };
        ssize_t k;

        (void) setsockopt(rx->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        k = recvmsg(rx->fd, &mh, 0);
        if (k < 0)
                return -1;
        text[k] = 0;
        if (ret_pid) {
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                struct ucred cred;

                *ret_pid = 0;
                if (c && c->cmsg_type == SCM_CREDENTIALS) {
                        memcpy(&cred, CMSG_DATA(c), sizeof(cred));
                        *ret_pid = cred.pid;
                }
        }
        return k;
}

/* Nothing queued now. */
static bool nothing_queued(struct receiver *rx) {
        char c;

        return recv(rx->fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static void expect(struct receiver *rx, const char *call, int r, const char *want) {
        char got[8192];
        ssize_t k;

        CHECK(r == 1, "%s returned %d (%s), want 1", call, r, r < 0 ? strerror(-r) : "not sent");
        if (r != 1)
                return;
        k = receive(rx, got, sizeof(got), NULL);
        CHECK(k >= 0 && strcmp(got, want) == 0, "%s sent '%s', want '%s'", call, k >= 0 ? got : "(nothing)", want);
}

#define EXPECT(rx, call, want) expect(rx, #call, call, want)

static void every_call(struct receiver *rx) {
        EXPECT(rx, rm_phase("nccl-init"), "X_RINGMASTER_PHASE=nccl-init");
        EXPECT(rx, rm_phase_end("nccl-init"), "X_RINGMASTER_PHASE_END=nccl-init");
        EXPECT(rx, rm_progress(3, 10), "X_RINGMASTER_PROGRESS=3/10");
        EXPECT(rx, rm_progress(0, 1), "X_RINGMASTER_PROGRESS=0/1");
        EXPECT(rx, rm_progress(UINT64_MAX, UINT64_MAX), "X_RINGMASTER_PROGRESS=18446744073709551615/18446744073709551615");
        EXPECT(rx, rm_ready(), "READY=1");
        EXPECT(rx, rm_heartbeat(), "WATCHDOG=1");
        EXPECT(rx, rm_status("%d/%d shards", 3, 10), "STATUS=3/10 shards");
        EXPECT(rx, rm_status("%s", ""), "STATUS=");
        EXPECT(rx, rm_extend_timeout(30000000), "EXTEND_TIMEOUT_USEC=30000000");
        EXPECT(rx, rm_stopping(), "STOPPING=1");
        EXPECT(rx, rm_notify_errno(EIO), "ERRNO=5");
        EXPECT(rx, rm_notify_errno(-EIO), "ERRNO=5");
        EXPECT(rx, rm_notify("READY=1\nSTATUS=up"), "READY=1\nSTATUS=up");
}

static void invalid_arguments(void) {
        CHECK(rm_phase(NULL) == -EINVAL, "rm_phase(NULL)");
        CHECK(rm_phase("") == -EINVAL, "rm_phase(\"\")");
        CHECK(rm_phase("has space") == -EINVAL, "a space in a phase name");
        CHECK(rm_phase("x\n") == -EINVAL, "a newline in a phase name");
        CHECK(rm_phase_end("caf\xc3\xa9") == -EINVAL, "non-ASCII phase name");
        CHECK(rm_phase("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == -EINVAL,
              "a phase name of 65 characters");
        CHECK(rm_progress(5, 3) == -EINVAL, "done > total");
        CHECK(rm_progress(0, 0) == -EINVAL, "total 0");
        CHECK(rm_status("two\nlines") == -EINVAL, "a newline in a status");
        CHECK(rm_status(NULL) == -EINVAL, "rm_status(NULL)");
        CHECK(rm_notify(NULL) == -EINVAL, "rm_notify(NULL)");
        CHECK(rm_notify("READY") == -EINVAL, "rm_notify without '='");
        CHECK(rm_notify("=1") == -EINVAL, "rm_notify with an empty key");
        CHECK(rm_notify("READY=1\n") == -EINVAL, "rm_notify with an empty last line");
}

struct thread_arg {
        int n;
        int errors;
};

static void *sender_thread(void *p) {
        struct thread_arg *a = p;

        for (int i = 0; i < a->n; i++)
                if (rm_progress((uint64_t) i, (uint64_t) a->n) != 1)
                        a->errors++;
        return NULL;
}

static double elapsed_since(const struct timespec *t0) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) (t.tv_sec - t0->tv_sec) + (double) (t.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(void) {
        struct receiver rx, ax, other;
        char text[8192], big[2100];
        struct timespec t0;
        pid_t child, pid;
        int r, status;

        srandom((unsigned) getpid());
        unsetenv("NOTIFY_SOCKET");
        unsetenv("RINGMASTER_NOTIFY_SOCKET");

        /* Not under ringmaster: no-ops returning 0, but arguments are still checked. */
        CHECK(rm_notify_enabled() == 0, "not enabled without a socket");
        CHECK(rm_ready() == 0 && rm_phase("x") == 0 && rm_status("x") == 0 && rm_heartbeat() == 0, "no-ops return 0");
        invalid_arguments();
        setenv("NOTIFY_SOCKET", "", 1);
        CHECK(rm_notify_enabled() == 0 && rm_ready() == 0, "an empty NOTIFY_SOCKET is unset");

        /* A path, through NOTIFY_SOCKET (as systemd sets it). */
        receiver_open(&rx, false);
        setenv("NOTIFY_SOCKET", rx.address, 1);
        CHECK(rm_notify_enabled() == 1, "enabled with NOTIFY_SOCKET");
        every_call(&rx);
        invalid_arguments();
        CHECK(nothing_queued(&rx), "invalid calls sent nothing");

        /* RINGMASTER_NOTIFY_SOCKET wins; here an abstract one. */
        receiver_open(&ax, true);
        setenv("RINGMASTER_NOTIFY_SOCKET", ax.address, 1);
        every_call(&ax);
        CHECK(nothing_queued(&rx), "RINGMASTER_NOTIFY_SOCKET is preferred to NOTIFY_SOCKET");
        unsetenv("RINGMASTER_NOTIFY_SOCKET");

        /* A status is cut at 1024 bytes, not inside a character: 1023 'a' then a 2-byte 'é'. */
        memset(big, 'a', 1023);
        strcpy(big + 1023, "\xc3\xa9tail");
        r = rm_status("%s", big);
        CHECK(r == 1 && receive(&rx, text, sizeof(text), NULL) == 7 + 1023 && strncmp(text, "STATUS=aaa", 10) == 0,
              "a long status cut before the character that does not fit (%d, %zu)", r, strlen(text));
        memset(big, 'b', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        CHECK(rm_status("%s", big) == 1 && receive(&rx, text, sizeof(text), NULL) == 7 + RM_NOTIFY_STATUS_MAX,
              "a long ASCII status cut at %d bytes", RM_NOTIFY_STATUS_MAX);
        memset(text, 'k', 5000);
        memcpy(text, "STATUS=", 7);
        text[5000] = 0;
        CHECK(rm_notify(text) == -EMSGSIZE, "rm_notify of 5000 bytes");

        /* A forked child sends with its own credentials. */
        child = fork();
        if (child == 0)
                _exit(rm_phase("child-phase") == 1 ? 0 : 1);
        CHECK(receive(&rx, text, sizeof(text), &pid) > 0 && strcmp(text, "X_RINGMASTER_PHASE=child-phase") == 0 &&
              pid == child, "the child's datagram carries the child's pid (%d, want %d)", (int) pid, (int) child);
        CHECK(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child sent");
        CHECK(rm_ready() == 1 && receive(&rx, text, sizeof(text), &pid) > 0 && pid == getpid(), "the parent's pid");

        /* A barrier: the receiver reads it (and closes its fd, as ringmaster does); one nobody reads times out. */
        {
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * 4)];
                } control;
                struct iovec iov = { text, sizeof(text) - 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control,
                                     .msg_controllen = sizeof(control) };
                pid_t c = fork();
                ssize_t k;

                if (c == 0)
                        _exit(rm_ready() == 1 && rm_notify_barrier(10000000) == 1 ? 0 : 1);
                CHECK(receive(&rx, text, sizeof(text), NULL) > 0 && strcmp(text, "READY=1") == 0, "before the barrier");
                k = recvmsg(rx.fd, &mh, MSG_CMSG_CLOEXEC);
                CHECK(k == 9 && memcmp(text, "BARRIER=1", 9) == 0, "BARRIER=1");
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_type == SCM_RIGHTS) {
                                int fd;

                                CHECK(cm->cmsg_len == CMSG_LEN(sizeof(int)), "one fd with the barrier");
                                memcpy(&fd, CMSG_DATA(cm), sizeof(int));
                                close(fd);
                        }
                CHECK(waitpid(c, &status, 0) == c && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "the barrier returned 1 once its fd was closed");
                clock_gettime(CLOCK_MONOTONIC, &t0);
                CHECK(rm_notify_barrier(300000) == -ETIMEDOUT, "an unread barrier: -ETIMEDOUT");
                CHECK(elapsed_since(&t0) >= 0.25, "after its timeout (%.3f s)", elapsed_since(&t0));
                /* Drop the unread barrier (its fd closes with it). */
                k = recvmsg(rx.fd, &mh, MSG_CMSG_CLOEXEC);
                for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); k >= 0 && cm; cm = CMSG_NXTHDR(&mh, cm))
                        if (cm->cmsg_type == SCM_RIGHTS) {
                                int fd;

                                memcpy(&fd, CMSG_DATA(cm), sizeof(int));
                                close(fd);
                        }
                unsetenv("NOTIFY_SOCKET");
                CHECK(rm_notify_barrier(1000) == 0, "no socket: the barrier is a no-op");
                setenv("NOTIFY_SOCKET", rx.address, 1);
        }

        /* Threads at once: every datagram arrives whole (the queue is short: read while they send). */
        {
                enum { THREADS = 8, EACH = 200 };
                struct thread_arg args[THREADS];
                pthread_t threads[THREADS];
                int got = 0, bad = 0, errors = 0;

                for (int i = 0; i < THREADS; i++) {
                        args[i] = (struct thread_arg) { .n = EACH };
                        pthread_create(&threads[i], NULL, sender_thread, &args[i]);
                }
                while (got < THREADS * EACH && receive(&rx, text, sizeof(text), NULL) > 0) {
                        got++;
                        if (strncmp(text, "X_RINGMASTER_PROGRESS=", 22) != 0 || !strstr(text, "/200"))
                                bad++;
                }
                for (int i = 0; i < THREADS; i++) {
                        pthread_join(threads[i], NULL);
                        errors += args[i].errors;
                }
                CHECK(got == THREADS * EACH && bad == 0 && errors == 0,
                      "threads: %d of %d datagrams, %d malformed, %d send errors", got, THREADS * EACH, bad, errors);
        }

        /* A receiver that stopped reading: the queue fills, then a call waits its timeout and gives up. */
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 1000; i++) {
                r = rm_heartbeat();
                if (r != 1)
                        break;
        }
        CHECK(r == -EAGAIN, "a full receiver: -EAGAIN, got %d (%s)", r, strerror(-r));
        CHECK(elapsed_since(&t0) >= RM_NOTIFY_SEND_TIMEOUT_MS / 1000.0 * 0.9 && elapsed_since(&t0) < 30,
              "it waited about %d ms (%.3f s)", RM_NOTIFY_SEND_TIMEOUT_MS, elapsed_since(&t0));

        /* Nobody listening; not a socket address; too long. */
        receiver_open(&other, false);
        receiver_close(&other);
        setenv("NOTIFY_SOCKET", other.address, 1);
        CHECK(rm_ready() == -ENOENT, "a socket path that is gone: -ENOENT");
        receiver_open(&other, true);
        setenv("NOTIFY_SOCKET", other.address, 1);
        receiver_close(&other);
        CHECK(rm_ready() == -ECONNREFUSED, "an abstract socket nobody holds: -ECONNREFUSED");
        setenv("NOTIFY_SOCKET", "relative/path", 1);
        CHECK(rm_ready() == -EAFNOSUPPORT, "a relative path: -EAFNOSUPPORT");
        memset(big, 'p', 200);
        big[0] = '/';
        big[200] = 0;
        setenv("NOTIFY_SOCKET", big, 1);
        CHECK(rm_ready() == -ENAMETOOLONG, "a path too long for a socket: -ENAMETOOLONG");
        setenv("NOTIFY_SOCKET", "@", 1);
        CHECK(rm_ready() == -EINVAL, "an empty abstract name: -EINVAL");

        receiver_close(&rx);
        receiver_close(&ax);
        if (failures) {
                printf("%d failure(s)\n", failures);
                return 1;
        }
        printf("rm_notify: all checks passed\n");
        return 0;
}

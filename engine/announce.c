/* SPDX-License-Identifier: MIT */
/*
 * rm_announce.h: a native worker announcing itself, its group and its end
 * on the notify socket, and the capture handshake (pipes handed over with
 * SCM_RIGHTS, switched to only on the supervisor's 'Y').
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify-internal.h"
#include "rm_announce.h"
#include "rm_notify.h"

#define DATAGRAM_MAX RM_NOTIFY_DATAGRAM_MAX

/* text printable, one line: control bytes (and DEL) as '?', cut at max bytes on a character boundary. */
static size_t put_printable(char *out, const char *in, size_t len, size_t max) {
        size_t n = len < max ? len : max;

        if (n < len)
                while (n > 0 && ((unsigned char) in[n] & 0xc0) == 0x80)
                        n--;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) in[i];

                out[i] = c < 0x20 || c == 0x7f ? '?' : (char) c;
        }
        return n;
}

/* /proc/self/cmdline with its NULs as spaces. */
static size_t argv_summary(char *out, size_t max) {
        char raw[RM_ANNOUNCE_ARGV_MAX * 2];
        ssize_t k = 0;
        int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                do
                        k = read(fd, raw, sizeof(raw));
                while (k < 0 && errno == EINTR);
                close(fd);
        }
        if (k <= 0)
                return 0;
        while (k > 0 && raw[k - 1] == 0)
                k--;
        for (ssize_t i = 0; i < k; i++)
                if (raw[i] == 0)
                        raw[i] = ' ';
        return put_printable(out, raw, (size_t) k, max);
}

static int env_is(const char *name, const char *value) {
        const char *e = getenv(name);

        return e && strcmp(e, value) == 0;
}

static int own_pid_string(char *buf, size_t size) {
        return snprintf(buf, size, "%d", (int) getpid());
}

static int capture_offered(void) {
        char pid[16];

        own_pid_string(pid, sizeof(pid));
        return env_is(RM_ANNOUNCE_CAPTURE_ENV, "1") && !env_is(RM_ANNOUNCE_CAPTURED_ENV, pid);
}

static void close_fds(int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (fds[i] >= 0) {
                        close(fds[i]);
                        fds[i] = -1;
                }
}

/* fd itself when >= 3, else a close-on-exec copy that is (fds 1 and 2 may be closed). */
static int above_stdio(int fd) {
        int high;

        if (fd > 2)
                return fd;
        high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        close(fd);
        return high < 0 ? -errno : high;
}

/* Waits for one byte on fd for at most ms: the byte, or -1 (none, end of file, an error). */
static int read_answer(int fd, int ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        char c;
        ssize_t k;
        int r;

        do
                r = poll(&p, 1, ms);
        while (r < 0 && errno == EINTR);
        if (r <= 0)
                return -1;
        do
                k = read(fd, &c, 1);
        while (k < 0 && errno == EINTR);
        return k == 1 ? (unsigned char) c : -1;
}

/* Sends text with the read ends, switches fds 1 and 2 on 'Y': 2 captured, 1 sent only, < 0 not sent. */
static int announce_with_capture(const char *text, size_t len) {
        int pipes[6] = { -1, -1, -1, -1, -1, -1 }; /* out r/w, err r/w, ack r/w */
        int fds[3], r, answer;
        char pid[16];

        for (int i = 0; i < 3; i++)
                if (pipe2(pipes + 2 * i, O_CLOEXEC) < 0) {
                        r = -errno;
                        goto out;
                }
        for (int i = 1; i <= 3; i += 2) {
                pipes[i] = above_stdio(pipes[i]);
                if (pipes[i] < 0) {
                        r = pipes[i];
                        goto out;
                }
        }
        fds[0] = pipes[0];
        fds[1] = pipes[2];
        fds[2] = pipes[5];
        r = rmpriv_notify_send(text, len, fds, 3);
        close(pipes[0]);
        close(pipes[2]);
        close(pipes[5]);
        pipes[0] = pipes[2] = pipes[5] = -1;
        if (r <= 0)
                goto out;
        answer = read_answer(pipes[4], RM_ANNOUNCE_ACK_TIMEOUT_MS);
        if (answer != 'Y') {
                r = 1;
                goto out;
        }
        fflush(stdout);
        fflush(stderr);
        if (dup2(pipes[1], 1) < 0 || dup2(pipes[3], 2) < 0) {
                r = 1;
                goto out;
        }
        own_pid_string(pid, sizeof(pid));
        (void) setenv(RM_ANNOUNCE_CAPTURED_ENV, pid, 1);
        r = 2;
out:
        close_fds(pipes, 6);
        return r;
}

int rm_announce(const char *name, int index, unsigned flags) {
        char text[DATAGRAM_MAX];
        size_t len, name_len = 0;
        int n;

        if (name) {
                name_len = strlen(name);
                if (name_len < 1 || name_len > RM_ANNOUNCE_NAME_MAX)
                        return -EINVAL;
        }
        if (index < -1 || (flags & ~RM_ANNOUNCE_CAPTURE))
                return -EINVAL;
        if (!rm_notify_enabled())
                return 0;
        n = snprintf(text, sizeof(text), RM_ANNOUNCE_KEY_WORKER "=native\n" RM_ANNOUNCE_KEY_PPID "=%d\n"
                     RM_ANNOUNCE_KEY_ARGV "=", (int) getppid());
        len = (size_t) n;
        len += argv_summary(text + len, RM_ANNOUNCE_ARGV_MAX);
        if (name) {
                static const char key[] = "\n" RM_ANNOUNCE_KEY_NAME "=";

                memcpy(text + len, key, sizeof(key) - 1);
                len += sizeof(key) - 1;
                len += put_printable(text + len, name, name_len, RM_ANNOUNCE_NAME_MAX);
        }
        if (index >= 0)
                len += (size_t) snprintf(text + len, sizeof(text) - len, "\n" RM_ANNOUNCE_KEY_INDEX "=%d", index);
        if ((flags & RM_ANNOUNCE_CAPTURE) && capture_offered()) {
                static const char capture[] = "\n" RM_ANNOUNCE_KEY_CAPTURE "=1";
                int r;

                memcpy(text + len, capture, sizeof(capture) - 1);
                r = announce_with_capture(text, len + sizeof(capture) - 1);
                if (r > 0)
                        return r;
        }
        /* Taken before it goes on: the supervisor reads its /proc entry, gone once it ended and was reaped. */
        n = rmpriv_notify_send(text, len, NULL, 0);
        if (n > 0)
                (void) rm_notify_barrier((uint64_t) RM_ANNOUNCE_ACK_TIMEOUT_MS * 1000);
        return n;
}

int rm_announce_group(const char *key, int rank, int world) {
        char text[DATAGRAM_MAX];
        size_t key_len, len;

        if (!key)
                return -EINVAL;
        key_len = strlen(key);
        if (key_len < 1 || key_len > RM_ANNOUNCE_GROUP_KEY_MAX || world < 1 || rank < 0 || rank >= world)
                return -EINVAL;
        static const char group[] = RM_ANNOUNCE_KEY_GROUP "=";

        memcpy(text, group, sizeof(group) - 1);
        len = sizeof(group) - 1 + put_printable(text + sizeof(group) - 1, key, key_len, RM_ANNOUNCE_GROUP_KEY_MAX);
        len += (size_t) snprintf(text + len, sizeof(text) - len, "\n" RM_ANNOUNCE_KEY_GROUP_RANK "=%d\n"
                                 RM_ANNOUNCE_KEY_GROUP_WORLD "=%d", rank, world);
        return rmpriv_notify_send(text, len, NULL, 0);
}

int rm_announce_exit(int status) {
        char text[64];
        int n = snprintf(text, sizeof(text), RM_ANNOUNCE_KEY_EXIT "=%d", status & 0xff);

        return rmpriv_notify_send(text, (size_t) n, NULL, 0);
}

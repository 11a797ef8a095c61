/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "sink.h"
#include "util.h"

#define SINK_RESERVE (256u * 1024u)

enum sink_mode {
        SINK_DIRECT,    /* regular file, /dev/null: blocking writes (slow at worst, never stuck) */
        SINK_QUEUED,    /* non-blocking fd of our own (pipe, FIFO, terminal) */
        SINK_SOCKET,    /* a socket: send() with MSG_DONTWAIT */
};

struct sink {
        enum sink_mode mode;
        int fd;                 /* the fd written to */
        int own_fd;             /* our reopened fd, or -EBADF */
        bool broken;            /* the reader went away (EPIPE...): discard */
        sd_event_source *post;         /* writes what an iteration queued */
        sd_event_source *writable;     /* EPOLLOUT, while the reader lags */
        char *queue;            /* ring buffer */
        size_t capacity;        /* ring size, the reserve included */
        size_t limit;           /* what ordinary lines may fill */
        size_t start, used;
        uint64_t lost_bytes;
        void (*line_hook)(struct sink *s, void *userdata);
        void *line_hook_userdata;
        bool in_line_hook;
};

static ssize_t sink_raw_writev(struct sink *s, const struct iovec *iov, int n) {
        ssize_t k;

        do {
                if (s->mode == SINK_SOCKET) {
                        struct msghdr mh = { .msg_iov = (struct iovec *) iov, .msg_iovlen = (size_t) n };
                        k = sendmsg(s->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
                } else
                        k = writev(s->fd, iov, n);
        } while (k < 0 && errno == EINTR);
        return k < 0 ? -errno : k;
}

/* The queued bytes as at most two iovecs. */
static int sink_queue_iov(const struct sink *s, struct iovec iov[2]) {
        size_t first = MIN(s->used, s->capacity - s->start);

        if (s->used == 0)
                return 0;
        iov[0] = (struct iovec) { s->queue + s->start, first };
        if (first == s->used)
                return 1;
        iov[1] = (struct iovec) { s->queue, s->used - first };
        return 2;
}

static void sink_consume(struct sink *s, size_t n) {
        s->start = (s->start + n) % s->capacity;
        s->used -= n;
        if (s->used == 0)
                s->start = 0;
}

/*
 * The post source stays on: sd-event marks post sources pending before it
 * runs another source's callback, so one enabled from within that callback
 * (where lines are queued) would wait for some later, unrelated event: a
 * rank's last line before it hangs would never show.  With nothing queued
 * it costs a call per loop iteration.
 */
static void sink_set_watch(struct sink *s, bool post, bool writable) {
        (void) post;
        if (s->writable)
                (void) sd_event_source_set_enabled(s->writable, writable ? SD_EVENT_ON : SD_EVENT_OFF);
}

static void sink_mark_broken(struct sink *s) {
        s->broken = true;
        s->lost_bytes += s->used;
        s->used = s->start = 0;
        sink_set_watch(s, false, false);
}

/*
 * Writes from the queue until it is empty or the fd would block (a direct
 * sink writes it all).  Then watches for what comes next: EPOLLOUT when
 * bytes wait, nothing when the queue is empty.
 */
static int sink_push(struct sink *s) {
        while (s->used > 0) {
                struct iovec iov[2];
                int n = sink_queue_iov(s, iov);
                ssize_t k = sink_raw_writev(s, iov, n);

                if (k == -EAGAIN)
                        break;
                if (k <= 0) {
                        sink_mark_broken(s);
                        return k < 0 ? (int) k : -EIO;
                }
                sink_consume(s, (size_t) k);
        }
        sink_set_watch(s, false, s->used > 0);
        return 0;
}

/* After each loop iteration that queued lines: one write for all of them. */
static int sink_on_post(sd_event_source *source, void *userdata) {
        (void) sink_push(userdata);
        return 0;
}

static int sink_on_writable(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        (void) sink_push(userdata);
        return 0;
}

static void sink_enqueue(struct sink *s, const struct iovec *iov, int n) {
        for (int i = 0; i < n; i++) {
                const char *p = iov[i].iov_base;
                size_t len = iov[i].iov_len;

                while (len > 0) {
                        size_t end = (s->start + s->used) % s->capacity;
                        size_t chunk = MIN(len, s->capacity - end);

                        memcpy(s->queue + end, p, chunk);
                        s->used += chunk;
                        p += chunk;
                        len -= chunk;
                }
        }
}

bool sink_has_room(const struct sink *s, size_t n) {
        return s->broken || s->mode == SINK_DIRECT || s->used + n <= s->limit;
}

int sink_write_line(struct sink *s, const struct iovec *iov, int n, bool reserved) {
        size_t total = 0;

        if (s->line_hook && !s->in_line_hook) {
                s->in_line_hook = true;
                s->line_hook(s, s->line_hook_userdata);
                s->in_line_hook = false;
        }

        for (int i = 0; i < n; i++)
                total += iov[i].iov_len;
        if (s->broken) {
                s->lost_bytes += total;
                return 0;
        }

        if (s->used + total > (reserved ? s->capacity : s->limit)) {
                if (s->mode != SINK_DIRECT)
                        return -ENOBUFS;
                /* A file or /dev/null: writing may be slow, never stuck; make room by writing. */
                if (sink_push(s) < 0 || s->broken) {
                        s->lost_bytes += total;
                        return 0;
                }
                if (total > s->capacity) {
                        struct iovec rest[8];
                        size_t done = 0;
                        int m = n;

                        assert(n <= (int) ELEMENTSOF(rest));
                        memcpy(rest, iov, sizeof(struct iovec) * (size_t) n);
                        while (done < total) {
                                ssize_t k = sink_raw_writev(s, rest, m);
                                size_t adv;
                                int i = 0;

                                if (k <= 0) {
                                        sink_mark_broken(s);
                                        s->lost_bytes += total - done;
                                        return 0;
                                }
                                done += (size_t) k;
                                adv = (size_t) k;
                                while (i < m && adv >= rest[i].iov_len)
                                        adv -= rest[i++].iov_len;
                                memmove(rest, rest + i, sizeof(struct iovec) * (size_t) (m - i));
                                m -= i;
                                if (m > 0) {
                                        rest[0].iov_base = (char *) rest[0].iov_base + adv;
                                        rest[0].iov_len -= adv;
                                }
                        }
                        return 0;
                }
        }

        sink_enqueue(s, iov, n);
        /* Written after this loop iteration, unless already waiting for EPOLLOUT. */
        if (!s->writable || sd_event_source_get_enabled(s->writable, NULL) <= 0)
                sink_set_watch(s, true, false);
        return 0;
}

void sink_set_line_hook(struct sink *s, void (*hook)(struct sink *s, void *userdata), void *userdata) {
        s->line_hook = hook;
        s->line_hook_userdata = userdata;
}

int sink_flush(struct sink *s, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        if (!s)
                return 0;
        for (;;) {
                struct pollfd p = { .fd = s->fd, .events = POLLOUT };
                uint64_t now;
                int r;

                r = sink_push(s);
                if (r < 0 || s->used == 0 || s->broken)
                        return r;
                now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                r = poll(&p, 1, (int) ((deadline - now + 999) / 1000));
                if (r < 0 && errno != EINTR)
                        return -errno;
        }
}

uint64_t sink_lost_bytes(const struct sink *s) {
        return s ? s->lost_bytes : 0;
}

int sink_new(sd_event *event, int fd, size_t capacity, struct sink **ret) {
        _cleanup_free_ struct sink *s = NULL;
        struct stat st;
        char path[64];
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->fd = fd;
        s->own_fd = -EBADF;
        s->limit = capacity;
        s->capacity = capacity + SINK_RESERVE;

        if (fstat(fd, &st) < 0)
                return -errno;

        if (S_ISSOCK(st.st_mode))
                s->mode = SINK_SOCKET;
        else if (S_ISFIFO(st.st_mode) || (S_ISCHR(st.st_mode) && isatty(fd))) {
                /*
                 * A private, non-blocking open file description of the same
                 * pipe or terminal.  O_NONBLOCK on the inherited one would
                 * leak to the shell that shares it.
                 */
                snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
                s->own_fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
                if (s->own_fd >= 0) {
                        s->fd = s->own_fd;
                        s->mode = SINK_QUEUED;
                } else
                        s->mode = SINK_DIRECT;
        } else
                s->mode = SINK_DIRECT;

        s->queue = malloc(s->capacity);
        if (!s->queue) {
                safe_close(s->own_fd);
                return -ENOMEM;
        }
        r = sd_event_add_post(event, &s->post, sink_on_post, s);
        if (r < 0) {
                free(s->queue);
                safe_close(s->own_fd);
                return r;
        }
        if (s->mode != SINK_DIRECT) {
                r = sd_event_add_io(event, &s->writable, s->fd, EPOLLOUT, sink_on_writable, s);
                if (r < 0)
                        s->mode = SINK_DIRECT;    /* not pollable after all: blocking writes */
                else
                        (void) sd_event_source_set_enabled(s->writable, SD_EVENT_OFF);
        }

        *ret = TAKE_PTR(s);
        return 0;
}

struct sink *sink_free(struct sink *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->post);
        sd_event_source_disable_unref(s->writable);
        safe_close(s->own_fd);
        free(s->queue);
        free(s);
        return NULL;
}

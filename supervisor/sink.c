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
        SINK_DIRECT,    /* regular file, /dev/null: plain blocking writes */
        SINK_QUEUED,    /* non-blocking fd of our own (pipe, FIFO, terminal) */
        SINK_SOCKET,    /* a socket: send() with MSG_DONTWAIT */
};

struct sink {
        enum sink_mode mode;
        int fd;                 /* the fd written to */
        int own_fd;             /* our reopened fd, or -EBADF */
        bool broken;            /* the reader went away (EPIPE...): discard */
        sd_event_source *source;
        char *queue;            /* ring buffer */
        size_t capacity;        /* ring size, the reserve included */
        size_t limit;           /* what ordinary lines may fill */
        size_t start, used;
        uint64_t lost_bytes;
        uint64_t dev, ino;
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

static void sink_mark_broken(struct sink *s) {
        s->broken = true;
        s->lost_bytes += s->used;
        s->used = s->start = 0;
        if (s->source)
                sd_event_source_set_enabled(s->source, SD_EVENT_OFF);
}

/* Writes from the queue until it is empty or the fd would block. */
static int sink_push(struct sink *s) {
        while (s->used > 0) {
                struct iovec iov[2];
                int n = sink_queue_iov(s, iov);
                ssize_t k = sink_raw_writev(s, iov, n);

                if (k == -EAGAIN)
                        break;
                if (k < 0) {
                        sink_mark_broken(s);
                        return (int) k;
                }
                sink_consume(s, (size_t) k);
        }
        if (s->source)
                sd_event_source_set_enabled(s->source, s->used > 0 ? SD_EVENT_ON : SD_EVENT_OFF);
        return 0;
}

static int sink_on_writable(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        struct sink *s = userdata;

        (void) sink_push(s);
        return 0;
}

static void sink_enqueue(struct sink *s, const struct iovec *iov, int n, size_t skip) {
        for (int i = 0; i < n; i++) {
                const char *p = iov[i].iov_base;
                size_t len = iov[i].iov_len;

                if (skip >= len) {
                        skip -= len;
                        continue;
                }
                p += skip;
                len -= skip;
                skip = 0;
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

int sink_write_line(struct sink *s, const struct iovec *iov, int n, bool reserved) {
        size_t total = 0, done = 0;

        for (int i = 0; i < n; i++)
                total += iov[i].iov_len;
        if (s->broken) {
                s->lost_bytes += total;
                return 0;
        }

        if (s->mode == SINK_DIRECT) {
                struct iovec rest[8];
                int m;

                assert(n <= (int) ELEMENTSOF(rest));
                memcpy(rest, iov, sizeof(struct iovec) * (size_t) n);
                m = n;
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

        if (s->used + total > (reserved ? s->capacity : s->limit))
                return -ENOBUFS;

        if (s->used == 0) {
                /* Nothing waits: try the fd first, queue only what it does not take. */
                ssize_t k = sink_raw_writev(s, iov, n);

                if (k < 0 && k != -EAGAIN) {
                        sink_mark_broken(s);
                        s->lost_bytes += total;
                        return 0;
                }
                done = k > 0 ? (size_t) k : 0;
        }
        if (done < total) {
                sink_enqueue(s, iov, n, done);
                if (s->source)
                        sd_event_source_set_enabled(s->source, SD_EVENT_ON);
        }
        return 0;
}

int sink_flush(struct sink *s, uint64_t timeout_usec) {
        uint64_t deadline = now_usec() + timeout_usec;

        if (!s || s->mode == SINK_DIRECT)
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

int sink_fstat_id(const struct sink *s, uint64_t *ret_dev, uint64_t *ret_ino) {
        if (!s)
                return -EINVAL;
        *ret_dev = s->dev;
        *ret_ino = s->ino;
        return 0;
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
        s->dev = (uint64_t) st.st_dev;
        s->ino = (uint64_t) st.st_ino;

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

        if (s->mode != SINK_DIRECT) {
                s->queue = malloc(s->capacity);
                if (!s->queue) {
                        safe_close(s->own_fd);
                        return -ENOMEM;
                }
                r = sd_event_add_io(event, &s->source, s->fd, EPOLLOUT, sink_on_writable, s);
                if (r < 0) {
                        /* Not pollable after all: write directly. */
                        free(s->queue);
                        s->queue = NULL;
                        s->mode = SINK_DIRECT;
                } else
                        (void) sd_event_source_set_enabled(s->source, SD_EVENT_OFF);
        }

        *ret = TAKE_PTR(s);
        return 0;
}

struct sink *sink_free(struct sink *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->source);
        safe_close(s->own_fd);
        free(s->queue);
        free(s);
        return NULL;
}

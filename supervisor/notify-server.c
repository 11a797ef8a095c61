/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "log.h"
#include "notify.h"
#include "parse-util.h"
#include "rm_announce.h"
#include "util.h"

/* ------------------------------------------------------------ the socket */

/* At most this many datagrams per wake-up, so that one flooding sender cannot starve the loop. */
#define DRAIN_MAX 1024
/* SCM_MAX_FD: room for every fd a sender can attach, so that all of them are seen and closed. */
#define FDS_MAX 253
#define SENDER_CACHE_SIZE 64
#define ANCESTRY_MAX 64
#define RECEIVE_BUFFER (8u << 20)

struct sender_entry {
        pid_t pid;
        uint64_t start_time;       /* /proc/PID/stat's starttime: a reused pid is another process */
        int rank;
        pid_t rank_pid;            /* the ancestor that was the rank's process */
};

struct notify_server {
        int fd;
        char *address;             /* the path, or "@name" */
        char *path;                /* to unlink; NULL for an abstract name */
        sd_event_source *source;
        struct notify_callbacks cb;
        void *userdata;
        struct notify_stats stats;
        bool warned[_NOTIFY_DROP_MAX];
        struct sender_entry cache[SENDER_CACHE_SIZE];
        unsigned cache_next;
        uint8_t buffer[NOTIFY_DATAGRAM_MAX];
        struct notify_message message;
};

const char *notify_drop_name(enum notify_drop d) {
        static const char *const names[_NOTIFY_DROP_MAX] = {
                [NOTIFY_DROP_NO_CREDENTIALS] = "no_credentials",
                [NOTIFY_DROP_UNKNOWN_SENDER] = "unknown_sender",
                [NOTIFY_DROP_OVERSIZED] = "oversized",
                [NOTIFY_DROP_WITH_FDS] = "with_fds",
                [NOTIFY_DROP_NOT_UTF8] = "not_utf8",
                [NOTIFY_DROP_MALFORMED] = "malformed",
        };
        return (unsigned) d < _NOTIFY_DROP_MAX ? names[d] : "?";
}

static const char *drop_explanation(enum notify_drop d) {
        switch (d) {
        case NOTIFY_DROP_NO_CREDENTIALS:
                return "it carried no sender credentials";
        case NOTIFY_DROP_UNKNOWN_SENDER:
                return "its sender is neither a rank nor a descendant of one";
        case NOTIFY_DROP_OVERSIZED:
                return "it is longer than 4096 bytes";
        case NOTIFY_DROP_WITH_FDS:
                return "it carried file descriptors";
        case NOTIFY_DROP_NOT_UTF8:
                return "it is not UTF-8";
        case NOTIFY_DROP_MALFORMED:
        default:
                return "it is not KEY=VALUE lines with valid values";
        }
}

static void count_drop(struct notify_server *s, enum notify_drop d, pid_t pid) {
        s->stats.dropped[d]++;
        if (!s->warned[d]) {
                s->warned[d] = true;
                log_warning("dropped a notify datagram from pid %d: %s (further ones are only counted, in the report)",
                            (int) pid, drop_explanation(d));
        } else
                log_debug("dropped a notify datagram from pid %d: %s", (int) pid, drop_explanation(d));
}

/* ppid and starttime (fields 4 and 22) of /proc/PID/stat. */
static int read_parent(pid_t pid, pid_t *ret_ppid, uint64_t *ret_start_time) {
        _cleanup_free_ char *text = NULL;
        char path[64], *p;
        unsigned long long start_time;
        int ppid, r;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        r = read_file_bounded(AT_FDCWD, path, 4096, &text, NULL);
        if (r < 0)
                return r;
        /* comm may hold spaces and parentheses: the fields go on after the last ')'. */
        p = strrchr(text, ')');
        if (!p || sscanf(p + 1, " %*c %d" " %*s %*s %*s %*s" " %*s %*s %*s %*s %*s %*s %*s" " %*s %*s %*s %*s %*s %*s" " %llu",
                         &ppid, &start_time) != 2)
                return -EBADMSG;
        *ret_ppid = ppid;
        *ret_start_time = start_time;
        return 0;
}

/* The rank pid speaks for: its own process, or one of its descendants; -1 otherwise. */
static int sender_rank(struct notify_server *s, pid_t pid) {
        uint64_t start_time;
        pid_t parent, self = getpid();
        int rank;

        rank = s->cb.rank_of_pid(pid, s->userdata);
        if (rank >= 0)
                return rank;
        /* A descendant: gone already, it cannot be told from a stranger. */
        if (read_parent(pid, &parent, &start_time) < 0)
                return -1;
        for (size_t i = 0; i < SENDER_CACHE_SIZE; i++) {
                struct sender_entry *e = &s->cache[i];

                if (e->pid == pid && e->start_time == start_time)
                        /* Still a descendant of a live rank: it was one, and that rank lives. */
                        return s->cb.rank_of_pid(e->rank_pid, s->userdata) == e->rank ? e->rank : -1;
        }
        for (int depth = 0; depth < ANCESTRY_MAX && parent > 1 && parent != self; depth++) {
                uint64_t ignored;
                pid_t next;

                rank = s->cb.rank_of_pid(parent, s->userdata);
                if (rank >= 0) {
                        s->cache[s->cache_next] = (struct sender_entry) {
                                .pid = pid, .start_time = start_time, .rank = rank, .rank_pid = parent,
                        };
                        s->cache_next = (s->cache_next + 1) % SENDER_CACHE_SIZE;
                        return rank;
                }
                if (read_parent(parent, &next, &ignored) < 0)
                        return -1;
                parent = next;
        }
        return -1;
}

void notify_server_forget_senders(struct notify_server *s) {
        if (!s)
                return;
        memset(s->cache, 0, sizeof(s->cache));
        s->cache_next = 0;
}

static void close_kept(int kept[3]) {
        for (int i = 0; i < 3; i++)
                kept[i] = safe_close(kept[i]);
}

/* One datagram: 1 read, 0 nothing queued, < 0 a receive error. */
static int receive_one(struct notify_server *s) {
        union {
                struct cmsghdr align;
                uint8_t buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * FDS_MAX)];
        } control;
        struct iovec iov = { s->buffer, sizeof(s->buffer) };
        struct msghdr mh = {
                .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control),
        };
        const struct ucred *cred = NULL;
        int kept[3] = { -EBADF, -EBADF, -EBADF };
        size_t fds = 0;
        ssize_t k;
        int rank, r;

        k = recvmsg(s->fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
        if (k < 0) {
                if (errno == EAGAIN || errno == EINTR)
                        return errno == EAGAIN ? 0 : 1;
                return -errno;
        }
        s->stats.received++;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET)
                        continue;
                if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                        cred = (const struct ucred *) (const void *) CMSG_DATA(c);
                else if (c->cmsg_type == SCM_RIGHTS) {
                        size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                        int fd;

                        for (size_t i = 0; i < n; i++) {
                                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                                /* The first three may be a worker's capture request (kept until judged). */
                                if (fds + i < ELEMENTSOF(kept))
                                        kept[fds + i] = fd;
                                else
                                        safe_close(fd);
                        }
                        fds += n;
                }
        }
        /*
         * sd_notify_barrier(): "BARRIER=1" and one fd, which the sender waits
         * to see closed.  Datagrams are read in order, so closing it now says
         * that everything it sent before was taken.
         */
        if (fds == 1 && k == 9 && memcmp(s->buffer, "BARRIER=1", 9) == 0 && !(mh.msg_flags & MSG_CTRUNC)) {
                safe_close(kept[0]);
                s->stats.barriers++;
                return 1;
        }
        /* A worker's capture request: three descriptors and the key (job-workers.h); any other is dropped. */
        if (fds > 0 && !(fds == 3 && s->cb.worker && k > 0 && (size_t) k <= sizeof(s->buffer) &&
                         memmem(s->buffer, (size_t) k, RM_ANNOUNCE_KEY_CAPTURE "=1", sizeof(RM_ANNOUNCE_KEY_CAPTURE "=1") - 1))) {
                close_kept(kept);
                count_drop(s, NOTIFY_DROP_WITH_FDS, cred ? cred->pid : 0);
                return 1;
        }
        if (!cred || cred->pid <= 0 || (mh.msg_flags & MSG_CTRUNC)) {
                close_kept(kept);
                count_drop(s, NOTIFY_DROP_NO_CREDENTIALS, 0);
                return 1;
        }
        if ((size_t) k > sizeof(s->buffer) || (mh.msg_flags & MSG_TRUNC)) {
                close_kept(kept);
                count_drop(s, NOTIFY_DROP_OVERSIZED, cred->pid);
                return 1;
        }
        rank = sender_rank(s, cred->pid);
        if (rank < 0) {
                close_kept(kept);
                count_drop(s, NOTIFY_DROP_UNKNOWN_SENDER, cred->pid);
                return 1;
        }
        r = notify_parse(s->buffer, (size_t) k, &s->message);
        if (r < 0) {
                close_kept(kept);
                count_drop(s, r == -EILSEQ ? NOTIFY_DROP_NOT_UTF8 : NOTIFY_DROP_MALFORMED, cred->pid);
                return 1;
        }
        s->stats.accepted++;
        /* The worker's keys first: an announcement makes the worker its phase keys then count for. */
        if (s->cb.worker)
                s->cb.worker(rank, cred->pid, s->buffer, (size_t) k, kept, fds == 3 ? 3 : 0, s->userdata);
        else
                close_kept(kept);
        s->cb.message(rank, cred->pid, &s->message, s->userdata);
        return 1;
}

void notify_server_drain(struct notify_server *s) {
        if (!s)
                return;
        for (unsigned n = 0; n < DRAIN_MAX; n++) {
                int r = receive_one(s);

                if (r == 0)
                        break;
                if (r < 0) {
                        log_warning_errno(r, "cannot read the notify socket");
                        break;
                }
        }
}

static int on_readable(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        struct notify_server *s = userdata;

        notify_server_drain(s);
        if (s->cb.drained)
                s->cb.drained(s->userdata);
        return 0;
}

static int bind_socket(struct notify_server *s, const char *dir, const char *run_id) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_free_ char *path = NULL;
        socklen_t len;

        if (asprintf(&path, "%s/notify", dir) < 0)
                return -ENOMEM;
        if (strlen(path) < sizeof(sa.sun_path)) {
                memcpy(sa.sun_path, path, strlen(path) + 1);
                len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1);
                (void) unlink(path);
                if (bind(s->fd, (struct sockaddr *) &sa, len) < 0)
                        return log_error_errno(-errno, "cannot bind the notify socket %s", path);
                /*
                 * Writable by all, as systemd's /run/systemd/notify: a rank that
                 * dropped privileges must still reach it.  The sender's
                 * credentials decide whose datagram counts (strangers' are dropped).
                 */
                if (chmod(path, 0666) < 0)
                        return log_error_errno(-errno, "cannot open the notify socket %s to the ranks", path);
                s->address = strdup(path);
                s->path = TAKE_PTR(path);
                return s->address ? 0 : -ENOMEM;
        } else {
                /* Too long for sun_path: an abstract name (the credentials still decide who may speak). */
                char random[13], name[sizeof(sa.sun_path)];
                int n;

                if (random_id(random, 12) < 0)
                        return -EIO;
                n = snprintf(name, sizeof(name), "ringmaster/%.*s/%s/notify", 64, run_id, random);
                if (n < 0 || (size_t) n >= sizeof(name) - 1)
                        return -ENAMETOOLONG;
                memcpy(sa.sun_path + 1, name, (size_t) n);
                len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + 1 + (size_t) n);
                if (bind(s->fd, (struct sockaddr *) &sa, len) < 0)
                        return log_error_errno(-errno, "cannot bind the notify socket @%s", name);
                if (asprintf(&s->address, "@%s", name) < 0)
                        return -ENOMEM;
                log_info("the run directory's path is too long for a socket: notify socket @%s", name);
                return 0;
        }
}

int notify_server_new(sd_event *event, const char *dir, const char *run_id, const struct notify_callbacks *cb,
                      void *userdata, struct notify_server **ret) {
        struct notify_server *s;
        int one = 1, size = (int) RECEIVE_BUFFER, r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->cb = *cb;
        s->userdata = userdata;
        s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->fd < 0) {
                r = log_error_errno(-errno, "cannot create the notify socket");
                goto fail;
        }
        if (setsockopt(s->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0) {
                r = log_error_errno(-errno, "cannot ask for senders' credentials on the notify socket");
                goto fail;
        }
        /* Room for bursts (every rank at once); beyond rmem_max only with CAP_NET_ADMIN. */
        if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
                (void) setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        r = bind_socket(s, dir, run_id);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(event, &s->source, s->fd, EPOLLIN, on_readable, s);
        if (r < 0) {
                log_error_errno(r, "cannot watch the notify socket");
                goto fail;
        }
        *ret = s;
        return 0;
fail:
        notify_server_free(s);
        return r;
}

struct notify_server *notify_server_free(struct notify_server *s) {
        if (!s)
                return NULL;
        sd_event_source_disable_unref(s->source);
        safe_close(s->fd);
        if (s->path)
                (void) unlink(s->path);
        free(s->path);
        free(s->address);
        free(s);
        return NULL;
}

const char *notify_server_address(const struct notify_server *s) {
        return s ? s->address : NULL;
}

const struct notify_stats *notify_server_stats(const struct notify_server *s) {
        return s ? &s->stats : NULL;
}

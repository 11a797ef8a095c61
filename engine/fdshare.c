/* SPDX-License-Identifier: MIT */
/*
 * File-descriptor sharing between the ranks of a run: each rank that shares
 * something serves RUN_DIR/fd-RANK.sock (SOCK_SEQPACKET) from a thread; a
 * fetcher sends (key, token) and gets the fd back with SCM_RIGHTS.  Used for
 * CUDA VMM allocations exported as POSIX file descriptors, which unlike
 * cudaIpc handles also cross PID namespaces.
 *
 * Nothing received is trusted: requests and replies have one exact size and
 * a magic, the peer must run as our user (SO_PEERCRED), the key must match,
 * and a reply carrying anything but exactly the one fd it announces has
 * every fd in it closed and is refused.
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "internal.h"

#define FD_MAGIC UINT32_C(0x31534446)           /* "FDS1" */
#define FD_PROTO_VERSION 1
#define FD_DEFAULT_TIMEOUT_NS (10 * NSEC_PER_SEC)
/* How long the server gives one client to send its request. */
#define FD_SERVER_IO_TIMEOUT_MS 2000
/* fds a reply may carry before we call it malformed (we accept and close them). */
#define FD_MAX_RECEIVED 8

struct fd_request {
        uint32_t magic;
        uint32_t version;
        char key[64];
        uint64_t token;
};

struct fd_reply {
        uint32_t magic;
        uint32_t version;
        int32_t status;                         /* 0 (one fd attached) or a negative errno */
        uint32_t reserved;
        char key[64];
        uint64_t token;
};

struct fd_entry {
        char key[64];
        int fd;
        uint64_t token;
};

struct fdshare {
        pthread_mutex_t lock;                   /* entries */
        struct fd_entry *entries;
        size_t n_entries;
        int listen_fd;
        int stop_fd;                            /* eventfd: the thread exits when readable */
        bool thread_started;
        pthread_t thread;
        char path[PATH_MAX];                    /* the socket, to unlink */
};

/*
 * A socket address for RUN_DIR/fd-RANK.sock.  sun_path holds 107 bytes; a
 * longer run directory is reached through an O_PATH descriptor of it
 * (/proc/self/fd/N/fd-RANK.sock), kept open in *dir_fd until bind/connect.
 */
static int socket_address(const char *run_dir, uint32_t rank, struct sockaddr_un *ret_sa, socklen_t *ret_len,
                          char *path, size_t path_size, int *dir_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char name[32];
        int n;

        snprintf(name, sizeof(name), "fd-%" PRIu32 ".sock", rank);
        n = snprintf(path, path_size, "%s/%s", run_dir, name);
        if (n < 0 || (size_t) n >= path_size)
                return -ENAMETOOLONG;
        if ((size_t) n < sizeof(sa.sun_path)) {
                memcpy(sa.sun_path, path, (size_t) n + 1);
        } else {
                *dir_fd = open(run_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (*dir_fd < 0)
                        return -errno;
                snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", *dir_fd, name);
        }
        *ret_sa = sa;
        *ret_len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(sa.sun_path) + 1);
        return 0;
}

static void set_io_timeout(int fd, int64_t timeout_ns) {
        struct timeval tv = {
                .tv_sec = timeout_ns / NSEC_PER_SEC,
                .tv_usec = (timeout_ns % NSEC_PER_SEC) / 1000,
        };

        if (tv.tv_sec == 0 && tv.tv_usec == 0)
                tv.tv_usec = 1;                 /* zero would mean forever */
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static bool key_terminated_valid(const char key[64]) {
        return memchr(key, '\0', 64) && rm_name_valid(key, RM_FD_KEY_MAX, true);
}

/* ------------------------------------------------------------- server */

static void serve_one(struct fdshare *f, int conn) {
        struct fd_request req;
        struct fd_reply rep = { .magic = FD_MAGIC, .version = FD_PROTO_VERSION };
        struct ucred cred;
        socklen_t cl = sizeof(cred);
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        int fd = -EBADF;
        ssize_t n;

        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid != geteuid())
                return;                         /* another user: no answer at all */
        n = recv(conn, &req, sizeof(req), MSG_TRUNC);
        if (n != (ssize_t) sizeof(req) || req.magic != FD_MAGIC || req.version != FD_PROTO_VERSION ||
            !key_terminated_valid(req.key))
                return;

        memcpy(rep.key, req.key, sizeof(rep.key));
        rep.token = req.token;
        rep.status = -ENOENT;
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < f->n_entries; i++) {
                if (strcmp(f->entries[i].key, req.key) != 0)
                        continue;
                if (f->entries[i].token != req.token) {
                        rep.status = -EACCES;
                        break;
                }
                /* A duplicate, so that an unshare meanwhile cannot close it under us. */
                fd = fcntl(f->entries[i].fd, F_DUPFD_CLOEXEC, 3);
                rep.status = fd >= 0 ? 0 : -errno;
                break;
        }
        pthread_mutex_unlock(&f->lock);

        if (fd >= 0) {
                struct cmsghdr *c;

                memset(&control, 0, sizeof(control));
                mh.msg_control = control.buf;
                mh.msg_controllen = sizeof(control.buf);
                c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        (void) sendmsg(conn, &mh, MSG_NOSIGNAL);
        if (fd >= 0)
                close(fd);
}

static void *server_thread(void *arg) {
        struct fdshare *f = arg;

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = f->listen_fd, .events = POLLIN },
                        { .fd = f->stop_fd, .events = POLLIN },
                };
                int conn;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                if (!(p[0].revents & POLLIN))
                        continue;
                conn = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (conn < 0)
                        continue;               /* ECONNABORTED, EMFILE...: next one */
                set_io_timeout(conn, FD_SERVER_IO_TIMEOUT_MS * NSEC_PER_MSEC);
                serve_one(f, conn);
                close(conn);
        }
        return NULL;
}

struct fdshare *fdshare_free(struct fdshare *f) {
        if (!f)
                return NULL;
        if (f->thread_started) {
                uint64_t one = 1;

                (void) !write(f->stop_fd, &one, sizeof(one));
                pthread_join(f->thread, NULL);
        }
        if (f->listen_fd >= 0) {
                close(f->listen_fd);
                (void) unlink(f->path);
        }
        if (f->stop_fd >= 0)
                close(f->stop_fd);
        for (size_t i = 0; i < f->n_entries; i++)
                close(f->entries[i].fd);
        free(f->entries);
        pthread_mutex_destroy(&f->lock);
        free(f);
        return NULL;
}

/* Binds the rank's socket; takes over one left behind by a process that died. */
static int bind_socket(struct rm_worker *w, struct fdshare *f) {
        struct sockaddr_un sa;
        socklen_t len;
        _cleanup_close_ int dir_fd = -EBADF;
        int r;

        r = socket_address(w->run_dir, w->rank, &sa, &len, f->path, sizeof(f->path), &dir_fd);
        if (r < 0)
                return rmpriv_fail(r, "Failed to name the fd socket in %s: %s", w->run_dir, strerror(-r));
        f->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (f->listen_fd < 0)
                return rmpriv_fail(-errno, "Failed to create a Unix socket: %m");
        if (bind(f->listen_fd, (struct sockaddr *) &sa, len) < 0) {
                _cleanup_close_ int probe = -EBADF;

                if (errno != EADDRINUSE)
                        goto fail;
                probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        goto fail;
                if (connect(probe, (struct sockaddr *) &sa, len) == 0) {
                        errno = EADDRINUSE;
                        return rmpriv_fail(-EADDRINUSE, "%s is served by another live process (a second worker "
                                                        "with RANK=%" PRIu32 "?)", f->path, w->rank);
                }
                if (errno != ECONNREFUSED)
                        goto fail;
                (void) unlink(f->path);          /* a dead process's socket */
                if (bind(f->listen_fd, (struct sockaddr *) &sa, len) < 0)
                        goto fail;
        }
        (void) chmod(f->path, 0600);
        if (listen(f->listen_fd, 64) < 0)
                goto fail;
        return 0;
fail:
        r = -errno;
        close(f->listen_fd);
        f->listen_fd = -EBADF;
        return rmpriv_fail(r, "Failed to serve %s: %s", f->path, strerror(-r));
}

static int fdshare_start(struct rm_worker *w, struct fdshare **ret) {
        struct fdshare *f;
        int r;

        f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        pthread_mutex_init(&f->lock, NULL);
        f->listen_fd = -EBADF;
        f->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (f->stop_fd < 0) {
                r = rmpriv_fail(-errno, "Failed to create an eventfd: %m");
                goto fail;
        }
        r = bind_socket(w, f);
        if (r < 0)
                goto fail;
        r = -pthread_create(&f->thread, NULL, server_thread, f);
        if (r < 0) {
                rmpriv_set_error("Failed to start the fd server thread: %s", strerror(-r));
                goto fail;
        }
        f->thread_started = true;
        *ret = f;
        return 0;
fail:
        fdshare_free(f);
        return r;
}

_public_ int rm_fd_share(struct rm_worker *w, const char *key, int fd, uint64_t *ret_token) {
        struct fdshare *f;
        _cleanup_close_ int copy = -EBADF;
        uint64_t token;
        int r;

        check_arg(w && fd >= 0, -EINVAL);
        check_arg(rm_name_valid(key, RM_FD_KEY_MAX, true), -EINVAL);
        rmpriv_clear_error();

        copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (copy < 0)
                return rmpriv_fail(-errno, "Failed to duplicate fd %d: %m", fd);

        pthread_mutex_lock(&w->lock);
        if (!w->fds) {
                r = fdshare_start(w, &w->fds);
                if (r < 0) {
                        pthread_mutex_unlock(&w->lock);
                        return r;
                }
        }
        f = w->fds;
        pthread_mutex_unlock(&w->lock);

        token = rmpriv_random_u64();
        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < f->n_entries; i++)
                if (strcmp(f->entries[i].key, key) == 0) {
                        close(f->entries[i].fd);
                        f->entries[i].fd = take_fd(&copy);
                        f->entries[i].token = token;
                        goto done;
                }
        {
                struct fd_entry *e = realloc(f->entries, (f->n_entries + 1) * sizeof(*e));

                if (!e) {
                        pthread_mutex_unlock(&f->lock);
                        return -ENOMEM;
                }
                f->entries = e;
                e = &f->entries[f->n_entries++];
                memset(e, 0, sizeof(*e));
                snprintf(e->key, sizeof(e->key), "%s", key);
                e->fd = take_fd(&copy);
                e->token = token;
        }
done:
        pthread_mutex_unlock(&f->lock);
        if (ret_token)
                *ret_token = token;
        return 0;
}

_public_ int rm_fd_unshare(struct rm_worker *w, const char *key) {
        struct fdshare *f;
        int r = -ENOENT;

        check_arg(w, -EINVAL);
        check_arg(rm_name_valid(key, RM_FD_KEY_MAX, true), -EINVAL);

        pthread_mutex_lock(&w->lock);
        f = w->fds;
        pthread_mutex_unlock(&w->lock);
        if (!f)
                return -ENOENT;

        pthread_mutex_lock(&f->lock);
        for (size_t i = 0; i < f->n_entries; i++)
                if (strcmp(f->entries[i].key, key) == 0) {
                        close(f->entries[i].fd);
                        f->entries[i] = f->entries[--f->n_entries];
                        r = 0;
                        break;
                }
        pthread_mutex_unlock(&f->lock);
        return r;
}

/* ------------------------------------------------------------- client */

static void close_received(const int *fds, size_t n) {
        for (size_t i = 0; i < n; i++)
                close(fds[i]);
}

_public_ int rm_fd_fetch(struct rm_worker *w, uint32_t owner_rank, const char *key, uint64_t token,
                         int64_t timeout_ns, int *ret_fd) {
        struct sockaddr_un sa;
        socklen_t len;
        char path[PATH_MAX];
        _cleanup_close_ int dir_fd = -EBADF, sock = -EBADF;
        struct fd_request req = { .magic = FD_MAGIC, .version = FD_PROTO_VERSION, .token = token };
        struct fd_reply rep;
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * FD_MAX_RECEIVED)];
        } control;
        struct iovec iov = { .iov_base = &rep, .iov_len = sizeof(rep) };
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        int fds[FD_MAX_RECEIVED];
        size_t n_fds = 0;
        ssize_t n;
        int r;

        check_arg(w && ret_fd, -EINVAL);
        check_arg(owner_rank < w->world_size, -EINVAL);
        check_arg(rm_name_valid(key, RM_FD_KEY_MAX, true), -EINVAL);
        rmpriv_clear_error();
        if (timeout_ns == 0)
                timeout_ns = FD_DEFAULT_TIMEOUT_NS;

        r = socket_address(w->run_dir, owner_rank, &sa, &len, path, sizeof(path), &dir_fd);
        if (r < 0)
                return rmpriv_fail(r, "Failed to name rank %" PRIu32 "'s fd socket: %s", owner_rank, strerror(-r));
        sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return rmpriv_fail(-errno, "Failed to create a Unix socket: %m");
        if (timeout_ns > 0)
                set_io_timeout(sock, timeout_ns);
        if (connect(sock, (struct sockaddr *) &sa, len) < 0) {
                if (errno == ENOENT || errno == ECONNREFUSED)
                        return rmpriv_fail(-ECONNREFUSED, "rank %" PRIu32 " serves no fds at %s (it exited, or "
                                                          "never shared any)", owner_rank, path);
                if (errno == EAGAIN || errno == EINPROGRESS)
                        return rmpriv_fail(-ETIMEDOUT, "timed out connecting to %s", path);
                return rmpriv_fail(-errno, "Failed to connect to %s: %m", path);
        }
        snprintf(req.key, sizeof(req.key), "%s", key);
        if (send(sock, &req, sizeof(req), MSG_NOSIGNAL) != (ssize_t) sizeof(req)) {
                if (errno == EAGAIN)
                        return rmpriv_fail(-ETIMEDOUT, "timed out sending to %s", path);
                return rmpriv_fail(-errno, "Failed to send to %s: %m", path);
        }

        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0) {
                if (errno == EAGAIN)
                        return rmpriv_fail(-ETIMEDOUT, "timed out waiting for rank %" PRIu32 "'s answer on %s",
                                           owner_rank, path);
                /* The owner closed its socket with our connection queued: it is exiting. */
                if (errno == ECONNRESET || errno == EPIPE)
                        return rmpriv_fail(-ECONNREFUSED, "rank %" PRIu32 " dropped the connection on %s (it is "
                                                          "exiting)", owner_rank, path);
                return rmpriv_fail(-errno, "Failed to receive from %s: %m", path);
        }
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                size_t k;

                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
                        continue;
                k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k && n_fds < FD_MAX_RECEIVED; i++)
                        memcpy(&fds[n_fds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        }

        if (n == 0) {
                close_received(fds, n_fds);
                return rmpriv_fail(-ECONNREFUSED, "rank %" PRIu32 " closed %s without an answer (it is exiting, or "
                                                  "runs as another user)", owner_rank, path);
        }
        if (n != (ssize_t) sizeof(rep) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || rep.magic != FD_MAGIC ||
            rep.version != FD_PROTO_VERSION || !memchr(rep.key, '\0', sizeof(rep.key)) ||
            strcmp(rep.key, key) != 0 || rep.token != token) {
                close_received(fds, n_fds);
                return rmpriv_fail(-EBADMSG, "malformed answer from rank %" PRIu32 " on %s", owner_rank, path);
        }
        if (rep.status != 0) {
                close_received(fds, n_fds);
                if (n_fds != 0 || (rep.status != -ENOENT && rep.status != -EACCES && rep.status != -EMFILE &&
                                   rep.status != -ENFILE))
                        return rmpriv_fail(-EBADMSG, "malformed answer from rank %" PRIu32 " on %s", owner_rank,
                                           path);
                if (rep.status == -ENOENT)
                        return rmpriv_fail(-ENOENT, "rank %" PRIu32 " shares nothing under '%s' (any more)",
                                           owner_rank, key);
                if (rep.status == -EACCES)
                        return rmpriv_fail(-EACCES, "rank %" PRIu32 " refused the token for '%s' (a stale record?)",
                                           owner_rank, key);
                return rmpriv_fail(rep.status, "rank %" PRIu32 " could not duplicate '%s': %s", owner_rank, key,
                                   strerror(-rep.status));
        }
        if (n_fds != 1) {
                close_received(fds, n_fds);
                return rmpriv_fail(-EBADMSG, "rank %" PRIu32 " answered with %zu fds instead of one", owner_rank,
                                   n_fds);
        }
        *ret_fd = fds[0];
        return 0;
}

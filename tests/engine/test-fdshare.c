/* SPDX-License-Identifier: MIT */
/*
 * fd sharing over the rank's Unix socket: a memfd shared by rank 0 is read
 * by rank 1; wrong tokens, unknown keys and a gone owner give errors; a
 * malicious server's extra or missing fds are refused without leaking one.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rank-launcher.h"
#include "rm_worker.h"
#include "shmring.h"

#define SEC INT64_C(1000000000)

static const char payload[] = "shared through SCM_RIGHTS";

static int count_fds(void) {
        DIR *d = opendir("/proc/self/fd");
        struct dirent *de;
        int n = 0;

        CHECK(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1;                   /* the directory's own fd */
}

static void put_token(struct rm_worker *w, const char *what, uint64_t token) {
        char key[64];

        snprintf(key, sizeof(key), "test/token/%s", what);
        CHECK(shmring_kv_put(rm_worker_segment(w), RM_KV_TABLE, key, &token, sizeof(token)) > 0);
}

static uint64_t get_token(struct rm_worker *w, const char *what) {
        char key[64];
        uint64_t token;

        snprintf(key, sizeof(key), "test/token/%s", what);
        CHECK(shmring_kv_get(rm_worker_segment(w), RM_KV_TABLE, key, 0, &token, sizeof(token), NULL, 10 * SEC) ==
              sizeof(token));
        return token;
}

/* Rank 2 impersonates a broken server on rank 2's socket: answers with the wrong number of fds. */
static void evil_server(struct rm_worker *w) {
        char path[4096];
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int s, c, fds[3];

        snprintf(path, sizeof(path), "%s/fd-2.sock", rm_worker_run_dir(w));
        CHECK(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        CHECK(s >= 0);
        CHECK(bind(s, (struct sockaddr *) &sa, sizeof(sa)) == 0);
        CHECK(listen(s, 4) == 0);
        CHECK(rmtest_barrier(w, "evil-up", 10 * SEC) == 0);
        for (int i = 0; i < 3; i++)
                fds[i] = memfd_create("evil", MFD_CLOEXEC);

        /* 1: three fds for one.  2: a reply of the wrong size.  3: no fd on success. */
        for (int round = 0; round < 3; round++) {
                unsigned char req[96], rep[96];
                union {
                        struct cmsghdr align;
                        char buf[CMSG_SPACE(sizeof(int) * 3)];
                } control;
                struct iovec iov = { .iov_base = rep, .iov_len = 96 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
                ssize_t n;

                c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
                CHECK(c >= 0);
                n = recv(c, req, sizeof(req), 0);
                CHECK(n == 80);                 /* magic, version, key[64], token */
                /* Echo a plausible reply: magic, version, status 0, key, token. */
                memset(rep, 0, sizeof(rep));
                memcpy(rep, req, 8);
                memcpy(rep + 16, req + 8, 64 + 8);
                if (round == 1)
                        iov.iov_len = 50;
                else
                        iov.iov_len = 88;
                if (round == 0) {
                        struct cmsghdr *cm;

                        memset(&control, 0, sizeof(control));
                        mh.msg_control = control.buf;
                        mh.msg_controllen = sizeof(control.buf);
                        cm = CMSG_FIRSTHDR(&mh);
                        cm->cmsg_level = SOL_SOCKET;
                        cm->cmsg_type = SCM_RIGHTS;
                        cm->cmsg_len = CMSG_LEN(sizeof(fds));
                        memcpy(CMSG_DATA(cm), fds, sizeof(fds));
                }
                CHECK(sendmsg(c, &mh, 0) >= 0);
                close(c);
        }
        CHECK(rmtest_barrier(w, "evil-done", 10 * SEC) == 0);
        close(s);
        unlink(path);
}

static int rank_main(void) {
        struct rm_worker *w = rmtest_rank_open();
        uint32_t rank = rm_worker_rank(w);

        if (rank == 0) {
                int fd = memfd_create("rmtest", MFD_CLOEXEC);
                uint64_t token, token2;

                CHECK(fd >= 0);
                CHECK(write(fd, payload, sizeof(payload)) == sizeof(payload));
                CHECK_ERR(rm_fd_share(w, "bad key", fd, &token), -EINVAL);
                CHECK_ERR(rm_fd_share(w, "mem/a", -1, &token), -EINVAL);
                CHECK_ERR(rm_fd_share(w, "mem/a", fd, &token), 0);
                close(fd);                              /* the share holds its own copy */
                put_token(w, "a", token);
                CHECK(rmtest_barrier(w, "shared", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "fetched", 10 * SEC) == 0);
                /* Re-sharing gives a new token; unsharing makes it unknown. */
                fd = memfd_create("rmtest2", MFD_CLOEXEC);
                CHECK_ERR(rm_fd_share(w, "mem/a", fd, &token2), 0);
                CHECK(token2 != token);
                close(fd);
                CHECK_ERR(rm_fd_unshare(w, "mem/a"), 0);
                CHECK_ERR(rm_fd_unshare(w, "mem/a"), -ENOENT);
                CHECK(rmtest_barrier(w, "unshared", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "evil-up", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "evil-done", 10 * SEC) == 0);
                /* Exit: rank 1 then finds no server. */
        } else if (rank == 1) {
                uint64_t token = get_token(w, "a");
                char buf[64] = { 0 };
                int fd, before;

                CHECK(rmtest_barrier(w, "shared", 10 * SEC) == 0);
                CHECK_ERR(rm_fd_fetch(w, 0, "mem/a", token, 5 * SEC, &fd), 0);
                CHECK(pread(fd, buf, sizeof(buf), 0) == sizeof(payload));
                CHECK(strcmp(buf, payload) == 0);
                CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
                close(fd);
                printf("rank 1: read '%s' through the fetched fd\n", buf);
                CHECK_ERR(rm_fd_fetch(w, 0, "mem/a", token ^ 1, 5 * SEC, &fd), -EACCES);
                CHECK_ERR(rm_fd_fetch(w, 0, "mem/none", token, 5 * SEC, &fd), -ENOENT);
                CHECK_ERR(rm_fd_fetch(w, 3, "mem/a", token, 5 * SEC, &fd), -ECONNREFUSED);
                CHECK_ERR(rm_fd_fetch(w, 9, "mem/a", token, 5 * SEC, &fd), -EINVAL);
                CHECK(rmtest_barrier(w, "fetched", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "unshared", 10 * SEC) == 0);
                CHECK_ERR(rm_fd_fetch(w, 0, "mem/a", token, 5 * SEC, &fd), -ENOENT);

                /* The broken server: every answer refused, no fd left behind. */
                CHECK(rmtest_barrier(w, "evil-up", 10 * SEC) == 0);
                before = count_fds();
                CHECK_ERR(rm_fd_fetch(w, 2, "mem/x", 7, 5 * SEC, &fd), -EBADMSG);
                CHECK_ERR(rm_fd_fetch(w, 2, "mem/x", 7, 5 * SEC, &fd), -EBADMSG);
                CHECK_ERR(rm_fd_fetch(w, 2, "mem/x", 7, 5 * SEC, &fd), -EBADMSG);
                CHECK(count_fds() == before);
                printf("rank 1: malformed answers refused (%s), no fd leaked\n", rm_last_error());
                CHECK(rmtest_barrier(w, "evil-done", 10 * SEC) == 0);

                /* Rank 0 dies after this barrier without cleaning up: its socket file stays, unserved. */
                CHECK(rmtest_barrier(w, "end", 10 * SEC) == 0);
                {
                        struct shmring_kv_info info;
                        struct pollfd p;
                        char one[4];
                        int pfd, r;

                        ssize_t n = shmring_kv_get(rm_worker_segment(w), RM_KV_TABLE, "test/end/0", 0, one,
                                                   sizeof(one), &info, 0);

                        CHECK(n >= 0 || n == -EOWNERDEAD);      /* -EOWNERDEAD: it is gone already */
                        pfd = n >= 0 ? (int) syscall(SYS_pidfd_open, info.owner_pid, 0) : -1;
                        if (n < 0)
                                errno = ESRCH;
                        if (pfd < 0)
                                CHECK(errno == ESRCH);  /* gone before we looked */
                        else {
                                p = (struct pollfd) { .fd = pfd, .events = POLLIN };
                                CHECK(poll(&p, 1, 10000) == 1);
                                close(pfd);
                        }
                        r = rm_fd_fetch(w, 0, "mem/a", token, 5 * SEC, &fd);
                        printf("rank 1: after rank 0 died: %d (%s)\n", r, rm_last_error());
                        CHECK_ERR(r, -ECONNREFUSED);
                }
        } else if (rank == 2) {
                CHECK(rmtest_barrier(w, "shared", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "fetched", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "unshared", 10 * SEC) == 0);
                evil_server(w);
        } else {
                CHECK(rmtest_barrier(w, "shared", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "fetched", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "unshared", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "evil-up", 10 * SEC) == 0);
                CHECK(rmtest_barrier(w, "evil-done", 10 * SEC) == 0);
        }
        if (rank != 1)
                CHECK(rmtest_barrier(w, "end", 10 * SEC) == 0);
        if (rank == 0)
                _exit(0);               /* a crash, as far as the socket file is concerned */
        rm_worker_close(w);
        return 0;
}

int main(int argc, char **argv) {
        struct rmtest_job *j;
        int r;

        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return rank_main();
        CHECK(rmtest_job_new(4, &j) == 0);
        CHECK(rmtest_job_spawn_all(j, "fd") == 0);
        r = rmtest_job_wait(j, 60 * SEC);
        rmtest_job_free(j);
        printf(r == 0 ? "ok\n" : "FAILED\n");
        return r == 0 ? 0 : 1;
}

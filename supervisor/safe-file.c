/* SPDX-License-Identifier: MIT */
/* Files written where others may write too (safe-file.h). */

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "safe-file.h"
#include "util.h"

static const char *dir_problem(const struct stat *st) {
        if (!S_ISDIR(st->st_mode))
                return "it is not a directory";
        if (st->st_uid == geteuid() || st->st_uid == 0)
                return NULL;
        if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX))
                return "another user owns it and others may write to it without the sticky bit";
        return NULL;
}

int safe_dir_check(const char *dir, const char **ret_why) {
        struct stat st;
        const char *why;

        if (stat(dir, &st) < 0)
                return -errno;
        why = dir_problem(&st);
        if (why) {
                *ret_why = why;
                return -EPERM;
        }
        return 0;
}

int safe_tmpfile_open(const char *path, char **ret_tmp) {
        for (int attempt = 0; attempt < 16; attempt++) {
                _cleanup_free_ char *tmp = NULL;
                uint64_t rnd = 0;
                int fd;

                if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                        rnd = now_usec() ^ ((uint64_t) getpid() << 32) ^ (uint64_t) attempt;
                if (asprintf(&tmp, "%s.tmp-%016llx", path, (unsigned long long) rnd) < 0)
                        return -ENOMEM;
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0666);
                if (fd >= 0) {
                        *ret_tmp = TAKE_PTR(tmp);
                        return fd;
                }
                if (errno != EEXIST)
                        return -errno;
        }
        return -EEXIST;
}

int safe_own_dir(const char *path, mode_t mode, int *ret_fd, const char **ret_why) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;
        bool made;

        made = mkdir(path, mode) == 0;
        if (!made && errno != EEXIST)
                return -errno;
        fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ELOOP || errno == ENOTDIR) {
                        *ret_why = "it is a symbolic link or not a directory";
                        return -EPERM;
                }
                return -errno;
        }
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_uid != geteuid()) {
                *ret_why = "another user made it (a predictable name, taken first)";
                return -EPERM;
        }
        if (!made && (st.st_mode & (S_IWGRP | S_IWOTH))) {
                *ret_why = "group or others may write to it";
                return -EPERM;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

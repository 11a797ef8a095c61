/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "log.h"
#include "names.h"
#include "rundir.h"
#include "util.h"

bool run_id_valid(const char *id) {
        size_t n = strlen(id);

        if (n == 0 || n > RUN_ID_MAX || id[0] == '.' || id[0] == '-')
                return false;
        return rm_name_valid(id, RUN_ID_MAX, false);
}

int run_id_generate(char **ret) {
        char rnd[16], *id;
        int r;

        r = random_id(rnd, 12);
        if (r < 0)
                return r;
        if (asprintf(&id, "rm-%s", rnd) < 0)
                return -ENOMEM;
        *ret = id;
        return 0;
}

/* The run directory and its parent: ours, searchable by others (names are unguessable or checked), unlistable. */
#define RUN_DIR_MODE 0711

/*
 * Makes sure path is a directory of ours, mode 0711, not a link: others may
 * pass through (a rank that drops privileges must reach its notify socket
 * and error file, by names it was given), never list or write.
 */
static int ensure_private_dir(const char *path) {
        struct stat st;

        if (mkdir(path, RUN_DIR_MODE) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "cannot create %s", path);
        if (lstat(path, &st) < 0)
                return log_error_errno(-errno, "cannot inspect %s", path);
        if (!S_ISDIR(st.st_mode)) {
                log_error("%s is not a directory (a link or a file is in its place): remove it, or give --run-dir",
                          path);
                return -ENOTDIR;
        }
        if (st.st_uid != getuid()) {
                log_error("%s belongs to uid %u, not to us (uid %u): remove it, or give --run-dir", path,
                          (unsigned) st.st_uid, (unsigned) getuid());
                return -EPERM;
        }
        if ((st.st_mode & 07777) != RUN_DIR_MODE && chmod(path, RUN_DIR_MODE) < 0)
                return log_error_errno(-errno, "%s is open to others and cannot be made private", path);
        return 0;
}

int run_dir_default_parent(char **ret) {
        const char *xdg = getenv("XDG_RUNTIME_DIR");
        char *parent = NULL;
        int r;

        if (xdg && *xdg) {
                struct stat st;

                if (xdg[0] != '/') {
                        log_error("XDG_RUNTIME_DIR='%s' is not an absolute path: fix or unset it, or give --run-dir",
                                  xdg);
                        return -EINVAL;
                }
                if (stat(xdg, &st) < 0 || !S_ISDIR(st.st_mode)) {
                        log_error("XDG_RUNTIME_DIR='%s' is not a directory: fix or unset it, or give --run-dir", xdg);
                        return -ENOTDIR;
                }
                if (asprintf(&parent, "%s/ringmaster", xdg) < 0)
                        return -ENOMEM;
        } else if (asprintf(&parent, "/tmp/ringmaster-%u", (unsigned) getuid()) < 0)
                return -ENOMEM;

        r = ensure_private_dir(parent);
        if (r < 0) {
                free(parent);
                return r;
        }
        *ret = parent;
        return 0;
}

/* Unlinks every entry of the directory (files, sockets; one level of subdirectories). */
static void remove_contents(int dir_fd) {
        DIR *d;
        int fd;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno == EISDIR) {
                        int sub = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

                        if (sub >= 0) {
                                remove_contents(sub);
                                close(sub);
                        }
                        (void) unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
                }
        }
        closedir(d);
}

static bool dir_is_empty(int dir_fd) {
        bool empty = true;
        DIR *d;
        int fd;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return false;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return false;
        }
        for (struct dirent *de; (de = readdir(d));)
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        empty = false;
                        break;
                }
        closedir(d);
        return empty;
}

/* Opens and locks parent_fd/name; verifies the name still leads to what was locked. */
static int open_locked(int parent_fd, const char *name, int *ret_fd) {
        _cleanup_close_ int fd = -EBADF;
        struct stat a, b;

        fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;
        if (fstat(fd, &a) < 0)
                return -errno;
        if (fstatat(parent_fd, name, &b, AT_SYMLINK_NOFOLLOW) < 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
                return -ESTALE;       /* removed or replaced meanwhile: try again */
        if (a.st_uid != getuid())
                return -EPERM;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int split_path(const char *path, char **ret_parent, char **ret_name) {
        _cleanup_free_ char *copy = strdup(path);
        char *slash, *parent, *name;
        size_t n;

        if (!copy)
                return -ENOMEM;
        n = strlen(copy);
        while (n > 1 && copy[n - 1] == '/')
                copy[--n] = 0;
        slash = strrchr(copy, '/');
        if (!slash || !slash[1] || strcmp(slash + 1, ".") == 0 || strcmp(slash + 1, "..") == 0)
                return -EINVAL;
        name = strdup(slash + 1);
        parent = slash == copy ? strdup("/") : strndup(copy, (size_t) (slash - copy));
        if (!parent || !name) {
                free(parent);
                free(name);
                return -ENOMEM;
        }
        *ret_parent = parent;
        *ret_name = name;
        return 0;
}

int run_dir_open(const char *explicit_path, const char *parent, const char *run_id, struct run_dir **ret) {
        _cleanup_free_ char *parent_path = NULL, *name = NULL;
        _cleanup_close_ int parent_fd = -EBADF;
        _cleanup_free_ struct run_dir *d = NULL;
        int r;

        if (explicit_path) {
                r = split_path(explicit_path, &parent_path, &name);
                if (r < 0)
                        return log_error_errno(r, "--run-dir %s is not usable", explicit_path);
        } else {
                parent_path = strdup(parent);
                name = strdup(run_id);
                if (!parent_path || !name)
                        return -ENOMEM;
        }
        parent_fd = open(parent_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd < 0)
                return log_error_errno(-errno, "cannot open %s (the run directory's parent)", parent_path);

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->fd = -EBADF;
        if (asprintf(&d->path, "%s/%s", strcmp(parent_path, "/") == 0 ? "" : parent_path, name) < 0)
                return -ENOMEM;

        for (int attempt = 0;; attempt++) {
                bool made = mkdirat(parent_fd, name, RUN_DIR_MODE) >= 0;

                if (!made && errno != EEXIST)
                        r = log_error_errno(-errno, "cannot create the run directory %s", d->path);
                else {
                        r = open_locked(parent_fd, name, &d->fd);
                        if (r == -ESTALE && attempt < 5)
                                continue;
                        if (r == -EBUSY)
                                log_error("run id '%s' is in use by a running ringmaster (%s is locked): give "
                                          "another --run-id", run_id, d->path);
                        else if (r == -EPERM)
                                log_error("%s belongs to another user: give another --run-id or --run-dir", d->path);
                        else if (r < 0)
                                log_error_errno(r, "cannot lock the run directory %s", d->path);
                }
                if (r < 0) {
                        free(d->path);
                        return r;
                }
                if (explicit_path) {
                        /* A directory the user named is reused only when empty, and kept at the end. */
                        d->remove_dir = made;
                        if (!made && !dir_is_empty(d->fd)) {
                                log_error("--run-dir %s exists and is not empty: give a new or empty directory",
                                          d->path);
                                safe_close(d->fd);
                                free(d->path);
                                return -ENOTEMPTY;
                        }
                } else {
                        d->remove_dir = true;
                        if (!made)
                                remove_contents(d->fd);  /* a dead run's, with our id */
                }
                break;
        }
        if (fchmod(d->fd, RUN_DIR_MODE) < 0) {
                r = log_error_errno(-errno, "cannot make %s private", d->path);
                safe_close(d->fd);
                free(d->path);
                return r;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

struct run_dir *run_dir_remove(struct run_dir *d) {
        if (!d)
                return NULL;
        if (d->fd >= 0) {
                remove_contents(d->fd);
                if (d->remove_dir && rmdir(d->path) < 0 && errno != ENOENT)
                        log_warning_errno(-errno, "cannot remove the run directory %s", d->path);
                safe_close(d->fd);
        }
        free(d->path);
        free(d);
        return NULL;
}

int run_dir_cleanup_stale(const char *parent) {
        _cleanup_close_ int parent_fd = -EBADF;
        int removed = 0, fd;
        DIR *d;

        parent_fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (parent_fd < 0)
                return -errno;
        fd = openat(parent_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        for (struct dirent *de; (de = readdir(d));) {
                int run_fd;

                if (de->d_name[0] == '.' || !run_id_valid(de->d_name))
                        continue;
                if (open_locked(parent_fd, de->d_name, &run_fd) < 0)
                        continue;         /* alive, or not ours */
                remove_contents(run_fd);
                if (unlinkat(parent_fd, de->d_name, AT_REMOVEDIR) == 0)
                        removed++;
                close(run_fd);
        }
        closedir(d);
        return removed;
}

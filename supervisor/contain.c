/* SPDX-License-Identifier: MIT */
/* Job containment: a cgroup with cgroup.kill, else sessions; a watcher for when ringmaster dies (contain.h). */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#include "contain.h"
#include "util.h"

/* How long the end of a job waits for its cgroup to empty after cgroup.kill. */
#define CGROUP_EMPTY_TIMEOUT_MS 5000
/* The watcher's kill rounds (each kills what the previous one's victims forked). */
#define WATCHER_ROUNDS 20

struct contain {
        enum contain_mode mode;
        char *run_id;
        char *marker;              /* "NAME=value" in every process of the job's environment (watcher mode) */
        char *cgroup;              /* the job's cgroup folder (cgroup mode) */
        int procs_fd;              /* its cgroup.procs, for the ranks' children (O_CLOEXEC) */
        int watcher_fd;            /* the write end of the watcher's pipe */
        const char *fallback;      /* why not cgroup mode (auto) */
        unsigned stale_cgroups;    /* earlier jobs' cgroups swept at setup */
        unsigned stale_processes;  /* what was left in them, killed */
};

/* What ringmaster tells the watcher: 8 bytes, under PIPE_BUF, so each write is whole. */
struct watcher_record {
        char op;                   /* 'R' rank started, 'E' rank ended, 'D' done: the job ended cleanly */
        char pad[3];
        int32_t pid;
};

const char *contain_mode_name(enum contain_mode m) {
        switch (m) {
        case CONTAIN_NONE: return "none";
        case CONTAIN_WATCHER: return "watcher";
        case CONTAIN_CGROUP: return "cgroup";
        case CONTAIN_NAMESPACE: return "namespace";
        case CONTAIN_AUTO: return "auto";
        }
        return "?";
}

/* ------------------------------------------------------------ cgroup discovery */

/* Reads a small file whole (NUL-terminated). */
static int read_small_file(int dirfd, const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        size_t n = 0;

        if (fd < 0)
                return -errno;
        while (n + 1 < size) {
                ssize_t k = read(fd, buf + n, size - 1 - n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        buf[n] = '\0';
        return (int) n;
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s) {
        char *o = s;

        for (; *s; s++)
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
                    s[3] <= '7') {
                        *o++ = (char) ((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 3;
                } else
                        *o++ = *s;
        *o = '\0';
}

/* A process's cgroup v2 path ("0::PATH" in /proc/PID/cgroup; "self" for ours): 0, -ENOMEDIUM (v1 only), -errno. */
static int proc_cgroup(const char *pid, char *buf, size_t size) {
        _cleanup_free_ char *line = NULL;
        char path[64];
        size_t cap = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%s/cgroup", pid);
        buf[0] = '\0';
        f = fopen(path, "re");
        if (!f)
                return -errno;
        while (getline(&line, &cap, f) > 0)
                if (strncmp(line, "0::", 3) == 0) {
                        snprintf(buf, size, "%s", line + 3);
                        buf[strcspn(buf, "\n")] = '\0';
                }
        fclose(f);
        return buf[0] ? 0 : -ENOMEDIUM;
}

/* The folder of ringmaster's own cgroup v2 (the unified hierarchy), and its path in the hierarchy; or a negative errno. */
static int own_cgroup_dir(char **ret, char *ret_rel, size_t rel_size) {
        _cleanup_free_ char *line = NULL;
        char own[PATH_MAX];
        size_t cap = 0;
        FILE *f;
        int r;

        r = proc_cgroup("self", own, sizeof(own));
        if (r < 0)
                return r;
        snprintf(ret_rel, rel_size, "%s", own);

        f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return -errno;
        while (getline(&line, &cap, f) > 0) {
                char root[PATH_MAX], mnt[PATH_MAX], fstype[64];
                const char *sep = strstr(line, " - ");
                size_t rl;

                if (!sep || sscanf(sep + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2") != 0)
                        continue;
                if (sscanf(line, "%*s %*s %*s %4095s %4095s", root, mnt) != 2)
                        continue;
                unescape_octal(root);
                unescape_octal(mnt);
                /* The mount shows the hierarchy from root on: our cgroup must be under it. */
                rl = strcmp(root, "/") == 0 ? 0 : strlen(root);
                if (rl > 0 && (strncmp(own, root, rl) != 0 || (own[rl] != '/' && own[rl] != '\0')))
                        continue;
                fclose(f);
                /* The hierarchy's root cgroup is "/": the mount point itself. */
                if (asprintf(ret, "%s%s", mnt, strcmp(own + rl, "/") == 0 ? "" : own + rl) < 0)
                        return -ENOMEM;
                return 0;
        }
        fclose(f);
        return -ENOMEDIUM;
}

/*
 * Under systemd, a cgroup is ours to subdivide only when delegated
 * (Delegate=yes sets the trusted.delegate or user.delegate xattr; a user's
 * own cgroups under user@.service are owned by the user).
 */
static bool cgroup_delegated_to_us(const char *dir) {
        struct stat st;
        char v[8];
        ssize_t n;

        if (access("/run/systemd/system", F_OK) < 0)
                return true;            /* no systemd manages the tree */
        n = getxattr(dir, "trusted.delegate", v, sizeof(v));
        if (n < 0)
                n = getxattr(dir, "user.delegate", v, sizeof(v));
        if (n == 1 && v[0] == '1')
                return true;
        return geteuid() != 0 && stat(dir, &st) == 0 && st.st_uid == geteuid();
}

/* Whether a child can join the cgroup (the common ancestor's cgroup.procs must be ours to write, too). */
static int probe_join(int procs_fd) {
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -errno;
        if (pid == 0)
                _exit(write(procs_fd, "0", 1) == 1 ? 0 : (errno & 0x7f));
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (!WIFEXITED(status))
                return -EIO;
        return -WEXITSTATUS(status);
}

static int cgroup_kill_and_remove(const char *dir, bool remove);

/*
 * The job cgroups beside ours of earlier runs whose ringmaster AND watcher
 * died (both SIGKILLed, an OOM kill of the session): nothing else would ever
 * end what is left in them.  "ringmaster-RUNID.PID" is stale when PID is no
 * longer a process of this cgroup (a live ringmaster stays in the cgroup it
 * made its job's beside); one that holds processes of another PID namespace
 * (cgroup.procs shows them as 0 where this one cannot see them; a parent
 * namespace sees them under other pids) is left alone: its ringmaster's PID
 * is not ours to look up.  So is an empty one (nothing to end there; it may
 * be a live job's between two attempts, or one that a ringmaster of another
 * PID namespace has just made).  Whatever is left in a stale one is killed, and the
 * cgroup removed.
 */
/*
 * Whether every pid of a cgroup.procs text is a process of our PID namespace:
 * a 0 is one this namespace cannot see; a parent namespace sees a child's
 * under pids of its own, whose ns/pid differs from ours.
 */
static bool procs_in_our_pidns(const char *procs) {
        char ours[64], theirs[64], path[64];
        ssize_t n = readlink("/proc/self/ns/pid", ours, sizeof(ours) - 1);

        if (n <= 0)
                return false;
        ours[n] = '\0';
        for (const char *p = procs; *p;) {
                size_t len = strcspn(p, "\n");

                if (len == 1 && p[0] == '0')
                        return false;
                snprintf(path, sizeof(path), "/proc/%.*s/ns/pid", (int) len, p);
                n = readlink(path, theirs, sizeof(theirs) - 1);
                if (n >= 0) {           /* else gone meanwhile */
                        theirs[n] = '\0';
                        if (strcmp(ours, theirs) != 0)
                                return false;
                }
                p += len + (p[len] == '\n');
        }
        return true;
}

static void cgroup_sweep_stale(struct contain *c, const char *own, const char *own_rel) {
        DIR *d = opendir(own);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                const char *dot = strrchr(de->d_name, '.');
                char cg[PATH_MAX], procs[4096], path[PATH_MAX];
                int k;

                if (de->d_type != DT_DIR || strncmp(de->d_name, "ringmaster-", 11) != 0 || !dot ||
                    !dot[1] || strspn(dot + 1, "0123456789") != strlen(dot + 1) || atoi(dot + 1) == getpid())
                        continue;
                if (proc_cgroup(dot + 1, cg, sizeof(cg)) == 0 && strcmp(cg, own_rel) == 0)
                        continue;       /* its ringmaster is alive */
                snprintf(path, sizeof(path), "%s/cgroup.procs", de->d_name);
                k = read_small_file(dirfd(d), path, procs, sizeof(procs));
                /* Empty: nothing to end, and it may be a live job's between two attempts, or one just made by a
                 * ringmaster of another PID namespace (whose PID means nothing here): never removed. */
                if (k <= 0 || !procs_in_our_pidns(procs))
                        continue;
                snprintf(path, sizeof(path), "%s/%s", own, de->d_name);
                k = cgroup_kill_and_remove(path, true);
                c->stale_cgroups++;
                c->stale_processes += (unsigned) MAX(k, 0);
        }
        closedir(d);
}

static int cgroup_setup(struct contain *c, const char **ret_why) {
        _cleanup_free_ char *own = NULL, *dir = NULL;
        char own_rel[PATH_MAX];
        int r;

        r = own_cgroup_dir(&own, own_rel, sizeof(own_rel));
        if (r < 0) {
                *ret_why = "no cgroup v2 hierarchy (cgroup v1 only)";
                return r;
        }
        if (!cgroup_delegated_to_us(own)) {
                *ret_why = "ringmaster's cgroup is systemd's and not delegated to it (Delegate=yes)";
                return -EPERM;
        }
        cgroup_sweep_stale(c, own, own_rel);
        if (asprintf(&dir, "%s/ringmaster-%s.%d", own, c->run_id, (int) getpid()) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0755) < 0 && (errno != EEXIST || rmdir(dir) < 0 || mkdir(dir, 0755) < 0)) {
                r = -errno;
                *ret_why = r == -EACCES || r == -EPERM || r == -EROFS ?
                        "ringmaster's cgroup is not writable by it (not root, not delegated)" :
                        "cannot create a cgroup";
                return r;
        }
        {
                char kill_path[PATH_MAX];

                snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", dir);
                if (access(kill_path, W_OK) < 0) {
                        (void) rmdir(dir);
                        *ret_why = "the kernel has no cgroup.kill (Linux 5.14 or later has)";
                        return -EOPNOTSUPP;
                }
        }
        c->procs_fd = openat(AT_FDCWD, dir, O_DIRECTORY | O_CLOEXEC);
        if (c->procs_fd >= 0) {
                int dfd = c->procs_fd;

                c->procs_fd = openat(dfd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
                safe_close(dfd);
        }
        r = c->procs_fd < 0 ? -errno : probe_join(c->procs_fd);
        if (r < 0) {
                c->procs_fd = safe_close(c->procs_fd);
                (void) rmdir(dir);
                *ret_why = "a process cannot be moved into a new cgroup (not delegated)";
                return r;
        }
        c->cgroup = TAKE_PTR(dir);
        return 0;
}

/* ------------------------------------------------------------ killing */

/* Waits (cgroup.events' POLLPRI, bounded) until the cgroup is empty; true when it is. */
static bool cgroup_wait_empty(const char *dir, int timeout_ms) {
        _cleanup_close_ int dfd = open(dir, O_DIRECTORY | O_CLOEXEC), efd = -EBADF;
        uint64_t deadline = now_usec() + (uint64_t) timeout_ms * USEC_PER_MSEC;

        if (dfd < 0)
                return true;
        efd = openat(dfd, "cgroup.events", O_RDONLY | O_CLOEXEC);
        for (;;) {
                char buf[256];
                struct pollfd p = { .fd = efd, .events = POLLPRI };
                uint64_t now;
                ssize_t n;

                if (efd < 0)
                        return false;
                /* Reading the fd itself also re-arms its POLLPRI (kernfs notifies a change since the last read). */
                n = pread(efd, buf, sizeof(buf) - 1, 0);
                if (n < 0)
                        return false;
                buf[n] = '\0';
                if (strstr(buf, "populated 0"))
                        return true;
                now = now_usec();
                if (now >= deadline)
                        return false;
                (void) poll(&p, 1, (int) ((deadline - now) / USEC_PER_MSEC) + 1);
        }
}

/* cgroup.kill, then the wait for it to empty, then rmdir; returns how many processes it held. */
static int cgroup_kill_and_remove(const char *dir, bool remove) {
        _cleanup_close_ int dfd = open(dir, O_DIRECTORY | O_CLOEXEC), kfd = -EBADF;
        char procs[4096];
        int n = 0;

        if (dfd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (read_small_file(dfd, "cgroup.procs", procs, sizeof(procs)) > 0)
                for (const char *p = procs; *p; p++)
                        n += *p == '\n';
        kfd = openat(dfd, "cgroup.kill", O_WRONLY | O_CLOEXEC);
        if (kfd >= 0 && n > 0)
                (void) !write(kfd, "1", 1);
        if (remove && cgroup_wait_empty(dir, CGROUP_EMPTY_TIMEOUT_MS))
                (void) rmdir(dir);
        return n;
}

/* Whether /proc/PID/environ holds marker (a whole "NAME=value" entry). */
static bool environ_has(int proc_fd, const char *pid, const char *marker) {
        char path[300], buf[65536];
        size_t ml = strlen(marker), have = 0;
        _cleanup_close_ int fd = -EBADF;

        snprintf(path, sizeof(path), "%s/environ", pid);
        fd = openat(proc_fd, path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        for (;;) {
                ssize_t k = read(fd, buf + have, sizeof(buf) - have);
                size_t start = 0;

                if (k <= 0)
                        return false;
                have += (size_t) k;
                /* Whole entries only; the unterminated tail moves to the front. */
                for (size_t i = 0; i < have; i++)
                        if (buf[i] == '\0') {
                                if (i - start == ml && memcmp(buf + start, marker, ml) == 0)
                                        return true;
                                start = i + 1;
                        }
                if (start == 0 && have == sizeof(buf))
                        start = have;   /* one entry longer than the buffer: not ours */
                memmove(buf, buf + start, have - start);
                have -= start;
        }
}

static bool pid_in(const pid_t *set, size_t n, pid_t pid) {
        for (size_t i = 0; i < n; i++)
                if (set[i] == pid)
                        return true;
        return false;
}

/*
 * The watcher mode's kill: the ranks' process groups, then every process
 * (but zombies) in a rank's session or group or carrying the run's marker,
 * in rounds until a round finds none.
 */
static int kill_sessions_and_marked(const pid_t *sessions, size_t n_sessions, const char *marker) {
        int total = 0;

        for (size_t i = 0; i < n_sessions; i++)
                (void) kill(-sessions[i], SIGKILL);
        for (int round = 0; round < WATCHER_ROUNDS; round++) {
                _cleanup_close_ int proc_fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                int found = 0;
                DIR *d;
                struct dirent *e;

                if (proc_fd < 0)
                        return -errno;
                d = fdopendir(dup(proc_fd));
                if (!d)
                        return -errno;
                while ((e = readdir(d))) {
                        char path[300], stat[1024], *p;
                        pid_t pid, pgrp, sid;
                        char state;

                        if (e->d_name[0] < '1' || e->d_name[0] > '9')
                                continue;
                        pid = (pid_t) atoi(e->d_name);
                        if (pid == getpid())
                                continue;
                        snprintf(path, sizeof(path), "%s/stat", e->d_name);
                        if (read_small_file(proc_fd, path, stat, sizeof(stat)) <= 0)
                                continue;
                        p = strrchr(stat, ')');
                        if (!p || sscanf(p + 2, "%c %*d %d %d", &state, &pgrp, &sid) != 3)
                                continue;
                        if (state == 'Z' || state == 'X')
                                continue;
                        if (pid_in(sessions, n_sessions, sid) || pid_in(sessions, n_sessions, pgrp) ||
                            environ_has(proc_fd, e->d_name, marker)) {
                                if (kill(pid, SIGKILL) == 0)
                                        found++;
                        }
                }
                closedir(d);
                total += found;
                if (found == 0)
                        break;
                /* Let the killed die before the next look (SIGKILL is not instant on a busy host). */
                (void) poll(NULL, 0, 10);
        }
        return total;
}

/* ------------------------------------------------------------ the watcher */

_Noreturn static void watcher_main(int fd, const char *marker, const char *cgroup) {
        static const int ignored[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE,
                                       SIGUSR1, SIGUSR2 };
        struct sigaction ign = { .sa_handler = SIG_IGN };
        _cleanup_free_ pid_t *sessions = NULL;
        size_t n_sessions = 0, cap = 0;
        sigset_t all;
        int null_fd;

        /* Out of the terminal's and ringmaster's process group: a Ctrl-C is ringmaster's to handle. */
        (void) setsid();
        for (size_t i = 0; i < ELEMENTSOF(ignored); i++)
                (void) sigaction(ignored[i], &ign, NULL);
        sigemptyset(&all);
        (void) sigprocmask(SIG_SETMASK, &all, NULL);
        (void) prctl(PR_SET_NAME, "rm-watcher");
        /* Holding no one's pipe open: whoever reads ringmaster's output must see EOF when it ends. */
        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd >= 0) {
                (void) dup2(null_fd, STDIN_FILENO);
                (void) dup2(null_fd, STDOUT_FILENO);
                (void) dup2(null_fd, STDERR_FILENO);
        }
        if (fd != 3) {
                (void) dup3(fd, 3, O_CLOEXEC);
                fd = 3;
        }
#if defined(SYS_close_range)
        if (syscall(SYS_close_range, 4U, ~0U, 0U) < 0)
#endif
                for (int i = 4; i < 4096; i++)
                        (void) close(i);

        for (;;) {
                struct watcher_record rec;
                ssize_t k = read(fd, &rec, sizeof(rec));

                if (k < 0 && errno == EINTR)
                        continue;
                if (k != (ssize_t) sizeof(rec))
                        break;          /* EOF (or a torn record, impossible under PIPE_BUF): ringmaster is gone */
                if (rec.op == 'D')
                        _exit(0);
                if (rec.op == 'R') {
                        if (n_sessions == cap) {
                                pid_t *l = realloc(sessions, (cap = cap ? cap * 2 : 16) * sizeof(*l));

                                if (!l)
                                        continue;
                                sessions = l;
                        }
                        sessions[n_sessions++] = rec.pid;
                } else if (rec.op == 'E')
                        for (size_t i = 0; i < n_sessions; i++)
                                if (sessions[i] == rec.pid) {
                                        sessions[i] = sessions[--n_sessions];
                                        break;
                                }
        }

        /* ringmaster died without ending the job: end it. */
        if (cgroup)
                (void) cgroup_kill_and_remove(cgroup, true);
        else
                (void) kill_sessions_and_marked(sessions, n_sessions, marker);
        _exit(0);
}

/* Double-forks the watcher, so that it is nobody's child here (and never ringmaster's orphan to reap). */
static int watcher_start(struct contain *c) {
        int fds[2], status;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                int r = -errno;

                safe_close(fds[0]);
                safe_close(fds[1]);
                return r;
        }
        if (pid == 0) {
                pid_t w = fork();

                if (w < 0)
                        _exit(1);
                if (w == 0) {
                        safe_close(fds[1]);
                        watcher_main(fds[0], c->marker, c->cgroup);
                }
                _exit(0);
        }
        safe_close(fds[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        safe_close(fds[1]);
                        return -errno;
                }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                safe_close(fds[1]);
                return -EAGAIN;
        }
        /* Never block the event loop on a slow watcher: a record lost costs only the watcher mode's session kill. */
        (void) fcntl(fds[1], F_SETFL, O_NONBLOCK);
        c->watcher_fd = fds[1];
        return 0;
}

static void watcher_send(struct contain *c, char op, pid_t pid) {
        struct watcher_record rec = { .op = op, .pid = (int32_t) pid };

        if (c && c->watcher_fd >= 0)
                (void) !write(c->watcher_fd, &rec, sizeof(rec));
}

/* ------------------------------------------------------------ the API */

int contain_new(const char *run_id, const char *marker, enum contain_mode want, struct contain **ret,
                const char **ret_why) {
        struct contain *c;
        const char *why = NULL;
        int r;

        if (!run_id || !marker || !strchr(marker, '=') || !ret)
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (struct contain) { .mode = CONTAIN_NONE, .procs_fd = -EBADF, .watcher_fd = -EBADF };
        c->run_id = strdup(run_id);
        c->marker = strdup(marker);
        if (!c->run_id || !c->marker) {
                free(c->marker);
                free(c->run_id);
                free(c);
                return -ENOMEM;
        }
        if (want == CONTAIN_NONE) {
                *ret = c;
                return 0;
        }
        if (want == CONTAIN_AUTO || want == CONTAIN_CGROUP) {
                r = cgroup_setup(c, &why);
                if (r < 0 && want == CONTAIN_CGROUP) {
                        if (ret_why)
                                *ret_why = why;
                        contain_free(c);
                        return -EOPNOTSUPP;
                }
                c->fallback = r < 0 ? why : NULL;
        }
        /*
         * As PID 1, ringmaster's death kills its whole PID namespace: no
         * watcher is needed (and it would be re-parented to ringmaster itself).
         */
        if (getpid() == 1) {
                if (want == CONTAIN_WATCHER) {
                        if (ret_why)
                                *ret_why = "ringmaster is PID 1: its PID namespace dies with it (use auto)";
                        contain_free(c);
                        return -EOPNOTSUPP;
                }
                c->mode = c->cgroup ? CONTAIN_CGROUP : CONTAIN_NAMESPACE;
                *ret = c;
                return 0;
        }
        r = watcher_start(c);
        if (r < 0) {
                if (ret_why)
                        *ret_why = "cannot start the watcher process";
                contain_free(c);
                return r;
        }
        c->mode = c->cgroup ? CONTAIN_CGROUP : CONTAIN_WATCHER;
        *ret = c;
        return 0;
}

enum contain_mode contain_get_mode(const struct contain *c) {
        return c ? c->mode : CONTAIN_NONE;
}

const char *contain_cgroup_path(const struct contain *c) {
        return c ? c->cgroup : NULL;
}

const char *contain_fallback_reason(const struct contain *c) {
        return c && (c->mode == CONTAIN_WATCHER || c->mode == CONTAIN_NAMESPACE) ? c->fallback : NULL;
}

unsigned contain_stale_swept(const struct contain *c, unsigned *ret_processes) {
        if (ret_processes)
                *ret_processes = c ? c->stale_processes : 0;
        return c ? c->stale_cgroups : 0;
}

int contain_child_join(const struct contain *c) {
        if (!c || c->procs_fd < 0)
                return 0;
        return write(c->procs_fd, "0", 1) == 1 ? 0 : -errno;
}

void contain_rank_started(struct contain *c, pid_t pid) {
        watcher_send(c, 'R', pid);
}

void contain_rank_ended(struct contain *c, pid_t pid) {
        watcher_send(c, 'E', pid);
}

int contain_kill(struct contain *c) {
        if (!c || !c->cgroup)
                return 0;
        return cgroup_kill_and_remove(c->cgroup, false);
}

struct contain *contain_free(struct contain *c) {
        if (!c)
                return NULL;
        if (c->cgroup) {
                (void) cgroup_kill_and_remove(c->cgroup, true);
                free(c->cgroup);
        }
        safe_close(c->procs_fd);
        watcher_send(c, 'D', 0);
        safe_close(c->watcher_fd);
        free(c->run_id);
        free(c->marker);
        free(c);
        return NULL;
}

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "exit-status.h"
#include "spawn.h"
#include "util.h"

const char *spawn_stage_name(enum spawn_stage s) {
        switch (s) {
        case SPAWN_STAGE_NONE: return "none";
        case SPAWN_STAGE_CGROUP: return "cgroup";
        case SPAWN_STAGE_SETSID: return "setsid";
        case SPAWN_STAGE_PDEATHSIG: return "pdeathsig";
        case SPAWN_STAGE_STDIO: return "stdio";
        case SPAWN_STAGE_SIGNALS: return "signals";
        case SPAWN_STAGE_CLOSE_FDS: return "close-fds";
        case SPAWN_STAGE_EXEC: return "exec";
        }
        return "?";
}

int spawn_exec_failure_status(int error) {
        return error == ENOENT || error == ENOTDIR ? 127 : 126;
}

int spawn_command_candidates(const char *name, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        const char *path = getenv("PATH");

        if (!l)
                return -ENOMEM;
        if (strchr(name, '/')) {
                if (strv_extend(&l, name) < 0)
                        return -ENOMEM;
                *ret = TAKE_PTR(l);
                return 0;
        }
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";   /* glibc's confstr(_CS_PATH) and more */
        for (const char *p = path;;) {
                size_t n = strcspn(p, ":");

                /* An empty element is the current directory, as for execvp. */
                if (strv_extendf(&l, "%.*s%s%s", (int) n, n ? p : ".", "/", name) < 0)
                        return -ENOMEM;
                if (!p[n])
                        break;
                p += n + 1;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

struct exec_failure {
        int stage;
        int error;
};

/* The child: async-signal-safe calls only, and _exit(). */
/* Closes every fd from first on; max_fd bounds the fallback loop. */
static int close_fds_from(int first, int max_fd) {
#if defined(HAVE_CLOSE_RANGE)
        if (close_range((unsigned) first, ~0U, 0) == 0)
                return 0;
#elif defined(SYS_close_range)
        if (syscall(SYS_close_range, (unsigned) first, ~0U, 0U) == 0)
                return 0;
#endif
        /* Kernels before 5.9: one close() per possible fd. */
        for (int fd = first; fd < max_fd; fd++)
                (void) close(fd);
        return 0;
}

/*
 * Puts fds[i] on fd i (0, 1, 2) as libuv does: a source below 3 that a
 * dup2() onto a lower target could overwrite (stdout given as fd 0,
 * stdout and stderr swapped) is first copied above 2; a source already in
 * place only loses its close-on-exec flag (dup2() onto itself would keep it).
 */
static int setup_stdio(int fds[3]) {
        for (int i = 0; i < 3; i++)
                if (fds[i] < 3 && fds[i] != i) {
                        fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
                        if (fds[i] < 0)
                                return -1;
                }
        for (int i = 0; i < 3; i++)
                if (fds[i] == i ? fcntl(i, F_SETFD, 0) < 0 : dup2(fds[i], i) < 0)
                        return -1;
        return 0;
}

_Noreturn static void child_exec(const struct spawn_request *req, pid_t parent, int report_fd, int max_fd) {
        struct exec_failure f = { SPAWN_STAGE_CGROUP, 0 };
        struct sigaction dfl = { .sa_handler = SIG_DFL }, ign = { .sa_handler = SIG_IGN };
        bool saw_eacces = false;
        int status = EXIT_RM_INTERNAL, r;

        /* First: whatever it forks from here on is born in the job's cgroup. */
        r = contain_child_join(req->contain);
        if (r < 0) {
                errno = -r;
                goto fail;
        }

        f.stage = SPAWN_STAGE_SETSID;
        if (req->foreground) {
                /* The terminal's foreground job: a process group of its own in ringmaster's session
                 * (SIGTTOU is ignored here still, so that tcsetpgrp() from the background works). */
                if (setpgid(0, 0) < 0 || tcsetpgrp(req->tty_fd, getpid()) < 0)
                        goto fail;
        } else if (setsid() < 0)
                goto fail;

        f.stage = SPAWN_STAGE_PDEATHSIG;
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
                goto fail;
        /* The supervisor may have died before PDEATHSIG was armed. */
        if (getppid() != parent) {
                errno = ESRCH;
                goto fail;
        }
        /* Best effort: EINVAL without Yama; it survives the exec. */
        if (req->ptracer > 0)
                (void) prctl(PR_SET_PTRACER, (unsigned long) req->ptracer);

        f.stage = SPAWN_STAGE_STDIO;
        /* The report pipe out of stdio's way first (the supervisor's own stdio may have been closed). */
        if (report_fd < 3) {
                int moved = fcntl(report_fd, F_DUPFD_CLOEXEC, 3);

                if (moved < 0)
                        goto fail;
                report_fd = moved;
        }
        if (setup_stdio((int[3]) { req->stdin_fd, req->stdout_fd, req->stderr_fd }) < 0)
                goto fail;

        f.stage = SPAWN_STAGE_SIGNALS;
        /* What ringmaster's parent ignored stays ignored (nohup's SIGHUP); everything else is the default. */
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) sigaction(sig, req->ignored && sigismember(req->ignored, sig) == 1 ? &ign : &dfl,
                                         NULL);   /* fails harmlessly for glibc's reserved ones */
        if (sigprocmask(SIG_SETMASK, req->sigmask, NULL) < 0)
                goto fail;
        /* The supervisor raised its own fd limit; select()-based programs want the usual one. */
        if (req->nofile && setrlimit(RLIMIT_NOFILE, req->nofile) < 0)
                goto fail;

        /* Keep only stdio and the report pipe, moved to fd 3. */
        f.stage = SPAWN_STAGE_CLOSE_FDS;
        if (report_fd != 3) {
                if (dup3(report_fd, 3, O_CLOEXEC) < 0)
                        goto fail;
                report_fd = 3;
        }
        if (close_fds_from(4, max_fd) < 0)
                goto fail;

        f.stage = SPAWN_STAGE_EXEC;
        for (size_t i = 0; req->exec_paths[i]; i++) {
                execve(req->exec_paths[i], req->argv, req->envp);
                if (errno == EACCES)
                        saw_eacces = true;
                else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE && errno != ENODEV &&
                         errno != ETIMEDOUT)
                        break;    /* found, but unusable: do not try further (execvp's rule) */
        }
        if (saw_eacces)
                errno = EACCES;
        status = spawn_exec_failure_status(errno);

fail:
        f.error = errno;
        (void) !write(report_fd, &f, sizeof(f));
        _exit(status);
}

int spawn_process(const struct spawn_request *req, struct spawn_result *ret) {
        _cleanup_close_ int report_r = -EBADF, report_w = -EBADF;
        struct exec_failure f = {};
        int pipefd[2];
        pid_t parent = getpid(), pid;
        struct rlimit rl;
        int max_fd = 65536;
        ssize_t n;

        /* For the fallback loop in the child, which does not call getrlimit(). */
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
                max_fd = (int) MIN(rl.rlim_cur, (rlim_t) (1 << 20));

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        report_r = pipefd[0];
        report_w = pipefd[1];

        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0)
                child_exec(req, parent, report_w, max_fd);
        if (req->foreground) {
                /* As a shell does, from both sides, so that neither order of the two loses. */
                (void) setpgid(pid, pid);
                (void) tcsetpgrp(req->tty_fd, pid);
        }

        report_w = safe_close(report_w);
        /* EOF: the exec succeeded (the CLOEXEC end closed); a record: it failed. */
        do
                n = read(report_r, &f, sizeof(f));
        while (n < 0 && errno == EINTR);

        *ret = (struct spawn_result) { .pid = pid };
        if (n == (ssize_t) sizeof(f)) {
                ret->failed_stage = (enum spawn_stage) f.stage;
                ret->error = f.error > 0 ? f.error : EIO;
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_SPAWN_H
#define RINGMASTER_SPAWN_H

/*
 * fork + exec of one worker.  Between the two the child makes only
 * async-signal-safe calls: its own session and process group (setsid), or,
 * for the terminal's foreground job, its own process group in the caller's
 * session made the terminal's foreground one (setpgid, tcsetpgrp),
 * PR_SET_PDEATHSIG(SIGKILL) and a check that the supervisor did not die
 * before that took effect, default signal dispositions (but those the
 * caller says its own parent ignored, which stay ignored) and the inherited
 * signal mask, the inherited RLIMIT_NOFILE, stdio on the given fds (any of
 * them may be 0, 1 or 2, the same fd twice, or swapped: they are moved
 * out of each other's way first, as libuv does), every other fd closed
 * (close_range, or a loop), then execve over the PATH candidates as execvp
 * would.  An exec
 * failure reaches the parent through a CLOEXEC pipe (which stage, which
 * errno) and the child ends as a shell's would: _exit(127) when the command
 * was not found, _exit(126) when it could not be executed.
 */

#include <signal.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "contain.h"

enum spawn_stage {
        SPAWN_STAGE_NONE = 0,      /* exec succeeded */
        SPAWN_STAGE_CGROUP,        /* joining the job's cgroup (contain.h) */
        SPAWN_STAGE_SETSID,
        SPAWN_STAGE_PDEATHSIG,
        SPAWN_STAGE_STDIO,
        SPAWN_STAGE_SIGNALS,
        SPAWN_STAGE_CLOSE_FDS,
        SPAWN_STAGE_EXEC,
};

const char *spawn_stage_name(enum spawn_stage s);

struct spawn_request {
        char *const *argv;
        char *const *exec_paths;   /* execve candidates (spawn_command_candidates) */
        char *const *envp;
        int stdin_fd, stdout_fd, stderr_fd;
        const sigset_t *sigmask;   /* restored in the child */
        const sigset_t *ignored;   /* SIG_IGN in the child, the rest SIG_DFL; NULL: all SIG_DFL */
        bool foreground;           /* the child becomes the foreground process group of tty_fd (the
                                      caller's controlling terminal), instead of a session of its own */
        int tty_fd;
        const struct rlimit *nofile;  /* RLIMIT_NOFILE restored in the child; NULL: as is */
        pid_t ptracer;             /* > 0: PR_SET_PTRACER, so that it and its descendants may
                                      ptrace the child under Yama's ptrace_scope=1 */
        const struct contain *contain;  /* the child joins the job's cgroup first; NULL: none */
};

struct spawn_result {
        pid_t pid;
        enum spawn_stage failed_stage;
        int error;                 /* errno of the failed stage, else 0 */
};

/*
 * Starts the child and waits until it has exec'd or failed.  Returns 0 with
 * a pid in ret either way (a child whose exec failed is exiting, to be
 * reaped like any other), or a negative errno when no child was created.
 */
int spawn_process(const struct spawn_request *req, struct spawn_result *ret);

/* The paths execvp would try for name, in order, under the current PATH. */
int spawn_command_candidates(const char *name, char ***ret);

/* The child's exit status for a failed exec (127 not found, 126 otherwise). */
int spawn_exec_failure_status(int error);

#endif

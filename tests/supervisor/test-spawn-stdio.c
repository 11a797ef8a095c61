/* SPDX-License-Identifier: MIT */
/*
 * spawn_process() with stdio fds below 3, as a supervisor whose own stdio
 * was closed gets them: stdin on fd 2, stdout on fd 0, stderr on fd 1 (a
 * rotation, so that each dup2() onto 0, 1, 2 would overwrite a source not
 * yet used), and then with every fd already in place (close-on-exec, which
 * must not close it in the child).  The child reads a line and writes it to
 * stdout and a word to stderr; both must arrive where they were sent.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "spawn.h"
#include "util.h"

/* Where the test reports: a copy of its stdout, which it closes. */
#define REPORT_FD 100

static int failures;

#define CHECK(cond, ...)                                                          \
        do {                                                                      \
                if (!(cond)) {                                                    \
                        failures++;                                               \
                        dprintf(REPORT_FD, "FAIL %s:%d: ", __FILE__, __LINE__);   \
                        dprintf(REPORT_FD, __VA_ARGS__);                          \
                        dprintf(REPORT_FD, "\n");                                 \
                }                                                                 \
        } while (0)

static char *const argv[] = { "/bin/sh", "-c", "read x; echo \"in:$x\"; echo err >&2", NULL };
static char *const paths[] = { "/bin/sh", NULL };
static char *const envp[] = { "PATH=/usr/bin:/bin", NULL };

/* A pipe whose read end is rd and write end wr (both CLOEXEC), placed on the given fd numbers. */
static void pipe_at(int rd, int wr) {
        int p[2];

        if (pipe2(p, O_CLOEXEC) < 0)
                _exit(99);
        if (p[0] != rd) {
                if (dup3(p[0], rd, O_CLOEXEC) < 0)
                        _exit(99);
                close(p[0]);
        }
        if (p[1] != wr) {
                if (dup3(p[1], wr, O_CLOEXEC) < 0)
                        _exit(99);
                close(p[1]);
        }
}

static void read_all(int fd, char *buf, size_t size) {
        size_t n = 0;
        ssize_t k;

        while (n + 1 < size && (k = read(fd, buf + n, size - 1 - n)) > 0)
                n += (size_t) k;
        buf[n] = 0;
}

/* Spawns with stdin, stdout, stderr on in_fd, out_fd, err_fd; checks what came through in_w, out_r, err_r. */
static void run(const char *what, int in_fd, int out_fd, int err_fd, int in_w, int out_r, int err_r) {
        sigset_t mask;
        struct spawn_result res;
        char out[256], err[256];
        int status = -1;

        sigemptyset(&mask);
        CHECK(spawn_process(&(struct spawn_request) { .argv = argv, .exec_paths = paths, .envp = envp,
                                                      .stdin_fd = in_fd, .stdout_fd = out_fd,
                                                      .stderr_fd = err_fd, .sigmask = &mask },
                            &res) == 0,
              "%s: spawned", what);
        CHECK(res.failed_stage == SPAWN_STAGE_NONE, "%s: exec'd (failed at %s: %s)", what,
              spawn_stage_name(res.failed_stage), strerror(res.error));
        close(in_fd);
        close(out_fd);
        close(err_fd);
        (void) !write(in_w, "hello\n", 6);
        close(in_w);
        read_all(out_r, out, sizeof(out));
        read_all(err_r, err, sizeof(err));
        close(out_r);
        close(err_r);
        CHECK(waitpid(res.pid, &status, 0) == res.pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "%s: exit status 0 (got %#x)", what, status);
        CHECK(strcmp(out, "in:hello\n") == 0, "%s: stdout: '%s'", what, out);
        CHECK(strcmp(err, "err\n") == 0, "%s: stderr: '%s'", what, err);
}

int main(void) {
        /* A child that died early must fail a check, not kill the test. */
        (void) signal(SIGPIPE, SIG_IGN);
        /* Our own stdio is closed, as a supervisor's may be. */
        if (dup2(STDOUT_FILENO, REPORT_FD) < 0)
                return 99;
        close(STDIN_FILENO);
        close(STDOUT_FILENO);
        close(STDERR_FILENO);

        /* stdin on 2 (its write end on 10), stdout on 0 (read on 11), stderr on 1 (read on 12). */
        pipe_at(2, 10);
        pipe_at(11, 0);
        pipe_at(12, 1);
        run("rotated", 2, 0, 1, 10, 11, 12);

        /* Every one in place, close-on-exec. */
        pipe_at(0, 10);
        pipe_at(11, 1);
        pipe_at(12, 2);
        run("in place", 0, 1, 2, 10, 11, 12);

        dprintf(REPORT_FD, "%s\n", failures ? "failed" : "stdio below 3: ok");
        return failures ? 1 : 0;
}

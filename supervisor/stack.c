/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "capture.h"
#include "spawn.h"
#include "stack.h"
#include "util.h"

#define STACK_OUT_MAX (1u << 20)        /* of the tool's stdout kept */
#define STACK_ERR_MAX (16u << 10)       /* of its stderr */
#define STACK_LINES_MAX 20000
#define STACK_STDERR_LINES 5            /* of its stderr in the errors */

const char *stack_tool_name(enum stack_tool t) {
        switch (t) {
        case STACK_TOOL_AUTO: return "auto";
        case STACK_TOOL_NONE: return "none";
        case STACK_TOOL_EU_STACK: return "eu-stack";
        case STACK_TOOL_GDB: return "gdb";
        }
        return "?";
}

int stack_tool_parse(const char *s, enum stack_tool *ret) {
        static const enum stack_tool all[] = { STACK_TOOL_AUTO, STACK_TOOL_NONE, STACK_TOOL_EU_STACK, STACK_TOOL_GDB };

        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                if (strcmp(s, stack_tool_name(all[i])) == 0) {
                        *ret = all[i];
                        return 0;
                }
        return -EINVAL;
}

static int find_in_path(const char *name, char **ret) {
        const char *path = getenv("PATH");

        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        for (const char *p = path;;) {
                size_t n = strcspn(p, ":");
                _cleanup_free_ char *candidate = NULL;
                struct stat st;

                /* Only absolute folders: the tool must not depend on the current directory. */
                if (n > 0 && p[0] == '/') {
                        if (asprintf(&candidate, "%.*s/%s", (int) n, p, name) < 0)
                                return -ENOMEM;
                        if (stat(candidate, &st) == 0 && S_ISREG(st.st_mode) && access(candidate, X_OK) == 0) {
                                *ret = TAKE_PTR(candidate);
                                return 0;
                        }
                }
                if (!p[n])
                        return -ENOENT;
                p += n + 1;
        }
}

int stack_tool_find(enum stack_tool wanted, enum stack_tool *ret_tool, char **ret_path) {
        static const enum stack_tool order[] = { STACK_TOOL_EU_STACK, STACK_TOOL_GDB };
        char *path = NULL;
        int r;

        if (wanted == STACK_TOOL_NONE)
                return -ENOENT;
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                if (wanted != STACK_TOOL_AUTO && wanted != order[i])
                        continue;
                r = find_in_path(stack_tool_name(order[i]), &path);
                if (r == -ENOENT)
                        continue;
                if (r < 0)
                        return r;
                *ret_tool = order[i];
                *ret_path = path;
                return 0;
        }
        return -ENOENT;
}

int stack_tool_argv(enum stack_tool tool, const char *path, pid_t pid, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        int r = 0;

        if (!l)
                return -ENOMEM;
        switch (tool) {
        case STACK_TOOL_EU_STACK:
                r |= strv_extend(&l, path);
                r |= strv_extend(&l, "-p");
                r |= strv_extendf(&l, "%d", (int) pid);
                break;
        case STACK_TOOL_GDB:
                /* No init files, no questions, no downloads; detaches at the end of the batch. */
                r |= strv_extend(&l, path);
                r |= strv_extend(&l, "-nx");
                r |= strv_extend(&l, "-batch");
                r |= strv_extend(&l, "-iex");
                r |= strv_extend(&l, "set debuginfod enabled off");
                r |= strv_extend(&l, "-ex");
                r |= strv_extend(&l, "set pagination off");
                r |= strv_extend(&l, "-ex");
                r |= strv_extend(&l, "thread apply all bt");
                r |= strv_extend(&l, "-p");
                r |= strv_extendf(&l, "%d", (int) pid);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

int stack_tool_envp(char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        const char *path = getenv("PATH"), *home = getenv("HOME");
        int r = 0;

        if (!l)
                return -ENOMEM;
        r |= strv_extendf(&l, "PATH=%s", path ? path : "/usr/local/bin:/usr/bin:/bin");
        if (home)
                r |= strv_extendf(&l, "HOME=%s", home);
        r |= strv_extend(&l, "LC_ALL=C");
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

/* ------------------------------------------------------------ a run */

struct pipe_reader {
        int fd;
        sd_event_source *source;
        char *buf;
        size_t len, max;
        bool cut;
};

struct stack_run {
        enum stack_tool tool;
        pid_t pid;
        pid_t target;
        int target_pidfd;
        bool resumed;
        bool reaped, completed, abandoned;
        siginfo_t status;
        int exec_stage, exec_error;
        sd_event_source *child_source, *timer;
        struct pipe_reader out, err;
        uint64_t started_usec, timeout_usec;
        bool timed_out;
        stack_run_done_fn done;
        void *userdata;
};

static void reader_close(struct pipe_reader *p) {
        p->source = sd_event_source_disable_unref(p->source);
        p->fd = safe_close(p->fd);
}

/* One read; returns 0 at EOF or on an error (the pipe is closed then), 1 after data, -EAGAIN. */
static int reader_read_once(struct pipe_reader *p) {
        char chunk[65536];
        ssize_t n;

        if (p->fd < 0)
                return 0;
        do
                n = read(p->fd, chunk, sizeof(chunk));
        while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
                return -EAGAIN;
        if (n <= 0) {
                reader_close(p);
                return 0;
        }
        if (p->len + (size_t) n > p->max) {
                p->cut = true;
                n = (ssize_t) (p->max - p->len);
        }
        if (n > 0) {
                char *b = realloc(p->buf, p->len + (size_t) n + 1);

                if (!b) {
                        p->cut = true;
                        return 1;
                }
                p->buf = b;
                memcpy(b + p->len, chunk, (size_t) n);
                p->len += (size_t) n;
                b[p->len] = 0;
        }
        return 1;
}

static void reader_drain(struct pipe_reader *p) {
        while (p->fd >= 0 && reader_read_once(p) != -EAGAIN)
                ;
}

/* Splits text into escaped lines (at most max). */
static int split_lines(const char *text, size_t len, size_t max, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        size_t n = 0;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < len && n < max;) {
                size_t k = i;
                _cleanup_free_ char *e = NULL;
                size_t elen;

                while (k < len && text[k] != '\n')
                        k++;
                elen = k - i;
                if (elen > 0 && text[k - 1] == '\r')
                        elen--;
                e = malloc(4 * elen + 1);
                if (!e)
                        return -ENOMEM;
                elen = capture_escape(text + i, elen, e);
                e[elen] = 0;
                if (strv_extend(&l, e) < 0)
                        return -ENOMEM;
                n++;
                i = k + 1;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

void stack_outcome_done(struct stack_outcome *o) {
        if (!o)
                return;
        o->lines = strv_free(o->lines);
        o->errors = strv_free(o->errors);
}

static bool has_frames(char *const *lines) {
        for (size_t i = 0; lines && lines[i]; i++)
                if (lines[i][0] == '#')
                        return true;
        return false;
}

static int build_outcome(struct stack_run *run, struct stack_outcome *o) {
        const char *name = stack_tool_name(run->tool);
        _cleanup_strv_free_ char **err_lines = NULL;
        char sig[16];
        int r = 0;

        *o = (struct stack_outcome) {
                .duration_usec = now_usec() - run->started_usec,
                .timed_out = run->timed_out,
                .resumed = run->resumed,
        };
        if (split_lines(run->out.buf ? run->out.buf : "", run->out.len, STACK_LINES_MAX, &o->lines) < 0 ||
            split_lines(run->err.buf ? run->err.buf : "", run->err.len, STACK_STDERR_LINES, &err_lines) < 0)
                goto oom;
        o->errors = calloc(1, sizeof(char *));
        if (!o->errors)
                goto oom;

        if (run->exec_stage != SPAWN_STAGE_NONE)
                r |= strv_extendf(&o->errors, "cannot execute %s (%s): %s", name, spawn_stage_name(run->exec_stage),
                                  strerror(run->exec_error));
        else if (run->timed_out)
                r |= strv_extendf(&o->errors, "%s did not finish within %.1f s: killed", name,
                                  secs(run->timeout_usec));
        else if (run->reaped && run->status.si_code == CLD_EXITED && run->status.si_status != 0)
                r |= strv_extendf(&o->errors, "%s exited with status %d", name, run->status.si_status);
        else if (run->reaped && run->status.si_code != CLD_EXITED)
                r |= strv_extendf(&o->errors, "%s was killed by %s", name,
                                  signal_name(run->status.si_status, sig, sizeof(sig)));
        if (run->out.cut)
                r |= strv_extendf(&o->errors, "%s's output was cut at %u bytes", name, STACK_OUT_MAX);
        if (run->resumed)
                r |= strv_extendf(&o->errors, "%s left process %d stopped: it was sent SIGCONT", name,
                                  (int) run->target);
        if (!has_frames(o->lines) && strv_length(o->errors) == 0)
                r |= strv_extendf(&o->errors, "%s printed no stack frame", name);
        /* What the tool said about it ("ptrace: Operation not permitted", ...). */
        if (strv_length(o->errors) > 0 || !has_frames(o->lines))
                for (size_t i = 0; err_lines[i]; i++)
                        if (err_lines[i][0])
                                r |= strv_extendf(&o->errors, "%s%s", startswith(err_lines[i], name) ? "" : "tool: ",
                                                  err_lines[i]);
        if (r < 0)
                goto oom;
        return 0;
oom:
        stack_outcome_done(o);
        return -ENOMEM;
}

static void run_maybe_complete(struct stack_run *run) {
        struct stack_outcome o;

        if (run->completed || !run->reaped || run->out.fd >= 0 || run->err.fd >= 0)
                return;
        run->completed = true;
        run->timer = sd_event_source_disable_unref(run->timer);
        if (run->abandoned || !run->done)
                return;
        if (build_outcome(run, &o) < 0) {
                o = (struct stack_outcome) {};
                o.errors = calloc(2, sizeof(char *));
                if (o.errors)
                        o.errors[0] = strdup("out of memory");
        }
        run->done(run, &o, run->userdata);
}

static int on_tool_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct stack_run *run = userdata;
        struct pipe_reader *p = fd == run->out.fd ? &run->out : &run->err;

        if (reader_read_once(p) == 0)
                run_maybe_complete(run);
        return 0;
}

/*
 * A tracer that dies at a bad moment (killed at its timeout) can leave the
 * SIGSTOP of its PTRACE_ATTACH pending, and the process stopped once
 * detached: send SIGCONT to a target found stopped then.
 */
static void resume_target(struct stack_run *run) {
        _cleanup_free_ char *text = NULL;
        char path[64], *p;

        if (run->target_pidfd < 0)
                return;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) run->target);
        if (read_file_bounded(AT_FDCWD, path, 4096, &text, NULL) < 0 || !(p = strrchr(text, ')')))
                return;
        if (p[1] != ' ' || (p[2] != 'T' && p[2] != 't'))
                return;
#ifdef SYS_pidfd_send_signal
        if (syscall(SYS_pidfd_send_signal, run->target_pidfd, SIGCONT, NULL, 0) == 0)
                run->resumed = true;
#endif
}

static int on_tool_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct stack_run *run = userdata;
        siginfo_t ignored = {};

        run->status = *si;
        /*
         * Reaped here rather than by sd-event after this callback, so that
         * from now on the pid is known not to be ours (stack_run_live_pid).
         */
        (void) waitid(P_PID, run->pid, &ignored, WEXITED | WNOHANG);
        run->reaped = true;
        if (si->si_code != CLD_EXITED || run->timed_out || run->abandoned)  /* it did not finish by itself */
                resume_target(run);
        /* What it wrote last may not have been read yet. */
        reader_drain(&run->out);
        reader_drain(&run->err);
        run_maybe_complete(run);
        return 0;
}

static void run_kill(struct stack_run *run) {
        /* Unreaped, so its process group (it leads it: setsid) cannot have been reused. */
        if (!run->reaped && run->pid > 0)
                (void) killpg(run->pid, SIGKILL);
}

static int on_tool_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        struct stack_run *run = userdata;

        run->timer = sd_event_source_disable_unref(run->timer);
        if (!run->reaped)
                run->timed_out = true;
        run_kill(run);
        /* Keep what came; a process that escaped its group must not hold the run open. */
        reader_drain(&run->out);
        reader_drain(&run->err);
        reader_close(&run->out);
        reader_close(&run->err);
        run_maybe_complete(run);
        return 0;
}

static int reader_open(sd_event *event, struct pipe_reader *p, int fd, size_t max, struct stack_run *run) {
        int r;

        *p = (struct pipe_reader) { .fd = fd, .max = max };
        if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        r = sd_event_add_io(event, &p->source, fd, EPOLLIN, on_tool_readable, run);
        return r < 0 ? r : 0;
}

int stack_run_start(sd_event *event, const struct stack_run_request *req, stack_run_done_fn done, void *userdata,
                    struct stack_run **ret) {
        _cleanup_close_ int out_r = -EBADF, out_w = -EBADF, err_r = -EBADF, err_w = -EBADF;
        _cleanup_strv_free_ char **argv = NULL, **envp = NULL;
        char *exec_paths[2] = { (char *) req->path, NULL };
        struct spawn_result result;
        struct stack_run *run;
        int fds[2], r;

        r = stack_tool_argv(req->tool, req->path, req->target, &argv);
        if (r < 0)
                return r;
        r = stack_tool_envp(&envp);
        if (r < 0)
                return r;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        out_r = fds[0];
        out_w = fds[1];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        err_r = fds[0];
        err_w = fds[1];

        run = calloc(1, sizeof(*run));
        if (!run)
                return -ENOMEM;
        *run = (struct stack_run) {
                .tool = req->tool,
                .target = req->target,
                .target_pidfd = req->target_pidfd >= 0 ? fcntl(req->target_pidfd, F_DUPFD_CLOEXEC, 3) : -EBADF,
                .out.fd = -EBADF,
                .err.fd = -EBADF,
                .timeout_usec = req->timeout_usec,
                .done = done,
                .userdata = userdata,
                .started_usec = now_usec(),
        };

        r = spawn_process(&(struct spawn_request) {
                                  .argv = argv,
                                  .exec_paths = exec_paths,
                                  .envp = envp,
                                  .stdin_fd = req->dev_null_fd,
                                  .stdout_fd = out_w,
                                  .stderr_fd = err_w,
                                  .sigmask = req->sigmask,
                                  .nofile = req->nofile,
                          },
                          &result);
        if (r < 0) {
                safe_close(run->target_pidfd);
                free(run);
                return r;
        }
        run->pid = result.pid;
        run->exec_stage = result.failed_stage;
        run->exec_error = result.error;
        out_w = safe_close(out_w);
        err_w = safe_close(err_w);

        r = sd_event_add_child(event, &run->child_source, run->pid, WEXITED, on_tool_exit, run);
        if (r < 0) {
                /* Cannot happen with a fresh child of ours; never leave one unwatched and alive. */
                (void) kill(run->pid, SIGKILL);
                (void) waitpid(run->pid, NULL, 0);
                safe_close(run->target_pidfd);
                free(run);
                return r;
        }
        if ((r = reader_open(event, &run->out, TAKE_FD(out_r), STACK_OUT_MAX, run)) < 0 ||
            (r = reader_open(event, &run->err, TAKE_FD(err_r), STACK_ERR_MAX, run)) < 0 ||
            (r = sd_event_add_time_relative(event, &run->timer, CLOCK_MONOTONIC, req->timeout_usec, USEC_PER_MSEC,
                                            on_tool_timeout, run)) < 0) {
                /* The child source reaps it; the run lives on, abandoned, until then. */
                stack_run_abandon(run);
                *ret = run;
                return r;
        }
        *ret = run;
        return 0;
}

pid_t stack_run_live_pid(const struct stack_run *run) {
        return run && !run->reaped ? run->pid : 0;
}

pid_t stack_run_pid(const struct stack_run *run) {
        return run->pid;
}

bool stack_run_finished(const struct stack_run *run) {
        return run->reaped && (run->completed || run->abandoned);
}

void stack_run_abandon(struct stack_run *run) {
        if (!run)
                return;
        run->abandoned = true;
        run->done = NULL;
        run_kill(run);
        reader_close(&run->out);
        reader_close(&run->err);
        run->timer = sd_event_source_disable_unref(run->timer);
}

struct stack_run *stack_run_free(struct stack_run *run) {
        if (!run)
                return NULL;
        run_kill(run);
        reader_close(&run->out);
        reader_close(&run->err);
        free(run->out.buf);
        free(run->err.buf);
        run->timer = sd_event_source_disable_unref(run->timer);
        run->child_source = sd_event_source_disable_unref(run->child_source);
        safe_close(run->target_pidfd);
        free(run);
        return NULL;
}

/* ------------------------------------------------------------ collapsing threads */

static bool is_header(const char *line, enum stack_format format) {
        switch (format) {
        case STACK_FORMAT_EU_STACK:
                return startswith(line, "TID ");
        case STACK_FORMAT_GDB:
                return startswith(line, "Thread ");
        case STACK_FORMAT_PYTHON:
                return startswith(line, "Thread 0x") || startswith(line, "Current thread 0x") ||
                       startswith(line, "Stack (most recent call first)");
        }
        return false;
}

static bool is_frame(const char *line, enum stack_format format) {
        if (format == STACK_FORMAT_PYTHON)
                return startswith(line, "  ");
        return line[0] == '#';
}

/* A frame without what differs between threads stuck in the same place: addresses, arguments. */
static char *frame_key(const char *line, enum stack_format format) {
        char *k = malloc(strlen(line) + 1), *o = k;

        if (!k)
                return NULL;
        for (const char *p = line; *p;) {
                if (p[0] == '0' && p[1] == 'x') {
                        p += 2;
                        while (strchr("0123456789abcdefABCDEF", *p) && *p)
                                p++;
                        continue;
                }
                /* gdb's "func (a=1, b=0x2)": arguments follow a space; C++ signatures do not. */
                if (format == STACK_FORMAT_GDB && p[0] == '(' && p > line && p[-1] == ' ') {
                        int depth = 0;

                        for (; *p; p++) {
                                depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
                                if (depth == 0) {
                                        p++;
                                        break;
                                }
                        }
                        continue;
                }
                *o++ = *p++;
        }
        *o = 0;
        return k;
}

struct thread_block {
        size_t header;                  /* index of its header line */
        size_t first_frame, n_frames;   /* its frames: indices into frames[] */
        size_t same_as;                 /* the first block with the same frames, or itself */
        size_t n_same;                  /* blocks merged into this one */
};

bool stack_same(char *const *a, char *const *b, enum stack_format format) {
        size_t i = 0, j = 0;

        /* Walk both, frame by frame; headers only have to fall in the same places. */
        for (;;) {
                _cleanup_free_ char *ka = NULL, *kb = NULL;

                while (a[i] && !is_header(a[i], format) && !is_frame(a[i], format))
                        i++;
                while (b[j] && !is_header(b[j], format) && !is_frame(b[j], format))
                        j++;
                if (!a[i] || !b[j])
                        return !a[i] && !b[j];
                if (is_header(a[i], format) != is_header(b[j], format))
                        return false;
                if (!is_header(a[i], format)) {
                        ka = frame_key(a[i], format);
                        kb = frame_key(b[j], format);
                        if (!ka || !kb || strcmp(ka, kb) != 0)
                                return false;
                }
                i++;
                j++;
        }
}

int stack_collapse(char *const *lines, enum stack_format format, char ***ret) {
        _cleanup_strv_free_ char **out = calloc(1, sizeof(char *)), **keys = NULL;
        _cleanup_free_ struct thread_block *blocks = NULL;
        _cleanup_free_ size_t *frames = NULL;
        size_t n_lines = strv_length(lines), n_blocks = 0, n_frames = 0;
        int r = 0;

        if (!out)
                return -ENOMEM;
        blocks = calloc(n_lines + 1, sizeof(*blocks));
        frames = calloc(n_lines + 1, sizeof(*frames));
        keys = calloc(n_lines + 1, sizeof(char *));
        if (!blocks || !frames || !keys)
                return -ENOMEM;

        for (size_t i = 0; i < n_lines; i++) {
                if (is_header(lines[i], format)) {
                        blocks[n_blocks] = (struct thread_block) { .header = i, .first_frame = n_frames,
                                                                   .same_as = n_blocks, .n_same = 1 };
                        n_blocks++;
                } else if (n_blocks > 0 && is_frame(lines[i], format)) {
                        keys[n_frames] = frame_key(lines[i], format);
                        if (!keys[n_frames])
                                return -ENOMEM;
                        frames[n_frames++] = i;
                        blocks[n_blocks - 1].n_frames++;
                }
        }
        if (n_blocks == 0) {
                char **copy = strv_copy(lines);

                if (!copy)
                        return -ENOMEM;
                *ret = copy;
                return 0;
        }

        for (size_t b = 1; b < n_blocks; b++)
                for (size_t a = 0; a < b; a++) {
                        bool same = blocks[a].same_as == a && blocks[a].n_frames == blocks[b].n_frames;

                        for (size_t f = 0; same && f < blocks[a].n_frames; f++)
                                same = strcmp(keys[blocks[a].first_frame + f], keys[blocks[b].first_frame + f]) == 0;
                        if (same) {
                                blocks[b].same_as = a;
                                blocks[a].n_same++;
                                break;
                        }
                }

        for (size_t b = 0; b < n_blocks; b++) {
                const struct thread_block *t = &blocks[b];

                if (t->same_as != b)
                        continue;
                r |= strv_extend(&out, lines[t->header]);
                if (t->n_same > 1)
                        r |= strv_extendf(&out, "  (and %zu more thread%s with the same stack)", t->n_same - 1,
                                          t->n_same == 2 ? "" : "s");
                for (size_t f = 0; f < t->n_frames; f++)
                        r |= strv_extend(&out, lines[frames[t->first_frame + f]]);
        }
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}

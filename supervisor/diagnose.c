/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "diagnose.h"
#include "environ.h"
#include "log.h"
#include "options.h"
#include "phase.h"
#include "proctree.h"
#include "python-hooks.h"
#include "report.h"
#include "run-model.h"
#include "rundir.h"
#include "stack.h"
#include "util.h"

/* How long a Python rank has to start printing its traceback after SIGUSR1. */
#define PYTHON_TRACEBACK_WAIT_USEC (1 * USEC_PER_SEC)
/* Once it started: the traceback is complete when no line of it came for this long. */
#define PYTHON_TRACEBACK_QUIET_USEC (200 * USEC_PER_MSEC)
#define PYTHON_TRACEBACK_LINES_MAX 5000
#define SNAPSHOT_PROCESSES_MAX 64
#define SNAPSHOT_THREADS_MAX 1024
#define NCCL_TAIL_READ_BYTES (64u << 10)
#define NCCL_TAIL_FILES_MAX 8
#define QUEUE_MAX 8

struct diagnose_request {
        int *ranks;
        size_t n;
        char *reason;
        diagnose_done_fn done;
        void *userdata;
};

enum target_step {
        STEP_PYTHON,
        STEP_STACK,
        STEP_DONE,
};

struct diagnose_session;

/* One rank being diagnosed. */
struct diagnose_target {
        struct diagnose_session *session;
        int rank;                        /* the rank, or the worker's rank */
        int worker;                      /* a spawned worker's id (workers.h), or -1: the rank itself */
        struct diagnosis *d;
        unsigned long long principal_start_time;
        int pidfd;                       /* of the principal, or -EBADF */
        enum target_step step;
        sd_event_source *python_timer;
        bool python_started;             /* the traceback's first line came */
        bool python_watching;
        struct stack_run *stack;
};

struct diagnose_session {
        struct diagnoser *owner;
        struct diagnose_request req;
        int restart_count;
        uint64_t started_usec;
        struct diagnose_target *targets;
        size_t n_targets;
        sd_event_source *timer;          /* --diagnose-timeout */
        sd_event_source *finish;         /* ends the session from the loop */
        enum stack_tool tool;            /* found on PATH, or NONE */
        char *tool_path;
        char *tool_missing;              /* why none, when one was asked for */
};

struct adopted_process {
        pid_t pid;
        sd_event_source *source;
        bool reaped;
};

struct diagnoser {
        sd_event *event;
        struct run_model *run;
        struct diagnoser_setup setup;
        sd_event_source *sigusr2_source;
        bool sigusr2_busy;               /* a diagnosis on --diagnose-signal is queued or running */
        const char *signal_name;         /* --diagnose-signal's */
        char signal_name_buf[16];
        struct stack_run **runs;         /* every stack tool started and not yet freed */
        size_t n_runs;
        struct adopted_process **adopted; /* a tool's children, re-parented to us when it was killed */
        size_t n_adopted;
        struct diagnose_session *session;
        struct diagnose_request queue[QUEUE_MAX];
        size_t n_queue;

        bool command_is_python;
        char *pythonpath;                /* the workers'; NULL: as inherited */
        bool python_faulthandler;
        char **nccl_debug_files;         /* per rank; NULL: NCCL_DEBUG_FILE as inherited */
        char *nccl_debug_dir;
};

static int session_start(struct diagnoser *o, struct diagnose_request *req);
static void target_advance(struct diagnose_target *t);
static void adopted_collect(struct diagnoser *o);

/* ------------------------------------------------------------ small things */

static int strv_append(char ***l, const char *s) {
        if (!*l) {
                *l = calloc(1, sizeof(char *));
                if (!*l)
                        return -ENOMEM;
        }
        return strv_extend(l, s);
}

static void diag_error(struct diagnosis *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void diag_error(struct diagnosis *d, const char *fmt, ...) {
        _cleanup_free_ char *s = NULL;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n >= 0)
                (void) strv_append(&d->errors, s);
}

static const char *base_name(const char *path) {
        const char *s = strrchr(path, '/');

        return s ? s + 1 : path;
}

static int pidfd_open_checked(pid_t pid, unsigned long long start_time) {
#ifdef SYS_pidfd_open
        unsigned long long t;
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);

        if (fd < 0)
                return -errno;
        /* The pid still names the process of the snapshot (not a newer one with a reused pid). */
        if (proc_read_start_time(pid, &t) < 0 || t != start_time) {
                close(fd);
                return -ESRCH;
        }
        return fd;
#else
        return -ENOSYS;
#endif
}

static int pidfd_signal(int pidfd, int sig) {
#ifdef SYS_pidfd_send_signal
        if (pidfd < 0)
                return -EBADF;
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
                return -errno;
        return 0;
#else
        return -ENOSYS;
#endif
}

static char read_state(pid_t pid) {
        struct process_snapshot *l = NULL;
        size_t n = 0;
        char state;

        if (proc_snapshot_tree(pid, 1, 0, &l, &n) < 0)
                return '?';
        state = l[0].state;
        process_snapshots_free(l, n);
        return state;
}

static struct rank *target_rank(const struct diagnose_target *t) {
        return &t->session->owner->run->ranks[t->rank];
}

static struct worker *target_worker(const struct diagnose_target *t) {
        const struct run_model *run = t->session->owner->run;

        if (t->worker < 0 || run->restart_count != t->session->restart_count ||
            (size_t) t->worker >= run->workers.n_workers)
                return NULL;
        return run->workers.workers[t->worker];
}

/* The rank (or the worker) is alive (not reaped) and of the attempt the diagnosis began in. */
static bool target_rank_alive(const struct diagnose_target *t) {
        const struct run_model *run = t->session->owner->run;

        if (t->worker >= 0) {
                const struct worker *w = target_worker(t);

                return w && w->state == WORKER_RUNNING && w->pid == t->d->pid;
        }
        return run->restart_count == t->session->restart_count && rank_state_is_alive(target_rank(t)->state) &&
               target_rank(t)->pid == t->d->pid;
}

/* Where the target's faulthandler output comes: a worker's own stderr, else its rank's; NULL: none. */
static struct stream *target_stderr(const struct diagnose_target *t) {
        struct rank *r = target_rank(t);

        if (t->worker >= 0) {
                const struct worker *w = target_worker(t);

                if (w && w->streams)
                        return &w->streams[STREAM_STDERR];
        }
        return r->streams_set_up ? &r->streams[STREAM_STDERR] : NULL;
}

struct diagnosis *diagnosis_free(struct diagnosis *d) {
        if (!d)
                return NULL;
        free(d->reason);
        free(d->phase);
        free(d->position);
        process_snapshots_free(d->processes, d->n_processes);
        strv_free(d->python_traceback);
        strv_free(d->native_stack);
        strv_free(d->nccl_log_files);
        strv_free(d->nccl_log_tail);
        strv_free(d->errors);
        free(d);
        return NULL;
}

/* ------------------------------------------------------------ /proc */

static bool is_wrapper_name(const char *name) {
        static const char *const wrappers[] = {
                "sh", "bash", "dash", "zsh", "ksh", "timeout", "stdbuf", "nice", "ionice", "chrt", "taskset",
                "numactl", "nohup", "setsid", "tini", "dumb-init", "time", "runuser", "su", "sudo", "setpriv",
        };

        for (size_t i = 0; i < ELEMENTSOF(wrappers); i++)
                if (strcmp(name, wrappers[i]) == 0)
                        return true;
        return false;
}

/*
 * The process that does the rank's work: the rank's, unless that is a
 * wrapper (sh -c, timeout, numactl, ...) with one child, then that child
 * (again).
 */
static size_t principal_index(const struct diagnosis *d) {
        size_t p = 0;

        for (int depth = 0; depth < 8; depth++) {
                const struct process_snapshot *s = &d->processes[p];
                const char *name = s->exe[0] ? base_name(s->exe) : s->comm;
                size_t child = 0, n_children = 0;

                if (!is_wrapper_name(name))
                        break;
                for (size_t i = 1; i < d->n_processes; i++)
                        if (d->processes[i].ppid == s->pid) {
                                child = i;
                                n_children++;
                        }
                if (n_children != 1)
                        break;
                p = child;
        }
        return p;
}

/* An embedded interpreter: libpython mapped, in a program of another name. */
static bool maps_libpython(pid_t pid) {
        _cleanup_free_ char *text = NULL;
        char path[64];

        snprintf(path, sizeof(path), "/proc/%d/maps", (int) pid);
        if (read_file_bounded(AT_FDCWD, path, 64u << 20, &text, NULL) < 0)
                return false;
        return strstr(text, "/libpython3") || strstr(text, "/libpython2");
}

/*
 * A Python interpreter by name (python3, python3.11, ...), or a program
 * that handles SIGUSR1 and has libpython mapped (the hook's faulthandler
 * in an embedded interpreter).
 */
static bool process_is_python(const struct process_snapshot *s) {
        return (s->exe[0] && is_python_name(base_name(s->exe))) || is_python_name(s->comm) ||
               (s->catches_sigusr1 && maps_libpython(s->pid));
}

/* ------------------------------------------------------------ NCCL logs */

/* The last max_lines lines of a file (of its last NCCL_TAIL_READ_BYTES), escaped. */
static int file_tail(const char *path, size_t max_lines, char ***l) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        off_t from;
        ssize_t n;
        size_t len, start, count = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        from = st.st_size > (off_t) NCCL_TAIL_READ_BYTES ? st.st_size - (off_t) NCCL_TAIL_READ_BYTES : 0;
        buf = malloc(NCCL_TAIL_READ_BYTES + 1);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, NCCL_TAIL_READ_BYTES, from);
        if (n < 0)
                return -errno;
        len = (size_t) n;
        while (len > 0 && buf[len - 1] == '\n')
                len--;
        start = len;
        while (start > 0 && count < max_lines) {
                start--;
                if (buf[start] == '\n')
                        count++;
        }
        if (buf[start] == '\n')
                start++;
        else if (start == 0 && from > 0 && count < max_lines) {
                /* A line cut by the read window: skip it. */
                start = strcspn(buf, "\n");
                if (start < len)
                        start++;
        }
        for (size_t i = start; i < len;) {
                size_t k = i;
                _cleanup_free_ char *e = NULL;
                size_t elen;

                while (k < len && buf[k] != '\n')
                        k++;
                e = malloc(4 * (k - i) + 1);
                if (!e)
                        return -ENOMEM;
                elen = capture_escape(buf + i, k - i, e);
                e[elen] = 0;
                if (strv_append(l, e) < 0)
                        return -ENOMEM;
                i = k + 1;
        }
        return 0;
}

static bool pid_in_snapshot(const struct diagnosis *d, pid_t pid) {
        for (size_t i = 0; i < d->n_processes; i++)
                if (d->processes[i].pid == pid)
                        return true;
        return false;
}

static bool strv_contains(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (strcmp(l[i], s) == 0)
                        return true;
        return false;
}

/* Our own files: DIR/nccl-rank-N.PID.log, for the rank's processes. */
static void nccl_files_ours(const struct diagnoser *o, int rank, struct diagnosis *d) {
        char prefix[64];
        DIR *dir;

        snprintf(prefix, sizeof(prefix), "nccl-rank-%d.", rank);
        dir = opendir(o->nccl_debug_dir);
        if (!dir)
                return;
        for (struct dirent *de; (de = readdir(dir)) && strv_length(d->nccl_log_files) < NCCL_TAIL_FILES_MAX;) {
                _cleanup_free_ char *path = NULL;
                char *end;
                long pid;

                if (!startswith(de->d_name, prefix))
                        continue;
                pid = strtol(de->d_name + strlen(prefix), &end, 10);
                if (strcmp(end, ".log") != 0 || pid <= 0 || !pid_in_snapshot(d, (pid_t) pid))
                        continue;
                if (asprintf(&path, "%s/%s", o->nccl_debug_dir, de->d_name) < 0)
                        break;
                (void) strv_append(&d->nccl_log_files, path);
        }
        closedir(dir);
}

/* The user's NCCL_DEBUG_FILE, expanded as NCCL does (%h host up to its first dot, %p pid) for each process. */
static void nccl_files_users(const char *pattern, struct diagnosis *d) {
        char host[256] = "";

        (void) gethostname(host, sizeof(host) - 1);
        host[strcspn(host, ".")] = 0;
        for (size_t i = 0; i < d->n_processes && strv_length(d->nccl_log_files) < NCCL_TAIL_FILES_MAX; i++) {
                char name[4096], *o = name, *end = name + sizeof(name) - 1, path[8300];
                struct stat st;

                for (const char *p = pattern; *p && o < end; p++) {
                        if (p[0] == '%' && p[1] == 'h') {
                                o += snprintf(o, (size_t) (end - o), "%s", host);
                                p++;
                        } else if (p[0] == '%' && p[1] == 'p') {
                                o += snprintf(o, (size_t) (end - o), "%d", (int) d->processes[i].pid);
                                p++;
                        } else
                                *o++ = *p;
                        if (o > end)
                                o = end;
                }
                *o = 0;
                /* A relative name is relative to the process's working directory. */
                if (name[0] == '/')
                        snprintf(path, sizeof(path), "%s", name);
                else {
                        char link[64], cwd[4096];
                        ssize_t n;

                        snprintf(link, sizeof(link), "/proc/%d/cwd", (int) d->processes[i].pid);
                        n = readlink(link, cwd, sizeof(cwd) - 1);
                        if (n > 0) {
                                cwd[n] = 0;
                                snprintf(path, sizeof(path), "%s/%s", cwd, name);
                        } else
                                snprintf(path, sizeof(path), "%s/%s", link, name);
                }
                if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && !strv_contains(d->nccl_log_files, path))
                        (void) strv_append(&d->nccl_log_files, path);
        }
}

static void nccl_tail(const struct diagnoser *o, int rank, struct diagnosis *d) {
        const char *user_file = getenv("NCCL_DEBUG_FILE");
        size_t max_lines = o->run->options->tail_lines ? o->run->options->tail_lines : DEFAULT_TAIL_LINES;
        size_t n_files;

        if (o->nccl_debug_files)
                nccl_files_ours(o, rank, d);
        else if (user_file && user_file[0])
                nccl_files_users(user_file, d);
        n_files = strv_length(d->nccl_log_files);
        for (size_t i = 0; i < n_files; i++) {
                int r;

                if (n_files > 1) {
                        _cleanup_free_ char *header = NULL;

                        if (asprintf(&header, "==> %s <==", d->nccl_log_files[i]) >= 0)
                                (void) strv_append(&d->nccl_log_tail, header);
                }
                r = file_tail(d->nccl_log_files[i], max_lines, &d->nccl_log_tail);
                if (r < 0)
                        diag_error(d, "cannot read the NCCL log %s: %s", d->nccl_log_files[i], strerror(-r));
        }
}

/* ------------------------------------------------------------ the Python step */

static bool is_traceback_header(const char *line) {
        return startswith(line, "Thread 0x") || startswith(line, "Current thread 0x") ||
               startswith(line, "Stack (most recent call first)");
}

static void python_stop_watching(struct diagnose_target *t) {
        struct stream *s = target_stderr(t);

        t->python_timer = sd_event_source_disable_unref(t->python_timer);
        if (t->python_watching && s && s->line_watcher_data == t) {
                s->line_watcher = NULL;
                s->line_watcher_data = NULL;
        }
        t->python_watching = false;
}

static int python_arm(struct diagnose_target *t, uint64_t usec);

/* A line of the rank's stderr while its traceback is awaited (capture.c's line watcher). */
static void on_python_stderr_line(void *userdata, const char *line, size_t len) {
        struct diagnose_target *t = userdata;
        _cleanup_free_ char *s = strndup(line, len);

        if (!s)
                return;
        if (is_traceback_header(s))
                t->python_started = true;
        else if (!t->python_started || !(s[0] == 0 || startswith(s, "  ")))
                return;         /* the program's own output meanwhile */
        if (strv_length(t->d->python_traceback) < PYTHON_TRACEBACK_LINES_MAX)
                (void) strv_append(&t->d->python_traceback, s);
        /* Wait for the rest: complete once quiet. */
        (void) python_arm(t, PYTHON_TRACEBACK_QUIET_USEC);
}

static int on_python_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct diagnose_target *t = userdata;
        struct diagnosis *d = t->d;
        char **l = d->python_traceback;
        size_t n = strv_length(l);

        t->python_timer = sd_event_source_disable_unref(t->python_timer);
        python_stop_watching(t);
        /* faulthandler separates threads with blank lines: none at the end. */
        while (n > 0 && l[n - 1][0] == 0) {
                free(l[--n]);
                l[n] = NULL;
        }
        if (!t->python_started)
                diag_error(d, "no Python traceback on stderr within %.1f s of SIGUSR1 to process %d (state %c)",
                           secs(PYTHON_TRACEBACK_WAIT_USEC), (int) d->principal_pid, read_state(d->principal_pid));
        t->step = STEP_STACK;
        target_advance(t);
        return 0;
}

static int python_arm(struct diagnose_target *t, uint64_t usec) {
        sd_event *event = t->session->owner->event;
        int r;

        if (t->python_timer) {
                r = sd_event_source_set_time_relative(t->python_timer, usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(t->python_timer, SD_EVENT_ONESHOT);
                return r;
        }
        return sd_event_add_time_relative(event, &t->python_timer, CLOCK_MONOTONIC, usec, USEC_PER_MSEC,
                                          on_python_timer, t);
}

/* Returns true when the step waits (a timer or the traceback will advance it). */
static bool python_begin(struct diagnose_target *t) {
        struct diagnosis *d = t->d;
        const struct process_snapshot *p = NULL;
        struct stream *err = target_stderr(t);
        int k;

        for (size_t i = 0; i < d->n_processes; i++)
                if (d->processes[i].pid == d->principal_pid)
                        p = &d->processes[i];
        if (!p || !d->python)
                return false;
        if (!p->catches_sigusr1) {
                diag_error(d, "Python process %d does not handle SIGUSR1, so no traceback was asked for (is "
                           "ringmaster's hook loaded? --python-hooks=off, python -I, -E or -S, or the program "
                           "installed its own SIGUSR1 handler)", (int) p->pid);
                return false;
        }
        if (!target_rank_alive(t) || !err || err->fd < 0) {
                diag_error(d, "no Python traceback: the %s %s", t->worker >= 0 ? "worker" : "rank",
                           err && err->fd < 0 ? "closed its stderr" : "ended");
                return false;
        }
        if (err->line_watcher) {
                /* Workers that write into their rank's stderr: one traceback at a time there. */
                diag_error(d, "no Python traceback: the stderr it writes to is watched by another diagnosis");
                return false;
        }
        if (python_arm(t, PYTHON_TRACEBACK_WAIT_USEC) < 0) {
                diag_error(d, "no Python traceback: cannot arm a timer");
                return false;
        }
        err->line_watcher = on_python_stderr_line;
        err->line_watcher_data = t;
        t->python_watching = true;
        k = pidfd_signal(t->pidfd, SIGUSR1);
        if (k < 0 && t->worker < 0 && d->principal_pid == d->pid && target_rank_alive(t))
                /* The rank's own process: unreaped, its pid cannot have been reused. */
                k = kill(d->pid, SIGUSR1) < 0 ? -errno : 0;
        if (k < 0) {
                python_stop_watching(t);
                diag_error(d, "cannot send SIGUSR1 to Python process %d: %s", (int) d->principal_pid, strerror(-k));
                return false;
        }
        d->python_signalled = true;
        return true;
}

/* ------------------------------------------------------------ the native stack step */

static void on_stack_done(struct stack_run *run, struct stack_outcome *outcome, void *userdata) {
        struct diagnose_target *t = userdata;
        struct diagnosis *d = t->d;

        t->stack = NULL;
        d->native_stack = TAKE_PTR(outcome->lines);
        d->stack_usec = outcome->duration_usec;
        for (size_t i = 0; outcome->errors && outcome->errors[i]; i++)
                (void) strv_append(&d->errors, outcome->errors[i]);
        stack_outcome_done(outcome);
        t->step = STEP_DONE;
        target_advance(t);
}

static uint64_t session_left_usec(const struct diagnose_session *s) {
        uint64_t limit = s->owner->run->options->diagnose_timeout_usec, spent = now_usec() - s->started_usec;

        return spent < limit ? limit - spent : 0;
}

static bool stack_begin(struct diagnose_target *t) {
        struct diagnose_session *s = t->session;
        struct diagnoser *o = s->owner;
        struct diagnosis *d = t->d;
        struct stack_run *run = NULL, **l;
        uint64_t timeout = MIN(o->run->options->stack_timeout_usec, session_left_usec(s));
        char state;
        int r;

        if (s->tool == STACK_TOOL_NONE) {
                if (s->tool_missing)
                        diag_error(d, "no native stack: %s", s->tool_missing);
                return false;
        }
        if (timeout == 0) {
                diag_error(d, "no native stack: no time left (--diagnose-timeout)");
                return false;
        }
        if (!target_rank_alive(t)) {
                diag_error(d, "no native stack: the rank ended");
                return false;
        }
        state = read_state(d->principal_pid);
        if (state == 'D') {
                /* ptrace would wait for it to leave the kernel, and a stop could be left pending. */
                diag_error(d, "no native stack: process %d is in uninterruptible sleep (D)", (int) d->principal_pid);
                return false;
        }
        l = realloc(s->owner->runs, (s->owner->n_runs + 1) * sizeof(*l));
        if (!l) {
                diag_error(d, "no native stack: out of memory");
                return false;
        }
        s->owner->runs = l;
        r = stack_run_start(o->event,
                            &(struct stack_run_request) {
                                    .tool = s->tool,
                                    .path = s->tool_path,
                                    .target = d->principal_pid,
                                    .target_pidfd = t->pidfd,
                                    .timeout_usec = timeout,
                                    .dev_null_fd = o->setup.dev_null_fd,
                                    .sigmask = o->setup.sigmask,
                                    .nofile = o->setup.nofile,
                            },
                            on_stack_done, t, &run);
        if (r < 0 && !run) {
                diag_error(d, "cannot start %s: %s", stack_tool_name(s->tool), strerror(-r));
                return false;
        }
        /* Kept (and its pid excluded from the orphan scan) until it is reaped. */
        l[s->owner->n_runs++] = run;
        d->stack_tool = s->tool;
        if (r < 0) {
                diag_error(d, "cannot watch %s: %s", stack_tool_name(s->tool), strerror(-r));
                return false;
        }
        t->stack = run;
        return true;
}

/* ------------------------------------------------------------ a session */

static int on_session_finish(sd_event_source *src, void *userdata);

static void session_maybe_finish(struct diagnose_session *s) {
        int r;

        if (s->finish)
                return;
        for (size_t i = 0; i < s->n_targets; i++)
                if (s->targets[i].step != STEP_DONE)
                        return;
        r = sd_event_add_defer(s->owner->event, &s->finish, on_session_finish, s);
        if (r < 0) {
                log_error_errno(r, "cannot end the diagnosis");
                return;
        }
}

static void target_advance(struct diagnose_target *t) {
        switch (t->step) {
        case STEP_PYTHON:
                if (python_begin(t))
                        return;
                t->step = STEP_STACK;
                __attribute__((fallthrough));
        case STEP_STACK:
                if (stack_begin(t))
                        return;
                t->step = STEP_DONE;
                __attribute__((fallthrough));
        case STEP_DONE:
                session_maybe_finish(t->session);
                return;
        }
}

static void target_stop(struct diagnose_target *t, const char *why) {
        struct diagnosis *d = t->d;

        if (t->step == STEP_PYTHON && t->python_watching) {
                python_stop_watching(t);
                diag_error(d, "%s while waiting for the Python traceback", why);
        }
        if (t->stack) {
                diag_error(d, "%s while %s ran: it was killed", why, stack_tool_name(d->stack_tool));
                stack_run_abandon(t->stack);
                t->stack = NULL;
        }
        t->python_timer = sd_event_source_disable_unref(t->python_timer);
        t->step = STEP_DONE;
}

static int on_session_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        struct diagnose_session *s = userdata;
        char why[96];

        s->timer = sd_event_source_disable_unref(s->timer);
        snprintf(why, sizeof(why), "the diagnosis ran out of time (--diagnose-timeout %.1f s)",
                 secs(s->owner->run->options->diagnose_timeout_usec));
        for (size_t i = 0; i < s->n_targets; i++)
                if (s->targets[i].step != STEP_DONE)
                        target_stop(&s->targets[i], why);
        session_maybe_finish(s);
        return 0;
}

static void request_done(struct diagnose_request *req) {
        free(req->ranks);
        free(req->reason);
        *req = (struct diagnose_request) {};
}

static struct diagnose_session *session_free(struct diagnose_session *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_targets; i++) {
                struct diagnose_target *t = &s->targets[i];

                if (t->step != STEP_DONE)
                        target_stop(t, "the diagnosis was cancelled");
                safe_close(t->pidfd);
                diagnosis_free(t->d);
        }
        free(s->targets);
        sd_event_source_disable_unref(s->timer);
        sd_event_source_disable_unref(s->finish);
        free(s->tool_path);
        free(s->tool_missing);
        request_done(&s->req);
        free(s);
        return NULL;
}

static int on_session_finish(sd_event_source *src, void *userdata) {
        struct diagnose_session *s = userdata;
        struct diagnoser *o = s->owner;
        struct run_model *run = o->run;
        diagnose_done_fn done = s->req.done;
        void *done_data = s->req.userdata;
        bool same_attempt = run->restart_count == s->restart_count;

        for (size_t i = 0; i < s->n_targets; i++) {
                struct diagnose_target *t = &s->targets[i];
                struct rank *r = &run->ranks[t->rank];
                struct worker *w = target_worker(t);

                if (t->worker < 0)
                        nccl_tail(o, t->rank, t->d);
                t->d->ended_usec = now_usec();
                if (same_attempt && t->worker < 0) {
                        diagnosis_free(r->diagnosis);
                        r->diagnosis = TAKE_PTR(t->d);
                } else if (w) {
                        diagnosis_free(w->diagnosis);
                        w->diagnosis = TAKE_PTR(t->d);
                }
        }
        if (!same_attempt)
                log_notice("diagnosis (%s): the job restarted meanwhile; its results were dropped", s->req.reason);
        o->session = session_free(s);

        if (done)
                done(done_data);
        /* The next request, if the callback did not start one. */
        while (!o->session && o->n_queue > 0) {
                struct diagnose_request next = o->queue[0];
                diagnose_done_fn next_done = next.done;
                void *next_data = next.userdata;

                memmove(o->queue, o->queue + 1, (o->n_queue - 1) * sizeof(o->queue[0]));
                o->n_queue--;
                if (session_start(o, &next) < 0) {
                        log_error("diagnosis: out of memory");
                        if (next_done)
                                next_done(next_data);
                }
        }
        return 0;
}

/* Sets up one rank: /proc now, before any signal or tracer changes what it does. */
static void target_init(struct diagnose_session *s, struct diagnose_target *t, int index) {
        struct run_model *run = s->owner->run;
        struct rank *r = &run->ranks[index];
        struct diagnosis *d;
        char position[256];
        size_t principal;
        int k;

        *t = (struct diagnose_target) { .session = s, .rank = index, .worker = -1, .pidfd = -EBADF, .step = STEP_DONE };
        d = t->d = calloc(1, sizeof(*d));
        if (!d)
                return;
        d->reason = strdup(s->req.reason);
        d->started_usec = now_usec();
        d->pid = r->pid;
        d->principal_pid = r->pid;
        if (r->phase) {
                d->phase = strdup(r->phase);
                /* Still in it: the time in it (phase.h). */
                if (r->notify.phase_end_usec == 0 && r->notify.phase_start_usec > 0 &&
                    d->started_usec > r->notify.phase_start_usec)
                        d->phase_usec = d->started_usec - r->notify.phase_start_usec;
        }
        rank_describe_position(r, d->started_usec, position, sizeof(position));
        d->position = strdup(position);

        k = proc_snapshot_tree(r->pid, SNAPSHOT_PROCESSES_MAX, SNAPSHOT_THREADS_MAX, &d->processes, &d->n_processes);
        if (k < 0) {
                diag_error(d, "cannot read /proc/%d: %s", (int) r->pid, strerror(-k));
                return;
        }
        principal = principal_index(d);
        d->principal_pid = d->processes[principal].pid;
        t->principal_start_time = d->processes[principal].start_time;
        d->python = process_is_python(&d->processes[principal]) ||
                    (principal == 0 && !d->processes[0].exe[0] && s->owner->command_is_python);
        t->pidfd = pidfd_open_checked(d->principal_pid, t->principal_start_time);

        if (run->options->diagnose_timeout_usec > 0)
                t->step = STEP_PYTHON;
}

/* Sets up a spawned worker: its own process (never a wrapper's child), its phase. */
static void worker_target_init(struct diagnose_session *s, struct diagnose_target *t, struct worker *w) {
        struct diagnosis *d;
        int k;

        *t = (struct diagnose_target) { .session = s, .rank = w->rank, .worker = w->id, .pidfd = -EBADF,
                                        .step = STEP_DONE };
        d = t->d = calloc(1, sizeof(*d));
        if (!d)
                return;
        d->reason = strdup(s->req.reason);
        d->started_usec = now_usec();
        d->pid = d->principal_pid = w->pid;
        if (w->phase) {
                d->phase = strdup(w->phase);
                if (!w->phase_end_usec && d->started_usec > w->phase_start_usec)
                        d->phase_usec = d->started_usec - w->phase_start_usec;
        }
        if (w->phase && !w->phase_end_usec)
                k = asprintf(&d->position, "in phase %s for %.1f s", w->phase, (double) d->phase_usec / 1e6);
        else if (w->phase)
                k = asprintf(&d->position, "after phase %s (ended %.1f s ago)", w->phase,
                             (double) (d->started_usec - w->phase_end_usec) / 1e6);
        else
                k = asprintf(&d->position, "before any phase for %.1f s (since it announced itself)",
                             (double) (d->started_usec - w->announced_usec) / 1e6);
        if (k < 0)
                d->position = NULL;
        k = proc_snapshot_tree(w->pid, SNAPSHOT_PROCESSES_MAX, SNAPSHOT_THREADS_MAX, &d->processes, &d->n_processes);
        if (k < 0) {
                diag_error(d, "cannot read /proc/%d: %s", (int) w->pid, strerror(-k));
                return;
        }
        t->principal_start_time = d->processes[0].start_time;
        d->python = !w->native || process_is_python(&d->processes[0]);
        t->pidfd = pidfd_open_checked(w->pid, t->principal_start_time);
        if (s->owner->run->options->diagnose_timeout_usec > 0)
                t->step = STEP_PYTHON;
}

static void session_find_tool(struct diagnose_session *s) {
        enum stack_tool wanted = s->owner->run->options->stack_tool;
        int r;

        s->tool = STACK_TOOL_NONE;
        if (wanted == STACK_TOOL_NONE)
                return;
        r = stack_tool_find(wanted, &s->tool, &s->tool_path);
        if (r == -ENOENT) {
                s->tool = STACK_TOOL_NONE;
                if (wanted == STACK_TOOL_AUTO)
                        s->tool_missing = strdup("neither eu-stack nor gdb is on PATH (--stack-tool)");
                else if (asprintf(&s->tool_missing, "%s is not on PATH (--stack-tool)", stack_tool_name(wanted)) < 0)
                        s->tool_missing = NULL;
        } else if (r < 0) {
                s->tool = STACK_TOOL_NONE;
                s->tool_missing = strdup(strerror(-r));
        }
}

/* Frees the stack runs whose tools were reaped (never from their own callbacks). */
static void runs_collect(struct diagnoser *o) {
        size_t k = 0;

        for (size_t i = 0; i < o->n_runs; i++) {
                if (stack_run_finished(o->runs[i]))
                        stack_run_free(o->runs[i]);
                else
                        o->runs[k++] = o->runs[i];
        }
        o->n_runs = k;
}

/* Takes the request over (also on failure: -ENOMEM, done not called). */
static int session_start(struct diagnoser *o, struct diagnose_request *req) {
        struct run_model *run = o->run;
        struct diagnose_session *s;
        int k;

        runs_collect(o);
        adopted_collect(o);
        s = calloc(1, sizeof(*s));
        if (s)
                s->targets = calloc(req->n ? req->n : 1, sizeof(struct diagnose_target));
        if (!s || !s->targets) {
                free(s);
                request_done(req);
                return -ENOMEM;
        }
        s->owner = o;
        s->req = *req;
        *req = (struct diagnose_request) {};
        s->restart_count = run->restart_count;
        s->started_usec = now_usec();
        o->session = s;
        if (run->options->diagnose_timeout_usec > 0)
                session_find_tool(s);

        log_info("diagnosing %zu rank(s) (%s)", s->req.n, s->req.reason);
        for (size_t i = 0; i < s->req.n; i++) {
                int index = s->req.ranks[i];

                if (index < 0) {
                        /* A spawned worker (diagnose_ranks()'s -1 - id). */
                        size_t id = (size_t) (-1 - index);

                        if (id >= run->workers.n_workers || run->workers.workers[id]->state != WORKER_RUNNING)
                                continue;
                        worker_target_init(s, &s->targets[s->n_targets], run->workers.workers[id]);
                        if (s->targets[s->n_targets].d)
                                s->n_targets++;
                        continue;
                }
                if (!rank_state_is_alive(run->ranks[index].state) || run->ranks[index].pid <= 0)
                        continue;
                target_init(s, &s->targets[s->n_targets], index);
                if (s->targets[s->n_targets].d)
                        s->n_targets++;
        }
        if (run->options->diagnose_timeout_usec > 0) {
                k = sd_event_add_time_relative(o->event, &s->timer, CLOCK_MONOTONIC,
                                               run->options->diagnose_timeout_usec, USEC_PER_MSEC, on_session_timeout,
                                               s);
                if (k < 0) {
                        log_error_errno(k, "cannot bound the diagnosis in time; taking /proc only");
                        for (size_t i = 0; i < s->n_targets; i++)
                                s->targets[i].step = STEP_DONE;
                }
        }
        /* Side by side: each rank's first step begins now. */
        for (size_t i = 0; i < s->n_targets; i++)
                target_advance(&s->targets[i]);
        session_maybe_finish(s);
        return 0;
}

int diagnose_ranks(struct diagnoser *o, const int *ranks, size_t n, const char *reason, diagnose_done_fn done,
                   void *userdata) {
        struct diagnose_request req = { .n = n, .done = done, .userdata = userdata };

        if (!o)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (ranks[i] >= o->run->nproc ||
                    (ranks[i] < 0 && (size_t) (-1 - ranks[i]) >= o->run->workers.n_workers))
                        return -EINVAL;
        if (o->session && o->n_queue == QUEUE_MAX)
                return -EBUSY;
        req.ranks = calloc(n ? n : 1, sizeof(int));
        req.reason = strdup(reason ? reason : "request");
        if (!req.ranks || !req.reason) {
                request_done(&req);
                return -ENOMEM;
        }
        memcpy(req.ranks, ranks, n * sizeof(int));
        if (o->session) {
                o->queue[o->n_queue++] = req;
                log_info("diagnosis (%s) waits for the one running (%s)", req.reason, o->session->req.reason);
                return 0;
        }
        return session_start(o, &req);
}

/* ------------------------------------------------------------ SIGUSR2 */

static void on_sigusr2_done(void *userdata) {
        struct diagnoser *o = userdata;

        o->sigusr2_busy = false;
        report_print_sigusr2(o->run);
}

static int on_sigusr2(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        struct diagnoser *o = userdata;
        struct run_model *run = o->run;
        _cleanup_free_ int *ranks = NULL;
        const char *sig = o->signal_name;
        size_t n = 0;
        int k;

        if (o->sigusr2_busy) {
                log_notice("%s: a diagnosis is already under way", sig);
                return 0;
        }
        ranks = calloc((size_t) run->nproc + run->workers.n_workers + 1, sizeof(int));
        if (!ranks)
                return 0;
        for (int i = 0; i < run->nproc; i++)
                if (rank_state_is_alive(run->ranks[i].state) && run->ranks[i].pid > 0)
                        ranks[n++] = i;
        if (n == 0) {
                log_notice("%s: no rank is running; nothing to diagnose", sig);
                return 0;
        }
        /* And the workers the ranks spawned (-1 - id). */
        for (size_t i = 0; i < run->workers.n_workers; i++)
                if (run->workers.workers[i]->state == WORKER_RUNNING)
                        ranks[n++] = -1 - (int) i;
        log_notice("%s: diagnosing %zu process%s", sig, n, n == 1 ? "" : "es");
        k = diagnose_ranks(o, ranks, n, sig, on_sigusr2_done, o);
        if (k < 0)
                log_warning_errno(k, "%s: cannot diagnose", sig);
        else
                o->sigusr2_busy = true;
        return 0;
}

/* ------------------------------------------------------------ the diagnoser */

static int setup_python_hooks(struct diagnoser *o) {
        const struct run_options *opt = o->run->options;
        _cleanup_free_ char *hook = NULL, *package = NULL;
        int r;

        o->command_is_python = command_is_python(opt->command, o->setup.exec_paths);
        if (opt->python_hooks == PYTHON_HOOKS_OFF || (opt->python_hooks == PYTHON_HOOKS_AUTO && !o->command_is_python))
                return 0;
        o->python_faulthandler = true;
        r = python_hook_dirs(&hook, &package);
        if (r == -ENOENT) {
                log_warning("--python-hooks: ringmaster's Python hook is not installed (set "
                            "RINGMASTER_PYTHON_HOOK_DIR to its folder); Python ranks will not print their "
                            "traceback on SIGUSR1");
                return 0;
        }
        if (r < 0)
                return r;
        r = python_hooks_pythonpath(hook, package, getenv("PYTHONPATH"), &o->pythonpath);
        if (r < 0)
                return r;
        log_info("Python hooks: PYTHONPATH=%s", o->pythonpath);
        return 0;
}

static int setup_nccl_debug_files(struct diagnoser *o) {
        struct run_model *run = o->run;
        const char *level = getenv("NCCL_DEBUG");

        /* NCCL writes to stdout unless told otherwise; the user's choice of a file wins. */
        if (!level || !level[0] || getenv("NCCL_DEBUG_FILE"))
                return 0;
        o->nccl_debug_dir = strdup(run->log_dir ? run->log_dir : run->run_dir->path);
        o->nccl_debug_files = calloc((size_t) run->nproc + 1, sizeof(char *));
        if (!o->nccl_debug_dir || !o->nccl_debug_files)
                return -ENOMEM;
        for (int i = 0; i < run->nproc; i++)
                if (asprintf(&o->nccl_debug_files[i], "%s/nccl-rank-%d.%%p.log", o->nccl_debug_dir, i) < 0) {
                        o->nccl_debug_files[i] = NULL;
                        return -ENOMEM;
                }
        log_info("NCCL_DEBUG=%s: each rank's NCCL log goes to %s/nccl-rank-N.PID.log", level, o->nccl_debug_dir);
        return 0;
}

int diagnoser_new(sd_event *event, struct run_model *run, const struct diagnoser_setup *setup,
                  struct diagnoser **ret) {
        struct diagnoser *o;
        int r;

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->event = event;
        o->run = run;
        o->setup = *setup;
        r = setup_python_hooks(o);
        if (r >= 0)
                r = setup_nccl_debug_files(o);
        /* --diagnose-signal (SIGUSR2 unless told; none: no signal at all). */
        o->signal_name = signal_name(run->options->diagnose_signal, o->signal_name_buf, sizeof(o->signal_name_buf));
        if (r >= 0 && run->options->diagnose_signal > 0)
                r = sd_event_add_signal(event, &o->sigusr2_source, run->options->diagnose_signal, on_sigusr2, o);
        if (r < 0) {
                diagnoser_free(o);
                return r;
        }
        *ret = o;
        return 0;
}

struct diagnoser *diagnoser_free(struct diagnoser *o) {
        if (!o)
                return NULL;
        o->session = session_free(o->session);
        for (size_t i = 0; i < o->n_queue; i++)
                request_done(&o->queue[i]);
        for (size_t i = 0; i < o->n_runs; i++)
                stack_run_free(o->runs[i]);
        free(o->runs);
        for (size_t i = 0; i < o->n_adopted; i++) {
                sd_event_source_disable_unref(o->adopted[i]->source);
                free(o->adopted[i]);
        }
        free(o->adopted);
        sd_event_source_disable_unref(o->sigusr2_source);
        free(o->pythonpath);
        strv_free(o->nccl_debug_files);
        free(o->nccl_debug_dir);
        free(o);
        return NULL;
}

static int on_adopted_exit(sd_event_source *src, const siginfo_t *si, void *userdata) {
        struct adopted_process *a = userdata;
        siginfo_t ignored = {};

        /* Reaped now, so that the pid is known not to be ours from here on. */
        (void) waitid(P_PID, a->pid, &ignored, WEXITED | WNOHANG);
        a->reaped = true;
        return 0;
}

/* Frees the records of adopted processes that were reaped (never from their own callbacks). */
static void adopted_collect(struct diagnoser *o) {
        size_t k = 0;

        for (size_t i = 0; i < o->n_adopted; i++) {
                if (o->adopted[i]->reaped) {
                        sd_event_source_disable_unref(o->adopted[i]->source);
                        free(o->adopted[i]);
                } else
                        o->adopted[k++] = o->adopted[i];
        }
        o->n_adopted = k;
}

bool diagnoser_claims_child(struct diagnoser *o, pid_t pid) {
        struct adopted_process *a, **l;
        struct proc_stat st;
        bool tools = false;

        if (!o)
                return false;
        for (size_t i = 0; i < o->n_runs; i++)
                if (stack_run_live_pid(o->runs[i]) == pid)
                        return true;
        for (size_t i = 0; i < o->n_adopted; i++)
                if (o->adopted[i]->pid == pid && !o->adopted[i]->reaped)
                        return true;
        /*
         * A process of a tool's group (a tool leads its own: setsid): its
         * child, re-parented to us when the tool was killed.  Ours to kill
         * and reap, not one of the job's orphans.
         */
        if (proc_read_stat(pid, &st) < 0)
                return false;
        for (size_t i = 0; i < o->n_runs && !tools; i++)
                tools = stack_run_pid(o->runs[i]) == st.pgrp;
        if (!tools)
                return false;
        a = calloc(1, sizeof(*a));
        l = realloc(o->adopted, (o->n_adopted + 1) * sizeof(*l));
        if (l)
                o->adopted = l;
        if (!a || !l) {
                free(a);
                return false;
        }
        a->pid = pid;
        if (sd_event_add_child(o->event, &a->source, pid, WEXITED, on_adopted_exit, a) < 0) {
                free(a);
                return false;
        }
        l[o->n_adopted++] = a;
        (void) kill(pid, SIGKILL);     /* an unreaped child of ours: the pid is still its */
        log_debug("process %d (%s) of a stack tool's group was re-parented to ringmaster: killed", (int) pid, st.comm);
        return true;
}

void diagnoser_worker_env(const struct diagnoser *o, int rank, struct worker_env *w) {
        if (!o)
                return;
        w->pythonpath = o->pythonpath;
        w->python_faulthandler = o->python_faulthandler;
        w->nccl_debug_file = o->nccl_debug_files ? o->nccl_debug_files[rank] : NULL;
}

bool diagnoser_wants_ptrace(const struct diagnoser *o) {
        return o && o->run->options->stack_tool != STACK_TOOL_NONE && o->run->options->diagnose_timeout_usec > 0;
}

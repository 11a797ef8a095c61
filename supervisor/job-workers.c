/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "capture.h"
#include "diagnose.h"
#include "job-workers.h"
#include "json.h"
#include "log.h"
#include "notify.h"
#include "options.h"
#include "proctree.h"
#include "run-model.h"
#include "rundir.h"
#include "util.h"
#include "worker-message.h"
#include "workers.h"

#define ERROR_FILE_MAX (1u << 20)
#define LATE_MAX 64

struct job_workers {
        struct job_workers_host host;
};

/* A captured worker's two streams (first: w->streams points at them) and the configuration of their prefix. */
struct worker_io {
        struct stream streams[_STREAM_KIND_MAX];
        struct capture_config config;
};

static struct worker_io *io_of(const struct worker *w) {
        return (struct worker_io *) w->streams;
}

int job_workers_new(const struct job_workers_host *host, struct job_workers **ret) {
        struct job_workers *jw = calloc(1, sizeof(*jw));

        if (!jw)
                return -ENOMEM;
        jw->host = *host;
        jw->host.run->first_failure_worker = -1;
        *ret = jw;
        return 0;
}

struct job_workers *job_workers_free(struct job_workers *jw) {
        if (!jw)
                return NULL;
        job_workers_release(jw);
        free(jw);
        return NULL;
}

int job_workers_rank_of_pid(const struct job_workers *jw, pid_t pid) {
        const struct worker *w = worker_table_find(&jw->host.run->workers, pid, 0);

        return w ? w->rank : -1;
}

/* Wrappers whose only child is the rank's real program: that child is the rank, not a worker. */
static bool comm_is_wrapper(const char *comm) {
        static const char *const names[] = {
                "sh", "bash", "dash", "zsh", "env", "timeout", "numactl", "taskset", "nice", "ionice",
                "stdbuf", "chrt", "setsid", "tini", "dumb-init", "nsys", "ncu", "perf", "time",
        };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(comm, names[i]) == 0)
                        return true;
        return false;
}

/* The rank's own program: its process, or the only child of a wrapper that is its process. */
static bool is_rank_program(const struct run_model *run, int rank, pid_t pid, pid_t ppid) {
        const struct rank *r = &run->ranks[rank];
        struct proc_stat st;

        if (pid == r->pid)
                return true;
        if (ppid != r->pid)
                return false;
        return proc_read_stat(r->pid, &st) >= 0 && comm_is_wrapper(st.comm);
}

static void answer(int fd, char c) {
        if (fd >= 0)
                (void) !write(fd, &c, 1);
}

static void worker_relabel(struct worker *w) {
        struct worker_io *io = io_of(w);
        char label[24];

        if (!io)
                return;
        worker_label(w, label, sizeof(label));
        for (int k = 0; k < _STREAM_KIND_MAX; k++)
                (void) stream_set_label(&io->streams[k], label);
}

/* --log-dir: DIR/ID/rank-R.worker-PID.out and .err, raw (as a rank's); -EBADF without --log-dir or on error. */
static int open_log_file(const struct run_model *run, const struct worker *w, int kind) {
        char path[4096];
        int fd;

        if (!run->log_dir)
                return -EBADF;
        snprintf(path, sizeof(path), "%s/rank-%d.worker-%d.%s", run->log_dir, w->rank, (int) w->pid,
                 kind == STREAM_STDERR ? "err" : "out");
        /* Never through a symlink, as a rank's (the run folder is ringmaster's own: run.c's setup_log_dir). */
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0666);
        if (fd < 0) {
                log_warning_errno(-errno, "cannot open the log file %s", path);
                return -EBADF;
        }
        return fd;
}

/* Takes the read ends as w's streams: true when they are its streams now. */
static bool worker_capture(struct job_workers *jw, struct worker *w, int out_fd, int err_fd) {
        const struct run_options *o = jw->host.run->options;
        struct worker_io *io;
        int fds[2] = { out_fd, err_fd }, k = 0;

        io = calloc(1, sizeof(*io));
        if (!io)
                return false;
        io->config = *jw->host.capture;
        io->config.prefix_template = o->worker_prefix ? o->worker_prefix : "[rank %r/%w] ";
        for (int s = 0; s < _STREAM_KIND_MAX; s++) {
                (void) fcntl(fds[s], F_SETPIPE_SZ, 1 << 20);
                if (fcntl(fds[s], F_SETFL, O_NONBLOCK) < 0)
                        k = -errno;
        }
        for (int s = 0; s < _STREAM_KIND_MAX && k >= 0; s++) {
                k = stream_init(&io->streams[s], jw->host.event, SD_EVENT_PRIORITY_NORMAL, &io->config, s, w->rank,
                                w->rank, w->pid, fds[s], open_log_file(jw->host.run, w, s));
                fds[s] = -EBADF;
        }
        if (k < 0) {
                log_warning_errno(k, "rank %d: cannot capture worker %d's output", w->rank, (int) w->pid);
                for (int s = 0; s < _STREAM_KIND_MAX; s++) {
                        safe_close(fds[s]);
                        if (io->streams[s].config)
                                stream_free(&io->streams[s]);
                }
                free(io);
                return false;
        }
        w->streams = io->streams;
        worker_relabel(w);
        return true;
}

static void worker_read_error_file(const struct run_model *run, struct worker *w) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        size_t size = 0;

        if (w->error_file || w->error_file_raw || asprintf(&path, "%s/worker-%d.error.json", run->run_dir->path,
                                                             (int) w->pid) < 0)
                return;
        if (read_file_bounded(AT_FDCWD, path, ERROR_FILE_MAX, &text, &size) < 0)
                return;
        if (json_parse(text, size, &w->error_file) < 0) {
                text[MIN(size, (size_t) 4096)] = 0;
                w->error_file_raw = TAKE_PTR(text);
        }
        (void) unlink(path);
}

static void worker_drain(struct worker *w) {
        struct worker_io *io = io_of(w);

        if (io)
                for (int k = 0; k < _STREAM_KIND_MAX; k++)
                        stream_drain(&io->streams[k]);
}

/* Its last lines: the stderr tail of its own streams, else nothing (the parent's streams hold them). */
static void log_tail(const struct run_model *run, const struct worker *w) {
        _cleanup_strv_free_ char **lines = NULL;

        if (!w->streams || tail_lines(&w->streams[STREAM_STDERR].tail, run->options->tail_lines, &lines) < 0)
                return;
        for (size_t i = 0; lines && lines[i]; i++)
                log_error("  | %s", lines[i]);
}

/*
 * A Python worker killed by a fatal signal, its parent faster than us to
 * reap it: faulthandler (PYTHONFAULTHANDLER=1, set with the hook) printed
 * "Fatal Python error: Segmentation fault" into its own stderr last.  The
 * signal, or 0.
 */
static int fatal_signal_from_stderr(const struct run_model *run, const struct worker *w) {
        static const struct {
                const char *text;
                int sig;
        } fatal[] = {
                { "Segmentation fault", SIGSEGV }, { "Aborted", SIGABRT }, { "Bus error", SIGBUS },
                { "Floating-point exception", SIGFPE }, { "Floating point exception", SIGFPE },
                { "Illegal instruction", SIGILL },
        };
        _cleanup_strv_free_ char **lines = NULL;
        size_t n;

        if (w->native || w->exit_announced || !w->streams ||
            tail_lines(&w->streams[STREAM_STDERR].tail, run->options->tail_lines, &lines) < 0)
                return 0;
        n = strv_length(lines);
        for (size_t i = n; i-- > 0;) {
                const char *p = lines[i];

                if (!startswith(p, "Fatal Python error: "))
                        continue;
                p += strlen("Fatal Python error: ");
                for (size_t k = 0; k < ELEMENTSOF(fatal); k++)
                        if (startswith(p, fatal[k].text))
                                return fatal[k].sig;
                return 0;
        }
        return 0;
}

static void worker_end(struct job_workers *jw, struct worker *w) {
        struct run_model *run = jw->host.run;
        char describe[256], end[1200];
        struct proc_stat st;
        uint64_t now;
        int sig;

        if (w->state != WORKER_RUNNING)
                return;
        worker_drain(w);
        /* What it said just before it ended (its EXIT, its exception) is its own: take it first. */
        jw->host.drain_notify(jw->host.userdata);
        now = now_usec();
        /* A zombie its parent has not reaped yet still tells how it ended (field 52). */
        if (proc_read_stat(w->pid, &st) >= 0 && st.state == 'Z' && st.start_time == w->start_time &&
            st.exit_code >= 0) {
                if (WIFSIGNALED(st.exit_code))
                        worker_ended(w, WORKER_SIGNALLED, WTERMSIG(st.exit_code), now);
                else
                        worker_ended(w, WORKER_EXITED, WEXITSTATUS(st.exit_code), now);
        } else if ((sig = fatal_signal_from_stderr(run, w)) > 0)
                worker_ended(w, WORKER_SIGNALLED, sig, now);
        else
                worker_ended(w, WORKER_GONE, 0, now);
        w->exit_source = sd_event_source_disable_unref(w->exit_source);
        w->pidfd = safe_close(w->pidfd);
        worker_read_error_file(run, w);
        worker_describe(&run->workers, w, run_rank_pid(run, w->rank), describe, sizeof(describe));
        worker_describe_end(w, end, sizeof(end));
        if (!worker_failed(w) || run->state != JOB_RUNNING) {
                log_info("%s %s", describe, end);
                return;
        }
        w->failure_reported = true;
        log_error("%s %s at %.3f s; %s", describe, end, (double) (now - run->start_usec) / 1e6,
                  run->options->worker_failure_report_only ? "the job goes on (--worker-failure=report)"
                                                           : "the job is torn down");
        log_tail(run, w);
        if (!run->options->worker_failure_report_only)
                jw->host.failed(w->id, jw->host.userdata);
}

static int on_worker_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct worker *w = userdata;
        struct job_workers *jw = w->exit_userdata;

        worker_end(jw, w);
        jw->host.changed(jw->host.userdata);
        return 0;
}

static void worker_watch(struct job_workers *jw, struct worker *w) {
        sd_event_source *source = NULL;
        int fd = (int) syscall(SYS_pidfd_open, w->pid, 0), k;
        unsigned long long start;

        if (fd < 0) {
                log_debug("cannot watch worker %d: pidfd_open: %m", (int) w->pid);
                return;
        }
        /* The pidfd is of the announced process only when its start time is still the same. */
        if (proc_read_start_time(w->pid, &start) < 0 || start != w->start_time) {
                close(fd);
                return;
        }
        w->exit_userdata = jw;
        k = sd_event_add_io(jw->host.event, &source, fd, EPOLLIN, on_worker_exit, w);
        if (k < 0) {
                close(fd);
                log_debug("cannot watch worker %d: %s", (int) w->pid, strerror(-k));
                return;
        }
        w->pidfd = fd;
        w->exit_source = source;
}

void job_workers_datagram(struct job_workers *jw, int rank, pid_t sender, const void *data, size_t size, int *fds,
                          size_t n_fds) {
        struct run_model *run = jw->host.run;
        struct worker_message m;
        struct proc_stat st;
        struct worker *w;
        bool taken = false, capture;
        int k;

        capture = n_fds == 3;
        k = worker_message_parse(data, size, &m);
        if (k < 0 || rank < 0 || rank >= run->nproc) {
                if (k < 0)
                        log_debug("a worker datagram from pid %d has an invalid value: ignored", (int) sender);
                goto done;
        }
        capture = capture && (m.keys & WORKER_KEY_CAPTURE);
        w = worker_table_find(&run->workers, sender, 0);
        if (m.keys & WORKER_KEY_ANNOUNCE) {
                if (proc_read_stat(sender, &st) < 0) {
                        log_debug("worker %d is gone before its announcement was read", (int) sender);
                        goto done;
                }
                if (is_rank_program(run, rank, sender, st.ppid))
                        goto done;       /* the rank itself: captured and named as the rank already */
                if (w && w->start_time != st.start_time)
                        w = NULL;
                if (!w) {
                        k = worker_table_announce(&run->workers, rank, sender, st.start_time, st.ppid, &m, now_usec(),
                                                  &w);
                        if (k < 0) {
                                if (k == -ENOSPC)
                                        log_warning("rank %d: more than %d workers announced: pid %d is not tracked",
                                                    rank, WORKERS_MAX, (int) sender);
                                goto done;
                        }
                        log_debug("rank %d: worker %d (%s) announced: %s", rank, (int) sender,
                                  m.native ? "native" : "python", m.argv);
                        worker_watch(jw, w);
                } else if ((k = worker_table_announce(&run->workers, rank, sender, st.start_time, st.ppid, &m,
                                                      now_usec(), &w)) < 0)
                        goto done;
                if (capture && !w->streams && run->options->worker_capture)
                        taken = worker_capture(jw, w, fds[0], fds[1]);
                if (taken)
                        fds[0] = fds[1] = -EBADF;
                worker_relabel(w);
        }
        if (!w)
                goto done;
        k = worker_apply_message(&run->workers, w, &m, now_usec());
        if (k < 0)
                log_warning_errno(k, "rank %d: worker %d: cannot record what it said", rank, (int) sender);
        if (m.keys & WORKER_KEY_GROUP)
                worker_relabel(w);
done:
        if (n_fds == 3 && capture)
                answer(fds[2], taken ? 'Y' : 'N');
        for (size_t i = 0; i < n_fds; i++)
                safe_close(fds[i]);
}

void job_workers_notify(struct job_workers *jw, pid_t sender, const struct notify_message *m) {
        struct worker *w = worker_table_find(&jw->host.run->workers, sender, 0);
        uint64_t now = now_usec();
        bool failed;

        if (!w)
                return;
        /* The hook's "dist-init failed: Type: message" comes with the end of a phase that raised. */
        failed = (m->keys & NOTIFY_PHASE_END) && (m->keys & NOTIFY_STATUS) && startswith(m->status, m->phase_end) &&
                 startswith(m->status + strlen(m->phase_end), " failed: ");
        if ((m->keys & NOTIFY_PHASE) && (m->keys & NOTIFY_PHASE_END) && m->phase_end_first) {
                (void) worker_phase(w, NULL, m->phase_end, failed, now);
                (void) worker_phase(w, m->phase, NULL, false, now);
        } else
                (void) worker_phase(w, (m->keys & NOTIFY_PHASE) ? m->phase : NULL,
                                    (m->keys & NOTIFY_PHASE_END) ? m->phase_end : NULL, failed, now);
        if (m->keys & NOTIFY_READY)
                worker_said_ready(w, now);
        if (m->keys & NOTIFY_EXTEND_TIMEOUT)
                worker_extend(w, m->extend_timeout_usec, now);
}

void job_workers_poll_exits(struct job_workers *jw) {
        struct worker_table *t = &jw->host.run->workers;

        for (size_t i = 0; i < t->n_workers; i++) {
                struct worker *w = t->workers[i];
                struct pollfd p = { .fd = w->pidfd, .events = POLLIN };

                if (w->state == WORKER_RUNNING && w->pidfd >= 0 && poll(&p, 1, 0) > 0)
                        worker_end(jw, w);
        }
}

void job_workers_finish(struct job_workers *jw) {
        struct worker_table *t = &jw->host.run->workers;

        job_workers_poll_exits(jw);
        for (size_t i = 0; i < t->n_workers; i++) {
                struct worker *w = t->workers[i];
                struct worker_io *io = io_of(w);

                w->exit_source = sd_event_source_disable_unref(w->exit_source);
                w->pidfd = safe_close(w->pidfd);
                if (io)
                        for (int k = 0; k < _STREAM_KIND_MAX; k++)
                                stream_finish(&io->streams[k]);
        }
}

void job_workers_release(struct job_workers *jw) {
        struct run_model *run = jw->host.run;

        for (size_t i = 0; i < run->workers.n_workers; i++) {
                struct worker *w = run->workers.workers[i];
                struct worker_io *io = io_of(w);

                w->exit_source = sd_event_source_disable_unref(w->exit_source);
                w->pidfd = safe_close(w->pidfd);
                if (io) {
                        for (int k = 0; k < _STREAM_KIND_MAX; k++)
                                stream_free(&io->streams[k]);
                        free(io);
                        w->streams = NULL;
                }
                diagnosis_free(w->diagnosis);
                json_value_free(w->error_file);
                free(w->error_file_raw);
        }
        worker_table_reset(&run->workers);
        run->first_failure_worker = -1;
}

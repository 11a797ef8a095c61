/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "check.h"
#include "contain.h"
#include "exit-status.h"
#include "gpus.h"
#include "init.h"
#include "job.h"
#include "journal.h"
#include "log.h"
#include "options.h"
#include "placement.h"
#include "rendezvous.h"
#include "report.h"
#include "run.h"
#include "run-nodes.h"
#include "rundir.h"
#include "safe-file.h"
#include "sdnotify.h"
#include "shmring.h"
#include "sink.h"
#include "status.h"
#include "util.h"

#define FINAL_FLUSH_USEC (2 * USEC_PER_SEC)

/* Maps a setup error to an exit status: the user's to fix (100) or ringmaster's (111). */
static int setup_exit_status(int r) {
        return r == -EINVAL || r == -EBUSY || r == -ENOTEMPTY || r == -ENOTDIR ? EXIT_RM_USAGE : EXIT_RM_INTERNAL;
}

static int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++)
                if (*s == '/') {
                        *s = 0;
                        if (mkdir(p, mode) < 0 && errno != EEXIST)
                                return -errno;
                        *s = '/';
                }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* nproc and the GPUs each rank gets. */
static int setup_gpus(struct run_model *run, struct job_setup *setup, const struct run_options *o) {
        _cleanup_strv_free_ char **visible = NULL, **selected = NULL;
        bool from_env = false;
        size_t n;
        int r;

        r = gpus_visible(&visible, &from_env);
        if (r < 0)
                return r;
        if (o->gpus) {
                r = gpus_select(o->gpus, visible, from_env, &selected);
                if (r < 0)
                        return r;
        }
        n = strv_length(selected ? selected : visible);
        run->nproc = o->nproc > 0 ? o->nproc : (int) MAX(n, (size_t) 1);
        if (o->nproc_mode == NPROC_GPU && n == 0) {
                log_error("-n gpu: no GPU is visible (no CUDA_VISIBLE_DEVICES, no /dev/nvidiaN): give a count");
                return -EINVAL;
        }
        if (o->nproc_mode == NPROC_CPU || (o->nproc_mode == NPROC_AUTO && n == 0)) {
                cpu_set_t cpus;
                /* torch's cpu_count(): the CPUs this process may run on. */
                run->nproc = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 1;
                run->nproc = MIN(MAX(run->nproc, 1), MAX_NPROC);
        }

        if (o->bind_gpu == BIND_GPU_VISIBLE) {
                char **l = selected ? selected : visible;

                if (n == 0) {
                        log_error("--bind-gpu=visible: no GPU is visible (no CUDA_VISIBLE_DEVICES, no /dev/nvidiaN): "
                                  "give --gpus, or use --bind-gpu=none");
                        return -EINVAL;
                }
                if ((size_t) run->nproc > n) {
                        log_error("--bind-gpu=visible: %d ranks but %zu GPU(s): give -n %zu, or list a GPU per rank "
                                  "in --gpus (repeats allowed)", run->nproc, n, n);
                        return -EINVAL;
                }
                setup->cuda_per_rank = strv_copy(l);
                if (!setup->cuda_per_rank)
                        return -ENOMEM;
        } else if (selected) {
                /* Every rank sees the chosen GPUs; LOCAL_RANK indexes into them. */
                size_t len = 0;
                char *s;

                for (size_t i = 0; selected[i]; i++)
                        len += strlen(selected[i]) + 1;
                s = setup->cuda_all = calloc(1, len + 1);
                if (!s)
                        return -ENOMEM;
                for (size_t i = 0; selected[i]; i++)
                        s += sprintf(s, "%s%s", i ? "," : "", selected[i]);
        }
        return 0;
}

/*
 * Where this node is in the job (placement.h): the ranks' global numbers and MASTER_ADDR/MASTER_PORT; through
 * the store's rendezvous (rendezvous.h, *rdzv filled) when neither the command line nor a launcher says.
 */
static int setup_placement(struct run_model *run, const struct run_options *o, struct rdzv_result *rdzv) {
        struct placement_request req = {
                .from = o->nodes_from, .nnodes = o->nnodes, .min_nnodes = o->min_nnodes, .node_rank = o->node_rank,
                .nproc_per_node = run->nproc, .store = o->store || o->rendezvous,
                .master_addr = o->master_addr_given ? o->master_addr : NULL, .master_port = o->master_port,
        };
        _cleanup_free_ char *error = NULL;
        struct placement p;
        int r;

        r = placement_resolve(&req, environ, &p, &error);
        if (r == -EINVAL) {
                log_error("%s", error);
                return r;
        }
        if (r < 0)
                return log_error_errno(r, "cannot work out this node's place in the job");
        if (p.source == NODE_SOURCE_RENDEZVOUS) {
                r = run_nodes_rendezvous(run, o, &p, rdzv);
                if (r < 0) {
                        placement_done(&p);
                        return r;
                }
        }
        /* The launcher's name for this node (Slurm's n2, not the machine's): in reports and the store's records. */
        if (p.node_name)
                snprintf(run->host, sizeof(run->host), "%s", p.node_name);
        run->nnodes = p.nnodes;
        run->node_rank = p.node_rank;
        run->rank_offset = p.node_rank * run->nproc;
        run->node_source = node_source_to_string(p.source);
        if (p.nnodes > 1) {
                /* Every node must agree: the launcher's or the given address and a fixed port. */
                run->master_addr = TAKE_PTR(p.master_addr);
                run->fixed_master_port = p.master_port;
        } else {
                /* One node: as before, the command line's (default 127.0.0.1) and its port or a free one. */
                run->master_addr = strdup(o->master_addr);
                run->fixed_master_port = o->master_port;
        }
        placement_done(&p);
        if (!run->master_addr)
                return log_error_errno(-ENOMEM, "out of memory");
        /* Through etcd's rendezvous every node restarts together, into the next round (run-nodes.h). */
        run->restart_across_nodes = o->max_restarts > 0 && o->store && strcmp(run->node_source, "rendezvous") == 0;
        if (run->nnodes > 1 && o->max_restarts > 0 && !run->restart_across_nodes) {
                log_error("--max-restarts with %d nodes: ringmaster restarts one node's ranks, which cannot rejoin "
                          "the others' job; number the nodes through --store's rendezvous (no --node-rank), where "
                          "every node restarts into the next round, or let the launcher restart every node (srun "
                          "--requeue, LWS's RecreateGroupOnPodRestart)", run->nnodes);
                return -EINVAL;
        }
        if (o->store && !o->run_id && run->nnodes > 1) {
                log_error("--store with %d nodes needs --run-id, the same on every node (e.g. --run-id "
                          "\"$SLURM_JOB_ID\"): it names the job in the store", run->nnodes);
                return -EINVAL;
        }
        if (run->nnodes > 1)
                log_info("node %d of %d (%s): ranks %d to %d; MASTER_ADDR=%s MASTER_PORT=%d", run->node_rank,
                         run->nnodes, run->node_source, run->rank_offset, run->rank_offset + run->nproc - 1,
                         run->master_addr, run->fixed_master_port);
        return 0;
}

static int setup_run_dir(struct run_model *run, const struct run_options *o) {
        _cleanup_free_ char *parent = NULL;
        int r;

        if (o->run_id)
                run->run_id = strdup(o->run_id);
        else {
                r = run_id_generate(&run->run_id);
                if (r < 0)
                        return log_error_errno(r, "cannot generate a run id");
        }
        if (!run->run_id)
                return -ENOMEM;

        if (!o->run_dir) {
                r = run_dir_default_parent(&parent);
                if (r < 0)
                        return r;
                r = run_dir_cleanup_stale(parent);
                if (r > 0) {
                        run->stale_run_dirs_removed = r;
                        log_info("removed %d run director%s of dead runs from %s", r, r == 1 ? "y" : "ies", parent);
                }
        }
        return run_dir_open(o->run_dir, parent, run->run_id, &run->run_dir);
}

/*
 * DIR/<run-id>, ringmaster's own: the run id is predictable (a unit's %i),
 * so another user could make the folder first, or plant symlinks in it.
 * DIR is made as needed; the run folder must be made here, or be ours and
 * private already (a rerun).  The rank files are opened O_NOFOLLOW in it.
 */
static int setup_log_dir(struct run_model *run, const struct run_options *o) {
        _cleanup_close_ int fd = -EBADF;
        const char *why = NULL;
        int r;

        if (!o->log_dir)
                return 0;
        if (asprintf(&run->log_dir, "%s/%s", o->log_dir, run->run_id) < 0)
                return -ENOMEM;
        r = mkdir_parents(o->log_dir, 0777);
        if (r < 0)
                return log_error_errno(r, "--log-dir: cannot create %s", o->log_dir);
        r = safe_dir_check(o->log_dir, &why);
        if (r == -EPERM) {
                log_error("--log-dir: refusing %s: %s (give a folder of your own, or make it sticky: chmod +t)",
                          o->log_dir, why);
                return -EPERM;
        }
        r = safe_own_dir(run->log_dir, 0755, &fd, &why);
        if (r == -EPERM) {
                log_error("--log-dir: refusing the run folder %s: %s (remove it, or give another --run-id)",
                          run->log_dir, why);
                return -EPERM;
        }
        if (r < 0)
                return log_error_errno(r, "--log-dir: cannot create %s", run->log_dir);
        return 0;
}

/* --contain: the strongest containment the host gives (auto), or the one asked for (docs/containment.md). */
static int setup_containment(struct run_model *run, struct job_setup *setup, const struct run_options *o) {
        _cleanup_free_ char *marker = NULL;
        const char *why = NULL;
        int r;

        /* Every rank's environment has it (environ.c), and no other ringmaster's: the run directory is locked. */
        if (asprintf(&marker, "RINGMASTER_RUN_DIR=%s", run->run_dir->path) < 0)
                return -ENOMEM;
        r = contain_new(run->run_id, marker, o->contain, &setup->contain, &why);
        if (r == -EOPNOTSUPP) {
                log_error("--contain %s: not available here: %s (try --contain auto)", contain_mode_name(o->contain),
                          why);
                return r;
        }
        if (r < 0) {
                log_error_errno(r, "cannot set up the job's containment%s%s (--contain none runs without)",
                                why ? ": " : "", why ? why : "");
                return r;
        }
        {
                unsigned killed, swept = contain_stale_swept(setup->contain, &killed);

                if (swept > 0)
                        log_notice("removed %u stale job cgroup%s of dead runs (their ringmaster and watcher were killed), "
                                   "ending %u process%s left in them", swept, swept == 1 ? "" : "s", killed,
                                   killed == 1 ? "" : "es");
        }
        run->containment = contain_mode_name(contain_get_mode(setup->contain));
        run->containment_cgroup = contain_cgroup_path(setup->contain);
        run->containment_fallback = contain_fallback_reason(setup->contain);
        if (run->containment_cgroup)
                log_info("containment: the job's cgroup %s", run->containment_cgroup);
        else
                log_info("containment: %s%s%s", run->containment, run->containment_fallback ? " (no cgroup: " : "",
                         run->containment_fallback ? run->containment_fallback : "");
        return 0;
}

/* The --report folder: refused when another user could swap files in it (safe-file.h). */
static int check_report_dir(const struct run_options *o) {
        _cleanup_free_ char *dir = NULL;
        const char *why = NULL, *slash;
        int r;

        if (!o->report_path)
                return 0;
        slash = strrchr(o->report_path, '/');
        dir = slash ? strndup(o->report_path, slash == o->report_path ? 1 : (size_t) (slash - o->report_path))
                    : strdup(".");
        if (!dir)
                return -ENOMEM;
        r = safe_dir_check(dir, &why);
        if (r == -EPERM)
                log_error("--report: refusing %s: %s (give a folder of your own, or make it sticky: chmod +t)", dir,
                          why);
        else if (r < 0)
                log_error_errno(r, "--report: cannot use the folder %s", dir);
        return r;
}

static void setup_capture(struct job_setup *setup, const char *run_id, const struct run_options *o,
                          struct sink *out, struct sink *err) {
        int journal_stream = 0;
        bool journal = false, terminal = true;

        if (o->journal != JOURNAL_OFF) {
                journal_stream = journal_stream_matches(STDERR_FILENO);
                if (journal_stream < 0)
                        log_warning("JOURNAL_STREAM='%s' is not DEVICE:INODE; ignoring it (unset it, or pass --journal)",
                                    getenv("JOURNAL_STREAM"));
        }
        if (o->journal == JOURNAL_ON)
                journal = true;
        else if (o->journal == JOURNAL_AUTO && journal_stream > 0 &&
                 access("/run/systemd/journal/socket", F_OK) == 0) {
                /* stderr is the journal: structured entries instead of plain lines, not both. */
                journal = true;
                terminal = false;
        }
        setup->capture = (struct capture_config) {
                .prefix_template = o->prefix,
                .role = o->role,
                .run_id = run_id,
                .ident = o->command[0],
                .escape = o->escape,
                .max_line = o->max_line,
                .tail_bytes = o->tail_bytes,
                .sinks = { terminal ? out : NULL, terminal ? err : NULL },
                .journal = journal,
                .journal_fallback = { out, err },
                .console_hidden = o->console_hidden,
                .n_console_hidden = o->console_hidden ? MAX_NPROC : 0,
        };
        /* SYSLOG_IDENTIFIER is the command's base name, as systemd shows it. */
        if (strrchr(o->command[0], '/'))
                setup->capture.ident = strrchr(o->command[0], '/') + 1;
}

/*
 * Each rank holds a few of the supervisor's fds (two pipes, a pidfd, two log
 * files): raise the soft limit to the hard one, as systemd does, and give
 * the ranks back the one inherited.
 */
static void raise_fd_limit(struct job_setup *setup) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= rl.rlim_max)
                return;
        setup->child_nofile = rl;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
                setup->restore_nofile = true;
}

/*
 * What the ranks cost ringmaster in file descriptors (measured: a stdout
 * and a stderr pipe and a pidfd each, two more with --log-dir), plus its
 * own (event loop, sockets, sinks, a stack tool's pipes) with room to
 * spare.  Checked after raise_fd_limit() raised the soft limit to the hard
 * one: -n beyond it fails here, before a rank is forked, not half-way.
 */
#define FDS_PER_RANK 3
#define FDS_PER_RANK_LOG_DIR 2
#define FDS_BASE 48

static int check_fd_limit(const struct run_options *o, int nproc) {
        uint64_t need = FDS_BASE + (uint64_t) nproc * (FDS_PER_RANK + (o->log_dir ? FDS_PER_RANK_LOG_DIR : 0));
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || need <= rl.rlim_cur)
                return 0;
        log_error("-n %d needs about %" PRIu64 " file descriptors, and RLIMIT_NOFILE allows %llu (soft limit raised "
                  "to the hard one): raise the hard limit (ulimit -Hn, LimitNOFILE= in a unit, --ulimit nofile= "
                  "for a container) or run fewer ranks", nproc, need, (unsigned long long) rl.rlim_cur);
        return -EMFILE;
}

/* Who looks at the job after each batch of its events. */
struct job_watchers {
        struct sdnotify *sdnotify;
        struct live_status *status;
        struct run_nodes *nodes;
};

static void on_job_changed(const struct run_model *run, void *userdata) {
        struct job_watchers *w = userdata;

        run_nodes_changed(w->nodes, run);
        sdnotify_update(w->sdnotify, run);
        live_status_update(w->status);
}

static void forward_signal(int sig, void *userdata) {
        job_forward_signal(userdata, sig);
}

/* The live table: stderr a terminal that can move its cursor, and not asked to be quiet or plain. */
static bool want_status_table(const struct run_options *o) {
        const char *term = getenv("TERM");

        return o->tty && o->log_level >= LOG_LEVEL_NOTICE && isatty(STDERR_FILENO) && term && *term &&
               strcmp(term, "dumb") != 0;
}

static bool same_terminal(int a, int b) {
        struct stat sa, sb;

        return isatty(a) && isatty(b) && fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && S_ISCHR(sa.st_mode) &&
               S_ISCHR(sb.st_mode) && sa.st_rdev == sb.st_rdev;
}

/* The signals whose disposition is SIG_IGN now: what ringmaster's parent left ignored. */
static void inherited_ignored(sigset_t *ret) {
        sigemptyset(ret);
        for (int sig = 1; sig < NSIG; sig++) {
                struct sigaction sa;

                if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
                        sigaddset(ret, sig);
        }
}

/*
 * --stdin and --foreground: ringmaster's stdin for the ranks that get it
 * (a CLOEXEC copy), and whether the one rank is the terminal's foreground job.
 */
static int setup_stdin(struct job_setup *setup, const struct run_options *o, int nproc, bool init) {
        bool want = o->foreground == FOREGROUND_ON;
        pid_t fg;

        setup->stdin_fd = -1;
        setup->tty_fd = -1;
        if (o->stdin_mode != STDIN_NONE) {
                setup->stdin_fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
                if (setup->stdin_fd < 0 && errno != EBADF)
                        return log_error_errno(-errno, "cannot duplicate stdin for the ranks");
        }
        if (o->foreground == FOREGROUND_AUTO)
                want = init && nproc == 1 && setup->stdin_fd >= 0 && isatty(STDIN_FILENO);
        if (!want)
                return 0;
        if (nproc != 1) {
                log_error("--foreground on: %d ranks; one rank at most can be the terminal's job (give -n 1)", nproc);
                return -EINVAL;
        }
        if (setup->stdin_fd < 0 || !isatty(STDIN_FILENO)) {
                log_error("--foreground on: %s", o->stdin_mode == STDIN_NONE ? "--stdin none gives the rank no terminal"
                                                                               : "stdin is not a terminal");
                return -EINVAL;
        }
        /* Job control needs the terminal to be ours (our session's) and us in its foreground. */
        fg = tcgetpgrp(STDIN_FILENO);
        if (fg < 0 || fg != getpgrp()) {
                if (o->foreground == FOREGROUND_AUTO) {
                        log_info("stdin is a terminal, but %s: the rank does not get it as its foreground job",
                                 fg < 0 ? "not ringmaster's controlling terminal" : "ringmaster runs in its background");
                        return 0;
                }
                log_error("--foreground on: %s", fg < 0 ? "stdin is not ringmaster's controlling terminal"
                                                        : "ringmaster is not in the terminal's foreground (started with &?)");
                return -EINVAL;
        }
        /* tcsetpgrp() from the background, and writing there with TOSTOP, must not stop ringmaster. */
        (void) signal(SIGTTOU, SIG_IGN);
        setup->foreground = true;
        setup->tty_fd = setup->stdin_fd;
        log_info("rank 0 runs as the terminal's foreground job; its output is not captured");
        return 0;
}

int run_main(int argc, char **argv) {
        struct run_options o;
        sigset_t blocked, original;
        sd_event *event = NULL;
        sigset_t ignored, forwarded;
        struct sink *out = NULL, *err = NULL;
        struct job *job = NULL;
        struct run_model *run = NULL;
        struct job_setup *setup = NULL;
        struct job_watchers watchers = {};
        struct rdzv_result rdzv = {};
        bool restart = false;
        int run_restart_count = 0;
        struct init_forwarder *forwarder = NULL;
        bool init, table, loop_ran = false;
        int status = EXIT_RM_INTERNAL, r;

        r = run_options_parse(argc, argv, &o);
        if (r <= 0) {
                run_options_done(&o);
                return r == 0 ? 0 : EXIT_RM_USAGE;
        }
        log_set_max_level(o.log_level);

        /* What ringmaster's parent ignored (nohup's SIGHUP), before anything here changes it: the ranks' too. */
        inherited_ignored(&ignored);
        /* Signals arrive through sd-event's signalfd: block them before anything else. */
        sigemptyset(&blocked);
        sigaddset(&blocked, SIGCHLD);
        for (size_t i = 0; i < ELEMENTSOF(job_stop_signals); i++)
                if (sigismember(&ignored, job_stop_signals[i]) != 1)
                        sigaddset(&blocked, job_stop_signals[i]);
        if (o.diagnose_signal > 0)
                sigaddset(&blocked, o.diagnose_signal);   /* diagnose every rank (diagnose.c) */
        /* A container's init (PID 1, --init) forwards more of them to the ranks. */
        init = init_wanted(&o);
        sigemptyset(&forwarded);
        if (init)
                init_forwarded_signals(&o, &ignored, &forwarded);
        for (int sig = 1; sig < NSIG; sig++)
                if (sigismember(&forwarded, sig) == 1)
                        sigaddset(&blocked, sig);
        if (sigprocmask(SIG_BLOCK, &blocked, &original) < 0) {
                log_error_errno(-errno, "cannot block signals");
                goto finish;
        }
        /* A reader that went away is an EPIPE to handle, not a death (the ranks get SIGPIPE back). */
        (void) signal(SIGPIPE, SIG_IGN);

        r = sd_event_new(&event);
        if (r < 0) {
                log_error_errno(r, "cannot create the event loop");
                goto finish;
        }
        if (sink_new(event, STDOUT_FILENO, o.output_buffer, &out) < 0 ||
            sink_new(event, STDERR_FILENO, o.output_buffer, &err) < 0) {
                log_error("cannot set up output");
                goto finish;
        }
        log_set_sink(err);
        /* Ours, read before any worker's environment is made (theirs is the run's own socket). */
        r = sdnotify_new(event, &watchers.sdnotify);
        if (r < 0)
                log_warning_errno(r, "cannot set up systemd notifications");

        r = job_new(event, &o, &job);
        if (r < 0)
                goto finish;
        run = job_run(job);
        /* A restart across nodes is this program again (run-nodes.h): its attempt's number. */
        run->restart_count = run_nodes_attempt();
        setup = job_setup(job);
        setup->child_sigmask = original;
        setup->child_ignored = ignored;
        raise_fd_limit(setup);
        run->init = init;
        setup->changed = on_job_changed;
        setup->changed_userdata = &watchers;

        r = setup_run_dir(run, &o);
        if (r < 0) {
                status = setup_exit_status(r);
                goto finish;
        }
        /* Before the subreaper: the watcher it may start must not be re-parented to us (contain.h). */
        r = setup_containment(run, setup, &o);
        if (r < 0) {
                status = EXIT_RM_USAGE;
                goto finish;
        }
        /* Orphaned descendants come to us, not to PID 1: we reap them and kill leftovers. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                log_warning_errno(-errno, "cannot become a child subreaper; orphans of workers will escape");
        r = setup_gpus(run, setup, &o);
        if (r < 0) {
                status = setup_exit_status(r);
                goto finish;
        }
        r = setup_placement(run, &o, &rdzv);
        if (r < 0) {
                status = setup_exit_status(r);
                goto finish;
        }
        if (check_fd_limit(&o, run->nproc) < 0) {
                status = EXIT_RM_USAGE;
                goto finish;
        }
        r = setup_stdin(setup, &o, run->nproc, init);
        if (r < 0) {
                status = setup_exit_status(r);
                goto finish;
        }
        r = setup_log_dir(run, &o);
        if (r < 0) {
                if (r == -EPERM)
                        status = EXIT_RM_USAGE;
                goto finish;
        }
        if (check_report_dir(&o) < 0) {
                status = EXIT_RM_USAGE;
                goto finish;
        }
        r = spawn_command_candidates(o.command[0], &setup->exec_paths);
        if (r < 0)
                goto finish;
        setup_capture(setup, run->run_id, &o, out, err);
        /* The terminal is the foreground rank's: no table on it. */
        table = want_status_table(&o) && !setup->foreground;
        /* The table is erased before each line to the terminal: stdout's lines must queue with stderr's. */
        if (table && setup->capture.sinks[STREAM_STDOUT] && same_terminal(STDOUT_FILENO, STDERR_FILENO))
                setup->capture.sinks[STREAM_STDOUT] = err;
        r = live_status_new(event, run, table, err, STDERR_FILENO, out, &watchers.status);
        if (r < 0)
                goto finish;
        if (init) {
                r = init_forwarder_new(event, &forwarded, forward_signal, job, &forwarder);
                if (r < 0) {
                        log_error_errno(r, "cannot watch the signals an init forwards");
                        goto finish;
                }
                log_info("acting as %s: reaping every zombie, forwarding signals to the ranks",
                         getpid() == 1 ? "PID 1" : "an init (--init)");
        }

        /* Segments of earlier runs whose supervisor died (SIGKILL, OOM) would hold /dev/shm forever. */
        r = shmring_cleanup_stale(NULL);
        if (r > 0) {
                run->stale_segments_removed = r;
                log_notice("removed %d stale shared-memory segment%s of dead runs from /dev/shm", r, r == 1 ? "" : "s");
        } else if (r < 0)
                log_warning_errno(r, "cannot look for stale shared-memory segments");

        /* What `ringmaster check` checks, before anything starts: a failure is the user's to fix, with the fix. */
        if (o.preflight) {
                r = preflight_run(&o, run->nproc, &setup->child_sigmask);
                if (r != 0) {
                        status = r == -EINVAL ? EXIT_RM_USAGE : EXIT_RM_INTERNAL;
                        goto finish;
                }
        }

        log_info("run %s: %d rank%s of %s; run directory %s", run->run_id, run->nproc, run->nproc == 1 ? "" : "s",
                 o.command[0], run->run_dir->path);

        r = run_nodes_start(event, job, &o, &rdzv, &watchers.nodes);
        if (r < 0) {
                status = setup_exit_status(r);
                goto finish;
        }
        r = job_start(job);
        if (r < 0)
                goto finish;
        r = sd_event_loop(event);
        if (r < 0) {
                log_error_errno(r, "the event loop failed");
                run->internal_error = r;
        }
        loop_ran = true;
        live_status_stop(watchers.status);
        /* The ranks and orphans are reaped: whatever is left in the job's cgroup, nobody saw. */
        run->containment_leftovers = MAX(contain_kill(setup->contain), 0);
        if (run->containment_leftovers > 0)
                log_notice("killed %d leftover process%s of the job (its cgroup)", run->containment_leftovers,
                           run->containment_leftovers == 1 ? "" : "es");

        status = run_exit_status(run);
        if (status != 0)
                report_print_text(run);
        else
                report_print_success(run);
        if (o.report_path)
                (void) report_write_json(run, o.report_path, out, err);

        restart = run_nodes_restart_wanted(run, &o, &rdzv, status);
        run_restart_count = run->restart_count;

finish:
        /* The other nodes hear how this one ended ("done" or "failed"); the lease goes. */
        watchers.nodes = run_nodes_stop(watchers.nodes, status);
        rdzv_result_done(&rdzv, true);  /* its lease, unless the cluster took it */
        /* The service manager's last word: the outcome, ERRNO= on failure. */
        if (!restart)
                sdnotify_finish(watchers.sdnotify, loop_ran ? run : NULL, status, r < 0 ? -r : 0);
        live_status_stop(watchers.status);
        /* Every path: the segment unlinked, the run directory removed, the job's cgroup emptied and removed. */
        job_cleanup(job);
        if (setup)
                setup->contain = contain_free(setup->contain);
        log_set_sink(NULL);
        (void) sink_flush(out, FINAL_FLUSH_USEC);
        (void) sink_flush(err, FINAL_FLUSH_USEC);
        watchers.status = live_status_free(watchers.status);
        forwarder = init_forwarder_free(forwarder);
        job = job_free(job);
        watchers.sdnotify = sdnotify_free(watchers.sdnotify);
        out = sink_free(out);
        err = sink_free(err);
        event = sd_event_unref(event);
        if (restart) {
                /* The next attempt starts as this one did: the parent's signal mask and SIGPIPE. */
                uint64_t delay = o.restart_delay_usec;
                int attempt = run_restart_count + 1;

                for (int i = 0; i < run_restart_count && delay < o.restart_delay_max_usec; i++)
                        delay *= 2;
                delay = MIN(delay, o.restart_delay_max_usec);
                if (sigismember(&ignored, SIGPIPE) != 1)
                        (void) signal(SIGPIPE, SIG_DFL);
                (void) sigprocmask(SIG_SETMASK, &original, NULL);
                r = run_nodes_reexec(argv, attempt, delay);
                fprintf(stderr, "ringmaster: cannot execute itself again for the restart: %s\n", strerror(-r));
                status = EXIT_RM_INTERNAL;
        }
        run_options_done(&o);
        return status;
}

/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "environ.h"
#include "job.h"
#include "json.h"
#include "log.h"
#include "node-view.h"
#include "options.h"
#include "parse-util.h"
#include "placement.h"
#include "python-hooks.h"
#include "rendezvous.h"
#include "run-model.h"
#include "run-nodes.h"
#include "tail.h"
#include "util.h"

struct run_nodes {
        struct job *job;
        struct run_model *run;
        const struct run_options *options;
        struct cluster *cluster;
        sd_event_source *io;
        sd_event_source *straggler_timer;       /* node 0 */
        sd_event_source *join_timer;            /* node 0 */
        struct node_view *view;                 /* node 0 */
        char ***entered;                        /* per local rank: the phases it entered (strv) */
        char *published;                        /* the last progress record sent */
        bool reported;                          /* this node's failure went to the store */
        bool running_said;
        int attempt;                            /* restart_count seen */
};

/* The job failed elsewhere (or the view says so): record it and stop this node's ranks. */
static void fail_here(struct run_nodes *n, int node, int rank, const char *host, const char *cause, bool deadline) {
        struct run_model *run = n->run;

        if (run->node_failure.set || run->first_failure >= 0 || run->deadline.kind != DEADLINE_NONE ||
            run->state == JOB_DONE)
                return;
        run->node_failure = (struct node_failure) {
                .set = true, .node = node, .rank = rank, .host = host ? strdup(host) : NULL,
                .cause = cause ? strdup(cause) : NULL, .deadline = deadline,
        };
        log_error("the job failed on node %d (%s): %s", node, host ? host : "?", cause ? cause : "no cause given");
        job_node_failed(n->job);
}

static void report_failure(struct run_nodes *n, int rank, const char *cause) {
        bool first = false;
        int r;

        if (n->reported)
                return;
        n->reported = true;
        r = cluster_report_failure(n->cluster, rank, cause, &first);
        if (r < 0)
                log_warning_errno(r, "cannot record the failure in the store; the other nodes learn of it when this "
                                     "node's lease ends");
        else if (!first)
                log_info("another node had recorded the job's failure first");
}

static void arm_straggler(struct run_nodes *n) {
        uint64_t next;

        if (!n->view || !n->straggler_timer)
                return;
        next = node_view_next_deadline(n->view, n->options->straggler_timeout_usec);
        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(n->straggler_timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(n->straggler_timer, next);
        (void) sd_event_source_set_enabled(n->straggler_timer, SD_EVENT_ONESHOT);
}

static int on_straggler_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct run_nodes *n = userdata;
        struct node_straggler st = {};

        (void) s;
        if (node_view_find_straggler(n->view, MAX(usec, now_usec()), n->options->straggler_timeout_usec, &st) <= 0) {
                arm_straggler(n);
                return 0;
        }
        log_error("straggler across nodes (--straggler-timeout): %s", st.message);
        report_failure(n, st.late[0], st.message);
        fail_here(n, st.late[0] / n->run->nproc, st.late[0], NULL, st.message, true);
        node_straggler_done(&st);
        return 0;
}

static int on_join_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        struct run_nodes *n = userdata;
        char cause[256];

        (void) s, (void) usec;
        if (cluster_nodes_present(n->cluster) >= n->run->nnodes)
                return 0;
        snprintf(cause, sizeof(cause), "only %d of %d nodes registered within --join-timeout %.0f s",
                 cluster_nodes_present(n->cluster), n->run->nnodes, (double) n->options->join_timeout_usec / 1e6);
        report_failure(n, -1, cause);
        fail_here(n, n->run->node_rank, -1, n->run->host, cause, false);
        return 0;
}

static int on_cluster(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct run_nodes *n = userdata;
        struct cluster_event e;

        (void) s, (void) fd, (void) revents;
        while (cluster_pop(n->cluster, &e) > 0) {
                switch (e.type) {
                case CLUSTER_NODE_JOINED:
                        log_info("node %d (%s) joined", e.node, e.host ? e.host : "?");
                        break;
                case CLUSTER_NODE_STATE:
                        log_debug("node %d (%s) is %s", e.node, e.host ? e.host : "?", e.state);
                        break;
                case CLUSTER_PHASES:
                        if (n->view && node_view_update(n->view, e.node, e.json, strlen(e.json), e.received_usec) < 0)
                                log_warning("node %d published progress ringmaster cannot read", e.node);
                        arm_straggler(n);
                        break;
                case CLUSTER_FAILURE:
                        if (e.node != n->run->node_rank || !n->reported)
                                fail_here(n, e.node, e.rank, e.host, e.cause, false);
                        break;
                case CLUSTER_NODE_LOST:
                        log_error("node %d lost: %s", e.node, e.cause);
                        report_failure(n, -1, e.cause);
                        fail_here(n, e.node, -1, e.host, e.cause, false);
                        break;
                case CLUSTER_STORE_LOST:
                        log_error("the store: %s", e.cause);
                        fail_here(n, n->run->node_rank, -1, n->run->host, e.cause, false);
                        break;
                }
                cluster_event_done(&e);
        }
        return 0;
}

/*
 * The store's credentials, read once a process (the rendezvous and the cluster share them, the rendezvous'
 * result keeps a pointer): the password from --store-password-file's first line, else from
 * $RINGMASTER_STORE_PASSWORD, which is taken out of the environment (the ranks never see it) and put back
 * only for a restart's execve() (run_nodes_reexec()).
 */
static struct etcd_credentials store_credentials;
static char *store_password;
static bool store_password_from_env;

static int credentials_of(const struct run_options *o, const struct etcd_credentials **ret) {
        static bool done;
        const char *env = getenv(STORE_PASSWORD_ENV);

        if (done) {
                *ret = &store_credentials;
                return 0;
        }
        if (o->store_password_file) {
                FILE *f = fopen(o->store_password_file, "re");
                size_t size = 0;
                ssize_t n = f ? getline(&store_password, &size, f) : -1;
                int e = errno;

                if (f)
                        fclose(f);
                if (n < 0) {
                        errno = e;
                        log_error("--store-password-file %s: %s: give a file whose first line is the password of "
                                  "etcd's user %s", o->store_password_file, f ? "empty" : strerror(errno),
                                  o->store_user);
                        return -EINVAL;
                }
                store_password[strcspn(store_password, "\r\n")] = 0;
        } else if (o->store_user && env) {
                store_password = strdup(env);
                if (!store_password)
                        return -ENOMEM;
                store_password_from_env = true;
        } else if (o->store_user) {
                log_error("--store-user %s: no password: give --store-password-file FILE (its first line), or set "
                          "$" STORE_PASSWORD_ENV, o->store_user);
                return -EINVAL;
        }
        (void) unsetenv(STORE_PASSWORD_ENV);    /* not the ranks' */
        store_credentials = (struct etcd_credentials) {
                .cacert = o->store_cacert, .cert = o->store_cert, .key = o->store_key, .user = o->store_user,
                .password = store_password,
        };
        done = true;
        *ret = &store_credentials;
        return 0;
}

int run_nodes_rendezvous(const struct run_model *run, const struct run_options *o, struct placement *p,
                         struct rdzv_result *rdzv) {
        _cleanup_free_ char *error = NULL;
        sigset_t stop;
        struct rdzv_config cfg = {
                .endpoint = o->store ? o->store : o->rendezvous, .run_id = o->run_id ? o->run_id : "none", .min_nodes = p->min_nnodes, .max_nodes = p->nnodes,
                .host = o->node_addr ? o->node_addr : run->host, .addr = o->node_addr,
                .join_timeout_usec = o->join_timeout_usec, .last_call_usec = o->last_call_usec, .stop_signals = &stop,
        };
        int r;

        if (o->store) {
                r = credentials_of(o, &cfg.credentials);
                if (r < 0)
                        return r;
                /* No MASTER_PORT given: each joiner offers one free here, and node 0's is the job's. */
                if (p->master_port == 0 && find_free_port(&cfg.port) < 0)
                        cfg.port = 0;
        }
        if (!o->run_id && o->store) {
                log_error("--store without --node-rank numbers the nodes as they join, and needs --run-id, the same on "
                          "every node: it names the job in the store");
                return -EINVAL;
        }
        if (o->store && o->rendezvous) {
                log_error("--store etcd://%s and --rendezvous c10d://%s: give one (etcd also keeps the cross-node "
                          "view)", o->store, o->rendezvous);
                return -EINVAL;
        }
        sigemptyset(&stop);
        for (size_t i = 0; i < ELEMENTSOF(job_stop_signals); i++)
                sigaddset(&stop, job_stop_signals[i]);
        if (p->min_nnodes < p->nnodes)
                log_info("joining run %s at %s %s: %d to %d nodes (the last call %.0f s after the %d-th, the join "
                         "timeout %.0f s)", o->run_id, o->store ? "etcd" : "c10d", cfg.endpoint, p->min_nnodes, p->nnodes,
                         (double) o->last_call_usec / USEC_PER_SEC, p->min_nnodes,
                         (double) o->join_timeout_usec / USEC_PER_SEC);
        else
                log_info("joining run %s at %s %s: %d nodes (the join timeout %.0f s)", o->run_id,
                         o->store ? "etcd" : "c10d", cfg.endpoint, p->nnodes, (double) o->join_timeout_usec / USEC_PER_SEC);
        if (o->store)
                r = rdzv_join(&cfg, rdzv, &error);
        else {
                _cleanup_free_ char *hook = NULL, *package = NULL, *pythonpath = NULL;
                const char *python = getenv("PYTHON_EXEC");

                /* ringmaster's own package (the helper), before what PYTHONPATH already holds (torch). */
                if (python_hook_dirs(&hook, &package) == 0 && package &&
                    python_hooks_pythonpath(package, NULL, getenv("PYTHONPATH"), &pythonpath) < 0)
                        return -ENOMEM;
                r = rdzv_c10d_join(&cfg, python && *python ? python : "python3", pythonpath, rdzv, &error);
        }
        if (r < 0) {
                log_error("%s", error ? error : strerror(-r));
                return r == -ENOMEM ? r : -EINVAL;
        }
        p->node_rank = rdzv->node_rank;
        p->nnodes = p->min_nnodes = rdzv->nnodes;
        if (!p->master_addr) {
                p->master_addr = strdup(rdzv->master_addr);
                if (!p->master_addr)
                        return -ENOMEM;
        }
        if (p->nnodes > 1 && p->master_port == 0)
                p->master_port = rdzv->master_port > 0 ? rdzv->master_port : PLACEMENT_DEFAULT_PORT;
        log_info("the rendezvous (round %d) made this node %d of %d; node 0 is at %s, MASTER_PORT %d", rdzv->round,
                 rdzv->node_rank, rdzv->nnodes, rdzv->master_addr, p->master_port);
        return 0;
}

int run_nodes_start(sd_event *event, struct job *job, const struct run_options *o, struct rdzv_result *rdzv,
                    struct run_nodes **ret) {
        struct run_model *run = job_run(job);
        struct run_nodes *n;
        _cleanup_free_ char *error = NULL;
        struct cluster_config cfg;
        const struct etcd_credentials *credentials = NULL;
        int r;

        *ret = NULL;
        if (!o->store)
                return 0;
        r = credentials_of(o, &credentials);
        if (r < 0)
                return r;
        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->job = job;
        n->run = run;
        n->options = o;
        n->entered = calloc((size_t) run->nproc, sizeof(char **));
        if (!n->entered) {
                run_nodes_stop(n, 1);
                return -ENOMEM;
        }
        cfg = (struct cluster_config) {
                .endpoint = o->store, .credentials = credentials, .run_id = run->run_id, .node_rank = run->node_rank, .nnodes = run->nnodes,
                .host = o->node_addr ? o->node_addr : run->host, .prefix = rdzv->prefix, .lease = rdzv->lease,
        };
        r = cluster_start(&cfg, &n->cluster, &error);
        rdzv->lease = 0;        /* the cluster's now: renewed, and revoked by cluster_stop() (also on failure) */
        if (r < 0) {
                log_error("--store etcd://%s: %s", o->store, error ? error : strerror(-r));
                run_nodes_stop(n, 1);
                return r == -EEXIST ? -EINVAL : r == -ENOMEM ? r : -EINVAL;
        }
        r = sd_event_add_io(event, &n->io, cluster_fd(n->cluster), EPOLLIN, on_cluster, n);
        if (r < 0)
                goto fail;
        if (run->node_rank == 0) {
                n->view = node_view_new(run->nnodes, run->nproc);
                if (!n->view) {
                        r = -ENOMEM;
                        goto fail;
                }
                r = sd_event_add_time(event, &n->straggler_timer, CLOCK_MONOTONIC, UINT64_MAX, 0, on_straggler_timer,
                                      n);
                if (r < 0)
                        goto fail;
                (void) sd_event_source_set_enabled(n->straggler_timer, SD_EVENT_OFF);
                if (o->join_timeout_usec > 0) {
                        r = sd_event_add_time_relative(event, &n->join_timer, CLOCK_MONOTONIC, o->join_timeout_usec, 0,
                                                       on_join_timer, n);
                        if (r < 0)
                                goto fail;
                }
        }
        if (rdzv->prefix)
                log_info("node %d of %d registered in etcd at %s (run %s, round %d)", run->node_rank, run->nnodes,
                         o->store, run->run_id, rdzv->round);
        else
                log_info("node %d of %d registered in etcd at %s (run %s)", run->node_rank, run->nnodes, o->store,
                         run->run_id);
        *ret = n;
        return 0;
fail:
        log_error_errno(r, "cannot watch the store");
        run_nodes_stop(n, 1);
        return r;
}

/* The cause of this node's failure, for the other nodes: what ended the rank and its last words. */
static char *local_cause(const struct run_model *run, int *ret_rank) {
        const struct json_value *msg, *tb;
        _cleanup_strv_free_ char **tail = NULL;
        const struct rank *r;
        char *cause = NULL, what[96];
        const char *last = NULL;

        if (run->deadline.kind != DEADLINE_NONE) {
                *ret_rank = run->deadline.n_ranks > 0 ? run->rank_offset + run->deadline.ranks[0] : -1;
                return strdup(run->deadline.message ? run->deadline.message : "a deadline passed");
        }
        r = &run->ranks[run->first_failure];
        *ret_rank = run->rank_offset + r->index;
        if (r->state == RANK_SIGNALLED) {
                char name[16];
                snprintf(what, sizeof(what), "was killed by %s", signal_name(r->exit_signal, name, sizeof(name)));
        } else
                snprintf(what, sizeof(what), "exited with status %d", r->exit_code);
        msg = rank_error_file_message(r, &tb);
        if (msg)
                last = msg->text;
        else if (r->streams_set_up && tail_lines(&r->streams[STREAM_STDERR].tail, 40, &tail) >= 0)
                for (size_t i = strv_length(tail); i-- > 0 && !last;)
                        if (tail[i][strspn(tail[i], " \t")])
                                last = tail[i];
        if (asprintf(&cause, "rank %d %s%s%s", *ret_rank, what, last ? ": " : "", last ? last : "") < 0)
                return NULL;
        return cause;
}

static void publish_progress(struct run_nodes *n, const struct run_model *run) {
        _cleanup_free_ bool *ready = calloc((size_t) run->nproc, sizeof(bool));
        _cleanup_free_ char *rec = NULL;

        if (!ready)
                return;
        for (int i = 0; i < run->nproc; i++) {
                const struct rank *r = &run->ranks[i];
                bool had = false;

                ready[i] = r->ready;
                if (!r->phase)
                        continue;
                for (size_t k = 0; n->entered[i] && n->entered[i][k]; k++)
                        had = had || strcmp(n->entered[i][k], r->phase) == 0;
                if (!had)
                        (void) strv_extend(&n->entered[i], r->phase);
        }
        if (node_view_record(run->node_rank, run->rank_offset, run->nproc, (char *const *const *) n->entered, ready,
                             &rec) < 0)
                return;
        if (n->published && strcmp(n->published, rec) == 0)
                return;
        if (cluster_set_phases(n->cluster, rec) < 0)
                return;
        free(n->published);
        n->published = TAKE_PTR(rec);
}

void run_nodes_changed(struct run_nodes *n, const struct run_model *run) {
        if (!n || !run->ranks)
                return;
        if (run->restart_count != n->attempt) {
                n->attempt = run->restart_count;
                for (int i = 0; i < run->nproc; i++)
                        n->entered[i] = strv_free(n->entered[i]);
        }
        if (!n->reported && !run->node_failure.set && (run->first_failure >= 0 || run->deadline.kind != DEADLINE_NONE)) {
                int rank = -1;
                _cleanup_free_ char *cause = local_cause(run, &rank);

                log_notice("recording the job's failure for every node: %s", cause ? cause : "?");
                report_failure(n, rank, cause ? cause : "a rank failed");
                (void) cluster_set_state(n->cluster, "failed");
                return;
        }
        if (!n->running_said && run->state == JOB_RUNNING) {
                n->running_said = true;
                (void) cluster_set_state(n->cluster, "running");
        }
        if (run->state == JOB_RUNNING)
                publish_progress(n, run);
}

struct run_nodes *run_nodes_stop(struct run_nodes *n, int status) {
        if (!n)
                return NULL;
        sd_event_source_disable_unref(n->io);
        sd_event_source_disable_unref(n->straggler_timer);
        sd_event_source_disable_unref(n->join_timer);
        n->cluster = cluster_stop(n->cluster, status == 0 ? "done" : "failed");
        node_view_free(n->view);
        for (int i = 0; n->entered && n->run && i < n->run->nproc; i++)
                strv_free(n->entered[i]);
        free(n->entered);
        free(n->published);
        free(n);
        return NULL;
}

#define NODE_RESTART_ENV "RINGMASTER_NODE_RESTART"

int run_nodes_attempt(void) {
        const char *v = getenv(NODE_RESTART_ENV);
        long long n = 0;

        if (v && parse_int_range(v, 0, 1000000, &n) < 0)
                n = 0;
        (void) unsetenv(NODE_RESTART_ENV);      /* not the ranks' */
        return (int) n;
}

bool run_nodes_restart_wanted(const struct run_model *run, const struct run_options *o, const struct rdzv_result *rdzv,
                              int status) {
        bool failed = run->first_failure >= 0 || run->deadline.kind != DEADLINE_NONE || run->node_failure.set;

        if (!run->restart_across_nodes || status == 0 || !failed || run->stop_signal != 0 || run->internal_error != 0 ||
            run->gave_up)
                return false;
        if (run->restart_count < o->max_restarts) {
                log_notice("the job failed in round %d of the rendezvous: every node stops and joins the next round "
                           "(restart %d of %d across nodes)", rdzv->round, run->restart_count + 1, o->max_restarts);
                return true;
        }
        log_error("the job failed in round %d of the rendezvous, and its %d restart%s across nodes (--max-restarts) "
                  "%s spent", rdzv->round, o->max_restarts, o->max_restarts == 1 ? "" : "s",
                  o->max_restarts == 1 ? "is" : "are");
        return false;
}

int run_nodes_reexec(char **argv, int attempt, uint64_t delay_usec) {
        _cleanup_strv_free_ char **args = NULL;
        struct timespec ts = { (time_t) (delay_usec / USEC_PER_SEC), (long) (delay_usec % USEC_PER_SEC * 1000) };
        char n[16];

        if (strv_extend(&args, "ringmaster") < 0)
                return -ENOMEM;
        for (char **a = argv; *a; a++)
                if (strv_extend(&args, *a) < 0)
                        return -ENOMEM;
        snprintf(n, sizeof(n), "%d", attempt);
        if (setenv(NODE_RESTART_ENV, n, 1) < 0)
                return -errno;
        /* The next attempt reads the password where this one did. */
        if (store_password_from_env && setenv(STORE_PASSWORD_ENV, store_password, 1) < 0)
                return -errno;
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
        /* A subreaper stays one across execve(): the next attempt's watcher (contain.h) must not come back to it. */
        (void) prctl(PR_SET_CHILD_SUBREAPER, 0);
        execv("/proc/self/exe", args);
        return -errno;
}

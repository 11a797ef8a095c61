/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cluster.h"
#include "etcd.h"
#include "json.h"
#include "parse-util.h"
#include "util.h"

struct cluster {
        char *endpoint, *run_id, *host, *prefix, *watch_prefix;
        bool leader;
        int node_rank, nnodes, ttl_s;
        long timeout_ms;

        struct etcd_client *writer_client;      /* the writer thread's */
        struct etcd_client *watch_client;       /* the watch thread's */
        struct etcd_client *sync_client;        /* the caller's (cluster_report_failure) */
        int64_t lease;

        pthread_t writer, watcher;
        bool writer_started, watcher_started;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool stopping;
        atomic_bool stop_watch;
        char *pending_state, *pending_phases;
        bool store_lost;                        /* STORE_LOST sent */

        /* What the watch has seen (the watch thread's; the count under lock). */
        int64_t revision;
        bool *present;
        char **last_state;
        int n_present;

        struct cluster_event *events;
        size_t n_events, size_events;
        int pipe[2];
};

void cluster_event_done(struct cluster_event *e) {
        free(e->host);
        free(e->state);
        free(e->cause);
        free(e->json);
        *e = (struct cluster_event) {};
}

/* ------------------------------------------------------------ events */

static void push_event(struct cluster *c, struct cluster_event *e) {
        e->received_usec = now_usec();
        pthread_mutex_lock(&c->lock);
        if (c->n_events == c->size_events) {
                size_t size = c->size_events ? 2 * c->size_events : 16;
                struct cluster_event *n = realloc(c->events, size * sizeof(*n));
                if (!n) {
                        pthread_mutex_unlock(&c->lock);
                        cluster_event_done(e);
                        return;
                }
                c->events = n;
                c->size_events = size;
        }
        c->events[c->n_events++] = *e;
        *e = (struct cluster_event) {};
        pthread_mutex_unlock(&c->lock);
        (void) !write(c->pipe[1], "x", 1);
}

static void store_lost(struct cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void store_lost(struct cluster *c, const char *fmt, ...) {
        struct cluster_event e = { .type = CLUSTER_STORE_LOST, .node = c->node_rank, .rank = -1 };
        va_list ap;
        bool first;

        pthread_mutex_lock(&c->lock);
        first = !c->store_lost && !c->stopping;
        c->store_lost = true;
        pthread_mutex_unlock(&c->lock);
        if (!first)
                return;
        va_start(ap, fmt);
        if (vasprintf(&e.cause, fmt, ap) < 0)
                e.cause = NULL;
        va_end(ap);
        push_event(c, &e);
}

int cluster_fd(const struct cluster *c) {
        return c->pipe[0];
}

int cluster_pop(struct cluster *c, struct cluster_event *ret) {
        char buf[64];
        int r = 0;

        (void) !read(c->pipe[0], buf, sizeof(buf));
        pthread_mutex_lock(&c->lock);
        if (c->n_events > 0) {
                *ret = c->events[0];
                memmove(c->events, c->events + 1, (c->n_events - 1) * sizeof(*c->events));
                c->n_events--;
                r = 1;
        }
        if (c->n_events > 0)
                (void) !write(c->pipe[1], "x", 1);
        pthread_mutex_unlock(&c->lock);
        return r;
}

int cluster_nodes_present(struct cluster *c) {
        int n;

        pthread_mutex_lock(&c->lock);
        n = c->n_present;
        pthread_mutex_unlock(&c->lock);
        return n;
}

/* ------------------------------------------------------------ records */

static char *string_member(const struct json_value *v, const char *key) {
        const struct json_value *m = v ? json_object_get(v, key) : NULL;
        return m && m->type == JSON_STRING ? strdup(m->text) : NULL;
}

static long long int_member(const struct json_value *v, const char *key, long long otherwise) {
        const struct json_value *m = v ? json_object_get(v, key) : NULL;
        long long n;

        if (!m || m->type != JSON_NUMBER || parse_int_range(m->text, -(1ll << 40), 1ll << 40, &n) < 0)
                return otherwise;
        return n;
}

/* A key under the job's prefix, put or deleted (the watch thread, or cluster_start before it runs). */
static void on_key(struct cluster *c, bool put, const char *key, const char *value, size_t len) {
        const char *k = key + strlen(c->prefix);
        struct json_value *v = NULL;
        long long node;

        if (put && json_parse(value, len, &v) < 0)
                v = NULL;
        if ((strcmp(k, "job/leader") == 0 && (node = 0, true)) ||
            (startswith(k, "nodes/") && parse_int_range(k + 6, 1, c->nnodes - 1, &node) == 0)) {
                if (put) {
                        _cleanup_free_ char *state = string_member(v, "state");
                        if (!c->present[node]) {
                                struct cluster_event e = { .type = CLUSTER_NODE_JOINED, .node = (int) node,
                                                           .rank = -1, .host = string_member(v, "host") };
                                pthread_mutex_lock(&c->lock);
                                c->present[node] = true;
                                c->n_present++;
                                pthread_mutex_unlock(&c->lock);
                                push_event(c, &e);
                        }
                        if (state && (!c->last_state[node] || strcmp(state, c->last_state[node]) != 0)) {
                                struct cluster_event e = { .type = CLUSTER_NODE_STATE, .node = (int) node, .rank = -1,
                                                           .host = string_member(v, "host"), .state = strdup(state) };
                                free(c->last_state[node]);
                                c->last_state[node] = TAKE_PTR(state);
                                push_event(c, &e);
                        }
                } else if (c->present[node]) {
                        /* "done" and "failed" are said before the lease is revoked: that node left, it was not lost. */
                        bool done = c->last_state[node] && (strcmp(c->last_state[node], "done") == 0 ||
                                                            strcmp(c->last_state[node], "failed") == 0);
                        pthread_mutex_lock(&c->lock);
                        c->present[node] = false;
                        c->n_present--;
                        pthread_mutex_unlock(&c->lock);
                        if (!done) {
                                struct cluster_event e = { .type = CLUSTER_NODE_LOST, .node = (int) node, .rank = -1 };
                                if (asprintf(&e.cause, "node %lld's ringmaster stopped renewing its lease (state %s): "
                                                       "the node, its ringmaster or its network is down",
                                             node, c->last_state[node] ? c->last_state[node] : "unknown") < 0)
                                        e.cause = NULL;
                                push_event(c, &e);
                        }
                }
        } else if (startswith(k, "phases/") && put && parse_int_range(k + 7, 0, c->nnodes - 1, &node) == 0) {
                struct cluster_event e = { .type = CLUSTER_PHASES, .node = (int) node, .rank = -1,
                                           .json = strndup(value, len) };
                push_event(c, &e);
        } else if (strcmp(k, "job/failure") == 0 && put) {
                struct cluster_event e = { .type = CLUSTER_FAILURE, .node = (int) int_member(v, "node", -1),
                                           .rank = (int) int_member(v, "rank", -1), .host = string_member(v, "host"),
                                           .cause = string_member(v, "cause") };
                push_event(c, &e);
        }
        json_value_free(v);
}

static int on_watch_event(const struct etcd_event *ev, int64_t revision, void *userdata) {
        struct cluster *c = userdata;

        on_key(c, ev->type == ETCD_PUT, ev->kv.key, ev->kv.value, ev->kv.len);
        if (revision > c->revision)
                c->revision = revision;
        return 0;
}

static int node_record(struct cluster *c, const char *state, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        struct json_writer w;

        if (!f)
                return -ENOMEM;
        json_writer_init(&w, f);
        json_begin_object(&w);
        json_key(&w, "node");
        json_int(&w, c->node_rank);
        json_key(&w, "host");
        json_string(&w, c->host);
        json_key(&w, "pid");
        json_int(&w, getpid());
        json_key(&w, "state");
        json_string(&w, state);
        json_end_object(&w);
        return memstream_finish(f, &buf, ret);
}

static char *key_of(struct cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *key_of(struct cluster *c, const char *fmt, ...) {
        char *suffix = NULL, *key = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&suffix, fmt, ap) < 0)
                suffix = NULL;
        va_end(ap);
        if (suffix && asprintf(&key, "%s%s", c->prefix, suffix) < 0)
                key = NULL;
        free(suffix);
        return key;
}

/* This node's record: the leader's under job/, which every node watches; the others' only the leader watches. */
static char *node_key(struct cluster *c) {
        return c->node_rank == 0 ? key_of(c, "job/leader") : key_of(c, "nodes/%d", c->node_rank);
}

/* ------------------------------------------------------------ threads */

static void *writer_thread(void *userdata) {
        struct cluster *c = userdata;
        uint64_t period = (uint64_t) c->ttl_s * USEC_PER_SEC / 3, next = now_usec() + period;
        uint64_t failing_since = 0;

        pthread_mutex_lock(&c->lock);
        while (!c->stopping) {
                char *state = NULL, *phases = NULL;
                uint64_t now = now_usec();
                int r = 0;

                if (!c->pending_state && !c->pending_phases && now < next) {
                        cond_wait_until(&c->cond, &c->lock, next);
                        continue;
                }
                state = TAKE_PTR(c->pending_state);
                phases = TAKE_PTR(c->pending_phases);
                pthread_mutex_unlock(&c->lock);

                if (state) {
                        _cleanup_free_ char *rec = NULL, *key = node_key(c);
                        r = node_record(c, state, &rec);
                        if (r == 0 && key)
                                r = etcd_put(c->writer_client, key, rec, strlen(rec), c->lease);
                }
                if (phases && r == 0) {
                        _cleanup_free_ char *key = key_of(c, "phases/%d", c->node_rank);
                        if (key)
                                r = etcd_put(c->writer_client, key, phases, strlen(phases), c->lease);
                }
                if (r == 0 && now_usec() >= next) {
                        r = etcd_lease_keepalive(c->writer_client, c->lease, NULL);
                        if (r == 0)
                                next = now_usec() + period;
                        else
                                next = now_usec() + period / 4;
                }
                if (r == -ENOENT)
                        store_lost(c, "this node's etcd lease expired (etcd did not hear from it for %d s): the "
                                      "other nodes take it for lost", c->ttl_s);
                else if (r < 0) {
                        if (!failing_since)
                                failing_since = now_usec();
                        if (now_usec() - failing_since > (uint64_t) c->ttl_s * USEC_PER_SEC)
                                store_lost(c, "cannot reach etcd for %d s: %s", c->ttl_s,
                                           etcd_last_error(c->writer_client));
                        /* Give the write back to the queue unless a newer one came. */
                        pthread_mutex_lock(&c->lock);
                        if (state && !c->pending_state)
                                c->pending_state = TAKE_PTR(state);
                        if (phases && !c->pending_phases)
                                c->pending_phases = TAKE_PTR(phases);
                        pthread_mutex_unlock(&c->lock);
                        struct timespec ts = { 0, 100 * 1000 * 1000 };
                        nanosleep(&ts, NULL);
                } else
                        failing_since = 0;
                free(state);
                free(phases);
                pthread_mutex_lock(&c->lock);
        }
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

static void *watch_thread(void *userdata) {
        struct cluster *c = userdata;
        uint64_t failing_since = 0;

        while (!atomic_load(&c->stop_watch)) {
                int r = etcd_watch_prefix(c->watch_client, c->watch_prefix, c->revision + 1, on_watch_event, NULL, c,
                                          &c->stop_watch);
                if (atomic_load(&c->stop_watch))
                        break;
                if (!failing_since)
                        failing_since = now_usec();
                if (now_usec() - failing_since > (uint64_t) c->ttl_s * USEC_PER_SEC)
                        store_lost(c, "the watch on etcd failed for %d s: %s (%s)", c->ttl_s,
                                   etcd_last_error(c->watch_client), strerror(-r));
                struct timespec ts = { 0, 200 * 1000 * 1000 };
                nanosleep(&ts, NULL);
                /* A watch that ran a while and then broke starts a fresh count. */
                if (r == -ECONNRESET && now_usec() - failing_since > 2 * USEC_PER_SEC)
                        failing_since = now_usec();
        }
        return NULL;
}

/* ------------------------------------------------------------ life */

int cluster_start(const struct cluster_config *cfg, struct cluster **ret, char **ret_error) {
        struct cluster *c;
        _cleanup_free_ char *rec = NULL, *key = NULL;
        struct etcd_kv *kvs = NULL;
        size_t n = 0;
        bool created = false;
        int r;

        if (!cfg->endpoint || !cfg->run_id || cfg->nnodes < 1 || cfg->node_rank < 0 || cfg->node_rank >= cfg->nnodes)
                return error_setf(ret_error, -EINVAL, "cluster: a bad configuration");
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->pipe[0] = c->pipe[1] = -EBADF;
        pthread_mutex_init(&c->lock, NULL);
        cond_init_monotonic(&c->cond);
        c->node_rank = cfg->node_rank;
        c->leader = cfg->node_rank == 0;
        c->nnodes = cfg->nnodes;
        c->ttl_s = cfg->lease_ttl_s > 0 ? cfg->lease_ttl_s : CLUSTER_DEFAULT_LEASE_TTL_S;
        c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 2000;
        c->endpoint = strdup(cfg->endpoint);
        c->run_id = strdup(cfg->run_id);
        c->host = strdup(cfg->host ? cfg->host : "");
        c->present = calloc((size_t) c->nnodes, sizeof(bool));
        c->last_state = calloc((size_t) c->nnodes, sizeof(char *));
        if (!c->endpoint || !c->run_id || !c->host || !c->present || !c->last_state ||
            (cfg->prefix ? !(c->prefix = strdup(cfg->prefix))
                         : asprintf(&c->prefix, "%s%s/", CLUSTER_KEY_ROOT, cfg->run_id) < 0) ||
            asprintf(&c->watch_prefix, "%s%s", c->prefix, c->leader ? "" : "job/") < 0) {
                r = -ENOMEM;
                goto fail;
        }
        if (pipe2(c->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
                r = -errno;
                goto fail;
        }
        r = etcd_client_new(c->endpoint, cfg->credentials, c->timeout_ms, &c->writer_client);
        if (r == 0)
                r = etcd_client_new(c->endpoint, cfg->credentials, c->timeout_ms, &c->watch_client);
        if (r == 0)
                r = etcd_client_new(c->endpoint, cfg->credentials, c->timeout_ms, &c->sync_client);
        if (r == -EOPNOTSUPP) {
                r = error_setf(ret_error, r, "--store: ringmaster was built without libcurl (configure --with-etcd)");
                goto fail;
        }
        if (r < 0)
                goto fail;

        if (cfg->lease) {
                /* The rendezvous' lease holds this node's place in its round: ours to renew and revoke now. */
                c->lease = cfg->lease;
                r = etcd_lease_keepalive(c->sync_client, c->lease, NULL);
                if (r == -ENOENT) {
                        r = error_setf(ret_error, -ETIME, "this node's etcd lease from the rendezvous ended before "
                                       "its ranks started (etcd did not hear from it for %d s)", c->ttl_s);
                        goto fail;
                }
        } else
                r = etcd_lease_grant(c->sync_client, c->ttl_s, &c->lease);
        if (r < 0) {
                r = error_setf(ret_error, r, "cannot reach etcd at %s: %s", c->endpoint, etcd_last_error(c->sync_client));
                goto fail;
        }
        key = node_key(c);
        if (!key || node_record(c, "joined", &rec) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        r = etcd_create(c->sync_client, key, rec, strlen(rec), c->lease, &created);
        if (r < 0) {
                r = error_setf(ret_error, r, "etcd at %s: %s", c->endpoint, etcd_last_error(c->sync_client));
                goto fail;
        }
        if (!created) {
                r = error_setf(ret_error, -EEXIST,
                         "node %d of run %s is already registered in etcd (%s): two ringmasters were given one "
                         "node rank, or an earlier run with this id is still there (its lease ends within %d s "
                         "of it stopping; else use a new --run-id)", c->node_rank, c->run_id, key, c->ttl_s);
                goto fail;
        }
        r = etcd_range_prefix(c->sync_client, c->watch_prefix, &kvs, &n, &c->revision);
        if (r < 0) {
                r = error_setf(ret_error, r, "etcd at %s: %s", c->endpoint, etcd_last_error(c->sync_client));
                goto fail;
        }
        for (size_t i = 0; i < n; i++)
                on_key(c, true, kvs[i].key, kvs[i].value, kvs[i].len);
        etcd_kvs_free(kvs, n);

        r = -pthread_create(&c->writer, NULL, writer_thread, c);
        if (r < 0)
                goto fail;
        c->writer_started = true;
        r = -pthread_create(&c->watcher, NULL, watch_thread, c);
        if (r < 0)
                goto fail;
        c->watcher_started = true;
        *ret = c;
        return 0;
fail:
        cluster_stop(c, NULL);
        return r;
}

/* Hands the writer thread a new value for *slot: the last one given before it writes wins. */
static int set_pending(struct cluster *c, char **slot, const char *value) {
        char *s = strdup(value);

        if (!s)
                return -ENOMEM;
        pthread_mutex_lock(&c->lock);
        free(*slot);
        *slot = s;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        return 0;
}

int cluster_set_state(struct cluster *c, const char *state) {
        return set_pending(c, &c->pending_state, state);
}

int cluster_set_phases(struct cluster *c, const char *json) {
        return set_pending(c, &c->pending_phases, json);
}

int cluster_report_failure(struct cluster *c, int rank, const char *cause, bool *ret_first) {
        _cleanup_free_ char *key = key_of(c, "job/failure");
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        struct json_writer w;
        bool created = false;
        int r;

        if (!f || !key) {
                if (f)
                        fclose(f);
                free(buf);
                return -ENOMEM;
        }
        json_writer_init(&w, f);
        json_begin_object(&w);
        json_key(&w, "node");
        json_int(&w, c->node_rank);
        json_key(&w, "host");
        json_string(&w, c->host);
        json_key(&w, "rank");
        json_int(&w, rank);
        json_key(&w, "cause");
        json_string(&w, cause);
        json_end_object(&w);
        if (memstream_finish(f, &buf, NULL) < 0)
                return -ENOMEM;
        r = etcd_create(c->sync_client, key, buf, size, 0, &created);
        free(buf);
        if (r < 0)
                return r;
        if (ret_first)
                *ret_first = created;
        return 0;
}

struct cluster *cluster_stop(struct cluster *c, const char *final_state) {
        if (!c)
                return NULL;
        pthread_mutex_lock(&c->lock);
        c->stopping = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        atomic_store(&c->stop_watch, true);
        if (c->writer_started)
                pthread_join(c->writer, NULL);
        /* The final state and the revocation are events on this node's own watch: it wakes and sees the flag. */
        if (c->lease && c->sync_client) {
                if (final_state) {
                        _cleanup_free_ char *rec = NULL, *key = node_key(c);
                        if (key && node_record(c, final_state, &rec) == 0)
                                (void) etcd_put(c->sync_client, key, rec, strlen(rec), c->lease);
                }
                (void) etcd_lease_revoke(c->sync_client, c->lease);
        }
        if (c->watcher_started) {
                etcd_client_wakeup(c->watch_client);
                pthread_join(c->watcher, NULL);
        }
        etcd_client_free(c->writer_client);
        etcd_client_free(c->watch_client);
        etcd_client_free(c->sync_client);
        for (size_t i = 0; i < c->n_events; i++)
                cluster_event_done(&c->events[i]);
        free(c->events);
        for (int i = 0; c->last_state && i < c->nnodes; i++)
                free(c->last_state[i]);
        free(c->last_state);
        free(c->present);
        free(c->pending_state);
        free(c->pending_phases);
        safe_close(c->pipe[0]);
        safe_close(c->pipe[1]);
        pthread_mutex_destroy(&c->lock);
        pthread_cond_destroy(&c->cond);
        free(c->endpoint);
        free(c->run_id);
        free(c->host);
        free(c->prefix);
        free(c->watch_prefix);
        free(c);
        return NULL;
}

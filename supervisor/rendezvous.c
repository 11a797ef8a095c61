/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "etcd.h"
#include "json.h"
#include "parse-util.h"
#include "rendezvous.h"
#include "util.h"

/* What the watch on the round's keys has seen (under lock). */
struct rdzv_state {
        const struct rdzv_config *cfg;
        char *round_prefix;             /* /ringmaster/RUN_ID/rdzv/R/ */
        const char *watch_prefix;       /* the leader: round_prefix; the others: the closed record only */
        bool leader;                    /* the first member in join order: it sees every join, and closes */
        struct etcd_client *watch_client;
        pthread_t watcher;
        bool watching;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        atomic_bool stop;
        int64_t revision;
        struct member {
                char *key;              /* .../rdzv/R/nodes/LEASE */
                char *host, *addr;      /* from its record {"host":...,"addr":...,"port":...,"pid":...}; "" when missing */
                int64_t port;           /* 0: none offered */
                int64_t create_revision;
        } *members;                     /* in join order (create_revision) */
        size_t n_members, size_members;
        char *closed;                   /* the closed record, NULL: open */
};

int rdzv_round_prefix(const char *run_id, int round, char **ret) {
        return asprintf(ret, "%s%s/round/%d/", CLUSTER_KEY_ROOT, run_id, round) < 0 ? -ENOMEM : 0;
}

/* .../rdzv/round (round < 0), .../rdzv/R/ (what NULL), or .../rdzv/R/what. */
static char *rdzv_key(const struct rdzv_config *cfg, int round, const char *what) {
        char *key = NULL;
        int r;

        if (round < 0)
                r = asprintf(&key, "%s%s/rdzv/round", CLUSTER_KEY_ROOT, cfg->run_id);
        else
                r = asprintf(&key, "%s%s/rdzv/%d/%s", CLUSTER_KEY_ROOT, cfg->run_id, round, what ? what : "");
        return r < 0 ? NULL : key;
}

static const char *member(const struct json_value *v, const char *key) {
        const struct json_value *m = v ? json_object_get(v, key) : NULL;
        return m && m->type == JSON_STRING ? m->text : NULL;
}

static void member_free(struct member *m) {
        free(m->key);
        free(m->host);
        free(m->addr);
}

/* A joiner's key and record, read once: NULL fields when out of memory. */
static struct member member_from(const struct etcd_kv *kv) {
        struct json_value *v = NULL;
        const struct json_value *port;
        struct member m;

        (void) json_parse(kv->value, kv->len, &v);
        port = v ? json_object_get(v, "port") : NULL;
        m = (struct member) { .key = strdup(kv->key), .host = strdup(member(v, "host") ?: ""),
                              .addr = strdup(member(v, "addr") ?: ""),
                              .port = port && port->type == JSON_NUMBER ? strtoll(port->text, NULL, 10) : 0,
                              .create_revision = kv->create_revision };
        json_value_free(v);
        return m;
}

/* A member joined (put) or left (delete): kept in join order (under lock). */
static void member_update(struct rdzv_state *st, bool put, const struct etcd_kv *kv) {
        struct member m;
        size_t i;

        for (i = 0; i < st->n_members && strcmp(st->members[i].key, kv->key) != 0; i++)
                ;
        if (!put) {
                if (i == st->n_members)
                        return;
                member_free(&st->members[i]);
                memmove(st->members + i, st->members + i + 1, (st->n_members - i - 1) * sizeof(*st->members));
                st->n_members--;
                return;
        }
        if (i < st->n_members)
                return;         /* its record does not change */
        if (st->n_members == st->size_members) {
                size_t size = st->size_members ? 2 * st->size_members : 16;
                struct member *grown = realloc(st->members, size * sizeof(*grown));
                if (!grown)
                        return;
                st->members = grown;
                st->size_members = size;
        }
        m = member_from(kv);
        if (!m.key || !m.host || !m.addr) {
                member_free(&m);        /* out of memory: as if not seen yet */
                return;
        }
        /* Mostly appended: joins arrive in revision order. */
        for (i = st->n_members; i > 0 && st->members[i - 1].create_revision > m.create_revision; i--)
                ;
        memmove(st->members + i + 1, st->members + i, (st->n_members - i) * sizeof(*st->members));
        st->members[i] = m;
        st->n_members++;
}

/* A key of the round, put or deleted (the watch thread, or the first read before it runs). */
static void on_key(struct rdzv_state *st, bool put, const struct etcd_kv *kv) {
        const char *k = kv->key + strlen(st->round_prefix);

        pthread_mutex_lock(&st->lock);
        if (startswith(k, "nodes/"))
                member_update(st, put, kv);
        else if (strcmp(k, "closed") == 0 && put && !st->closed)
                st->closed = strndup(kv->value, kv->len);
        pthread_cond_signal(&st->cond);
        pthread_mutex_unlock(&st->lock);
}

static int on_watch_event(const struct etcd_event *ev, int64_t revision, void *userdata) {
        struct rdzv_state *st = userdata;

        on_key(st, ev->type == ETCD_PUT, &ev->kv);
        if (revision > st->revision)
                st->revision = revision;
        return 0;
}

static void *watch_thread(void *userdata) {
        struct rdzv_state *st = userdata;

        while (!atomic_load(&st->stop)) {
                (void) etcd_watch_prefix(st->watch_client, st->watch_prefix, st->revision + 1, on_watch_event, NULL,
                                         st, &st->stop);
                if (!atomic_load(&st->stop)) {
                        /* etcd away for a moment: watch again from where it broke (the join timeout bounds it all). */
                        struct timespec ts = { 0, 200 * 1000 * 1000 };
                        nanosleep(&ts, NULL);
                }
        }
        return NULL;
}

static int watch_start(struct rdzv_state *st, const char *prefix) {
        int r;

        st->watch_prefix = prefix;
        atomic_store(&st->stop, false);
        if (!st->watch_client) {
                r = etcd_client_new(st->cfg->endpoint, st->cfg->credentials, st->cfg->timeout_ms > 0 ? st->cfg->timeout_ms : 2000,
                                    &st->watch_client);
                if (r < 0)
                        return r;
        }
        r = -pthread_create(&st->watcher, NULL, watch_thread, st);
        st->watching = r == 0;
        return r;
}

static void watch_stop(struct rdzv_state *st) {
        if (!st->watching)
                return;
        atomic_store(&st->stop, true);
        etcd_client_wakeup(st->watch_client);
        pthread_join(st->watcher, NULL);
        st->watching = false;
}

/* Everything under the round now, members and the closed record (under lock: the watch is stopped or not running). */
static int load_round(struct rdzv_state *st, struct etcd_client *c) {
        struct etcd_kv *kvs = NULL;
        size_t n = 0;
        int r;

        r = etcd_range_prefix(c, st->round_prefix, &kvs, &n, &st->revision);
        if (r < 0)
                return r;
        for (size_t i = 0; i < st->n_members; i++)
                member_free(&st->members[i]);
        st->n_members = 0;
        for (size_t i = 0; i < n; i++)
                on_key(st, true, &kvs[i]);
        etcd_kvs_free(kvs, n);
        return 0;
}

/* "gpu01 (10.0.0.1), gpu02 (10.0.0.2)": who joined so far, in join order (under lock). */
static char *who_joined(struct rdzv_state *st) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < st->n_members; i++)
                fprintf(f, "%s%s (%s)", i ? ", " : "", *st->members[i].host ? st->members[i].host : "?",
                        *st->members[i].addr ? st->members[i].addr : "?");
        if (st->n_members == 0)
                fputs("none", f);
        (void) memstream_finish(f, &buf, NULL);
        return buf;
}

/* The round's first MAX members in join order, as the closed record lists them (under lock). */
static int closed_record(struct rdzv_state *st, char **ret) {
        char *buf = NULL;
        size_t size = 0, n = MIN(st->n_members, (size_t) st->cfg->max_nodes);
        FILE *f = open_memstream(&buf, &size);
        struct json_writer w;

        if (!f)
                return -ENOMEM;
        json_writer_init(&w, f);
        json_begin_object(&w);
        json_key(&w, "nnodes");
        json_int(&w, (int64_t) n);
        json_key(&w, "members");
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++)
                json_string(&w, st->members[i].key + strlen(st->round_prefix));
        json_end_array(&w);
        json_key(&w, "hosts");
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++)
                json_string(&w, st->members[i].host);
        json_end_array(&w);
        json_key(&w, "addrs");
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++)
                json_string(&w, st->members[i].addr);
        json_end_array(&w);
        json_key(&w, "ports");
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++)
                json_int(&w, st->members[i].port);
        json_end_array(&w);
        json_end_object(&w);
        return memstream_finish(f, &buf, ret);
}

/*
 * Reads a closed record: the index of `me` (the key under the round) is the node rank (-1: not a member); node
 * 0's address and port (0: none offered).
 */
static int parse_closed(const char *rec, const char *me, int *ret_nnodes, int *ret_rank, char **ret_master,
                        int *ret_master_port, char **ret_hosts) {
        struct json_value *v = NULL;
        const struct json_value *members, *addrs, *hosts, *ports;
        int r = -EBADMSG;

        if (json_parse(rec, strlen(rec), &v) < 0)
                return -EBADMSG;
        members = json_object_get(v, "members");
        addrs = json_object_get(v, "addrs");
        hosts = json_object_get(v, "hosts");
        ports = json_object_get(v, "ports");
        if (!members || members->type != JSON_ARRAY || members->n == 0 || !addrs || addrs->type != JSON_ARRAY ||
            addrs->n != members->n || addrs->items[0]->type != JSON_STRING)
                goto done;
        *ret_nnodes = (int) members->n;
        *ret_rank = -1;
        for (size_t i = 0; me && i < members->n; i++)
                if (members->items[i]->type == JSON_STRING && strcmp(members->items[i]->text, me) == 0)
                        *ret_rank = (int) i;
        if (ret_master_port)
                *ret_master_port = ports && ports->type == JSON_ARRAY && ports->n > 0 &&
                                   ports->items[0]->type == JSON_NUMBER ?
                                   (int) strtol(ports->items[0]->text, NULL, 10) : 0;
        if (ret_master && !(*ret_master = strdup(addrs->items[0]->text))) {
                r = -ENOMEM;
                goto done;
        }
        if (ret_hosts) {
                char *buf = NULL;
                size_t size = 0;
                FILE *f = open_memstream(&buf, &size);
                if (!f) {
                        r = -ENOMEM;
                        goto done;
                }
                for (size_t i = 0; hosts && hosts->type == JSON_ARRAY && i < hosts->n; i++)
                        fprintf(f, "%s%s", i ? ", " : "", hosts->items[i]->type == JSON_STRING ? hosts->items[i]->text : "?");
                r = memstream_finish(f, &buf, ret_hosts);
                if (r < 0)
                        goto done;
        }
        r = 0;
done:
        json_value_free(v);
        return r;
}

static bool is_loopback(const char *a) {
        return startswith(a, "127.") || strcmp(a, "::1") == 0 || startswith(a, "::ffff:127.");
}

int rdzv_stop_signal_pending(const sigset_t *stop) {
        sigset_t pending;

        if (!stop || sigpending(&pending) < 0)
                return 0;
        for (int sig = 1; sig < NSIG; sig++)
                if (sigismember(stop, sig) == 1 && sigismember(&pending, sig) == 1)
                        return sig;
        return 0;
}

/* This node's record: where it can be reached, should it get rank 0. */
static int node_record(const struct rdzv_config *cfg, struct etcd_client *c, char **ret) {
        _cleanup_free_ char *local = NULL;
        const char *addr = cfg->addr;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;
        struct json_writer w;

        if (!addr && etcd_local_address(c, &local) == 0 && !is_loopback(local))
                addr = local;
        if (!addr)
                addr = cfg->host;       /* etcd on this very node: the others reach it by name */
        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        json_writer_init(&w, f);
        json_begin_object(&w);
        json_key(&w, "host");
        json_string(&w, cfg->host);
        json_key(&w, "addr");
        json_string(&w, addr);
        if (cfg->port > 0) {
                json_key(&w, "port");
                json_int(&w, cfg->port);
        }
        json_key(&w, "pid");
        json_int(&w, getpid());
        json_end_object(&w);
        return memstream_finish(f, &buf, ret);
}

/* A failed etcd call of the rendezvous, as the caller's error. */
static int etcd_failed(const struct rdzv_config *cfg, struct etcd_client *c, int r, char **ret_error) {
        return error_setf(ret_error, r, "the rendezvous: etcd at %s: %s", cfg->endpoint, etcd_last_error(c));
}

/* The current round, made "0" when there is none yet. */
static int current_round(struct etcd_client *c, const char *key, int *ret, char **ret_error) {
        for (int tries = 0; tries < 3; tries++) {
                _cleanup_free_ char *v = NULL;
                long long n;
                bool created;
                int r = etcd_get(c, key, &v, NULL);

                if (r == -ENOENT) {
                        r = etcd_create(c, key, "0", 1, 0, &created);
                        if (r < 0)
                                break;
                        continue;
                }
                if (r < 0)
                        break;
                if (parse_int_range(v, 0, 1 << 30, &n) < 0)
                        return error_setf(ret_error, -EBADMSG, "the rendezvous: %s is '%s', not a round number: "
                                          "something else writes there; use another --run-id", key, v);
                *ret = (int) n;
                return 0;
        }
        return error_setf(ret_error, -ECONNREFUSED, "the rendezvous: cannot read %s from etcd: %s", key,
                          etcd_last_error(c));
}

/*
 * Rounds before round - 1 are over and their nodes gone (a round opens only once the one before it ended or
 * failed; the previous one's nodes may still be stopping): their keys, the closed record and the job's failure,
 * go, so that a long-lived job restarted daily keeps two rounds' keys in etcd, not every round's.  Best effort:
 * the next round's closer tries again.
 */
static void prune_old_rounds(const struct rdzv_config *cfg, struct etcd_client *c, int round) {
        static const char *const trees[] = { "rdzv", "round" };

        if (round < 2)
                return;
        for (size_t t = 0; t < ELEMENTSOF(trees); t++) {
                _cleanup_free_ char *prefix = NULL;
                struct etcd_kv *kvs = NULL;
                size_t n = 0;
                long long last = -1;

                if (asprintf(&prefix, "%s%s/%s/", CLUSTER_KEY_ROOT, cfg->run_id, trees[t]) < 0)
                        return;
                if (etcd_range_prefix(c, prefix, &kvs, &n, NULL) < 0)
                        continue;
                /* In key order, so one round's keys are together ("0/closed", "0/nodes/...", "10/...", "2/..."). */
                for (size_t i = 0; i < n; i++) {
                        const char *k = kvs[i].key + strlen(prefix);
                        _cleanup_free_ char *old = NULL;
                        char *end = NULL;
                        long long old_round = strtoll(k, &end, 10);

                        if (end == k || *end != '/' || old_round >= round - 1 || old_round == last)
                                continue;
                        last = old_round;
                        if (asprintf(&old, "%s%lld/", prefix, old_round) >= 0)
                                (void) etcd_delete_prefix(c, old, NULL);
                }
                etcd_kvs_free(kvs, n);
        }
}

static void state_done(struct rdzv_state *st) {
        watch_stop(st);
        for (size_t i = 0; i < st->n_members; i++)
                member_free(&st->members[i]);
        free(st->members);
        free(st->closed);
        free(st->round_prefix);
        st->watch_client = etcd_client_free(st->watch_client);
        pthread_mutex_destroy(&st->lock);
        pthread_cond_destroy(&st->cond);
}

/*
 * One try at round R: 1 joined (and *ret filled), 0 the round was over and moved on (try again), or an
 * error.
 */
static int join_round(const struct rdzv_config *cfg, struct etcd_client *c, int64_t lease, int ttl_s, int round,
                      uint64_t deadline, struct rdzv_result *ret, char **ret_error) {
        struct rdzv_state st = { .cfg = cfg };
        bool created = false;
        struct etcd_kv *kvs = NULL;
        size_t n = 0;
        int r;
        uint64_t last_call_from = 0, next_keepalive = now_usec() + (uint64_t) ttl_s * USEC_PER_SEC / 3;
        uint64_t next_leader_check = 0;
        _cleanup_free_ char *rec = NULL, *round_key = rdzv_key(cfg, -1, NULL), *closed_key = NULL;
        _cleanup_free_ char *my_key = NULL, *me = NULL;         /* me: my_key under the round's prefix */
        _cleanup_free_ char *nodes_prefix = NULL;

        pthread_mutex_init(&st.lock, NULL);
        cond_init_monotonic(&st.cond);
        st.round_prefix = rdzv_key(cfg, round, NULL);
        closed_key = rdzv_key(cfg, round, "closed");
        /* The lease's id makes the key this node's alone: joining is one create, never a race for a name. */
        if (asprintf(&me, "nodes/%" PRIx64, (uint64_t) lease) < 0)
                me = NULL;
        my_key = me ? rdzv_key(cfg, round, me) : NULL;
        nodes_prefix = rdzv_key(cfg, round, "nodes/");
        if (!st.round_prefix || !closed_key || !round_key || !my_key || !nodes_prefix) {
                r = -ENOMEM;
                goto done;
        }

        /* Closed?  One key, not the members: N joiners read N keys in all, not N². */
        r = etcd_range_prefix(c, closed_key, &kvs, &n, &st.revision);
        if (r < 0) {
                r = etcd_failed(cfg, c, r, ret_error);
                goto done;
        }
        for (size_t i = 0; i < n; i++)
                on_key(&st, true, &kvs[i]);
        etcd_kvs_free(kvs, n);

        if (st.closed) {
                _cleanup_free_ char *first = NULL;
                bool alive;
                _cleanup_free_ char *prefix = NULL, *failure_key = NULL, *failure = NULL, *next = NULL;
                _cleanup_free_ char *hosts = NULL, *cur = NULL;
                int nn = 0, rank;

                if (rdzv_round_prefix(cfg->run_id, round, &prefix) < 0 || asprintf(&failure_key, "%sjob/failure", prefix) < 0 ||
                    asprintf(&cur, "%d", round) < 0 || asprintf(&next, "%d", round + 1) < 0) {
                        r = -ENOMEM;
                        goto done;
                }
                r = etcd_first_created(c, nodes_prefix, &first);
                alive = r == 0;
                if (r == 0 || r == -ENOENT)
                        r = etcd_get(c, failure_key, &failure, NULL);
                if (r < 0 && r != -ENOENT) {
                        r = etcd_failed(cfg, c, r, ret_error);
                        goto done;
                }
                if (r == 0 || !alive) {
                        /* Over: failed, or every member gone.  Whoever swaps first opens the next round. */
                        r = etcd_compare_and_swap(c, round_key, cur, next, strlen(next), 0, &created);
                        if (r < 0)
                                r = etcd_failed(cfg, c, r, ret_error);
                        goto done;      /* 0: try the round that is current now */
                }
                (void) parse_closed(st.closed, NULL, &nn, &rank, NULL, NULL, &hosts);
                r = error_setf(ret_error, -EBUSY,
                               "the rendezvous of run %s: round %d is closed and running with %d node%s (%s): this "
                               "node came too late to join it; ringmaster does not resize a running job: start it "
                               "within the last call (--last-call-timeout), or restart the job", cfg->run_id, round,
                               nn, nn == 1 ? "" : "s", hosts ? hosts : "?");
                goto done;
        }

        /* Join: etcd's revision of this create is this node's place in the join order. */
        r = node_record(cfg, c, &rec);
        if (r < 0)
                goto done;
        r = etcd_create(c, my_key, rec, strlen(rec), lease, &created);
        if (r < 0) {
                r = etcd_failed(cfg, c, r, ret_error);
                goto done;
        }

        /* The others watch the closed record only; the first in join order sees every join, and closes. */
        r = watch_start(&st, closed_key);
        if (r < 0)
                goto done;

        pthread_mutex_lock(&st.lock);
        for (;;) {
                uint64_t now = now_usec(), wake;
                bool close_now = false;
                int sig;

                if (st.closed) {
                        _cleanup_free_ char *closed = strdup(st.closed), *hosts = NULL;
                        int nn = 0, rank = -1;

                        pthread_mutex_unlock(&st.lock);
                        if (!closed) {
                                r = -ENOMEM;
                                goto done;
                        }
                        *ret = (struct rdzv_result) { .round = round, .lease = lease };
                        r = parse_closed(closed, me, &nn, &rank, &ret->master_addr, &ret->master_port, &hosts);
                        if (r < 0) {
                                free(ret->master_addr);
                                *ret = (struct rdzv_result) {};
                                r = error_setf(ret_error, r, "the rendezvous of run %s: round %d's record %s is not "
                                               "ringmaster's: %s", cfg->run_id, round, closed_key, closed);
                                goto done;
                        }
                        if (rank < 0) {
                                free(ret->master_addr);
                                *ret = (struct rdzv_result) {};
                                r = error_setf(ret_error, -EBUSY,
                                               "the rendezvous of run %s: round %d closed with %d node%s (%s) "
                                               "without this node, which came too late (after the first MAX, or "
                                               "after the last call); ringmaster does not resize a running job: "
                                               "start every node within the last call (--last-call-timeout), or "
                                               "restart the job", cfg->run_id, round, nn, nn == 1 ? "" : "s",
                                               hosts ? hosts : "?");
                                goto done;
                        }
                        ret->nnodes = nn;
                        ret->node_rank = rank;
                        r = 1;
                        goto done;
                }
                if (!st.leader && now >= next_leader_check) {
                        _cleanup_free_ char *first = NULL;

                        pthread_mutex_unlock(&st.lock);
                        /* Right after joining, then every 2 s (a leader that died leaves its place to the next). */
                        next_leader_check = now + 2 * USEC_PER_SEC;
                        r = etcd_first_created(c, nodes_prefix, &first);
                        if (r == 0 && strcmp(first, my_key) == 0) {
                                watch_stop(&st);
                                /* etcd away for a moment: stay a follower until the next check. */
                                st.leader = load_round(&st, c) == 0;
                                r = watch_start(&st, st.leader ? st.round_prefix : closed_key);
                                if (r < 0)
                                        goto done;
                        }
                        pthread_mutex_lock(&st.lock);
                        continue;
                }
                if (!st.leader)
                        close_now = false;
                else if (st.n_members >= (size_t) cfg->max_nodes)
                        close_now = true;
                else if (st.n_members >= (size_t) cfg->min_nodes) {
                        if (!last_call_from)
                                last_call_from = now;
                        close_now = now >= last_call_from + cfg->last_call_usec;
                } else
                        last_call_from = 0;     /* a joiner left before the last call ended */
                if (close_now) {
                        _cleanup_free_ char *closed = NULL;
                        r = closed_record(&st, &closed);
                        pthread_mutex_unlock(&st.lock);
                        if (r < 0)
                                goto done;
                        r = etcd_create(c, closed_key, closed, strlen(closed), 0, &created);
                        if (r == 0 && created)
                                prune_old_rounds(cfg, c, round);
                        if (r == 0 && !created) {
                                /* Someone closed it first: theirs is the record. */
                                free(closed);
                                closed = NULL;
                                r = etcd_get(c, closed_key, &closed, NULL);
                        }
                        if (r < 0) {
                                r = etcd_failed(cfg, c, r, ret_error);
                                goto done;
                        }
                        pthread_mutex_lock(&st.lock);
                        if (!st.closed)
                                st.closed = TAKE_PTR(closed);
                        continue;
                }
                if (deadline && now >= deadline) {
                        _cleanup_free_ char *who = NULL;
                        int joined;

                        if (!st.leader) {
                                /* Who joined: only the leader follows it. */
                                pthread_mutex_unlock(&st.lock);
                                watch_stop(&st);
                                (void) load_round(&st, c);
                                pthread_mutex_lock(&st.lock);
                        }
                        who = who_joined(&st);
                        joined = (int) st.n_members;
                        pthread_mutex_unlock(&st.lock);
                        r = error_setf(ret_error, -ETIMEDOUT,
                                       "the rendezvous of run %s timed out (--join-timeout %.0f s): %d node%s joined "
                                       "round %d, %s%d needed: %s; start the missing nodes with the same --run-id "
                                       "and --store, or give --nnodes MIN:MAX", cfg->run_id,
                                       (double) cfg->join_timeout_usec / USEC_PER_SEC, joined, joined == 1 ? "" : "s",
                                       round, cfg->min_nodes < cfg->max_nodes ? "at least " : "", cfg->min_nodes,
                                       who ? who : "?");
                        goto done;
                }
                if (now >= next_keepalive) {
                        pthread_mutex_unlock(&st.lock);
                        r = etcd_lease_keepalive(c, lease, NULL);
                        if (r == -ENOENT) {
                                r = error_setf(ret_error, -ETIMEDOUT, "the rendezvous: this node's etcd lease ended "
                                               "(etcd did not hear from it for %d s), so its place is gone; start it "
                                               "again", ttl_s);
                                goto done;
                        }
                        /* Else etcd is away for a moment: try again soon; the join timeout bounds it. */
                        next_keepalive = now_usec() + (uint64_t) ttl_s * USEC_PER_SEC / (r < 0 ? 12 : 3);
                        pthread_mutex_lock(&st.lock);
                        continue;
                }
                sig = rdzv_stop_signal_pending(cfg->stop_signals);
                if (sig > 0) {
                        pthread_mutex_unlock(&st.lock);
                        *ret = (struct rdzv_result) { .signal = sig };
                        r = error_setf(ret_error, -EINTR, "stopped by signal %d while waiting for the other nodes "
                                       "to join", sig);
                        goto done;
                }
                /* Sleep until something changes, the next renewal, the last call's end, or a signal check. */
                wake = MIN(next_keepalive, now + 200 * USEC_PER_MSEC);
                if (!st.leader)
                        wake = MIN(wake, next_leader_check);
                if (last_call_from)
                        wake = MIN(wake, last_call_from + cfg->last_call_usec);
                if (deadline)
                        wake = MIN(wake, deadline);
                cond_wait_until(&st.cond, &st.lock, wake);
        }
done:
        /* On failure the caller revokes the lease, which frees this node's place for another joiner. */
        state_done(&st);
        return r;
}

int rdzv_join(const struct rdzv_config *cfg, struct rdzv_result *ret, char **ret_error) {
        struct etcd_client *c = NULL;
        _cleanup_free_ char *round_key = NULL;
        int ttl_s = cfg->lease_ttl_s > 0 ? cfg->lease_ttl_s : CLUSTER_DEFAULT_LEASE_TTL_S;
        uint64_t deadline = cfg->join_timeout_usec ? now_usec() + cfg->join_timeout_usec : 0;
        int64_t lease = 0;
        int r;

        *ret = (struct rdzv_result) {};
        if (!cfg->endpoint || !cfg->run_id || cfg->min_nodes < 1 || cfg->max_nodes < cfg->min_nodes || !cfg->host)
                return error_setf(ret_error, -EINVAL, "the rendezvous: a bad configuration");
        round_key = rdzv_key(cfg, -1, NULL);
        if (!round_key)
                return -ENOMEM;
        r = etcd_client_new(cfg->endpoint, cfg->credentials, cfg->timeout_ms > 0 ? cfg->timeout_ms : 2000, &c);
        if (r == -EOPNOTSUPP)
                return error_setf(ret_error, r, "--store: ringmaster was built without libcurl (configure --with-etcd)");
        if (r < 0)
                return r;
        r = etcd_lease_grant(c, ttl_s, &lease);
        if (r < 0) {
                r = error_setf(ret_error, r, "the rendezvous: cannot reach etcd at %s: %s", cfg->endpoint,
                               etcd_last_error(c));
                goto done;
        }
        /* Each pass is one round: a round found over is moved on, and the next one tried. */
        for (int pass = 0; pass < 64; pass++) {
                int round = 0;

                r = current_round(c, round_key, &round, ret_error);
                if (r < 0)
                        break;
                r = join_round(cfg, c, lease, ttl_s, round, deadline, ret, ret_error);
                if (r != 0)
                        break;
                r = -EAGAIN;
        }
        if (r == -EAGAIN)
                r = error_setf(ret_error, -EAGAIN, "the rendezvous of run %s: the round kept moving on while this "
                               "node tried to join (other ringmasters restarting over and over?)", cfg->run_id);
        if (r > 0) {
                ret->endpoint = strdup(cfg->endpoint);
                ret->credentials = cfg->credentials;
                if (!ret->endpoint || rdzv_round_prefix(cfg->run_id, ret->round, &ret->prefix) < 0) {
                        rdzv_result_done(ret, false);
                        r = -ENOMEM;
                } else {
                        lease = 0;      /* the caller's now */
                        r = 0;
                }
        }
done:
        if (lease)
                (void) etcd_lease_revoke(c, lease);
        etcd_client_free(c);
        return r;
}

void rdzv_result_done(struct rdzv_result *r, bool revoke) {
        if (revoke && r->lease && r->endpoint) {
                struct etcd_client *c = NULL;
                if (etcd_client_new(r->endpoint, r->credentials, 2000, &c) == 0)
                        (void) etcd_lease_revoke(c, r->lease);
                etcd_client_free(c);
        }
        free(r->master_addr);
        free(r->prefix);
        free(r->endpoint);
        *r = (struct rdzv_result) {};
}

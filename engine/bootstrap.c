/* SPDX-License-Identifier: MIT */
/*
 * A rendezvous for collective libraries over the run segment's kv table:
 * the root publishes an id, every rank leaves "joined" and "ready" markers,
 * and a rank that gives up can say whom it was waiting for.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "rm_notify.h"
#include "shmring.h"

#define ID_MAGIC UINT32_C(0x31444952)           /* "RID1" */
#define MARKER_MAGIC UINT32_C(0x314b524d)       /* "MRK1" */

/* How often a waiting rank checks whether the others are still alive. */
#define LIVENESS_INTERVAL_NS (100 * NSEC_PER_MSEC)
/* Between polls of a collective library's initialisation. */
#define POLL_INTERVAL_NS (1 * NSEC_PER_MSEC)

struct id_record {
        uint32_t magic;
        uint32_t nranks;
        uint32_t len;
        uint32_t reserved;
        unsigned char id[RM_BOOTSTRAP_ID_MAX];
};

struct marker {
        uint32_t magic;
        uint32_t rank;
        int32_t pid;
        uint32_t state;                 /* enum rm_rank_state */
        int32_t error;                  /* failed: a negative errno */
        int32_t blamed;                 /* failed: the rank it blames, -1: none */
        char reason[256];               /* failed: what it said, NUL-terminated */
};

/*
 * The one place where a rank's phase is reported to the supervisor
 * (X_RINGMASTER_PHASE over the notify socket; nothing when not under
 * ringmaster): its start, and its end, with what went wrong when it failed,
 * so the supervisor's report and deadlines see it.
 */
static void report_phase(struct rm_worker *w, const char *phase) {
        (void) w;
        (void) rm_phase(phase);
}

static int report_phase_end(struct rm_worker *w, const char *phase, int r) {
        (void) w;
        if (r < 0)
                (void) rm_status("%s failed: %s", phase, rm_last_error()[0] ? rm_last_error() : strerror(-r));
        (void) rm_phase_end(phase);
        return r;
}

static int prefix_check(const char *prefix) {
        if (!rm_name_valid(prefix, RM_BOOTSTRAP_PREFIX_MAX, true))
                return rmpriv_fail(-EINVAL, "'%.60s' is not a rendezvous prefix (1..%d of [A-Za-z0-9._/-])",
                                   prefix ? prefix : "(null)", RM_BOOTSTRAP_PREFIX_MAX);
        return 0;
}

static void id_key(char key[64], const char *prefix) {
        snprintf(key, 64, "%s/uid", prefix);
}

static void marker_key(char key[64], const char *prefix, enum rm_rank_state state, uint32_t rank) {
        const char *what = state == RM_RANK_READY    ? "ready"
                           : state == RM_RANK_JOINED ? "joined"
                                                     : "failed";

        snprintf(key, 64, "%s/%s/%" PRIu32, prefix, what, rank);
}

_public_ int rm_bootstrap_publish_id(struct rm_worker *w, const char *prefix, uint32_t nranks, const void *id,
                                     size_t len) {
        struct id_record rec;
        char key[64];
        ssize_t n;
        int64_t g;
        int r;

        check_arg(w && id, -EINVAL);
        check_arg(len > 0 && len <= RM_BOOTSTRAP_ID_MAX, -EINVAL);
        check_arg(nranks > 0 && nranks <= RM_WORKER_MAX_RANKS, -EINVAL);
        r = prefix_check(prefix);
        if (r < 0)
                return r;
        id_key(key, prefix);

        n = shmring_kv_get(w->seg, RM_KV_TABLE, key, 0, &rec, sizeof(rec), NULL, 0);
        if (n >= 0 || n == -EOWNERDEAD)
                return rmpriv_fail(-EEXIST, "%s already holds an id: a rendezvous prefix is used once per run", key);
        if (n != -EAGAIN)
                return rmpriv_fail((int) n, "Failed to look up %s: %s", key, strerror((int) -n));

        memset(&rec, 0, sizeof(rec));
        rec.magic = ID_MAGIC;
        rec.nranks = nranks;
        rec.len = (uint32_t) len;
        memcpy(rec.id, id, len);
        g = shmring_kv_put(w->seg, RM_KV_TABLE, key, &rec, offsetof(struct id_record, id) + len);
        if (g < 0)
                return rmpriv_fail((int) g, "Failed to publish %s: %s", key, strerror((int) -g));
        return 0;
}

/* Appends to buf at *pos, keeping it NUL-terminated when it fills up. */
static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...) _printf_(4, 5);
static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...) {
        va_list ap;
        int n;

        if (*pos >= size)
                return;
        va_start(ap, fmt);
        n = vsnprintf(buf + *pos, size - *pos, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        *pos = (size_t) n >= size - *pos ? size - 1 : *pos + (size_t) n;
}

_public_ int rm_bootstrap_mark(struct rm_worker *w, const char *prefix, uint32_t rank, enum rm_rank_state state) {
        struct marker m;
        char key[64];
        int64_t g;
        int r;

        check_arg(w, -EINVAL);
        check_arg(state == RM_RANK_JOINED || state == RM_RANK_READY, -EINVAL);
        check_arg(rank < RM_WORKER_MAX_RANKS, -EINVAL);
        r = prefix_check(prefix);
        if (r < 0)
                return r;
        marker_key(key, prefix, state, rank);
        m = (struct marker) {
                .magic = MARKER_MAGIC,
                .rank = rank,
                .pid = (int32_t) getpid(),
                .state = state,
        };
        g = shmring_kv_put(w->seg, RM_KV_TABLE, key, &m, offsetof(struct marker, error));
        if (g < 0)
                return rmpriv_fail((int) g, "Failed to publish %s: %s", key, strerror((int) -g));
        return 0;
}

_public_ int rm_bootstrap_mark_failed(struct rm_worker *w, const char *prefix, uint32_t rank, enum rm_rank_state state,
                                      int error, int blamed_rank, const char *reason) {
        struct marker m;
        char key[64];
        int64_t g;
        int r;

        check_arg(w, -EINVAL);
        check_arg(state == RM_RANK_FAILED || state == RM_RANK_TIMED_OUT, -EINVAL);
        check_arg(rank < RM_WORKER_MAX_RANKS, -EINVAL);
        check_arg(error < 0 && blamed_rank >= -1 && blamed_rank < RM_WORKER_MAX_RANKS, -EINVAL);
        r = prefix_check(prefix);
        if (r < 0)
                return r;
        marker_key(key, prefix, RM_RANK_FAILED, rank);
        memset(&m, 0, sizeof(m));
        m.magic = MARKER_MAGIC;
        m.rank = rank;
        m.pid = (int32_t) getpid();
        m.state = state;
        m.error = error;
        m.blamed = blamed_rank;
        snprintf(m.reason, sizeof(m.reason), "%s", reason ? reason : "");
        g = shmring_kv_put(w->seg, RM_KV_TABLE, key, &m, sizeof(m));
        if (g < 0)
                return rmpriv_fail((int) g, "Failed to publish %s: %s", key, strerror((int) -g));
        return 0;
}

/* Reads rank's failure marker: 1 when there is one (valid), 0 when not. */
static int read_failure(struct rm_worker *w, const char *prefix, uint32_t rank, struct marker *ret) {
        struct marker m;
        char key[64];
        ssize_t n;

        marker_key(key, prefix, RM_RANK_FAILED, rank);
        memset(&m, 0, sizeof(m));
        n = shmring_kv_get(w->seg, RM_KV_TABLE, key, 0, &m, sizeof(m), NULL, 0);
        /* Its owner exiting after giving up is expected: the marker stands. */
        if (n == -EOWNERDEAD) {
                n = (ssize_t) sizeof(m);
        }
        if (n < 0)
                return 0;
        if (m.magic != MARKER_MAGIC || m.rank != rank ||
            (m.state != RM_RANK_FAILED && m.state != RM_RANK_TIMED_OUT) || m.error >= 0)
                return 0;
        m.reason[sizeof(m.reason) - 1] = '\0';
        *ret = m;
        return 1;
}

_public_ int rm_bootstrap_rank_state(struct rm_worker *w, const char *prefix, uint32_t rank) {
        struct marker m;
        char key[64];
        ssize_t n;
        int r;

        check_arg(w, -EINVAL);
        check_arg(rank < RM_WORKER_MAX_RANKS, -EINVAL);
        r = prefix_check(prefix);
        if (r < 0)
                return r;

        /* Finished counts as finished even when the rank exited since. */
        marker_key(key, prefix, RM_RANK_READY, rank);
        n = shmring_kv_get(w->seg, RM_KV_TABLE, key, 0, &m, sizeof(m), NULL, 0);
        if (n >= 0 || n == -EOWNERDEAD)
                return RM_RANK_READY;
        if (n != -EAGAIN)
                return (int) n;
        {
                struct marker f;

                if (read_failure(w, prefix, rank, &f))
                        return (int) f.state;
        }

        marker_key(key, prefix, RM_RANK_JOINED, rank);
        n = shmring_kv_get(w->seg, RM_KV_TABLE, key, 0, &m, sizeof(m), NULL, 0);
        if (n == -EOWNERDEAD) {
                struct marker f;

                /* It may have given up (and exited) since we looked: a rank
                 * leaves its failure marker before it dies, so look again. */
                if (read_failure(w, prefix, rank, &f))
                        return (int) f.state;
                return RM_RANK_DEAD;
        }
        if (n >= 0)
                return RM_RANK_JOINED;
        if (n == -EAGAIN)
                return RM_RANK_ABSENT;
        return (int) n;
}

/* "rank 2" or "ranks 0,2-5,7": the ranks in states[] equal to state. */
static size_t append_group(char *buf, size_t size, size_t *pos, const int *states, uint32_t nranks, int state,
                           const char *what, bool first_group) {
        size_t count = 0;

        for (uint32_t i = 0; i < nranks; i++)
                if (states[i] == state)
                        count++;
        if (count == 0)
                return 0;

        append(buf, size, pos, "%s%s ", first_group ? "" : ", ", count == 1 ? "rank" : "ranks");
        for (uint32_t i = 0, listed = 0; i < nranks; i++) {
                uint32_t j;

                if (states[i] != state)
                        continue;
                for (j = i; j + 1 < nranks && states[j + 1] == state; j++)
                        ;
                append(buf, size, pos, "%s%" PRIu32, listed ? "," : "", i);
                if (j > i + 1)
                        append(buf, size, pos, "-%" PRIu32, j);
                else if (j == i + 1)
                        append(buf, size, pos, ",%" PRIu32, j);
                listed++;
                i = j;
        }
        append(buf, size, pos, " (%s)", what);
        return count;
}

_public_ int rm_bootstrap_describe(struct rm_worker *w, const char *prefix, uint32_t nranks, uint32_t self,
                                   char *buf, size_t size) {
        static const struct {
                int state;
                const char *what;
        } groups[] = {
                { RM_RANK_ABSENT, "never joined" },
                { RM_RANK_DEAD, "died" },
                { RM_RANK_FAILED, "failed" },
                { RM_RANK_JOINED, "joined, not finished" },
                { RM_RANK_TIMED_OUT, "timed out too" },
        };
        int states_small[64], *states = states_small;
        size_t pos = 0, named = 0;
        int r = 0;

        check_arg(w && buf && size > 0, -EINVAL);
        check_arg(nranks > 0 && nranks <= RM_WORKER_MAX_RANKS, -EINVAL);
        r = prefix_check(prefix);
        if (r < 0)
                return r;
        if (nranks > ELEMENTSOF(states_small)) {
                states = calloc(nranks, sizeof(int));
                if (!states)
                        return -ENOMEM;
        }
        for (uint32_t i = 0; i < nranks; i++) {
                if (i == self) {
                        states[i] = RM_RANK_READY;
                        continue;
                }
                r = rm_bootstrap_rank_state(w, prefix, i);
                if (r < 0)
                        goto out;
                states[i] = r;
        }

        buf[0] = '\0';
        append(buf, size, &pos, "waiting for ");
        for (size_t g = 0; g < ELEMENTSOF(groups); g++)
                named += append_group(buf, size, &pos, states, nranks, groups[g].state, groups[g].what, named == 0);
        if (named == 0) {
                pos = 0;
                append(buf, size, &pos, "every other rank finished");
        }
        r = (int) named;
out:
        if (states != states_small)
                free(states);
        return r;
}

static int timeout_error(struct rm_worker *w, const char *prefix, const char *phase, uint32_t nranks,
                         uint32_t self, int64_t start) {
        char who[300];
        double waited = (double) (now_ns() - start) / 1e9;

        if (rm_bootstrap_describe(w, prefix, nranks, self, who, sizeof(who)) < 0)
                snprintf(who, sizeof(who), "waiting for the other ranks");
        return rmpriv_fail(-ETIMEDOUT, "timed out after %.1f s in %s %s", waited, phase, who);
}

/* Leaves PREFIX/failed/SELF with rm_last_error()'s text; returns r. */
static int give_up(struct rm_worker *w, const char *prefix, uint32_t self, int r, int blamed) {
        char reason[256];

        snprintf(reason, sizeof(reason), "%s", rm_last_error());
        (void) rm_bootstrap_mark_failed(w, prefix, self, r == -ETIMEDOUT ? RM_RANK_TIMED_OUT : RM_RANK_FAILED, r,
                                        blamed, reason);
        rmpriv_set_error("%s", reason);         /* the mark may have overwritten it */
        return r;
}

_public_ int rm_bootstrap_fetch_id(struct rm_worker *w, const char *prefix, uint32_t nranks, void *id, size_t len,
                                   int64_t timeout_ns) {
        struct id_record rec;
        char key[64];
        int64_t start = now_ns();
        ssize_t n;
        int r;

        check_arg(w && id, -EINVAL);
        check_arg(len > 0 && len <= RM_BOOTSTRAP_ID_MAX, -EINVAL);
        check_arg(nranks > 0 && nranks <= RM_WORKER_MAX_RANKS, -EINVAL);
        r = prefix_check(prefix);
        if (r < 0)
                return r;
        id_key(key, prefix);

        n = shmring_kv_get(w->seg, RM_KV_TABLE, key, 0, &rec, sizeof(rec), NULL, timeout_ns);
        if (n == -ETIMEDOUT || n == -EAGAIN)
                return timeout_error(w, prefix, "the rendezvous for rank 0's id", nranks, w->rank, start);
        if (n == -EOWNERDEAD)
                return rmpriv_fail(-EOWNERDEAD, "rank 0 died after publishing %s", key);
        if (n < 0)
                return rmpriv_fail((int) n, "Failed to look up %s: %s", key, strerror((int) -n));
        if ((size_t) n < offsetof(struct id_record, id) || rec.magic != ID_MAGIC ||
            (size_t) n != offsetof(struct id_record, id) + rec.len)
                return rmpriv_fail(-EBADMSG, "%s does not hold an id record", key);
        if (rec.nranks != nranks)
                return rmpriv_fail(-EINVAL, "rank 0 published %s for %" PRIu32 " ranks, this rank expects %" PRIu32,
                                   key, rec.nranks, nranks);
        if (rec.len != len)
                return rmpriv_fail(-EINVAL, "%s holds a %" PRIu32 "-byte id, not %zu bytes", key, rec.len, len);
        memcpy(id, rec.id, len);
        return 0;
}

/*
 * A rank whose state means the collective can no longer complete: one that
 * died, or one that failed.  (One that timed out is waiting for the same
 * ranks we are; its deadline is its own.)  Sets rm_last_error() and returns
 * the error to end with, blaming the rank at the root of it in *ret_blamed;
 * 0 when there is none.
 */
static int find_fault(struct rm_worker *w, const char *prefix, const char *phase, uint32_t nranks, uint32_t self,
                      int64_t start, int *ret_blamed) {
        double after = (double) (now_ns() - start) / 1e9;

        for (uint32_t i = 0; i < nranks; i++)
                if (i != self && rm_bootstrap_rank_state(w, prefix, i) == RM_RANK_DEAD) {
                        *ret_blamed = (int) i;
                        return rmpriv_fail(-EOWNERDEAD, "rank %" PRIu32 " died during %s (after %.1f s)", i, phase,
                                           after);
                }
        for (uint32_t i = 0; i < nranks; i++) {
                struct marker m;

                if (i == self || !read_failure(w, prefix, i, &m) || m.state != RM_RANK_FAILED)
                        continue;
                if (m.blamed == (int) i || m.blamed < 0) {
                        *ret_blamed = (int) i;
                        return rmpriv_fail(-ECONNABORTED, "rank %" PRIu32 " failed in %s: %s", i, phase, m.reason);
                }
                /* It gave up because of another rank: pass its verdict on. */
                *ret_blamed = m.blamed;
                return rmpriv_fail(m.error, "%s (seen by rank %" PRIu32 ")", m.reason, i);
        }
        return 0;
}

static int bootstrap_run(struct rm_worker *w, const char *prefix, const char *phase, uint32_t nranks, uint32_t rank,
                         const struct rm_collective_ops *ops, void *ctx, int64_t timeout_ns);

_public_ int rm_bootstrap_run(struct rm_worker *w, const char *prefix, const char *phase, uint32_t nranks,
                              uint32_t rank, const struct rm_collective_ops *ops, void *ctx, int64_t timeout_ns) {
        int r;

        check_arg(w && phase && ops, -EINVAL);
        report_phase(w, phase);
        r = bootstrap_run(w, prefix, phase, nranks, rank, ops, ctx, timeout_ns);
        return report_phase_end(w, phase, r);
}

static int bootstrap_run(struct rm_worker *w, const char *prefix, const char *phase, uint32_t nranks, uint32_t rank,
                         const struct rm_collective_ops *ops, void *ctx, int64_t timeout_ns) {
        unsigned char id[RM_BOOTSTRAP_ID_MAX];
        int64_t start = now_ns(), deadline = deadline_after(timeout_ns), next_check;
        int r;

        check_arg(w && phase && ops, -EINVAL);
        check_arg(ops->id_size > 0 && ops->id_size <= RM_BOOTSTRAP_ID_MAX, -EINVAL);
        check_arg(ops->make_id && ops->start && ops->poll && ops->abort, -EINVAL);
        check_arg(nranks > 0 && nranks <= RM_WORKER_MAX_RANKS && rank < nranks, -EINVAL);
        rmpriv_clear_error();
        r = prefix_check(prefix);
        if (r < 0)
                return r;

        r = rm_bootstrap_mark(w, prefix, rank, RM_RANK_JOINED);
        if (r < 0)
                return r;
        if (rank == 0) {
                r = ops->make_id(ctx, id);
                if (r >= 0)
                        r = rm_bootstrap_publish_id(w, prefix, nranks, id, ops->id_size);
        } else {
                r = rm_bootstrap_fetch_id(w, prefix, nranks, id, ops->id_size, deadline_left(deadline));
                if (r == -ETIMEDOUT)
                        r = timeout_error(w, prefix, phase, nranks, rank, start);
                else if (r == -EOWNERDEAD) {
                        /* Rank 0 is gone; it may have given up because of another rank. */
                        int blamed = 0, f = find_fault(w, prefix, phase, nranks, rank, start, &blamed);

                        if (f < 0)
                                return give_up(w, prefix, rank, f, blamed);
                        return give_up(w, prefix, rank, r, 0);
                }
        }
        if (r < 0)
                return give_up(w, prefix, rank, r, r == -ETIMEDOUT ? -1 : (int) rank);

        r = ops->start(ctx, id, nranks, rank);
        if (r < 0)
                return give_up(w, prefix, rank, r, (int) rank);

        /*
         * Poll with a short sleep in between: NCCL (the library this is for)
         * offers no file descriptor or condition to wait on while a
         * non-blocking initialisation proceeds, only ncclCommGetAsyncError().
         */
        next_check = now_ns() + LIVENESS_INTERVAL_NS;
        for (;;) {
                int64_t now;

                r = ops->poll(ctx);
                if (r != -EINPROGRESS)
                        break;
                now = now_ns();
                if (now >= deadline) {
                        ops->abort(ctx);
                        r = timeout_error(w, prefix, phase, nranks, rank, start);
                        return give_up(w, prefix, rank, r, -1);
                }
                if (now >= next_check) {
                        int blamed = -1;

                        r = find_fault(w, prefix, phase, nranks, rank, start, &blamed);
                        if (r < 0) {
                                ops->abort(ctx);
                                return give_up(w, prefix, rank, r, blamed);
                        }
                        next_check = now + LIVENESS_INTERVAL_NS;
                }
                nanosleep(&(struct timespec) { .tv_nsec = POLL_INTERVAL_NS }, NULL);
        }
        if (r < 0) {
                ops->abort(ctx);
                if (!rm_last_error()[0])
                        rmpriv_set_error("%s failed: %s", phase, strerror(-r));
                return give_up(w, prefix, rank, r, (int) rank);
        }
        return rm_bootstrap_mark(w, prefix, rank, RM_RANK_READY);
}

/* SPDX-License-Identifier: MIT */
/* The serving loops: rank 0's scheduler and the workers (serve.h). */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "serve.h"
#include "shmring.h"

static int64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void timeline_mark(struct timeline *t, const char *name) {
        if (t->n >= TIMELINE_MAX)
                return;
        snprintf(t->name[t->n], sizeof(t->name[t->n]), "%s", name);
        t->ns[t->n++] = mono_ns();
}

static size_t timeline_text(const struct timeline *t, char *buf, size_t size) {
        size_t len = 0;
        buf[0] = 0;
        for (int i = 0; i < t->n && len < size; i++)
                len += (size_t) snprintf(buf + len, size - len, "%s=%" PRId64 "\n", t->name[i], t->ns[i]);
        return len < size ? len : size - 1;
}

/* ------------------------------------------------------------ workers */

int serve_worker(const struct serve_args *a) {
        struct backend *b = a->backend;
        const size_t max_seqs = (size_t) b->opts.max_slots, max_tokens = (size_t) b->opts.max_step_tokens;
        struct step_seq *seqs = calloc(max_seqs, sizeof(*seqs));
        int32_t *tokens = calloc(max_tokens, sizeof(*tokens));
        struct result_sample *samples = calloc(max_seqs, sizeof(*samples));
        float *logits = calloc(max_seqs * (size_t) b->shard.n_vocab, sizeof(float));
        int r = -ENOMEM;

        if (!seqs || !tokens || !samples || !logits)
                goto out;
        for (;;) {
                struct shmring_msg msg;
                struct step_header h;
                struct result_header rh = { .magic = RESULT_MAGIC, .kind = RESULT_STEP, .rank = (uint32_t) a->rank };
                struct step_output o = { .samples = samples };
                struct iovec iov[3];
                int64_t t0, t1;
                int n;

                r = shmring_recv_zc(a->sched_rx, &msg, 1000000000);
                t0 = mono_ns();
                if (r == -ETIMEDOUT || r == -EINTR) {
                        a->heartbeat();
                        continue;
                }
                if (r < 0) {
                        fprintf(stderr, "ringmaster-engine: rank %d: receiving the next step: %s\n", a->rank,
                                r == -EOWNERDEAD || r == -EPIPE ? "rank 0 (the scheduler) is gone" : strerror(-r));
                        goto out;
                }
                if (msg.len < sizeof(h)) {
                        r = -EBADMSG;
                        fprintf(stderr, "ringmaster-engine: rank %d: a step message of %zu bytes\n", a->rank, msg.len);
                        goto out;
                }
                memcpy(&h, msg.data, sizeof(h));
                if (h.magic != STEP_MAGIC || h.n_seqs > max_seqs || h.n_tokens > max_tokens ||
                    msg.len != sizeof(h) + h.n_seqs * sizeof(struct step_seq) + h.n_tokens * sizeof(int32_t)) {
                        r = -EBADMSG;
                        fprintf(stderr,
                                "ringmaster-engine: rank %d: a malformed step message (ranks started with different "
                                "--max-batch or --max-step-tokens?)\n",
                                a->rank);
                        goto out;
                }
                memcpy(seqs, (const char *) msg.data + sizeof(h), h.n_seqs * sizeof(struct step_seq));
                memcpy(tokens, (const char *) msg.data + sizeof(h) + h.n_seqs * sizeof(struct step_seq),
                       h.n_tokens * sizeof(int32_t));
                shmring_recv_done(a->sched_rx);
                a->heartbeat();

                if (h.kind == STEP_STOP) {
                        char text[2048];
                        rh.kind = RESULT_BYE;
                        rh.step = h.step;
                        rh.payload_len = (uint32_t) timeline_text(a->timeline, text, sizeof(text));
                        rh.sent_ns = mono_ns();
                        iov[0] = (struct iovec) { &rh, sizeof(rh) };
                        iov[1] = (struct iovec) { text, rh.payload_len };
                        r = shmring_sendv(a->results_tx, iov, 2, a->step_timeout_ns);
                        if (r < 0)
                                fprintf(stderr, "ringmaster-engine: rank %d: sending the timeline: %s\n", a->rank,
                                        strerror(-r));
                        goto out;
                }
                if (a->at_step)
                        a->at_step(h.step);
                if (h.flags & STEP_WANT_LOGITS)
                        o.logits = logits;
                n = b->ops->forward(b, seqs, h.n_seqs, tokens, h.n_tokens, &o);
                t1 = mono_ns();
                if (n < 0) {
                        r = n;
                        fprintf(stderr, "ringmaster-engine: rank %d: step %" PRIu64 ": %s\n", a->rank, h.step, b->error);
                        goto out;
                }
                rh.step = h.step;
                rh.n_samples = (uint32_t) n;
                rh.step_recv_ns = t0;
                rh.compute_ns = t1 - t0;
                rh.allreduce_ns = o.allreduce_ns;
                rh.n_vocab = o.logits ? (uint32_t) b->shard.n_vocab : 0;
                iov[0] = (struct iovec) { &rh, sizeof(rh) };
                iov[1] = (struct iovec) { samples, (size_t) n * sizeof(*samples) };
                iov[2] = (struct iovec) { logits, o.logits ? (size_t) n * b->shard.n_vocab * sizeof(float) : 0 };
                rh.sent_ns = mono_ns();
                r = shmring_sendv(a->results_tx, iov, 3, a->step_timeout_ns);
                if (r < 0) {
                        fprintf(stderr, "ringmaster-engine: rank %d: sending step %" PRIu64 "'s result: %s%s\n", a->rank,
                                h.step, strerror(-r),
                                r == -EMSGSIZE ? " (the logits do not fit the results channel: raise ringmaster's "
                                                 "--shm-queue-overflow)"
                                               : "");
                        goto out;
                }
        }
out:
        free(seqs);
        free(tokens);
        free(samples);
        free(logits);
        return r < 0 ? r : 0;
}

/* ------------------------------------------------------------- rank 0 */

struct step_stat {
        uint64_t step;
        uint32_t n_seqs, n_tokens, n_samples;
        int64_t sched_ns, bcast_ns, compute_ns, allreduce_ns, gather_ns, total_ns;
};

struct input {
        int fd;
        bool eof;
        char *buf;
        size_t len, cap;
        unsigned long lineno;
};

/* Reads what is there (waiting up to timeout_ms) and queues every complete line. */
static int read_input(struct input *in, struct scheduler *s, int timeout_ms) {
        struct pollfd p = { .fd = in->fd, .events = POLLIN };
        int r;

        if (in->eof)
                return 0;
        r = poll(&p, 1, timeout_ms);
        if (r < 0)
                return errno == EINTR ? 0 : -errno;
        if (r == 0)
                return 0;
        for (int rounds = 0; rounds < 16; rounds++) {
                ssize_t n;
                if (in->cap - in->len < 65536) {
                        char *nb = realloc(in->buf, in->cap * 2 + 65536);
                        if (!nb)
                                return -ENOMEM;
                        in->buf = nb;
                        in->cap = in->cap * 2 + 65536;
                }
                n = read(in->fd, in->buf + in->len, in->cap - in->len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        break;
                if (n < 0)
                        return -errno;
                if (n == 0) {
                        in->eof = true;
                        if (in->len) {                /* a last line without a newline */
                                r = scheduler_add_line(s, in->buf, in->len, ++in->lineno, mono_ns());
                                in->len = 0;
                                if (r < 0)
                                        return r;
                        }
                        break;
                }
                in->len += (size_t) n;
                char *start = in->buf, *nl;
                while ((nl = memchr(start, '\n', in->len - (size_t) (start - in->buf)))) {
                        r = scheduler_add_line(s, start, (size_t) (nl - start), ++in->lineno, mono_ns());
                        if (r < 0)
                                return r;
                        start = nl + 1;
                }
                in->len -= (size_t) (start - in->buf);
                memmove(in->buf, start, in->len);
                if ((size_t) n < 65536)
                        break;
                p.revents = 0;
                if (poll(&p, 1, 0) <= 0)
                        break;
        }
        return 0;
}

static int cmp_i64(const void *a, const void *b) {
        int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
        return x < y ? -1 : x > y;
}

/* mean, p50, p99 of one field over the steps that match (decode-only or all). */
static void stat_line(FILE *f, const char *label, const struct step_stat *st, size_t n, size_t off, bool decode_only) {
        int64_t *v = malloc((n ? n : 1) * sizeof(int64_t));
        size_t k = 0;
        double sum = 0;

        if (!v)
                return;
        for (size_t i = 0; i < n; i++) {
                if (decode_only && st[i].n_tokens != st[i].n_seqs)
                        continue;
                v[k] = *(const int64_t *) ((const char *) &st[i] + off);
                sum += (double) v[k++];
        }
        if (k) {
                qsort(v, k, sizeof(int64_t), cmp_i64);
                fprintf(f, "  %-26s %10.1f %10.1f %10.1f\n", label, sum / (double) k / 1e3, (double) v[k / 2] / 1e3,
                        (double) v[(k * 99) / 100 < k ? (k * 99) / 100 : k - 1] / 1e3);
        }
        free(v);
}

static void print_split(FILE *f, const struct step_stat *st, size_t n, bool decode_only, int world) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                if (!decode_only || st[i].n_tokens == st[i].n_seqs)
                        k++;
        if (!k)
                return;
        fprintf(f, "%s steps (%zu), microseconds:   mean        p50        p99\n", decode_only ? "decode-only" : "all",
                k);
        if (world > 1) {
                stat_line(f, "control plane: broadcast", st, n, offsetof(struct step_stat, bcast_ns), decode_only);
                stat_line(f, "control plane: gather", st, n, offsetof(struct step_stat, gather_ns), decode_only);
        }
        stat_line(f, "scheduling", st, n, offsetof(struct step_stat, sched_ns), decode_only);
        stat_line(f, "compute (rank 0)", st, n, offsetof(struct step_stat, compute_ns), decode_only);
        if (world > 1)
                stat_line(f, "all-reduce (rank 0)", st, n, offsetof(struct step_stat, allreduce_ns), decode_only);
        stat_line(f, "step", st, n, offsetof(struct step_stat, total_ns), decode_only);
}

static void print_timelines(FILE *f, const struct timeline *tl, int world, int64_t origin) {
        /* Every phase any rank entered, in rank 0's order first. */
        char names[TIMELINE_MAX * 4][32];
        int n = 0;

        for (int r = 0; r < world; r++)
                for (int i = 0; i < tl[r].n; i++) {
                        bool seen = false;
                        for (int j = 0; j < n; j++)
                                seen |= strcmp(names[j], tl[r].name[i]) == 0;
                        if (!seen && n < TIMELINE_MAX * 4)
                                snprintf(names[n++], 32, "%s", tl[r].name[i]);
                }
        fprintf(f, "phase timeline (ms since rank 0 started):\n  %-16s", "phase");
        for (int r = 0; r < world && r < 16; r++)
                fprintf(f, "  rank %-4d", r);
        fputc('\n', f);
        for (int j = 0; j < n; j++) {
                fprintf(f, "  %-16s", names[j]);
                for (int r = 0; r < world && r < 16; r++) {
                        int64_t at = -1;
                        for (int i = 0; i < tl[r].n; i++)
                                if (strcmp(tl[r].name[i], names[j]) == 0)
                                        at = tl[r].ns[i];
                        if (at < 0)
                                fprintf(f, "  %9s", "-");
                        else
                                fprintf(f, "  %9.1f", (double) (at - origin) / 1e6);
                }
                fputc('\n', f);
        }
        if (world > 16)
                fprintf(f, "  (ranks 16 and up not shown)\n");
}

static int parse_timeline(const char *text, size_t len, struct timeline *t) {
        const char *p = text, *end = text + len;
        t->n = 0;
        while (p < end && t->n < TIMELINE_MAX) {
                const char *eq = memchr(p, '=', (size_t) (end - p)), *nl;
                if (!eq)
                        break;
                nl = memchr(eq, '\n', (size_t) (end - eq));
                if (!nl)
                        nl = end;
                snprintf(t->name[t->n], sizeof(t->name[0]), "%.*s", (int) (eq - p), p);
                t->ns[t->n++] = strtoll(eq + 1, NULL, 10);
                p = nl + 1;
        }
        return 0;
}

/* Receives one message from the results queue, heartbeating while it waits. */
static ssize_t recv_result(const struct serve_args *a, void *buf, size_t size) {
        int64_t waited = 0;
        for (;;) {
                ssize_t n = shmring_recv(a->results_rx, buf, size, 1000000000);
                if (n != -ETIMEDOUT && n != -EINTR)
                        return n;
                a->heartbeat();
                waited += 1000000000;
                if (a->step_timeout_ns > 0 && waited >= a->step_timeout_ns)
                        return -ETIMEDOUT;
        }
}

int serve_rank0(const struct serve_args *a) {
        struct backend *b = a->backend;
        const int world = a->world, max_seqs = b->opts.max_slots, V = b->cfg.vocab;
        const size_t max_vocab_slice = (size_t) V / (size_t) world + 1;
        const size_t result_size = sizeof(struct result_header) + (size_t) max_seqs * sizeof(struct result_sample) +
                                   (a->logits_out ? (size_t) max_seqs * max_vocab_slice * sizeof(float) : 0) + 4096;
        struct scheduler *s = NULL;
        struct input in = { .fd = a->in_fd };
        struct step_seq *seqs = calloc((size_t) max_seqs, sizeof(*seqs));
        int32_t *tokens = calloc((size_t) b->opts.max_step_tokens, sizeof(int32_t));
        struct result_sample *best = calloc((size_t) max_seqs, sizeof(*best));
        int32_t *sampled = calloc((size_t) max_seqs, sizeof(int32_t));
        float *logits = a->logits_out ? calloc((size_t) max_seqs * V, sizeof(float)) : NULL;
        unsigned char *rbuf = calloc(1, result_size);
        struct timeline *tl = calloc((size_t) world, sizeof(*tl));
        struct step_stat *stats = NULL;
        size_t n_stats = 0, cap_stats = 0;
        uint64_t step = 0, generated = 0, prompt_tokens = 0, answered = 0, errors = 0;
        int64_t serve_start, serve_end, first_step_ns = 0;
        int r = -ENOMEM;

        if (!seqs || !tokens || !best || !sampled || (a->logits_out && !logits) || !rbuf || !tl)
                goto out;
        r = scheduler_new(&a->sched, &s);
        if (r < 0)
                goto out;
        tl[0] = *a->timeline;
        serve_start = mono_ns();

        for (;;) {
                struct step_header h = { .magic = STEP_MAGIC, .kind = STEP_FORWARD };
                struct step_output o = { .samples = best, .logits = logits };
                struct step_stat st = { 0 };
                struct request *fin;
                int64_t t0, t1, t2, t3, t4, last_sent = 0, last_recv = 0;
                uint32_t nt;
                int n, ns;

                r = read_input(&in, s, scheduler_pending(s) ? 0 : 1000);
                if (r < 0) {
                        fprintf(stderr, "ringmaster-engine: reading requests: %s\n", strerror(-r));
                        goto out;
                }
                while ((fin = scheduler_pop_finished(s))) {
                        if (fin->finish == FINISH_ERROR) {
                                errors++;
                                fprintf(stderr, "ringmaster-engine: %s\n", fin->error ? fin->error : "out of memory");
                        } else {
                                generated += (uint64_t) fin->n_out;
                                prompt_tokens += (uint64_t) fin->n_prompt;
                        }
                        answered++;
                        request_write_json(fin, a->out);
                        request_free(fin);
                }
                if (in.eof && scheduler_pending(s) == 0)
                        break;
                if (!scheduler_pending(s)) {
                        a->heartbeat();
                        continue;
                }
                t0 = mono_ns();
                n = scheduler_next_step(s, seqs, tokens, &nt);
                if (n == 0)
                        continue;
                if (!first_step_ns)
                        first_step_ns = t0;
                h.step = ++step;
                h.n_seqs = (uint32_t) n;
                h.n_tokens = nt;
                h.flags = a->logits_out ? STEP_WANT_LOGITS : 0;
                t1 = mono_ns();
                if (world > 1) {
                        struct iovec iov[3] = {
                                { &h, sizeof(h) },
                                { seqs, (size_t) n * sizeof(*seqs) },
                                { tokens, nt * sizeof(int32_t) },
                        };
                        h.sent_ns = t1;
                        r = shmring_sendv(a->sched_tx, iov, 3, a->step_timeout_ns);
                        if (r < 0) {
                                fprintf(stderr, "ringmaster-engine: broadcasting step %" PRIu64 ": %s\n", step,
                                        r == -EOWNERDEAD ? "a rank died" : strerror(-r));
                                goto out;
                        }
                }
                if (a->at_step)
                        a->at_step(step);
                t2 = mono_ns();
                ns = b->ops->forward(b, seqs, (uint32_t) n, tokens, nt, &o);
                t3 = mono_ns();
                if (ns < 0) {
                        r = ns;
                        fprintf(stderr, "ringmaster-engine: rank 0: step %" PRIu64 ": %s\n", step, b->error);
                        goto out;
                }
                /* Rank 0's slice is the first; the others' follow in rank order (ties: the smallest index). */
                if (logits && b->shard.n_vocab < V)
                        for (int i = ns - 1; i >= 0; i--)
                                memmove(logits + (size_t) i * V, logits + (size_t) i * b->shard.n_vocab,
                                        (size_t) b->shard.n_vocab * sizeof(float));
                struct result_sample *per_rank = NULL;
                if (world > 1) {
                        per_rank = calloc((size_t) world * (size_t) (ns ? ns : 1), sizeof(*per_rank));
                        if (!per_rank) {
                                r = -ENOMEM;
                                goto out;
                        }
                }
                for (int w = 1; w < world; w++) {
                        struct result_header rh;
                        ssize_t len = recv_result(a, rbuf, result_size);
                        int64_t now = mono_ns();
                        if (len < 0) {
                                r = (int) len;
                                fprintf(stderr, "ringmaster-engine: gathering step %" PRIu64 ": %s\n", step,
                                        len == -EOWNERDEAD ? "a rank died"
                                        : len == -ETIMEDOUT ? "a rank did not answer within the step timeout"
                                                            : strerror(-r));
                                free(per_rank);
                                goto out;
                        }
                        memcpy(&rh, rbuf, sizeof(rh));
                        if ((size_t) len < sizeof(rh) || rh.magic != RESULT_MAGIC || rh.kind != RESULT_STEP ||
                            rh.step != step || rh.rank == 0 || rh.rank >= (uint32_t) world || rh.n_samples != (uint32_t) ns ||
                            (size_t) len != sizeof(rh) + ns * sizeof(struct result_sample) +
                                                    (size_t) ns * rh.n_vocab * sizeof(float)) {
                                r = -EBADMSG;
                                fprintf(stderr, "ringmaster-engine: step %" PRIu64 ": an unexpected result from rank %u\n",
                                        step, rh.rank);
                                free(per_rank);
                                goto out;
                        }
                        memcpy(per_rank + (size_t) rh.rank * ns, rbuf + sizeof(rh), (size_t) ns * sizeof(struct result_sample));
                        if (logits && rh.n_vocab) {
                                int v0 = (int) ((int64_t) V * rh.rank / world);
                                for (int i = 0; i < ns; i++)
                                        memcpy(logits + (size_t) i * V + v0,
                                               rbuf + sizeof(rh) + ns * sizeof(struct result_sample) +
                                                       (size_t) i * rh.n_vocab * sizeof(float),
                                               rh.n_vocab * sizeof(float));
                        }
                        if (rh.step_recv_ns - h.sent_ns > st.bcast_ns)
                                st.bcast_ns = rh.step_recv_ns - h.sent_ns;
                        last_sent = rh.sent_ns > last_sent ? rh.sent_ns : last_sent;
                        last_recv = now;
                }
                for (int i = 0; i < ns; i++) {
                        for (int w = 1; w < world; w++) {
                                const struct result_sample *c = &per_rank[(size_t) w * ns + i];
                                if (c->value > best[i].value)
                                        best[i] = *c;
                        }
                        sampled[i] = best[i].index;
                }
                free(per_rank);
                t4 = mono_ns();
                if (a->logits_out)
                        for (int i = 0; i < ns; i++) {
                                const struct request *rq = scheduler_sample_request(s, (uint32_t) i);
                                fputs("{\"id\":", a->logits_out);
                                json_write_compact_string(a->logits_out, rq->id);
                                fprintf(a->logits_out, ",\"position\":%d,\"token\":%d,\"logits\":[", rq->n_out,
                                        sampled[i]);
                                for (int j = 0; j < V; j++)
                                        fprintf(a->logits_out, "%s%.9g", j ? "," : "", logits[(size_t) i * V + j]);
                                fputs("]}\n", a->logits_out);
                        }
                scheduler_complete(s, sampled, (uint32_t) ns, t4);

                st.step = step;
                st.n_seqs = (uint32_t) n;
                st.n_tokens = nt;
                st.n_samples = (uint32_t) ns;
                st.sched_ns = t1 - t0;
                st.allreduce_ns = o.allreduce_ns;
                st.compute_ns = (t3 - t2) - o.allreduce_ns;
                if (world > 1) {
                        int64_t ready = last_sent > t3 ? last_sent : t3;
                        st.gather_ns = last_recv > ready ? last_recv - ready : 0;
                }
                st.total_ns = t4 - t0;
                if (a->step_log)
                        fprintf(a->step_log,
                                "{\"step\":%" PRIu64 ",\"seqs\":%u,\"tokens\":%u,\"samples\":%u,\"sched_us\":%.1f,"
                                "\"broadcast_us\":%.1f,\"compute_us\":%.1f,\"allreduce_us\":%.1f,\"gather_us\":%.1f,"
                                "\"step_us\":%.1f}\n",
                                st.step, st.n_seqs, st.n_tokens, st.n_samples, st.sched_ns / 1e3, st.bcast_ns / 1e3,
                                st.compute_ns / 1e3, st.allreduce_ns / 1e3, st.gather_ns / 1e3, st.total_ns / 1e3);
                if (n_stats == cap_stats) {
                        struct step_stat *ns2 = realloc(stats, (cap_stats * 2 + 256) * sizeof(*stats));
                        if (!ns2) {
                                r = -ENOMEM;
                                goto out;
                        }
                        stats = ns2;
                        cap_stats = cap_stats * 2 + 256;
                }
                stats[n_stats++] = st;
                a->heartbeat();
        }
        serve_end = mono_ns();

        /* Stop the workers and collect their timelines. */
        if (world > 1) {
                struct step_header h = { .magic = STEP_MAGIC, .kind = STEP_STOP, .step = step + 1, .sent_ns = mono_ns() };
                r = shmring_send(a->sched_tx, &h, sizeof(h), a->step_timeout_ns);
                if (r < 0) {
                        fprintf(stderr, "ringmaster-engine: sending stop: %s\n", strerror(-r));
                        goto out;
                }
                for (int w = 1; w < world; w++) {
                        struct result_header rh;
                        ssize_t len = recv_result(a, rbuf, result_size);
                        if (len < (ssize_t) sizeof(rh)) {
                                fprintf(stderr, "ringmaster-engine: waiting for the ranks to stop: %s\n",
                                        len < 0 ? strerror((int) -len) : "a short message");
                                break;
                        }
                        memcpy(&rh, rbuf, sizeof(rh));
                        if (rh.magic == RESULT_MAGIC && rh.kind == RESULT_BYE && rh.rank < (uint32_t) world &&
                            sizeof(rh) + rh.payload_len <= (size_t) len)
                                parse_timeline((const char *) rbuf + sizeof(rh), rh.payload_len, &tl[rh.rank]);
                }
        }

        if (answered == 0)
                fprintf(stderr, "ringmaster-engine: no requests were read%s\n",
                        a->in_fd == 0 ? " (standard input was empty: under ringmaster it is /dev/null, so give "
                                        "--requests FILE or a FIFO)"
                                      : "");
        if (a->summary) {
                FILE *f = a->summary;
                double secs = (double) (serve_end - (first_step_ns ? first_step_ns : serve_start)) / 1e9;
                fprintf(f, "ringmaster-engine: %" PRIu64 " requests (%" PRIu64 " rejected), %" PRIu64
                           " prompt tokens, %" PRIu64 " tokens generated in %" PRIu64 " steps, %.3f s: %.1f tokens/s generated, "
                           "%.1f tokens/s in all (TP=%d, %s, all-reduce %s)\n",
                        answered, errors, prompt_tokens, generated, step, secs, secs > 0 ? (double) generated / secs : 0,
                        secs > 0 ? (double) (generated + prompt_tokens) / secs : 0, world, b->ops->name,
                        b->coll && world > 1 ? b->coll->ops->name : "none");
                print_split(f, stats, n_stats, false, world);
                print_split(f, stats, n_stats, true, world);
                print_timelines(f, tl, world, a->start_ns);
                fflush(f);
        }
        r = errors ? -EBADMSG : 0;
out:
        if (r == -ENOMEM)
                fprintf(stderr, "ringmaster-engine: out of memory\n");
        scheduler_free(s);
        free(in.buf);
        free(seqs);
        free(tokens);
        free(best);
        free(sampled);
        free(logits);
        free(rbuf);
        free(tl);
        free(stats);
        return r;
}

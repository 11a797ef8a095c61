/* SPDX-License-Identifier: MIT */
/* shmring-bench: result rows, statistics and the worker processes. */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define RUN_HEADER_SIZE 4096

/* ------------------------------------------------------------- rows */

static struct bench_row rows[BENCH_MAX_ROWS];
static unsigned n_rows;

bool bench_wanted(const struct bench_config *cfg, unsigned section, const char *id) {
        if (cfg->whole_sections & section)
                return true;
        for (unsigned i = 0; i < cfg->n_only_rows; i++)
                if (strcmp(cfg->only_rows[i], id) == 0)
                        return true;
        return false;
}

struct bench_row *bench_row_new(const char *section, const char *id, const char *label) {
        struct bench_row *row;

        if (n_rows >= BENCH_MAX_ROWS)
                abort();                   /* a programming error: raise BENCH_MAX_ROWS */
        row = &rows[n_rows++];
        *row = (struct bench_row) { .section = section, .status = BENCH_OK };
        snprintf(row->id, sizeof(row->id), "%s", id);
        snprintf(row->label, sizeof(row->label), "%s", label);
        return row;
}

struct bench_row *bench_row_find(const char *id) {
        for (unsigned i = 0; i < n_rows; i++)
                if (strcmp(rows[i].id, id) == 0)
                        return &rows[i];
        return NULL;
}

unsigned bench_n_rows(void) {
        return n_rows;
}

struct bench_row *bench_row_at(unsigned i) {
        return i < n_rows ? &rows[i] : NULL;
}

void bench_row_set(struct bench_row *row, enum bench_status status, const char *fmt, ...) {
        va_list ap;

        /* The first error is the one that explains the others. */
        if (row->status == BENCH_ERROR)
                return;
        row->status = status;
        va_start(ap, fmt);
        vsnprintf(row->reason, sizeof(row->reason), fmt, ap);
        va_end(ap);
}

void bench_section_print(const char *title, const char *columns) {
        printf("\n%-44s%s\n", title, columns);
        fflush(stdout);
}

void bench_row_print(const struct bench_row *row) {
        char a[32], b[32], c[32], note[64] = "";

        /* A spinning worker that lost its CPU measured the machine's load, not the transport. */
        if (row->status == BENCH_OK && row->preemptions > 0 && row->mode && strcmp(row->mode, "spin") == 0)
                snprintf(note, sizeof(note), "  (preempted %" PRIu64 "x)", row->preemptions);

        if (row->status != BENCH_OK) {
                printf("  %-42s%s: %s\n", row->label, row->status == BENCH_NA ? "n/a" : "ERROR", row->reason);
        } else if (row->is_rate) {
                if (row->size >= 1024 * 1024)
                        printf("  %-42s%10.0f MiB/s %9.0f msg/s   cpus %s%s\n", row->label,
                               (double) row->bytes / (1024.0 * 1024.0) / row->seconds,
                               (double) row->messages / row->seconds, row->cpus, note);
                else
                        printf("  %-42s%10.2f M msg/s %7.0f MiB/s   cpus %s%s\n", row->label,
                               (double) row->messages / row->seconds / 1e6,
                               (double) row->bytes / (1024.0 * 1024.0) / row->seconds, row->cpus, note);
        } else {
                printf("  %-42s%9" PRIu64 " %10s %10s %10s   cpus %s%s\n", row->label, row->latency.samples,
                       bench_format_ns(row->latency.p50, a, sizeof(a)),
                       bench_format_ns(row->latency.p99, b, sizeof(b)),
                       bench_format_ns(row->latency.p999, c, sizeof(c)), row->cpus, note);
        }
        fflush(stdout);
}

/* ------------------------------------------------------------ stats */

static int compare_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/*
 * Nearest rank: the smallest sample with at least per_mille / 1000 of all
 * samples at or below it.
 */
static double percentile(const uint64_t *sorted, size_t n, unsigned per_mille, double divisor) {
        size_t rank = (n * per_mille + 999) / 1000;

        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return (double) sorted[rank - 1] / divisor;
}

void bench_stats_compute(uint64_t *samples, size_t n, double divisor, struct bench_stats *ret) {
        double sum = 0;

        *ret = (struct bench_stats) { .samples = n };
        if (n == 0)
                return;
        qsort(samples, n, sizeof(*samples), compare_u64);
        for (size_t i = 0; i < n; i++)
                sum += (double) samples[i];
        ret->min = (double) samples[0] / divisor;
        ret->max = (double) samples[n - 1] / divisor;
        ret->mean = sum / (double) n / divisor;
        ret->p50 = percentile(samples, n, 500, divisor);
        ret->p99 = percentile(samples, n, 990, divisor);
        ret->p999 = percentile(samples, n, 999, divisor);
}

char *bench_format_ns(double ns, char *buf, size_t size) {
        if (ns < 1e3)
                snprintf(buf, size, "%.0f ns", ns);
        else if (ns < 1e6)
                snprintf(buf, size, "%.2f us", ns / 1e3);
        else if (ns < 1e9)
                snprintf(buf, size, "%.2f ms", ns / 1e6);
        else
                snprintf(buf, size, "%.2f s", ns / 1e9);
        return buf;
}

/* ---------------------------------------------------------- workers */

void bench_futex_wait(_Atomic uint32_t *word, uint32_t expected) {
        /* EAGAIN (the word changed), EINTR: the caller rechecks its condition. */
        (void) syscall(SYS_futex, word, FUTEX_WAIT, expected, NULL, NULL, 0);
}

void bench_futex_wake(_Atomic uint32_t *word) {
        (void) syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

struct bench_run *bench_run_new(unsigned n_workers, size_t extra_size) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        size_t size = RUN_HEADER_SIZE + (extra_size + page - 1) / page * page;
        struct bench_run *run;

        _Static_assert(sizeof(struct bench_run) <= RUN_HEADER_SIZE, "run header too large");
        run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (run == MAP_FAILED)
                return NULL;
        run->n_workers = n_workers;
        run->mapping_size = size;
        return run;
}

struct bench_run *bench_run_free(struct bench_run *run) {
        if (!run)
                return NULL;
        munmap(run, run->mapping_size);
        return NULL;
}

void *bench_run_extra(struct bench_run *run) {
        return (unsigned char *) run + RUN_HEADER_SIZE;
}

int bench_fail(struct bench_run *run, int err, const char *fmt, ...) {
        uint32_t expected = 0;
        va_list ap;

        if (atomic_compare_exchange_strong(&run->failed, &expected, 1)) {
                va_start(ap, fmt);
                vsnprintf(run->error, sizeof(run->error), fmt, ap);
                va_end(ap);
        }
        /* Release whoever waits at the barrier: the run is over. */
        atomic_fetch_add(&run->barrier_generation, 1);
        bench_futex_wake(&run->barrier_generation);
        return err < 0 ? err : -EIO;
}

uint64_t bench_measure_begin(void) {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (uint64_t) ru.ru_nivcsw;
}

void bench_measure_end(struct bench_run *run, uint64_t begin) {
        uint64_t end = bench_measure_begin();

        if (end > begin)
                atomic_fetch_add(&run->preemptions, end - begin);
}

int bench_barrier(struct bench_run *run) {
        uint32_t generation = atomic_load(&run->barrier_generation);

        if (atomic_fetch_add(&run->barrier_arrived, 1) + 1 == run->n_workers) {
                atomic_store(&run->barrier_arrived, 0);
                atomic_fetch_add(&run->barrier_generation, 1);
                bench_futex_wake(&run->barrier_generation);
        } else {
                while (atomic_load(&run->barrier_generation) == generation)
                        bench_futex_wait(&run->barrier_generation, generation);
        }
        return atomic_load(&run->failed) ? -ECANCELED : 0;
}

static int pin(const struct bench_config *cfg, int cpu) {
        cpu_set_t set;

        CPU_ZERO(&set);
        if (cpu >= 0)
                CPU_SET(cpu, &set);
        else
                for (unsigned i = 0; i < cfg->n_cpus; i++)
                        CPU_SET(cfg->cpus[i], &set);
        if (sched_setaffinity(0, sizeof(set), &set) < 0)
                return -errno;
        return 0;
}

void bench_describe_cpus(const struct bench_config *cfg, unsigned n, const struct bench_worker *workers,
                         char *buf, size_t size) {
        size_t used = 0;

        buf[0] = '\0';
        for (unsigned i = 0; i < n && used + 1 < size; i++) {
                if (workers[i].cpu < 0) {
                        snprintf(buf, size, "shared: %u processes on %u CPUs", n, cfg->n_cpus);
                        return;
                }
                used += (size_t) snprintf(buf + used, size - used, "%s%d", i ? "," : "", workers[i].cpu);
        }
}

int bench_run_workers(const struct bench_config *cfg, struct bench_run *run, unsigned n,
                      const struct bench_worker *workers, struct bench_row *row) {
        pid_t pids[BENCH_MAX_CPUS + 1];
        pid_t parent = getpid();
        unsigned started = 0, running;
        int ret = 0;

        if (n > BENCH_MAX_CPUS + 1)
                return -E2BIG;
        run->n_workers = n;
        fflush(NULL);                      /* children must not repeat buffered output */

        for (; started < n; started++) {
                pid_t pid = fork();

                if (pid < 0) {
                        ret = -errno;
                        bench_row_set(row, BENCH_ERROR, "fork: %s", strerror(errno));
                        break;
                }
                if (pid == 0) {
                        int r;

                        /* A worker never outlives the parent, nor its time limit. */
                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                        if (getppid() != parent)
                                _exit(EXIT_FAILURE);
                        alarm(cfg->worker_timeout_s);
                        r = pin(cfg, workers[started].cpu);
                        if (r < 0)
                                bench_fail(run, r, "cannot pin a worker to CPU %d: %s", workers[started].cpu,
                                           strerror(-r));
                        else
                                r = workers[started].fn(run, started, workers[started].arg);
                        if (r < 0 && !atomic_load(&run->failed))
                                bench_fail(run, r, "worker %u failed: %s", started, strerror(-r));
                        _exit(r < 0 ? EXIT_FAILURE : EXIT_SUCCESS);
                }
                pids[started] = pid;
        }
        if (ret < 0)                       /* workers already started wait at a barrier */
                bench_fail(run, ret, "fork failed");

        for (running = started; running > 0; running--) {
                int status;
                pid_t pid = waitpid(-1, &status, 0);
                unsigned index;

                if (pid < 0) {
                        if (errno == EINTR) {
                                running++;
                                continue;
                        }
                        break;
                }
                for (index = 0; index < started && pids[index] != pid; index++)
                        ;
                if (index == started) {    /* not ours: this program has no other children */
                        running++;
                        continue;
                }
                pids[index] = 0;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                        continue;
                if (ret == 0) {
                        ret = -EIO;
                        if (atomic_load(&run->failed))
                                bench_row_set(row, BENCH_ERROR, "%s", run->error);
                        else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
                                bench_row_set(row, BENCH_ERROR, "worker %u was still running after %u s",
                                              index, cfg->worker_timeout_s);
                        else if (WIFSIGNALED(status))
                                bench_row_set(row, BENCH_ERROR, "worker %u was killed by signal %d (%s)", index,
                                              WTERMSIG(status), strsignal(WTERMSIG(status)));
                        else
                                bench_row_set(row, BENCH_ERROR, "worker %u exited with status %d", index,
                                              WEXITSTATUS(status));
                        /* The others may wait on it forever (a spinning peer): end them. */
                        for (unsigned i = 0; i < started; i++)
                                if (pids[i] > 0)
                                        kill(pids[i], SIGKILL);
                }
        }
        return ret;
}

/* --------------------------------------------------------------- io */

int bench_read_full(int fd, void *buf, size_t size) {
        unsigned char *p = buf;

        while (size > 0) {
                ssize_t n = read(fd, p, size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EPIPE;
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

int bench_write_full(int fd, const void *buf, size_t size) {
        const unsigned char *p = buf;

        while (size > 0) {
                ssize_t n = write(fd, p, size);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                size -= (size_t) n;
        }
        return 0;
}

/* -------------------------------------------------------- transports */

/* The number goes at both ends of a payload, so a short or partial copy shows. */
void bench_stamp(void *buf, size_t size, uint64_t seq) {
        if (size >= sizeof(seq)) {
                memcpy(buf, &seq, sizeof(seq));
                memcpy((unsigned char *) buf + size - sizeof(seq), &seq, sizeof(seq));
        }
}

int bench_check_stamp(const void *buf, size_t size, uint64_t seq) {
        uint64_t first, last;

        if (size < sizeof(seq))
                return 0;                  /* too small to carry the number */
        memcpy(&first, buf, sizeof(first));
        memcpy(&last, (const unsigned char *) buf + size - sizeof(last), sizeof(last));
        return first == seq && last == seq ? 0 : -EBADMSG;
}

struct transport_job {
        struct bench_transport *transport;
        unsigned warmup;
        uint64_t count;                    /* round trips or streamed messages */
};

static int transport_error(struct bench_run *run, const struct bench_transport *t, unsigned side, const char *what,
                           uint64_t seq, int r) {
        return bench_fail(run, r, "%s: side %u: %s of message %" PRIu64 " failed: %s", t->name, side, what, seq,
                          r == -EBADMSG ? "wrong message (lost, reordered or corrupted)" : strerror(-r));
}

static int pingpong_worker(struct bench_run *run, unsigned side, void *arg) {
        struct transport_job *job = arg;
        struct bench_transport *t = job->transport;
        uint64_t *samples = bench_run_extra(run);
        uint64_t total = job->warmup + job->count, t0 = 0, t1, switches = 0;
        int r;

        r = t->open(t, run, side);
        if (r < 0)
                return r;
        r = bench_barrier(run);
        for (uint64_t seq = 0; r >= 0 && seq < total; seq++) {
                if (seq == job->warmup)
                        switches = bench_measure_begin();
                if (side == 0) {
                        if (seq == job->warmup)
                                t0 = bench_now_ns();
                        r = t->send(t, side, seq);
                        if (r < 0) {
                                r = transport_error(run, t, side, "send", seq, r);
                                break;
                        }
                        r = t->recv(t, side, seq);
                        if (r < 0) {
                                r = transport_error(run, t, side, "receive", seq, r);
                                break;
                        }
                        if (seq >= job->warmup) {
                                /* One clock read per round trip: the next round trip starts at t1. */
                                t1 = bench_now_ns();
                                samples[seq - job->warmup] = t1 - t0;
                                t0 = t1;
                        }
                } else {
                        r = t->recv(t, side, seq);
                        if (r < 0) {
                                r = transport_error(run, t, side, "receive", seq, r);
                                break;
                        }
                        r = t->send(t, side, seq);
                        if (r < 0) {
                                r = transport_error(run, t, side, "send", seq, r);
                                break;
                        }
                }
        }
        if (r >= 0)
                bench_measure_end(run, switches);
        t->close(t, side);
        return r < 0 ? r : 0;
}

static int stream_worker(struct bench_run *run, unsigned side, void *arg) {
        struct transport_job *job = arg;
        struct bench_transport *t = job->transport;
        uint64_t total = job->warmup + job->count, switches = 0;
        int r;

        r = t->open(t, run, side);
        if (r < 0)
                return r;
        r = bench_barrier(run);
        for (uint64_t seq = 0; r >= 0 && seq < total; seq++) {
                if (seq == job->warmup) {
                        /* Warm-up done on both sides: the measured stream starts together. */
                        r = bench_barrier(run);
                        if (r < 0)
                                break;
                        switches = bench_measure_begin();
                        if (side == 0)
                                atomic_store(&run->t_start, bench_now_ns());
                }
                r = side == 0 ? t->send(t, side, seq) : t->recv(t, side, seq);
                if (r < 0)
                        r = transport_error(run, t, side, side == 0 ? "send" : "receive", seq, r);
        }
        if (r >= 0 && side == 1)
                atomic_store(&run->t_end, bench_now_ns());
        if (r >= 0)
                bench_measure_end(run, switches);
        t->close(t, side);
        return r < 0 ? r : 0;
}

static bool place_pair(const struct bench_config *cfg, struct bench_row *row, struct bench_worker workers[2],
                       bool spins) {
        if (cfg->n_cpus >= 2) {
                workers[0].cpu = cfg->cpus[0];
                workers[1].cpu = cfg->cpus[1];
        } else if (spins) {
                bench_row_set(row, BENCH_NA, "needs 2 CPUs (both sides spin), %u usable", cfg->n_cpus);
                return false;
        } else {
                workers[0].cpu = workers[1].cpu = -1;
                row->shared_cpus = true;
        }
        bench_describe_cpus(cfg, 2, workers, row->cpus, sizeof(row->cpus));
        return true;
}

void bench_pingpong_run(const struct bench_config *cfg, struct bench_row *row, struct bench_transport *t,
                        unsigned samples, bool spins) {
        struct transport_job job = { .transport = t, .warmup = cfg->warmup, .count = samples };
        struct bench_worker workers[2] = {
                { .fn = pingpong_worker, .arg = &job },
                { .fn = pingpong_worker, .arg = &job },
        };
        struct bench_run *run;

        row->size = t->size;
        row->transport = t->name;
        row->mode = spins ? "spin" : "blocking";
        if (!place_pair(cfg, row, workers, spins))
                return;
        run = bench_run_new(2, (size_t) samples * sizeof(uint64_t));
        if (!run) {
                bench_row_set(row, BENCH_ERROR, "cannot map %u samples: %s", samples, strerror(errno));
                return;
        }
        if (bench_run_workers(cfg, run, 2, workers, row) >= 0) {
                bench_stats_compute(bench_run_extra(run), samples, 2.0, &row->latency);
                row->preemptions = atomic_load(&run->preemptions);
        }
        bench_run_free(run);
}

void bench_stream_run(const struct bench_config *cfg, struct bench_row *row, struct bench_transport *t,
                      uint64_t messages, bool spins) {
        struct transport_job job = { .transport = t, .warmup = cfg->warmup, .count = messages };
        struct bench_worker workers[2] = {
                { .fn = stream_worker, .arg = &job },
                { .fn = stream_worker, .arg = &job },
        };
        struct bench_run *run;

        row->is_rate = true;
        row->size = t->size;
        row->transport = t->name;
        row->mode = spins ? "spin" : "blocking";
        if (!place_pair(cfg, row, workers, spins))
                return;
        run = bench_run_new(2, 0);
        if (!run) {
                bench_row_set(row, BENCH_ERROR, "mmap: %s", strerror(errno));
                return;
        }
        if (bench_run_workers(cfg, run, 2, workers, row) >= 0) {
                row->messages = messages;
                row->bytes = messages * t->size;
                row->seconds = (double) (atomic_load(&run->t_end) - atomic_load(&run->t_start)) / 1e9;
                row->preemptions = atomic_load(&run->preemptions);
                if (row->seconds <= 0)
                        bench_row_set(row, BENCH_ERROR, "the stream took no measurable time");
        }
        bench_run_free(run);
}

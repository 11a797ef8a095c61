/* SPDX-License-Identifier: MIT */
#ifndef BENCH_H
#define BENCH_H

/*
 * shmring-bench's shared parts: the run configuration, the result rows that
 * the sections fill and main() prints, and the worker processes every
 * measurement runs in.
 *
 * Every measurement runs in forked worker processes, each pinned to its own
 * CPU where the chosen set has enough of them.  The program never starts a
 * thread, so a forked worker may call anything; it ends with _exit().
 * Workers talk to the coordinating parent through one MAP_SHARED anonymous
 * mapping (struct bench_run and the samples after it).
 */

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define BENCH_MAX_CPUS 1024
#define BENCH_MAX_ROWS 64
/* A blocking call inside a measurement that takes longer than this is a bug. */
#define BENCH_IO_TIMEOUT_NS (INT64_C(10) * 1000 * 1000 * 1000)

enum bench_section {
        BENCH_SECTION_BASELINES = 1u << 0,
        BENCH_SECTION_PINGPONG = 1u << 1,
        BENCH_SECTION_BROADCAST = 1u << 2,
        BENCH_SECTION_THROUGHPUT = 1u << 3,
        BENCH_SECTION_OVERSUBSCRIBED = 1u << 4,
        BENCH_SECTION_ALL = (1u << 5) - 1,
};

struct bench_config {
        const char *mode_name;             /* "full", "quick", "smoke" */
        unsigned sections;                 /* enum bench_section bits: those that run */
        unsigned whole_sections;           /* ... of which every row runs */
        unsigned n_only_rows;
        const char *only_rows[64];         /* and these rows of the others (--only ROW) */
        unsigned spin_samples;             /* round trips per spin-mode ping-pong row */
        unsigned blocking_samples;         /* round trips per blocking ping-pong row */
        unsigned broadcast_messages;       /* messages per broadcast row */
        unsigned warmup;                   /* round trips or messages before measuring */
        uint64_t stream_messages;          /* 64 B streaming */
        uint64_t big_messages;             /* 1 MiB streaming */
        unsigned worker_timeout_s;         /* a worker running longer is killed */
        unsigned n_cpus;
        int cpus[BENCH_MAX_CPUS];          /* in order of preference */
};

enum bench_status {
        BENCH_OK = 0,
        BENCH_NA,                          /* not measurable here: reason says why */
        BENCH_ERROR,                       /* measurement failed: reason says why */
};

struct bench_stats {
        uint64_t samples;
        double min, p50, p99, p999, max, mean;  /* nanoseconds */
};

struct bench_row {
        char id[48];                       /* JSON key */
        const char *section;               /* "latency", "broadcast", "throughput" */
        char label[64];                    /* table text */
        const char *transport;             /* "shmring", "pipe", ... */
        const char *mode;                  /* "spin", "blocking" */
        uint64_t size;                     /* message bytes */
        unsigned readers;                  /* broadcast only */
        enum bench_status status;
        char reason[256];
        char cpus[96];                     /* where the processes ran */
        bool shared_cpus;                  /* fewer CPUs than processes: they shared */
        uint64_t preemptions;              /* the workers lost their CPU this often while measuring */
        bool is_rate;                      /* throughput row, else latency */
        struct bench_stats latency;        /* the one-way figures */
        struct bench_stats slowest;        /* broadcast: the last reader of each message */
        uint64_t messages;                 /* throughput rows */
        uint64_t bytes;
        double seconds;
};

/* ------------------------------------------------------------- rows */

/* Whether --only asks for the row id of that section. */
bool bench_wanted(const struct bench_config *cfg, unsigned section, const char *id);
struct bench_row *bench_row_new(const char *section, const char *id, const char *label);
struct bench_row *bench_row_find(const char *id);
unsigned bench_n_rows(void);
struct bench_row *bench_row_at(unsigned i);
void bench_row_set(struct bench_row *row, enum bench_status status, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Prints a finished row to stdout (the table is printed as it is measured). */
void bench_row_print(const struct bench_row *row);
void bench_section_print(const char *title, const char *columns);

/* ----------------------------------------------------------- timing */

static inline uint64_t bench_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

/* Sorts samples and fills ret; each sample is divided by divisor first. */
void bench_stats_compute(uint64_t *samples, size_t n, double divisor, struct bench_stats *ret);
/* "123 ns", "4.56 us", "7.89 ms" */
char *bench_format_ns(double ns, char *buf, size_t size);

/* ---------------------------------------------------------- workers */

struct bench_run {                         /* at the start of a shared mapping */
        _Atomic uint32_t barrier_arrived;
        _Atomic uint32_t barrier_generation;
        uint32_t n_workers;
        size_t mapping_size;
        _Atomic uint32_t failed;
        _Atomic uint64_t preemptions;      /* involuntary context switches while measuring */
        char error[256];
        _Alignas(128) _Atomic uint64_t t_start;   /* for the sections' use */
        _Alignas(128) _Atomic uint64_t t_end;
        _Alignas(128) unsigned char line[128];    /* one spare line (cache-line ping-pong) */
};

typedef int (*bench_worker_fn)(struct bench_run *run, unsigned index, void *arg);

struct bench_worker {
        bench_worker_fn fn;
        void *arg;
        int cpu;                           /* -1: any CPU of the chosen set */
};

/* A shared mapping: the run header, then extra_size zeroed bytes (page aligned). */
struct bench_run *bench_run_new(unsigned n_workers, size_t extra_size);
struct bench_run *bench_run_free(struct bench_run *run);
void *bench_run_extra(struct bench_run *run);

/*
 * Forks one process per worker, pins it, runs its function and waits for
 * all of them.  When one fails or dies, the others are killed.  Returns 0,
 * or a negative errno with the reason in row (status BENCH_ERROR).
 */
int bench_run_workers(const struct bench_config *cfg, struct bench_run *run, unsigned n,
                      const struct bench_worker *workers, struct bench_row *row);

/* Waits until every worker of the run arrived; -ECANCELED when one failed. */
int bench_barrier(struct bench_run *run);

/*
 * A worker calls these around its measured phase: the involuntary context
 * switches in between (the kernel took the CPU away) add to the run's count.
 */
uint64_t bench_measure_begin(void);
void bench_measure_end(struct bench_run *run, uint64_t begin);

/* Records the run's first error (worker side); returns err (negative). */
int bench_fail(struct bench_run *run, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Futex helpers for process-shared words. */
void bench_futex_wait(_Atomic uint32_t *word, uint32_t expected);
void bench_futex_wake(_Atomic uint32_t *word);

/* "3,5" for the CPUs that a run with these workers uses. */
void bench_describe_cpus(const struct bench_config *cfg, unsigned n, const struct bench_worker *workers,
                         char *buf, size_t size);

/* ------------------------------------------------------- transports */

/*
 * A two-process transport: side 0 sends pings (or the stream), side 1
 * answers (or receives the stream).  The struct is set up before fork;
 * open() runs in each worker and may keep per-process state in it (each
 * worker has its own copy).  send() and recv() carry message number seq of
 * size bytes; recv() checks that what arrived is message seq where the
 * transport can tell.  All return 0 or a negative errno; open() reports
 * its own errors with bench_fail().
 */
struct bench_transport {
        const char *name;
        size_t size;
        int (*open)(struct bench_transport *t, struct bench_run *run, unsigned side);
        int (*send)(struct bench_transport *t, unsigned side, uint64_t seq);
        int (*recv)(struct bench_transport *t, unsigned side, uint64_t seq);
        void (*close)(struct bench_transport *t, unsigned side);
        void *buf;                         /* per process: size bytes, made by open() */
        int fds[4];                        /* made before fork, for fd transports */
        void *userdata;
};

/* Fills row with one-way latencies (round trip / 2, per round trip). */
void bench_pingpong_run(const struct bench_config *cfg, struct bench_row *row, struct bench_transport *t,
                        unsigned samples, bool spins);
/* Fills row with the rate of messages side 0 streams to side 1. */
void bench_stream_run(const struct bench_config *cfg, struct bench_row *row, struct bench_transport *t,
                      uint64_t messages, bool spins);
/* Message numbers travel in a payload's first bytes: */
void bench_stamp(void *buf, size_t size, uint64_t seq);
int bench_check_stamp(const void *buf, size_t size, uint64_t seq);

/* ----------------------------------------------------------- sections */

void bench_baseline_cacheline(const struct bench_config *cfg);
void bench_baseline_blocking(const struct bench_config *cfg);
void bench_baseline_throughput(const struct bench_config *cfg);
/* Removes stale segments of killed runs and checks that /dev/shm works:
 * 0, or a negative errno with the reason and its fix in reason. */
int bench_shmring_init(char *reason, size_t size);
void bench_shmring_pingpong(const struct bench_config *cfg);
void bench_shmring_broadcast(const struct bench_config *cfg);
/* Broadcast under the automatic, spin-50us and yield policies, readers > cores included. */
void bench_shmring_oversubscribed(const struct bench_config *cfg);
void bench_shmring_throughput(const struct bench_config *cfg);

/* Reads, writes and sends everything or fails: 0 or a negative errno. */
int bench_read_full(int fd, void *buf, size_t size);
int bench_write_full(int fd, const void *buf, size_t size);

#endif

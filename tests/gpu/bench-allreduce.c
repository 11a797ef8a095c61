/* SPDX-License-Identifier: MIT */
/*
 * All-reduce latency per size: the custom kernels against NCCL in the same
 * run, eager and in CUDA graphs.  Prints markdown tables (docs/bench-allreduce.md).
 *
 *   bench-allreduce procs [W]    W processes (default: every GPU, at least
 *                                2), one per GPU, through rm_allreduce.h;
 *                                NCCL through the same communicator's
 *                                fallback (forced).  With fewer GPUs than W
 *                                the ranks share GPUs: their kernels
 *                                time-slice and NCCL refuses to start, so
 *                                the figures are not latencies of a real
 *                                deployment (the table says so).
 *   bench-allreduce streams [W]  one process, W ranks as W streams on GPU 0
 *                                through the kernels' own API: the kernels'
 *                                cost with the flags and barriers, peer reads
 *                                local.  No NCCL here (it refuses two ranks
 *                                on one GPU).
 *
 * Each figure: the median over 7 trials of the mean of ITERS calls (eager:
 * launched one by one; graph: ITERS calls captured once, replayed), in
 * microseconds per all-reduce; bf16.  Knobs: RMTEST_BENCH_ITERS (50),
 * RMTEST_BENCH_MAX_MB (64).  Multi-GPU figures come from running it
 * unchanged on the 2-, 4- and 8-GPU machines.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "allreduce-check.h"
#include "gpu-test.h"
#include "rm_allreduce.h"
#include "rm_allreduce_kernels.h"

#define TRIALS 7
#define MAX_SIZES 32

static int iters(void) {
        return (int) rmtest_env_u64("RMTEST_BENCH_ITERS", 50);
}

static size_t max_bytes(void) {
        return (size_t) rmtest_env_u64("RMTEST_BENCH_MAX_MB", 64) << 20;
}

static int bench_sizes(size_t *out) {
        int n = 0;

        for (size_t b = 512; b <= max_bytes() && n < MAX_SIZES; b *= 4)
                out[n++] = b;
        return n;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;

        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, (size_t) n, sizeof(*v), cmp_double);
        return v[n / 2];
}

static void size_name(size_t b, char buf[32]) {
        if (b >= (1u << 20))
                snprintf(buf, 32, "%zu MiB", b >> 20);
        else if (b >= 1024)
                snprintf(buf, 32, "%zu KiB", b >> 10);
        else
                snprintf(buf, 32, "%zu B", b);
}

/* ------------------------------------------------------------ streams */

struct streams {
        int world, blocks;
        void *window[RMK_AR_MAX_RANKS], *buf[RMK_AR_MAX_RANKS];
        cudaStream_t main, st[RMK_AR_MAX_RANKS];
        cudaEvent_t fork, join[RMK_AR_MAX_RANKS];
};

/* One all-reduce: every rank's kernel on its stream, forked from and joined to main. */
static void streams_call(struct streams *s, enum rmk_ar_algo algo, size_t count) {
        CUDA_CHECK(cudaEventRecord(s->fork, s->main));
        for (int r = 0; r < s->world; r++) {
                struct rmk_ar_args a = {
                        .rank = r, .world = s->world, .blocks = s->blocks, .dtype = RMK_AR_BF16, .algo = algo,
                        .in = s->buf[r], .out = s->buf[r], .count = count, .cap = max_bytes(),
                        .timeout_ns = 20 * (uint64_t) SEC,
                };

                memcpy(a.window, s->window, sizeof(s->window));
                CUDA_CHECK(cudaStreamWaitEvent(s->st[r], s->fork, 0));
                CHECK(rmk_ar_launch(&a, s->st[r]) == 0);
                CUDA_CHECK(cudaEventRecord(s->join[r], s->st[r]));
                CUDA_CHECK(cudaStreamWaitEvent(s->main, s->join[r], 0));
        }
}

static double streams_time(struct streams *s, enum rmk_ar_algo algo, size_t bytes, bool graph) {
        cudaEvent_t e0, e1;
        cudaGraph_t g = NULL;
        cudaGraphExec_t ge = NULL;
        double t[TRIALS];
        float ms;

        CUDA_CHECK(cudaEventCreate(&e0));
        CUDA_CHECK(cudaEventCreate(&e1));
        if (graph) {
                CUDA_CHECK(cudaStreamBeginCapture(s->main, cudaStreamCaptureModeThreadLocal));
                for (int i = 0; i < iters(); i++)
                        streams_call(s, algo, bytes / 2);
                CUDA_CHECK(cudaStreamEndCapture(s->main, &g));
                CUDA_CHECK(cudaGraphInstantiate(&ge, g, 0));
                CUDA_CHECK(cudaGraphLaunch(ge, s->main));       /* warm-up */
        } else
                for (int i = 0; i < 5; i++)
                        streams_call(s, algo, bytes / 2);
        CUDA_CHECK(cudaStreamSynchronize(s->main));
        for (int k = 0; k < TRIALS; k++) {
                CUDA_CHECK(cudaEventRecord(e0, s->main));
                if (graph)
                        CUDA_CHECK(cudaGraphLaunch(ge, s->main));
                else
                        for (int i = 0; i < iters(); i++)
                                streams_call(s, algo, bytes / 2);
                CUDA_CHECK(cudaEventRecord(e1, s->main));
                CUDA_CHECK(cudaEventSynchronize(e1));
                CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
                t[k] = ms * 1000.0 / iters();
        }
        if (graph) {
                CUDA_CHECK(cudaGraphExecDestroy(ge));
                CUDA_CHECK(cudaGraphDestroy(g));
        }
        CUDA_CHECK(cudaEventDestroy(e0));
        CUDA_CHECK(cudaEventDestroy(e1));
        return median(t, TRIALS);
}

static int streams_main(int world) {
        struct streams s = { .world = world, .blocks = world >= 8 ? 16 : world >= 4 ? 32 : 36 };
        size_t sizes[MAX_SIZES];
        int n = bench_sizes(sizes);
        struct cudaDeviceProp prop;

        CUDA_CHECK(cudaSetDevice(0));
        CHECK(rmk_ar_preload(world) == 0);
        CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
        CUDA_CHECK(cudaStreamCreateWithFlags(&s.main, cudaStreamNonBlocking));
        CUDA_CHECK(cudaEventCreateWithFlags(&s.fork, cudaEventDisableTiming));
        for (int r = 0; r < world; r++) {
                CUDA_CHECK(cudaMalloc(&s.window[r], RMK_AR_SIGNAL_BYTES + 2 * max_bytes()));
                CUDA_CHECK(cudaMemset(s.window[r], 0, RMK_AR_SIGNAL_BYTES));
                CUDA_CHECK(cudaMalloc(&s.buf[r], max_bytes()));
                CHECK(arc_fill(s.buf[r], max_bytes() / 2, RMK_AR_BF16, 1, r, 0) == 0);
                CUDA_CHECK(cudaStreamCreateWithFlags(&s.st[r], cudaStreamNonBlocking));
                CUDA_CHECK(cudaEventCreateWithFlags(&s.join[r], cudaEventDisableTiming));
        }
        CUDA_CHECK(cudaDeviceSynchronize());
        printf("\n### streams: %d ranks as streams of one process on GPU 0 (%s), %d blocks per rank, bf16, "
               "in place\n\n", world, prop.name, s.blocks);
        printf("| size | one-shot eager µs | one-shot graph µs | two-shot eager µs | two-shot graph µs |\n");
        printf("|---|---|---|---|---|\n");
        for (int i = 0; i < n; i++) {
                char name[32];

                size_name(sizes[i], name);
                printf("| %s | %.1f | %.2f | %.1f | %.2f |\n", name, streams_time(&s, RMK_AR_ONE_SHOT, sizes[i], false),
                       streams_time(&s, RMK_AR_ONE_SHOT, sizes[i], true),
                       streams_time(&s, RMK_AR_TWO_SHOT, sizes[i], false),
                       streams_time(&s, RMK_AR_TWO_SHOT, sizes[i], true));
                fflush(stdout);
        }
        return 0;
}

/* -------------------------------------------------------------- procs */

struct rank_bench {
        struct rm_worker *w;
        struct rm_allreduce *ar;
        int rank, world;
        cudaStream_t stream;
        void *buf;
        int barrier_no;
};

static void barrier(struct rank_bench *b) {
        char name[32];

        snprintf(name, sizeof(name), "bench-%d", b->barrier_no++);
        CHECK(rmtest_barrier(b->w, name, 600 * SEC) == 0);
}

/* Microseconds per call on this rank (every rank runs the same sequence). */
static double procs_time(struct rank_bench *b, size_t bytes, bool graph) {
        cudaEvent_t e0, e1;
        cudaGraph_t g = NULL;
        cudaGraphExec_t ge = NULL;
        double t[TRIALS];
        float ms;

        CUDA_CHECK(cudaEventCreate(&e0));
        CUDA_CHECK(cudaEventCreate(&e1));
        if (graph) {
                CUDA_CHECK(cudaStreamBeginCapture(b->stream, cudaStreamCaptureModeThreadLocal));
                for (int i = 0; i < iters(); i++)
                        CHECK_ERR(rm_allreduce(b->ar, b->buf, b->buf, bytes / 2, RM_DTYPE_BF16, b->stream), 0);
                CUDA_CHECK(cudaStreamEndCapture(b->stream, &g));
                CUDA_CHECK(cudaGraphInstantiate(&ge, g, 0));
                CUDA_CHECK(cudaGraphLaunch(ge, b->stream));
        } else
                for (int i = 0; i < 5; i++)
                        CHECK_ERR(rm_allreduce(b->ar, b->buf, b->buf, bytes / 2, RM_DTYPE_BF16, b->stream), 0);
        CUDA_CHECK(cudaStreamSynchronize(b->stream));
        for (int k = 0; k < TRIALS; k++) {
                barrier(b);
                CUDA_CHECK(cudaEventRecord(e0, b->stream));
                if (graph)
                        CUDA_CHECK(cudaGraphLaunch(ge, b->stream));
                else
                        for (int i = 0; i < iters(); i++)
                                CHECK_ERR(rm_allreduce(b->ar, b->buf, b->buf, bytes / 2, RM_DTYPE_BF16, b->stream), 0);
                CUDA_CHECK(cudaEventRecord(e1, b->stream));
                CUDA_CHECK(cudaEventSynchronize(e1));
                CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
                t[k] = ms * 1000.0 / iters();
        }
        if (graph) {
                CUDA_CHECK(cudaGraphExecDestroy(ge));
                CUDA_CHECK(cudaGraphDestroy(g));
        }
        CUDA_CHECK(cudaEventDestroy(e0));
        CUDA_CHECK(cudaEventDestroy(e1));
        return median(t, TRIALS);
}

static int procs_rank(void) {
        struct rank_bench b = { 0 };
        struct rm_allreduce_opts o = RM_ALLREDUCE_OPTS_DEFAULT;
        size_t sizes[MAX_SIZES];
        int n = bench_sizes(sizes), ndev;
        bool nccl;
        char line[400];
        struct cudaDeviceProp prop;

        b.w = rmtest_rank_open();
        b.rank = (int) rm_worker_rank(b.w);
        b.world = (int) rm_worker_world_size(b.w);
        CUDA_CHECK(cudaGetDeviceCount(&ndev));
        CUDA_CHECK(cudaSetDevice(b.rank % ndev));
        CUDA_CHECK(cudaGetDeviceProperties(&prop, b.rank % ndev));
        CUDA_CHECK(cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking));
        CUDA_CHECK(cudaMalloc(&b.buf, max_bytes()));
        CHECK(arc_fill(b.buf, max_bytes() / 2, RMK_AR_BF16, 1, b.rank, b.stream) == 0);
        o.max_bytes = max_bytes();
        o.init_timeout_ns = 30 * SEC;
        if (rm_allreduce_init(b.w, "bench", &o, &b.ar) < 0) {
                fprintf(stderr, "rank %d: rm_allreduce_init: %s\n", b.rank, rm_last_error());
                return 1;
        }
        CHECK(rm_allreduce_describe(b.ar, line, sizeof(line)) == 0);
        nccl = rm_allreduce_force(b.ar, RM_ALLREDUCE_NCCL) == 0;
        CHECK_ERR(rm_allreduce_force(b.ar, RM_ALLREDUCE_AUTO), 0);
        if (b.rank == 0) {
                printf("\n### procs: %d processes on %d GPU(s) (%s)%s, bf16, in place\n\n%s\n\n", b.world,
                       ndev < b.world ? ndev : b.world, prop.name,
                       ndev < b.world ? " -- ranks SHARE GPUs: kernels of different processes time-slice, so the "
                                        "custom figures are not deployment latencies, and NCCL refuses to start"
                                      : "",
                       line);
                printf("| size | custom path | custom eager µs | custom graph µs | NCCL eager µs | NCCL graph µs | "
                       "graph speed-up vs NCCL | custom busbw GB/s | NCCL busbw GB/s |\n");
                printf("|---|---|---|---|---|---|---|---|---|\n");
        }
        for (int i = 0; i < n; i++) {
                double ce, cg, ne = 0, ng = 0, f = 2.0 * (b.world - 1) / b.world;
                int path;
                char name[32];

                CHECK_ERR(rm_allreduce_force(b.ar, RM_ALLREDUCE_AUTO), 0);
                path = rm_allreduce_algo(b.ar, b.buf, b.buf, sizes[i] / 2, RM_DTYPE_BF16);
                ce = procs_time(&b, sizes[i], false);
                cg = procs_time(&b, sizes[i], true);
                if (nccl) {
                        CHECK_ERR(rm_allreduce_force(b.ar, RM_ALLREDUCE_NCCL), 0);
                        ne = procs_time(&b, sizes[i], false);
                        ng = procs_time(&b, sizes[i], true);
                }
                if (b.rank != 0)
                        continue;
                size_name(sizes[i], name);
                if (nccl)
                        printf("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.2fx | %.0f | %.0f |\n", name,
                               rm_allreduce_algo_name(path), ce, cg, ne, ng, ng / cg, sizes[i] * f / cg / 1e3,
                               sizes[i] * f / ng / 1e3);
                else
                        printf("| %s | %s | %.1f | %.1f | n/a | n/a | n/a | %.0f | n/a |\n", name,
                               rm_allreduce_algo_name(path), ce, cg, sizes[i] * f / cg / 1e3);
                fflush(stdout);
        }
        b.ar = rm_allreduce_free(b.ar);
        rm_worker_close(b.w);
        return 0;
}

int main(int argc, char **argv) {
        int ndev = gpu_count_or_skip(), world;
        struct rmtest_job *j;
        int r;

        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return procs_rank();
        if (argc >= 2 && strcmp(argv[1], "streams") == 0)
                return streams_main(argc >= 3 ? atoi(argv[2]) : 2);
        if (argc < 2 || strcmp(argv[1], "procs") != 0) {
                fprintf(stderr, "usage: bench-allreduce procs [W] | streams [W]\n");
                return 2;
        }
        world = argc >= 3 ? atoi(argv[2]) : ndev >= 2 ? ndev : 2;
        if (world < 1 || world > RMTEST_MAX_RANKS) {
                fprintf(stderr, "bench-allreduce: %d ranks is not in 1..%d\n", world, RMTEST_MAX_RANKS);
                return 2;
        }
        CHECK(rmtest_job_new((uint32_t) world, &j) == 0);
        CHECK(rmtest_job_spawn_all(j, "procs") == 0);
        r = rmtest_job_wait(j, 1800 * SEC);
        rmtest_job_free(j);
        return r == 0 ? 0 : 1;
}

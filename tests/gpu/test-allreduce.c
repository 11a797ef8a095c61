/* SPDX-License-Identifier: MIT */
/*
 * The custom all-reduce (rm_allreduce.h, kernels/allreduce.cu) against the
 * serial sum of random inputs.  Scenarios:
 *
 *   streams W   one process, W ranks as W concurrent streams on GPU 0 with
 *               the kernels' own API (rm_allreduce_kernels.h): real
 *               concurrency on one GPU, so races show; every size, dtype,
 *               algorithm, RMTEST_AR_REPS repetitions (1000) at small sizes
 *   procs W     W processes through rm_allreduce_init() (one per GPU, or
 *               sharing the GPUs round-robin; kernels of processes sharing a
 *               GPU time-slice, so this is slow there but runs the same IPC
 *               windows and flags): every size, dtype and path, in place and
 *               out of place, CUDA graph capture and replay, the fallback
 *               above max_bytes and for misaligned pointers (NCCL, or
 *               -EOPNOTSUPP where NCCL cannot run, e.g. two ranks on one
 *               GPU), bad arguments
 *
 * Sizes: powers of two from 16 B to RMTEST_AR_MAX_MB (64) MiB and odd
 * element counts; repetitions scale down from RMTEST_AR_REPS at <= 64 KiB to
 * 3 at the largest.  Custom results must be bit-identical to the fp32 sum in
 * rank order; NCCL's within rounding.  Knobs: RMTEST_AR_WORLDS (the procs
 * worlds; default "2 4" on one GPU, else 2, 4, 8 as the GPUs allow),
 * RMTEST_AR_STREAM_WORLDS ("2 4 8"; "none": no streams scenario),
 * RMTEST_AR_REPS, RMTEST_AR_PROC_REPS (the procs scenario's, default 20),
 * RMTEST_AR_MAX_MB, RMTEST_AR_QUICK=1 (a few small sizes, for
 * compute-sanitizer), RMTEST_AR_NCCL=off
 * (no NCCL fallback: keeps NCCL's own start-up out of a sanitizer's report).
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "allreduce-check.h"
#include "gpu-test.h"
#include "rm_allreduce.h"
#include "rm_allreduce_kernels.h"

static const enum rm_dtype dtypes[] = { RM_DTYPE_BF16, RM_DTYPE_F16, RM_DTYPE_F32 };

static int kdtype(enum rm_dtype d) {
        return d == RM_DTYPE_F32 ? RMK_AR_F32 : d == RM_DTYPE_F16 ? RMK_AR_F16 : RMK_AR_BF16;
}

static bool quick(void) {
        return rmtest_env_u64("RMTEST_AR_QUICK", 0) != 0;
}

static size_t max_bytes(void) {
        return quick() ? (size_t) 1 << 20 : (size_t) rmtest_env_u64("RMTEST_AR_MAX_MB", 64) << 20;
}

/* Sizes in bytes for dtype size esize: powers of two, then odd element counts. */
static int sizes_for(size_t esize, size_t *out, int max) {
        static const size_t odd[] = { 1, 3, 7, 9, 33, 1001, 4097, 65537, 1000003, 5000011 };
        int n = 0;

        for (size_t b = 16; b <= max_bytes() && n < max; b *= 2) {
                if (quick() && b > 64 * 1024 && b != max_bytes())
                        continue;
                out[n++] = b;
        }
        for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]) && n < max; i++)
                if (odd[i] * esize <= max_bytes() && (!quick() || odd[i] < 5000))
                        out[n++] = odd[i] * esize;
        return n;
}

static int reps_for(size_t bytes, uint64_t reps) {
        uint64_t r = reps * 65536 / (bytes > 65536 ? bytes : 65536);

        if (quick())
                return 2;
        return (int) (r < 3 ? 3 : r > reps ? reps : r);
}

static uint64_t seed_of(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
        return ((a * 1000003 + b) * 1000003 + c) * 1000003 + d + 1;
}

/* ------------------------------------------------------------ streams */

static int streams(int world) {
        size_t cap = max_bytes(), sizes[64];
        void *window[RMK_AR_MAX_RANKS], *in[RMK_AR_MAX_RANKS], *out[RMK_AR_MAX_RANKS];
        cudaStream_t st[RMK_AR_MAX_RANKS];
        unsigned long long *bad, host_bad;
        uint64_t reps = rmtest_env_u64("RMTEST_AR_REPS", 1000);
        int blocks = world >= 8 ? 16 : world >= 4 ? 32 : 36, failures = 0;
        long calls = 0;
        double t0 = rmtest_now();

        CUDA_CHECK(cudaSetDevice(0));
        CHECK(rmk_ar_preload(world) == 0);
        CUDA_CHECK(cudaMalloc((void **) &bad, sizeof(*bad)));
        for (int r = 0; r < world; r++) {
                CUDA_CHECK(cudaMalloc(&window[r], RMK_AR_SIGNAL_BYTES + 2 * cap));
                CUDA_CHECK(cudaMemset(window[r], 0, RMK_AR_SIGNAL_BYTES));
                CUDA_CHECK(cudaMalloc(&in[r], cap));
                CUDA_CHECK(cudaMalloc(&out[r], cap));
                CUDA_CHECK(cudaStreamCreateWithFlags(&st[r], cudaStreamNonBlocking));
        }
        CUDA_CHECK(cudaDeviceSynchronize());
        for (int algo = RMK_AR_ONE_SHOT; algo <= RMK_AR_TWO_SHOT; algo++)
                for (size_t di = 0; di < 3; di++) {
                        size_t esize = rm_dtype_size(dtypes[di]);
                        int n = sizes_for(esize, sizes, 64);

                        printf("streams %d: %s %s\n", world, algo ? "two-shot" : "one-shot", rm_dtype_name(dtypes[di]));
                        fflush(stdout);
                        for (int s = 0; s < n; s++) {
                                size_t count = sizes[s] / esize;
                                int nrep = reps_for(sizes[s], reps);

                                CUDA_CHECK(cudaMemset(bad, 0, sizeof(*bad)));
                                for (int k = 0; k < nrep; k++) {
                                        uint64_t seed = seed_of((uint64_t) algo, di, sizes[s], (uint64_t) k);
                                        bool inplace = k % 2;

                                        for (int r = 0; r < world; r++) {
                                                struct rmk_ar_args a = {
                                                        .rank = r, .world = world, .blocks = blocks,
                                                        .dtype = kdtype(dtypes[di]), .algo = algo,
                                                        .in = in[r], .out = inplace ? in[r] : out[r],
                                                        .count = count, .cap = cap,
                                                        .timeout_ns = 10 * (uint64_t) SEC,
                                                };

                                                memcpy(a.window, window, sizeof(window));
                                                CHECK(arc_fill(in[r], count, kdtype(dtypes[di]), seed, r, st[r]) == 0);
                                                if (!inplace)
                                                        CUDA_CHECK(cudaMemsetAsync(out[r], 0xff, sizes[s], st[r]));
                                                CHECK(rmk_ar_launch(&a, st[r]) == 0);
                                                CHECK(arc_check(a.out, count, kdtype(dtypes[di]), seed, world, 1,
                                                                bad, st[r]) == 0);
                                        }
                                        calls++;
                                }
                                CUDA_CHECK(cudaDeviceSynchronize());
                                CUDA_CHECK(cudaMemcpy(&host_bad, bad, sizeof(host_bad), cudaMemcpyDeviceToHost));
                                if (host_bad) {
                                        printf("streams %d: %s %s %zu bytes: %llu wrong elements over %d reps\n", world,
                                               algo ? "two-shot" : "one-shot", rm_dtype_name(dtypes[di]), sizes[s],
                                               host_bad, nrep);
                                        failures++;
                                }
                        }
                }
        printf("streams %d: %ld all-reduces (every rank), %s, %.1f s\n", world, calls, failures ? "FAILED" : "all exact",
               rmtest_now() - t0);
        for (int r = 0; r < world; r++) {
                cudaFree(window[r]);
                cudaFree(in[r]);
                cudaFree(out[r]);
                cudaStreamDestroy(st[r]);
        }
        cudaFree(bad);
        return failures ? 1 : 0;
}

/* -------------------------------------------------------------- procs */

struct proc {
        struct rm_worker *w;
        struct rm_allreduce *ar;
        int rank, world;
        cudaStream_t stream;
        void *in, *out;
        unsigned long long *bad;
};

/* Runs count elements of dtype through the communicator nrep times; returns wrong elements. */
static unsigned long long run_size(struct proc *p, enum rm_allreduce_algo algo, enum rm_dtype dtype, size_t bytes,
                                   int nrep, size_t misalign) {
        size_t count = bytes / rm_dtype_size(dtype);
        int path = -1, exact;
        unsigned long long host_bad = 0;
        char *in = (char *) p->in + misalign, *out = (char *) p->out + misalign;

        CUDA_CHECK(cudaMemsetAsync(p->bad, 0, sizeof(*p->bad), p->stream));
        for (int k = 0; k < nrep; k++) {
                uint64_t seed = seed_of(algo, (uint64_t) dtype, bytes, (uint64_t) k);
                bool inplace = k % 2;
                void *dst = inplace ? in : out;
                int r;

                CHECK(arc_fill(in, count, kdtype(dtype), seed, p->rank, p->stream) == 0);
                if (!inplace)
                        CUDA_CHECK(cudaMemsetAsync(out, 0xff, bytes, p->stream));
                path = rm_allreduce_algo(p->ar, in, dst, count, dtype);
                CHECK(path >= 0);
                r = rm_allreduce(p->ar, in, dst, count, dtype, p->stream);
                if (r < 0) {
                        fprintf(stderr, "rank %d: rm_allreduce(%zu bytes of %s): %s\n", p->rank, bytes,
                                rm_dtype_name(dtype), rm_last_error());
                        exit(1);
                }
                exact = path == RM_ALLREDUCE_ONE_SHOT || path == RM_ALLREDUCE_TWO_SHOT;
                CHECK(arc_check(dst, count, kdtype(dtype), seed, p->world, exact, p->bad, p->stream) == 0);
        }
        CUDA_CHECK(cudaMemcpyAsync(&host_bad, p->bad, sizeof(host_bad), cudaMemcpyDeviceToHost, p->stream));
        CUDA_CHECK(cudaStreamSynchronize(p->stream));
        if (host_bad)
                printf("rank %d: %s (%s) %s %zu bytes%s: %llu wrong elements over %d reps\n", p->rank,
                       rm_allreduce_algo_name(algo), rm_allreduce_algo_name(path), rm_dtype_name(dtype), bytes,
                       misalign ? " misaligned" : "", host_bad, nrep);
        return host_bad;
}

/* Calls of several sizes captured in one graph, replayed with new inputs each time. */
static int graph_check(struct proc *p) {
        static const size_t sizes[] = { 512, 8192, 65536, 1 << 20, 3 << 20 };
        const int nsizes = quick() ? 3 : 5, replays = quick() ? 3 : 50;
        cudaGraph_t g;
        cudaGraphExec_t ge;
        unsigned long long host_bad = 0;
        size_t off[5], total = 0;

        for (int i = 0; i < nsizes; i++) {
                off[i] = total;
                total += sizes[i];
        }
        CHECK(total <= max_bytes());
        CUDA_CHECK(cudaMemsetAsync(p->bad, 0, sizeof(*p->bad), p->stream));
        CUDA_CHECK(cudaStreamSynchronize(p->stream));
        CUDA_CHECK(cudaStreamBeginCapture(p->stream, cudaStreamCaptureModeThreadLocal));
        for (int i = 0; i < nsizes; i++)
                CHECK_ERR(rm_allreduce(p->ar, (char *) p->in + off[i], (char *) p->out + off[i], sizes[i] / 2,
                                       RM_DTYPE_BF16, p->stream), 0);
        CUDA_CHECK(cudaStreamEndCapture(p->stream, &g));
        CUDA_CHECK(cudaGraphInstantiate(&ge, g, 0));
        for (int k = 0; k < replays; k++) {
                for (int i = 0; i < nsizes; i++)
                        CHECK(arc_fill((char *) p->in + off[i], sizes[i] / 2, RMK_AR_BF16, seed_of(9, 9, i, k), p->rank,
                                       p->stream) == 0);
                CUDA_CHECK(cudaMemsetAsync(p->out, 0xff, total, p->stream));
                CUDA_CHECK(cudaGraphLaunch(ge, p->stream));
                for (int i = 0; i < nsizes; i++) {
                        int path = rm_allreduce_algo(p->ar, p->in, p->out, sizes[i] / 2, RM_DTYPE_BF16);

                        CHECK(arc_check((char *) p->out + off[i], sizes[i] / 2, RMK_AR_BF16, seed_of(9, 9, i, k),
                                        p->world, path != RM_ALLREDUCE_NCCL, p->bad, p->stream) == 0);
                }
        }
        CUDA_CHECK(cudaMemcpyAsync(&host_bad, p->bad, sizeof(host_bad), cudaMemcpyDeviceToHost, p->stream));
        CUDA_CHECK(cudaStreamSynchronize(p->stream));
        CUDA_CHECK(cudaGraphExecDestroy(ge));
        CUDA_CHECK(cudaGraphDestroy(g));
        printf("rank %d: CUDA graph of %d all-reduces, %d replays: %s\n", p->rank, nsizes, replays,
               host_bad ? "WRONG" : "exact");
        return host_bad ? 1 : 0;
}

static int errors_check(struct proc *p, bool nccl) {
        size_t big = max_bytes() + 16;
        int r;

        CHECK_ERR(rm_allreduce(p->ar, p->in, p->out, 0, RM_DTYPE_F32, p->stream), -EINVAL);
        CHECK_ERR(rm_allreduce(p->ar, p->in, p->out, 16, RM_DTYPE_I32, p->stream), -EINVAL);
        CHECK(strstr(rm_last_error(), "only f32, f16 and bf16") != NULL);
        CHECK_ERR(rm_allreduce(p->ar, NULL, p->out, 16, RM_DTYPE_F32, p->stream), -EINVAL);
        /* Larger than registered: NCCL, or a clear -EOPNOTSUPP. */
        r = rm_allreduce_algo(p->ar, p->in, p->out, big / 4, RM_DTYPE_F32);
        if (nccl)
                CHECK(r == RM_ALLREDUCE_NCCL);
        else {
                CHECK_ERR(r, -EOPNOTSUPP);
                CHECK(strstr(rm_last_error(), "exceed the registered") != NULL);
                if (p->rank == 0)
                        printf("rank 0: above max_bytes without NCCL: %s\n", rm_last_error());
        }
        r = rm_allreduce_algo(p->ar, (char *) p->in + 2, p->out, 64, RM_DTYPE_BF16);
        if (nccl)
                CHECK(r == RM_ALLREDUCE_NCCL);
        else
                CHECK_ERR(r, -EOPNOTSUPP);
        return 0;
}

static int procs_rank(void) {
        struct proc p = { 0 };
        struct rm_allreduce_opts o = RM_ALLREDUCE_OPTS_DEFAULT;
        uint64_t reps = rmtest_env_u64("RMTEST_AR_PROC_REPS", 20);
        size_t sizes[64];
        int ndev, failures = 0;
        bool nccl;
        char line[400];
        double t0;

        p.w = rmtest_rank_open();
        p.rank = (int) rm_worker_rank(p.w);
        p.world = (int) rm_worker_world_size(p.w);
        CUDA_CHECK(cudaGetDeviceCount(&ndev));
        CUDA_CHECK(cudaSetDevice(p.rank % ndev));
        CUDA_CHECK(cudaStreamCreateWithFlags(&p.stream, cudaStreamNonBlocking));
        CUDA_CHECK(cudaMalloc(&p.in, max_bytes() + 64));
        CUDA_CHECK(cudaMalloc(&p.out, max_bytes() + 64));
        CUDA_CHECK(cudaMalloc((void **) &p.bad, sizeof(*p.bad)));

        o.max_bytes = max_bytes();
        if (getenv("RMTEST_AR_NCCL") && strcmp(getenv("RMTEST_AR_NCCL"), "off") == 0)
                o.nccl = RM_ALLREDUCE_NCCL_OFF;
        o.call_timeout_ns = 30 * SEC;
        o.init_timeout_ns = 30 * SEC;
        t0 = rmtest_now();
        if (rm_allreduce_init(p.w, "test", &o, &p.ar) < 0) {
                fprintf(stderr, "rank %d: rm_allreduce_init: %s\n", p.rank, rm_last_error());
                return 1;
        }
        CHECK(rm_allreduce_describe(p.ar, line, sizeof(line)) == 0);
        printf("rank %d: %s (init %.2f s)\n", p.rank, line, rmtest_now() - t0);
        CHECK(strstr(line, "custom: yes") != NULL);
        nccl = rm_allreduce_force(p.ar, RM_ALLREDUCE_NCCL) == 0;
        CHECK_ERR(rm_allreduce_force(p.ar, RM_ALLREDUCE_AUTO), 0);

        /* The switch point: one-shot at it, two-shot above. */
        CHECK(rm_allreduce_algo(p.ar, p.in, p.out, rm_allreduce_one_shot_max(p.ar) / 2, RM_DTYPE_BF16) ==
              RM_ALLREDUCE_ONE_SHOT);
        CHECK(rm_allreduce_algo(p.ar, p.in, p.out, rm_allreduce_one_shot_max(p.ar) / 2 + 8, RM_DTYPE_BF16) ==
              RM_ALLREDUCE_TWO_SHOT);

        t0 = rmtest_now();
        for (enum rm_allreduce_algo algo = RM_ALLREDUCE_AUTO; algo <= RM_ALLREDUCE_NCCL; algo++) {
                long calls = 0;

                if (algo == RM_ALLREDUCE_NCCL && !nccl)
                        continue;
                CHECK_ERR(rm_allreduce_force(p.ar, algo), 0);
                for (size_t di = 0; di < 3; di++) {
                        int n = sizes_for(rm_dtype_size(dtypes[di]), sizes, 64);

                        for (int s = 0; s < n; s++) {
                                int nrep = reps_for(sizes[s], reps);

                                failures += run_size(&p, algo, dtypes[di], sizes[s], nrep, 0) != 0;
                                calls += nrep;
                        }
                }
                printf("rank %d: %s: %ld all-reduces, %.1f s so far\n", p.rank, rm_allreduce_algo_name(algo), calls,
                       rmtest_now() - t0);
        }
        CHECK_ERR(rm_allreduce_force(p.ar, RM_ALLREDUCE_AUTO), 0);
        failures += graph_check(&p);
        CHECK(errors_check(&p, nccl) == 0);
        if (nccl) {
                /* The automatic fallbacks, for real. */
                failures += run_size(&p, RM_ALLREDUCE_AUTO, RM_DTYPE_BF16, max_bytes() + 32, 2, 0) != 0;
                failures += run_size(&p, RM_ALLREDUCE_AUTO, RM_DTYPE_F32, 4096, 2, 4) != 0;
        }
        p.ar = rm_allreduce_free(p.ar);
        printf("rank %d: %s (%.1f s)\n", p.rank, failures ? "FAILED" : "every check exact", rmtest_now() - t0);
        rm_worker_close(p.w);
        return failures ? 1 : 0;
}

static int procs(uint32_t world) {
        struct rmtest_job *j;
        int r;

        printf("== procs %u\n", world);
        fflush(stdout);
        CHECK(rmtest_job_new(world, &j) == 0);
        CHECK(rmtest_job_spawn_all(j, "procs") == 0);
        r = rmtest_job_wait(j, 1200 * SEC);
        rmtest_job_free(j);
        return r == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
        char stream_worlds[64], worlds[64];
        int ndev, failed = 0;

        /* Every kernel loaded up front (see rmk_ar_preload()): the check kernels too. */
        setenv("CUDA_MODULE_LOADING", "EAGER", 0);
        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return procs_rank();
        ndev = gpu_count_or_skip();
        snprintf(stream_worlds, sizeof(stream_worlds), "%s", getenv("RMTEST_AR_STREAM_WORLDS") ?: "2 4 8");
        /* One GPU: 2 and 4 processes sharing it; more: one process per GPU, every supported world. */
        snprintf(worlds, sizeof(worlds), "%s",
                 getenv("RMTEST_AR_WORLDS") ?: ndev >= 8 ? "2 4 8" : ndev >= 4 ? "2 4" : ndev >= 2 ? "2" : "2 4");
        for (char *s = strtok(stream_worlds, " ,"); s; s = strtok(NULL, " ,")) {
                if (!rmk_ar_world_supported(atoi(s)))
                        continue;       /* "none" */
                printf("== streams %s\n", s);
                fflush(stdout);
                failed += streams(atoi(s));
        }
        for (char *s = strtok(worlds, " ,"); s; s = strtok(NULL, " ,"))
                failed += procs((uint32_t) atoi(s));
        printf(failed ? "FAILED\n" : "ok\n");
        return failed ? 1 : 0;
}

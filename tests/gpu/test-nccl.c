/* SPDX-License-Identifier: MIT */
/*
 * rm_nccl_init() with a deadline, one rank per GPU (up to 4):
 *   allreduce  every rank joins: the communicator initialises, a sum
 *              all-reduce is right on every rank, teardown completes
 *   missing2   rank 2 (rank 1 with fewer than three ranks) never joins: every
 *              other rank gets -ETIMEDOUT within the deadline + 1 s naming it
 *   missing0   rank 0, the id's publisher, never joins: named too
 * RMTEST_NCCL_TIMEOUT_MS is the deadline of the missing-rank cases (5000).
 *
 * Under a supervisor (`ringmaster run`), start every rank as
 *   tests/gpu/test-nccl --rank allreduce
 * or, for the missing rank, RMTEST_ABSENT=2 tests/gpu/test-nccl --rank missing:
 * the absent rank then sleeps past the others' deadline instead of joining.
 * With --rank missing-fail the absent rank hangs and the others, once they
 * have checked their -ETIMEDOUT, exit 1 with the error on stderr, as a real
 * program would: the supervisor's report then names the missing rank.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gpu-test.h"
#include "rm_nccl.h"
#include "shmring.h"

#define ELEMS (UINT64_C(1) << 20)

static int64_t missing_timeout_ns(void) {
        return (int64_t) rmtest_env_u64("RMTEST_NCCL_TIMEOUT_MS", 5000) * 1000000;
}

static int allreduce(struct rm_worker *w, int device) {
        uint32_t rank = rm_worker_rank(w), n = rm_worker_world_size(w);
        ncclComm_t comm = NULL;
        cudaStream_t stream;
        float *buf, *host;
        double t0, t_init, t_destroy;
        ncclResult_t res;
        int bad = 0, r;

        CUDA_CHECK(cudaStreamCreate(&stream));
        t0 = rmtest_now();
        r = rm_nccl_init(w, "world", -1, -1, 120 * SEC, &comm);
        t_init = rmtest_now() - t0;
        if (r < 0) {
                fprintf(stderr, "rank %u: rm_nccl_init: %s (%s)\n", rank, strerror(-r), rm_last_error());
                return 1;
        }
        CHECK(rm_bootstrap_rank_state(w, "nccl/world", rank) == RM_RANK_READY);

        CUDA_CHECK(cudaMalloc((void **) &buf, ELEMS * sizeof(float)));
        host = malloc(ELEMS * sizeof(float));
        CHECK(host);
        for (uint64_t i = 0; i < ELEMS; i++)
                host[i] = (float) (rank + 1) + (float) (i % 7);
        CUDA_CHECK(cudaMemcpy(buf, host, ELEMS * sizeof(float), cudaMemcpyHostToDevice));
        res = ncclAllReduce(buf, buf, ELEMS, ncclFloat, ncclSum, comm, stream);
        CHECK(res == ncclSuccess || res == ncclInProgress);
        CHECK_ERR(rm_nccl_wait(comm, 60 * SEC), 0);
        CUDA_CHECK(cudaStreamSynchronize(stream));
        CUDA_CHECK(cudaMemcpy(host, buf, ELEMS * sizeof(float), cudaMemcpyDeviceToHost));
        for (uint64_t i = 0; i < ELEMS; i++) {
                float want = (float) (n * (n + 1) / 2) + (float) n * (float) (i % 7);

                if (host[i] != want)
                        bad++;
        }
        t0 = rmtest_now();
        r = rm_nccl_destroy(comm, 60 * SEC);
        t_destroy = rmtest_now() - t0;
        printf("nccl rank %u/%u on GPU %d: init %.2f s, all-reduce of %" PRIu64 " floats: %s, destroy %.2f s (%d)\n",
               rank, n, device, t_init, ELEMS, bad ? "WRONG" : "correct", t_destroy, r);
        CHECK(r == 0);
        cudaFree(buf);
        free(host);
        return bad ? 1 : 0;
}

static int missing(struct rm_worker *w, int device, uint32_t absent) {
        uint32_t rank = rm_worker_rank(w);
        ncclComm_t comm = NULL;
        double t0, elapsed, limit = (double) missing_timeout_ns() / 1e9;
        char want[64];
        int r;

        t0 = rmtest_now();
        r = rm_nccl_init(w, "partial", -1, -1, missing_timeout_ns(), &comm);
        elapsed = rmtest_now() - t0;
        printf("nccl rank %u on GPU %d, rank %u absent: %d after %.2f s (deadline %.1f s): %s\n", rank, device, absent,
               r, elapsed, limit, rm_last_error());
        snprintf(want, sizeof(want), "rank %u (never joined)", absent);
        CHECK(r == -ETIMEDOUT);
        CHECK(comm == NULL);
        CHECK(elapsed >= limit - 0.01);
        CHECK(elapsed <= limit + 1.0);
        CHECK(strstr(rm_last_error(), "in nccl-init waiting for ") != NULL);
        CHECK(strstr(rm_last_error(), want) != NULL);
        CHECK(rm_bootstrap_rank_state(w, "nccl/partial", rank) == RM_RANK_TIMED_OUT);
        return 0;
}

static int rank_main(const char *mode) {
        struct rm_worker *w = rmtest_rank_open();
        int ndev, device, r;

        CUDA_CHECK(cudaGetDeviceCount(&ndev));
        device = (int) (rm_worker_rank(w) % (uint32_t) ndev);
        CUDA_CHECK(cudaSetDevice(device));
        CUDA_CHECK(cudaFree(NULL));
        if (strcmp(mode, "allreduce") == 0)
                r = allreduce(w, device);
        else if (rm_worker_rank(w) == (uint32_t) rmtest_env_u64("RMTEST_ABSENT", 2)) {
                /* Started anyway (by a supervisor): never join, outlive the others' deadline
                 * (missing-fail: hang until stopped, like a rank stuck before NCCL). */
                printf("nccl rank %u: absent on purpose, not joining\n", rm_worker_rank(w));
                fflush(stdout);
                if (strcmp(mode, "missing-fail") == 0)
                        for (;;)
                                pause();
                usleep((useconds_t) (missing_timeout_ns() / 1000 + 3000000));
                r = 0;
        } else {
                r = missing(w, device, (uint32_t) rmtest_env_u64("RMTEST_ABSENT", 2));
                if (r == 0 && strcmp(mode, "missing-fail") == 0) {
                        fprintf(stderr, "test-nccl: rank %u: %s\n", rm_worker_rank(w), rm_last_error());
                        r = 1;
                }
        }
        rm_worker_close(w);
        return r;
}

static int scenario(const char *mode, uint32_t nranks, int absent) {
        struct rmtest_job *j;
        char absent_env[40];
        char *env[] = { absent_env, NULL };
        int r;

        printf("== %s: %u ranks%s\n", mode, nranks, absent >= 0 ? ", one never joins" : "");
        fflush(stdout);
        snprintf(absent_env, sizeof(absent_env), "RMTEST_ABSENT=%d", absent);
        CHECK(rmtest_job_new(nranks, &j) == 0);
        for (uint32_t i = 0; i < nranks; i++)
                if ((int) i != absent)
                        CHECK(rmtest_job_spawn(j, i, mode, env) == 0);
        r = rmtest_job_wait(j, 240 * SEC);
        rmtest_job_free(j);
        return r == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
        uint32_t world, partial;
        int ndev, failed = 0;

        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return rank_main(argv[2]);
        ndev = gpu_count_or_skip();
        world = ndev >= 4 ? 4 : (uint32_t) ndev;
        /* The absent rank needs no GPU: ranks present get one each. */
        partial = world >= 3 ? world : world + 1;
        failed += scenario("allreduce", world, -1);
        failed += scenario("missing", partial, partial > 2 ? 2 : 1);
        failed += scenario("missing", partial, 0);
        printf(failed ? "FAILED\n" : "ok\n");
        return failed ? 1 : 0;
}

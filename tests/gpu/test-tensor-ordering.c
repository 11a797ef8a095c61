/* SPDX-License-Identifier: MIT */
/*
 * Ordering across processes with the tensor's interprocess event: rank 0
 * launches a slow writer kernel (it sleeps on the GPU first), records the
 * event (rm_tensor_signal) and tells rank 1 at once, long before the kernel
 * is done; rank 1 makes its stream wait (rm_import_wait) and runs a reader
 * kernel that must see every word written.  Both handle kinds, several
 * rounds, then one round without the wait to show the wait is what orders.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gpu-test.h"
#include "shmring.h"
#include "test-kernels.h"

#define ROUNDS 5

static void put_flag(struct rm_worker *w, const char *kn, int round) {
        char key[64];

        snprintf(key, sizeof(key), "test/ord/%s/%d", kn, round);
        CHECK(shmring_kv_put(rm_worker_segment(w), RM_KV_TABLE, key, "w", 1) > 0);
}

static void wait_flag(struct rm_worker *w, const char *kn, int round) {
        char key[64], v[4];

        snprintf(key, sizeof(key), "test/ord/%s/%d", kn, round);
        CHECK(shmring_kv_get(rm_worker_segment(w), RM_KV_TABLE, key, 0, v, sizeof(v), NULL, 30 * SEC) == 1);
}

static int rank_main(void) {
        struct rm_worker *w = rmtest_rank_open();
        uint32_t rank = rm_worker_rank(w);
        size_t bytes = (size_t) rmtest_env_u64("RMTEST_TENSOR_MB", 64) << 20, words = bytes / 4;
        uint64_t delay_ns = rmtest_env_u64("RMTEST_WRITER_DELAY_MS", 200) * 1000000;
        int ndev, device, failures = 0;
        struct rm_tensors *t;
        cudaStream_t stream;

        CUDA_CHECK(cudaGetDeviceCount(&ndev));
        device = (int) (rank % (uint32_t) ndev);
        CUDA_CHECK(cudaSetDevice(device));
        CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        CHECK(rm_tensors_new(w, &t) == 0);

        for (enum rm_handle_kind kind = RM_HANDLE_CUDA_IPC; kind <= RM_HANDLE_VMM_FD; kind++) {
                const char *kn = rm_handle_kind_name(kind);
                char name[64], barrier[64];

                if (!kind_usable(device, kind)) {
                        printf("rank %u: %s not supported on GPU %d: skipped\n", rank, kn, device);
                        continue;
                }
                snprintf(name, sizeof(name), "ord/%s", kn);
                if (rank == 0) {
                        struct rm_buffer *b;
                        struct rm_tensor_desc d = u32_desc(words, 0);

                        CHECK_ERR(rm_buffer_alloc(t, device, bytes, kind, &b), 0);
                        CHECK(rmk_fill_pattern(rm_buffer_data(b), words, 0, stream) == 0);
                        CUDA_CHECK(cudaStreamSynchronize(stream));
                        CHECK_ERR(rm_tensor_export(t, name, b, &d, NULL), 0);
                        snprintf(barrier, sizeof(barrier), "%s-exported", kn);
                        CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);
                        for (int round = 1; round <= ROUNDS + 1; round++) {
                                CHECK(rmk_slow_fill_pattern(rm_buffer_data(b), words, (uint32_t) round, delay_ns,
                                                            stream) == 0);
                                CHECK_ERR(rm_tensor_signal(t, name, stream), 0);
                                put_flag(w, kn, round);         /* while the writer still sleeps */
                                snprintf(barrier, sizeof(barrier), "%s-read-%d", kn, round);
                                CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);
                        }
                        CUDA_CHECK(cudaStreamSynchronize(stream));
                        snprintf(barrier, sizeof(barrier), "%s-done", kn);
                        CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);
                        rm_buffer_free(t, b);
                } else {
                        struct rm_import_opts o = { .device = device, .timeout_ns = 30 * SEC };
                        struct rm_import *imp;

                        snprintf(barrier, sizeof(barrier), "%s-exported", kn);
                        CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);
                        CHECK_ERR(rm_tensor_import(t, name, &o, &imp), 0);
                        for (int round = 1; round <= ROUNDS + 1; round++) {
                                bool ordered = round <= ROUNDS;
                                double t0, waited;
                                long long bad;

                                wait_flag(w, kn, round);
                                t0 = rmtest_now();
                                if (ordered)
                                        CHECK_ERR(rm_import_wait(imp, stream), 0);
                                bad = rmk_count_mismatches(rm_import_data(imp), words, (uint32_t) round, stream);
                                waited = rmtest_now() - t0;
                                CHECK(bad >= 0);
                                if (ordered) {
                                        printf("ordering %-8s round %d: GPU %d read after the event: %lld stale words "
                                               "(reader finished %.0f ms after the signal)\n",
                                               kn, round, device, bad, waited * 1e3);
                                        if (bad != 0 || waited < (double) delay_ns / 2e9)
                                                failures++;
                                } else
                                        printf("ordering %-8s control: reading without the event wait saw %lld of %zu "
                                               "words stale (expected: most of them)\n", kn, bad, words);
                                snprintf(barrier, sizeof(barrier), "%s-read-%d", kn, round);
                                CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);
                        }
                        rm_import_close(t, imp);
                        snprintf(barrier, sizeof(barrier), "%s-done", kn);
                        CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);
                }
        }
        rm_tensors_free(t);
        rm_worker_close(w);
        return failures ? 1 : 0;
}

int main(int argc, char **argv) {
        struct rmtest_job *j;
        int r;

        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return rank_main();
        printf("%d GPU(s)\n", gpu_count_or_skip());
        fflush(stdout);
        CHECK(rmtest_job_new(2, &j) == 0);
        CHECK(rmtest_job_spawn_all(j, "ordering") == 0);
        r = rmtest_job_wait(j, 240 * SEC);
        rmtest_job_free(j);
        printf(r == 0 ? "ok\n" : "FAILED\n");
        return r == 0 ? 0 : 1;
}

/* SPDX-License-Identifier: MIT */
/*
 * Export/import round trip between every pair of GPUs, with both handle
 * kinds.  One rank per GPU (two ranks on GPU 0 when there is only one).
 * Every rank exports a buffer holding its pattern; every rank imports every
 * other rank's buffer, checks the pattern by reading the peer's memory
 * directly, then writes its own pattern into its slot of the peer's buffer;
 * each exporter checks what its peers wrote.  RMTEST_TENSOR_MB sizes it.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gpu-test.h"
#include "shmring.h"
#include "test-kernels.h"

static uint32_t seed_of(enum rm_handle_kind kind, uint32_t rank) {
        return (uint32_t) kind << 8 | rank;
}

static uint32_t back_seed_of(enum rm_handle_kind kind, uint32_t rank) {
        return 0x10000u | (uint32_t) kind << 8 | rank;
}

static int rank_main(void) {
        struct rm_worker *w = rmtest_rank_open();
        uint32_t rank = rm_worker_rank(w), n = rm_worker_world_size(w);
        int ndev, device;
        struct rm_tensors *t;
        size_t bytes = (size_t) rmtest_env_u64("RMTEST_TENSOR_MB", 64) << 20;
        size_t words = bytes / 4, chunk = words / n;
        cudaStream_t stream;
        char line[200];
        int failures = 0;

        CUDA_CHECK(cudaGetDeviceCount(&ndev));
        device = (int) (rank % (uint32_t) ndev);
        CUDA_CHECK(cudaSetDevice(device));
        CUDA_CHECK(cudaStreamCreate(&stream));
        CHECK(rm_tensors_new(w, &t) == 0);
        CHECK(rm_tensor_kind_describe(device, line, sizeof(line)) == 0);
        printf("rank %u: %s\n", rank, line);

        for (enum rm_handle_kind kind = RM_HANDLE_CUDA_IPC; kind <= RM_HANDLE_VMM_FD; kind++) {
                const char *kn = rm_handle_kind_name(kind);
                struct rm_buffer *b;
                struct rm_tensor_desc d = u32_desc(words, 0);
                char name[64], barrier[64];
                bool usable = kind_usable(device, kind);

                /* Every rank decides the same way (same GPUs), so barriers stay matched. */
                if (!usable) {
                        printf("rank %u: %s not supported on GPU %d: skipped\n", rank, kn, device);
                        continue;
                }
                CHECK_ERR(rm_buffer_alloc(t, device, bytes, kind, &b), 0);
                CHECK(rm_buffer_kind(b) == kind);
                CHECK(rm_buffer_size(b) >= bytes);
                CHECK(rmk_fill_pattern(rm_buffer_data(b), words, seed_of(kind, rank), stream) == 0);
                CUDA_CHECK(cudaStreamSynchronize(stream));
                snprintf(name, sizeof(name), "rt/%s/%u", kn, rank);
                CHECK_ERR(rm_tensor_export(t, name, b, &d, NULL), 0);
                snprintf(barrier, sizeof(barrier), "%s-exported", kn);
                CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);

                for (uint32_t p = 0; p < n; p++) {
                        struct rm_import_opts o = { .device = device, .expect_nbytes = words * 4, .timeout_ns = 10 * SEC };
                        struct rm_import *imp, *again;
                        const struct rm_tensor_record *rec;
                        long long bad;

                        if (p == rank)
                                continue;
                        snprintf(name, sizeof(name), "rt/%s/%u", kn, p);
                        CHECK_ERR(rm_tensor_import(t, name, &o, &imp), 0);
                        rec = rm_import_record(imp);
                        CHECK(rec->kind == kind && rec->exporter_rank == p);
                        bad = rmk_count_mismatches(rm_import_data(imp), words, seed_of(kind, p), stream);
                        CHECK(bad >= 0);
                        /* Write back into our slot of the peer's buffer, through the imported pointer. */
                        CHECK(rmk_fill_pattern((uint32_t *) rm_import_data(imp) + (size_t) rank * chunk, chunk,
                                               back_seed_of(kind, rank), stream) == 0);
                        CUDA_CHECK(cudaStreamSynchronize(stream));
                        /* The cache: the same name and generation is the same import. */
                        CHECK_ERR(rm_tensor_import(t, name, &o, &again), 0);
                        CHECK(again == imp);
                        rm_import_close(t, again);
                        rm_import_close(t, imp);
                        printf("roundtrip %-8s rank %u (GPU %d) <- rank %u (GPU %d): read %zu MiB: %s\n", kn, rank,
                               device, p, rec->exporter_device, bytes >> 20,
                               bad == 0 ? "ok" : "MISMATCH");
                        if (bad != 0) {
                                fprintf(stderr, "rank %u: %lld words of rank %u's %s buffer differ\n", rank, bad, p,
                                        kn);
                                failures++;
                        }
                }
                snprintf(barrier, sizeof(barrier), "%s-written", kn);
                CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);

                for (uint32_t p = 0; p < n; p++) {
                        long long bad;

                        if (p == rank)
                                continue;
                        bad = rmk_count_mismatches((uint32_t *) rm_buffer_data(b) + (size_t) p * chunk, chunk,
                                                   back_seed_of(kind, p), stream);
                        printf("roundtrip %-8s rank %u (GPU %d) -> rank %u (GPU %d): written back %zu KiB: %s\n", kn,
                               p, (int) (p % (uint32_t) ndev), rank, device, chunk * 4 >> 10,
                               bad == 0 ? "ok" : "MISMATCH");
                        if (bad != 0)
                                failures++;
                }
                snprintf(barrier, sizeof(barrier), "%s-checked", kn);
                CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);
                rm_buffer_free(t, b);
        }
        rm_tensors_free(t);
        CUDA_CHECK(cudaStreamDestroy(stream));
        rm_worker_close(w);
        return failures ? 1 : 0;
}

int main(int argc, char **argv) {
        struct rmtest_job *j;
        int ndev, nranks, r;

        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return rank_main();
        ndev = gpu_count_or_skip();
        nranks = ndev >= 2 ? ndev : 2;
        printf("%d GPU(s), %d ranks\n", ndev, nranks);
        fflush(stdout);
        CHECK(rmtest_job_new((uint32_t) nranks, &j) == 0);
        CHECK(rmtest_job_spawn_all(j, "roundtrip") == 0);
        r = rmtest_job_wait(j, 240 * SEC);
        rmtest_job_free(j);
        printf(r == 0 ? "ok\n" : "FAILED\n");
        return r == 0 ? 0 : 1;
}

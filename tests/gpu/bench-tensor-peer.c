/* SPDX-License-Identifier: MIT */
/*
 * Benchmark: reading a peer GPU's buffer through an imported tensor
 * pointer, against cudaMemcpyPeer between the same GPUs; and the cost of
 * a first import (lookup + open + map) against a cached one.  One rank per
 * GPU; for every ordered pair (exporter i, importer j) rank j measures
 * while the others wait, so pairs do not share links.
 *   RMTEST_BENCH_MB     bytes moved per iteration (256)
 *   RMTEST_BENCH_ITERS  timed iterations (20)
 *   RMTEST_BENCH_KINDS  "cuda-ipc,vmm-fd" (both, where supported)
 * Prints one line per pair and kind, and a markdown table row ("| ...").
 * With one GPU, two ranks share it: the open costs are real, the "peer"
 * bandwidths are the GPU's own.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "gpu-test.h"
#include "shmring.h"
#include "test-kernels.h"

struct launch {
        int blocks_per_sm;
        int threads;
};

static const struct launch launches[] = {
        { 2, 512 }, { 4, 512 }, { 8, 256 }, { 2, 1024 }, { 16, 128 },
};

enum op { OP_COPY, OP_READ, OP_MEMCPY_PEER, OP_MEMCPY_IMPORTED };

static double time_op(enum op op, void *dst, const void *src_imported, const void *src_peer, int dev_src,
                      int dev_dst, size_t bytes, struct launch l, int sms, unsigned long long *sink, int iters,
                      cudaStream_t s) {
        cudaEvent_t a, b;
        float ms = 0;

        CUDA_CHECK(cudaEventCreate(&a));
        CUDA_CHECK(cudaEventCreate(&b));
        for (int it = -2; it < iters; it++) {           /* two warm-ups */
                if (it == 0)
                        CUDA_CHECK(cudaEventRecord(a, s));
                switch (op) {
                case OP_COPY:
                        CHECK(rmk_peer_copy(dst, src_imported, bytes, l.blocks_per_sm * sms, l.threads, s) == 0);
                        break;
                case OP_READ:
                        CHECK(rmk_peer_read(src_imported, bytes, sink, l.blocks_per_sm * sms, l.threads, s) == 0);
                        break;
                case OP_MEMCPY_PEER:
                        CUDA_CHECK(cudaMemcpyPeerAsync(dst, dev_dst, src_peer, dev_src, bytes, s));
                        break;
                case OP_MEMCPY_IMPORTED:
                        CUDA_CHECK(cudaMemcpyAsync(dst, src_imported, bytes, cudaMemcpyDeviceToDevice, s));
                        break;
                }
        }
        CUDA_CHECK(cudaEventRecord(b, s));
        CUDA_CHECK(cudaEventSynchronize(b));
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        cudaEventDestroy(a);
        cudaEventDestroy(b);
        return (double) bytes * iters / (ms / 1e3) / 1e9;      /* GB/s */
}

static void measure(struct rm_worker *w, struct rm_tensors *t, enum rm_handle_kind kind, uint32_t src,
                    int device, size_t bytes, int iters) {
        const char *kn = rm_handle_kind_name(kind);
        struct rm_import_opts o = { .device = device, .timeout_ns = 10 * SEC };
        struct rm_import *imp, *again;
        char name[64];
        void *dst, *peer_src;
        unsigned long long *sink;
        cudaStream_t s;
        int sms, can, dev_src;
        double t0, first_us, cached_us, copy = 0, read = 0, peer, imported;
        struct launch best_copy = launches[0], best_read = launches[0];
        const int cached_rounds = 1000;

        (void) w;
        CUDA_CHECK(cudaSetDevice(device));
        CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
        CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
        snprintf(name, sizeof(name), "bench/%s/%u", kn, src);

        t0 = rmtest_now();
        CHECK_ERR(rm_tensor_import(t, name, &o, &imp), 0);
        first_us = (rmtest_now() - t0) * 1e6;
        t0 = rmtest_now();
        for (int i = 0; i < cached_rounds; i++) {
                CHECK_ERR(rm_tensor_import(t, name, &o, &again), 0);
                CHECK(again == imp);
                rm_import_close(t, again);
        }
        cached_us = (rmtest_now() - t0) * 1e6 / cached_rounds;
        dev_src = -1;
        {
                /* The exporter's GPU, as this process numbers it. */
                int n;

                CUDA_CHECK(cudaGetDeviceCount(&n));
                for (int d = 0; d < n; d++) {
                        struct cudaDeviceProp p;

                        CUDA_CHECK(cudaGetDeviceProperties(&p, d));
                        if (memcmp(p.uuid.bytes, rm_import_record(imp)->device_uuid, 16) == 0)
                                dev_src = d;
                }
        }
        CHECK(dev_src >= 0);
        CHECK(rmk_count_mismatches(rm_import_data(imp), bytes / 4, src, s) == 0);

        CUDA_CHECK(cudaMalloc(&dst, bytes));
        CUDA_CHECK(cudaMalloc((void **) &sink, sizeof(*sink)));
        CUDA_CHECK(cudaSetDevice(dev_src));
        CUDA_CHECK(cudaMalloc(&peer_src, bytes));
        CUDA_CHECK(cudaMemset(peer_src, 1, bytes));
        CUDA_CHECK(cudaDeviceSynchronize());
        CUDA_CHECK(cudaSetDevice(device));
        can = 0;
        if (dev_src != device)
                CUDA_CHECK(cudaDeviceCanAccessPeer(&can, device, dev_src));
        if (can) {
                cudaError_t e = cudaDeviceEnablePeerAccess(dev_src, 0);

                if (e != cudaSuccess && e != cudaErrorPeerAccessAlreadyEnabled)
                        CUDA_CHECK(e);
                (void) cudaGetLastError();
        }

        /* Pick the best launch shape with a short run, then time it properly. */
        for (size_t i = 0; i < sizeof(launches) / sizeof(launches[0]); i++) {
                double c = time_op(OP_COPY, dst, rm_import_data(imp), peer_src, dev_src, device, bytes, launches[i],
                                   sms, sink, 3, s);
                double r = time_op(OP_READ, dst, rm_import_data(imp), peer_src, dev_src, device, bytes, launches[i],
                                   sms, sink, 3, s);

                if (c > copy) {
                        copy = c;
                        best_copy = launches[i];
                }
                if (r > read) {
                        read = r;
                        best_read = launches[i];
                }
        }
        copy = time_op(OP_COPY, dst, rm_import_data(imp), peer_src, dev_src, device, bytes, best_copy, sms, sink,
                       iters, s);
        read = time_op(OP_READ, dst, rm_import_data(imp), peer_src, dev_src, device, bytes, best_read, sms, sink,
                       iters, s);
        peer = time_op(OP_MEMCPY_PEER, dst, rm_import_data(imp), peer_src, dev_src, device, bytes, best_copy, sms,
                       sink, iters, s);
        imported = time_op(OP_MEMCPY_IMPORTED, dst, rm_import_data(imp), peer_src, dev_src, device, bytes, best_copy,
                           sms, sink, iters, s);

        printf("pair GPU %d -> GPU %d (%s, %zu MiB x %d): copy kernel %.1f GB/s (%dx%d per SM), read kernel %.1f GB/s "
               "(%dx%d), cudaMemcpyPeer %.1f GB/s, cudaMemcpy from imported %.1f GB/s; copy/peer %.0f%%, "
               "read/peer %.0f%%; first open %.0f us, cached open %.2f us\n",
               dev_src, device, kn, bytes >> 20, iters, copy, best_copy.blocks_per_sm, best_copy.threads, read,
               best_read.blocks_per_sm, best_read.threads, peer, imported, 100 * copy / peer, 100 * read / peer,
               first_us, cached_us);
        printf("| %d -> %d | %s | %.1f | %.1f | %.1f | %.1f | %.0f%% | %.0f%% | %.0f | %.2f |\n", dev_src, device, kn,
               copy, read, peer, imported, 100 * copy / peer, 100 * read / peer, first_us, cached_us);
        fflush(stdout);

        cudaFree(dst);
        cudaFree(sink);
        CUDA_CHECK(cudaSetDevice(dev_src));
        cudaFree(peer_src);
        CUDA_CHECK(cudaSetDevice(device));
        cudaStreamDestroy(s);
        rm_import_close(t, imp);
}

static int rank_main(void) {
        struct rm_worker *w = rmtest_rank_open();
        uint32_t rank = rm_worker_rank(w), n = rm_worker_world_size(w);
        size_t bytes = (size_t) rmtest_env_u64("RMTEST_BENCH_MB", 256) << 20;
        int iters = (int) rmtest_env_u64("RMTEST_BENCH_ITERS", 20);
        const char *kinds = getenv("RMTEST_BENCH_KINDS") ?: "cuda-ipc,vmm-fd";
        int ndev, device;
        struct rm_tensors *t;

        CUDA_CHECK(cudaGetDeviceCount(&ndev));
        device = (int) (rank % (uint32_t) ndev);
        CUDA_CHECK(cudaSetDevice(device));
        CHECK(rm_tensors_new(w, &t) == 0);
        for (enum rm_handle_kind kind = RM_HANDLE_CUDA_IPC; kind <= RM_HANDLE_VMM_FD; kind++) {
                const char *kn = rm_handle_kind_name(kind);
                struct rm_tensor_desc d = u32_desc(bytes / 4, 0);
                struct rm_buffer *b;
                char name[64], barrier[64];

                if (!strstr(kinds, kn) || !kind_usable(device, kind))
                        continue;
                CHECK_ERR(rm_buffer_alloc(t, device, bytes, kind, &b), 0);
                CHECK(rmk_fill_pattern(rm_buffer_data(b), bytes / 4, rank, 0) == 0);
                CUDA_CHECK(cudaDeviceSynchronize());
                snprintf(name, sizeof(name), "bench/%s/%u", kn, rank);
                CHECK_ERR(rm_tensor_export(t, name, b, &d, NULL), 0);
                snprintf(barrier, sizeof(barrier), "%s-exported", kn);
                CHECK(rmtest_barrier(w, barrier, 60 * SEC) == 0);
                {
                        /* The process's first import reads every GPU's UUID once: do it
                         * here (on our own tensor), so "first open" below is the open alone. */
                        struct rm_import_opts o = { .device = device };
                        struct rm_import *self;
                        double t0 = rmtest_now();

                        CHECK_ERR(rm_tensor_import(t, name, &o, &self), 0);
                        printf("rank %u: own tensor imported in %.0f us (the first import of a process also reads "
                               "the GPUs' UUIDs)\n", rank, (rmtest_now() - t0) * 1e6);
                        rm_import_close(t, self);
                }
                for (uint32_t i = 0; i < n; i++)
                        for (uint32_t j = 0; j < n; j++) {
                                if (i == j)
                                        continue;
                                if (j == rank)
                                        measure(w, t, kind, i, device, bytes, iters);
                                snprintf(barrier, sizeof(barrier), "%s-%u-%u", kn, i, j);
                                CHECK(rmtest_barrier(w, barrier, 120 * SEC) == 0);
                        }
                rm_buffer_free(t, b);
        }
        rm_tensors_free(t);
        rm_worker_close(w);
        return 0;
}

int main(int argc, char **argv) {
        struct rmtest_job *j;
        int ndev, r;

        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return rank_main();
        ndev = gpu_count_or_skip();
        if (ndev < 2)
                printf("one GPU: two ranks share it, so 'peer' reads are local (open costs are still real)\n");
        printf("| pair | handle | copy kernel GB/s | read kernel GB/s | cudaMemcpyPeer GB/s | cudaMemcpy (imported) GB/s "
               "| copy/peer | read/peer | first open us | cached open us |\n");
        printf("|---|---|---|---|---|---|---|---|---|---|\n");
        fflush(stdout);
        CHECK(rmtest_job_new(ndev >= 2 ? (uint32_t) ndev : 2, &j) == 0);
        CHECK(rmtest_job_spawn_all(j, "bench") == 0);
        r = rmtest_job_wait(j, 600 * SEC);
        rmtest_job_free(j);
        return r == 0 ? 0 : 1;
}

/* SPDX-License-Identifier: MIT */
/*
 * Bad input gives a clear negative errno, never a crash or garbage, for
 * each handle kind (one run of three ranks per kind):
 *   rank 0  exports, re-exports after freeing, withdraws, then exits
 *           without cleaning up (as a crash would)
 *   rank 1  sees its GPUs in another order (CUDA_VISIBLE_DEVICES by UUID,
 *           reversed): imports match the exporter's GPU by UUID; unknown
 *           names, wrong sizes, stale generations, withdrawn tensors and the
 *           dead exporter each give their error
 *   rank 2  sees only a GPU other than rank 0's: -ENODEV (when there are two)
 */

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "gpu-test.h"
#include "rm_run_layout.h"
#include "shmring.h"
#include "test-kernels.h"

#define WORDS (UINT64_C(1) << 20)

static enum rm_handle_kind kind_from_env(void) {
        enum rm_handle_kind k;

        CHECK(rm_handle_kind_from_string(getenv("RMTEST_KIND"), &k) == 0);
        return k;
}

/* Waits for the process that put key to exit (pidfd), so its death is certain. */
static void wait_owner_exit(struct rm_worker *w, const char *key) {
        struct shmring_kv_info info;
        char v[RM_KV_VALUE_SIZE];
        ssize_t n;
        int pfd;

        n = shmring_kv_get(rm_worker_segment(w), RM_KV_TABLE, key, 0, v, sizeof(v), &info, 30 * SEC);
        if (n == -EOWNERDEAD)
                return;
        CHECK(n >= 0);
        pfd = (int) syscall(SYS_pidfd_open, info.owner_pid, 0);
        if (pfd < 0) {
                CHECK(errno == ESRCH);
                return;
        }
        {
                struct pollfd p = { .fd = pfd, .events = POLLIN };

                CHECK(poll(&p, 1, 30000) == 1);
        }
        close(pfd);
}

static void exporter(struct rm_worker *w, struct rm_tensors *t, enum rm_handle_kind kind, int device) {
        struct rm_tensor_desc d = u32_desc(WORDS, 0), bad;
        struct rm_buffer *b;
        uint64_t g1, g2;
        cudaStream_t s = 0;
        char host[64];

        CHECK_ERR(rm_buffer_alloc(t, device, WORDS * 4, kind, &b), 0);
        CHECK(rmk_fill_pattern(rm_buffer_data(b), WORDS, 1, s) == 0);
        CUDA_CHECK(cudaDeviceSynchronize());
        /* Views that do not fit, bad names. */
        bad = u32_desc(WORDS, 4);
        CHECK_ERR(rm_tensor_export(t, "err/a", b, &bad, NULL), -EINVAL);
        bad = u32_desc(WORDS, 0);
        bad.dtype = (enum rm_dtype) 77;
        CHECK_ERR(rm_tensor_export(t, "err/a", b, &bad, NULL), -EINVAL);
        bad = u32_desc(WORDS / 2, 2);
        CHECK_ERR(rm_tensor_export(t, "err/a", b, &bad, NULL), -EINVAL);
        CHECK_ERR(rm_tensor_export(t, "err a", b, &d, NULL), -EINVAL);
        CHECK_ERR(rm_tensor_export_ptr(t, "err/host", host, &d, NULL), -EINVAL);
        CHECK_ERR(rm_tensor_signal(t, "err/none", 0), -ENOENT);
        CHECK_ERR(rm_tensor_withdraw(t, "err/none"), -ENOENT);
        CHECK_ERR(rm_tensor_export(t, "err/a", b, &d, &g1), 0);
        printf("rank 0: exported err/a (%s, generation %" PRIu64 ")\n", rm_handle_kind_name(kind), g1);
        if (kind == RM_HANDLE_CUDA_IPC) {
                void *p;
                struct rm_tensor_desc half = u32_desc(WORDS / 2, 0);

                CUDA_CHECK(cudaMalloc(&p, WORDS * 4));
                CHECK(rmk_fill_pattern(p, WORDS, 5, s) == 0);
                CUDA_CHECK(cudaDeviceSynchronize());
                /* An interior pointer: the record carries the offset into the allocation. */
                CHECK_ERR(rm_tensor_export_ptr(t, "err/ptr", (uint32_t *) p + WORDS / 2, &half, NULL), 0);
        }
        CHECK(rmtest_barrier(w, "exported", 60 * SEC) == 0);
        CHECK(rmtest_barrier(w, "imported", 60 * SEC) == 0);

        /* Free and reallocate: a new generation; importers of the old one get -ESTALE. */
        rm_buffer_free(t, b);
        CHECK_ERR(rm_buffer_alloc(t, device, WORDS * 4, kind, &b), 0);
        CHECK(rmk_fill_pattern(rm_buffer_data(b), WORDS, 2, s) == 0);
        CUDA_CHECK(cudaDeviceSynchronize());
        CHECK_ERR(rm_tensor_export(t, "err/a", b, &d, &g2), 0);
        CHECK(g2 > g1);
        CHECK(rmtest_barrier(w, "reexported", 60 * SEC) == 0);
        CHECK(rmtest_barrier(w, "stale-checked", 60 * SEC) == 0);

        CHECK_ERR(rm_tensor_withdraw(t, "err/a"), 0);
        CHECK_ERR(rm_tensor_export(t, "err/b", b, &d, NULL), 0);
        CHECK(rmtest_barrier(w, "withdrawn", 60 * SEC) == 0);
        CHECK(rmtest_barrier(w, "b-imported", 60 * SEC) == 0);
        printf("rank 0: exiting without cleaning up\n");
        fflush(stdout);
        _exit(0);
}

static void importer(struct rm_worker *w, struct rm_tensors *t, enum rm_handle_kind kind, int device) {
        struct rm_import_opts o = { .device = device, .timeout_ns = 0 };
        struct rm_import *a, *a2, *bi;
        uint64_t g1;
        long long bad;
        double t0;

        CHECK(rmtest_barrier(w, "exported", 60 * SEC) == 0);
        CHECK_ERR(rm_tensor_import(t, "err/none", &o, &a), -ENOENT);
        printf("rank 1: unknown name: %s\n", rm_last_error());
        o.timeout_ns = SEC / 5;
        t0 = rmtest_now();
        CHECK_ERR(rm_tensor_import(t, "err/none", &o, &a), -ETIMEDOUT);
        CHECK(rmtest_now() - t0 >= 0.19);
        o.timeout_ns = 0;
        CHECK_ERR(rm_tensor_import(t, "bad name", &o, &a), -EINVAL);
        o.expect_nbytes = WORDS * 4 + 4;
        CHECK_ERR(rm_tensor_import(t, "err/a", &o, &a), -EMSGSIZE);
        printf("rank 1: size mismatch: %s\n", rm_last_error());
        o.expect_nbytes = WORDS * 4;
        o.expect_dtype = RM_DTYPE_F16;
        CHECK_ERR(rm_tensor_import(t, "err/a", &o, &a), -EMSGSIZE);
        o.expect_dtype = RM_DTYPE_U32;
        o.device = 99;
        CHECK_ERR(rm_tensor_import(t, "err/a", &o, &a), -ENODEV);
        o.device = device;

        CHECK_ERR(rm_tensor_import(t, "err/a", &o, &a), 0);
        g1 = rm_import_generation(a);
        printf("rank 1: GPU %d imported err/a from rank 0's GPU %d (%s)\n", device,
               rm_import_record(a)->exporter_device, rm_handle_kind_name(rm_import_record(a)->kind));
        bad = rmk_count_mismatches(rm_import_data(a), WORDS, 1, 0);
        CHECK(bad == 0);
        CHECK_ERR(rm_import_check(t, a), 0);
        if (kind == RM_HANDLE_CUDA_IPC) {
                struct rm_import *p;

                CHECK_ERR(rm_tensor_import(t, "err/ptr", &o, &p), -EMSGSIZE);   /* it is half the size */
                o.expect_nbytes = WORDS * 2;
                CHECK_ERR(rm_tensor_import(t, "err/ptr", &o, &p), 0);
                o.expect_nbytes = WORDS * 4;
                CHECK(rm_import_record(p)->byte_offset == WORDS * 2);
                /* The second half of a pattern over the whole block, seen from its middle. */
                {
                        uint32_t first;

                        CUDA_CHECK(cudaMemcpy(&first, rm_import_data(p), 4, cudaMemcpyDeviceToHost));
                        CHECK(first == rmk_pattern_value(5, WORDS / 2));
                }
                rm_import_close(t, p);
        }
        CHECK(rmtest_barrier(w, "imported", 60 * SEC) == 0);

        CHECK(rmtest_barrier(w, "reexported", 60 * SEC) == 0);
        CHECK_ERR(rm_import_check(t, a), -ESTALE);
        printf("rank 1: after re-export: %s\n", rm_last_error());
        o.generation = g1;
        CHECK_ERR(rm_tensor_import(t, "err/a", &o, &a2), -ESTALE);
        o.generation = 0;
        CHECK_ERR(rm_tensor_import(t, "err/a", &o, &a2), 0);
        CHECK(a2 != a && rm_import_generation(a2) > g1);
        CHECK(rmk_count_mismatches(rm_import_data(a2), WORDS, 2, 0) == 0);
        rm_import_close(t, a);          /* stale: closed now */
        CHECK(rmtest_barrier(w, "stale-checked", 60 * SEC) == 0);

        CHECK(rmtest_barrier(w, "withdrawn", 60 * SEC) == 0);
        CHECK_ERR(rm_import_check(t, a2), -ESTALE);
        CHECK_ERR(rm_tensor_import(t, "err/a", &o, &a), -ENOENT);
        printf("rank 1: withdrawn: %s\n", rm_last_error());
        rm_import_close(t, a2);
        CHECK_ERR(rm_tensor_import(t, "err/b", &o, &bi), 0);
        CHECK(rmtest_barrier(w, "b-imported", 60 * SEC) == 0);

        wait_owner_exit(w, "test/b-imported/0");
        CHECK_ERR(rm_import_check(t, bi), -EOWNERDEAD);
        printf("rank 1: exporter gone, check: %s\n", rm_last_error());
        CHECK_ERR(rm_tensor_import(t, "err/b", &o, &a), -EOWNERDEAD);
        printf("rank 1: exporter gone, import: %s\n", rm_last_error());
        rm_import_close(t, bi);
}

static void outsider(struct rm_worker *w, struct rm_tensors *t, int ndev_parent) {
        struct rm_import_opts o = { .device = 0 };
        struct rm_import *a;

        CHECK(rmtest_barrier(w, "exported", 60 * SEC) == 0);
        if (ndev_parent >= 2) {
                CHECK_ERR(rm_tensor_import(t, "err/a", &o, &a), -ENODEV);
                printf("rank 2: exporter's GPU hidden: %s\n", rm_last_error());
        } else
                printf("rank 2: one GPU only: the hidden-GPU case is skipped\n");
        CHECK(rmtest_barrier(w, "imported", 60 * SEC) == 0);
        CHECK(rmtest_barrier(w, "reexported", 60 * SEC) == 0);
        CHECK(rmtest_barrier(w, "stale-checked", 60 * SEC) == 0);
        CHECK(rmtest_barrier(w, "withdrawn", 60 * SEC) == 0);
        CHECK(rmtest_barrier(w, "b-imported", 60 * SEC) == 0);
}

static int rank_main(void) {
        struct rm_worker *w = rmtest_rank_open();
        enum rm_handle_kind kind = kind_from_env();
        int ndev_parent = (int) rmtest_env_u64("RMTEST_PARENT_GPUS", 1);
        struct rm_tensors *t;

        CUDA_CHECK(cudaSetDevice(0));
        CHECK(rm_tensors_new(w, &t) == 0);
        switch (rm_worker_rank(w)) {
        case 0:
                exporter(w, t, kind, 0);
                break;
        case 1:
                importer(w, t, kind, 0);
                break;
        default:
                outsider(w, t, ndev_parent);
        }
        rm_tensors_free(t);
        rm_worker_close(w);
        return 0;
}

int main(int argc, char **argv) {
        char u0[64], u1[64], cvd0[100], cvd1[180], cvd2[100], parent[40], kind_env[40];
        int ndev, failed = 0;

        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return rank_main();
        ndev = gpu_count_or_skip();
        gpu_uuid_string(0, u0);
        gpu_uuid_string(ndev >= 2 ? 1 : 0, u1);
        /* Rank 0 on GPU 0; rank 1 sees GPU 1 first, so GPU 0 is its index 1 (or
         * both on GPU 0); rank 2 sees only GPU 1. */
        snprintf(cvd0, sizeof(cvd0), "CUDA_VISIBLE_DEVICES=%s", u0);
        if (ndev >= 2)
                snprintf(cvd1, sizeof(cvd1), "CUDA_VISIBLE_DEVICES=%s,%s", u1, u0);
        else
                snprintf(cvd1, sizeof(cvd1), "CUDA_VISIBLE_DEVICES=%s", u0);
        snprintf(cvd2, sizeof(cvd2), "CUDA_VISIBLE_DEVICES=%s", u1);
        snprintf(parent, sizeof(parent), "RMTEST_PARENT_GPUS=%d", ndev);

        for (enum rm_handle_kind kind = RM_HANDLE_CUDA_IPC; kind <= RM_HANDLE_VMM_FD; kind++) {
                struct rmtest_job *j;
                char *env0[] = { cvd0, parent, kind_env, NULL };
                char *env1[] = { cvd1, parent, kind_env, NULL };
                char *env2[] = { cvd2, parent, kind_env, NULL };
                int r;

                if (!kind_usable(0, kind)) {
                        printf("== %s: not supported here, skipped\n", rm_handle_kind_name(kind));
                        continue;
                }
                printf("== %s\n", rm_handle_kind_name(kind));
                fflush(stdout);
                snprintf(kind_env, sizeof(kind_env), "RMTEST_KIND=%s", rm_handle_kind_name(kind));
                CHECK(rmtest_job_new(3, &j) == 0);
                CHECK(rmtest_job_spawn(j, 0, "errors", env0) == 0);
                CHECK(rmtest_job_spawn(j, 1, "errors", env1) == 0);
                CHECK(rmtest_job_spawn(j, 2, "errors", env2) == 0);
                r = rmtest_job_wait(j, 180 * SEC);
                rmtest_job_free(j);
                if (r != 0)
                        failed++;
        }
        printf(failed ? "FAILED\n" : "ok\n");
        return failed ? 1 : 0;
}

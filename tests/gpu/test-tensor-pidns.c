/* SPDX-License-Identifier: MIT */
/*
 * Tensors across PID namespaces (as between containers): rank 1 runs under
 * `unshare --pid --fork --mount-proc` (its own PID namespace and /proc).  A
 * VMM (POSIX fd) tensor must import and read correctly there; a CUDA IPC
 * tensor is tried and its outcome reported (legacy IPC is not expected to
 * cross PID namespaces; on some hosts it does).  Skips (77) without a GPU,
 * without unshare, where a PID namespace cannot be made, or where CUDA does
 * not start inside one.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu-test.h"
#include "shmring.h"
#include "test-kernels.h"

#define WORDS (UINT64_C(4) << 20)

static int rank_main(void) {
        struct rm_worker *w = rmtest_rank_open();
        uint32_t rank = rm_worker_rank(w);
        struct rm_tensors *t;
        int failures = 0;

        if (cudaSetDevice(0) != cudaSuccess || cudaFree(NULL) != cudaSuccess) {
                /* Some hosts refuse CUDA in a new PID namespace: say so, keep the barriers, skip. */
                printf("rank %u: CUDA does not start here (%s): skipping\n", rank,
                       cudaGetErrorString(cudaGetLastError()));
                CHECK(rmtest_barrier(w, "exported", 60 * SEC) == 0);
                CHECK(rmtest_barrier(w, "done", 120 * SEC) == 0);
                rm_worker_close(w);
                return 77;
        }
        CHECK(rm_tensors_new(w, &t) == 0);
        if (rank == 0) {
                struct rm_buffer *b[2] = { NULL, NULL };

                for (enum rm_handle_kind kind = RM_HANDLE_CUDA_IPC; kind <= RM_HANDLE_VMM_FD; kind++) {
                        struct rm_tensor_desc d = u32_desc(WORDS, 0);
                        char name[64];

                        if (!kind_usable(0, kind))
                                continue;
                        CHECK_ERR(rm_buffer_alloc(t, 0, WORDS * 4, kind, &b[kind - 1]), 0);
                        CHECK(rmk_fill_pattern(rm_buffer_data(b[kind - 1]), WORDS, 40 + kind, 0) == 0);
                        CUDA_CHECK(cudaDeviceSynchronize());
                        snprintf(name, sizeof(name), "ns/%s", rm_handle_kind_name(kind));
                        CHECK_ERR(rm_tensor_export(t, name, b[kind - 1], &d, NULL), 0);
                }
                printf("rank 0 (pid %d in the parent's namespace): exported\n", (int) getpid());
                CHECK(rmtest_barrier(w, "exported", 60 * SEC) == 0);
                CHECK(rmtest_barrier(w, "done", 120 * SEC) == 0);
        } else {
                CHECK(rmtest_barrier(w, "exported", 60 * SEC) == 0);
                printf("rank 1 (pid %d in its own PID namespace)\n", (int) getpid());
                for (enum rm_handle_kind kind = RM_HANDLE_CUDA_IPC; kind <= RM_HANDLE_VMM_FD; kind++) {
                        struct rm_import_opts o = { .device = 0, .timeout_ns = 10 * SEC };
                        struct rm_import *imp;
                        char name[64];
                        int r;

                        if (!kind_usable(0, kind)) {
                                printf("pidns %-8s not supported here\n", rm_handle_kind_name(kind));
                                continue;
                        }
                        snprintf(name, sizeof(name), "ns/%s", rm_handle_kind_name(kind));
                        r = rm_tensor_import(t, name, &o, &imp);
                        if (r < 0) {
                                printf("pidns %-8s import across PID namespaces: %d (%s)\n", rm_handle_kind_name(kind),
                                       r, rm_last_error());
                                if (kind == RM_HANDLE_VMM_FD)
                                        failures++;
                                continue;
                        }
                        {
                                long long bad = rmk_count_mismatches(rm_import_data(imp), WORDS, 40 + kind, 0);

                                printf("pidns %-8s import across PID namespaces: ok, %lld stale words, event %s\n",
                                       rm_handle_kind_name(kind), bad,
                                       rm_import_wait(imp, 0) == 0 ? "usable" : rm_last_error());
                                if (bad != 0)
                                        failures++;
                        }
                        rm_import_close(t, imp);
                }
                CHECK(rmtest_barrier(w, "done", 120 * SEC) == 0);
        }
        rm_tensors_free(t);
        rm_worker_close(w);
        return failures ? 1 : 0;
}

int main(int argc, char **argv) {
        static const char *const wrapper[] = { "unshare", "--pid", "--fork", "--mount-proc", NULL };
        struct rmtest_job *j;
        int r;

        if (argc == 3 && strcmp(argv[1], "--rank") == 0)
                return rank_main();
        gpu_count_or_skip();
        if (system("unshare --pid --fork --mount-proc true >/dev/null 2>&1") != 0) {
                printf("SKIP: cannot make a PID namespace here (unshare --pid --fork --mount-proc)\n");
                return 77;
        }
        CHECK(rmtest_job_new(2, &j) == 0);
        CHECK(rmtest_job_spawn(j, 0, "pidns", NULL) == 0);
        CHECK(rmtest_job_spawn_wrapped(j, 1, "pidns", NULL, wrapper) == 0);
        r = rmtest_job_wait(j, 120 * SEC);
        rmtest_job_free(j);
        printf(r == 0 ? "ok\n" : "FAILED\n");
        return r == 0 ? 0 : 1;
}

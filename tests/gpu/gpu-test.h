/* SPDX-License-Identifier: MIT */
#ifndef RMTEST_GPU_TEST_H
#define RMTEST_GPU_TEST_H

/* Helpers for the GPU tests: skip without a GPU, check CUDA calls, name GPUs by UUID. */

#include <cuda_runtime_api.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rank-launcher.h"
#include "rm_cuda.h"

#define SEC INT64_C(1000000000)

#define CUDA_CHECK(call)                                                                        \
        do {                                                                                    \
                cudaError_t e_ = (call);                                                        \
                if (e_ != cudaSuccess) {                                                        \
                        fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,           \
                                cudaGetErrorString(e_));                                        \
                        exit(1);                                                                \
                }                                                                               \
        } while (0)

/* The number of GPUs (at most RMTEST_GPUS when set); exits 77 when there is none. */
static inline int gpu_count_or_skip(void) {
        int n = 0;
        uint64_t cap = rmtest_env_u64("RMTEST_GPUS", 0);

        if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
                printf("SKIP: no CUDA device (%s)\n", cudaGetErrorString(cudaGetLastError()));
                exit(77);
        }
        if (cap > 0 && (uint64_t) n > cap)
                n = (int) cap;
        return n;
}

/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", the form CUDA_VISIBLE_DEVICES takes. */
static inline void gpu_uuid_string(int device, char buf[64]) {
        struct cudaDeviceProp p;
        const unsigned char *u;

        CUDA_CHECK(cudaGetDeviceProperties(&p, device));
        u = (const unsigned char *) p.uuid.bytes;
        snprintf(buf, 64, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[0], u[1],
                 u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* A 1-D uint32 tensor of n words at byte offset off. */
static inline struct rm_tensor_desc u32_desc(uint64_t n, uint64_t off) {
        struct rm_tensor_desc d = { .dtype = RM_DTYPE_U32, .ndim = 1, .byte_offset = off };

        d.shape[0] = (int64_t) n;
        return d;
}

static inline bool kind_usable(int device, enum rm_handle_kind kind) {
        enum rm_handle_kind k;
        const char *env = getenv("RINGMASTER_TENSOR_HANDLE");

        if (kind == RM_HANDLE_CUDA_IPC)
                return true;
        /* What AUTO would pick without an override is what the device supports. */
        if (env)
                unsetenv("RINGMASTER_TENSOR_HANDLE");
        CHECK(rm_tensor_kind_for_device(device, &k) == 0);
        return k == RM_HANDLE_VMM_FD;
}

#endif

/* SPDX-License-Identifier: MIT */
/* The custom all-reduce's kernels, instantiated for world 2, 4, 6, 8 and each dtype (allreduce.cuh). */

#include "allreduce.cuh"

namespace {

template <int DT, int N>
cudaError_t launch_world(const rmk_ar_args &a, cudaStream_t stream) {
        if (a.algo == RMK_AR_ONE_SHOT)
                rmk_ar::one_shot<DT, N><<<a.blocks, RMK_AR_THREADS, 0, stream>>>(a);
        else
                rmk_ar::two_shot<DT, N><<<a.blocks, RMK_AR_THREADS, 0, stream>>>(a);
        return cudaGetLastError();
}

template <int DT>
cudaError_t launch_dtype(const rmk_ar_args &a, cudaStream_t stream) {
        switch (a.world) {
        case 2:
                return launch_world<DT, 2>(a, stream);
        case 4:
                return launch_world<DT, 4>(a, stream);
        case 6:
                return launch_world<DT, 6>(a, stream);
        case 8:
                return launch_world<DT, 8>(a, stream);
        default:
                return cudaErrorInvalidValue;
        }
}

size_t dtype_size(enum rmk_ar_dtype d) {
        return d == RMK_AR_F32 ? 4 : 2;
}

} /* namespace */

extern "C" int rmk_ar_world_supported(int world) {
        return world == 2 || world == 4 || world == 6 || world == 8;
}

template <int DT, int N>
cudaError_t preload_world(void) {
        cudaFuncAttributes fa;
        cudaError_t e = cudaFuncGetAttributes(&fa, rmk_ar::one_shot<DT, N>);

        return e != cudaSuccess ? e : cudaFuncGetAttributes(&fa, rmk_ar::two_shot<DT, N>);
}

template <int N>
cudaError_t preload_dtypes(void) {
        cudaError_t e = preload_world<RMK_AR_F32, N>();

        if (e == cudaSuccess)
                e = preload_world<RMK_AR_F16, N>();
        return e != cudaSuccess ? e : preload_world<RMK_AR_BF16, N>();
}

extern "C" int rmk_ar_preload(int world) {
        switch (world) {
        case 2:
                return preload_dtypes<2>();
        case 4:
                return preload_dtypes<4>();
        case 6:
                return preload_dtypes<6>();
        case 8:
                return preload_dtypes<8>();
        default:
                return cudaErrorInvalidValue;
        }
}

extern "C" int rmk_ar_launch(const struct rmk_ar_args *a, cudaStream_t stream) {
        if (!a || !rmk_ar_world_supported(a->world) || a->rank < 0 || a->rank >= a->world || a->blocks < 1 ||
            a->blocks > RMK_AR_MAX_BLOCKS || !a->in || !a->out || a->count == 0 ||
            (a->dtype != RMK_AR_F32 && a->dtype != RMK_AR_F16 && a->dtype != RMK_AR_BF16) ||
            (a->algo != RMK_AR_ONE_SHOT && a->algo != RMK_AR_TWO_SHOT) || a->cap % RMK_AR_ALIGN != 0 ||
            (uintptr_t) a->in % RMK_AR_ALIGN != 0 || (uintptr_t) a->out % RMK_AR_ALIGN != 0 ||
            a->count > a->cap / dtype_size(a->dtype))
                return cudaErrorInvalidValue;
        for (int p = 0; p < a->world; p++)
                if (!a->window[p])
                        return cudaErrorInvalidValue;
        switch (a->dtype) {
        case RMK_AR_F32:
                return launch_dtype<RMK_AR_F32>(*a, stream);
        case RMK_AR_F16:
                return launch_dtype<RMK_AR_F16>(*a, stream);
        default:
                return launch_dtype<RMK_AR_BF16>(*a, stream);
        }
}

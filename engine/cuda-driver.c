/* SPDX-License-Identifier: MIT */
/* CUDA helpers: driver entry points without libcuda, errors, devices. */

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cuda-internal.h"

/* The driver API version whose signatures cudaTypedefs.h's PFNs above describe. */
#define CU_API_VERSION 12000

static struct cu_api api;
static int api_status = -EOPNOTSUPP;
static pthread_once_t api_once = PTHREAD_ONCE_INIT;
static char api_missing[64];

static void *entry(const char *name, bool *ok) {
        enum cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
        void *fn = NULL;

        if (cudaGetDriverEntryPointByVersion(name, &fn, CU_API_VERSION, cudaEnableDefault, &q) != cudaSuccess ||
            q != cudaDriverEntryPointSuccess || !fn) {
                (void) cudaGetLastError();
                if (*ok)
                        snprintf(api_missing, sizeof(api_missing), "%s", name);
                *ok = false;
                return NULL;
        }
        return fn;
}

static void api_load(void) {
        bool ok = true;

        api.MemCreate = (PFN_cuMemCreate_v10020) entry("cuMemCreate", &ok);
        api.MemRelease = (PFN_cuMemRelease_v10020) entry("cuMemRelease", &ok);
        api.MemAddressReserve = (PFN_cuMemAddressReserve_v10020) entry("cuMemAddressReserve", &ok);
        api.MemAddressFree = (PFN_cuMemAddressFree_v10020) entry("cuMemAddressFree", &ok);
        api.MemMap = (PFN_cuMemMap_v10020) entry("cuMemMap", &ok);
        api.MemUnmap = (PFN_cuMemUnmap_v10020) entry("cuMemUnmap", &ok);
        api.MemSetAccess = (PFN_cuMemSetAccess_v10020) entry("cuMemSetAccess", &ok);
        api.MemGetAllocationGranularity =
                (PFN_cuMemGetAllocationGranularity_v10020) entry("cuMemGetAllocationGranularity", &ok);
        api.MemExportToShareableHandle =
                (PFN_cuMemExportToShareableHandle_v10020) entry("cuMemExportToShareableHandle", &ok);
        api.MemImportFromShareableHandle =
                (PFN_cuMemImportFromShareableHandle_v10020) entry("cuMemImportFromShareableHandle", &ok);
        api.MemGetAddressRange = (PFN_cuMemGetAddressRange_v3020) entry("cuMemGetAddressRange", &ok);
        api.DeviceGetAttribute = (PFN_cuDeviceGetAttribute_v2000) entry("cuDeviceGetAttribute", &ok);
        api.GetErrorName = (PFN_cuGetErrorName_v6000) entry("cuGetErrorName", &ok);
        api_status = ok ? 0 : -EOPNOTSUPP;
}

int cu_api_get(const struct cu_api **ret) {
        pthread_once(&api_once, api_load);
        if (api_status < 0)
                return rmpriv_fail(api_status, "the CUDA driver does not offer %s", api_missing);
        *ret = &api;
        return 0;
}

static int errno_from_cuda(cudaError_t e) {
        switch (e) {
        case cudaErrorMemoryAllocation:
                return -ENOMEM;
        case cudaErrorInvalidValue:
        case cudaErrorInvalidDevicePointer:
                return -EINVAL;
        case cudaErrorNoDevice:
        case cudaErrorInvalidDevice:
        case cudaErrorInsufficientDriver:
                return -ENODEV;
        case cudaErrorPeerAccessUnsupported:
                return -EXDEV;
        case cudaErrorNotSupported:
                return -EOPNOTSUPP;
        default:
                return -EIO;
        }
}

int cuda_fail(cudaError_t e, const char *fmt, ...) {
        char what[256];
        va_list ap;

        (void) cudaGetLastError();              /* clear it, so the next call does not see it */
        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        rmpriv_set_error("%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
        return errno_from_cuda(e);
}

int cu_fail(CUresult e, const char *fmt, ...) {
        const char *name = NULL;
        char what[256];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        if (api.GetErrorName)
                (void) api.GetErrorName(e, &name);
        rmpriv_set_error("%s: %s (%d)", what, name ? name : "CUDA driver error", (int) e);
        switch (e) {
        case CUDA_ERROR_OUT_OF_MEMORY:
                return -ENOMEM;
        case CUDA_ERROR_INVALID_VALUE:
                return -EINVAL;
        case CUDA_ERROR_NOT_SUPPORTED:
                return -EOPNOTSUPP;
        case CUDA_ERROR_INVALID_DEVICE:
        case CUDA_ERROR_NO_DEVICE:
                return -ENODEV;
        default:
                return -EIO;
        }
}

int device_enter(int device, int *ret_previous) {
        cudaError_t e;
        int prev;

        e = cudaGetDevice(&prev);
        if (e != cudaSuccess)
                return cuda_fail(e, "cudaGetDevice");
        if (prev != device) {
                e = cudaSetDevice(device);
                if (e != cudaSuccess)
                        return cuda_fail(e, "cudaSetDevice(%d)", device);
        }
        *ret_previous = prev;
        return 0;
}

void device_restore(int previous) {
        int cur;

        if (cudaGetDevice(&cur) == cudaSuccess && cur != previous)
                (void) cudaSetDevice(previous);
}

int device_uuid(int device, uint8_t ret_uuid[16]) {
        struct cudaDeviceProp prop;
        cudaError_t e;

        e = cudaGetDeviceProperties(&prop, device);
        if (e != cudaSuccess)
                return cuda_fail(e, "cudaGetDeviceProperties(%d)", device);
        memcpy(ret_uuid, prop.uuid.bytes, 16);
        return 0;
}

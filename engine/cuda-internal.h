/* SPDX-License-Identifier: MIT */
#ifndef RM_CUDA_INTERNAL_H
#define RM_CUDA_INTERNAL_H

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>

#include "internal.h"
#include "rm_cuda.h"

/*
 * The driver entry points the VMM path needs, found through the runtime
 * (cudaGetDriverEntryPointByVersion), so that the library links without
 * libcuda and loads on a machine without a driver.
 */
struct cu_api {
        PFN_cuMemCreate_v10020 MemCreate;
        PFN_cuMemRelease_v10020 MemRelease;
        PFN_cuMemAddressReserve_v10020 MemAddressReserve;
        PFN_cuMemAddressFree_v10020 MemAddressFree;
        PFN_cuMemMap_v10020 MemMap;
        PFN_cuMemUnmap_v10020 MemUnmap;
        PFN_cuMemSetAccess_v10020 MemSetAccess;
        PFN_cuMemGetAllocationGranularity_v10020 MemGetAllocationGranularity;
        PFN_cuMemExportToShareableHandle_v10020 MemExportToShareableHandle;
        PFN_cuMemImportFromShareableHandle_v10020 MemImportFromShareableHandle;
        PFN_cuMemGetAddressRange_v3020 MemGetAddressRange;
        PFN_cuDeviceGetAttribute_v2000 DeviceGetAttribute;
        PFN_cuGetErrorName_v6000 GetErrorName;
};

/* The entry points, loaded once.  -EOPNOTSUPP when the driver lacks one. */
int cu_api_get(const struct cu_api **ret);

/*
 * Turns a failed runtime call into a negative errno, clears the sticky
 * last error and says what failed in rm_last_error():
 *   if (e != cudaSuccess) return cuda_fail(e, "cudaMalloc(%zu)", size);
 */
int cuda_fail(cudaError_t e, const char *fmt, ...) _printf_(2, 3);
/* The same for a driver call. */
int cu_fail(CUresult e, const char *fmt, ...) _printf_(2, 3);

/* Makes device current and remembers the previous one, for device_restore(). */
int device_enter(int device, int *ret_previous);
void device_restore(int previous);

int device_uuid(int device, uint8_t ret_uuid[16]);

#endif

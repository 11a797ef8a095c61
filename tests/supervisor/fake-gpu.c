/* SPDX-License-Identifier: MIT */
/*
 * A fake GPU stack for the preflight's tests: the few CUDA driver, NVML and
 * NCCL entry points that `ringmaster __gpu-probe` dlopen()s, answering from
 * environment variables.  A test links this one library under the names
 * libcuda.so.1, libnvidia-ml.so.1 and libnccl.so.2 (any subset, to play a
 * machine without one of them) in a directory that it names in
 * RINGMASTER_TEST_GPU_LIBDIR.
 *
 *   FAKE_GPU_COUNT=N          physical GPUs (default 4); CUDA sees those that
 *                             CUDA_VISIBLE_DEVICES lists, as CUDA would
 *   FAKE_GPU_NAME=NAME        (default "NVIDIA H200")
 *   FAKE_GPU_NO_P2P=A-B,...   physical pairs without peer access (PCIe SYS)
 *   FAKE_GPU_NVLINK=0|1       the other pairs are NVLink (default 1) or PCIe PXB
 *   FAKE_GPU_INIT_ERROR=CODE  cuInit() returns CODE
 *   FAKE_GPU_HANG=1           cuInit() never returns (a driver that hangs)
 *   FAKE_GPU_CRASH=1          cuInit() dies of SIGSEGV
 *   FAKE_NCCL_VERSION=CODE    ncclGetVersion()'s answer (default 22105: 2.21.5)
 *   FAKE_GPU_LOG=PATH         cuInit() appends a line to PATH (how often the driver was asked)
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_GPUS 64

/* ---------------------------------------------------------------- the fake machine */

static int env_int(const char *name, int def) {
        const char *s = getenv(name);

        return s && *s ? atoi(s) : def;
}

static int physical_count(void) {
        int n = env_int("FAKE_GPU_COUNT", 4);

        return n < 0 ? 0 : n > MAX_GPUS ? MAX_GPUS : n;
}

/* CUDA's ordinals: the valid entries of CUDA_VISIBLE_DEVICES up to the first invalid one. */
static int visible_gpus(int *physical) {
        const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
        char copy[1024], *save = NULL;
        int n = 0, count = physical_count();

        if (!cvd) {
                for (int i = 0; i < count; i++)
                        physical[n++] = i;
                return n;
        }
        snprintf(copy, sizeof(copy), "%s", cvd);
        for (char *t = strtok_r(copy, ",", &save); t && n < MAX_GPUS; t = strtok_r(NULL, ",", &save)) {
                char *end = NULL;
                long v = strtol(t, &end, 10);

                if (strncmp(t, "GPU-fake-", 9) == 0)
                        v = strtol(t + 9, &end, 10);
                if (!end || *end || v < 0 || v >= count)
                        break;
                physical[n++] = (int) v;
        }
        return n;
}

static int no_p2p(int a, int b) {
        const char *s = getenv("FAKE_GPU_NO_P2P");
        char copy[1024], *save = NULL;

        if (!s)
                return 0;
        snprintf(copy, sizeof(copy), "%s", s);
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int x, y;

                if (sscanf(t, "%d-%d", &x, &y) == 2 && ((x == a && y == b) || (x == b && y == a)))
                        return 1;
        }
        return 0;
}

static const char *gpu_name(void) {
        const char *s = getenv("FAKE_GPU_NAME");

        return s ? s : "NVIDIA H200";
}

#define GPU_MEMORY (143771ULL << 20)

/* ---------------------------------------------------------------- CUDA driver API */

int cuInit(unsigned flags);
int cuDriverGetVersion(int *version);
int cuDeviceGetCount(int *count);
int cuDeviceGet(int *device, int ordinal);
int cuDeviceGetName(char *name, int len, int device);
int cuDeviceGetPCIBusId(char *id, int len, int device);
int cuDeviceTotalMem_v2(size_t *bytes, int device);
int cuDeviceCanAccessPeer(int *can, int device, int peer);
int cuGetErrorName(int error, const char **name);

static int cuda_ready;

int cuInit(unsigned flags) {
        const char *log = getenv("FAKE_GPU_LOG");

        (void) flags;
        if (log && *log) {
                FILE *f = fopen(log, "a");

                if (f) {
                        fprintf(f, "cuInit %d\n", (int) getpid());
                        fclose(f);
                }
        }
        if (env_int("FAKE_GPU_HANG", 0))
                for (;;)
                        pause();
        if (env_int("FAKE_GPU_CRASH", 0)) {
                signal(SIGSEGV, SIG_DFL);    /* the kernel's death, not a sanitizer's report */
                raise(SIGSEGV);
        }
        if (env_int("FAKE_GPU_INIT_ERROR", 0))
                return env_int("FAKE_GPU_INIT_ERROR", 0);
        cuda_ready = 1;
        return 0;
}

int cuDriverGetVersion(int *version) {
        *version = 12080;
        return 0;
}

int cuDeviceGetCount(int *count) {
        int physical[MAX_GPUS];

        if (!cuda_ready)
                return 3;    /* CUDA_ERROR_NOT_INITIALIZED */
        *count = visible_gpus(physical);
        return 0;
}

/* A device handle is the physical index. */
int cuDeviceGet(int *device, int ordinal) {
        int physical[MAX_GPUS], n = visible_gpus(physical);

        if (!cuda_ready)
                return 3;
        if (ordinal < 0 || ordinal >= n)
                return 101;  /* CUDA_ERROR_INVALID_DEVICE */
        *device = physical[ordinal];
        return 0;
}

int cuDeviceGetName(char *name, int len, int device) {
        snprintf(name, (size_t) len, "%s", gpu_name());
        (void) device;
        return 0;
}

int cuDeviceGetPCIBusId(char *id, int len, int device) {
        snprintf(id, (size_t) len, "0000:%02X:00.0", 0x10 + device);
        return 0;
}

int cuDeviceTotalMem_v2(size_t *bytes, int device) {
        (void) device;
        *bytes = (size_t) GPU_MEMORY;
        return 0;
}

int cuDeviceCanAccessPeer(int *can, int device, int peer) {
        *can = device != peer && !no_p2p(device, peer);
        return 0;
}

int cuGetErrorName(int error, const char **name) {
        switch (error) {
        case 3: *name = "CUDA_ERROR_NOT_INITIALIZED"; return 0;
        case 100: *name = "CUDA_ERROR_NO_DEVICE"; return 0;
        case 101: *name = "CUDA_ERROR_INVALID_DEVICE"; return 0;
        case 804: *name = "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"; return 0;
        }
        return 1;
}

/* ---------------------------------------------------------------- NVML */

typedef struct fake_nvml_device *nvmlDevice_t;

struct nvml_pci_info {
        char bus_id_legacy[16];
        unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
        char bus_id[32];
};

struct nvml_memory {
        unsigned long long total, free, used;
};

int nvmlInit_v2(void);
int nvmlShutdown(void);
const char *nvmlErrorString(int r);
int nvmlSystemGetDriverVersion(char *version, unsigned len);
int nvmlDeviceGetCount_v2(unsigned *count);
int nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t *device);
int nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device);
int nvmlDeviceGetHandleByPciBusId_v2(const char *id, nvmlDevice_t *device);
int nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned len);
int nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, struct nvml_pci_info *pci);
int nvmlDeviceGetMemoryInfo(nvmlDevice_t device, struct nvml_memory *memory);
int nvmlDeviceGetP2PStatus(nvmlDevice_t a, nvmlDevice_t b, int caps, int *status);
int nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b, int *level);

/* A handle is the physical index + 1. */
static nvmlDevice_t handle_of(int physical) {
        return (nvmlDevice_t) (uintptr_t) (physical + 1);
}

static int physical_of(nvmlDevice_t d) {
        return (int) (uintptr_t) d - 1;
}

int nvmlInit_v2(void) {
        return 0;
}

int nvmlShutdown(void) {
        return 0;
}

const char *nvmlErrorString(int r) {
        return r == 0 ? "Success" : "Unknown Error";
}

int nvmlSystemGetDriverVersion(char *version, unsigned len) {
        snprintf(version, len, "570.86.15");
        return 0;
}

int nvmlDeviceGetCount_v2(unsigned *count) {
        *count = (unsigned) physical_count();
        return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t *device) {
        if ((int) index >= physical_count())
                return 2;    /* NVML_ERROR_INVALID_ARGUMENT */
        *device = handle_of((int) index);
        return 0;
}

int nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
        int v;

        if (sscanf(uuid, "GPU-fake-%d", &v) != 1 || v < 0 || v >= physical_count())
                return 6;    /* NVML_ERROR_NOT_FOUND */
        *device = handle_of(v);
        return 0;
}

int nvmlDeviceGetHandleByPciBusId_v2(const char *id, nvmlDevice_t *device) {
        unsigned domain, bus, dev, fn;

        if (sscanf(id, "%x:%x:%x.%x", &domain, &bus, &dev, &fn) != 4 || bus < 0x10 ||
            (int) (bus - 0x10) >= physical_count())
                return 6;
        *device = handle_of((int) bus - 0x10);
        return 0;
}

int nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned len) {
        (void) device;
        snprintf(name, len, "%s", gpu_name());
        return 0;
}

int nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, struct nvml_pci_info *pci) {
        memset(pci, 0, sizeof(*pci));
        pci->bus = 0x10 + (unsigned) physical_of(device);
        snprintf(pci->bus_id, sizeof(pci->bus_id), "00000000:%02X:00.0", pci->bus);
        return 0;
}

int nvmlDeviceGetMemoryInfo(nvmlDevice_t device, struct nvml_memory *memory) {
        (void) device;
        memory->total = GPU_MEMORY;
        memory->free = GPU_MEMORY;
        memory->used = 0;
        return 0;
}

int nvmlDeviceGetP2PStatus(nvmlDevice_t a, nvmlDevice_t b, int caps, int *status) {
        int blocked = no_p2p(physical_of(a), physical_of(b));

        if (caps == 2)                  /* NVML_P2P_CAPS_INDEX_NVLINK */
                *status = !blocked && env_int("FAKE_GPU_NVLINK", 1) ? 0 : 5;
        else
                *status = blocked ? 3 : 0;    /* NVML_P2P_STATUS_IOH_TOPOLOGY_NOT_SUPPORTED */
        return 0;
}

int nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t a, nvmlDevice_t b, int *level) {
        *level = no_p2p(physical_of(a), physical_of(b)) ? 50 : 20;    /* SYS, PXB */
        return 0;
}

/* ---------------------------------------------------------------- NCCL */

int ncclGetVersion(int *version);

int ncclGetVersion(int *version) {
        *version = env_int("FAKE_NCCL_VERSION", 22105);
        return 0;
}

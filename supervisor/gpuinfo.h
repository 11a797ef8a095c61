/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_GPUINFO_H
#define RINGMASTER_GPUINFO_H

/*
 * What the GPU stack says about the GPUs of a run, with no link-time
 * dependency on it: a child process (ringmaster itself, exec'd as
 * `ringmaster __gpu-probe N`) dlopen()s the CUDA driver (libcuda.so.1), NVML
 * (libnvidia-ml.so.1) and NCCL (libnccl.so.2), asks them, prints
 * tab-separated lines on its stdout and exits.  A child, so that the
 * supervisor itself never holds a driver context, the driver's threads or its
 * fds, and so that a driver that hangs (a GPU fallen off the bus) costs a
 * bounded wait instead of the supervisor.
 *
 * The child sees CUDA_VISIBLE_DEVICES set to the run's GPUs, so CUDA's
 * device ordinals 0..N-1 are the GPUs that LOCAL_RANK 0..N-1 will use.
 */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Unknown, no, yes: what a pair of GPUs can do. */
enum tristate {
        TRISTATE_UNKNOWN = -1,
        TRISTATE_NO = 0,
        TRISTATE_YES = 1,
};

struct gpu_device {
        char *name;
        char *pci_bus_id;
        uint64_t memory_bytes;          /* 0: unknown */
};

/* NVML's nvmlGpuTopologyLevel_t: the closest common PCIe ancestor of two GPUs. */
enum {
        GPU_TOPOLOGY_UNKNOWN = -1,
        GPU_TOPOLOGY_INTERNAL = 0,      /* the same board */
        GPU_TOPOLOGY_SINGLE = 10,       /* one PCIe switch */
        GPU_TOPOLOGY_MULTIPLE = 20,     /* several PCIe switches, no host bridge */
        GPU_TOPOLOGY_HOSTBRIDGE = 30,   /* a host bridge */
        GPU_TOPOLOGY_NODE = 40,         /* host bridges of one NUMA node */
        GPU_TOPOLOGY_SYSTEM = 50,       /* across NUMA nodes (SMP interconnect) */
};

struct gpu_link {
        enum tristate p2p;              /* peer access: cuDeviceCanAccessPeer (NVML's P2P read status without CUDA) */
        enum tristate nvlink;           /* NVML: P2P over NVLink (direct or through NVSwitch) */
        int topology;                   /* GPU_TOPOLOGY_*, from NVML */
};

struct gpuinfo {
        /* The probe itself. */
        char *probe_error;              /* it could not run, or died: why; NULL when it answered */
        bool from_cache;                /* the answer is a cached one (gpuinfo_request.cache_read) */
        bool timed_out;                 /* it did not answer in time and was killed */
        bool stuck;                     /* ... and was still not gone after SIGKILL (state D in the driver) */
        int stuck_pid;

        /* The CUDA driver API. */
        bool cuda;                      /* libcuda.so.1 loaded and cuInit() succeeded */
        bool cuda_library;              /* libcuda.so.1 loaded */
        char *cuda_error;               /* why not: dlerror(), or the call that failed and its error */
        int cuda_driver_version;        /* cuDriverGetVersion(): 12040 is 12.4 */
        int cuda_device_count;          /* cuDeviceGetCount(), -1 unknown */

        /* NVML. */
        bool nvml;
        char *nvml_error;
        char *nvml_driver_version;

        /* The GPUs asked about, in CUDA's order (NVML's index order without CUDA). */
        size_t n_devices;
        struct gpu_device *devices;
        struct gpu_link *links;         /* n_devices × n_devices, [i * n_devices + j] */

        /* NCCL. */
        bool nccl;
        char *nccl_error;
        int nccl_version_code;          /* ncclGetVersion(): 22105 is 2.21.5 (1000 * major + ... before 2.9) */
        char *nccl_path;
};

struct gpuinfo_request {
        const char *cuda_visible_devices;  /* for the probe; NULL: inherited as it is */
        int max_devices;                /* GPUs to look at (CUDA ordinals 0..max-1); 0: only NCCL */
        uint64_t timeout_usec;
        const sigset_t *sigmask;        /* the probe's signal mask; NULL: the caller's */
        /*
         * A private folder where the probe's answer is kept (NULL: none).  The
         * answer holds for the same boot, driver, ringmaster binary, GPUs and
         * library search path; with cache_read, such an answer is used instead of
         * starting the probe (the driver's start-up costs about half a second).
         * A fresh answer is always written there.
         */
        const char *cache_dir;
        bool cache_read;
};

#define GPUINFO_DEFAULT_TIMEOUT_USEC (30 * UINT64_C(1000000))

/*
 * Runs the probe and parses its answer into ret.  Returns 0 whenever a
 * gpuinfo could be made, even when the probe failed or timed out (see
 * probe_error, timed_out), and a negative errno when out of memory.
 */
int gpuinfo_probe(const struct gpuinfo_request *req, struct gpuinfo **ret);
struct gpuinfo *gpuinfo_free(struct gpuinfo *g);

/* The link between GPUs i and j (i != j). */
const struct gpu_link *gpuinfo_link(const struct gpuinfo *g, size_t i, size_t j);

/* "2.21.5" for ncclGetVersion()'s code (buf >= 32 bytes). */
char *nccl_version_string(int code, char *buf, size_t size);
/* nvidia-smi topo -m's name for a topology level: "PIX", "PXB", "PHB", "NODE", "SYS", or "?" */
const char *gpu_topology_name(int level);

/* The child: `ringmaster __gpu-probe MAX_DEVICES`. */
int gpuinfo_probe_main(int argc, char **argv);

#endif

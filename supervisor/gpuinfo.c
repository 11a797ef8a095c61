/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <inttypes.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "gpuinfo.h"
#include "parse-util.h"
#include "spawn.h"
#include "util.h"

extern char **environ;

/* Where configure found the CUDA toolkit's libraries (NCCL is often beside them). */
#ifndef RINGMASTER_CUDA_LIBDIR
#define RINGMASTER_CUDA_LIBDIR ""
#endif

/* Longest answer read from the probe: a few lines per GPU pair. */
#define PROBE_OUTPUT_MAX (256u * 1024u)
/* After SIGKILL, how long to wait for the probe to go. */
#define PROBE_KILL_WAIT_USEC (2 * USEC_PER_SEC)

/* ================================================================ the child */

/*
 * The few entry points used, declared here rather than taken from cuda.h and
 * nvml.h: the build must not need them.  All are stable C ABI (the CUDA
 * driver's versioned names are the ones cuda.h maps to today).
 */
typedef int cu_result;
typedef int cu_device;

struct cuda_api {
        cu_result (*init)(unsigned flags);
        cu_result (*driver_get_version)(int *version);
        cu_result (*device_get_count)(int *count);
        cu_result (*device_get)(cu_device *device, int ordinal);
        cu_result (*device_get_name)(char *name, int len, cu_device device);
        cu_result (*device_get_pci_bus_id)(char *id, int len, cu_device device);
        cu_result (*device_total_mem)(size_t *bytes, cu_device device);
        cu_result (*device_can_access_peer)(int *can, cu_device device, cu_device peer);
        cu_result (*get_error_name)(cu_result error, const char **name);       /* optional */
};

typedef int nvml_return;
typedef struct nvml_device *nvml_device;

struct nvml_pci_info {                  /* nvmlPciInfo_t (v3) */
        char bus_id_legacy[16];
        unsigned domain, bus, device, pci_device_id, pci_subsystem_id;
        char bus_id[32];
};

struct nvml_memory {                    /* nvmlMemory_t (v1) */
        unsigned long long total, free, used;
};

enum {
        NVML_P2P_CAPS_INDEX_READ = 0,
        NVML_P2P_CAPS_INDEX_NVLINK = 2,
        NVML_P2P_STATUS_OK = 0,
};

struct nvml_api {
        nvml_return (*init)(void);                                         /* nvmlInit_v2 */
        nvml_return (*shutdown)(void);
        const char *(*error_string)(nvml_return r);
        nvml_return (*system_get_driver_version)(char *version, unsigned len);
        nvml_return (*device_get_count)(unsigned *count);                  /* _v2 */
        nvml_return (*device_get_handle_by_index)(unsigned index, nvml_device *device);   /* _v2 */
        nvml_return (*device_get_handle_by_uuid)(const char *uuid, nvml_device *device);
        nvml_return (*device_get_handle_by_pci_bus_id)(const char *id, nvml_device *device);   /* _v2 */
        nvml_return (*device_get_name)(nvml_device device, char *name, unsigned len);
        nvml_return (*device_get_pci_info)(nvml_device device, struct nvml_pci_info *pci);    /* _v3 */
        nvml_return (*device_get_memory_info)(nvml_device device, struct nvml_memory *memory);
        nvml_return (*device_get_p2p_status)(nvml_device a, nvml_device b, int caps_index, int *status);
        nvml_return (*device_get_topology_common_ancestor)(nvml_device a, nvml_device b, int *level);
};

typedef int (*nccl_get_version_fn)(int *version);

/* dlopen()s soname, from RINGMASTER_TEST_GPU_LIBDIR only when that is set (tests). */
static void *library_open(const char *soname, const char *fallback_dir, char *error, size_t error_size) {
        const char *test_dir = getenv("RINGMASTER_TEST_GPU_LIBDIR");
        char path[4096];
        void *lib;

        if (test_dir) {
                snprintf(path, sizeof(path), "%s/%s", test_dir, soname);
                lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
                if (!lib)
                        snprintf(error, error_size, "%s", dlerror());
                return lib;
        }
        lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
        if (lib)
                return lib;
        snprintf(error, error_size, "%s", dlerror());
        if (fallback_dir && *fallback_dir) {
                snprintf(path, sizeof(path), "%s/%s", fallback_dir, soname);
                lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        }
        return lib;
}

/* Looks a symbol up into a function pointer (POSIX allows the conversion). */
static bool symbol(void *lib, const char *name, void *fn, size_t size) {
        void *p = dlsym(lib, name);

        if (!p)
                return false;
        memcpy(fn, &p, MIN(size, sizeof(p)));
        return true;
}
#define SYMBOL(lib, name, fn) symbol(lib, name, &(fn), sizeof(fn))

/* The probe's lines carry fields separated by tabs: no tab or newline inside one. */
static const char *field(char *s) {
        for (char *p = s; *p; p++)
                if (*p == '\t' || *p == '\n' || *p == '\r')
                        *p = ' ';
        return s;
}

static const char *library_path(void *lib, char *buf, size_t size) {
        struct link_map *map = NULL;

        if (dlinfo(lib, RTLD_DI_LINKMAP, &map) == 0 && map && map->l_name && *map->l_name)
                snprintf(buf, size, "%s", map->l_name);
        else
                snprintf(buf, size, "?");
        return field(buf);
}

static const char *cuda_error_name(const struct cuda_api *cu, cu_result r, char *buf, size_t size) {
        const char *name = NULL;

        if (cu->get_error_name && cu->get_error_name(r, &name) == 0 && name)
                snprintf(buf, size, "%s (%d)", name, r);
        else
                snprintf(buf, size, "CUDA error %d", r);
        return field(buf);
}

static bool cuda_load(struct cuda_api *cu) {
        char error[512], path[512];
        void *lib;

        lib = library_open("libcuda.so.1", NULL, error, sizeof(error));
        if (!lib) {
                printf("cuda-error\tno CUDA driver: %s\n", field(error));
                return false;
        }
        if (!SYMBOL(lib, "cuInit", cu->init) || !SYMBOL(lib, "cuDriverGetVersion", cu->driver_get_version) ||
            !SYMBOL(lib, "cuDeviceGetCount", cu->device_get_count) || !SYMBOL(lib, "cuDeviceGet", cu->device_get) ||
            !SYMBOL(lib, "cuDeviceGetName", cu->device_get_name) ||
            !SYMBOL(lib, "cuDeviceGetPCIBusId", cu->device_get_pci_bus_id) ||
            !SYMBOL(lib, "cuDeviceTotalMem_v2", cu->device_total_mem) ||
            !SYMBOL(lib, "cuDeviceCanAccessPeer", cu->device_can_access_peer)) {
                printf("cuda-error\t%s lacks a CUDA driver entry point: %s\n", library_path(lib, path, sizeof(path)),
                       field(dlerror()));
                return false;
        }
        (void) SYMBOL(lib, "cuGetErrorName", cu->get_error_name);
        printf("cuda-library\t%s\n", library_path(lib, path, sizeof(path)));
        return true;
}

static bool nvml_load(struct nvml_api *nv) {
        char error[512], path[512];
        void *lib;

        lib = library_open("libnvidia-ml.so.1", NULL, error, sizeof(error));
        if (!lib) {
                printf("nvml-error\tno NVML: %s\n", field(error));
                return false;
        }
        if (!SYMBOL(lib, "nvmlInit_v2", nv->init) || !SYMBOL(lib, "nvmlShutdown", nv->shutdown) ||
            !SYMBOL(lib, "nvmlErrorString", nv->error_string) ||
            !SYMBOL(lib, "nvmlSystemGetDriverVersion", nv->system_get_driver_version) ||
            !SYMBOL(lib, "nvmlDeviceGetCount_v2", nv->device_get_count) ||
            !SYMBOL(lib, "nvmlDeviceGetHandleByIndex_v2", nv->device_get_handle_by_index) ||
            !SYMBOL(lib, "nvmlDeviceGetHandleByUUID", nv->device_get_handle_by_uuid) ||
            !SYMBOL(lib, "nvmlDeviceGetHandleByPciBusId_v2", nv->device_get_handle_by_pci_bus_id) ||
            !SYMBOL(lib, "nvmlDeviceGetName", nv->device_get_name) ||
            !SYMBOL(lib, "nvmlDeviceGetPciInfo_v3", nv->device_get_pci_info) ||
            !SYMBOL(lib, "nvmlDeviceGetMemoryInfo", nv->device_get_memory_info) ||
            !SYMBOL(lib, "nvmlDeviceGetP2PStatus", nv->device_get_p2p_status) ||
            !SYMBOL(lib, "nvmlDeviceGetTopologyCommonAncestor", nv->device_get_topology_common_ancestor)) {
                printf("nvml-error\t%s lacks an NVML entry point: %s\n", library_path(lib, path, sizeof(path)),
                       field(dlerror()));
                return false;
        }
        return true;
}

/* Without CUDA: the NVML handle of the i-th entry of CUDA_VISIBLE_DEVICES (or of index i). */
static bool nvml_handle_for_ordinal(const struct nvml_api *nv, char *const *visible, size_t i, nvml_device *ret) {
        long long v;

        if (!visible)
                return nv->device_get_handle_by_index((unsigned) i, ret) == 0;
        if (parse_int_range(visible[i], 0, 1023, &v) == 0)
                return nv->device_get_handle_by_index((unsigned) v, ret) == 0;
        if (startswith(visible[i], "GPU-"))
                return nv->device_get_handle_by_uuid(visible[i], ret) == 0;
        return false;    /* a MIG- instance: NVML's parent handle is not the ordinal's */
}

static char **cuda_visible_entries(void) {
        const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
        _cleanup_free_ char *copy = NULL;
        char **l = NULL, *save = NULL;

        if (!cvd)
                return NULL;
        copy = strdup(cvd);
        l = calloc(1, sizeof(char *));
        if (!copy || !l)
                return strv_free(l);
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                if (strv_extend(&l, t) < 0)
                        return strv_free(l);
        return l;
}

static void probe_gpus(int max_devices) {
        struct cuda_api cu = {};
        struct nvml_api nv = {};
        _cleanup_free_ nvml_device *handles = NULL;
        _cleanup_strv_free_ char **visible = NULL;
        bool cuda = false, nvml = false;
        int count = 0, n = 0, version = 0;
        char buf[256], name[256];
        cu_result r;

        if (cuda_load(&cu)) {
                r = cu.init(0);
                if (r != 0)
                        printf("cuda-error\tcuInit() failed: %s\n", cuda_error_name(&cu, r, buf, sizeof(buf)));
                else if ((r = cu.device_get_count(&count)) != 0)
                        printf("cuda-error\tcuDeviceGetCount() failed: %s\n", cuda_error_name(&cu, r, buf, sizeof(buf)));
                else {
                        cuda = true;
                        if (cu.driver_get_version(&version) == 0)
                                printf("cuda-driver\t%d\n", version);
                        printf("cuda-count\t%d\n", count);
                        printf("cuda-ok\n");
                }
        }
        if (nvml_load(&nv)) {
                nvml_return e = nv.init();

                if (e != 0) {
                        snprintf(buf, sizeof(buf), "%s", nv.error_string(e) ? nv.error_string(e) : "?");
                        printf("nvml-error\tnvmlInit() failed: %s (%d)\n", field(buf), e);
                } else {
                        nvml = true;
                        if (nv.system_get_driver_version(buf, sizeof(buf)) == 0)
                                printf("nvml-driver\t%s\n", field(buf));
                        printf("nvml-ok\n");
                }
        }
        fflush(stdout);

        handles = calloc((size_t) max_devices, sizeof(nvml_device));
        if (!handles)
                goto finish;
        if (cuda)
                n = MIN(count, max_devices);
        else if (nvml) {
                unsigned nvml_count = 0;

                visible = cuda_visible_entries();
                if (nv.device_get_count(&nvml_count) == 0)
                        n = MIN(max_devices, visible ? (int) strv_length(visible) : (int) nvml_count);
        }

        for (int i = 0; i < n; i++) {
                char pci[64] = "?";
                uint64_t memory = 0;

                snprintf(name, sizeof(name), "?");
                if (cuda) {
                        cu_device d;
                        size_t bytes = 0;

                        if (cu.device_get(&d, i) != 0)
                                continue;
                        (void) cu.device_get_name(name, sizeof(name), d);
                        (void) cu.device_get_pci_bus_id(pci, sizeof(pci), d);
                        if (cu.device_total_mem(&bytes, d) == 0)
                                memory = bytes;
                        if (nvml && nv.device_get_handle_by_pci_bus_id(pci, &handles[i]) != 0)
                                handles[i] = NULL;
                } else {
                        struct nvml_pci_info info = {};
                        struct nvml_memory mem = {};

                        if (!nvml_handle_for_ordinal(&nv, visible, (size_t) i, &handles[i])) {
                                handles[i] = NULL;
                                continue;
                        }
                        (void) nv.device_get_name(handles[i], name, sizeof(name));
                        if (nv.device_get_pci_info(handles[i], &info) == 0)
                                snprintf(pci, sizeof(pci), "%s", info.bus_id);
                        if (nv.device_get_memory_info(handles[i], &mem) == 0)
                                memory = mem.total;
                }
                name[sizeof(name) - 1] = 0;
                pci[sizeof(pci) - 1] = 0;
                printf("device\t%d\t%s\t%" PRIu64 "\t%s\n", i, field(pci), memory, field(name));
        }
        fflush(stdout);

        for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                        int can = 0, status = -1, level = -1;
                        cu_device a, b;

                        if (i == j)
                                continue;
                        if (cuda) {
                                if (cu.device_get(&a, i) == 0 && cu.device_get(&b, j) == 0 &&
                                    cu.device_can_access_peer(&can, a, b) == 0)
                                        printf("p2p\t%d\t%d\t%d\n", i, j, can ? 1 : 0);
                        } else if (handles[i] && handles[j] &&
                                   nv.device_get_p2p_status(handles[i], handles[j], NVML_P2P_CAPS_INDEX_READ, &status) == 0)
                                printf("p2p\t%d\t%d\t%d\n", i, j, status == NVML_P2P_STATUS_OK ? 1 : 0);
                        if (!handles[i] || !handles[j])
                                continue;
                        if (nv.device_get_p2p_status(handles[i], handles[j], NVML_P2P_CAPS_INDEX_NVLINK, &status) == 0)
                                printf("nvlink\t%d\t%d\t%d\n", i, j, status == NVML_P2P_STATUS_OK ? 1 : 0);
                        if (nv.device_get_topology_common_ancestor(handles[i], handles[j], &level) == 0)
                                printf("topology\t%d\t%d\t%d\n", i, j, level);
                }

finish:
        if (nvml)
                (void) nv.shutdown();
        fflush(stdout);
}

static void probe_nccl(void) {
        char error[512], path[512];
        nccl_get_version_fn get_version = NULL;
        int version = 0, r;
        void *lib;

        lib = library_open("libnccl.so.2", RINGMASTER_CUDA_LIBDIR, error, sizeof(error));
        if (!lib) {
                printf("nccl-error\tno NCCL: %s\n", field(error));
                return;
        }
        if (!SYMBOL(lib, "ncclGetVersion", get_version)) {
                printf("nccl-error\t%s has no ncclGetVersion: %s\n", library_path(lib, path, sizeof(path)),
                       field(dlerror()));
                return;
        }
        r = get_version(&version);
        if (r != 0) {
                printf("nccl-error\tncclGetVersion() failed: error %d\n", r);
                return;
        }
        printf("nccl-ok\t%d\t%s\n", version, library_path(lib, path, sizeof(path)));
}

int gpuinfo_probe_main(int argc, char **argv) {
        long long max_devices;

        if (argc != 2 || parse_int_range(argv[1], 0, 1024, &max_devices) < 0) {
                fprintf(stderr, "ringmaster: __gpu-probe is internal (ringmaster check and run use it)\n");
                return 100;
        }
        if (max_devices > 0)
                probe_gpus((int) max_devices);
        probe_nccl();
        printf("end\n");
        return fflush(stdout) == 0 ? 0 : 1;
}

/* ================================================================ the parent */

struct gpuinfo *gpuinfo_free(struct gpuinfo *g) {
        if (!g)
                return NULL;
        for (size_t i = 0; g->devices && i < g->n_devices; i++) {
                free(g->devices[i].name);
                free(g->devices[i].pci_bus_id);
        }
        free(g->devices);
        free(g->links);
        free(g->probe_error);
        free(g->cuda_error);
        free(g->nvml_error);
        free(g->nvml_driver_version);
        free(g->nccl_error);
        free(g->nccl_path);
        free(g);
        return NULL;
}

const struct gpu_link *gpuinfo_link(const struct gpuinfo *g, size_t i, size_t j) {
        assert(i < g->n_devices && j < g->n_devices);
        return &g->links[i * g->n_devices + j];
}

char *nccl_version_string(int code, char *buf, size_t size) {
        /* NCCL_VERSION_CODE: 10000 * major + 100 * minor + patch since 2.9, 1000 * major + 100 * minor + patch before. */
        if (code >= 20900)
                snprintf(buf, size, "%d.%d.%d", code / 10000, code % 10000 / 100, code % 100);
        else
                snprintf(buf, size, "%d.%d.%d", code / 1000, code % 1000 / 100, code % 100);
        return buf;
}

const char *gpu_topology_name(int level) {
        switch (level) {
        case GPU_TOPOLOGY_INTERNAL: return "BRD";
        case GPU_TOPOLOGY_SINGLE: return "PIX";
        case GPU_TOPOLOGY_MULTIPLE: return "PXB";
        case GPU_TOPOLOGY_HOSTBRIDGE: return "PHB";
        case GPU_TOPOLOGY_NODE: return "NODE";
        case GPU_TOPOLOGY_SYSTEM: return "SYS";
        }
        return "?";
}

static int set_text(char **field_ptr, const char *value) {
        char *c = strdup(value);

        if (!c)
                return -ENOMEM;
        free(*field_ptr);
        *field_ptr = c;
        return 0;
}

static int parse_index(const char *s, size_t n, size_t *ret) {
        long long v;

        if (!s || parse_int_range(s, 0, (long long) n - 1, &v) < 0)
                return -EBADMSG;
        *ret = (size_t) v;
        return 0;
}

/* One line of the probe's answer; unknown or malformed lines are ignored. */
static int parse_line(struct gpuinfo *g, size_t max_devices, char *line) {
        char *f[6] = {};
        size_t n = 0, i, j;
        long long v;

        for (char *p = line; n < ELEMENTSOF(f); n++) {
                f[n] = p;
                p = strchr(p, '\t');
                if (!p) {
                        n++;
                        break;
                }
                *p++ = 0;
        }

        if (strcmp(f[0], "cuda-library") == 0)
                g->cuda_library = true;
        else if (strcmp(f[0], "cuda-error") == 0 && n >= 2)
                return set_text(&g->cuda_error, f[1]);
        else if (strcmp(f[0], "cuda-driver") == 0 && n >= 2 && parse_int_range(f[1], 0, INT32_MAX, &v) == 0)
                g->cuda_driver_version = (int) v;
        else if (strcmp(f[0], "cuda-count") == 0 && n >= 2 && parse_int_range(f[1], 0, 1 << 20, &v) == 0)
                g->cuda_device_count = (int) v;
        else if (strcmp(f[0], "cuda-ok") == 0)
                g->cuda = true;
        else if (strcmp(f[0], "nvml-error") == 0 && n >= 2)
                return set_text(&g->nvml_error, f[1]);
        else if (strcmp(f[0], "nvml-driver") == 0 && n >= 2)
                return set_text(&g->nvml_driver_version, f[1]);
        else if (strcmp(f[0], "nvml-ok") == 0)
                g->nvml = true;
        else if (strcmp(f[0], "nccl-error") == 0 && n >= 2)
                return set_text(&g->nccl_error, f[1]);
        else if (strcmp(f[0], "nccl-ok") == 0 && n >= 3 && parse_int_range(f[1], 0, INT32_MAX, &v) == 0) {
                g->nccl = true;
                g->nccl_version_code = (int) v;
                return set_text(&g->nccl_path, f[2]);
        } else if (strcmp(f[0], "device") == 0 && n >= 5 && parse_index(f[1], max_devices, &i) == 0) {
                struct gpu_device *d = &g->devices[i];
                char *end = NULL;
                unsigned long long bytes;

                errno = 0;
                bytes = strtoull(f[3], &end, 10);
                d->memory_bytes = errno == 0 && end && end != f[3] && !*end ? (uint64_t) bytes : 0;
                if (set_text(&d->pci_bus_id, f[2]) < 0 || set_text(&d->name, f[4]) < 0)
                        return -ENOMEM;
                g->n_devices = MAX(g->n_devices, i + 1);
        } else if ((strcmp(f[0], "p2p") == 0 || strcmp(f[0], "nvlink") == 0 || strcmp(f[0], "topology") == 0) &&
                   n >= 4 && parse_index(f[1], max_devices, &i) == 0 && parse_index(f[2], max_devices, &j) == 0 &&
                   parse_int_range(f[3], -1, 1000, &v) == 0) {
                struct gpu_link *l = &g->links[i * max_devices + j];

                if (f[0][0] == 'p')
                        l->p2p = v ? TRISTATE_YES : TRISTATE_NO;
                else if (f[0][0] == 'n')
                        l->nvlink = v ? TRISTATE_YES : TRISTATE_NO;
                else
                        l->topology = (int) v;
        }
        return 0;
}

/* The links were laid out for max_devices: pack them for the n_devices that answered. */
static void pack_links(struct gpuinfo *g, size_t max_devices) {
        for (size_t i = 0; i < g->n_devices; i++)
                for (size_t j = 0; j < g->n_devices; j++)
                        g->links[i * g->n_devices + j] = g->links[i * max_devices + j];
        for (size_t i = 0; i < g->n_devices; i++)
                if (!g->devices[i].name) {
                        /* A gap (an ordinal CUDA could not open): keep the table rectangular. */
                        (void) set_text(&g->devices[i].name, "?");
                        (void) set_text(&g->devices[i].pci_bus_id, "?");
                }
}

static char **probe_environ(const char *cuda_visible_devices) {
        _cleanup_strv_free_ char **env = calloc(1, sizeof(char *));

        if (!env)
                return NULL;
        for (char **e = environ; e && *e; e++)
                if (!startswith(*e, "CUDA_VISIBLE_DEVICES=") || !cuda_visible_devices)
                        if (strv_extend(&env, *e) < 0)
                                return NULL;
        if (cuda_visible_devices && strv_extendf(&env, "CUDA_VISIBLE_DEVICES=%s", cuda_visible_devices) < 0)
                return NULL;
        return TAKE_PTR(env);
}

/* Reads the probe's answer until EOF or the deadline; returns the bytes read, -ETIMEDOUT at the deadline. */
static int read_until(int fd, uint64_t deadline, char *buf, size_t size, size_t *len) {
        for (;;) {
                uint64_t now = now_usec();
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t k;
                int r;

                if (now >= deadline)
                        return -ETIMEDOUT;
                /* Wait for the child's output (or its exit), not a timed poll: the timeout is the deadline. */
                r = poll(&p, 1, (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT32_MAX));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r == 0)
                        continue;
                if (*len >= size) {
                        char discard[4096];

                        k = read(fd, discard, sizeof(discard));
                } else
                        k = read(fd, buf + *len, size - *len);
                if (k < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                if (*len < size)
                        *len += (size_t) k;
        }
}

/* ------------------------------------------------------------ the cache */

#define PROBE_CACHE_FILE "gpu-probe"
#define PROBE_CACHE_MAGIC "ringmaster-gpu-probe/1"

static void hash_bytes(uint64_t *h, const void *p, size_t n) {
        const unsigned char *b = p;

        for (size_t i = 0; i < n; i++) {
                *h ^= b[i];
                *h *= UINT64_C(0x100000001b3);
        }
        *h ^= 0xff;                     /* a separator, so "ab","c" differs from "a","bc" */
        *h *= UINT64_C(0x100000001b3);
}

static void hash_string(uint64_t *h, const char *s) {
        hash_bytes(h, s ? s : "(unset)", strlen(s ? s : "(unset)"));
}

static void hash_file(uint64_t *h, const char *path) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;

        if (read_file_bounded(AT_FDCWD, path, 4096, &text, &len) < 0)
                hash_string(h, "(unreadable)");
        else
                hash_bytes(h, text, len);
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * The variables that can change what the GPU libraries say (which libraries
 * load, which devices they show), sorted so that their order does not
 * matter.  Tests (RINGMASTER_TEST_GPU_LIBDIR) also count the fake driver's
 * FAKE_* settings.
 */
static void hash_environ(uint64_t *h) {
        static const char *const prefixes[] = { "CUDA_", "NVIDIA_", "NCCL_", "LD_", "RINGMASTER_TEST_GPU_LIBDIR=" };
        bool test = getenv("RINGMASTER_TEST_GPU_LIBDIR") != NULL;
        _cleanup_free_ char **found = NULL;
        size_t n = 0, cap = 0;

        for (char **e = environ; *e; e++) {
                bool match = test && startswith(*e, "FAKE_");

                for (size_t i = 0; i < ELEMENTSOF(prefixes) && !match; i++)
                        match = startswith(*e, prefixes[i]);
                if (!match)
                        continue;
                if (n == cap) {
                        char **bigger = realloc(found, (cap = cap ? 2 * cap : 16) * sizeof(*found));

                        if (!bigger) {
                                hash_string(h, "(out of memory)");      /* a key that no answer has */
                                hash_bytes(h, &h, sizeof(h));
                                return;
                        }
                        found = bigger;
                }
                found[n++] = *e;
        }
        if (n > 0)
                qsort(found, n, sizeof(*found), strcmp_ptr);
        for (size_t i = 0; i < n; i++)
                hash_string(h, found[i]);
}

/* What the probe's answer depends on, hashed: an answer made under another key is not used. */
static uint64_t probe_cache_key(const struct gpuinfo_request *req, size_t max_devices) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        struct stat st;

        hash_string(&h, VERSION);
        hash_file(&h, "/proc/sys/kernel/random/boot_id");
        hash_file(&h, "/proc/driver/nvidia/version");
        if (stat("/proc/self/exe", &st) == 0) {
                hash_bytes(&h, &st.st_dev, sizeof(st.st_dev));
                hash_bytes(&h, &st.st_ino, sizeof(st.st_ino));
                hash_bytes(&h, &st.st_mtim, sizeof(st.st_mtim));
        }
        hash_string(&h, req->cuda_visible_devices ? req->cuda_visible_devices : getenv("CUDA_VISIBLE_DEVICES"));
        hash_bytes(&h, &max_devices, sizeof(max_devices));
        hash_environ(&h);
        return h;
}

/* The cached answer for key, into output (len set); -ENOENT when there is none that fits. */
static int probe_cache_read(const char *dir, uint64_t key, char *output, size_t *len) {
        _cleanup_close_ int dfd = -EBADF;
        _cleanup_free_ char *text = NULL;
        char head[64];
        size_t size = 0, head_len;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || read_file_bounded(dfd, PROBE_CACHE_FILE, PROBE_OUTPUT_MAX + sizeof(head), &text, &size) < 0)
                return -ENOENT;
        head_len = (size_t) snprintf(head, sizeof(head), PROBE_CACHE_MAGIC " %016" PRIx64 "\n", key);
        if (size < head_len || memcmp(text, head, head_len) != 0 || size - head_len > PROBE_OUTPUT_MAX)
                return -ENOENT;
        memcpy(output, text + head_len, size - head_len);
        *len = size - head_len;
        return 0;
}

/* Keeps a probe's answer for key: written aside, then renamed over the old one. */
static void probe_cache_write(const char *dir, uint64_t key, const char *output, size_t len) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        char tmp[64];
        FILE *f;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return;
        snprintf(tmp, sizeof(tmp), "." PROBE_CACHE_FILE ".%d", (int) getpid());
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        f = fdopen(TAKE_FD(fd), "w");
        if (!f)
                return;
        fprintf(f, PROBE_CACHE_MAGIC " %016" PRIx64 "\n", key);
        fwrite(output, 1, len, f);
        if (fclose(f) != 0 || renameat(dfd, tmp, dfd, PROBE_CACHE_FILE) < 0)
                (void) unlinkat(dfd, tmp, 0);
}

/* ------------------------------------------------------------ the probe */

int gpuinfo_probe(const struct gpuinfo_request *req, struct gpuinfo **ret) {
        _cleanup_free_ char *output = NULL;
        _cleanup_strv_free_ char **env = NULL;
        _cleanup_close_ int out_r = -EBADF, out_w = -EBADF, null_fd = -EBADF;
        struct gpuinfo *g;
        struct spawn_result spawned = {};
        sigset_t mask;
        char max_arg[16];
        char *argv[] = { (char *) "ringmaster", (char *) "__gpu-probe", max_arg, NULL };
        char *exec_paths[] = { (char *) "/proc/self/exe", NULL };
        size_t max_devices = (size_t) MAX(req->max_devices, 0), len = 0;
        uint64_t deadline, key = 0;
        int pipefd[2], status = 0, r;

        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->cuda_device_count = -1;
        g->devices = calloc(MAX(max_devices, (size_t) 1), sizeof(struct gpu_device));
        g->links = calloc(MAX(max_devices * max_devices, (size_t) 1), sizeof(struct gpu_link));
        output = malloc(PROBE_OUTPUT_MAX + 1);
        env = probe_environ(req->cuda_visible_devices);
        if (!g->devices || !g->links || !output || !env) {
                gpuinfo_free(g);
                return -ENOMEM;
        }
        for (size_t i = 0; i < max_devices * max_devices; i++)
                g->links[i] = (struct gpu_link) { TRISTATE_UNKNOWN, TRISTATE_UNKNOWN, GPU_TOPOLOGY_UNKNOWN };
        snprintf(max_arg, sizeof(max_arg), "%zu", max_devices);

        if (req->cache_dir) {
                key = probe_cache_key(req, max_devices);
                if (req->cache_read && probe_cache_read(req->cache_dir, key, output, &len) == 0) {
                        g->from_cache = true;
                        goto answer;
                }
        }

        if (!req->sigmask)
                (void) sigprocmask(SIG_SETMASK, NULL, &mask);
        null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (null_fd < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
                r = -errno;
                goto failed;
        }
        out_r = pipefd[0];
        out_w = pipefd[1];
        r = spawn_process(&(struct spawn_request) {
                                  .argv = argv,
                                  .exec_paths = exec_paths,
                                  .envp = env,
                                  .stdin_fd = null_fd,
                                  .stdout_fd = out_w,
                                  .stderr_fd = STDERR_FILENO,
                                  .sigmask = req->sigmask ? req->sigmask : &mask,
                          },
                          &spawned);
        if (r < 0)
                goto failed;
        out_w = safe_close(out_w);
        if (spawned.failed_stage != SPAWN_STAGE_NONE) {
                (void) waitpid(spawned.pid, NULL, 0);
                r = -spawned.error;
                goto failed;
        }

        deadline = now_usec() + req->timeout_usec;
        r = read_until(out_r, deadline, output, PROBE_OUTPUT_MAX, &len);
        if (r == -ETIMEDOUT) {
                g->timed_out = true;
                (void) kill(spawned.pid, SIGKILL);
                /* Its stdout closes when it is gone; a process stuck in the driver (state D) never goes. */
                if (read_until(out_r, now_usec() + PROBE_KILL_WAIT_USEC, output, PROBE_OUTPUT_MAX, &len) == 0)
                        (void) waitpid(spawned.pid, NULL, 0);
                else {
                        g->stuck = true;
                        g->stuck_pid = spawned.pid;
                }
                if (asprintf(&g->probe_error, "the GPU probe (pid %d) did not answer within %.0f s%s", (int) spawned.pid,
                             secs(req->timeout_usec),
                             g->stuck ? " and could not be killed: it is stuck in the driver" : "") < 0)
                        g->probe_error = NULL;
        } else {
                if (waitpid(spawned.pid, &status, 0) < 0)
                        status = 0;
                if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                        char sig[16];

                        if (r < 0)
                                r = asprintf(&g->probe_error, "cannot read the GPU probe's answer: %s", strerror(-r));
                        else if (WIFSIGNALED(status))
                                r = asprintf(&g->probe_error, "the GPU probe was killed by %s%s",
                                             signal_name(WTERMSIG(status), sig, sizeof(sig)),
                                             WCOREDUMP(status) ? " (core dumped): the driver or a library crashed" : "");
                        else
                                r = asprintf(&g->probe_error, "the GPU probe exited with status %d",
                                             WEXITSTATUS(status));
                        if (r < 0)
                                g->probe_error = NULL;
                } else if (req->cache_dir)
                        probe_cache_write(req->cache_dir, key, output, len);
        }

answer:
        output[len] = 0;
        for (char *line = output, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                r = parse_line(g, max_devices, line);
                if (r < 0) {
                        gpuinfo_free(g);
                        return r;
                }
        }
        pack_links(g, max_devices);
        *ret = g;
        return 0;

failed:
        if (asprintf(&g->probe_error, "cannot start the GPU probe (/proc/self/exe __gpu-probe): %s", strerror(-r)) < 0)
                g->probe_error = NULL;
        *ret = g;
        return 0;
}

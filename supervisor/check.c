/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>

#include "check.h"
#include "environ.h"
#include "exit-status.h"
#include "gpuinfo.h"
#include "gpus.h"
#include "json.h"
#include "log.h"
#include "options.h"
#include "parse-util.h"
#include "run-segment.h"
#include "rundir.h"
#include "util.h"

#define SHM_PATH "/dev/shm"
#define TMPFS_MAGIC_NUMBER 0x01021994
#define RAMFS_MAGIC_NUMBER 0x858458f6

/*
 * NCCL's shared memory per rank (see ringmaster(1), "/dev/shm"): a fixed
 * part, and the SHM transport's buffers when some pair of GPUs has to go
 * through host memory.  The figures are NCCL's defaults (src/init.cc,
 * src/transport/shm.cc); the per-connection size is the one NCCL names in
 * its own error, "Error while creating shared memory segment ... (size
 * 9637888)".
 */
#define NCCL_SIMPLE_BUFFSIZE (UINT64_C(4) << 20)     /* NCCL_BUFFSIZE */
#define NCCL_LL128_BUFFSIZE UINT64_C(4915200)        /* NCCL_LL128_BUFFSIZE: 120 x 640 threads x 8 steps x 8 B */
#define NCCL_LL_BUFFSIZE UINT64_C(524288)            /* NCCL_LL_BUFFSIZE: 8 lines x 512 threads x 8 steps x 16 B */
#define NCCL_RECV_MEM_HEADER UINT64_C(4096)          /* struct ncclRecvMem before the buffers */
/* The proxy's operation pool and other fixed segments: ~7 MiB in NCCL 2.19-2.21 ("size 7340384"), rounded up. */
#define NCCL_FIXED_SHM_PER_RANK (UINT64_C(8) << 20)
/*
 * From NCCL 2.23 on, with cuMem host allocations (NCCL_CUMEM_HOST_ENABLE,
 * on by default), the SHM transport's buffers are pinned cuMem host memory
 * shared through CUDA handles, not /dev/shm files; /dev/shm is left only as
 * the fallback.  Measured on NCCL 2.28 (2 ranks on 2 H200, a 27.3 MiB ring):
 * everything fit in a 28 MiB /dev/shm with peer access and in 32 MiB with
 * NCCL_P2P_DISABLE=1, so under 1 MiB a rank; 1 MiB a rank, rounded up.
 */
#define NCCL_CUMEM_HOST_VERSION 22300
#define NCCL_CUMEM_FIXED_SHM_PER_RANK (UINT64_C(1) << 20)
/* Channels: NCCL builds 2 over PCIe; twice that, for margin (NCCL_MIN/MAX_NCHANNELS move it). */
#define NCCL_SHM_CHANNELS 4
/* Receive buffers a rank allocates per channel: the ring's, and the tree's up and down. */
#define NCCL_SHM_RECV_PER_CHANNEL 3

enum check_status {
        CHECK_OK,
        CHECK_INFO,
        CHECK_SKIP,
        CHECK_WARN,
        CHECK_FAIL,
};

static const char *const status_names[] = {
        [CHECK_OK] = "ok", [CHECK_INFO] = "info", [CHECK_SKIP] = "skip", [CHECK_WARN] = "warn", [CHECK_FAIL] = "fail",
};

enum check_id {
        CHECK_SHM,
        CHECK_MEMLOCK,
        CHECK_GPUS,
        CHECK_PEERS,
        CHECK_NCCL,
        CHECK_PORT,
        CHECK_CPUS,
        CHECK_PTRACE,
        _CHECK_MAX,
};

static const struct {
        const char *name;       /* in JSON */
        const char *title;      /* in text */
} checks[_CHECK_MAX] = {
        [CHECK_SHM] = { "shm", "/dev/shm" },
        [CHECK_MEMLOCK] = { "memlock", "memlock" },
        [CHECK_GPUS] = { "gpus", "GPUs" },
        [CHECK_PEERS] = { "peer-access", "peer access" },
        [CHECK_NCCL] = { "nccl", "NCCL" },
        [CHECK_PORT] = { "master-port", "MASTER_PORT" },
        [CHECK_CPUS] = { "cpus", "CPUs" },
        [CHECK_PTRACE] = { "ptrace", "ptrace" },
};

struct check_result {
        enum check_status status;
        char *message;          /* what was measured */
        char *fix;              /* how to fix it (warn, fail, info); NULL: nothing to do */
        char **details;         /* further lines: the GPUs and their matrix */
};

struct preflight {
        const struct run_options *o;
        int nproc;

        /* GPUs: gpus.c's view (no driver needed). */
        char **visible;
        bool visible_from_env;
        char **selected;                /* --gpus, resolved; NULL: not given */
        size_t n_used;                  /* GPUs the ranks use: min(nproc, the list) */
        char *cuda_visible_devices;     /* for the probe; NULL: inherited */
        struct gpuinfo *gpu;            /* NULL: not probed (a CPU-only run) */

        /* /dev/shm */
        bool shm_mounted;
        int shm_error;
        bool shm_tmpfs;
        bool shm_unlimited;             /* a tmpfs without a size */
        uint64_t shm_fstype;
        uint64_t shm_total, shm_free;
        uint64_t ring_size;
        uint64_t nccl_connection, nccl_fixed, nccl_per_rank;
        unsigned nccl_channels;
        bool nccl_counted;              /* NCCL's part counted at all (a GPU run of 2+ ranks) */
        bool nccl_shm_transport;        /* its SHM transport's buffers counted */
        bool nccl_cumem_host;           /* NCCL >= 2.23 with cuMem host memory: little /dev/shm */
        bool nccl_version_known;        /* else the older, larger model is assumed */
        char *nccl_reason;
        uint64_t need;

        /* memlock */
        struct rlimit memlock;
        bool cap_ipc_lock, cap_sys_ptrace;

        /* master port */
        int port;
        int port_error;

        /* CPUs */
        int cpus, affinity_cpus;
        double quota_cpus;              /* 0: no quota */
        long threads_per_rank;
        bool omp_set;

        /* ptrace */
        int ptrace_scope;               /* -1: no Yama */

        struct check_result results[_CHECK_MAX];
};

static void preflight_done(struct preflight *p) {
        for (size_t i = 0; i < _CHECK_MAX; i++) {
                free(p->results[i].message);
                free(p->results[i].fix);
                strv_free(p->results[i].details);
        }
        strv_free(p->visible);
        strv_free(p->selected);
        free(p->cuda_visible_devices);
        free(p->nccl_reason);
        gpuinfo_free(p->gpu);
}

static int set_result(struct preflight *p, enum check_id id, enum check_status status, const char *fix,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int set_result(struct preflight *p, enum check_id id, enum check_status status, const char *fix,
                      const char *fmt, ...) {
        struct check_result *c = &p->results[id];
        va_list ap;
        int r;

        free(c->message);
        free(c->fix);
        c->message = c->fix = NULL;
        c->status = status;
        va_start(ap, fmt);
        r = vasprintf(&c->message, fmt, ap);
        va_end(ap);
        if (r < 0) {
                c->message = NULL;
                return -ENOMEM;
        }
        if (fix) {
                c->fix = strdup(fix);
                if (!c->fix)
                        return -ENOMEM;
        }
        return 0;
}

static int add_detail(struct preflight *p, enum check_id id, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int add_detail(struct preflight *p, enum check_id id, const char *fmt, ...) {
        struct check_result *c = &p->results[id];
        _cleanup_free_ char *line = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&line, fmt, ap);
        va_end(ap);
        if (r < 0) {
                line = NULL;
                return -ENOMEM;
        }
        while (r > 0 && line[r - 1] == ' ')
                line[--r] = 0;
        if (!c->details) {
                c->details = calloc(1, sizeof(char *));
                if (!c->details)
                        return -ENOMEM;
        }
        return strv_extend(&c->details, line);
}

/* ---------------------------------------------------------------- small readers */

/* An integer variable as NCCL reads it (strtoll, any base); def when unset or not a number. */
static int64_t env_int64(const char *name, int64_t def, bool *ret_set) {
        const char *s = getenv(name);
        char *end = NULL;
        long long v;

        if (ret_set)
                *ret_set = false;
        if (!s || !*s)
                return def;
        errno = 0;
        v = strtoll(s, &end, 0);
        if (errno != 0 || !end || *end)
                return def;
        if (ret_set)
                *ret_set = true;
        return v;
}

/* Whether the effective capability set holds cap (from /proc/self/status). */
static bool have_capability(unsigned cap) {
        _cleanup_free_ char *status = NULL;
        unsigned long long mask;
        const char *line;

        if (read_file_bounded(AT_FDCWD, "/proc/self/status", 1 << 16, &status, NULL) < 0)
                return false;
        line = strstr(status, "\nCapEff:");
        if (!line || sscanf(line + 8, "%llx", &mask) != 1)
                return false;
        return cap < 64 && (mask >> cap & 1);
}

#define CAP_IPC_LOCK_BIT 14
#define CAP_SYS_PTRACE_BIT 19

static char *format_limit(char *buf, size_t size, rlim_t v) {
        if (v == RLIM_INFINITY)
                snprintf(buf, size, "unlimited");
        else
                format_bytes(buf, size, (uint64_t) v);
        return buf;
}

/* "2g": a whole number of GiB, at least 1, with 25% to spare over need. */
static char *suggest_size(char *buf, size_t size, uint64_t need) {
        uint64_t gib = (need + need / 4 + (UINT64_C(1) << 30) - 1) >> 30;

        snprintf(buf, size, "%" PRIu64 "g", MAX(gib, UINT64_C(1)));
        return buf;
}

/* ---------------------------------------------------------------- GPUs */

static int join_unique(char *const *l, size_t n, char **ret) {
        _cleanup_free_ char *s = NULL;
        size_t len = 0;

        for (size_t i = 0; i < n; i++)
                len += strlen(l[i]) + 1;
        s = calloc(1, len + 1);
        if (!s)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                bool seen = false;

                for (size_t k = 0; k < i; k++)
                        seen = seen || strcmp(l[k], l[i]) == 0;
                if (seen)
                        continue;
                if (*s)
                        strcat(s, ",");
                strcat(s, l[i]);
        }
        *ret = TAKE_PTR(s);
        return 0;
}

static char *const *rank_gpus(const struct preflight *p) {
        return p->selected ? p->selected : p->visible;
}

/* The GPUs, as run's setup does; -EINVAL (logged) for a malformed CUDA_VISIBLE_DEVICES or --gpus. */
static int gpus_prepare(struct preflight *p) {
        char *const *l;
        size_t n;
        int r;

        r = gpus_visible(&p->visible, &p->visible_from_env);
        if (r < 0)
                return r;
        if (p->o->gpus) {
                r = gpus_select(p->o->gpus, p->visible, p->visible_from_env, &p->selected);
                if (r < 0)
                        return r;
        }
        l = rank_gpus(p);
        n = strv_length(l);
        p->n_used = MIN(n, (size_t) p->nproc);
        if (p->n_used > 0 && (p->selected || p->visible_from_env)) {
                /* The probe sees the ranks' GPUs as CUDA ordinals 0..n-1, as LOCAL_RANK indexes them. */
                r = join_unique(l, p->n_used, &p->cuda_visible_devices);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int gpus_check(struct preflight *p) {
        char *const *l = rank_gpus(p);
        size_t n = strv_length(l);
        const char *source = p->selected ? "--gpus"
                             : p->visible_from_env ? "CUDA_VISIBLE_DEVICES" : "/dev/nvidiaN";
        _cleanup_free_ char *list = NULL, *fix = NULL;
        int r;

        r = join_unique(l, n, &list);
        if (r < 0)
                return r;
        if (n == 0 && !p->selected)
                return set_result(p, CHECK_GPUS, CHECK_OK, NULL, "no GPU visible (%s): a CPU-only run of %d rank%s; "
                                  "the GPU checks are skipped",
                                  p->visible_from_env ? "CUDA_VISIBLE_DEVICES is empty"
                                                      : "no CUDA_VISIBLE_DEVICES, no /dev/nvidiaN",
                                  p->nproc, p->nproc == 1 ? "" : "s");
        if ((size_t) p->nproc > n) {
                if (asprintf(&fix, "give -n %zu, or %s", n,
                             p->selected ? "list a GPU per rank in --gpus"
                                         : "make more GPUs visible (CUDA_VISIBLE_DEVICES, --gpus)") < 0)
                        return -ENOMEM;
                /* --gpus was a promise of a GPU per rank: failing is right; otherwise the workers may share. */
                return set_result(p, CHECK_GPUS, p->selected ? CHECK_FAIL : CHECK_WARN, fix,
                                  "%d ranks but %zu GPU%s (%s: %s): ranks %zu to %d have no GPU of their own "
                                  "(LOCAL_RANK past the devices)",
                                  p->nproc, n, n == 1 ? "" : "s", source, list, n, p->nproc - 1);
        }
        if ((size_t) p->nproc < n)
                return set_result(p, CHECK_GPUS, CHECK_OK, NULL, "%d rank%s on the first %d of %zu GPUs (%s: %s)",
                                  p->nproc, p->nproc == 1 ? "" : "s", p->nproc, n, source, list);
        return set_result(p, CHECK_GPUS, CHECK_OK, NULL, "%d rank%s on %zu GPU%s (%s: %s)", p->nproc,
                          p->nproc == 1 ? "" : "s", n, n == 1 ? "" : "s", source, list);
}

static uint64_t probe_timeout_usec(void) {
        const char *s = getenv("RINGMASTER_TEST_PROBE_TIMEOUT");     /* tests only */
        uint64_t t;

        if (s && parse_duration_usec(s, &t) == 0 && t > 0)
                return t;
        return GPUINFO_DEFAULT_TIMEOUT_USEC;
}

static const char *pair_cell(const struct gpu_link *a, const struct gpu_link *b, char *buf, size_t size) {
        bool p2p_no = a->p2p == TRISTATE_NO || b->p2p == TRISTATE_NO;
        bool p2p_yes = a->p2p == TRISTATE_YES && b->p2p == TRISTATE_YES;
        const char *base;

        if (a->nvlink == TRISTATE_YES && b->nvlink == TRISTATE_YES)
                base = "NV";
        else if (a->topology != GPU_TOPOLOGY_UNKNOWN)
                base = gpu_topology_name(a->topology);
        else
                base = p2p_yes ? "P2P" : p2p_no ? "-" : "?";
        snprintf(buf, size, "%s%s", base, p2p_no && strcmp(base, "-") != 0 ? "*" : "");
        return buf;
}

static int peers_check(struct preflight *p) {
        const struct gpuinfo *g = p->gpu;
        _cleanup_free_ char *no_p2p = NULL;
        size_t n_pairs = 0, n_nvlink = 0, n_no = 0, n_unknown = 0;
        char line[1024], cell[16], mem[32];
        int r;

        if (p->n_used == 0)
                return set_result(p, CHECK_PEERS, CHECK_SKIP, NULL, "no GPU: a CPU-only run");
        if (!g)
                return -EINVAL;
        if (g->probe_error && g->timed_out)
                return set_result(p, CHECK_PEERS, CHECK_FAIL,
                                  "look at nvidia-smi and the kernel log (dmesg | grep -i xid); a GPU that fell off "
                                  "the bus needs a reset (nvidia-smi -r) or a reboot",
                                  "%s: the driver does not answer, and the ranks would hang the same way",
                                  g->probe_error);
        if (g->probe_error)
                return set_result(p, CHECK_PEERS, CHECK_WARN,
                                  "run nvidia-smi; the probe's own messages, if any, are above",
                                  "%s", g->probe_error);
        if (!g->cuda && !g->nvml) {
                if (g->cuda_library)
                        return set_result(p, CHECK_PEERS, CHECK_WARN,
                                          "check nvidia-smi, the driver, and CUDA_VISIBLE_DEVICES",
                                          "the CUDA driver is there but %s; %s",
                                          g->cuda_error ? g->cuda_error : "fails",
                                          g->nvml_error ? g->nvml_error : "no NVML");
                return set_result(p, CHECK_PEERS, CHECK_SKIP, NULL, "no CUDA runtime/driver (%s; %s)",
                                  g->cuda_error ? g->cuda_error : "no CUDA driver",
                                  g->nvml_error ? g->nvml_error : "no NVML");
        }

        /* The GPUs, then the matrix, as nvidia-smi topo -m draws it. */
        for (size_t i = 0; i < g->n_devices; i++) {
                r = add_detail(p, CHECK_PEERS, "GPU%zu  %s  %s  %s", i, g->devices[i].name, g->devices[i].pci_bus_id,
                               g->devices[i].memory_bytes ? format_bytes(mem, sizeof(mem), g->devices[i].memory_bytes)
                                                          : "?");
                if (r < 0)
                        return r;
        }
        if (g->n_devices > 1) {
                int k = snprintf(line, sizeof(line), "%-6s", "");

                for (size_t j = 0; j < g->n_devices && k < (int) sizeof(line); j++) {
                        char name[32];

                        snprintf(name, sizeof(name), "GPU%zu", j);
                        k += snprintf(line + k, sizeof(line) - (size_t) k, " %-6s", name);
                }
                if (add_detail(p, CHECK_PEERS, "%s", line) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < g->n_devices; i++) {
                        k = snprintf(line, sizeof(line), "GPU%-3zu", i);
                        for (size_t j = 0; j < g->n_devices && k < (int) sizeof(line); j++)
                                k += snprintf(line + k, sizeof(line) - (size_t) k, " %-6s",
                                              i == j ? "X"
                                                     : pair_cell(gpuinfo_link(g, i, j), gpuinfo_link(g, j, i), cell,
                                                                 sizeof(cell)));
                        if (add_detail(p, CHECK_PEERS, "%s", line) < 0)
                                return -ENOMEM;
                }
                if (add_detail(p, CHECK_PEERS, "NV: NVLink; PIX PXB PHB NODE SYS: the PCIe path (as nvidia-smi topo "
                                               "-m); *: no peer access; ?: unknown") < 0)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < g->n_devices; i++)
                for (size_t j = i + 1; j < g->n_devices; j++) {
                        const struct gpu_link *a = gpuinfo_link(g, i, j), *b = gpuinfo_link(g, j, i);

                        n_pairs++;
                        if (a->p2p == TRISTATE_NO || b->p2p == TRISTATE_NO) {
                                char pair[64];

                                n_no++;
                                snprintf(pair, sizeof(pair), "%s%zu-%zu", no_p2p ? ", " : "", i, j);
                                if (!no_p2p)
                                        no_p2p = strdup(pair);
                                else {
                                        char *m = realloc(no_p2p, strlen(no_p2p) + strlen(pair) + 1);

                                        if (!m)
                                                return -ENOMEM;
                                        no_p2p = strcat(m, pair);
                                }
                                if (!no_p2p)
                                        return -ENOMEM;
                        } else if (a->p2p != TRISTATE_YES || b->p2p != TRISTATE_YES)
                                n_unknown++;
                        if (a->nvlink == TRISTATE_YES && b->nvlink == TRISTATE_YES)
                                n_nvlink++;
                }

        if (g->n_devices < p->n_used)
                return set_result(p, CHECK_PEERS, CHECK_WARN,
                                  "check CUDA_VISIBLE_DEVICES, --gpus and nvidia-smi -L",
                                  "%s sees %zu of the %zu GPUs of this run (CUDA_VISIBLE_DEVICES=%s)",
                                  g->cuda ? "CUDA" : "NVML", g->n_devices, p->n_used,
                                  p->cuda_visible_devices ? p->cuda_visible_devices : "(unset)");
        if (n_no > 0)
                return set_result(p, CHECK_PEERS, CHECK_WARN,
                                  "see nvidia-smi topo -m; P2P over PCIe can be blocked by the IOMMU or ACS (BIOS, "
                                  "iommu=pt), or pick GPUs that share NVLink or a PCIe switch (--gpus)",
                                  "%zu of %zu GPU pairs have no peer access (%s): NCCL goes through host memory "
                                  "between them (its SHM transport: slower, and it takes /dev/shm)",
                                  n_no, n_pairs, no_p2p);
        if (g->n_devices < 2)
                return set_result(p, CHECK_PEERS, CHECK_OK, NULL, "1 GPU: no pair to check");
        if (n_unknown > 0)
                return set_result(p, CHECK_PEERS, CHECK_INFO, NULL,
                                  "%zu GPUs; peer access of %zu of %zu pairs is unknown (%s)", g->n_devices, n_unknown,
                                  n_pairs, g->cuda ? "the driver did not say" : "no CUDA driver, NVML only");
        return set_result(p, CHECK_PEERS, CHECK_OK, NULL,
                          "%zu GPUs, every pair has peer access (%zu of %zu over NVLink)",
                          g->n_devices, n_nvlink, n_pairs);
}

static int nccl_check(struct preflight *p) {
        const struct gpuinfo *g = p->gpu;
        char version[32];

        if (p->n_used == 0)
                return set_result(p, CHECK_NCCL, CHECK_SKIP, NULL, "not needed: a CPU-only run");
        if (!g || (g->probe_error && !g->nccl && !g->nccl_error))
                return set_result(p, CHECK_NCCL, CHECK_SKIP, NULL, "unknown: the GPU probe did not answer");
        if (!g->nccl)
                return set_result(p, CHECK_NCCL, CHECK_WARN,
                                  "install NCCL (libnccl2) or put its directory on LD_LIBRARY_PATH; workers that bring "
                                  "their own (PyTorch wheels) do not need it",
                                  "%s", g->nccl_error ? g->nccl_error : "no libnccl.so.2");
        nccl_version_string(g->nccl_version_code, version, sizeof(version));
        if (g->nccl_version_code < 21400)
                return set_result(p, CHECK_NCCL, CHECK_WARN,
                                  "use NCCL 2.14 or later (non-blocking init, and ncclCommAbort of a hung init)",
                                  "%s (%s) is older than 2.14", version, g->nccl_path);
        return set_result(p, CHECK_NCCL, CHECK_OK, NULL, "%s (%s; the library the loader finds: PyTorch wheels "
                                                         "bring their own)",
                          version, g->nccl_path);
}

/* ---------------------------------------------------------------- /dev/shm */

/* Whether NCCL will need its SHM transport between some of the run's GPUs, and why. */
static int nccl_shm_transport(struct preflight *p, bool *ret) {
        const struct gpuinfo *g = p->gpu;
        bool unknown = !g || g->probe_error || (!g->cuda && !g->nvml) || g->n_devices < p->n_used;
        char *reason = NULL;
        bool need = true;

        if (env_int64("NCCL_SHM_DISABLE", 0, NULL) == 1) {
                need = false;
                reason = strdup("NCCL_SHM_DISABLE=1");
        } else if (env_int64("NCCL_P2P_DISABLE", 0, NULL) == 1)
                reason = strdup("NCCL_P2P_DISABLE=1: its SHM transport counted");
        else if (unknown)
                reason = strdup("peer access unknown: its SHM transport counted");
        else {
                for (size_t i = 0; i < g->n_devices; i++)
                        for (size_t j = 0; j < g->n_devices; j++)
                                if (i != j && gpuinfo_link(g, i, j)->p2p != TRISTATE_YES && !reason &&
                                    asprintf(&reason, "GPUs %zu and %zu have no peer access: its SHM transport counted",
                                             i, j) < 0)
                                        return -ENOMEM;
                if (!reason) {
                        need = false;
                        reason = strdup("every GPU pair has peer access");
                }
        }
        if (!reason)
                return -ENOMEM;
        free(p->nccl_reason);
        p->nccl_reason = reason;
        *ret = need;
        return 0;
}

/*
 * Which of NCCL's ways to use /dev/shm applies: the NCCL found (the workers
 * may bring their own, as PyTorch wheels do: the same era, as a rule) and
 * NCCL_CUMEM_HOST_ENABLE / NCCL_CUMEM_ENABLE.  Unknown (no NCCL found, as in
 * a container whose PyTorch brings its own) keeps the larger, older model:
 * a larger /dev/shm is NCCL's own advice, a failed start is worse.
 */
static int nccl_shm_model(struct preflight *p) {
        const struct gpuinfo *g = p->gpu;
        int version = g && g->nccl ? g->nccl_version_code : 0;
        char v[32], *reason;

        p->nccl_version_known = version > 0;
        p->nccl_cumem_host = version >= NCCL_CUMEM_HOST_VERSION && env_int64("NCCL_CUMEM_HOST_ENABLE", -1, NULL) != 0 &&
                             env_int64("NCCL_CUMEM_ENABLE", -1, NULL) != 0;
        if (p->nccl_cumem_host) {
                static const char counted[] = ": its SHM transport counted";
                size_t n = strlen(p->nccl_reason);

                /* "GPUs 1 and 2 have no peer access: its SHM transport counted" is not, here. */
                if (n >= sizeof(counted) - 1 && strcmp(p->nccl_reason + n - (sizeof(counted) - 1), counted) == 0)
                        n -= sizeof(counted) - 1;
                if (asprintf(&reason, "%.*s, but NCCL %s keeps its SHM buffers in cuMem host memory, not /dev/shm",
                             (int) n, p->nccl_reason, nccl_version_string(version, v, sizeof(v))) < 0)
                        return -ENOMEM;
        } else if (p->nccl_version_known) {
                if (asprintf(&reason, "%s; NCCL %s%s", p->nccl_reason, nccl_version_string(version, v, sizeof(v)),
                             version >= NCCL_CUMEM_HOST_VERSION ? " with NCCL_CUMEM_HOST_ENABLE=0 or NCCL_CUMEM_ENABLE=0"
                                                                : " puts them in /dev/shm") < 0)
                        return -ENOMEM;
        } else if (asprintf(&reason, "%s; no NCCL found here to tell its version: NCCL before 2.23's needs assumed",
                            p->nccl_reason) < 0)
                return -ENOMEM;
        free(p->nccl_reason);
        p->nccl_reason = reason;
        return 0;
}

static int shm_measure(struct preflight *p) {
        struct statvfs sv;
        struct statfs sf;
        int64_t channels;
        uint64_t simple, ll128, ll;
        int r;

        p->ring_size = 0;
        if (p->o->shm) {
                r = run_segment_size(p->o, p->nproc, &p->ring_size);
                if (r < 0)
                        return log_error_errno(r, "the shared-memory layout is not valid (--shm-* options)");
        }

        /* NCCL, on a GPU run of two ranks or more. */
        p->nccl_counted = p->n_used > 0 && p->nproc > 1;
        if (p->nccl_counted) {
                int64_t v;

                v = env_int64("NCCL_BUFFSIZE", -2, NULL);
                simple = v > 0 ? (uint64_t) v : NCCL_SIMPLE_BUFFSIZE;
                v = env_int64("NCCL_LL128_BUFFSIZE", -2, NULL);
                ll128 = v >= 0 ? (uint64_t) v : NCCL_LL128_BUFFSIZE;
                v = env_int64("NCCL_LL_BUFFSIZE", -2, NULL);
                ll = v >= 0 ? (uint64_t) v : NCCL_LL_BUFFSIZE;
                p->nccl_connection = NCCL_RECV_MEM_HEADER + simple + ll128 + ll;

                channels = NCCL_SHM_CHANNELS;
                channels = MAX(channels, env_int64("NCCL_MIN_NCHANNELS", 0, NULL));
                if (env_int64("NCCL_MAX_NCHANNELS", 0, NULL) > 0)
                        channels = MIN(channels, env_int64("NCCL_MAX_NCHANNELS", 0, NULL));
                p->nccl_channels = (unsigned) MIN(MAX(channels, (int64_t) 1), (int64_t) 64);

                r = nccl_shm_transport(p, &p->nccl_shm_transport);
                if (r < 0)
                        return r;
                r = nccl_shm_model(p);
                if (r < 0)
                        return r;
                p->nccl_fixed = p->nccl_cumem_host ? NCCL_CUMEM_FIXED_SHM_PER_RANK : NCCL_FIXED_SHM_PER_RANK;
                if (p->nccl_cumem_host)
                        p->nccl_shm_transport = false;  /* its buffers are not in /dev/shm */
                p->nccl_per_rank = p->nccl_fixed + (p->nccl_shm_transport ? (uint64_t) p->nccl_channels *
                                                                                    NCCL_SHM_RECV_PER_CHANNEL *
                                                                                    p->nccl_connection
                                                                          : 0);
        }
        p->need = p->ring_size + (uint64_t) p->nproc * p->nccl_per_rank;

        if (statvfs(SHM_PATH, &sv) < 0) {
                p->shm_error = -errno;
                return 0;
        }
        p->shm_mounted = true;
        if (statfs(SHM_PATH, &sf) == 0) {
                p->shm_fstype = (uint64_t) sf.f_type;
                p->shm_tmpfs = sf.f_type == TMPFS_MAGIC_NUMBER || sf.f_type == (typeof(sf.f_type)) RAMFS_MAGIC_NUMBER;
        }
        p->shm_total = (uint64_t) sv.f_blocks * sv.f_frsize;
        p->shm_free = (uint64_t) sv.f_bavail * sv.f_frsize;
        /* A tmpfs mounted with size=0 has no limit but memory (statvfs reports 0 blocks); ramfs none at all. */
        p->shm_unlimited = p->shm_tmpfs && sv.f_blocks == 0;
        return 0;
}

static int shm_check(struct preflight *p) {
        char total[32], avail[32], need[32], ring[32], nccl[32], size[16];
        _cleanup_free_ char *needs = NULL, *fix = NULL;

        if (p->nccl_counted) {
                if (asprintf(&needs, "this run needs about %s (ring %s + NCCL ~%s per rank for %d ranks; %s)",
                             format_bytes(need, sizeof(need), p->need), format_bytes(ring, sizeof(ring), p->ring_size),
                             format_bytes(nccl, sizeof(nccl), p->nccl_per_rank), p->nproc, p->nccl_reason) < 0)
                        return -ENOMEM;
        } else if (asprintf(&needs, "this run needs about %s (ring %s; NCCL not counted: %s)",
                            format_bytes(need, sizeof(need), p->need), format_bytes(ring, sizeof(ring), p->ring_size),
                            p->n_used == 0 ? "no GPU" : "one rank") < 0)
                return -ENOMEM;

        suggest_size(size, sizeof(size), p->need);
        if (!p->shm_mounted) {
                if (asprintf(&fix, "mount a tmpfs there (mount -t tmpfs -o size=%s tmpfs /dev/shm); in a container "
                             "docker run --shm-size=%s", size, size) < 0)
                        return -ENOMEM;
                return set_result(p, CHECK_SHM, CHECK_FAIL, fix, "not there (%s): shm_open() has nowhere to create "
                                  "segments; %s", strerror(-p->shm_error), needs);
        }
        if (p->shm_unlimited)
                return set_result(p, CHECK_SHM, CHECK_OK, NULL, "a tmpfs without a size limit (bounded by memory); %s",
                                  needs);

        format_bytes(total, sizeof(total), p->shm_total);
        format_bytes(avail, sizeof(avail), p->shm_free);
        if (p->shm_free < p->need) {
                const char *used = "";

                if (p->shm_total - p->shm_free > p->need / 4)
                        used = "; other files take part of it: ls -la /dev/shm";
                if (asprintf(&fix, "give /dev/shm at least %s: docker run --shm-size=%s (or --ipc=host to share the "
                             "host's); Kubernetes: an emptyDir with medium: Memory on /dev/shm; a host: mount -o "
                             "remount,size=%s /dev/shm%s%s",
                             size, size, size,
                             p->ring_size > p->need / 4 ? "; or a smaller ring (--shm-overflow, --shm-queue-overflow)"
                                                        : "",
                             used) < 0)
                        return -ENOMEM;
                return set_result(p, CHECK_SHM, CHECK_FAIL, fix, "%s total, %s free; %s", total, avail, needs);
        }
        if (!p->shm_tmpfs)
                return set_result(p, CHECK_SHM, CHECK_WARN,
                                  "mount a tmpfs on /dev/shm (docker run --shm-size, or mount -t tmpfs tmpfs /dev/shm)",
                                  "%s total, %s free, but not a tmpfs (filesystem type 0x%" PRIx64 "): shared memory "
                                  "there is written back to a disk; %s",
                                  total, avail, p->shm_fstype, needs);
        return set_result(p, CHECK_SHM, CHECK_OK, NULL, "%s total, %s free (tmpfs); %s", total, avail, needs);
}

/* ---------------------------------------------------------------- limits, port, CPUs, ptrace */

static int memlock_check(struct preflight *p) {
        char soft[32], hard[32];

        if (getrlimit(RLIMIT_MEMLOCK, &p->memlock) < 0)
                return set_result(p, CHECK_MEMLOCK, CHECK_SKIP, NULL, "getrlimit(RLIMIT_MEMLOCK): %s",
                                  strerror(errno));
        p->cap_ipc_lock = have_capability(CAP_IPC_LOCK_BIT);
        format_limit(soft, sizeof(soft), p->memlock.rlim_cur);
        format_limit(hard, sizeof(hard), p->memlock.rlim_max);
        if (p->memlock.rlim_cur == RLIM_INFINITY)
                return set_result(p, CHECK_MEMLOCK, CHECK_OK, NULL, "RLIMIT_MEMLOCK unlimited");
        if (p->cap_ipc_lock)
                return set_result(p, CHECK_MEMLOCK, CHECK_OK, NULL,
                                  "RLIMIT_MEMLOCK %s (hard %s), but CAP_IPC_LOCK lifts it", soft, hard);
        if (p->n_used == 0)
                return set_result(p, CHECK_MEMLOCK, CHECK_OK, NULL,
                                  "RLIMIT_MEMLOCK %s (hard %s); a CPU-only run does not pin memory", soft, hard);
        return set_result(p, CHECK_MEMLOCK, CHECK_WARN,
                          "docker run --ulimit memlock=-1; systemd: LimitMEMLOCK=infinity; a shell: "
                          "ulimit -l unlimited (up to the hard limit: limits.conf 'memlock unlimited')",
                          "RLIMIT_MEMLOCK %s (hard %s): NCCL's InfiniBand/RoCE and GPUDirect RDMA paths pin memory "
                          "against it, and NCCL asks for unlimited",
                          soft, hard);
}

/* 0 when port is free for a listener on every IPv4 (and IPv6) address, else a negative errno. */
static int port_bind_test(int port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_ANY) };
        struct sockaddr_in6 sa6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t) port),
                                    .sin6_addr = IN6ADDR_ANY_INIT };
        _cleanup_close_ int fd = -EBADF, fd6 = -EBADF;
        int one = 1;

        /* SO_REUSEADDR as the rendezvous store sets it: a TIME_WAIT leftover is not "busy". */
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;

        fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd6 < 0)
                return 0;    /* no IPv6 */
        (void) setsockopt(fd6, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        (void) setsockopt(fd6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd6, (struct sockaddr *) &sa6, sizeof(sa6)) < 0 && errno == EADDRINUSE)
                return -errno;
        return 0;
}

static int port_check(struct preflight *p) {
        char fix[256];
        int r;

        p->port = p->o->master_port;
        if (p->port == 0) {
                r = find_free_port(&p->port);
                if (r < 0) {
                        p->port_error = r;
                        return set_result(p, CHECK_PORT, CHECK_WARN, "give --master-port",
                                          "not given, and no free TCP port could be found now: %s", strerror(-r));
                }
                return set_result(p, CHECK_PORT, CHECK_OK, NULL,
                                  "not given: a free port is chosen when the job starts (%d is free now)", p->port);
        }
        p->port_error = port_bind_test(p->port);
        if (p->port_error == 0)
                return set_result(p, CHECK_PORT, CHECK_OK, NULL, "%d is free", p->port);
        snprintf(fix, sizeof(fix), "give another --master-port, or none for a free one; ss -ltnp 'sport = :%d' shows "
                 "who holds it", p->port);
        return set_result(p, CHECK_PORT, CHECK_FAIL, fix, "%d (--master-port) cannot be bound: %s", p->port,
                          strerror(-p->port_error));
}

/* The cgroup v2 CPU quota of this process in CPUs, 0 without one. */
static double cgroup_cpu_quota(void) {
        _cleanup_free_ char *cgroup = NULL, *max = NULL, *path = NULL;
        char *line, *nl;
        long long quota, period;

        if (read_file_bounded(AT_FDCWD, "/proc/self/cgroup", 1 << 16, &cgroup, NULL) < 0)
                return 0;
        for (line = cgroup; line && *line; line = nl ? nl + 1 : NULL) {
                nl = strchr(line, '\n');
                if (nl)
                        *nl = 0;
                if (startswith(line, "0::"))
                        break;
        }
        if (!line || !startswith(line, "0::"))
                return 0;
        if (asprintf(&path, "/sys/fs/cgroup%s/cpu.max", strcmp(line + 3, "/") == 0 ? "" : line + 3) < 0) {
                path = NULL;
                return 0;
        }
        if (read_file_bounded(AT_FDCWD, path, 4096, &max, NULL) < 0)
                return 0;
        if (sscanf(max, "%lld %lld", &quota, &period) != 2 || quota <= 0 || period <= 0)
                return 0;    /* "max 100000": no quota */
        return (double) quota / (double) period;
}

static int cpus_check(struct preflight *p) {
        cpu_set_t set;
        long threads;
        char quota[64] = "";

        CPU_ZERO(&set);
        p->affinity_cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set)
                                                                         : (int) sysconf(_SC_NPROCESSORS_ONLN);
        p->quota_cpus = cgroup_cpu_quota();
        p->cpus = p->affinity_cpus;
        if (p->quota_cpus > 0) {
                p->cpus = MIN(p->cpus, MAX((int) ceil(p->quota_cpus), 1));
                snprintf(quota, sizeof(quota), ", a cgroup quota of %.2g", p->quota_cpus);
        }
        /* ringmaster gives the ranks OMP_NUM_THREADS=1 when it is unset and there are several. */
        threads = (long) env_int64("OMP_NUM_THREADS", 1, &p->omp_set);
        p->threads_per_rank = MAX(threads, 1L);
        if ((long) p->nproc * p->threads_per_rank > p->cpus)
                return set_result(p, CHECK_CPUS, CHECK_WARN,
                                  "fewer ranks, a smaller OMP_NUM_THREADS, or more CPUs (docker run --cpus, "
                                  "--cpuset-cpus)",
                                  "%d ranks x %ld thread%s (OMP_NUM_THREADS%s) on %d CPU%s (affinity %d%s): the ranks' "
                                  "host threads and NCCL's proxy threads will compete for them",
                                  p->nproc, p->threads_per_rank, p->threads_per_rank == 1 ? "" : "s",
                                  p->omp_set ? "" : " unset: 1", p->cpus, p->cpus == 1 ? "" : "s", p->affinity_cpus,
                                  quota);
        return set_result(p, CHECK_CPUS, CHECK_OK, NULL, "%d CPU%s (affinity %d%s) for %d rank%s x %ld thread%s",
                          p->cpus,
                          p->cpus == 1 ? "" : "s", p->affinity_cpus, quota, p->nproc, p->nproc == 1 ? "" : "s",
                          p->threads_per_rank, p->threads_per_rank == 1 ? "" : "s");
}

static int ptrace_check(struct preflight *p) {
        _cleanup_free_ char *text = NULL;
        long long v;

        p->cap_sys_ptrace = have_capability(CAP_SYS_PTRACE_BIT);
        p->ptrace_scope = -1;
        if (read_file_bounded(AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope", 64, &text, NULL) == 0) {
                text[strcspn(text, "\n")] = 0;
                if (parse_int_range(text, 0, 3, &v) == 0)
                        p->ptrace_scope = (int) v;
        }
        if (p->ptrace_scope <= 0)
                return set_result(p, CHECK_PTRACE, CHECK_OK, NULL, "%s: a stack tool may attach to a hung rank",
                                  p->ptrace_scope < 0 ? "no Yama restrictions" : "kernel.yama.ptrace_scope=0");
        if (p->ptrace_scope < 3 && p->cap_sys_ptrace)
                return set_result(p, CHECK_PTRACE, CHECK_OK, NULL,
                                  "kernel.yama.ptrace_scope=%d, and CAP_SYS_PTRACE: a stack tool may attach to a "
                                  "hung rank",
                                  p->ptrace_scope);
        return set_result(p, CHECK_PTRACE, CHECK_INFO,
                          p->ptrace_scope == 3
                                  ? "none until a reboot (ptrace_scope=3 cannot be lowered)"
                                  : "docker run --cap-add=SYS_PTRACE, or sysctl kernel.yama.ptrace_scope=0",
                          "kernel.yama.ptrace_scope=%d%s: gdb or eu-stack started by ringmaster cannot attach to a "
                          "hung rank, so its report has no native stack",
                          p->ptrace_scope, p->ptrace_scope == 3 ? "" : " and no CAP_SYS_PTRACE");
}

/* ---------------------------------------------------------------- all of them */

/*
 * cached: `run` takes the GPU probe's answer from the cache when one holds
 * (the driver's start-up would add half a second to every run); `check`
 * always asks the driver, and refreshes the cache.
 */
static int preflight_evaluate(struct preflight *p, const sigset_t *child_sigmask, bool cached) {
        int r;

        r = gpus_prepare(p);
        if (r < 0)
                return r;
        if (p->n_used > 0) {
                _cleanup_free_ char *cache_dir = NULL;
                struct gpuinfo_request req = {
                        .cuda_visible_devices = p->cuda_visible_devices,
                        .max_devices = (int) p->n_used,
                        .timeout_usec = probe_timeout_usec(),
                        .sigmask = child_sigmask,
                        .cache_read = cached,
                };

                /* The run directories' private parent; no cache when it cannot be had. */
                if (run_dir_default_parent(&cache_dir) == 0)
                        req.cache_dir = cache_dir;
                r = gpuinfo_probe(&req, &p->gpu);
                if (r < 0)
                        return r;
                if (p->gpu->probe_error)
                        log_debug("GPU probe: %s", p->gpu->probe_error);
        }

        r = shm_measure(p);
        if (r < 0)
                return r;
        if ((r = shm_check(p)) < 0 || (r = memlock_check(p)) < 0 || (r = gpus_check(p)) < 0 ||
            (r = peers_check(p)) < 0 || (r = nccl_check(p)) < 0 || (r = port_check(p)) < 0 ||
            (r = cpus_check(p)) < 0 || (r = ptrace_check(p)) < 0)
                return r;
        return 0;
}

static size_t count_status(const struct preflight *p, enum check_status s) {
        size_t n = 0;

        for (size_t i = 0; i < _CHECK_MAX; i++)
                n += p->results[i].status == s;
        return n;
}

int preflight_run(const struct run_options *o, int nproc, const sigset_t *child_sigmask) {
        struct preflight p = { .o = o, .nproc = nproc };
        size_t failed;
        int r;

        r = preflight_evaluate(&p, child_sigmask, true);
        if (r < 0) {
                preflight_done(&p);
                return r == -ENOMEM ? log_error_errno(r, "preflight") : r;
        }
        for (size_t i = 0; i < _CHECK_MAX; i++) {
                const struct check_result *c = &p.results[i];
                int level = c->status == CHECK_FAIL ? LOG_LEVEL_ERROR
                            : c->status == CHECK_WARN ? LOG_LEVEL_WARNING : LOG_LEVEL_INFO;

                log_full(level, "preflight: %-5s %s: %s%s%s", status_names[c->status], checks[i].title, c->message,
                         c->fix ? ". Fix: " : "", c->fix ? c->fix : "");
                for (size_t k = 0; c->details && c->details[k]; k++)
                        log_full(LOG_LEVEL_DEBUG, "preflight:       %s", c->details[k]);
        }
        failed = count_status(&p, CHECK_FAIL);
        if (failed > 0)
                log_error("not starting: %zu preflight check%s failed (ringmaster check shows every check; "
                          "--no-preflight skips them)", failed, failed == 1 ? "" : "s");
        preflight_done(&p);
        return (int) failed;
}

/* ---------------------------------------------------------------- ringmaster check */

void check_help(void) {
        printf("Usage: ringmaster check [OPTIONS] [--] [COMMAND [ARGS...]]\n"
               "\n"
               "Checks that this machine or container is ready for a run of N ranks: the same\n"
               "checks 'ringmaster run' makes before it starts anything (--no-preflight skips\n"
               "them there).  Takes run's options (-n, --gpus, --shm-*, --master-port, ...),\n"
               "so 'run' can be replaced by 'check' in a command line; COMMAND is not started.\n"
               "\n"
               "Checks: /dev/shm size and free space against the ring plus NCCL's buffers,\n"
               "RLIMIT_MEMLOCK, the visible GPUs against -n, peer access and NVLink/PCIe\n"
               "between the GPUs (CUDA driver, NVML), libnccl and its version, MASTER_PORT,\n"
               "CPUs against ranks x OMP_NUM_THREADS, ptrace for stack diagnosis.\n"
               "\n"
               "Options (besides run's, see ringmaster run --help):\n");
        options_help_of((const char *const[]) { "nproc", "gpus", "master-port", "verbose", NULL });
        printf("      --json                 print the results as JSON (schema ringmaster-check/1)\n");
        options_help_of((const char *const[]) { "help", NULL });
        printf("\n"
               "Exit status: 0 when no check failed (warnings allowed), 111 when one failed,\n"
               "100 usage error.  See ringmaster(1), PREFLIGHT CHECKS.\n");
}

static void json_bytes_or_null(struct json_writer *w, const char *key, bool known, uint64_t v) {
        json_key(w, key);
        if (known)
                json_uint(w, v);
        else
                json_null(w);
}

static void json_tristate(struct json_writer *w, enum tristate a, enum tristate b) {
        if (a == TRISTATE_YES && b == TRISTATE_YES)
                json_bool(w, true);
        else if (a == TRISTATE_NO || b == TRISTATE_NO)
                json_bool(w, false);
        else
                json_null(w);
}

static void json_facts(struct json_writer *w, const struct preflight *p, enum check_id id) {
        const struct gpuinfo *g = p->gpu;
        char version[32];

        json_key(w, "facts");
        json_begin_object(w);
        switch (id) {
        case CHECK_SHM:
                json_key(w, "path");
                json_string(w, SHM_PATH);
                json_key(w, "mounted");
                json_bool(w, p->shm_mounted);
                json_key(w, "tmpfs");
                json_bool(w, p->shm_tmpfs);
                json_bytes_or_null(w, "total_bytes", p->shm_mounted && !p->shm_unlimited, p->shm_total);
                json_bytes_or_null(w, "free_bytes", p->shm_mounted && !p->shm_unlimited, p->shm_free);
                json_key(w, "ring_bytes");
                json_uint(w, p->ring_size);
                json_key(w, "nccl_counted");
                json_bool(w, p->nccl_counted);
                json_key(w, "nccl_per_rank_bytes");
                json_uint(w, p->nccl_per_rank);
                json_key(w, "nccl_fixed_bytes");
                json_uint(w, p->nccl_counted ? p->nccl_fixed : 0);
                json_key(w, "nccl_shm_transport");
                json_bool(w, p->nccl_counted && p->nccl_shm_transport);
                json_key(w, "nccl_connection_bytes");
                json_uint(w, p->nccl_counted ? p->nccl_connection : 0);
                json_key(w, "nccl_channels");
                json_uint(w, p->nccl_counted ? p->nccl_channels : 0);
                json_key(w, "nccl_reason");
                json_string(w, p->nccl_counted ? p->nccl_reason : NULL);
                json_key(w, "ranks");
                json_int(w, p->nproc);
                json_key(w, "needed_bytes");
                json_uint(w, p->need);
                break;
        case CHECK_MEMLOCK:
                json_bytes_or_null(w, "soft_bytes", p->memlock.rlim_cur != RLIM_INFINITY,
                                   (uint64_t) p->memlock.rlim_cur);
                json_bytes_or_null(w, "hard_bytes", p->memlock.rlim_max != RLIM_INFINITY,
                                   (uint64_t) p->memlock.rlim_max);
                json_key(w, "cap_ipc_lock");
                json_bool(w, p->cap_ipc_lock);
                break;
        case CHECK_GPUS:
                json_key(w, "visible");
                json_begin_array(w);
                for (size_t i = 0; p->visible && p->visible[i]; i++)
                        json_string(w, p->visible[i]);
                json_end_array(w);
                json_key(w, "visible_from");
                json_string(w, p->visible_from_env ? "CUDA_VISIBLE_DEVICES" : "/dev/nvidiaN");
                json_key(w, "selected");
                if (p->selected) {
                        json_begin_array(w);
                        for (size_t i = 0; p->selected[i]; i++)
                                json_string(w, p->selected[i]);
                        json_end_array(w);
                } else
                        json_null(w);
                json_key(w, "ranks");
                json_int(w, p->nproc);
                json_key(w, "gpus_used");
                json_uint(w, p->n_used);
                break;
        case CHECK_PEERS:
                json_key(w, "probe_error");
                json_string(w, g ? g->probe_error : NULL);
                json_key(w, "cuda_driver_version");
                if (g && g->cuda && g->cuda_driver_version > 0)
                        json_int(w, g->cuda_driver_version);
                else
                        json_null(w);
                json_key(w, "cuda_error");
                json_string(w, g ? g->cuda_error : NULL);
                json_key(w, "nvml_driver_version");
                json_string(w, g && g->nvml ? g->nvml_driver_version : NULL);
                json_key(w, "nvml_error");
                json_string(w, g ? g->nvml_error : NULL);
                json_key(w, "devices");
                json_begin_array(w);
                for (size_t i = 0; g && i < g->n_devices; i++) {
                        json_begin_object(w);
                        json_key(w, "index");
                        json_uint(w, i);
                        json_key(w, "name");
                        json_string(w, g->devices[i].name);
                        json_key(w, "pci_bus_id");
                        json_string(w, g->devices[i].pci_bus_id);
                        json_bytes_or_null(w, "memory_bytes", g->devices[i].memory_bytes > 0,
                                           g->devices[i].memory_bytes);
                        json_end_object(w);
                }
                json_end_array(w);
                json_key(w, "pairs");
                json_begin_array(w);
                for (size_t i = 0; g && i < g->n_devices; i++)
                        for (size_t j = i + 1; j < g->n_devices; j++) {
                                const struct gpu_link *a = gpuinfo_link(g, i, j), *b = gpuinfo_link(g, j, i);

                                json_begin_object(w);
                                json_key(w, "a");
                                json_uint(w, i);
                                json_key(w, "b");
                                json_uint(w, j);
                                json_key(w, "p2p");
                                json_tristate(w, a->p2p, b->p2p);
                                json_key(w, "nvlink");
                                json_tristate(w, a->nvlink, b->nvlink);
                                json_key(w, "topology");
                                json_string(w, a->topology != GPU_TOPOLOGY_UNKNOWN ? gpu_topology_name(a->topology)
                                                                                   : NULL);
                                json_end_object(w);
                        }
                json_end_array(w);
                break;
        case CHECK_NCCL:
                json_key(w, "version");
                json_string(w, g && g->nccl ? nccl_version_string(g->nccl_version_code, version, sizeof(version))
                                            : NULL);
                json_key(w, "version_code");
                if (g && g->nccl)
                        json_int(w, g->nccl_version_code);
                else
                        json_null(w);
                json_key(w, "path");
                json_string(w, g && g->nccl ? g->nccl_path : NULL);
                json_key(w, "error");
                json_string(w, g ? g->nccl_error : NULL);
                break;
        case CHECK_PORT:
                json_key(w, "port");
                if (p->port > 0)
                        json_int(w, p->port);
                else
                        json_null(w);
                json_key(w, "given");
                json_bool(w, p->o->master_port > 0);
                json_key(w, "free");
                json_bool(w, p->port > 0 && p->port_error == 0);
                break;
        case CHECK_CPUS:
                json_key(w, "cpus");
                json_int(w, p->cpus);
                json_key(w, "affinity_cpus");
                json_int(w, p->affinity_cpus);
                json_key(w, "quota_cpus");
                if (p->quota_cpus > 0)
                        json_double(w, p->quota_cpus);
                else
                        json_null(w);
                json_key(w, "ranks");
                json_int(w, p->nproc);
                json_key(w, "threads_per_rank");
                json_int(w, p->threads_per_rank);
                json_key(w, "omp_num_threads_set");
                json_bool(w, p->omp_set);
                break;
        case CHECK_PTRACE:
                json_key(w, "yama_ptrace_scope");
                if (p->ptrace_scope >= 0)
                        json_int(w, p->ptrace_scope);
                else
                        json_null(w);
                json_key(w, "cap_sys_ptrace");
                json_bool(w, p->cap_sys_ptrace);
                break;
        case _CHECK_MAX:
                break;
        }
        json_end_object(w);
}

static void print_json(const struct preflight *p, int status) {
        struct json_writer w;
        size_t failed = count_status(p, CHECK_FAIL), warned = count_status(p, CHECK_WARN);

        json_writer_init(&w, stdout);
        json_begin_object(&w);
        json_key(&w, "schema");
        json_string(&w, "ringmaster-check/1");
        json_key(&w, "nproc");
        json_int(&w, p->nproc);
        json_key(&w, "outcome");
        json_string(&w, failed ? "fail" : warned ? "warn" : "ok");
        json_key(&w, "exit_status");
        json_int(&w, status);
        json_key(&w, "checks");
        json_begin_array(&w);
        for (size_t i = 0; i < _CHECK_MAX; i++) {
                const struct check_result *c = &p->results[i];

                json_begin_object(&w);
                json_key(&w, "name");
                json_string(&w, checks[i].name);
                json_key(&w, "title");
                json_string(&w, checks[i].title);
                json_key(&w, "status");
                json_string(&w, status_names[c->status]);
                json_key(&w, "message");
                json_string(&w, c->message);
                json_key(&w, "fix");
                json_string(&w, c->fix);
                json_key(&w, "details");
                json_begin_array(&w);
                for (size_t k = 0; c->details && c->details[k]; k++)
                        json_string(&w, c->details[k]);
                json_end_array(&w);
                json_facts(&w, p, (enum check_id) i);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
        fputc('\n', stdout);
}

static void print_text(const struct preflight *p) {
        size_t failed = count_status(p, CHECK_FAIL), warned = count_status(p, CHECK_WARN);

        for (size_t i = 0; i < _CHECK_MAX; i++) {
                const struct check_result *c = &p->results[i];

                printf("%-5s %s: %s%s%s\n", status_names[c->status], checks[i].title, c->message,
                       c->fix ? ". Fix: " : "", c->fix ? c->fix : "");
                for (size_t k = 0; c->details && c->details[k]; k++)
                        printf("        %s\n", c->details[k]);
        }
        printf("%zu failed, %zu warning%s: %s\n", failed, warned, warned == 1 ? "" : "s",
               failed ? "ringmaster run would not start (--no-preflight skips the checks)"
                      : "ringmaster run would start");
}

int check_main(int argc, char **argv) {
        struct run_options o;
        struct preflight p = {};
        int status, r;

        r = check_options_parse(argc, argv, &o);
        if (r == 0)
                check_help();
        if (r <= 0) {
                run_options_done(&o);
                return r == 0 ? 0 : EXIT_RM_USAGE;
        }
        log_set_max_level(o.log_level);

        p = (struct preflight) { .o = &o };
        /* -n as run counts it: the ranks' GPUs, else 1. */
        if (o.nproc > 0)
                p.nproc = o.nproc;
        else {
                _cleanup_strv_free_ char **visible = NULL, **selected = NULL;
                bool from_env = false;

                r = gpus_visible(&visible, &from_env);
                if (r == 0 && o.gpus)
                        r = gpus_select(o.gpus, visible, from_env, &selected);
                if (r < 0) {
                        run_options_done(&o);
                        return r == -ENOMEM ? EXIT_RM_INTERNAL : EXIT_RM_USAGE;
                }
                p.nproc = (int) MAX(strv_length(selected ? selected : visible), (size_t) 1);
        }

        r = preflight_evaluate(&p, NULL, false);
        if (r < 0) {
                preflight_done(&p);
                run_options_done(&o);
                return r == -EINVAL ? EXIT_RM_USAGE : EXIT_RM_INTERNAL;
        }
        status = count_status(&p, CHECK_FAIL) > 0 ? EXIT_RM_INTERNAL : 0;
        if (o.json)
                print_json(&p, status);
        else
                print_text(&p);
        if (fflush(stdout) != 0)
                status = EXIT_RM_INTERNAL;
        preflight_done(&p);
        run_options_done(&o);
        return status;
}

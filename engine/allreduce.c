/* SPDX-License-Identifier: MIT */
/*
 * The custom all-reduce's host side (rm_allreduce.h): windows exchanged
 * through the tensor table, an agreement between the ranks on what the
 * calls may use, the choice of path per call, and the NCCL fallback.  The
 * kernels and the window layout are kernels/rm_allreduce_kernels.h's.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda-internal.h"
#include "rm_allreduce.h"
#include "rm_allreduce_kernels.h"
#include "shmring.h"
#if HAVE_NCCL
#include "rm_nccl.h"
#endif

#define NAME_MAX_LEN 24
#define PREFIX "allreduce/"
#define MODE_ENV "RINGMASTER_ALLREDUCE"
#define ONE_SHOT_ENV "RINGMASTER_ALLREDUCE_ONE_SHOT_MAX"
#define DEFAULT_MAX_BYTES ((size_t) 8 << 20)
#define DEFAULT_BLOCKS 36
#define DEFAULT_INIT_TIMEOUT_NS (120 * NSEC_PER_SEC)
#define DEFAULT_CALL_TIMEOUT_NS (60 * NSEC_PER_SEC)
#define AGREE_MAGIC 0x52414c31u                 /* "RAL1" */

/* What each rank publishes under allreduce/NAME/agree/RANK before the first call. */
struct agreement {
        uint32_t magic;
        uint32_t custom_ok;                     /* this rank mapped every peer's window */
        uint32_t nccl_ok;
        uint32_t blocks;
        uint64_t max_bytes;
        uint32_t nranks;
        uint32_t forced;                        /* enum rm_allreduce_algo from the environment */
};

struct rm_allreduce {
        struct rm_worker *w;
        char name[NAME_MAX_LEN + 1];
        int device;
        int nranks, rank;
        size_t max_bytes;                       /* the registered size: each data slot's */
        size_t one_shot_max;
        enum rm_allreduce_algo forced;
        bool custom;                            /* every rank can use the kernels */
        char custom_why[160];                   /* why not */
        struct rm_tensors *tensors;
        struct rm_buffer *window;
        struct rm_import *peers[RMK_AR_MAX_RANKS];
        struct rmk_ar_args args;                /* the per-call template */
        enum rm_handle_kind kind;
#if HAVE_NCCL
        ncclComm_t nccl;
        bool own_nccl;
#endif
        bool nccl_ok;                           /* every rank has it */
        char nccl_why[200];
        int64_t init_timeout_ns;
};

_public_ const char *rm_allreduce_algo_name(enum rm_allreduce_algo algo) {
        switch (algo) {
        case RM_ALLREDUCE_AUTO:
                return "auto";
        case RM_ALLREDUCE_ONE_SHOT:
                return "one-shot";
        case RM_ALLREDUCE_TWO_SHOT:
                return "two-shot";
        case RM_ALLREDUCE_NCCL:
                return "nccl";
        case RM_ALLREDUCE_COPY:
                return "copy";
        }
        return NULL;
}

/* The environment's settings, read in one place. */
static int read_env(enum rm_allreduce_algo *ret_forced, size_t *ret_one_shot_max) {
        const char *m = getenv(MODE_ENV), *o = getenv(ONE_SHOT_ENV);

        *ret_forced = RM_ALLREDUCE_AUTO;
        if (m && m[0]) {
                if (strcmp(m, "auto") == 0)
                        *ret_forced = RM_ALLREDUCE_AUTO;
                else if (strcmp(m, "one-shot") == 0)
                        *ret_forced = RM_ALLREDUCE_ONE_SHOT;
                else if (strcmp(m, "two-shot") == 0)
                        *ret_forced = RM_ALLREDUCE_TWO_SHOT;
                else if (strcmp(m, "nccl") == 0)
                        *ret_forced = RM_ALLREDUCE_NCCL;
                else
                        return rmpriv_fail(-EINVAL, MODE_ENV "='%.40s' is not one of auto, one-shot, two-shot, nccl",
                                           m);
        }
        if (o && o[0]) {
                char *end;
                unsigned long long v;

                errno = 0;
                v = strtoull(o, &end, 10);
                if (errno || end == o || *end || o[0] == '-')
                        return rmpriv_fail(-EINVAL, ONE_SHOT_ENV "='%.40s' is not a number of bytes", o);
                *ret_one_shot_max = (size_t) v;
        }
        return 0;
}

static size_t default_one_shot_max(int world) {
        /* vLLM's switch on NVLink: world 2 and 4 up to 512 KiB, 6 and 8 up to 256 KiB. */
        return world <= 4 ? (size_t) 512 << 10 : (size_t) 256 << 10;
}

static int kv_put(struct rm_allreduce *ar, const char *what, int rank, const void *v, size_t len) {
        char key[64];
        int64_t g;

        snprintf(key, sizeof(key), PREFIX "%s/%s/%d", ar->name, what, rank);
        g = shmring_kv_put(rm_worker_segment(ar->w), RM_KV_TABLE, key, v, len);
        if (g < 0)
                return rmpriv_fail((int) g, "Failed to publish %s: %s", key, strerror((int) -g));
        return 0;
}

static int kv_get(struct rm_allreduce *ar, const char *what, int rank, void *buf, size_t size, int64_t timeout_ns) {
        char key[64];
        ssize_t n;

        snprintf(key, sizeof(key), PREFIX "%s/%s/%d", ar->name, what, rank);
        n = shmring_kv_get(rm_worker_segment(ar->w), RM_KV_TABLE, key, 0, buf, size, NULL, timeout_ns);
        if (n == -ETIMEDOUT)
                return rmpriv_fail(-ETIMEDOUT, "all-reduce '%s': rank %d did not reach %s within %.1f s", ar->name,
                                   rank, what, (double) timeout_ns / 1e9);
        if (n == -EOWNERDEAD)
                return rmpriv_fail(-EOWNERDEAD, "all-reduce '%s': rank %d died before %s", ar->name, rank, what);
        if (n < 0)
                return rmpriv_fail((int) n, "Failed to read %s: %s", key, strerror((int) -n));
        return (int) n;
}

/* Allocates, zeroes and exports this rank's window, then maps every peer's. */
static int setup_windows(struct rm_allreduce *ar) {
        size_t total = RMK_AR_SIGNAL_BYTES + 2 * ar->max_bytes;
        struct rm_tensor_desc d = { .dtype = RM_DTYPE_U8, .ndim = 1 };
        char name[RM_TENSOR_NAME_MAX + 1];
        cudaError_t e;
        int r;

        r = rm_tensors_new(ar->w, &ar->tensors);
        if (r < 0)
                return r;
        r = rm_buffer_alloc(ar->tensors, ar->device, total, RM_HANDLE_AUTO, &ar->window);
        if (r < 0)
                return r;
        ar->kind = rm_buffer_kind(ar->window);
        e = cudaMemset(rm_buffer_data(ar->window), 0, RMK_AR_SIGNAL_BYTES);
        if (e == cudaSuccess)
                e = cudaDeviceSynchronize();
        if (e != cudaSuccess)
                return cuda_fail(e, "zeroing the all-reduce window on GPU %d", ar->device);
        d.shape[0] = (int64_t) total;
        snprintf(name, sizeof(name), PREFIX "%s/%d", ar->name, ar->rank);
        r = rm_tensor_export(ar->tensors, name, ar->window, &d, NULL);
        if (r < 0)
                return r;

        e = (cudaError_t) rmk_ar_preload(ar->nranks);
        if (e != cudaSuccess)
                return cuda_fail(e, "loading the all-reduce kernels on GPU %d", ar->device);

        ar->custom = true;
        for (int p = 0; p < ar->nranks; p++) {
                struct rm_import_opts o = {
                        .device = ar->device,
                        .expect_nbytes = total,
                        .timeout_ns = ar->init_timeout_ns,
                };

                if (p == ar->rank) {
                        ar->args.window[p] = rm_buffer_data(ar->window);
                        continue;
                }
                snprintf(name, sizeof(name), PREFIX "%s/%d", ar->name, p);
                r = rm_tensor_import(ar->tensors, name, &o, &ar->peers[p]);
                if (r == -EXDEV || r == -EOPNOTSUPP) {
                        /* No peer access (or no handle kind in common): NCCL must do it. */
                        snprintf(ar->custom_why, sizeof(ar->custom_why), "rank %d's window: %s", p, rm_last_error());
                        ar->custom = false;
                        continue;
                }
                if (r == -EMSGSIZE)
                        return rmpriv_fail(-EMSGSIZE, "all-reduce '%s': rank %d registered another size than this "
                                                      "rank's %zu bytes (max_bytes must be equal on every rank)",
                                           ar->name, p, ar->max_bytes);
                if (r < 0)
                        return r;
                ar->args.window[p] = rm_import_data(ar->peers[p]);
        }
        return 0;
}

static int setup_nccl(struct rm_allreduce *ar, const struct rm_allreduce_opts *o) {
        if (o->nccl == RM_ALLREDUCE_NCCL_OFF) {
                snprintf(ar->nccl_why, sizeof(ar->nccl_why), "NCCL fallback turned off");
                return 0;
        }
#if HAVE_NCCL
        if (o->nccl_comm) {
                ar->nccl = (ncclComm_t) o->nccl_comm;
                ar->nccl_ok = true;
                return 0;
        }
        {
                char nname[40];
                int r;

                snprintf(nname, sizeof(nname), "ar-%s", ar->name);
                r = rm_nccl_init(ar->w, nname, ar->nranks, ar->rank, ar->init_timeout_ns, &ar->nccl);
                if (r == 0) {
                        ar->own_nccl = true;
                        ar->nccl_ok = true;
                        return 0;
                }
                snprintf(ar->nccl_why, sizeof(ar->nccl_why), "NCCL init failed: %s", rm_last_error());
                if (o->nccl == RM_ALLREDUCE_NCCL_REQUIRED)
                        return r;
                return 0;
        }
#else
        if (o->nccl == RM_ALLREDUCE_NCCL_REQUIRED)
                return rmpriv_fail(-EOPNOTSUPP, "all-reduce '%s': NCCL required but librmworker-cuda was built "
                                                "without NCCL", ar->name);
        snprintf(ar->nccl_why, sizeof(ar->nccl_why), "built without NCCL");
        return 0;
#endif
}

/* Every rank publishes what it can do; all of them must agree. */
static int agree(struct rm_allreduce *ar) {
        struct agreement mine = {
                .magic = AGREE_MAGIC,
                .custom_ok = ar->custom,
                .nccl_ok = ar->nccl_ok,
                .blocks = (uint32_t) ar->args.blocks,
                .max_bytes = ar->max_bytes,
                .nranks = (uint32_t) ar->nranks,
                .forced = (uint32_t) ar->forced,
        };
        bool custom = ar->custom, nccl = ar->nccl_ok;
        int r;

        r = kv_put(ar, "agree", ar->rank, &mine, sizeof(mine));
        if (r < 0)
                return r;
        for (int p = 0; p < ar->nranks; p++) {
                struct agreement theirs;

                if (p == ar->rank)
                        continue;
                r = kv_get(ar, "agree", p, &theirs, sizeof(theirs), ar->init_timeout_ns);
                if (r < 0)
                        return r;
                if (r != (int) sizeof(theirs) || theirs.magic != AGREE_MAGIC)
                        return rmpriv_fail(-EBADMSG, "all-reduce '%s': rank %d's agreement record is malformed",
                                           ar->name, p);
                if (theirs.nranks != mine.nranks || theirs.max_bytes != mine.max_bytes ||
                    theirs.blocks != mine.blocks || theirs.forced != mine.forced)
                        return rmpriv_fail(-EMSGSIZE, "all-reduce '%s': rank %d has %u ranks, max_bytes %" PRIu64
                                                      ", %u blocks, " MODE_ENV "=%s; this rank %u, %" PRIu64 ", %u, %s",
                                           ar->name, p, theirs.nranks, theirs.max_bytes, theirs.blocks,
                                           rm_allreduce_algo_name(theirs.forced) ?: "?", mine.nranks, mine.max_bytes,
                                           mine.blocks, rm_allreduce_algo_name(ar->forced));
                if (!theirs.custom_ok && custom) {
                        custom = false;
                        snprintf(ar->custom_why, sizeof(ar->custom_why), "rank %d cannot map every peer's window", p);
                }
                if (!theirs.nccl_ok && nccl) {
                        nccl = false;
                        snprintf(ar->nccl_why, sizeof(ar->nccl_why), "rank %d has no NCCL communicator", p);
                }
        }
        ar->custom = custom;
        ar->nccl_ok = nccl;
        return 0;
}

static void release(struct rm_allreduce *ar) {
#if HAVE_NCCL
        if (ar->own_nccl)
                (void) rm_nccl_destroy(ar->nccl, 10 * NSEC_PER_SEC);
#endif
        ar->tensors = rm_tensors_free(ar->tensors);     /* closes imports, frees the window */
        free(ar);
}

_public_ int rm_allreduce_init(struct rm_worker *w, const char *name, const struct rm_allreduce_opts *opts,
                               struct rm_allreduce **ret) {
        struct rm_allreduce_opts o = opts ? *opts : RM_ALLREDUCE_OPTS_DEFAULT;
        struct rm_allreduce *ar;
        int prev = -1, r;
        cudaError_t e;

        check_arg(w && ret, -EINVAL);
        rmpriv_clear_error();
        if (!rm_name_valid(name, NAME_MAX_LEN, false))
                return rmpriv_fail(-EINVAL, "'%.60s' is not an all-reduce name (1..%d of [A-Za-z0-9._-])",
                                   name ? name : "(null)", NAME_MAX_LEN);
        if (o.blocks < 0 || o.blocks > RMK_AR_MAX_BLOCKS)
                return rmpriv_fail(-EINVAL, "blocks %d is not in 1..%d (0: the default)", o.blocks,
                                   RMK_AR_MAX_BLOCKS);
        if (o.max_bytes > ((size_t) 1 << 40))
                return rmpriv_fail(-EINVAL, "max_bytes %zu is more than 1 TiB", o.max_bytes);
        if (o.nccl != RM_ALLREDUCE_NCCL_AUTO && o.nccl != RM_ALLREDUCE_NCCL_OFF &&
            o.nccl != RM_ALLREDUCE_NCCL_REQUIRED)
                return rmpriv_fail(-EINVAL, "nccl %d is not an enum rm_allreduce_nccl", (int) o.nccl);

        ar = calloc(1, sizeof(*ar));
        if (!ar)
                return -ENOMEM;
        ar->w = w;
        snprintf(ar->name, sizeof(ar->name), "%s", name);
        ar->nranks = o.nranks < 0 ? (int) rm_worker_world_size(w) : o.nranks;
        ar->rank = o.rank < 0 ? (int) rm_worker_rank(w) : o.rank;
        ar->max_bytes = o.max_bytes ? o.max_bytes : DEFAULT_MAX_BYTES;
        ar->max_bytes = (ar->max_bytes + RMK_AR_ALIGN - 1) / RMK_AR_ALIGN * RMK_AR_ALIGN;
        ar->init_timeout_ns = o.init_timeout_ns > 0 ? o.init_timeout_ns : DEFAULT_INIT_TIMEOUT_NS;
        ar->one_shot_max = default_one_shot_max(ar->nranks);
        r = read_env(&ar->forced, &ar->one_shot_max);
        if (r < 0)
                goto fail;
        if (ar->nranks < 1 || ar->rank < 0 || ar->rank >= ar->nranks) {
                r = rmpriv_fail(-EINVAL, "rank %d is not below nranks %d", ar->rank, ar->nranks);
                goto fail;
        }
        if (o.device < 0) {
                e = cudaGetDevice(&o.device);
                if (e != cudaSuccess) {
                        r = cuda_fail(e, "cudaGetDevice");
                        goto fail;
                }
        }
        ar->device = o.device;
        r = device_enter(ar->device, &prev);
        if (r < 0) {
                prev = -1;
                goto fail;
        }

        ar->args.rank = ar->rank;
        ar->args.world = ar->nranks;
        ar->args.blocks = o.blocks ? o.blocks : DEFAULT_BLOCKS;
        ar->args.cap = ar->max_bytes;
        ar->args.timeout_ns = o.call_timeout_ns == RM_INFINITE ? 0
                              : o.call_timeout_ns > 0          ? (uint64_t) o.call_timeout_ns
                                                               : (uint64_t) DEFAULT_CALL_TIMEOUT_NS;

        if (ar->nranks == 1) {
                snprintf(ar->custom_why, sizeof(ar->custom_why), "one rank: a copy");
                snprintf(ar->nccl_why, sizeof(ar->nccl_why), "one rank: not needed");
                goto done;
        }
        if (!rmk_ar_world_supported(ar->nranks) || ar->nranks > RMK_AR_MAX_RANKS)
                snprintf(ar->custom_why, sizeof(ar->custom_why), "no custom kernels for a world of %d (2, 4, 6, 8)",
                         ar->nranks);
        else {
                r = setup_windows(ar);
                if (r < 0)
                        goto fail;
        }
        r = setup_nccl(ar, &o);
        if (r < 0)
                goto fail;
        r = agree(ar);
        if (r < 0)
                goto fail;
        if (ar->forced == RM_ALLREDUCE_NCCL && !ar->nccl_ok) {
                r = rmpriv_fail(-EOPNOTSUPP, MODE_ENV "=nccl but there is no NCCL fallback: %s", ar->nccl_why);
                goto fail;
        }
        if ((ar->forced == RM_ALLREDUCE_ONE_SHOT || ar->forced == RM_ALLREDUCE_TWO_SHOT) && !ar->custom) {
                r = rmpriv_fail(-EOPNOTSUPP, MODE_ENV "=%s but the custom kernels cannot be used: %s",
                                rm_allreduce_algo_name(ar->forced), ar->custom_why);
                goto fail;
        }
done:
        device_restore(prev);
        *ret = ar;
        return 0;
fail:
        if (prev >= 0)
                device_restore(prev);
        release(ar);
        return r;
}

_public_ struct rm_allreduce *rm_allreduce_free(struct rm_allreduce *ar) {
        int prev;

        if (!ar)
                return NULL;
        if (device_enter(ar->device, &prev) == 0) {
                (void) cudaDeviceSynchronize();
                (void) cudaGetLastError();
                device_restore(prev);
        }
        if (ar->nranks > 1) {
                /* No peer may still read this window when it goes: wait until every rank is here. */
                char one = 1, buf[8];

                if (kv_put(ar, "free", ar->rank, &one, 1) == 0)
                        for (int p = 0; p < ar->nranks; p++)
                                if (p != ar->rank)
                                        (void) kv_get(ar, "free", p, buf, sizeof(buf), ar->init_timeout_ns);
        }
        release(ar);
        return NULL;
}

/* The kernels' name for dtype (an enum rmk_ar_dtype, >= 0), or -EINVAL. */
static int dtype_kernel(enum rm_dtype dtype) {
        switch (dtype) {
        case RM_DTYPE_F32:
                return RMK_AR_F32;
        case RM_DTYPE_F16:
                return RMK_AR_F16;
        case RM_DTYPE_BF16:
                return RMK_AR_BF16;
        default:
                return rmpriv_fail(-EINVAL, "all-reduce of %s: only f32, f16 and bf16 are supported",
                                   rm_dtype_name(dtype) ?: "an unknown dtype");
        }
}

/* The path for a call, or -EOPNOTSUPP saying why none. */
static int choose(const struct rm_allreduce *ar, const void *in, const void *out, size_t bytes) {
        const char *why = NULL;
        char what[96];

        if (ar->nranks == 1)
                return RM_ALLREDUCE_COPY;
        if (ar->forced == RM_ALLREDUCE_NCCL)
                return RM_ALLREDUCE_NCCL;
        if (!ar->custom)
                why = ar->custom_why;
        else if (bytes > ar->max_bytes) {
                snprintf(what, sizeof(what), "%zu bytes exceed the registered %zu (max_bytes)", bytes, ar->max_bytes);
                why = what;
        } else if ((uintptr_t) in % RMK_AR_ALIGN || (uintptr_t) out % RMK_AR_ALIGN)
                why = "a pointer is not 16-byte aligned";
        if (!why) {
                if (ar->forced == RM_ALLREDUCE_ONE_SHOT || ar->forced == RM_ALLREDUCE_TWO_SHOT)
                        return ar->forced;
                return bytes <= ar->one_shot_max ? RM_ALLREDUCE_ONE_SHOT : RM_ALLREDUCE_TWO_SHOT;
        }
        if (ar->nccl_ok)
                return RM_ALLREDUCE_NCCL;
        return rmpriv_fail(-EOPNOTSUPP, "all-reduce '%s' of %zu bytes needs NCCL (%s), and there is none: %s",
                           ar->name, bytes, why, ar->nccl_why);
}

/* A call's kernel dtype, size in bytes and path (choose()), or a negative errno saying why none. */
static int plan(const struct rm_allreduce *ar, const void *in, const void *out, size_t count, enum rm_dtype dtype,
                enum rmk_ar_dtype *ret_kd, size_t *ret_bytes) {
        int algo, kd;

        kd = dtype_kernel(dtype);
        if (kd < 0)
                return kd;
        if (count > SIZE_MAX / rm_dtype_size(dtype))
                return rmpriv_fail(-EINVAL, "count %zu is too large", count);
        algo = choose(ar, in, out, count * rm_dtype_size(dtype));
        if (algo < 0)
                return algo;
        *ret_kd = (enum rmk_ar_dtype) kd;
        *ret_bytes = count * rm_dtype_size(dtype);
        return algo;
}

_public_ int rm_allreduce_algo(const struct rm_allreduce *ar, const void *in, const void *out, size_t count,
                               enum rm_dtype dtype) {
        enum rmk_ar_dtype kd;
        size_t bytes;

        check_arg(ar && in && out && count > 0, -EINVAL);
        rmpriv_clear_error();
        return plan(ar, in, out, count, dtype, &kd, &bytes);
}

_public_ int rm_allreduce(struct rm_allreduce *ar, const void *in, void *out, size_t count, enum rm_dtype dtype,
                          cudaStream_t stream) {
        size_t bytes;
        enum rmk_ar_dtype kd;
        int algo;
        cudaError_t e;

        check_arg(ar && in && out && count > 0, -EINVAL);
        rmpriv_clear_error();
        algo = plan(ar, in, out, count, dtype, &kd, &bytes);
        if (algo < 0)
                return algo;

        switch (algo) {
        case RM_ALLREDUCE_COPY:
                if (in == out)
                        return 0;
                e = cudaMemcpyAsync(out, in, bytes, cudaMemcpyDeviceToDevice, stream);
                if (e != cudaSuccess)
                        return cuda_fail(e, "cudaMemcpyAsync(%zu) for a one-rank all-reduce", bytes);
                return 0;
        case RM_ALLREDUCE_ONE_SHOT:
        case RM_ALLREDUCE_TWO_SHOT: {
                struct rmk_ar_args a = ar->args;

                a.in = in;
                a.out = out;
                a.count = count;
                a.dtype = kd;
                a.algo = algo == RM_ALLREDUCE_ONE_SHOT ? RMK_AR_ONE_SHOT : RMK_AR_TWO_SHOT;
                e = (cudaError_t) rmk_ar_launch(&a, stream);
                if (e != cudaSuccess)
                        return cuda_fail(e, "all-reduce '%s': launching the %s kernel (%zu bytes)", ar->name,
                                         rm_allreduce_algo_name(algo), bytes);
                return 0;
        }
        default:
                break;
        }
#if HAVE_NCCL
        {
                static const ncclDataType_t nt[] = { [RMK_AR_F32] = ncclFloat32, [RMK_AR_F16] = ncclFloat16,
                                                     [RMK_AR_BF16] = ncclBfloat16 };
                ncclResult_t res = ncclAllReduce(in, out, count, nt[kd], ncclSum, ar->nccl, stream);

                if (res == ncclInProgress)
                        return rm_nccl_wait(ar->nccl, ar->init_timeout_ns);
                if (res != ncclSuccess)
                        return rmpriv_fail(rm_nccl_errno(res) ?: -EIO, "all-reduce '%s': ncclAllReduce: %s",
                                           ar->name, ncclGetErrorString(res));
                return 0;
        }
#else
        return rmpriv_fail(-EOPNOTSUPP, "all-reduce '%s': no NCCL", ar->name);
#endif
}

_public_ int rm_allreduce_force(struct rm_allreduce *ar, enum rm_allreduce_algo algo) {
        check_arg(ar, -EINVAL);
        rmpriv_clear_error();
        switch (algo) {
        case RM_ALLREDUCE_AUTO:
                break;
        case RM_ALLREDUCE_ONE_SHOT:
        case RM_ALLREDUCE_TWO_SHOT:
                if (ar->nranks > 1 && !ar->custom)
                        return rmpriv_fail(-EOPNOTSUPP, "all-reduce '%s': no custom kernels: %s", ar->name,
                                           ar->custom_why);
                break;
        case RM_ALLREDUCE_NCCL:
                if (ar->nranks > 1 && !ar->nccl_ok)
                        return rmpriv_fail(-EOPNOTSUPP, "all-reduce '%s': no NCCL: %s", ar->name, ar->nccl_why);
                break;
        default:
                return rmpriv_fail(-EINVAL, "algorithm %d cannot be forced", (int) algo);
        }
        ar->forced = ar->nranks > 1 ? algo : RM_ALLREDUCE_AUTO;
        return 0;
}

_public_ size_t rm_allreduce_one_shot_max(const struct rm_allreduce *ar) {
        return ar ? ar->one_shot_max : 0;
}

_public_ int rm_allreduce_describe(const struct rm_allreduce *ar, char *buf, size_t size) {
        check_arg(ar && buf && size > 0, -EINVAL);
        if (ar->nranks == 1)
                snprintf(buf, size, "all-reduce '%s': 1 rank (a copy)", ar->name);
        else
                snprintf(buf, size,
                         "all-reduce '%s': rank %d of %d on GPU %d; custom: %s%s%s (%s windows, %zu bytes "
                         "registered, %d blocks, one-shot up to %zu bytes); NCCL fallback: %s%s%s",
                         ar->name, ar->rank, ar->nranks, ar->device, ar->custom ? "yes" : "no",
                         ar->custom ? "" : ", ", ar->custom ? "" : ar->custom_why,
                         ar->window ? rm_handle_kind_name(ar->kind) : "no", ar->max_bytes, ar->args.blocks,
                         ar->one_shot_max, ar->nccl_ok ? "yes" : "no", ar->nccl_ok ? "" : ", ",
                         ar->nccl_ok ? "" : ar->nccl_why);
        return 0;
}

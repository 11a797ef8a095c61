/* SPDX-License-Identifier: MIT */
/*
 * GPU tensors shared between the ranks of a run: exportable buffers, tensor
 * records in the run segment's kv table, and an import cache.
 *
 * Caches, in the importer:
 *   mapping  one per (exporter process, allocation, importing device): the
 *            cudaIpcOpenMemHandle() or cuMemMap() of the whole allocation.
 *            A cudaIpc handle can be opened only once per context, so two
 *            tensors in one allocation share it.
 *   import   one per (name, generation): the record, the mapping it uses,
 *            its opened event; handed out with a reference count.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda-internal.h"
#include "shmring.h"

#define HANDLE_ENV "RINGMASTER_TENSOR_HANDLE"
/* Larger than any record: a bigger value is not one of ours. */
#define RECORD_BUF 1024

struct rm_buffer {
        struct rm_buffer *next;
        enum rm_handle_kind kind;
        int device;
        void *data;
        size_t size;                            /* the whole allocation */
        uint64_t alloc_id;
        cudaIpcMemHandle_t ipc;                 /* CUDA IPC */
        CUmemGenericAllocationHandle vmm;       /* VMM */
        uint64_t fd_token;
        char fd_key[64];
};

/* A cudaMalloc block exported through rm_tensor_export_ptr(). */
struct ptr_alloc {
        struct ptr_alloc *next;
        void *base;
        size_t size;
        int device;
        uint64_t alloc_id;
        cudaIpcMemHandle_t ipc;
};

struct export_entry {
        struct export_entry *next;
        char name[RM_TENSOR_NAME_MAX + 1];
        struct rm_buffer *buffer;               /* NULL for a pointer export */
        struct ptr_alloc *ptr;                  /* NULL for a buffer export */
        int device;
        cudaEvent_t event;                      /* NULL when IPC events are unavailable */
        uint64_t generation;
};

struct mapping {
        struct mapping *next;
        uint64_t exporter_nonce;
        uint64_t alloc_id;
        int device;                             /* the importing device */
        enum rm_handle_kind kind;
        bool self;                              /* our own export: nothing to close */
        void *base;
        size_t size;
        CUmemGenericAllocationHandle vmm;
        unsigned users;                         /* imports using it */
};

struct rm_import {
        struct rm_import *next;
        char name[RM_TENSOR_NAME_MAX + 1];
        uint64_t generation;
        struct rm_tensor_record rec;
        struct mapping *map;
        cudaEvent_t event;
        bool own_event;                         /* opened here: destroyed with the import */
        int device;
        unsigned refs;
        bool stale;                             /* a newer generation was imported */
};

struct rm_tensors {
        struct rm_worker *w;
        uint64_t nonce;
        uint64_t next_alloc_id;
        struct rm_buffer *buffers;
        struct ptr_alloc *ptr_allocs;
        struct export_entry *exports;
        struct mapping *mappings;
        struct rm_import *imports;
        int n_devices;                          /* visible GPUs' UUIDs, read at the first import */
        uint8_t (*uuids)[16];
};

/* ---------------------------------------------------------------- kinds */

static bool vmm_supported(int device) {
        const struct cu_api *cu;
        int vmm = 0, posix = 0;

        if (cu_api_get(&cu) < 0)
                return false;
        if (cu->DeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device) !=
                    CUDA_SUCCESS ||
            cu->DeviceGetAttribute(&posix, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED,
                                   device) != CUDA_SUCCESS)
                return false;
        return vmm && posix;
}

static int env_kind(enum rm_handle_kind *ret) {
        const char *v = getenv(HANDLE_ENV);

        if (!v || !v[0]) {
                *ret = RM_HANDLE_AUTO;
                return 0;
        }
        if (rm_handle_kind_from_string(v, ret) < 0)
                return rmpriv_fail(-EINVAL, HANDLE_ENV "='%.40s' is not one of auto, cuda-ipc, vmm-fd", v);
        return 0;
}

_public_ int rm_tensor_kind_for_device(int device, enum rm_handle_kind *ret_kind) {
        enum rm_handle_kind k;
        int n, r;

        check_arg(ret_kind, -EINVAL);
        if (cudaGetDeviceCount(&n) != cudaSuccess || device < 0 || device >= n) {
                (void) cudaGetLastError();
                return rmpriv_fail(-ENODEV, "no GPU %d in this process", device);
        }
        r = env_kind(&k);
        if (r < 0)
                return r;
        if (k == RM_HANDLE_AUTO)
                k = vmm_supported(device) ? RM_HANDLE_VMM_FD : RM_HANDLE_CUDA_IPC;
        *ret_kind = k;
        return 0;
}

_public_ int rm_tensor_kind_describe(int device, char *buf, size_t size) {
        enum rm_handle_kind env, k;
        int r;

        check_arg(buf && size > 0, -EINVAL);
        r = env_kind(&env);
        if (r < 0)
                return r;
        r = rm_tensor_kind_for_device(device, &k);
        if (r < 0)
                return r;
        if (env != RM_HANDLE_AUTO)
                snprintf(buf, size, "tensor handles on GPU %d: %s (set by " HANDLE_ENV ")", device,
                         rm_handle_kind_name(k));
        else if (k == RM_HANDLE_VMM_FD)
                snprintf(buf, size, "tensor handles on GPU %d: vmm-fd (VMM with POSIX fd handles supported; "
                                    "falls back to cuda-ipc if an allocation fails)", device);
        else
                snprintf(buf, size, "tensor handles on GPU %d: cuda-ipc (no VMM POSIX fd handles on this "
                                    "device or driver)", device);
        return 0;
}

/* ------------------------------------------------------------- registry */

_public_ int rm_tensors_new(struct rm_worker *w, struct rm_tensors **ret) {
        struct rm_tensors *t;

        check_arg(w && ret, -EINVAL);
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->w = w;
        t->nonce = rmpriv_random_u64() | 1;
        *ret = t;
        return 0;
}

static void mapping_unref(struct rm_tensors *t, struct mapping *m) {
        struct mapping **p;
        const struct cu_api *cu;
        int prev;

        if (--m->users > 0)
                return;
        for (p = &t->mappings; *p; p = &(*p)->next)
                if (*p == m) {
                        *p = m->next;
                        break;
                }
        if (!m->self && device_enter(m->device, &prev) == 0) {
                if (m->kind == RM_HANDLE_CUDA_IPC)
                        (void) cudaIpcCloseMemHandle(m->base);
                else if (cu_api_get(&cu) == 0) {
                        (void) cu->MemUnmap((CUdeviceptr) (uintptr_t) m->base, m->size);
                        (void) cu->MemAddressFree((CUdeviceptr) (uintptr_t) m->base, m->size);
                        (void) cu->MemRelease(m->vmm);
                }
                (void) cudaGetLastError();
                device_restore(prev);
        }
        free(m);
}

static void import_destroy(struct rm_tensors *t, struct rm_import *imp) {
        struct rm_import **p;

        for (p = &t->imports; *p; p = &(*p)->next)
                if (*p == imp) {
                        *p = imp->next;
                        break;
                }
        if (imp->event && imp->own_event)
                (void) cudaEventDestroy(imp->event);
        if (imp->map)
                mapping_unref(t, imp->map);
        free(imp);
}

static struct export_entry *export_find(struct rm_tensors *t, const char *name) {
        for (struct export_entry *e = t->exports; e; e = e->next)
                if (strcmp(e->name, name) == 0)
                        return e;
        return NULL;
}

static void export_unlink_free(struct rm_tensors *t, struct export_entry *x) {
        for (struct export_entry **p = &t->exports; *p; p = &(*p)->next)
                if (*p == x) {
                        *p = x->next;
                        break;
                }
        if (x->event)
                (void) cudaEventDestroy(x->event);
        free(x);
}

/* Replaces the record with a tombstone, so importers of it see -ESTALE. */
static int put_tombstone(struct rm_tensors *t, const char *name, const struct export_entry *x) {
        struct rm_tensor_record rec = {
                .flags = RM_TENSOR_WITHDRAWN,
                .exporter_device = x->device,
                .exporter_rank = rm_worker_rank(t->w),
                .exporter_pid = (int32_t) getpid(),
                .exporter_nonce = t->nonce,
        };
        unsigned char buf[RM_TENSOR_RECORD_SIZE];
        char key[64];
        int64_t g;
        int r;

        r = rm_tensor_key(name, key);
        if (r < 0)
                return r;
        r = rm_tensor_record_encode(&rec, buf, sizeof(buf));
        if (r < 0)
                return r;
        g = shmring_kv_put(rm_worker_segment(t->w), RM_KV_TABLE, key, buf, sizeof(buf));
        if (g < 0)
                return rmpriv_fail((int) g, "Failed to withdraw %s: %s", key, strerror((int) -g));
        return 0;
}

static void buffer_release(struct rm_tensors *t, struct rm_buffer *b) {
        const struct cu_api *cu;
        int prev;

        if (device_enter(b->device, &prev) < 0)
                prev = -1;
        if (b->kind == RM_HANDLE_CUDA_IPC) {
                (void) cudaFree(b->data);
        } else if (cu_api_get(&cu) == 0) {
                (void) rm_fd_unshare(t->w, b->fd_key);
                (void) cu->MemUnmap((CUdeviceptr) (uintptr_t) b->data, b->size);
                (void) cu->MemAddressFree((CUdeviceptr) (uintptr_t) b->data, b->size);
                (void) cu->MemRelease(b->vmm);
        }
        (void) cudaGetLastError();
        if (prev >= 0)
                device_restore(prev);
        free(b);
}

_public_ struct rm_tensors *rm_tensors_free(struct rm_tensors *t) {
        if (!t)
                return NULL;
        while (t->imports)
                import_destroy(t, t->imports);
        while (t->exports) {
                (void) put_tombstone(t, t->exports->name, t->exports);
                export_unlink_free(t, t->exports);
        }
        while (t->buffers) {
                struct rm_buffer *b = t->buffers;

                t->buffers = b->next;
                buffer_release(t, b);
        }
        while (t->ptr_allocs) {
                struct ptr_alloc *a = t->ptr_allocs;

                t->ptr_allocs = a->next;
                free(a);
        }
        free(t->uuids);
        free(t);
        return NULL;
}

/* ------------------------------------------------------------- buffers */

static int buffer_alloc_ipc(struct rm_buffer *b, size_t size) {
        cudaError_t e;

        e = cudaMalloc(&b->data, size);
        if (e != cudaSuccess)
                return cuda_fail(e, "cudaMalloc(%zu) on GPU %d", size, b->device);
        e = cudaIpcGetMemHandle(&b->ipc, b->data);
        if (e != cudaSuccess) {
                int r = cuda_fail(e, "cudaIpcGetMemHandle on GPU %d", b->device);

                (void) cudaFree(b->data);
                return r;
        }
        b->size = size;
        return 0;
}

static int buffer_alloc_vmm(struct rm_tensors *t, struct rm_buffer *b, size_t size) {
        const struct cu_api *cu;
        CUmemAllocationProp prop = {
                .type = CU_MEM_ALLOCATION_TYPE_PINNED,
                .requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR,
                .location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = b->device },
        };
        CUmemAccessDesc access = {
                .location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = b->device },
                .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
        };
        CUdeviceptr ptr = 0;
        size_t gran = 0;
        bool created = false, reserved = false, mapped = false;
        int fd = -1, r;
        CUresult e;

        r = cu_api_get(&cu);
        if (r < 0)
                return r;
        e = cu->MemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED);
        if (e != CUDA_SUCCESS)
                return cu_fail(e, "cuMemGetAllocationGranularity on GPU %d", b->device);
        if (gran == 0 || size > SIZE_MAX - gran)
                return rmpriv_fail(-EINVAL, "cannot allocate %zu bytes", size);
        size = (size + gran - 1) / gran * gran;

        e = cu->MemCreate(&b->vmm, size, &prop, 0);
        if (e != CUDA_SUCCESS) {
                r = cu_fail(e, "cuMemCreate(%zu, POSIX fd) on GPU %d", size, b->device);
                goto fail;
        }
        created = true;
        e = cu->MemAddressReserve(&ptr, size, gran, 0, 0);
        if (e != CUDA_SUCCESS) {
                r = cu_fail(e, "cuMemAddressReserve(%zu)", size);
                goto fail;
        }
        reserved = true;
        e = cu->MemMap(ptr, size, 0, b->vmm, 0);
        if (e != CUDA_SUCCESS) {
                r = cu_fail(e, "cuMemMap(%zu)", size);
                goto fail;
        }
        mapped = true;
        e = cu->MemSetAccess(ptr, size, &access, 1);
        if (e != CUDA_SUCCESS) {
                r = cu_fail(e, "cuMemSetAccess on GPU %d", b->device);
                goto fail;
        }
        e = cu->MemExportToShareableHandle(&fd, b->vmm, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
        if (e != CUDA_SUCCESS) {
                r = cu_fail(e, "cuMemExportToShareableHandle(POSIX fd)");
                goto fail;
        }
        snprintf(b->fd_key, sizeof(b->fd_key), "vmm/%016" PRIx64 "/%" PRIu64, t->nonce, b->alloc_id);
        r = rm_fd_share(t->w, b->fd_key, fd, &b->fd_token);
        close(fd);
        if (r < 0)
                goto fail;
        b->data = (void *) (uintptr_t) ptr;
        b->size = size;
        return 0;
fail:
        if (mapped)
                (void) cu->MemUnmap(ptr, size);
        if (reserved)
                (void) cu->MemAddressFree(ptr, size);
        if (created)
                (void) cu->MemRelease(b->vmm);
        return r;
}

_public_ int rm_buffer_alloc(struct rm_tensors *t, int device, size_t size, enum rm_handle_kind kind,
                             struct rm_buffer **ret) {
        struct rm_buffer *b;
        bool automatic = kind == RM_HANDLE_AUTO;
        int prev, r;

        check_arg(t && ret && size > 0, -EINVAL);
        check_arg(kind == RM_HANDLE_AUTO || kind == RM_HANDLE_CUDA_IPC || kind == RM_HANDLE_VMM_FD, -EINVAL);
        rmpriv_clear_error();
        if (automatic) {
                enum rm_handle_kind env;

                r = env_kind(&env);
                if (r < 0)
                        return r;
                automatic = env == RM_HANDLE_AUTO;
                r = rm_tensor_kind_for_device(device, &kind);
                if (r < 0)
                        return r;
        }

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->device = device;
        b->kind = kind;
        b->alloc_id = ++t->next_alloc_id;

        r = device_enter(device, &prev);
        if (r < 0) {
                free(b);
                return r;
        }
        if (kind == RM_HANDLE_VMM_FD) {
                r = buffer_alloc_vmm(t, b, size);
                /* The automatic choice falls back to CUDA IPC where VMM fails
                 * (a driver or container that refuses POSIX fd handles). */
                if (r < 0 && r != -ENOMEM && automatic) {
                        b->kind = RM_HANDLE_CUDA_IPC;
                        r = buffer_alloc_ipc(b, size);
                }
        } else
                r = buffer_alloc_ipc(b, size);
        device_restore(prev);
        if (r < 0) {
                free(b);
                return r;
        }
        b->next = t->buffers;
        t->buffers = b;
        *ret = b;
        return 0;
}

_public_ struct rm_buffer *rm_buffer_free(struct rm_tensors *t, struct rm_buffer *b) {
        struct export_entry *x, *next;

        if (!t || !b)
                return NULL;
        for (x = t->exports; x; x = next) {
                next = x->next;
                if (x->buffer == b) {
                        (void) put_tombstone(t, x->name, x);
                        export_unlink_free(t, x);
                }
        }
        for (struct rm_buffer **p = &t->buffers; *p; p = &(*p)->next)
                if (*p == b) {
                        *p = b->next;
                        break;
                }
        buffer_release(t, b);
        return NULL;
}

_public_ void *rm_buffer_data(const struct rm_buffer *b) {
        return b->data;
}

_public_ size_t rm_buffer_size(const struct rm_buffer *b) {
        return b->size;
}

_public_ int rm_buffer_device(const struct rm_buffer *b) {
        return b->device;
}

_public_ enum rm_handle_kind rm_buffer_kind(const struct rm_buffer *b) {
        return b->kind;
}

/* ------------------------------------------------------------- exports */

/* Fills the record's tensor fields from d, checked against the allocation. */
static int desc_to_record(const struct rm_tensor_desc *d, uint64_t base_offset, uint64_t alloc_size,
                          struct rm_tensor_record *rec) {
        size_t esize;
        uint64_t span, offset, end;
        int r;

        esize = rm_dtype_size(d->dtype);
        if (esize == 0)
                return rmpriv_fail(-EINVAL, "unknown dtype %d", (int) d->dtype);
        if (d->ndim > RM_TENSOR_MAX_DIMS)
                return rmpriv_fail(-EINVAL, "ndim %u exceeds %d", d->ndim, RM_TENSOR_MAX_DIMS);
        rec->dtype = d->dtype;
        rec->ndim = d->ndim;
        memcpy(rec->shape, d->shape, d->ndim * sizeof(int64_t));
        {
                bool contiguous = true;

                for (uint32_t i = 0; i < d->ndim; i++)
                        if (d->strides[i] != 0)
                                contiguous = false;
                if (contiguous) {
                        int64_t s = 1;

                        for (uint32_t i = d->ndim; i-- > 0;) {
                                rec->strides[i] = s;
                                if (d->shape[i] > 0 && __builtin_mul_overflow(s, d->shape[i], &s))
                                        return rmpriv_fail(-EINVAL, "tensor shape overflows");
                        }
                } else
                        memcpy(rec->strides, d->strides, d->ndim * sizeof(int64_t));
        }
        r = rm_tensor_span(d->dtype, d->ndim, rec->shape, rec->strides, &span);
        if (r < 0)
                return rmpriv_fail(-EINVAL, "bad tensor shape or strides");
        if (__builtin_add_overflow(base_offset, d->byte_offset, &offset) ||
            __builtin_add_overflow(offset, span, &end) || end > alloc_size)
                return rmpriv_fail(-EINVAL, "the tensor (%" PRIu64 " bytes at offset %" PRIu64
                                            ") does not fit its allocation of %" PRIu64 " bytes",
                                   span, d->byte_offset, alloc_size);
        if (offset % esize != 0)
                return rmpriv_fail(-EINVAL, "byte offset %" PRIu64 " is not a multiple of the %s size", offset,
                                   rm_dtype_name(d->dtype));
        rec->byte_offset = offset;
        rec->nbytes = span;
        rec->alloc_size = alloc_size;
        return 0;
}

static int export_publish(struct rm_tensors *t, const char *name, struct rm_tensor_record *rec, int device,
                          struct rm_buffer *b, struct ptr_alloc *a, uint64_t *ret_generation) {
        unsigned char buf[RM_TENSOR_RECORD_SIZE];
        cudaIpcEventHandle_t eh;
        cudaEvent_t ev = NULL;
        struct export_entry *x, *old;
        char key[64];
        cudaError_t e;
        int64_t g;
        int prev, r;

        r = rm_tensor_key(name, key);
        if (r < 0)
                return rmpriv_fail(-EINVAL, "'%.60s' is not a tensor name (1..%d of [A-Za-z0-9._/-])", name,
                                   RM_TENSOR_NAME_MAX);
        r = device_uuid(device, rec->device_uuid);
        if (r < 0)
                return r;
        rec->exporter_device = device;
        rec->exporter_rank = rm_worker_rank(t->w);
        rec->exporter_pid = (int32_t) getpid();
        rec->exporter_nonce = t->nonce;

        /* An interprocess event per export, for rm_tensor_signal(). */
        r = device_enter(device, &prev);
        if (r < 0)
                return r;
        e = cudaEventCreateWithFlags(&ev, cudaEventInterprocess | cudaEventDisableTiming);
        if (e == cudaSuccess && cudaIpcGetEventHandle(&eh, ev) == cudaSuccess) {
                memcpy(rec->event_handle, &eh, sizeof(rec->event_handle));
                rec->flags |= RM_TENSOR_HAS_EVENT;
        } else {
                /* Not fatal: the tensor is shared, only without ordering. */
                if (ev)
                        (void) cudaEventDestroy(ev);
                ev = NULL;
                (void) cudaGetLastError();
        }
        device_restore(prev);

        r = rm_tensor_record_encode(rec, buf, sizeof(buf));
        if (r < 0) {
                r = rmpriv_fail(r, "Failed to encode the record of %s", key);
                goto fail;
        }
        x = calloc(1, sizeof(*x));
        if (!x) {
                r = -ENOMEM;
                goto fail;
        }
        g = shmring_kv_put(rm_worker_segment(t->w), RM_KV_TABLE, key, buf, sizeof(buf));
        if (g < 0) {
                free(x);
                r = rmpriv_fail((int) g, "Failed to publish %s: %s", key, strerror((int) -g));
                goto fail;
        }
        old = export_find(t, name);
        if (old)
                export_unlink_free(t, old);
        snprintf(x->name, sizeof(x->name), "%s", name);
        x->buffer = b;
        x->ptr = a;
        x->device = device;
        x->event = ev;
        x->generation = (uint64_t) g;
        x->next = t->exports;
        t->exports = x;
        if (ret_generation)
                *ret_generation = (uint64_t) g;
        return 0;
fail:
        if (ev)
                (void) cudaEventDestroy(ev);
        return r;
}

_public_ int rm_tensor_export(struct rm_tensors *t, const char *name, struct rm_buffer *b,
                              const struct rm_tensor_desc *d, uint64_t *ret_generation) {
        struct rm_tensor_record rec = { 0 };
        int r;

        check_arg(t && b && d, -EINVAL);
        rmpriv_clear_error();
        rec.kind = b->kind;
        rec.alloc_id = b->alloc_id;
        if (b->kind == RM_HANDLE_CUDA_IPC)
                memcpy(rec.mem_handle, &b->ipc, sizeof(rec.mem_handle));
        else
                rec.fd_token = b->fd_token;
        r = desc_to_record(d, 0, b->size, &rec);
        if (r < 0)
                return r;
        return export_publish(t, name, &rec, b->device, b, NULL, ret_generation);
}

_public_ int rm_tensor_export_ptr(struct rm_tensors *t, const char *name, void *data,
                                  const struct rm_tensor_desc *d, uint64_t *ret_generation) {
        struct rm_tensor_record rec = { 0 };
        struct cudaPointerAttributes attr;
        const struct cu_api *cu;
        CUdeviceptr base = 0;
        size_t size = 0;
        cudaIpcMemHandle_t ipc;
        struct ptr_alloc *a;
        cudaError_t e;
        CUresult ce;
        int prev, r;

        check_arg(t && data && d, -EINVAL);
        rmpriv_clear_error();

        e = cudaPointerGetAttributes(&attr, data);
        if (e != cudaSuccess)
                return cuda_fail(e, "cudaPointerGetAttributes");
        if (attr.type != cudaMemoryTypeDevice)
                return rmpriv_fail(-EINVAL, "%p is not device memory from cudaMalloc", data);
        r = cu_api_get(&cu);
        if (r < 0)
                return r;
        r = device_enter(attr.device, &prev);
        if (r < 0)
                return r;
        ce = cu->MemGetAddressRange(&base, &size, (CUdeviceptr) (uintptr_t) data);
        if (ce == CUDA_SUCCESS) {
                e = cudaIpcGetMemHandle(&ipc, (void *) (uintptr_t) base);
                if (e != cudaSuccess)
                        r = cuda_fail(e, "cudaIpcGetMemHandle(%p) (is it from cudaMalloc?)", data);
        } else
                r = cu_fail(ce, "cuMemGetAddressRange(%p)", data);
        device_restore(prev);
        if (r < 0)
                return r;

        /* The same block exported again keeps its id, so importers map it once;
         * a new block at a recycled address has another handle, hence a new id. */
        for (a = t->ptr_allocs; a; a = a->next)
                if (a->base == (void *) (uintptr_t) base && memcmp(&a->ipc, &ipc, sizeof(ipc)) == 0)
                        break;
        if (!a) {
                a = calloc(1, sizeof(*a));
                if (!a)
                        return -ENOMEM;
                a->base = (void *) (uintptr_t) base;
                a->size = size;
                a->device = attr.device;
                a->alloc_id = ++t->next_alloc_id;
                a->ipc = ipc;
                a->next = t->ptr_allocs;
                t->ptr_allocs = a;
        }

        rec.kind = RM_HANDLE_CUDA_IPC;
        rec.alloc_id = a->alloc_id;
        memcpy(rec.mem_handle, &ipc, sizeof(rec.mem_handle));
        r = desc_to_record(d, (uint64_t) ((uintptr_t) data - (uintptr_t) base), size, &rec);
        if (r < 0)
                return r;
        return export_publish(t, name, &rec, attr.device, NULL, a, ret_generation);
}

_public_ int rm_tensor_withdraw(struct rm_tensors *t, const char *name) {
        struct export_entry *x;
        int r;

        check_arg(t && name, -EINVAL);
        rmpriv_clear_error();
        x = export_find(t, name);
        if (!x)
                return rmpriv_fail(-ENOENT, "this process exports no tensor '%.60s'", name);
        r = put_tombstone(t, name, x);
        export_unlink_free(t, x);
        return r;
}

_public_ int rm_tensor_signal(struct rm_tensors *t, const char *name, cudaStream_t stream) {
        struct export_entry *x;
        cudaError_t e;

        check_arg(t && name, -EINVAL);
        rmpriv_clear_error();
        x = export_find(t, name);
        if (!x)
                return rmpriv_fail(-ENOENT, "this process exports no tensor '%.60s'", name);
        if (!x->event)
                return rmpriv_fail(-EOPNOTSUPP, "tensor '%s' has no interprocess event", name);
        e = cudaEventRecord(x->event, stream);
        if (e != cudaSuccess)
                return cuda_fail(e, "cudaEventRecord for tensor '%s'", name);
        return 0;
}

/* ------------------------------------------------------------- imports */

/* Looks name up; 0 and the record, or an error with its message. */
static int lookup(struct rm_tensors *t, const char *name, const char *key, int64_t timeout_ns,
                  struct rm_tensor_record *ret_rec, uint64_t *ret_generation) {
        unsigned char buf[RECORD_BUF];
        struct shmring_kv_info info;
        ssize_t n;
        int r;

        n = shmring_kv_get(rm_worker_segment(t->w), RM_KV_TABLE, key, 0, buf, sizeof(buf), &info, timeout_ns);
        if (n == -EAGAIN)
                return rmpriv_fail(-ENOENT, "no tensor '%s' is exported", name);
        if (n == -ETIMEDOUT)
                return rmpriv_fail(-ETIMEDOUT, "no tensor '%s' was exported within %.1f s", name,
                                   (double) timeout_ns / 1e9);
        if (n == -EOWNERDEAD)
                return rmpriv_fail(-EOWNERDEAD, "the exporter of tensor '%s' died", name);
        if (n == -EMSGSIZE)
                return rmpriv_fail(-EBADMSG, "%s does not hold a tensor record (too large)", key);
        if (n < 0)
                return rmpriv_fail((int) n, "Failed to look up %s: %s", key, strerror((int) -n));
        r = rm_tensor_record_decode(buf, (size_t) n, ret_rec);
        if (r == -EPROTO)
                return rmpriv_fail(r, "tensor '%s' was exported by another version of librmworker", name);
        if (r < 0)
                return rmpriv_fail(-EBADMSG, "%s does not hold a valid tensor record", key);
        *ret_generation = info.generation;
        return 0;
}

static struct mapping *mapping_find(struct rm_tensors *t, const struct rm_tensor_record *rec, int device) {
        for (struct mapping *m = t->mappings; m; m = m->next)
                if (m->exporter_nonce == rec->exporter_nonce && m->alloc_id == rec->alloc_id && m->device == device)
                        return m;
        return NULL;
}

/* Our own export: the local pointer, nothing opened. */
static int map_self(struct rm_tensors *t, const struct rm_tensor_record *rec, struct mapping *m) {
        for (struct rm_buffer *b = t->buffers; b; b = b->next)
                if (b->alloc_id == rec->alloc_id) {
                        m->base = b->data;
                        m->size = b->size;
                        return 0;
                }
        for (struct ptr_alloc *a = t->ptr_allocs; a; a = a->next)
                if (a->alloc_id == rec->alloc_id) {
                        m->base = a->base;
                        m->size = a->size;
                        return 0;
                }
        return rmpriv_fail(-ESTALE, "this process no longer holds the allocation of the tensor");
}

static int map_ipc(const struct rm_tensor_record *rec, struct mapping *m) {
        cudaIpcMemHandle_t h;
        cudaError_t e;

        memcpy(&h, rec->mem_handle, sizeof(h));
        e = cudaIpcOpenMemHandle(&m->base, h, cudaIpcMemLazyEnablePeerAccess);
        if (e != cudaSuccess)
                return cuda_fail(e, "cudaIpcOpenMemHandle of rank %" PRIu32 "'s allocation on its GPU %d",
                                 rec->exporter_rank, rec->exporter_device);
        m->size = rec->alloc_size;
        return 0;
}

static int map_vmm(struct rm_tensors *t, const struct rm_tensor_record *rec, struct mapping *m) {
        const struct cu_api *cu;
        CUmemAccessDesc access = {
                .location = { .type = CU_MEM_LOCATION_TYPE_DEVICE, .id = m->device },
                .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE,
        };
        CUdeviceptr ptr = 0;
        char fd_key[64];
        bool imported = false, reserved = false, mapped = false;
        int fd = -1, r;
        CUresult e;

        r = cu_api_get(&cu);
        if (r < 0)
                return r;
        snprintf(fd_key, sizeof(fd_key), "vmm/%016" PRIx64 "/%" PRIu64, rec->exporter_nonce, rec->alloc_id);
        r = rm_fd_fetch(t->w, rec->exporter_rank, fd_key, rec->fd_token, 0, &fd);
        if (r == -ECONNREFUSED)
                return rmpriv_fail(-EOWNERDEAD, "rank %" PRIu32 " (pid %d), the tensor's exporter, serves no fds "
                                                "any more: it exited", rec->exporter_rank, rec->exporter_pid);
        if (r == -ENOENT || r == -EACCES)
                return rmpriv_fail(-ESTALE, "rank %" PRIu32 " freed the tensor's allocation", rec->exporter_rank);
        if (r < 0)
                return r;

        /* The fd is ours alone now; cuMemImportFromShareableHandle validates what it refers to. */
        e = cu->MemImportFromShareableHandle(&m->vmm, (void *) (uintptr_t) fd,
                                             CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
        close(fd);
        if (e != CUDA_SUCCESS) {
                r = cu_fail(e, "cuMemImportFromShareableHandle of rank %" PRIu32 "'s allocation",
                            rec->exporter_rank);
                goto fail;
        }
        imported = true;
        e = cu->MemAddressReserve(&ptr, rec->alloc_size, 0, 0, 0);
        if (e != CUDA_SUCCESS) {
                r = cu_fail(e, "cuMemAddressReserve(%" PRIu64 ")", rec->alloc_size);
                goto fail;
        }
        reserved = true;
        e = cu->MemMap(ptr, rec->alloc_size, 0, m->vmm, 0);
        if (e != CUDA_SUCCESS) {
                r = cu_fail(e, "cuMemMap(%" PRIu64 ") of rank %" PRIu32 "'s allocation (a size mismatch?)",
                            rec->alloc_size, rec->exporter_rank);
                goto fail;
        }
        mapped = true;
        e = cu->MemSetAccess(ptr, rec->alloc_size, &access, 1);
        if (e != CUDA_SUCCESS) {
                r = cu_fail(e, "cuMemSetAccess for GPU %d", m->device);
                goto fail;
        }
        m->base = (void *) (uintptr_t) ptr;
        m->size = rec->alloc_size;
        return 0;
fail:
        if (mapped)
                (void) cu->MemUnmap(ptr, rec->alloc_size);
        if (reserved)
                (void) cu->MemAddressFree(ptr, rec->alloc_size);
        if (imported)
                (void) cu->MemRelease(m->vmm);
        return r;
}

/* The visible GPU with this UUID (cached: cudaGetDeviceProperties is not free). */
static int find_device(struct rm_tensors *t, const uint8_t uuid[16], int *ret_device) {
        if (!t->uuids) {
                cudaError_t e;
                int n, r;

                e = cudaGetDeviceCount(&n);
                if (e != cudaSuccess)
                        return cuda_fail(e, "cudaGetDeviceCount");
                t->uuids = calloc((size_t) n + 1, 16);
                if (!t->uuids)
                        return -ENOMEM;
                for (int i = 0; i < n; i++) {
                        r = device_uuid(i, t->uuids[i]);
                        if (r < 0) {
                                free(t->uuids);
                                t->uuids = NULL;
                                return r;
                        }
                }
                t->n_devices = n;
        }
        for (int i = 0; i < t->n_devices; i++)
                if (memcmp(t->uuids[i], uuid, 16) == 0) {
                        *ret_device = i;
                        return 0;
                }
        return -ENODEV;
}

/* Forgets imports of name older than generation that nobody holds any more. */
static void drop_stale(struct rm_tensors *t, const char *name, uint64_t generation) {
        struct rm_import *imp, *next;

        for (imp = t->imports; imp; imp = next) {
                next = imp->next;
                if (strcmp(imp->name, name) != 0 || imp->generation >= generation)
                        continue;
                imp->stale = true;
                if (imp->refs == 0)
                        import_destroy(t, imp);
        }
}

_public_ int rm_tensor_import(struct rm_tensors *t, const char *name, const struct rm_import_opts *opts,
                              struct rm_import **ret) {
        struct rm_import_opts o = opts ? *opts : RM_IMPORT_OPTS_DEFAULT;
        struct rm_tensor_record rec;
        struct rm_import *imp;
        struct mapping *m;
        uint64_t generation;
        char key[64];
        int exporter_device = -1, prev, ndev, r;
        cudaError_t e;

        check_arg(t && ret, -EINVAL);
        rmpriv_clear_error();
        if (rm_tensor_key(name, key) < 0)
                return rmpriv_fail(-EINVAL, "'%.60s' is not a tensor name (1..%d of [A-Za-z0-9._/-])",
                                   name ? name : "(null)", RM_TENSOR_NAME_MAX);

        r = lookup(t, name, key, o.timeout_ns, &rec, &generation);
        if (r < 0)
                return r;
        if (o.generation != 0 && generation != o.generation)
                return rmpriv_fail(generation > o.generation ? -ESTALE : -ENOENT,
                                   "tensor '%s' is at generation %" PRIu64 ", not %" PRIu64, name, generation,
                                   o.generation);
        if (rec.flags & RM_TENSOR_WITHDRAWN)
                return rmpriv_fail(o.generation != 0 ? -ESTALE : -ENOENT,
                                   "tensor '%s' was withdrawn by its exporter (rank %" PRIu32 ")", name,
                                   rec.exporter_rank);
        if (o.expect_nbytes != 0 && rec.nbytes != o.expect_nbytes)
                return rmpriv_fail(-EMSGSIZE, "tensor '%s' has %" PRIu64 " bytes, not the %" PRIu64 " expected",
                                   name, rec.nbytes, o.expect_nbytes);
        if (o.expect_dtype != RM_DTYPE_INVALID && rec.dtype != o.expect_dtype)
                return rmpriv_fail(-EMSGSIZE, "tensor '%s' holds %s, not the %s expected", name,
                                   rm_dtype_name(rec.dtype), rm_dtype_name(o.expect_dtype) ?: "?");

        if (o.device < 0) {
                e = cudaGetDevice(&o.device);
                if (e != cudaSuccess)
                        return cuda_fail(e, "cudaGetDevice");
        }

        /* The cache: this name at this generation on this device. */
        for (imp = t->imports; imp; imp = imp->next)
                if (imp->generation == generation && imp->device == o.device && strcmp(imp->name, name) == 0) {
                        imp->refs++;
                        *ret = imp;
                        return 0;
                }
        drop_stale(t, name, generation);

        r = find_device(t, rec.device_uuid, &exporter_device);
        if (r < 0 && r != -ENODEV)
                return r;
        ndev = t->n_devices;
        if (o.device >= ndev)
                return rmpriv_fail(-ENODEV, "no GPU %d in this process (it sees %d)", o.device, ndev);
        if (r == -ENODEV)
                return rmpriv_fail(-ENODEV, "tensor '%s' lives on a GPU this process cannot see (rank %" PRIu32
                                            "'s GPU %d; check CUDA_VISIBLE_DEVICES)", name, rec.exporter_rank,
                                   rec.exporter_device);
        if (r < 0)
                return r;
        if (exporter_device != o.device) {
                int can = 0;

                e = cudaDeviceCanAccessPeer(&can, o.device, exporter_device);
                if (e != cudaSuccess)
                        return cuda_fail(e, "cudaDeviceCanAccessPeer(%d, %d)", o.device, exporter_device);
                if (!can)
                        return rmpriv_fail(-EXDEV, "GPU %d cannot access GPU %d (tensor '%s'): no peer access",
                                           o.device, exporter_device, name);
        }

        imp = calloc(1, sizeof(*imp));
        if (!imp)
                return -ENOMEM;
        snprintf(imp->name, sizeof(imp->name), "%s", name);
        imp->generation = generation;
        imp->rec = rec;
        imp->device = o.device;
        imp->refs = 1;

        r = device_enter(o.device, &prev);
        if (r < 0) {
                free(imp);
                return r;
        }
        m = mapping_find(t, &rec, o.device);
        if (m)
                m->users++;
        else {
                m = calloc(1, sizeof(*m));
                if (!m) {
                        r = -ENOMEM;
                        goto fail;
                }
                m->exporter_nonce = rec.exporter_nonce;
                m->alloc_id = rec.alloc_id;
                m->device = o.device;
                m->kind = rec.kind;
                m->users = 1;
                if (rec.exporter_nonce == t->nonce) {
                        m->self = true;
                        r = map_self(t, &rec, m);
                } else if (rec.kind == RM_HANDLE_CUDA_IPC)
                        r = map_ipc(&rec, m);
                else
                        r = map_vmm(t, &rec, m);
                if (r < 0) {
                        free(m);
                        goto fail;
                }
                if (m->size < rec.alloc_size) {
                        r = rmpriv_fail(-EMSGSIZE, "tensor '%s': the mapped allocation has %zu bytes, the record "
                                                   "says %" PRIu64, name, m->size, rec.alloc_size);
                        m->next = t->mappings;
                        t->mappings = m;
                        mapping_unref(t, m);
                        goto fail;
                }
                m->next = t->mappings;
                t->mappings = m;
        }
        imp->map = m;

        if (rec.flags & RM_TENSOR_HAS_EVENT) {
                struct export_entry *x = m->self ? export_find(t, name) : NULL;

                if (m->self) {
                        imp->event = x ? x->event : NULL;
                } else {
                        cudaIpcEventHandle_t eh;

                        memcpy(&eh, rec.event_handle, sizeof(eh));
                        if (cudaIpcOpenEventHandle(&imp->event, eh) == cudaSuccess)
                                imp->own_event = true;
                        else {
                                /* Not fatal: rm_import_wait() says -EOPNOTSUPP. */
                                imp->event = NULL;
                                (void) cudaGetLastError();
                        }
                }
        }
        device_restore(prev);

        imp->next = t->imports;
        t->imports = imp;
        *ret = imp;
        return 0;
fail:
        device_restore(prev);
        free(imp);
        return r;
}

_public_ struct rm_import *rm_import_close(struct rm_tensors *t, struct rm_import *imp) {
        if (!t || !imp)
                return NULL;
        if (imp->refs > 0)
                imp->refs--;
        if (imp->refs == 0 && imp->stale)
                import_destroy(t, imp);
        return NULL;
}

_public_ void *rm_import_data(const struct rm_import *imp) {
        return (unsigned char *) imp->map->base + imp->rec.byte_offset;
}

_public_ const struct rm_tensor_record *rm_import_record(const struct rm_import *imp) {
        return &imp->rec;
}

_public_ uint64_t rm_import_generation(const struct rm_import *imp) {
        return imp->generation;
}

_public_ int rm_import_device(const struct rm_import *imp) {
        return imp->device;
}

_public_ int rm_import_check(struct rm_tensors *t, struct rm_import *imp) {
        struct rm_tensor_record rec;
        uint64_t generation;
        char key[64];
        int r;

        check_arg(t && imp, -EINVAL);
        rmpriv_clear_error();
        if (rm_tensor_key(imp->name, key) < 0)
                return -EINVAL;
        r = lookup(t, imp->name, key, 0, &rec, &generation);
        if (r < 0)
                return r;
        if (generation != imp->generation) {
                imp->stale = true;
                return rmpriv_fail(-ESTALE, "tensor '%s' was %s since generation %" PRIu64 " (now %" PRIu64 ")",
                                   imp->name, (rec.flags & RM_TENSOR_WITHDRAWN) ? "withdrawn" : "exported again",
                                   imp->generation, generation);
        }
        return 0;
}

_public_ int rm_import_wait(struct rm_import *imp, cudaStream_t stream) {
        cudaError_t e;

        check_arg(imp, -EINVAL);
        rmpriv_clear_error();
        if (!imp->event)
                return rmpriv_fail(-EOPNOTSUPP, "tensor '%s' has no usable interprocess event", imp->name);
        e = cudaStreamWaitEvent(stream, imp->event, 0);
        if (e != cudaSuccess)
                return cuda_fail(e, "cudaStreamWaitEvent for tensor '%s'", imp->name);
        return 0;
}

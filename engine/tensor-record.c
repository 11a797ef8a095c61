/* SPDX-License-Identifier: MIT */
/* The tensor record published under "tensor/<name>": format and checks. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define TENSOR_MAGIC UINT32_C(0x31544d52)       /* "RMT1" */
#define TENSOR_FORMAT_VERSION 1
#define TENSOR_KNOWN_FLAGS (RM_TENSOR_WITHDRAWN | RM_TENSOR_HAS_EVENT)

/* The bytes in the kv table: fixed sizes and offsets, native byte order (one host). */
struct tensor_wire {
        uint32_t magic;
        uint16_t version;
        uint16_t kind;
        uint32_t flags;
        uint32_t dtype;
        uint32_t ndim;
        int32_t exporter_device;
        uint32_t exporter_rank;
        int32_t exporter_pid;
        uint8_t device_uuid[16];
        uint64_t exporter_nonce;
        int64_t shape[RM_TENSOR_MAX_DIMS];
        int64_t strides[RM_TENSOR_MAX_DIMS];
        uint64_t byte_offset;
        uint64_t nbytes;
        uint64_t alloc_size;
        uint64_t alloc_id;
        uint64_t fd_token;
        unsigned char mem_handle[64];
        unsigned char event_handle[64];
};
_Static_assert(sizeof(struct tensor_wire) == RM_TENSOR_RECORD_SIZE, "tensor record size");

static const struct {
        const char *name;
        size_t size;
} dtypes[] = {
        [RM_DTYPE_BOOL] = { "bool", 1 },
        [RM_DTYPE_U8] = { "uint8", 1 },
        [RM_DTYPE_I8] = { "int8", 1 },
        [RM_DTYPE_U16] = { "uint16", 2 },
        [RM_DTYPE_I16] = { "int16", 2 },
        [RM_DTYPE_U32] = { "uint32", 4 },
        [RM_DTYPE_I32] = { "int32", 4 },
        [RM_DTYPE_U64] = { "uint64", 8 },
        [RM_DTYPE_I64] = { "int64", 8 },
        [RM_DTYPE_F16] = { "float16", 2 },
        [RM_DTYPE_BF16] = { "bfloat16", 2 },
        [RM_DTYPE_F32] = { "float32", 4 },
        [RM_DTYPE_F64] = { "float64", 8 },
        [RM_DTYPE_FP8_E4M3] = { "float8_e4m3", 1 },
        [RM_DTYPE_FP8_E5M2] = { "float8_e5m2", 1 },
};

_public_ size_t rm_dtype_size(enum rm_dtype dtype) {
        if ((unsigned) dtype >= ELEMENTSOF(dtypes))
                return 0;
        return dtypes[dtype].size;
}

_public_ const char *rm_dtype_name(enum rm_dtype dtype) {
        if ((unsigned) dtype >= ELEMENTSOF(dtypes) || !dtypes[dtype].name)
                return NULL;
        return dtypes[dtype].name;
}

_public_ const char *rm_handle_kind_name(enum rm_handle_kind kind) {
        switch (kind) {
        case RM_HANDLE_AUTO:
                return "auto";
        case RM_HANDLE_CUDA_IPC:
                return "cuda-ipc";
        case RM_HANDLE_VMM_FD:
                return "vmm-fd";
        }
        return NULL;
}

_public_ int rm_handle_kind_from_string(const char *s, enum rm_handle_kind *ret_kind) {
        enum rm_handle_kind k;

        check_arg(s && ret_kind, -EINVAL);
        if (strcmp(s, "auto") == 0)
                k = RM_HANDLE_AUTO;
        else if (strcmp(s, "cuda-ipc") == 0 || strcmp(s, "legacy") == 0)
                k = RM_HANDLE_CUDA_IPC;
        else if (strcmp(s, "vmm-fd") == 0 || strcmp(s, "vmm") == 0)
                k = RM_HANDLE_VMM_FD;
        else
                return -EINVAL;
        *ret_kind = k;
        return 0;
}

_public_ int rm_tensor_span(enum rm_dtype dtype, uint32_t ndim, const int64_t *shape, const int64_t *strides,
                            uint64_t *ret_nbytes) {
        size_t esize = rm_dtype_size(dtype);
        uint64_t last = 0, nbytes;

        check_arg(esize > 0, -EINVAL);
        check_arg(ndim <= RM_TENSOR_MAX_DIMS, -EINVAL);
        check_arg(ndim == 0 || (shape && strides), -EINVAL);

        for (uint32_t i = 0; i < ndim; i++)
                if (shape[i] < 0 || strides[i] < 0)
                        return -EINVAL;
        for (uint32_t i = 0; i < ndim; i++)
                if (shape[i] == 0) {
                        if (ret_nbytes)
                                *ret_nbytes = 0;
                        return 0;
                }
        for (uint32_t i = 0; i < ndim; i++) {
                uint64_t step;

                if (__builtin_mul_overflow((uint64_t) (shape[i] - 1), (uint64_t) strides[i], &step) ||
                    __builtin_add_overflow(last, step, &last))
                        return -EOVERFLOW;
        }
        if (__builtin_add_overflow(last, 1, &last) || __builtin_mul_overflow(last, (uint64_t) esize, &nbytes))
                return -EOVERFLOW;
        if (ret_nbytes)
                *ret_nbytes = nbytes;
        return 0;
}

_public_ int rm_tensor_record_validate(const struct rm_tensor_record *r) {
        uint64_t span, end;
        size_t esize;

        check_arg(r, -EINVAL);

        if (r->flags & ~TENSOR_KNOWN_FLAGS)
                return -EBADMSG;
        if (r->flags & RM_TENSOR_WITHDRAWN)
                return 0;                       /* a tombstone: nothing else is used */
        if (r->kind != RM_HANDLE_CUDA_IPC && r->kind != RM_HANDLE_VMM_FD)
                return -EBADMSG;
        esize = rm_dtype_size(r->dtype);
        if (esize == 0 || r->ndim > RM_TENSOR_MAX_DIMS)
                return -EBADMSG;
        for (uint32_t i = r->ndim; i < RM_TENSOR_MAX_DIMS; i++)
                if (r->shape[i] != 0 || r->strides[i] != 0)
                        return -EBADMSG;
        if (rm_tensor_span(r->dtype, r->ndim, r->shape, r->strides, &span) < 0)
                return -EBADMSG;
        if (span != r->nbytes)
                return -EBADMSG;
        if (r->alloc_size == 0 || r->byte_offset % esize != 0)
                return -EBADMSG;
        if (__builtin_add_overflow(r->byte_offset, r->nbytes, &end) || end > r->alloc_size)
                return -EBADMSG;
        if (r->exporter_device < 0 || r->exporter_pid <= 0 || r->exporter_rank >= RM_WORKER_MAX_RANKS)
                return -EBADMSG;
        return 0;
}

_public_ int rm_tensor_record_encode(const struct rm_tensor_record *r, void *buf, size_t size) {
        struct tensor_wire wire;
        int v;

        check_arg(r && buf, -EINVAL);
        if (size < sizeof(wire))
                return -ENOBUFS;
        v = rm_tensor_record_validate(r);
        if (v < 0)
                return -EINVAL;

        memset(&wire, 0, sizeof(wire));
        wire.magic = TENSOR_MAGIC;
        wire.version = TENSOR_FORMAT_VERSION;
        wire.kind = (uint16_t) r->kind;
        wire.flags = r->flags;
        wire.dtype = (uint32_t) r->dtype;
        wire.ndim = r->ndim;
        wire.exporter_device = r->exporter_device;
        wire.exporter_rank = r->exporter_rank;
        wire.exporter_pid = r->exporter_pid;
        memcpy(wire.device_uuid, r->device_uuid, sizeof(wire.device_uuid));
        wire.exporter_nonce = r->exporter_nonce;
        memcpy(wire.shape, r->shape, sizeof(wire.shape));
        memcpy(wire.strides, r->strides, sizeof(wire.strides));
        wire.byte_offset = r->byte_offset;
        wire.nbytes = r->nbytes;
        wire.alloc_size = r->alloc_size;
        wire.alloc_id = r->alloc_id;
        wire.fd_token = r->fd_token;
        memcpy(wire.mem_handle, r->mem_handle, sizeof(wire.mem_handle));
        memcpy(wire.event_handle, r->event_handle, sizeof(wire.event_handle));
        memcpy(buf, &wire, sizeof(wire));
        return (int) sizeof(wire);
}

_public_ int rm_tensor_record_decode(const void *buf, size_t len, struct rm_tensor_record *ret) {
        struct tensor_wire wire;
        struct rm_tensor_record r;

        check_arg(buf && ret, -EINVAL);
        if (len < offsetof(struct tensor_wire, kind))
                return -EBADMSG;
        memset(&wire, 0, sizeof(wire));
        memcpy(&wire, buf, len < sizeof(wire) ? len : sizeof(wire));
        if (wire.magic != TENSOR_MAGIC)
                return -EBADMSG;
        if (wire.version != TENSOR_FORMAT_VERSION)
                return -EPROTO;
        if (len != sizeof(wire))
                return -EBADMSG;

        memset(&r, 0, sizeof(r));
        r.kind = (enum rm_handle_kind) wire.kind;
        r.flags = wire.flags;
        r.dtype = (enum rm_dtype) wire.dtype;
        r.ndim = wire.ndim;
        r.exporter_device = wire.exporter_device;
        r.exporter_rank = wire.exporter_rank;
        r.exporter_pid = wire.exporter_pid;
        memcpy(r.device_uuid, wire.device_uuid, sizeof(r.device_uuid));
        r.exporter_nonce = wire.exporter_nonce;
        memcpy(r.shape, wire.shape, sizeof(r.shape));
        memcpy(r.strides, wire.strides, sizeof(r.strides));
        r.byte_offset = wire.byte_offset;
        r.nbytes = wire.nbytes;
        r.alloc_size = wire.alloc_size;
        r.alloc_id = wire.alloc_id;
        r.fd_token = wire.fd_token;
        memcpy(r.mem_handle, wire.mem_handle, sizeof(r.mem_handle));
        memcpy(r.event_handle, wire.event_handle, sizeof(r.event_handle));
        if (rm_tensor_record_validate(&r) < 0)
                return -EBADMSG;
        *ret = r;
        return 0;
}

_public_ int rm_tensor_key(const char *name, char key[64]) {
        check_arg(key, -EINVAL);
        if (!rm_name_valid(name, RM_TENSOR_NAME_MAX, true))
                return -EINVAL;
        snprintf(key, 64, RM_KV_TENSOR_PREFIX "%s", name);
        return 0;
}

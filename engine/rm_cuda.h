/* SPDX-License-Identifier: MIT */
#ifndef RM_CUDA_H
#define RM_CUDA_H

/*
 * librmworker-cuda: GPU tensors shared between the ranks of a run.
 *
 * An exporter allocates exportable device memory (rm_buffer_alloc), then
 * publishes views of it by name (rm_tensor_export): dtype, shape, strides,
 * byte offset, and a handle other processes can map.  Two handle kinds:
 *
 *   RM_HANDLE_CUDA_IPC  cudaMalloc memory and a cudaIpcMemHandle_t; does not
 *                       cross PID namespaces (separate containers)
 *   RM_HANDLE_VMM_FD    cuMemCreate memory exported as a POSIX file
 *                       descriptor, fetched from the exporter over a Unix
 *                       socket with SCM_RIGHTS (rm_fd_fetch); crosses them
 *
 * RM_HANDLE_AUTO picks VMM where the device supports POSIX-fd handles and
 * the driver offers the entry points, CUDA IPC otherwise; the environment
 * variable RINGMASTER_TENSOR_HANDLE=cuda-ipc|vmm-fd|auto overrides it.
 * rm_tensor_kind_describe() gives a line for the log.
 *
 * An importer looks the name up, checks the record (the exporter's GPU by
 * UUID, since CUDA_VISIBLE_DEVICES may number GPUs differently in each
 * rank), maps the allocation once per (exporter, allocation) and caches the
 * import per (name, generation).  Every export gets a new generation; an
 * import of an older one fails its rm_import_check() with -ESTALE, and
 * one whose exporter died with -EOWNERDEAD.  Ordering across processes: the
 * exporter records the tensor's interprocess event on its stream after
 * writing (rm_tensor_signal), an importer makes its stream wait for it
 * (rm_import_wait).
 *
 * Errors (negative errno, with rm_last_error() saying more):
 *   -ENOENT     no tensor of that name (or it was withdrawn)
 *   -ETIMEDOUT  none appeared within the timeout
 *   -EOWNERDEAD its exporter died
 *   -ESTALE     a newer export replaced the generation asked for
 *   -EMSGSIZE   its size is not the size the importer expects
 *   -ENODEV     the exporter's GPU is not visible in this process
 *   -EXDEV      the importing GPU cannot reach the exporter's (no peer access)
 *   -EOPNOTSUPP the handle kind is not available here
 *   -EBADMSG    the record is malformed
 *   -EIO        a CUDA call failed (rm_last_error() names it)
 *
 * A struct rm_tensors is used by one thread at a time.  It does not survive
 * fork().  The functions switch the calling thread's current device where
 * they need to and switch it back.
 */

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "rm_worker.h"

#ifdef __cplusplus
extern "C" {
#endif

struct rm_tensors;
struct rm_buffer;
struct rm_import;

/* The tensor registry of this process: its exports and its import cache. */
int rm_tensors_new(struct rm_worker *w, struct rm_tensors **ret);
/* Closes every import, withdraws every export, frees every buffer.  Accepts NULL. */
struct rm_tensors *rm_tensors_free(struct rm_tensors *t);

/* What RM_HANDLE_AUTO picks for device (and the environment's override). */
int rm_tensor_kind_for_device(int device, enum rm_handle_kind *ret_kind);
/* A line for the log: "tensor handles on GPU 0: vmm-fd (POSIX fd handles supported)". */
int rm_tensor_kind_describe(int device, char *buf, size_t size);

/* ------------------------------------------------------------- exporter */

/* Exportable device memory of at least size bytes on device. */
int rm_buffer_alloc(struct rm_tensors *t, int device, size_t size, enum rm_handle_kind kind,
                    struct rm_buffer **ret);
/* Withdraws the buffer's exports, then frees it.  Accepts NULL; returns NULL. */
struct rm_buffer *rm_buffer_free(struct rm_tensors *t, struct rm_buffer *b);
void *rm_buffer_data(const struct rm_buffer *b);
size_t rm_buffer_size(const struct rm_buffer *b);
int rm_buffer_device(const struct rm_buffer *b);
enum rm_handle_kind rm_buffer_kind(const struct rm_buffer *b);

struct rm_tensor_desc {
        enum rm_dtype dtype;
        uint32_t ndim;
        int64_t shape[RM_TENSOR_MAX_DIMS];
        int64_t strides[RM_TENSOR_MAX_DIMS];    /* in elements; all zero: contiguous */
        uint64_t byte_offset;                   /* of element 0, from the buffer's start */
};

/*
 * Publishes a view of b under name (1..48 of [A-Za-z0-9._/-]); replaces
 * an earlier export of that name.  Returns the export's generation in
 * *ret_generation.  -EINVAL when the view does not fit the buffer.
 */
int rm_tensor_export(struct rm_tensors *t, const char *name, struct rm_buffer *b, const struct rm_tensor_desc *d,
                     uint64_t *ret_generation);
/*
 * The same for memory from cudaMalloc (CUDA IPC only): data may point
 * anywhere inside an allocation, which must stay allocated while exported.
 * -EINVAL for host or managed memory.
 */
int rm_tensor_export_ptr(struct rm_tensors *t, const char *name, void *data, const struct rm_tensor_desc *d,
                         uint64_t *ret_generation);
/* Withdraws an export: new imports get -ENOENT, existing ones -ESTALE from rm_import_check(). */
int rm_tensor_withdraw(struct rm_tensors *t, const char *name);
/* Records the export's interprocess event on stream (after the writes to wait for). */
int rm_tensor_signal(struct rm_tensors *t, const char *name, cudaStream_t stream);

/* ------------------------------------------------------------- importer */

struct rm_import_opts {
        int device;                             /* the importing GPU; -1: the current device */
        uint64_t expect_nbytes;                 /* 0: any size */
        enum rm_dtype expect_dtype;             /* RM_DTYPE_INVALID: any */
        uint64_t generation;                    /* 0: the newest; else exactly this one */
        int64_t timeout_ns;                     /* wait this long for the name to appear; 0: no wait */
};
#define RM_IMPORT_OPTS_DEFAULT ((struct rm_import_opts) { .device = -1 })

/*
 * Maps the tensor called name (cached: importing it again is a lookup).
 * Each successful call takes a reference that rm_import_close() drops;
 * the mapping itself stays cached until rm_tensors_free() or until a newer
 * generation of the name is imported and no reference is left.
 */
int rm_tensor_import(struct rm_tensors *t, const char *name, const struct rm_import_opts *opts,
                     struct rm_import **ret);
/* Drops a reference.  Accepts NULL; returns NULL. */
struct rm_import *rm_import_close(struct rm_tensors *t, struct rm_import *imp);
/* Element 0 of the tensor, in the importing device's address space. */
void *rm_import_data(const struct rm_import *imp);
const struct rm_tensor_record *rm_import_record(const struct rm_import *imp);
uint64_t rm_import_generation(const struct rm_import *imp);
int rm_import_device(const struct rm_import *imp);
/* 0 while the import is current; -ESTALE, -EOWNERDEAD or -ENOENT when not. */
int rm_import_check(struct rm_tensors *t, struct rm_import *imp);
/* Makes stream wait for the exporter's last rm_tensor_signal(). -EOPNOTSUPP without an event. */
int rm_import_wait(struct rm_import *imp, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif

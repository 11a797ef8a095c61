/* SPDX-License-Identifier: MIT */
#ifndef RM_WORKER_H
#define RM_WORKER_H

/*
 * librmworker: the worker side of a ringmaster run, without CUDA.
 *
 * A rank started by `ringmaster run` finds its run in the environment:
 *
 *   RINGMASTER_SHM      the run's shared-memory segment (libshmring)
 *   RINGMASTER_RUN_ID   the run's id (the segment must carry the same one)
 *   RINGMASTER_RUN_DIR  the run's private directory (absolute path)
 *   RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE   as torchrun sets them
 *
 * rm_worker_open() reads and checks all of them and attaches to the segment.
 * On top of the segment's key-value table "kv" this library offers:
 *
 *   - a rendezvous for collective libraries (rm_bootstrap_*): one rank
 *     publishes an id (an ncclUniqueId), the others wait for it with a
 *     deadline, and a rank that times out can name the ranks it waited for;
 *   - file-descriptor sharing between ranks over a Unix socket in the run
 *     directory (rm_fd_*), used for CUDA VMM handles;
 *   - the tensor record format (rm_tensor_record_*) that librmworker-cuda
 *     publishes under "tensor/<name>".
 *
 * Conventions (as libshmring's): 0 or a non-negative count on success, a
 * negative errno on failure; ret_ out-parameters are written only on
 * success; destructors accept NULL and return NULL.  The library never
 * prints: a failure leaves a one-line explanation for the calling thread in
 * rm_last_error().  Timeouts are relative nanoseconds: RM_INFINITE waits
 * forever, 0 never waits.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RM_INFINITE INT64_C(-1)
#define RM_WORKER_MAX_RANKS 65536

/* The run segment's key-value table, and the key prefixes used in it. */
#define RM_KV_TABLE "kv"
#define RM_KV_TENSOR_PREFIX "tensor/"
#define RM_KV_NCCL_PREFIX "nccl/"

struct shmring;
struct rm_worker;

/*
 * Reads the run from the environment and attaches to its segment.
 * -ENXIO: RINGMASTER_SHM is not set (not running under ringmaster);
 * -EINVAL: a variable is missing or malformed, or the segment belongs to
 * another run; otherwise shmring_attach()'s errors.  rm_last_error() says
 * which variable and why.
 */
int rm_worker_open(struct rm_worker **ret);
/* Stops sharing file descriptors, detaches.  Accepts NULL; returns NULL. */
struct rm_worker *rm_worker_close(struct rm_worker *w);

uint32_t rm_worker_rank(const struct rm_worker *w);
uint32_t rm_worker_world_size(const struct rm_worker *w);
uint32_t rm_worker_local_rank(const struct rm_worker *w);
uint32_t rm_worker_local_world_size(const struct rm_worker *w);
const char *rm_worker_run_id(const struct rm_worker *w);
const char *rm_worker_run_dir(const struct rm_worker *w);
struct shmring *rm_worker_segment(const struct rm_worker *w);

/*
 * The explanation of the calling thread's last failure in this library
 * (and in librmworker-cuda): "timed out after 10.0 s in nccl-init waiting
 * for rank 2 (never joined)".  Empty when there is none.  Valid until the
 * thread's next call into the library.
 */
const char *rm_last_error(void);

/* ----------------------------------------------------------- rendezvous */

/*
 * A rendezvous lives under a key prefix in the kv table, for example
 * "nccl/tp" (1..40 characters of [A-Za-z0-9._/-]):
 *   PREFIX/uid           the id, published by the root rank
 *   PREFIX/joined/RANK   a rank has arrived
 *   PREFIX/ready/RANK    a rank has finished
 *   PREFIX/failed/RANK   a rank gave up, and why (the rank it blames, its
 *                        error and message)
 * Markers are owned by the rank that wrote them, so a rank that died is told
 * apart from one that never came, and one that gave up from one that died.
 * A prefix is used once per run.
 */
#define RM_BOOTSTRAP_PREFIX_MAX 40
#define RM_BOOTSTRAP_ID_MAX 256

enum rm_rank_state {
        RM_RANK_ABSENT = 0,     /* never joined */
        RM_RANK_JOINED = 1,     /* joined, not finished */
        RM_RANK_READY = 2,      /* finished */
        RM_RANK_DEAD = 3,       /* joined, then died without a word */
        RM_RANK_FAILED = 4,     /* gave up on an error (its own or another rank's) */
        RM_RANK_TIMED_OUT = 5,  /* gave up at its deadline */
};

/* Root: publishes id.  -EEXIST when the prefix already holds one. */
int rm_bootstrap_publish_id(struct rm_worker *w, const char *prefix, uint32_t nranks, const void *id, size_t len);
/*
 * Others: waits for the root's id (-ETIMEDOUT, with rm_last_error() naming
 * the ranks not yet there; -EOWNERDEAD when the root died; -EINVAL when the
 * root published for another number of ranks or another id size).
 */
int rm_bootstrap_fetch_id(struct rm_worker *w, const char *prefix, uint32_t nranks, void *id, size_t len,
                          int64_t timeout_ns);
/* Writes this process's PREFIX/joined/RANK or PREFIX/ready/RANK marker. */
int rm_bootstrap_mark(struct rm_worker *w, const char *prefix, uint32_t rank, enum rm_rank_state state);
/*
 * Writes PREFIX/failed/RANK: state RM_RANK_FAILED or RM_RANK_TIMED_OUT,
 * error (a negative errno), the rank blamed (rank itself for its own
 * failure; -1 for none) and a one-line reason.
 */
int rm_bootstrap_mark_failed(struct rm_worker *w, const char *prefix, uint32_t rank, enum rm_rank_state state,
                             int error, int blamed_rank, const char *reason);
/* Where rank is now, as far as its markers tell (enum rm_rank_state). */
int rm_bootstrap_rank_state(struct rm_worker *w, const char *prefix, uint32_t rank);
/*
 * Writes "waiting for rank 2 (never joined)", "waiting for rank 0 (died),
 * ranks 1,3 (joined, not finished)" or "every other rank finished" for the
 * ranks of 0..nranks-1 other than self.  Returns the number of ranks named.
 */
int rm_bootstrap_describe(struct rm_worker *w, const char *prefix, uint32_t nranks, uint32_t self, char *buf,
                          size_t size);

/*
 * A collective library's non-blocking initialisation, driven with a
 * deadline.  make_id runs on rank 0 only; start begins the initialisation
 * and must not block; poll returns 0 when done, -EINPROGRESS while not, or
 * an error; abort tears a started initialisation down (it is called after a
 * failed or timed-out poll).  librmworker-cuda's rm_nccl_init() is this with
 * NCCL's calls; tests use a fake.
 */
struct rm_collective_ops {
        size_t id_size;                                     /* 1 .. RM_BOOTSTRAP_ID_MAX */
        int (*make_id)(void *ctx, void *id);
        int (*start)(void *ctx, const void *id, uint32_t nranks, uint32_t rank);
        int (*poll)(void *ctx);
        void (*abort)(void *ctx);
};

/*
 * Runs the rendezvous and the initialisation under one deadline, reporting
 * phase to the supervisor meanwhile: marks joined, exchanges the id, starts,
 * polls, and marks ready.  While it polls it watches the other ranks'
 * markers: a rank that died ends the wait with -EOWNERDEAD ("rank 3 died
 * during nccl-init"), one that failed with -ECONNABORTED (or, when that rank
 * blamed another, with its error and message), since the collective can no
 * longer complete.  -ETIMEDOUT when the deadline passes, with
 * rm_last_error() like "timed out after 10.0 s in nccl-init waiting for
 * rank 2 (never joined)".  On every failure it leaves PREFIX/failed/RANK.
 */
int rm_bootstrap_run(struct rm_worker *w, const char *prefix, const char *phase, uint32_t nranks, uint32_t rank,
                     const struct rm_collective_ops *ops, void *ctx, int64_t timeout_ns);

/* ------------------------------------------------------ fd sharing */

/*
 * A rank shares a file descriptor under a key (1..63 of [A-Za-z0-9._/-]);
 * others fetch a duplicate of it with SCM_RIGHTS over the rank's Unix socket
 * RUN_DIR/fd-RANK.sock, served by a thread that starts with the first share.
 * The fetcher must run as the same user and present the token the sharer
 * got back (it travels in a kv record).
 */
#define RM_FD_KEY_MAX 63

/* Shares a duplicate of fd (the caller keeps fd).  Replaces an earlier share of key. */
int rm_fd_share(struct rm_worker *w, const char *key, int fd, uint64_t *ret_token);
/* Stops sharing key (-ENOENT when not shared). */
int rm_fd_unshare(struct rm_worker *w, const char *key);
/*
 * Fetches owner_rank's fd for key.  -ENOENT: not shared (any more);
 * -EACCES: wrong token; -ECONNREFUSED: the owner serves no socket (it
 * exited, or is exiting) or refused to answer; -EBADMSG: the reply was malformed (any fds in it are closed);
 * -ETIMEDOUT.  The fd is O_CLOEXEC.
 */
int rm_fd_fetch(struct rm_worker *w, uint32_t owner_rank, const char *key, uint64_t token, int64_t timeout_ns,
                int *ret_fd);

/* ------------------------------------------------------ tensor records */

#define RM_TENSOR_MAX_DIMS 8
#define RM_TENSOR_NAME_MAX 48                               /* [A-Za-z0-9._/-] */

enum rm_dtype {
        RM_DTYPE_INVALID = 0,
        RM_DTYPE_BOOL = 1,
        RM_DTYPE_U8 = 2,
        RM_DTYPE_I8 = 3,
        RM_DTYPE_U16 = 4,
        RM_DTYPE_I16 = 5,
        RM_DTYPE_U32 = 6,
        RM_DTYPE_I32 = 7,
        RM_DTYPE_U64 = 8,
        RM_DTYPE_I64 = 9,
        RM_DTYPE_F16 = 10,
        RM_DTYPE_BF16 = 11,
        RM_DTYPE_F32 = 12,
        RM_DTYPE_F64 = 13,
        RM_DTYPE_FP8_E4M3 = 14,
        RM_DTYPE_FP8_E5M2 = 15,
};
/* Bytes per element; 0 for an unknown dtype. */
size_t rm_dtype_size(enum rm_dtype dtype);
const char *rm_dtype_name(enum rm_dtype dtype);

enum rm_handle_kind {
        RM_HANDLE_AUTO = 0,                                 /* VMM where the device can, else CUDA IPC */
        RM_HANDLE_CUDA_IPC = 1,                             /* cudaIpcMemHandle_t (cudaMalloc memory) */
        RM_HANDLE_VMM_FD = 2,                               /* cuMemCreate memory, a POSIX fd over SCM_RIGHTS */
};
/* "auto", "cuda-ipc", "vmm-fd"; NULL for an unknown kind. */
const char *rm_handle_kind_name(enum rm_handle_kind kind);
/* The inverse; also accepts "legacy" and "vmm".  -EINVAL when unknown. */
int rm_handle_kind_from_string(const char *s, enum rm_handle_kind *ret_kind);

enum {
        RM_TENSOR_WITHDRAWN = 1u << 0,                      /* the exporter freed it: no handles */
        RM_TENSOR_HAS_EVENT = 1u << 1,                      /* event_handle is valid */
};

/* What "tensor/<name>" holds, decoded. */
struct rm_tensor_record {
        enum rm_handle_kind kind;
        uint32_t flags;
        uint8_t device_uuid[16];                            /* the exporter's GPU */
        int32_t exporter_device;                            /* its index there (for messages only) */
        uint32_t exporter_rank;
        int32_t exporter_pid;
        uint64_t exporter_nonce;                            /* random per exporting process */
        enum rm_dtype dtype;
        uint32_t ndim;
        int64_t shape[RM_TENSOR_MAX_DIMS];
        int64_t strides[RM_TENSOR_MAX_DIMS];                /* in elements, >= 0 */
        uint64_t byte_offset;                               /* of element 0 from the allocation's start */
        uint64_t nbytes;                                    /* bytes from element 0 to past the last */
        uint64_t alloc_size;                                /* bytes the handle maps */
        uint64_t alloc_id;                                  /* new at every allocation of the exporter */
        uint64_t fd_token;                                  /* VMM: rm_fd_fetch()'s token */
        unsigned char mem_handle[64];                       /* CUDA IPC: cudaIpcMemHandle_t */
        unsigned char event_handle[64];                     /* cudaIpcEventHandle_t */
};

/* Bytes an encoded record takes (fits the kv table's 512-byte values). */
#define RM_TENSOR_RECORD_SIZE 352

/*
 * The span of a tensor: bytes from its first element to past its last
 * (0 for an empty one).  -EINVAL for an unknown dtype, a bad ndim or
 * negative sizes, -EOVERFLOW when it does not fit 64 bits.
 */
int rm_tensor_span(enum rm_dtype dtype, uint32_t ndim, const int64_t *shape, const int64_t *strides,
                   uint64_t *ret_nbytes);
/* Checks a record for consistency: kind, dtype, shape within the allocation... (-EBADMSG). */
int rm_tensor_record_validate(const struct rm_tensor_record *r);
/* Encodes a valid record into buf; returns RM_TENSOR_RECORD_SIZE.  -ENOBUFS when size is too small. */
int rm_tensor_record_encode(const struct rm_tensor_record *r, void *buf, size_t size);
/*
 * Decodes and validates.  -EBADMSG: not a tensor record, or an inconsistent
 * one; -EPROTO: a record of another format version.
 */
int rm_tensor_record_decode(const void *buf, size_t len, struct rm_tensor_record *ret);
/* "tensor/<name>" into key (64 bytes); -EINVAL for a bad name. */
int rm_tensor_key(const char *name, char key[64]);

#ifdef __cplusplus
}
#endif

#endif

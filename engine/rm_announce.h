/* SPDX-License-Identifier: MIT */
#ifndef RM_ANNOUNCE_H
#define RM_ANNOUNCE_H

/*
 * A worker that an engine starts itself (a native TP worker, a helper
 * process) announcing itself to ringmaster, so that the supervisor names
 * it, captures its output apart from its parent's, times it and diagnoses
 * it.  Python workers need none of this: ringmaster's start-up hook does it
 * for every Python process.  The protocol is docs/spawned-workers.md's.
 *
 *   rm_announce("tp-worker", 2, RM_ANNOUNCE_CAPTURE);  X_RINGMASTER_WORKER=native, its
 *                                                      parent, command line, name, index;
 *                                                      and its own output pipes
 *   rm_announce_group("tcp://10.0.0.1:29500", 2, 4);   member 2 of a group of 4
 *   rm_announce_exit(3);                               the status it is about to exit with
 *
 * Returns: 1 when the datagram was sent, 2 when rm_announce() also switched
 * fds 1 and 2 to pipes of the worker's own (the supervisor said yes); 0
 * when no notify socket is set (RINGMASTER_NOTIFY_SOCKET or NOTIFY_SOCKET:
 * not under ringmaster); a negative errno otherwise (-EINVAL for an invalid
 * argument, checked whether or not a socket is set).
 *
 * RM_ANNOUNCE_CAPTURE asks for the capture only when the supervisor offers
 * it (RINGMASTER_WORKER_CAPTURE=1) and the process is not captured yet
 * (RINGMASTER_WORKER_CAPTURED is not its pid).  The call makes three pipes,
 * sends the read ends and an acknowledgement pipe, and waits at most
 * RM_ANNOUNCE_ACK_TIMEOUT_MS for the supervisor's answer; on yes it flushes
 * stdout and stderr, dup2()s the write ends onto fds 1 and 2 and sets
 * RINGMASTER_WORKER_CAPTURED (setenv(): call it before starting threads);
 * on no, or no answer, fds 1 and 2 stay as they were and it returns 1.
 * Without the capture, rm_announce() waits (rm_notify_barrier(), at most
 * the same 2 s) until the supervisor took the datagram: it reads the
 * worker's /proc entry, which a worker that ends at once would take away.
 *
 * Arguments: name NULL or 1..64 bytes (control characters become '?');
 * index -1 (none) or >= 0; key 1..128 bytes; 0 <= rank < world.
 */

#ifdef __cplusplus
extern "C" {
#endif

#define RM_ANNOUNCE_CAPTURE 1u

/*
 * The wire (docs/spawned-workers.md): the supervisor's parser
 * (supervisor/worker-message.c) and ringmaster.worker use these too
 * (tests/python/test_notify_contract.py checks the Python side's).
 */
#define RM_ANNOUNCE_ACK_TIMEOUT_MS 2000         /* the longest wait for the supervisor's 'Y' or 'N' */
#define RM_ANNOUNCE_ARGV_MAX 256                /* bytes of the command line's summary */
#define RM_ANNOUNCE_NAME_MAX 64
#define RM_ANNOUNCE_GROUP_KEY_MAX 128
#define RM_ANNOUNCE_EXCEPTION_MAX 1024          /* the supervisor takes this much; the hook sends 200 */
#define RM_ANNOUNCE_GROUP_WORLD_MAX 65536

#define RM_ANNOUNCE_KEY_WORKER "X_RINGMASTER_WORKER"             /* python | native: an announcement */
#define RM_ANNOUNCE_KEY_PPID "X_RINGMASTER_WORKER_PPID"
#define RM_ANNOUNCE_KEY_ARGV "X_RINGMASTER_WORKER_ARGV"
#define RM_ANNOUNCE_KEY_NAME "X_RINGMASTER_WORKER_NAME"
#define RM_ANNOUNCE_KEY_INDEX "X_RINGMASTER_WORKER_INDEX"
#define RM_ANNOUNCE_KEY_CAPTURE "X_RINGMASTER_CAPTURE"            /* 1: three descriptors come with it */
#define RM_ANNOUNCE_KEY_GROUP "X_RINGMASTER_GROUP"
#define RM_ANNOUNCE_KEY_GROUP_RANK "X_RINGMASTER_GROUP_RANK"
#define RM_ANNOUNCE_KEY_GROUP_WORLD "X_RINGMASTER_GROUP_WORLD"
#define RM_ANNOUNCE_KEY_EXIT "X_RINGMASTER_WORKER_EXIT"
#define RM_ANNOUNCE_KEY_EXCEPTION "X_RINGMASTER_WORKER_EXCEPTION"
#define RM_ANNOUNCE_KEY_EXEC "X_RINGMASTER_WORKER_EXEC"

/* Set by the supervisor when it takes workers' pipes; set by a worker once its fds 1 and 2 are its own. */
#define RM_ANNOUNCE_CAPTURE_ENV "RINGMASTER_WORKER_CAPTURE"
#define RM_ANNOUNCE_CAPTURED_ENV "RINGMASTER_WORKER_CAPTURED"

int rm_announce(const char *name, int index, unsigned flags);
int rm_announce_group(const char *key, int rank, int world);
int rm_announce_exit(int status);

#ifdef __cplusplus
}
#endif

#endif

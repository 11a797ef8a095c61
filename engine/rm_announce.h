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
 *
 * Arguments: name NULL or 1..64 bytes (control characters become '?');
 * index -1 (none) or >= 0; key 1..128 bytes; 0 <= rank < world.
 */

#ifdef __cplusplus
extern "C" {
#endif

#define RM_ANNOUNCE_CAPTURE 1u
#define RM_ANNOUNCE_ACK_TIMEOUT_MS 2000
#define RM_ANNOUNCE_ARGV_MAX 256
#define RM_ANNOUNCE_NAME_MAX 64
#define RM_ANNOUNCE_GROUP_KEY_MAX 128

int rm_announce(const char *name, int index, unsigned flags);
int rm_announce_group(const char *key, int rank, int world);
int rm_announce_exit(int status);

#ifdef __cplusplus
}
#endif

#endif

/* SPDX-License-Identifier: MIT */
#ifndef RM_NOTIFY_H
#define RM_NOTIFY_H

/*
 * Telling ringmaster how a worker is doing: systemd's sd_notify protocol,
 * plus ringmaster's phase and progress keys.  No libsystemd needed.
 *
 *   rm_phase("load-weights");          X_RINGMASTER_PHASE=load-weights
 *   rm_progress(3, 10);                X_RINGMASTER_PROGRESS=3/10
 *   rm_phase_end("load-weights");      X_RINGMASTER_PHASE_END=load-weights
 *   rm_ready();                        READY=1
 *   rm_heartbeat();                    WATCHDOG=1 (for ringmaster run --watchdog)
 *   rm_status("%d/%d shards", i, n);   STATUS=3/10 shards
 *   rm_extend_timeout(30000000);       EXTEND_TIMEOUT_USEC=30000000
 *   rm_stopping();                     STOPPING=1
 *   rm_notify_errno(EIO);              ERRNO=5
 *   rm_notify("READY=1\nSTATUS=up");   as it is (sd_notify(3))
 *   rm_notify_barrier(5000000);        wait until the receiver has read all of the above
 *
 * Each call sends one datagram to the Unix datagram socket named by
 * RINGMASTER_NOTIFY_SOCKET, else NOTIFY_SOCKET (an absolute path, or
 * "@name" for the abstract namespace), so a program under systemd
 * (Type=notify) is understood the same way.  `ringmaster run` sets both.
 *
 * Returns: 1 when the datagram was sent; 0 when neither variable is set
 * (not under ringmaster or systemd: the call only reads the environment);
 * a negative errno otherwise, e.g. -EINVAL for an invalid argument (checked
 * whether or not a socket is set, so that a mistake shows outside
 * ringmaster too), -EAGAIN when the receiver's queue stayed full for
 * RM_NOTIFY_SEND_TIMEOUT_MS (a state change: RM_NOTIFY_STATE_SEND_TIMEOUT_MS;
 * the datagram is dropped), -ECONNREFUSED or
 * -ENOENT when nobody listens there.
 *
 * Thread-safe and fork-safe: one socket per process, opened on first use
 * and shared by every thread (each datagram goes out whole); a forked child
 * keeps using it, and the receiver tells the processes apart by their
 * credentials.  The library never prints.
 *
 * Arguments: a phase name is 1..64 of [A-Za-z0-9._-]; a status is one line
 * (no newline), cut to RM_NOTIFY_STATUS_MAX bytes at a character boundary;
 * 0 <= done <= total and total >= 1.
 */

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The wire contract, in one place: this library, ringmaster's receiver
 * (supervisor/notify.h, notify-parse.c) and the Python package
 * (ringmaster/worker.py, whose constants tests/python/test_notify_contract.py
 * checks against these lines) all use these.
 */
/* The largest datagram ringmaster takes; a longer one is dropped (rm_notify(): -EMSGSIZE). */
#define RM_NOTIFY_DATAGRAM_MAX 4096
/* A phase name: 1..RM_NOTIFY_PHASE_NAME_MAX of [A-Za-z0-9._-]. */
#define RM_NOTIFY_PHASE_NAME_MAX 64
#define RM_NOTIFY_STATUS_MAX 1024
/* How long a call waits for room in the receiver's queue (ringmaster.worker.SEND_TIMEOUT, in seconds). */
#define RM_NOTIFY_SEND_TIMEOUT_MS 2000
/*
 * The same for a state change the receiver must not miss (READY, STOPPING,
 * ERRNO, a phase's begin or end, EXTEND_TIMEOUT_USEC, anything but STATUS,
 * WATCHDOG=1 and progress, which the next one replaces): a supervisor that
 * is stopped for a while (SIGSTOP, a debugger) must not make a healthy job
 * fail for a lost READY=1.  Replaceable ones keep RM_NOTIFY_SEND_TIMEOUT_MS.
 */
#define RM_NOTIFY_STATE_SEND_TIMEOUT_MS 60000
/* ringmaster's keys, beside systemd's (READY, STATUS, WATCHDOG, ...). */
#define RM_NOTIFY_KEY_PHASE "X_RINGMASTER_PHASE"
#define RM_NOTIFY_KEY_PHASE_END "X_RINGMASTER_PHASE_END"
#define RM_NOTIFY_KEY_PROGRESS "X_RINGMASTER_PROGRESS"
/* Where the socket is: this variable, else NOTIFY_SOCKET (systemd's). */
#define RM_NOTIFY_SOCKET_ENV "RINGMASTER_NOTIFY_SOCKET"

int rm_phase(const char *name);
int rm_phase_end(const char *name);
int rm_progress(uint64_t done, uint64_t total);
int rm_ready(void);
int rm_heartbeat(void);
int rm_status(const char *format, ...) __attribute__((format(printf, 1, 2)));
int rm_extend_timeout(uint64_t usec);
int rm_stopping(void);
int rm_notify_errno(int error);
/* KEY=VALUE lines separated by '\n', sent as they are (at most 4096 bytes). */
int rm_notify(const char *state);

/*
 * Waits until the receiver has read every datagram this process sent
 * before (sd_notify_barrier(3)'s protocol: BARRIER=1 with a pipe that the
 * receiver closes), at most timeout_usec.  A process that is not the rank
 * itself (a child or a helper) and exits right after notifying must call it
 * before exiting: ringmaster tells whose datagram it is from the sender's
 * ancestry, which it cannot read once the sender is gone.  1 when done, 0
 * without a socket, -ETIMEDOUT, or another negative errno.
 */
int rm_notify_barrier(uint64_t timeout_usec);

/* 1 when a notify socket is set (the calls send), else 0. */
int rm_notify_enabled(void);

#ifdef __cplusplus
}
#endif

#endif

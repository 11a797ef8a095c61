/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_NOTIFY_H
#define RINGMASTER_NOTIFY_H

/*
 * The notify protocol: systemd's sd_notify datagrams, which the workers send
 * to a socket in the run directory (NOTIFY_SOCKET, RINGMASTER_NOTIFY_SOCKET).
 *
 * Two parts:
 *   - notify_parse(): a pure function from a datagram's bytes to the keys it
 *     sets (fuzzed: tests/supervisor/fuzz-notify.c);
 *   - struct notify_server: the socket, its sd-event IO source, and the
 *     mapping of a sender (its pid, from SCM_CREDENTIALS) to a rank: the
 *     rank's own process or a descendant of it.  What cannot be mapped or
 *     parsed is dropped and counted, never trusted.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

#include "rm_notify.h"

/* The wire's limits are the workers' (rm_notify.h). */
/* The largest datagram taken; a longer one is dropped (MSG_TRUNC tells). */
#define NOTIFY_DATAGRAM_MAX RM_NOTIFY_DATAGRAM_MAX
/* A phase name: 1..64 of [A-Za-z0-9._-] (names.h). */
#define NOTIFY_PHASE_NAME_MAX RM_NOTIFY_PHASE_NAME_MAX

/* ------------------------------------------------------------ the parser */

enum notify_key {
        NOTIFY_READY = 1u << 0,          /* READY=1 */
        NOTIFY_STATUS = 1u << 1,         /* STATUS=text (one line; may be empty) */
        NOTIFY_WATCHDOG = 1u << 2,       /* WATCHDOG=1 */
        NOTIFY_WATCHDOG_TRIGGER = 1u << 3, /* WATCHDOG=trigger */
        NOTIFY_EXTEND_TIMEOUT = 1u << 4, /* EXTEND_TIMEOUT_USEC=N */
        NOTIFY_STOPPING = 1u << 5,       /* STOPPING=1 */
        NOTIFY_ERRNO = 1u << 6,          /* ERRNO=N */
        NOTIFY_PHASE = 1u << 7,          /* X_RINGMASTER_PHASE=name */
        NOTIFY_PHASE_END = 1u << 8,      /* X_RINGMASTER_PHASE_END=name */
        NOTIFY_PROGRESS = 1u << 9,       /* X_RINGMASTER_PROGRESS=done/total */
};

struct notify_message {
        unsigned keys;                   /* enum notify_key bits: what the datagram set */
        unsigned unknown_keys;           /* well-formed lines with other keys (ignored, as systemd does) */
        bool phase_end_first;            /* both PHASE and PHASE_END, the end on the earlier line */
        uint64_t extend_timeout_usec;
        int errno_value;
        uint64_t progress_done, progress_total;
        char phase[NOTIFY_PHASE_NAME_MAX + 1];
        char phase_end[NOTIFY_PHASE_NAME_MAX + 1];
        char status[NOTIFY_DATAGRAM_MAX + 1];
};

/*
 * Parses one datagram.  Its lines are separated by '\n' (a last '\n' and
 * empty lines are allowed); each is KEY=VALUE, KEY 1..64 of [A-Za-z0-9_]
 * not starting with a digit.  A key given twice: the last one counts.
 * Returns 0, or (nothing written to ret):
 *   -EMSGSIZE  longer than NOTIFY_DATAGRAM_MAX
 *   -ENODATA   empty, or only empty lines
 *   -EILSEQ    not UTF-8, or a NUL or control character (but tab)
 *   -EBADMSG   a line that is not KEY=VALUE
 *   -EINVAL    a known key with a value it does not take (READY=2, a bad
 *              phase name, PROGRESS=5/3, a number out of range...)
 */
int notify_parse(const void *data, size_t size, struct notify_message *ret);

/* ------------------------------------------------------------ the socket */

/* Why a datagram was dropped (the report's "notify" object counts each). */
enum notify_drop {
        NOTIFY_DROP_NO_CREDENTIALS,      /* no SCM_CREDENTIALS, or control data cut */
        NOTIFY_DROP_UNKNOWN_SENDER,      /* neither a rank nor a descendant of one (or gone) */
        NOTIFY_DROP_OVERSIZED,           /* > NOTIFY_DATAGRAM_MAX */
        NOTIFY_DROP_WITH_FDS,            /* carried SCM_RIGHTS (closed) */
        NOTIFY_DROP_NOT_UTF8,            /* -EILSEQ */
        NOTIFY_DROP_MALFORMED,           /* -ENODATA, -EBADMSG, -EINVAL */
        _NOTIFY_DROP_MAX,
};

const char *notify_drop_name(enum notify_drop d);

struct notify_stats {
        uint64_t received;               /* datagrams read */
        uint64_t accepted;               /* parsed and given to a rank */
        uint64_t barriers;               /* BARRIER=1 with one fd (sd_notify_barrier): the fd closed */
        uint64_t dropped[_NOTIFY_DROP_MAX];
};

struct notify_callbacks {
        /*
         * The rank whose live process is exactly pid, or -1.  The server
         * walks a sender's ancestors (/proc/PID/stat) through it.
         */
        int (*rank_of_pid)(pid_t pid, void *userdata);
        /* A datagram from (a descendant of) rank, parsed. */
        void (*message)(int rank, pid_t sender, const struct notify_message *m, void *userdata);
        /*
         * A parsed datagram's raw bytes, before message(): a spawned worker's
         * announcement, group or end (job-workers.h).  With X_RINGMASTER_CAPTURE=1
         * the datagram's three descriptors come along (n_fds 3), taken over by
         * the callback; no others ever do.  NULL: none (descriptors closed).
         */
        void (*worker)(int rank, pid_t sender, const void *data, size_t size, int *fds, size_t n_fds,
                       void *userdata);
        /* After each wake-up's datagrams (re-arm timers once, not per datagram). */
        void (*drained)(void *userdata);
};

struct notify_server;

/*
 * Binds a SOCK_DGRAM socket at dir/notify (SO_PASSCRED, a large receive
 * buffer) and watches it.  When that path is too long for a socket address,
 * an abstract name "@ringmaster/<run_id>/<random>/notify" is used instead
 * (credentials still decide who may speak).
 */
int notify_server_new(sd_event *event, const char *dir, const char *run_id, const struct notify_callbacks *cb,
                      void *userdata, struct notify_server **ret);
struct notify_server *notify_server_free(struct notify_server *s);

/* The address for NOTIFY_SOCKET: an absolute path, or "@name". */
const char *notify_server_address(const struct notify_server *s);
const struct notify_stats *notify_server_stats(const struct notify_server *s);
/* Forgets the descendants it mapped (a new attempt's ranks are other processes). */
void notify_server_forget_senders(struct notify_server *s);
/* Reads what is queued now, without the drained callback (the IO source reads on its own; this is for the end of an attempt). */
void notify_server_drain(struct notify_server *s);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef RM_NOTIFY_INTERNAL_H
#define RM_NOTIFY_INTERNAL_H

/*
 * The one sender of notify datagrams in librmworker (engine/notify.c), for
 * rm_notify.h's calls and rm_announce.h's (engine/announce.c).  Not
 * exported from the library.
 */

#include <stddef.h>

/* The most descriptors a datagram carries: a capture request's three (docs/spawned-workers.md). */
#define RM_NOTIFY_FDS_MAX 3

/*
 * One datagram of len bytes to $RINGMASTER_NOTIFY_SOCKET or $NOTIFY_SOCKET,
 * with n_fds descriptors attached (SCM_RIGHTS), waiting at most
 * RM_NOTIFY_SEND_TIMEOUT_MS for room.  1 sent, 0 no socket set, < 0 a
 * negative errno (-EAGAIN: the receiver's queue stayed full).
 */
__attribute__((visibility("hidden"))) int rmpriv_notify_send(const char *text, size_t len, const int *fds,
                                                            size_t n_fds);

#endif

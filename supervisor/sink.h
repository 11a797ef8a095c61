/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_SINK_H
#define RINGMASTER_SINK_H

/*
 * A sink is one of the supervisor's own output streams (its stdout or its
 * stderr) seen as a bounded queue of whole lines.  Writing never blocks the
 * event loop: a pipe, FIFO or terminal is reopened through /proc/self/fd in
 * non-blocking mode (a private open file description, so the flags of the
 * one shared with the shell are left alone), a socket is written with
 * MSG_DONTWAIT.  Lines are queued and written together after each loop
 * iteration (a post source); what the reader does not take yet waits in the
 * queue until an EPOLLOUT event.  A line that does not fit is refused
 * (-ENOBUFS): the caller drops it and counts it.  Regular files and
 * character devices that are not terminals (/dev/null) are written with
 * blocking writes: slow at worst, never stuck, so nothing is dropped there.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <systemd/sd-event.h>

struct sink;

/* Wraps fd (not taken over: the sink may reopen it).  capacity: queue bytes. */
int sink_new(sd_event *event, int fd, size_t capacity, struct sink **ret);
struct sink *sink_free(struct sink *s);

/*
 * Queues the concatenation of iov as one unit, whole or not at all.
 * Returns 0, or -ENOBUFS when it does not fit.  reserved: may also use a
 * small reserve past the capacity (the supervisor's own messages and the
 * report, so that a flood of worker output does not crowd them out).
 */
int sink_write_line(struct sink *s, const struct iovec *iov, int n, bool reserved);

/* Whether n more bytes fit now. */
bool sink_has_room(const struct sink *s, size_t n);

/*
 * hook(s, userdata) runs before each line is queued, and may queue lines of
 * its own first (it is not called again for those): the live status table
 * (status.c) erases itself there, so that lines scroll above it.  NULL: none.
 */
void sink_set_line_hook(struct sink *s, void (*hook)(struct sink *s, void *userdata), void *userdata);

/* Writes out what is queued, waiting at most timeout_usec for a slow reader. */
int sink_flush(struct sink *s, uint64_t timeout_usec);

/* Bytes the supervisor could not write because the reader went away. */
uint64_t sink_lost_bytes(const struct sink *s);

#endif

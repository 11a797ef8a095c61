/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_JOURNAL_H
#define RINGMASTER_JOURNAL_H

/*
 * Worker lines to journald, with structured fields: MESSAGE, PRIORITY
 * (6 for stdout, 5 for stderr), RINGMASTER_RUN, RANK, PID (the worker's),
 * STREAM (stdout or stderr), SYSLOG_IDENTIFIER and SYSLOG_PID.
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Whether fd is the journal's stream: JOURNAL_STREAM ("DEV:INODE", decimal)
 * names its device and inode.  -EINVAL when JOURNAL_STREAM is malformed.
 */
int journal_stream_matches(int fd);

int journal_send_line(const char *run_id, const char *ident, int rank, pid_t pid, bool is_stderr,
                      const char *line, size_t len);

#endif

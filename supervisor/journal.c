/* SPDX-License-Identifier: MIT */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <systemd/sd-journal.h>

#include "journal.h"
#include "util.h"

int journal_stream_matches(int fd) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        int consumed = 0;

        if (!e || !*e)
                return 0;
        if (sscanf(e, "%llu:%llu%n", &dev, &ino, &consumed) != 2 || (size_t) consumed != strlen(e))
                return -EINVAL;
        if (fstat(fd, &st) < 0)
                return -errno;
        return (uint64_t) st.st_dev == dev && (uint64_t) st.st_ino == ino;
}

int journal_send_line(const char *run_id, const char *ident, int rank, pid_t pid, bool is_stderr,
                      const char *line, size_t len) {
        char priority[16], run[96], rank_field[32], pid_field[32], stream[16], id[96], syslog_pid[32];
        struct iovec iov[8];
        _cleanup_free_ char *message = NULL;

        message = malloc(len + sizeof("MESSAGE="));
        if (!message)
                return -ENOMEM;
        memcpy(message, "MESSAGE=", 8);
        memcpy(message + 8, line, len);

        snprintf(priority, sizeof(priority), "PRIORITY=%d", is_stderr ? 5 : 6);
        snprintf(run, sizeof(run), "RINGMASTER_RUN=%s", run_id);
        snprintf(rank_field, sizeof(rank_field), "RANK=%d", rank);
        snprintf(pid_field, sizeof(pid_field), "PID=%d", (int) pid);
        snprintf(stream, sizeof(stream), "STREAM=%s", is_stderr ? "stderr" : "stdout");
        snprintf(id, sizeof(id), "SYSLOG_IDENTIFIER=%s", ident);
        snprintf(syslog_pid, sizeof(syslog_pid), "SYSLOG_PID=%d", (int) pid);

        iov[0] = (struct iovec) { message, len + 8 };
        iov[1] = (struct iovec) { priority, strlen(priority) };
        iov[2] = (struct iovec) { run, strlen(run) };
        iov[3] = (struct iovec) { rank_field, strlen(rank_field) };
        iov[4] = (struct iovec) { pid_field, strlen(pid_field) };
        iov[5] = (struct iovec) { stream, strlen(stream) };
        iov[6] = (struct iovec) { id, strlen(id) };
        iov[7] = (struct iovec) { syslog_pid, strlen(syslog_pid) };
        return sd_journal_sendv(iov, 8);
}

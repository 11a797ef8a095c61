/* SPDX-License-Identifier: MIT */
/*
 * notify_parse(): every key with its exact result, the edge of each rule
 * (sizes, UTF-8, keys, values), and that a failure leaves the output alone.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "notify.h"

#include "unit.h"

static struct notify_message m;

static int parse_n(const char *data, size_t n) {
        memset(&m, 0xaa, sizeof(m));
        return notify_parse(data, n, &m);
}

static int parse(const char *text) {
        return parse_n(text, strlen(text));
}

/* A failure must not touch the output. */
static void expect_error(const char *data, size_t n, int error, const char *what) {
        struct notify_message before;
        int r;

        memset(&m, 0xaa, sizeof(m));
        before = m;
        r = notify_parse(data, n, &m);
        CHECK(r == error, "%s: got %d (%s), want %d (%s)", what, r, strerror(-r), error, strerror(-error));
        CHECK(memcmp(&before, &m, sizeof(m)) == 0, "%s: the output was written on failure", what);
}

#define EXPECT_ERROR(text, error) expect_error(text, sizeof(text) - 1, error, #text)

int main(void) {
        char big[NOTIFY_DATAGRAM_MAX + 2];

        /* Each key. */
        CHECK(parse("READY=1") == 0 && m.keys == NOTIFY_READY && m.unknown_keys == 0, "READY=1");
        CHECK(parse("STATUS=loading 3/10 shards") == 0 && m.keys == NOTIFY_STATUS &&
              strcmp(m.status, "loading 3/10 shards") == 0, "STATUS");
        CHECK(parse("STATUS=") == 0 && m.keys == NOTIFY_STATUS && m.status[0] == 0, "an empty STATUS clears it");
        CHECK(parse("WATCHDOG=1") == 0 && m.keys == NOTIFY_WATCHDOG, "WATCHDOG=1");
        CHECK(parse("WATCHDOG=trigger") == 0 && m.keys == NOTIFY_WATCHDOG_TRIGGER, "WATCHDOG=trigger");
        CHECK(parse("EXTEND_TIMEOUT_USEC=30000000") == 0 && m.keys == NOTIFY_EXTEND_TIMEOUT &&
              m.extend_timeout_usec == 30000000, "EXTEND_TIMEOUT_USEC");
        CHECK(parse("EXTEND_TIMEOUT_USEC=18446744073709551615") == 0 && m.extend_timeout_usec == UINT64_MAX,
              "EXTEND_TIMEOUT_USEC at UINT64_MAX");
        CHECK(parse("STOPPING=1") == 0 && m.keys == NOTIFY_STOPPING, "STOPPING=1");
        CHECK(parse("ERRNO=5") == 0 && m.keys == NOTIFY_ERRNO && m.errno_value == 5, "ERRNO=5");
        CHECK(parse("ERRNO=0") == 0 && m.errno_value == 0, "ERRNO=0");
        CHECK(parse("X_RINGMASTER_PHASE=nccl-init") == 0 && m.keys == NOTIFY_PHASE && strcmp(m.phase, "nccl-init") == 0,
              "PHASE");
        CHECK(parse("X_RINGMASTER_PHASE_END=load-weights") == 0 && m.keys == NOTIFY_PHASE_END &&
              strcmp(m.phase_end, "load-weights") == 0, "PHASE_END");
        CHECK(parse("X_RINGMASTER_PROGRESS=3/10") == 0 && m.keys == NOTIFY_PROGRESS && m.progress_done == 3 &&
              m.progress_total == 10, "PROGRESS");
        CHECK(parse("X_RINGMASTER_PROGRESS=0/1") == 0 && m.progress_done == 0 && m.progress_total == 1, "PROGRESS 0/1");
        CHECK(parse("X_RINGMASTER_PROGRESS=7/7") == 0, "PROGRESS done == total");

        /* Several keys, unknown keys ignored (systemd's rule), a last newline, empty lines. */
        CHECK(parse("READY=1\nSTATUS=up\nMAINPID=42\nX_OTHER=x\n") == 0 && m.keys == (NOTIFY_READY | NOTIFY_STATUS) &&
              m.unknown_keys == 2 && strcmp(m.status, "up") == 0, "several keys, two unknown");
        CHECK(parse("\n\nREADY=1\n\n") == 0 && m.keys == NOTIFY_READY, "empty lines");
        CHECK(parse("FDSTORE=1\nRELOADING=1") == 0 && m.keys == 0 && m.unknown_keys == 2, "only unknown keys");
        CHECK(parse("lower_case=1") == 0 && m.unknown_keys == 1, "a lower-case key is a key");
        /* The last one counts. */
        CHECK(parse("STATUS=a\nSTATUS=b") == 0 && strcmp(m.status, "b") == 0, "the last STATUS counts");
        /* A phase's end and the next phase: the order is kept. */
        CHECK(parse("X_RINGMASTER_PHASE_END=a\nX_RINGMASTER_PHASE=b") == 0 && m.phase_end_first &&
              strcmp(m.phase, "b") == 0 && strcmp(m.phase_end, "a") == 0, "end, then phase");
        CHECK(parse("X_RINGMASTER_PHASE=a\nX_RINGMASTER_PHASE_END=a") == 0 && !m.phase_end_first,
              "phase, then its end");
        /* Values: '=' inside the value, UTF-8 and tabs in a status, controls made harmless. */
        CHECK(parse("STATUS=a=b") == 0 && strcmp(m.status, "a=b") == 0, "'=' in a value");
        CHECK(parse("STATUS=caf\xc3\xa9 \xe2\x9c\x93\tok") == 0 && strcmp(m.status, "caf\xc3\xa9 \xe2\x9c\x93\tok") == 0,
              "UTF-8 and a tab kept");
        CHECK(parse("STATUS=\x1b[2Jgone\r") == 0 && strcmp(m.status, "?[2Jgone?") == 0, "controls become '?'");
        CHECK(parse("X_RINGMASTER_PHASE=A.b_c-9") == 0, "phase name characters");

        /* Sizes. */
        memset(big, 'x', sizeof(big));
        memcpy(big, "STATUS=", 7);
        CHECK(parse_n(big, NOTIFY_DATAGRAM_MAX) == 0 && strlen(m.status) == NOTIFY_DATAGRAM_MAX - 7,
              "exactly 4096 bytes");
        expect_error(big, NOTIFY_DATAGRAM_MAX + 1, -EMSGSIZE, "4097 bytes");
        expect_error("", 0, -ENODATA, "empty");
        EXPECT_ERROR("\n\n", -ENODATA);

        /* Not UTF-8. */
        EXPECT_ERROR("STATUS=\xff", -EILSEQ);
        EXPECT_ERROR("STATUS=\xc3", -EILSEQ);             /* cut sequence */
        EXPECT_ERROR("STATUS=\xc0\xaf", -EILSEQ);         /* overlong '/' */
        EXPECT_ERROR("STATUS=\xe0\x80\xaf", -EILSEQ);     /* overlong, 3 bytes */
        EXPECT_ERROR("STATUS=\xed\xa0\x80", -EILSEQ);     /* a surrogate */
        EXPECT_ERROR("STATUS=\xf4\x90\x80\x80", -EILSEQ); /* past U+10FFFF */
        EXPECT_ERROR("STATUS=\x80", -EILSEQ);             /* a lone continuation byte */
        CHECK(parse("STATUS=\xf4\x8f\xbf\xbf") == 0, "U+10FFFF is fine");

        /* Malformed lines. */
        EXPECT_ERROR("READY", -EBADMSG);
        EXPECT_ERROR("READY=1\nnonsense", -EBADMSG);
        EXPECT_ERROR("=1", -EBADMSG);
        EXPECT_ERROR("1READY=1", -EBADMSG);
        EXPECT_ERROR("RE ADY=1", -EBADMSG);
        EXPECT_ERROR("READY-1=1", -EBADMSG);
        EXPECT_ERROR("READY=1\0X=1", -EBADMSG);
        memset(big, 'K', 65);
        memcpy(big + 65, "=1", 2);
        expect_error(big, 67, -EBADMSG, "a key of 65 characters");
        CHECK(parse_n(big + 1, 66) == 0 && m.unknown_keys == 1, "a key of 64 characters");

        /* Values a known key does not take. */
        EXPECT_ERROR("READY=2", -EINVAL);
        EXPECT_ERROR("READY=", -EINVAL);
        EXPECT_ERROR("READY=1 ", -EINVAL);
        EXPECT_ERROR("STOPPING=yes", -EINVAL);
        EXPECT_ERROR("WATCHDOG=0", -EINVAL);
        EXPECT_ERROR("EXTEND_TIMEOUT_USEC=", -EINVAL);
        EXPECT_ERROR("EXTEND_TIMEOUT_USEC=-1", -EINVAL);
        EXPECT_ERROR("EXTEND_TIMEOUT_USEC=+5", -EINVAL);
        EXPECT_ERROR("EXTEND_TIMEOUT_USEC=18446744073709551616", -EINVAL);
        EXPECT_ERROR("ERRNO=2147483648", -EINVAL);
        EXPECT_ERROR("ERRNO=x", -EINVAL);
        EXPECT_ERROR("X_RINGMASTER_PHASE=", -EINVAL);
        EXPECT_ERROR("X_RINGMASTER_PHASE=has space", -EINVAL);
        EXPECT_ERROR("X_RINGMASTER_PHASE=a/b", -EINVAL);
        memcpy(big, "X_RINGMASTER_PHASE=", 19);
        memset(big + 19, 'p', 65);
        expect_error(big, 19 + 65, -EINVAL, "a phase name of 65 characters");
        CHECK(parse_n(big, 19 + 64) == 0 && strlen(m.phase) == 64, "a phase name of 64 characters");
        EXPECT_ERROR("X_RINGMASTER_PHASE_END=caf\xc3\xa9", -EINVAL);
        EXPECT_ERROR("X_RINGMASTER_PROGRESS=3", -EINVAL);
        EXPECT_ERROR("X_RINGMASTER_PROGRESS=5/3", -EINVAL);
        EXPECT_ERROR("X_RINGMASTER_PROGRESS=0/0", -EINVAL);
        EXPECT_ERROR("X_RINGMASTER_PROGRESS=/3", -EINVAL);
        EXPECT_ERROR("X_RINGMASTER_PROGRESS=1/", -EINVAL);
        EXPECT_ERROR("X_RINGMASTER_PROGRESS=1/2/3", -EINVAL);
        /* One bad line spoils the datagram: nothing of it is applied. */
        EXPECT_ERROR("READY=1\nREADY=2", -EINVAL);

        CHECK(rm_name_valid_len("warmup", 6, NOTIFY_PHASE_NAME_MAX, false) &&
              !rm_name_valid_len("", 0, NOTIFY_PHASE_NAME_MAX, false) &&
              !rm_name_valid_len("a b", 3, NOTIFY_PHASE_NAME_MAX, false) &&
              !rm_name_valid_len("a/b", 3, NOTIFY_PHASE_NAME_MAX, false) &&
              rm_name_valid_len("a/b", 3, NOTIFY_PHASE_NAME_MAX, true), "rm_name_valid_len (names.h)");

        if (failures) {
                printf("%d failure(s)\n", failures);
                return 1;
        }
        printf("notify_parse: all checks passed\n");
        return 0;
}

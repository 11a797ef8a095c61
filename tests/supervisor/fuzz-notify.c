/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: notify_parse() on any bytes (a datagram a worker, or anyone
 * who can reach the socket, sends).
 *
 * Beyond "no crash, no read outside the input" (the sanitizers), oracles:
 *   - a failure is one of the documented errors and writes nothing;
 *   - a success obeys the documented ranges (phase names, progress, no
 *     control characters in the status but tab);
 *   - re-serialising the parsed keys and parsing that again gives the same
 *     message (what the supervisor acts on is exactly what was said).
 *
 * Built as a libFuzzer target by `make fuzz`, and into
 * tests/supervisor/fuzz-notify-replay, which runs the seed corpus
 * (tests/supervisor/notify-corpus/) in `make check`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "notify.h"
#include "worker-message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what) {
        fprintf(stderr, "fuzz-notify: %s\n", what);
        abort();
}

static bool name_ok(const char *s) {
        return rm_name_valid_len(s, strlen(s), NOTIFY_PHASE_NAME_MAX, false) && strlen(s) <= NOTIFY_PHASE_NAME_MAX;
}

/* The message as a datagram again (known keys only), in an order that keeps phase_end_first. */
static size_t serialise(const struct notify_message *m, char *out, size_t size) {
        size_t n = 0;

#define ADD(...) n += (size_t) snprintf(out + n, n < size ? size - n : 0, __VA_ARGS__)
        if ((m->keys & NOTIFY_PHASE_END) && m->phase_end_first)
                ADD("X_RINGMASTER_PHASE_END=%s\n", m->phase_end);
        if (m->keys & NOTIFY_PHASE)
                ADD("X_RINGMASTER_PHASE=%s\n", m->phase);
        if ((m->keys & NOTIFY_PHASE_END) && !m->phase_end_first)
                ADD("X_RINGMASTER_PHASE_END=%s\n", m->phase_end);
        if (m->keys & NOTIFY_READY)
                ADD("READY=1\n");
        if (m->keys & NOTIFY_STATUS)
                ADD("STATUS=%s\n", m->status);
        if (m->keys & NOTIFY_WATCHDOG)
                ADD("WATCHDOG=1\n");
        if (m->keys & NOTIFY_WATCHDOG_TRIGGER)
                ADD("WATCHDOG=trigger\n");
        if (m->keys & NOTIFY_EXTEND_TIMEOUT)
                ADD("EXTEND_TIMEOUT_USEC=%" PRIu64 "\n", m->extend_timeout_usec);
        if (m->keys & NOTIFY_STOPPING)
                ADD("STOPPING=1\n");
        if (m->keys & NOTIFY_ERRNO)
                ADD("ERRNO=%d\n", m->errno_value);
        if (m->keys & NOTIFY_PROGRESS)
                ADD("X_RINGMASTER_PROGRESS=%" PRIu64 "/%" PRIu64 "\n", m->progress_done, m->progress_total);
#undef ADD
        return n;
}

static void same(const struct notify_message *a, const struct notify_message *b) {
        /* Both WATCHDOG=1 and WATCHDOG=trigger may be set by two lines; each is kept. */
        if (a->keys != b->keys)
                fail("keys differ after a round trip");
        if ((a->keys & NOTIFY_STATUS) && strcmp(a->status, b->status) != 0)
                fail("status differs after a round trip");
        if ((a->keys & NOTIFY_PHASE) && strcmp(a->phase, b->phase) != 0)
                fail("phase differs after a round trip");
        if ((a->keys & NOTIFY_PHASE_END) && strcmp(a->phase_end, b->phase_end) != 0)
                fail("phase end differs after a round trip");
        if ((a->keys & NOTIFY_PHASE) && (a->keys & NOTIFY_PHASE_END) && a->phase_end_first != b->phase_end_first)
                fail("the order of phase and end differs after a round trip");
        if ((a->keys & NOTIFY_EXTEND_TIMEOUT) && a->extend_timeout_usec != b->extend_timeout_usec)
                fail("EXTEND_TIMEOUT_USEC differs after a round trip");
        if ((a->keys & NOTIFY_ERRNO) && a->errno_value != b->errno_value)
                fail("ERRNO differs after a round trip");
        if ((a->keys & NOTIFY_PROGRESS) &&
            (a->progress_done != b->progress_done || a->progress_total != b->progress_total))
                fail("progress differs after a round trip");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static struct notify_message m, again, untouched;
        static char text[3 * NOTIFY_DATAGRAM_MAX];
        size_t n;
        int r;

        memset(&m, 0x5a, sizeof(m));
        untouched = m;
        r = notify_parse(data, size, &m);
        if (r < 0) {
                if (r != -EMSGSIZE && r != -ENODATA && r != -EILSEQ && r != -EBADMSG && r != -EINVAL)
                        fail("an undocumented error");
                if (memcmp(&m, &untouched, sizeof(m)) != 0)
                        fail("the output was written on failure");
                if (size > NOTIFY_DATAGRAM_MAX && r != -EMSGSIZE)
                        fail("an oversized datagram not refused as such");
                return 0;
        }
        if (size == 0 || size > NOTIFY_DATAGRAM_MAX)
                fail("accepted an empty or oversized datagram");
        if (memchr(data, 0, size))
                fail("accepted a NUL");
        if ((m.keys & NOTIFY_PHASE) && !name_ok(m.phase))
                fail("an invalid phase name accepted");
        if ((m.keys & NOTIFY_PHASE_END) && !name_ok(m.phase_end))
                fail("an invalid phase end name accepted");
        if ((m.keys & NOTIFY_PROGRESS) && (m.progress_total < 1 || m.progress_done > m.progress_total))
                fail("progress out of range");
        if ((m.keys & NOTIFY_ERRNO) && m.errno_value < 0)
                fail("a negative ERRNO");
        if (m.keys & NOTIFY_STATUS) {
                if (strlen(m.status) >= size)
                        fail("a status longer than its datagram");
                for (const unsigned char *p = (const unsigned char *) m.status; *p; p++)
                        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
                                fail("a control character in a status");
        }

        /* The spawned workers' keys of the same datagram (worker-message.h). */
        {
                struct worker_message wm;

                if (worker_message_parse(data, size, &wm) == 0) {
                        if ((wm.keys & WORKER_KEY_GROUP) &&
                            (wm.group_world < 1 || wm.group_world > WORKER_GROUP_WORLD_MAX || wm.group_rank < 0 ||
                             wm.group_rank >= wm.group_world || !wm.group_key[0]))
                                fail("a group out of range accepted");
                        if ((wm.keys & WORKER_KEY_CAPTURE) && !(wm.keys & WORKER_KEY_ANNOUNCE))
                                fail("a capture without an announcement accepted");
                        if ((wm.keys & WORKER_KEY_EXIT) && (wm.exit_code < 0 || wm.exit_code > 255))
                                fail("an exit status out of range accepted");
                        {
                                const char *texts[] = { wm.argv, wm.name, wm.group_key, wm.exception };

                                for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
                                        for (const unsigned char *p = (const unsigned char *) texts[i]; *p; p++)
                                                if (*p < 0x20 || *p == 0x7f)
                                                        fail("a control character in a worker's text");
                        }
                }
        }

        n = serialise(&m, text, sizeof(text));
        if (n >= sizeof(text))
                fail("serialised message too long");
        if (n == 0)
                return 0;       /* only unknown keys */
        if (n > NOTIFY_DATAGRAM_MAX)
                return 0;       /* several long keys: the re-serialised text may not fit (a long status twice) */
        r = notify_parse(text, n, &again);
        if (r < 0)
                fail("the re-serialised message does not parse");
        same(&m, &again);
        return 0;
}

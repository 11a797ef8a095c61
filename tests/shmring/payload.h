/* SPDX-License-Identifier: MIT */
#ifndef SHMRING_TEST_PAYLOAD_H
#define SHMRING_TEST_PAYLOAD_H

/*
 * Self-checking test messages.  A message is a header (its writer, its
 * number in that writer's stream, its length and a checksum of the rest)
 * followed by bytes derived from (writer, seq).  Its length is derived from
 * (writer, seq) as well, so a reader knows what it must get:
 *
 *      msg_fill(buf, msg_len(&sizes, w, seq), w, seq);        writer
 *      msg_check(data, len, &sizes, w, seq) == NULL           reader
 *
 * The checksum is FNV-1a taken over 64-bit words (bytes for the tail): a
 * message torn between two writes, or mixed with an older one, fails it.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct msg_header {
        uint64_t seq;
        uint32_t writer;
        uint32_t len;                   /* the whole message, this header included */
        uint64_t checksum;              /* of the bytes after the header */
};

#define MSG_MIN ((uint32_t) sizeof(struct msg_header))

struct msg_sizes {
        uint32_t slot_size;             /* the channel's inline payload */
        uint64_t max_message;           /* the channel's largest message */
        unsigned overflow_per_mille;    /* share of messages larger than a slot */
        unsigned max_every;             /* every max_every-th message is max_message; 0: never */
};

static inline uint64_t msg_mix(uint64_t x) {
        x += UINT64_C(0x9e3779b97f4a7c15);
        x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
        return x ^ (x >> 31);
}

static inline uint64_t msg_seed(uint32_t writer, uint64_t seq) {
        return msg_mix(((uint64_t) writer << 48) ^ seq ^ UINT64_C(0x5eed5eed00000000));
}

static inline uint64_t msg_checksum(const void *p, size_t n) {
        const unsigned char *c = p;
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        size_t i = 0;

        for (; i + 8 <= n; i += 8) {
                uint64_t w;
                memcpy(&w, c + i, 8);
                h = (h ^ w) * UINT64_C(0x100000001b3);
        }
        for (; i < n; i++)
                h = (h ^ c[i]) * UINT64_C(0x100000001b3);
        return h;
}

/* The length of message seq of writer: at least MSG_MIN, at most max_message. */
static inline size_t msg_len(const struct msg_sizes *sz, uint32_t writer, uint64_t seq) {
        uint64_t r = msg_mix(msg_seed(writer, seq) ^ 0x1e);
        uint64_t max = sz->max_message, lo, hi;
        unsigned p = (unsigned) (r % 1000);

        r /= 1000;
        if (sz->max_every && seq % sz->max_every == sz->max_every - 1)
                return max;
        if (p < sz->overflow_per_mille && max > sz->slot_size) {
                /* Larger than a slot: mostly a few slots' worth, one in 32 up to the limit. */
                lo = (uint64_t) sz->slot_size + 1;
                hi = (r & 31) == 0 ? max : lo + 4 * (uint64_t) sz->slot_size;
        } else if (p < 700) {
                lo = MSG_MIN;
                hi = 128;
        } else {
                lo = MSG_MIN;
                hi = sz->slot_size;
        }
        if (hi > max)
                hi = max;
        if (lo < MSG_MIN)
                lo = MSG_MIN;
        if (hi < lo)
                hi = lo;
        return (size_t) (lo + (r >> 5) % (hi - lo + 1));
}

/* Writes message seq of writer, len bytes (len >= MSG_MIN), into buf. */
static inline void msg_fill(void *buf, size_t len, uint32_t writer, uint64_t seq) {
        unsigned char *c = buf;
        uint64_t x = msg_seed(writer, seq);
        struct msg_header h = { .seq = seq, .writer = writer, .len = (uint32_t) len };
        size_t i = sizeof(h);

        for (; i + 8 <= len; i += 8) {
                x += UINT64_C(0x9e3779b97f4a7c15);
                uint64_t w = msg_mix(x);
                memcpy(c + i, &w, 8);
        }
        for (; i < len; i++)
                c[i] = (unsigned char) msg_mix(x + i);
        h.checksum = msg_checksum(c + sizeof(h), len - sizeof(h));
        memcpy(c, &h, sizeof(h));
}

/*
 * Checks a received message against what message seq of writer must be;
 * NULL when it is right, else what is wrong.  With sz NULL the length is not
 * checked against the size rule.
 */
static inline const char *msg_check(const void *data, size_t len, const struct msg_sizes *sz,
                                    uint32_t writer, uint64_t seq) {
        struct msg_header h;

        if (len < sizeof(h))
                return "shorter than its header";
        memcpy(&h, data, sizeof(h));
        if (h.writer != writer)
                return "wrong writer";
        if (h.seq != seq)
                return "wrong sequence number (lost, repeated or reordered)";
        if (h.len != len)
                return "length differs from the one sent";
        if (sz && len != msg_len(sz, writer, seq))
                return "length differs from the expected one";
        if (msg_checksum((const unsigned char *) data + sizeof(h), len - sizeof(h)) != h.checksum)
                return "checksum mismatch (torn or corrupted)";
        return NULL;
}

#endif

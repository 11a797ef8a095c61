/* SPDX-License-Identifier: MIT */
#ifndef RM_ENGINE_STEP_H
#define RM_ENGINE_STEP_H

/*
 * The engine's control plane: what rank 0's scheduler broadcasts each step
 * on the run segment's "sched" channel, and what every other rank sends
 * back on the "results" queue.  All ranks run the same binary, so these are
 * plain little-endian structs, checked by magic and sizes on receipt.
 *
 * step message:    step_header, step_seq[n_seqs], int32 tokens[n_tokens]
 * result message:  result_header, result_sample[n_samples],
 *                  then (STEP_WANT_LOGITS) float logits[n_samples][n_vocab]
 *                  of the rank's vocabulary slice
 *
 * A step's tokens are the sequences' new tokens one after the other (a
 * ragged batch, no padding): a prefill chunk of a prompt or one decoded
 * token.  A sequence lives in a KV-cache slot; its tokens take positions
 * pos .. pos + n_tokens - 1.  sample = 1 asks for the next token after its
 * last one: each rank answers with the largest logit of its vocabulary
 * slice and its index, and rank 0 picks the largest (the smallest index on
 * a tie, as torch.argmax).
 */

#include <stdint.h>

#define STEP_MAGIC UINT32_C(0x50455453)     /* "STEP" */
#define RESULT_MAGIC UINT32_C(0x544c5352)   /* "RSLT" */

enum step_kind {
        STEP_FORWARD = 1,
        STEP_STOP = 2,                      /* no more steps: send RESULT_BYE and exit */
};

enum {
        STEP_WANT_LOGITS = 1u << 0,         /* results carry the logits of the sampled positions */
};

struct step_header {
        uint32_t magic;
        uint32_t kind;                      /* enum step_kind */
        uint64_t step;
        int64_t sent_ns;                    /* CLOCK_MONOTONIC at send (one host) */
        uint32_t n_seqs;
        uint32_t n_tokens;
        uint32_t flags;
        uint32_t reserved;
};

struct step_seq {
        uint32_t slot;
        uint32_t pos;
        uint32_t n_tokens;
        uint32_t sample;
};

enum result_kind {
        RESULT_STEP = 1,
        RESULT_BYE = 2,                     /* payload: the rank's phase timeline, text */
        RESULT_ERROR = 3,                   /* payload: the error, text */
};

struct result_header {
        uint32_t magic;
        uint32_t kind;                      /* enum result_kind */
        uint32_t rank;
        uint32_t n_samples;
        uint64_t step;
        int64_t step_recv_ns;               /* when the step message arrived */
        int64_t sent_ns;                    /* when this result was sent */
        int64_t compute_ns;                 /* forward pass, all-reduces included */
        int64_t allreduce_ns;               /* of which in all-reduces */
        uint32_t n_vocab;                   /* logits per sample that follow (0: none) */
        uint32_t payload_len;               /* BYE, ERROR: bytes of text after the header */
};

struct result_sample {
        float value;
        int32_t index;                      /* global token id */
};

#endif

/* SPDX-License-Identifier: MIT */
#ifndef RM_ENGINE_SCHEDULER_H
#define RM_ENGINE_SCHEDULER_H

/*
 * Rank 0's continuous-batching scheduler: requests come in as JSON lines,
 *
 *   {"id": "a", "prompt": [1, 15, 7], "max_new_tokens": 16}
 *
 * ("prompt_token_ids" is accepted for "prompt"; "id" defaults to the line
 * number), wait in arrival order, and take a KV-cache slot when one is
 * free.  Each step holds every running sequence's next token (decode) and,
 * within the step's token budget, prompt chunks of sequences still in
 * prefill (a prompt longer than the budget is prefilled over several
 * steps).  A sequence ends at one of the model's stop tokens (included in
 * the output, as transformers' generate) or after max_new_tokens; its slot
 * is free for the next request at once, so new requests join between
 * steps.  A request that can never run (an empty prompt, a token outside
 * the vocabulary, longer than a slot) is answered with an error record; it
 * is never dropped silently.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "step.h"

struct sched_opts {
        int max_slots;
        int max_seq_len;
        int max_step_tokens;
        int vocab;
        int n_eos;
        const int *eos;
        int default_max_new_tokens;
};

enum finish_reason {
        FINISH_NONE = 0,
        FINISH_EOS,
        FINISH_LENGTH,
        FINISH_ERROR,
};

struct request {
        char *id;
        int32_t *prompt;
        int n_prompt;
        int max_new;
        int32_t *out;
        int n_out;
        int slot;                     /* -1: waiting */
        int fed;                      /* prompt tokens sent to the model so far */
        int64_t arrive_ns, first_ns, done_ns;
        enum finish_reason finish;
        char *error;
        struct request *next;
};

struct scheduler;

int scheduler_new(const struct sched_opts *o, struct scheduler **ret);
struct scheduler *scheduler_free(struct scheduler *s);

/*
 * Parses one JSON line into a request and queues it; a malformed or
 * impossible one becomes a finished request with an error (taken with
 * scheduler_pop_finished()).  lineno names it in messages.  Returns 0, or
 * -ENOMEM.
 */
int scheduler_add_line(struct scheduler *s, const char *line, size_t len, unsigned long lineno, int64_t now_ns);

/* Requests waiting or running. */
size_t scheduler_pending(const struct scheduler *s);

/*
 * Builds the next step into seqs (room for max_slots) and tokens (room for
 * max_step_tokens); returns the number of sequences (0: nothing to run) and
 * sets *ret_tokens.  The step's sampling sequences are remembered, in
 * order, for scheduler_complete().
 */
int scheduler_next_step(struct scheduler *s, struct step_seq *seqs, int32_t *tokens, uint32_t *ret_tokens);

/*
 * Hands the step's sampled tokens back (one per sampling sequence, in
 * order); finished requests move to the finished list.  The request ids
 * for the samples are in ids (may be NULL) for logging.
 */
void scheduler_complete(struct scheduler *s, const int32_t *sampled, uint32_t n, int64_t now_ns);
/* The request of the step's i-th sample (valid until the next scheduler_complete). */
const struct request *scheduler_sample_request(const struct scheduler *s, uint32_t i);

/* Takes the next finished request (the caller frees it with request_free), or NULL. */
struct request *scheduler_pop_finished(struct scheduler *s);
void request_free(struct request *r);

/* Writes a finished request as one JSON line. */
void request_write_json(const struct request *r, FILE *f);
/* Writes s as a JSON string (quoted, escaped), on one line. */
void json_write_compact_string(FILE *f, const char *s);

#endif

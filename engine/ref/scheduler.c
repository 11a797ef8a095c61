/* SPDX-License-Identifier: MIT */
/* Rank 0's continuous-batching scheduler (scheduler.h). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "scheduler.h"

struct scheduler {
        struct sched_opts o;
        int *eos;
        struct request *wait_head, *wait_tail;
        struct request *fin_head, *fin_tail;
        struct request **slots;       /* running, by slot */
        struct request **samples;     /* the last step's sampling requests, in order */
        uint32_t n_samples;
        size_t n_waiting, n_running;
};

static void push(struct request **head, struct request **tail, struct request *r) {
        r->next = NULL;
        if (*tail)
                (*tail)->next = r;
        else
                *head = r;
        *tail = r;
}

int scheduler_new(const struct sched_opts *o, struct scheduler **ret) {
        struct scheduler *s = calloc(1, sizeof(*s));

        if (!s)
                return -ENOMEM;
        s->o = *o;
        s->eos = calloc((size_t) o->n_eos + 1, sizeof(int));
        s->slots = calloc((size_t) o->max_slots, sizeof(*s->slots));
        s->samples = calloc((size_t) o->max_slots, sizeof(*s->samples));
        if (!s->eos || !s->slots || !s->samples) {
                scheduler_free(s);
                return -ENOMEM;
        }
        memcpy(s->eos, o->eos, (size_t) o->n_eos * sizeof(int));
        s->o.eos = s->eos;
        *ret = s;
        return 0;
}

void request_free(struct request *r) {
        if (!r)
                return;
        free(r->id);
        free(r->prompt);
        free(r->out);
        free(r->error);
        free(r);
}

struct scheduler *scheduler_free(struct scheduler *s) {
        struct request *r, *n;

        if (!s)
                return NULL;
        for (r = s->wait_head; r; r = n) {
                n = r->next;
                request_free(r);
        }
        for (r = s->fin_head; r; r = n) {
                n = r->next;
                request_free(r);
        }
        if (s->slots)
                for (int i = 0; i < s->o.max_slots; i++)
                        request_free(s->slots[i]);
        free(s->slots);
        free(s->samples);
        free(s->eos);
        free(s);
        return NULL;
}

static void reject(struct scheduler *s, struct request *r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void reject(struct scheduler *s, struct request *r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&r->error, fmt, ap) < 0)
                r->error = NULL;
        va_end(ap);
        r->finish = FINISH_ERROR;
        push(&s->fin_head, &s->fin_tail, r);
}

int scheduler_add_line(struct scheduler *s, const char *line, size_t len, unsigned long lineno, int64_t now_ns) {
        struct json_value *v = NULL;
        const struct json_value *id, *prompt, *mx;
        struct request *r;
        char idbuf[32];

        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
                len--;
        while (len && (*line == ' ' || *line == '\t')) {
                line++;
                len--;
        }
        if (len == 0)
                return 0;                     /* blank lines are allowed */
        r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->slot = -1;
        r->arrive_ns = now_ns;
        snprintf(idbuf, sizeof(idbuf), "%lu", lineno);
        if (json_parse(line, len, &v) < 0 || v->type != JSON_OBJECT) {
                r->id = strdup(idbuf);
                reject(s, r, "request line %lu is not a JSON object (one request per line: "
                             "{\"id\": \"a\", \"prompt\": [1, 2, 3], \"max_new_tokens\": 16})", lineno);
                json_value_free(v);
                return 0;
        }
        id = json_object_get(v, "id");
        if (id && id->type == JSON_STRING)
                r->id = strdup(id->text);
        else if (id && id->type == JSON_NUMBER)
                r->id = strdup(id->text);
        else
                r->id = strdup(idbuf);
        prompt = json_object_get(v, "prompt");
        if (!prompt)
                prompt = json_object_get(v, "prompt_token_ids");
        if (!prompt || prompt->type != JSON_ARRAY || prompt->n == 0) {
                reject(s, r, "request %s (line %lu): \"prompt\" must be a non-empty array of token ids", r->id, lineno);
                goto out;
        }
        r->n_prompt = (int) prompt->n;
        r->prompt = malloc(prompt->n * sizeof(int32_t));
        if (!r->prompt) {
                request_free(r);
                json_value_free(v);
                return -ENOMEM;
        }
        for (size_t i = 0; i < prompt->n; i++) {
                const struct json_value *t = prompt->items[i];
                char *end;
                double x = t->type == JSON_NUMBER ? strtod(t->text, &end) : -1;
                if (t->type != JSON_NUMBER || x != floor(x) || x < 0 || x >= s->o.vocab) {
                        reject(s, r, "request %s (line %lu): prompt[%zu] is not a token id of this model (0..%d)", r->id,
                               lineno, i, s->o.vocab - 1);
                        goto out;
                }
                r->prompt[i] = (int32_t) x;
        }
        r->max_new = s->o.default_max_new_tokens;
        mx = json_object_get(v, "max_new_tokens");
        if (mx) {
                char *end;
                double x = mx->type == JSON_NUMBER ? strtod(mx->text, &end) : -1;
                if (mx->type != JSON_NUMBER || x != floor(x) || x < 1 || x > 1e7) {
                        reject(s, r, "request %s (line %lu): \"max_new_tokens\" must be a positive integer", r->id, lineno);
                        goto out;
                }
                r->max_new = (int) x;
        }
        if ((int64_t) r->n_prompt + r->max_new - 1 > s->o.max_seq_len) {
                reject(s, r,
                       "request %s (line %lu): %d prompt tokens + %d new tokens do not fit a slot of %d positions "
                       "(raise --max-seq-len)",
                       r->id, lineno, r->n_prompt, r->max_new, s->o.max_seq_len);
                goto out;
        }
        r->out = malloc((size_t) r->max_new * sizeof(int32_t));
        if (!r->out) {
                request_free(r);
                json_value_free(v);
                return -ENOMEM;
        }
        push(&s->wait_head, &s->wait_tail, r);
        s->n_waiting++;
out:
        json_value_free(v);
        return 0;
}

size_t scheduler_pending(const struct scheduler *s) {
        return s->n_waiting + s->n_running;
}

static int add_prefill(struct scheduler *s, struct request *r, struct step_seq *seqs, int n, int32_t *tokens,
                       uint32_t *nt, int *budget) {
        int chunk = r->n_prompt - r->fed;

        if (chunk > *budget)
                chunk = *budget;
        if (chunk <= 0)
                return n;
        seqs[n] = (struct step_seq) {
                .slot = (uint32_t) r->slot,
                .pos = (uint32_t) r->fed,
                .n_tokens = (uint32_t) chunk,
                .sample = r->fed + chunk == r->n_prompt,
        };
        memcpy(tokens + *nt, r->prompt + r->fed, (size_t) chunk * sizeof(int32_t));
        *nt += (uint32_t) chunk;
        *budget -= chunk;
        r->fed += chunk;
        if (seqs[n].sample)
                s->samples[s->n_samples++] = r;
        return n + 1;
}

int scheduler_next_step(struct scheduler *s, struct step_seq *seqs, int32_t *tokens, uint32_t *ret_tokens) {
        int n = 0, budget = s->o.max_step_tokens;
        uint32_t nt = 0;

        s->n_samples = 0;
        /* Decodes first: a running sequence never waits behind a prompt. */
        for (int i = 0; i < s->o.max_slots && budget > 0; i++) {
                struct request *r = s->slots[i];
                if (!r || r->fed < r->n_prompt)
                        continue;
                seqs[n++] = (struct step_seq) {
                        .slot = (uint32_t) i,
                        .pos = (uint32_t) (r->n_prompt + r->n_out - 1),
                        .n_tokens = 1,
                        .sample = 1,
                };
                tokens[nt++] = r->out[r->n_out - 1];
                budget--;
                s->samples[s->n_samples++] = r;
        }
        /* Prompts being prefilled in chunks. */
        for (int i = 0; i < s->o.max_slots && budget > 0; i++)
                if (s->slots[i] && s->slots[i]->fed < s->slots[i]->n_prompt)
                        n = add_prefill(s, s->slots[i], seqs, n, tokens, &nt, &budget);
        /* New requests, in arrival order, while slots and budget last. */
        for (int i = 0; i < s->o.max_slots && budget > 0 && s->wait_head; i++) {
                struct request *r;
                if (s->slots[i])
                        continue;
                r = s->wait_head;
                s->wait_head = r->next;
                if (!s->wait_head)
                        s->wait_tail = NULL;
                s->n_waiting--;
                r->next = NULL;
                r->slot = i;
                s->slots[i] = r;
                s->n_running++;
                n = add_prefill(s, r, seqs, n, tokens, &nt, &budget);
        }
        *ret_tokens = nt;
        return n;
}

const struct request *scheduler_sample_request(const struct scheduler *s, uint32_t i) {
        return i < s->n_samples ? s->samples[i] : NULL;
}

void scheduler_complete(struct scheduler *s, const int32_t *sampled, uint32_t n, int64_t now_ns) {
        for (uint32_t i = 0; i < n && i < s->n_samples; i++) {
                struct request *r = s->samples[i];
                bool stop = false;

                if (r->n_out == 0)
                        r->first_ns = now_ns;
                r->out[r->n_out++] = sampled[i];
                for (int e = 0; e < s->o.n_eos; e++)
                        if (s->o.eos[e] == sampled[i])
                                stop = true;
                if (stop)
                        r->finish = FINISH_EOS;
                else if (r->n_out >= r->max_new)
                        r->finish = FINISH_LENGTH;
                if (r->finish != FINISH_NONE) {
                        r->done_ns = now_ns;
                        s->slots[r->slot] = NULL;
                        s->n_running--;
                        push(&s->fin_head, &s->fin_tail, r);
                }
        }
        s->n_samples = 0;
}

struct request *scheduler_pop_finished(struct scheduler *s) {
        struct request *r = s->fin_head;

        if (r) {
                s->fin_head = r->next;
                if (!s->fin_head)
                        s->fin_tail = NULL;
                r->next = NULL;
        }
        return r;
}

/* A JSON string, compact (the supervisor's writer indents: this output is one line per request). */
void json_write_compact_string(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(f, "\\%c", *p);
                else if (*p < 0x20)
                        fprintf(f, "\\u%04x", *p);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

void request_write_json(const struct request *r, FILE *f) {
        fputs("{\"id\":", f);
        json_write_compact_string(f, r->id ? r->id : "");
        if (r->finish == FINISH_ERROR) {
                fputs(",\"error\":", f);
                json_write_compact_string(f, r->error ? r->error : "out of memory");
        } else {
                fprintf(f, ",\"prompt_tokens\":%d,\"tokens\":[", r->n_prompt);
                for (int i = 0; i < r->n_out; i++)
                        fprintf(f, "%s%" PRId32, i ? "," : "", r->out[i]);
                fprintf(f, "],\"finish_reason\":\"%s\",\"ttft_ms\":%.3f,\"latency_ms\":%.3f",
                        r->finish == FINISH_EOS ? "eos" : "length", (double) (r->first_ns - r->arrive_ns) / 1e6,
                        (double) (r->done_ns - r->arrive_ns) / 1e6);
        }
        fputs("}\n", f);
        fflush(f);
}

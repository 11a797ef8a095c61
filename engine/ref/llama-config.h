/* SPDX-License-Identifier: MIT */
#ifndef RM_LLAMA_CONFIG_H
#define RM_LLAMA_CONFIG_H

/*
 * A Llama-architecture model's shape, read from a Hugging Face checkpoint
 * folder's config.json (and generation_config.json for the stop tokens),
 * and how it is split for tensor parallelism.
 *
 * Accepted: model_type "llama" (or "mistral"-style configs with the same
 * layout: no sliding window), hidden_act "silu", no attention or MLP bias,
 * rope "default" with rope_theta at the top level (transformers 4) or in
 * rope_parameters (transformers 5).  Anything else is refused with a
 * message naming the key, never silently run with other numbers.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LLAMA_MAX_EOS 8

struct llama_config {
        int hidden;                   /* hidden_size */
        int intermediate;             /* intermediate_size */
        int n_layers;                 /* num_hidden_layers */
        int n_heads;                  /* num_attention_heads */
        int n_kv_heads;               /* num_key_value_heads (default n_heads) */
        int head_dim;                 /* head_dim (default hidden / n_heads) */
        int vocab;                    /* vocab_size */
        int max_positions;            /* max_position_embeddings */
        float rms_eps;                /* rms_norm_eps */
        double rope_theta;            /* rope_theta */
        bool tied;                    /* tie_word_embeddings */
        int n_eos;                    /* eos_token_id: an int or a list */
        int eos[LLAMA_MAX_EOS];
        char dtype[16];               /* torch_dtype / dtype as written ("float32", "bfloat16") */
};

/* Reads DIR/config.json (and DIR/generation_config.json if there). */
int llama_config_read(const char *dir, struct llama_config *ret, char *errbuf, size_t errsize);

/* One rank's slice of the model at tensor-parallel degree world. */
struct llama_shard {
        int rank, world;
        int q_head0, n_q_heads;       /* query heads [q_head0, q_head0 + n_q_heads) */
        int kv_head0, n_kv_heads;     /* key/value heads (replicated when world > n_kv_heads) */
        int inter0, n_inter;          /* MLP rows */
        int vocab0, n_vocab;          /* lm_head rows (logits) */
};

/*
 * Splits: query heads evenly (n_heads % world == 0), key/value heads evenly
 * or, when world > n_kv_heads, replicated (world % n_kv_heads == 0); the
 * MLP and the vocabulary in near-equal contiguous parts.  -EINVAL with a
 * message when the heads do not divide.
 */
int llama_shard_for(const struct llama_config *c, int rank, int world, struct llama_shard *ret, char *errbuf,
                    size_t errsize);

#endif

/* SPDX-License-Identifier: MIT */
/* config.json into struct llama_config, and the tensor-parallel split (llama-config.h). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "llama-config.h"

static int fail(char *errbuf, size_t errsize, int r, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int fail(char *errbuf, size_t errsize, int r, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(errbuf, errsize, fmt, ap);
        va_end(ap);
        return r;
}

static int slurp(const char *path, struct json_value **ret) {
        FILE *f = fopen(path, "re");
        char *buf;
        long n;
        int r;

        if (!f)
                return -errno;
        if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || n > (16 << 20) || fseek(f, 0, SEEK_SET) < 0) {
                fclose(f);
                return -EFBIG;
        }
        buf = malloc((size_t) n + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        if (fread(buf, 1, (size_t) n, f) != (size_t) n) {
                free(buf);
                fclose(f);
                return -EIO;
        }
        fclose(f);
        r = json_parse(buf, (size_t) n, ret);
        free(buf);
        return r;
}

/* A number member: 1 found, 0 absent or null, -EINVAL not a number. */
static int get_num(const struct json_value *o, const char *key, double *ret) {
        const struct json_value *v = json_object_get(o, key);
        char *end;

        if (!v || v->type == JSON_NULL)
                return 0;
        if (v->type != JSON_NUMBER)
                return -EINVAL;
        *ret = strtod(v->text, &end);
        return *end ? -EINVAL : 1;
}

static int get_int(const struct json_value *o, const char *key, int def, int min, int *ret, const char *path,
                   char *errbuf, size_t errsize) {
        double d;
        int r = get_num(o, key, &d);

        if (r == 0) {
                if (def < 0)
                        return fail(errbuf, errsize, -EINVAL, "%s: \"%s\" is missing", path, key);
                *ret = def;
                return 0;
        }
        if (r < 0 || d != floor(d) || d < min || d > 1e9)
                return fail(errbuf, errsize, -EINVAL, "%s: \"%s\" must be an integer >= %d", path, key, min);
        *ret = (int) d;
        return 0;
}

static int read_eos(const struct json_value *v, struct llama_config *c) {
        if (!v || v->type == JSON_NULL)
                return 0;
        if (v->type == JSON_NUMBER) {
                c->n_eos = 1;
                c->eos[0] = atoi(v->text);
                return 1;
        }
        if (v->type == JSON_ARRAY) {
                c->n_eos = 0;
                for (size_t i = 0; i < v->n && c->n_eos < LLAMA_MAX_EOS; i++)
                        if (v->items[i]->type == JSON_NUMBER)
                                c->eos[c->n_eos++] = atoi(v->items[i]->text);
                return 1;
        }
        return -EINVAL;
}

static bool is_false_or_absent(const struct json_value *o, const char *key) {
        const struct json_value *v = json_object_get(o, key);
        return !v || v->type == JSON_FALSE || v->type == JSON_NULL;
}

int llama_config_read(const char *dir, struct llama_config *ret, char *errbuf, size_t errsize) {
        struct llama_config c = { 0 };
        struct json_value *root = NULL, *gen = NULL;
        const struct json_value *v, *rp;
        char path[4096];
        double d;
        int r;

        snprintf(path, sizeof(path), "%s/config.json", dir);
        r = slurp(path, &root);
        if (r == -ENOENT)
                return fail(errbuf, errsize, r, "%s: no such file (the checkpoint folder must hold config.json)", path);
        if (r < 0)
                return fail(errbuf, errsize, r, "%s: %s", path, r == -EBADMSG ? "not valid JSON" : strerror(-r));
        if (root->type != JSON_OBJECT) {
                r = fail(errbuf, errsize, -EINVAL, "%s: not a JSON object", path);
                goto out;
        }
        v = json_object_get(root, "model_type");
        if (v && v->type == JSON_STRING && strcmp(v->text, "llama") != 0 && strcmp(v->text, "mistral") != 0) {
                r = fail(errbuf, errsize, -EOPNOTSUPP,
                         "%s: model_type is \"%s\"; the engine runs the Llama architecture (\"llama\")", path, v->text);
                goto out;
        }
        v = json_object_get(root, "hidden_act");
        if (v && v->type == JSON_STRING && strcmp(v->text, "silu") != 0) {
                r = fail(errbuf, errsize, -EOPNOTSUPP, "%s: hidden_act is \"%s\"; only \"silu\" is supported", path,
                         v->text);
                goto out;
        }
        if (!is_false_or_absent(root, "attention_bias") || !is_false_or_absent(root, "mlp_bias")) {
                r = fail(errbuf, errsize, -EOPNOTSUPP, "%s: attention_bias/mlp_bias are set; the engine has no biases",
                         path);
                goto out;
        }
        v = json_object_get(root, "sliding_window");
        if (v && v->type != JSON_NULL) {
                r = fail(errbuf, errsize, -EOPNOTSUPP, "%s: sliding_window is set; the engine attends to the whole context",
                         path);
                goto out;
        }
        if ((r = get_int(root, "hidden_size", -1, 1, &c.hidden, path, errbuf, errsize)) < 0 ||
            (r = get_int(root, "intermediate_size", -1, 1, &c.intermediate, path, errbuf, errsize)) < 0 ||
            (r = get_int(root, "num_hidden_layers", -1, 1, &c.n_layers, path, errbuf, errsize)) < 0 ||
            (r = get_int(root, "num_attention_heads", -1, 1, &c.n_heads, path, errbuf, errsize)) < 0 ||
            (r = get_int(root, "num_key_value_heads", c.n_heads, 1, &c.n_kv_heads, path, errbuf, errsize)) < 0 ||
            (r = get_int(root, "vocab_size", -1, 1, &c.vocab, path, errbuf, errsize)) < 0 ||
            (r = get_int(root, "max_position_embeddings", 2048, 1, &c.max_positions, path, errbuf, errsize)) < 0)
                goto out;
        if (c.hidden % c.n_heads != 0 && !json_object_get(root, "head_dim")) {
                r = fail(errbuf, errsize, -EINVAL, "%s: hidden_size %d is not a multiple of num_attention_heads %d", path,
                         c.hidden, c.n_heads);
                goto out;
        }
        if ((r = get_int(root, "head_dim", c.hidden / c.n_heads, 2, &c.head_dim, path, errbuf, errsize)) < 0)
                goto out;
        if (c.head_dim % 2 || c.n_heads % c.n_kv_heads) {
                r = fail(errbuf, errsize, -EINVAL,
                         "%s: head_dim %d must be even and num_attention_heads %d a multiple of num_key_value_heads %d",
                         path, c.head_dim, c.n_heads, c.n_kv_heads);
                goto out;
        }
        c.rms_eps = 1e-6f;
        if (get_num(root, "rms_norm_eps", &d) > 0)
                c.rms_eps = (float) d;
        c.rope_theta = 10000.0;
        rp = json_object_get(root, "rope_parameters");
        if (!rp || rp->type != JSON_OBJECT)
                rp = json_object_get(root, "rope_scaling");
        if (rp && rp->type == JSON_OBJECT) {
                const struct json_value *t = json_object_get(rp, "rope_type");
                if (!t)
                        t = json_object_get(rp, "type");
                if (t && t->type == JSON_STRING && strcmp(t->text, "default") != 0) {
                        r = fail(errbuf, errsize, -EOPNOTSUPP,
                                 "%s: rope type \"%s\"; the engine implements the default rotary embedding only",
                                 path, t->text);
                        goto out;
                }
                if (get_num(rp, "rope_theta", &d) > 0)
                        c.rope_theta = d;
        }
        if (get_num(root, "rope_theta", &d) > 0)
                c.rope_theta = d;
        v = json_object_get(root, "tie_word_embeddings");
        c.tied = v && v->type == JSON_TRUE;
        v = json_object_get(root, "torch_dtype");
        if (!v || v->type != JSON_STRING)
                v = json_object_get(root, "dtype");
        snprintf(c.dtype, sizeof(c.dtype), "%s", v && v->type == JSON_STRING ? v->text : "float32");
        read_eos(json_object_get(root, "eos_token_id"), &c);

        snprintf(path, sizeof(path), "%s/generation_config.json", dir);
        if (slurp(path, &gen) == 0 && gen->type == JSON_OBJECT)
                read_eos(json_object_get(gen, "eos_token_id"), &c);
        for (int i = 0; i < c.n_eos; i++)
                if (c.eos[i] < 0 || c.eos[i] >= c.vocab)
                        c.eos[i] = -1;
        *ret = c;
        r = 0;
out:
        json_value_free(root);
        json_value_free(gen);
        return r;
}

static void split(int n, int parts, int i, int *ret_start, int *ret_count) {
        int64_t a = (int64_t) n * i / parts, b = (int64_t) n * (i + 1) / parts;
        *ret_start = (int) a;
        *ret_count = (int) (b - a);
}

int llama_shard_for(const struct llama_config *c, int rank, int world, struct llama_shard *ret, char *errbuf,
                    size_t errsize) {
        struct llama_shard s = { .rank = rank, .world = world };
        int group = c->n_heads / c->n_kv_heads;

        if (world < 1 || rank < 0 || rank >= world)
                return fail(errbuf, errsize, -EINVAL, "rank %d of %d", rank, world);
        if (c->n_heads % world)
                return fail(errbuf, errsize, -EINVAL,
                            "tensor parallelism %d does not divide num_attention_heads %d: run with a divisor of it",
                            world, c->n_heads);
        if (c->n_kv_heads % world && world % c->n_kv_heads)
                return fail(errbuf, errsize, -EINVAL,
                            "tensor parallelism %d and num_key_value_heads %d: one must divide the other", world,
                            c->n_kv_heads);
        if (c->intermediate < world || c->vocab < world)
                return fail(errbuf, errsize, -EINVAL, "tensor parallelism %d is larger than the model's MLP or vocabulary",
                            world);
        s.n_q_heads = c->n_heads / world;
        s.q_head0 = rank * s.n_q_heads;
        if (c->n_kv_heads >= world) {
                s.n_kv_heads = c->n_kv_heads / world;
                s.kv_head0 = rank * s.n_kv_heads;
        } else {
                s.n_kv_heads = 1;
                s.kv_head0 = s.q_head0 / group;
        }
        split(c->intermediate, world, rank, &s.inter0, &s.n_inter);
        split(c->vocab, world, rank, &s.vocab0, &s.n_vocab);
        *ret = s;
        return 0;
}

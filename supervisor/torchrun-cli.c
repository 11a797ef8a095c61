/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "exit-status.h"
#include "parse-util.h"
#include "run.h"
#include "torchrun-cli.h"
#include "util.h"

/* torchrun's options, in its --help order. */
enum topt {
        T_NNODES,
        T_NPROC_PER_NODE,
        T_RDZV_BACKEND,
        T_RDZV_ENDPOINT,
        T_RDZV_ID,
        T_RDZV_CONF,
        T_STANDALONE,
        T_MAX_RESTARTS,
        T_MONITOR_INTERVAL,
        T_START_METHOD,
        T_EVENT_LOG_HANDLER,
        T_ROLE,
        T_MODULE,
        T_NO_PYTHON,
        T_RUN_PATH,
        T_LOG_DIR,
        T_REDIRECTS,
        T_TEE,
        T_LOG_LINE_PREFIX_TEMPLATE,
        T_LOCAL_RANKS_FILTER,
        T_DUPLICATE_STDOUT_FILTERS,
        T_DUPLICATE_STDERR_FILTERS,
        T_NODE_RANK,
        T_MASTER_ADDR,
        T_MASTER_PORT,
        T_LOCAL_ADDR,
        T_LOGS_SPECS,
        T_NUMA_BINDING,
        T_SIGNALS_TO_HANDLE,
        T_SHUTDOWN_TIMEOUT,
        T_VIRTUAL_LOCAL_RANK,
        T_PRINT_COMPLETION,
        _T_MAX,
        /* ringmaster's own */
        T_DRY_RUN = _T_MAX,
        T_HELP,
};

struct topt_desc {
        const char *name;       /* --name; the PET_ variable is its upper-case snake form */
        char short_name;
        bool flag;              /* no value (argparse's check_env / store_true) */
        bool env_default;       /* PET_NAME is the default (argparse_util's env / check_env) */
};

static const struct topt_desc topts[_T_MAX] = {
        [T_NNODES] = { "nnodes", 0, false, true },
        [T_NPROC_PER_NODE] = { "nproc-per-node", 0, false, true },
        [T_RDZV_BACKEND] = { "rdzv-backend", 0, false, true },
        [T_RDZV_ENDPOINT] = { "rdzv-endpoint", 0, false, true },
        [T_RDZV_ID] = { "rdzv-id", 0, false, true },
        [T_RDZV_CONF] = { "rdzv-conf", 0, false, true },
        [T_STANDALONE] = { "standalone", 0, true, true },
        [T_MAX_RESTARTS] = { "max-restarts", 0, false, true },
        [T_MONITOR_INTERVAL] = { "monitor-interval", 0, false, true },
        [T_START_METHOD] = { "start-method", 0, false, true },
        [T_EVENT_LOG_HANDLER] = { "event-log-handler", 0, false, true },
        [T_ROLE] = { "role", 0, false, true },
        [T_MODULE] = { "module", 'm', true, true },
        [T_NO_PYTHON] = { "no-python", 0, true, true },
        [T_RUN_PATH] = { "run-path", 0, true, true },
        [T_LOG_DIR] = { "log-dir", 0, false, true },
        [T_REDIRECTS] = { "redirects", 'r', false, true },
        [T_TEE] = { "tee", 't', false, true },
        [T_LOG_LINE_PREFIX_TEMPLATE] = { "log-line-prefix-template", 0, false, true },
        [T_LOCAL_RANKS_FILTER] = { "local-ranks-filter", 0, false, true },
        [T_DUPLICATE_STDOUT_FILTERS] = { "duplicate-stdout-filters", 0, false, true },
        [T_DUPLICATE_STDERR_FILTERS] = { "duplicate-stderr-filters", 0, false, true },
        [T_NODE_RANK] = { "node-rank", 0, false, true },
        [T_MASTER_ADDR] = { "master-addr", 0, false, true },
        [T_MASTER_PORT] = { "master-port", 0, false, true },
        [T_LOCAL_ADDR] = { "local-addr", 0, false, true },
        [T_LOGS_SPECS] = { "logs-specs", 0, false, false },
        [T_NUMA_BINDING] = { "numa-binding", 0, false, false },
        [T_SIGNALS_TO_HANDLE] = { "signals-to-handle", 0, false, true },
        [T_SHUTDOWN_TIMEOUT] = { "shutdown-timeout", 0, false, true },
        [T_VIRTUAL_LOCAL_RANK] = { "virtual-local-rank", 0, true, true },
        [T_PRINT_COMPLETION] = { "print-completion", 0, false, false },
};

/* torchrun's defaults (torch/distributed/run.py); NULL: none. */
static const char *const topt_defaults[_T_MAX] = {
        [T_NNODES] = "1:1",
        [T_NPROC_PER_NODE] = "1",
        [T_RDZV_BACKEND] = "static",
        [T_RDZV_ENDPOINT] = "",
        [T_RDZV_ID] = "none",
        [T_RDZV_CONF] = "",
        [T_MAX_RESTARTS] = "0",
        [T_MONITOR_INTERVAL] = "0.1",
        [T_START_METHOD] = "spawn",
        [T_EVENT_LOG_HANDLER] = "null",
        [T_ROLE] = "default",
        [T_REDIRECTS] = "0",
        [T_TEE] = "0",
        [T_LOG_LINE_PREFIX_TEMPLATE] = "",
        [T_LOCAL_RANKS_FILTER] = "",
        [T_DUPLICATE_STDOUT_FILTERS] = "",
        [T_DUPLICATE_STDERR_FILTERS] = "",
        [T_NODE_RANK] = "0",
        [T_MASTER_ADDR] = "127.0.0.1",
        [T_SIGNALS_TO_HANDLE] = "SIGTERM,SIGINT,SIGHUP,SIGQUIT",
};

/* What the command line (or PET_*) said. */
struct targs {
        const char *value[_T_MAX];      /* a flag: "1" when set */
        bool given[_T_MAX];             /* on the command line (not a default or PET_*) */
        bool dry_run;
        char **script;                  /* the script and its arguments (into argv) */
};

/* "nproc-per-node" -> "PET_NPROC_PER_NODE" */
static void pet_name(const char *name, char *buf, size_t size) {
        size_t n = (size_t) snprintf(buf, size, "PET_");

        for (const char *p = name; *p && n + 1 < size; p++)
                buf[n++] = *p == '-' ? '_' : (char) (*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        buf[n] = 0;
}

static bool is_true_flag(const char *v) {
        long long n;

        return v && parse_int_range(v, -(1ll << 31), 1ll << 31, &n) == 0 && n != 0;
}

static int parse_targs(int argc, char **argv, char *const *env, struct targs *a, char **ret_error) {
        /* Each option twice (dashes, underscores), plus ours; getopt_long takes unambiguous prefixes, as argparse. */
        struct option longopts[2 * _T_MAX + 3];
        char underscored[_T_MAX][64];
        char shortopts[16] = "+:hmr:t:";
        size_t n = 0;
        int c;

        for (int i = 0; i < _T_MAX; i++) {
                char pet[80];
                const char *v;

                a->value[i] = topt_defaults[i];
                if (topts[i].env_default) {
                        pet_name(topts[i].name, pet, sizeof(pet));
                        v = strv_env_get(env, pet);
                        if (v && topts[i].flag) {
                                long long ignored;
                                if (*v && parse_int_range(v, -(1ll << 31), 1ll << 31, &ignored) < 0)
                                        return error_setf(ret_error, -EINVAL, "%s='%s' is not a number: set it to 1 or 0", pet, v);
                                a->value[i] = is_true_flag(v) ? "1" : NULL;
                        } else if (v)
                                a->value[i] = v;
                }
                longopts[n++] = (struct option) { topts[i].name, topts[i].flag ? no_argument : required_argument,
                                                  NULL, 0x100 + i };
                if (strchr(topts[i].name, '-')) {
                        snprintf(underscored[i], sizeof(underscored[i]), "%s", topts[i].name);
                        for (char *p = underscored[i]; *p; p++)
                                if (*p == '-')
                                        *p = '_';
                        longopts[n++] = (struct option) { underscored[i],
                                                          topts[i].flag ? no_argument : required_argument, NULL,
                                                          0x100 + i };
                }
        }
        longopts[n++] = (struct option) { "dry-run", no_argument, NULL, 0x100 + T_DRY_RUN };
        longopts[n++] = (struct option) { "help", no_argument, NULL, 0x100 + T_HELP };
        longopts[n] = (struct option) {};

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
                int i;

                switch (c) {
                case 'h':
                        return 0;
                case 'm':
                        c = 0x100 + T_MODULE;
                        break;
                case 'r':
                        c = 0x100 + T_REDIRECTS;
                        break;
                case 't':
                        c = 0x100 + T_TEE;
                        break;
                case ':':
                        return error_setf(ret_error, -EINVAL, "%s needs a value", argv[optind - 1]);
                case '?':
                        if (optopt)
                                return error_setf(ret_error, -EINVAL, "unknown option '-%c'", optopt);
                        return error_setf(ret_error, -EINVAL, "unknown or ambiguous option '%s'", argv[optind - 1]);
                }
                i = c - 0x100;
                if (i == T_HELP)
                        return 0;
                if (i == T_DRY_RUN) {
                        a->dry_run = true;
                        continue;
                }
                if (i < 0 || i >= _T_MAX)
                        return error_setf(ret_error, -EINVAL, "unknown option '%s'", argv[optind - 1]);
                a->value[i] = topts[i].flag ? "1" : optarg;
                a->given[i] = true;
        }
        if (optind >= argc)
                return error_setf(ret_error, -EINVAL, "no training script: give one after the options, e.g. "
                                       "ringmaster torchrun --nproc-per-node 2 train.py");
        a->script = argv + optind;
        return 1;
}

/* torchrun's Std: "0".."3", or "LOCAL_RANK:0..3,..." (per rank). Sets which streams, for every rank or per rank. */
struct std_spec {
        int all;                /* -1: per rank */
        int per_rank[1024];     /* -1: not named (0) */
};

static int parse_std(const char *what, const char *s, struct std_spec *ret, char **ret_error) {
        long long v, k;

        ret->all = -1;
        for (size_t i = 0; i < ELEMENTSOF(ret->per_rank); i++)
                ret->per_rank[i] = 0;
        if (parse_int_range(s, 0, 3, &v) == 0) {
                ret->all = (int) v;
                return 0;
        }
        _cleanup_free_ char *copy = strdup(s);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *colon = strchr(t, ':');

                if (!colon)
                        goto bad;
                *colon = 0;
                if (parse_int_range(t, 0, ELEMENTSOF(ret->per_rank) - 1, &k) < 0 ||
                    parse_int_range(colon + 1, 0, 3, &v) < 0)
                        goto bad;
                ret->per_rank[k] = (int) v;
        }
        return 0;
bad:
        return error_setf(ret_error, -EINVAL, "%s '%s': give 0 (none), 1 (stdout), 2 (stderr), 3 (both), or per local rank, "
                               "e.g. 0:3,1:1", what, s);
}

static int std_of(const struct std_spec *s, int local_rank) {
        return s->all >= 0 ? s->all : local_rank < (int) ELEMENTSOF(s->per_rank) ? s->per_rank[local_rank] : 0;
}

static bool std_any(const struct std_spec *s) {
        if (s->all >= 0)
                return s->all != 0;
        for (size_t i = 0; i < ELEMENTSOF(s->per_rank); i++)
                if (s->per_rank[i])
                        return true;
        return false;
}

/* ${role_name} ${local_rank} ${rank} ${hostname} -> %n %l %r %h; a literal % doubled. */
static int prefix_template(const char *t, char **ret, char **ret_error) {
        static const struct { const char *macro, *escape; } macros[] = {
                { "${role_name}", "%n" }, { "${local_rank}", "%l" }, { "${rank}", "%r" }, { "${hostname}", "%h" },
                { "$role_name", "%n" }, { "$local_rank", "%l" }, { "$rank", "%r" }, { "$hostname", "%h" },
        };
        size_t size = 2 * strlen(t) + 1, n = 0;
        char *out = malloc(size);

        if (!out)
                return -ENOMEM;
        for (const char *p = t; *p;) {
                bool done = false;

                for (size_t i = 0; i < ELEMENTSOF(macros) && !done; i++)
                        if (startswith(p, macros[i].macro)) {
                                out[n++] = macros[i].escape[0];
                                out[n++] = macros[i].escape[1];
                                p += strlen(macros[i].macro);
                                done = true;
                        }
                if (done)
                        continue;
                if (*p == '$' && p[1] == '{') {
                        free(out);
                        return error_setf(ret_error, -EINVAL, "--log-line-prefix-template '%s': only ${role_name}, ${local_rank}, "
                                               "${rank} and ${hostname} are known", t);
                }
                if (*p == '%')
                        out[n++] = '%';
                out[n++] = *p++;
        }
        out[n] = 0;
        *ret = out;
        return 0;
}

/* "host:port", "host", "[v6]:port"; port 0 when absent. */
static int split_endpoint(const char *what, const char *s, int default_port, char **ret_host, int *ret_port,
                          char **ret_error) {
        const char *colon, *host_end;
        long long port = default_port;
        const char *host = s;

        if (s[0] == '[') {
                host_end = strchr(s, ']');
                if (!host_end)
                        goto bad;
                host = s + 1;
                colon = host_end[1] == ':' ? host_end + 1 : NULL;
                if (!colon && host_end[1])
                        goto bad;
        } else {
                colon = strrchr(s, ':');
                if (colon && strchr(s, ':') != colon)
                        goto bad;          /* a bare IPv6 address: needs brackets */
                host_end = colon ? colon : s + strlen(s);
        }
        if (colon && parse_int_range(colon + 1, 0, 65535, &port) < 0)
                goto bad;
        if (host_end == host)
                goto bad;
        *ret_host = strndup(host, (size_t) (host_end - host));
        if (!*ret_host)
                return -ENOMEM;
        *ret_port = (int) port;
        return 0;
bad:
        return error_setf(ret_error, -EINVAL, "%s '%s' is not HOST[:PORT] (an IPv6 address in brackets, e.g. [fd00::1]:29400)",
                    what, s);
}

/* What --rdzv-conf says that ringmaster uses; the rest only tunes torchrun's own rendezvous protocol. */
struct rdzv_conf {
        uint64_t join_timeout_usec, last_call_usec;     /* 0: not given */
        char *protocol;                                 /* etcd: http or https */
        char *cacert, *cert, *key;                      /* etcd over TLS (PEM files) */
};

static void rdzv_conf_done(struct rdzv_conf *c) {
        free(c->protocol);
        free(c->cacert);
        free(c->cert);
        free(c->key);
}

static int check_rdzv_conf(const char *conf, struct rdzv_conf *ret, char **ret_error) {
        static const char *const inert[] = {
                "read_timeout", "close_timeout", "timeout", "keep_alive_interval",
                "keep_alive_max_attempt", "is_host", "use_agent_store", "heartbeat", "store_type",
                "use_libuv", "rank",
        };
        /* etcd's TLS: the etcd backend's names, then etcd-v3's. */
        static const struct { const char *name; size_t field; } tls[] = {
                { "protocol", offsetof(struct rdzv_conf, protocol) },
                { "cacert", offsetof(struct rdzv_conf, cacert) },
                { "ca_cert", offsetof(struct rdzv_conf, cacert) },
                { "cert", offsetof(struct rdzv_conf, cert) },
                { "ssl_cert", offsetof(struct rdzv_conf, cert) },
                { "key", offsetof(struct rdzv_conf, key) },
                { "ssl_cert_key", offsetof(struct rdzv_conf, key) },
        };
        _cleanup_free_ char *copy = strdup(conf);
        char *save = NULL;

        if (!copy)
                return -ENOMEM;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(t, '=');
                bool known = false;

                if (!eq)
                        return error_setf(ret_error, -EINVAL, "--rdzv-conf '%s': '%s' is not KEY=VALUE", conf, t);
                *eq = 0;
                if (strcmp(t, "join_timeout") == 0) {
                        if (parse_duration_usec(eq + 1, &ret->join_timeout_usec) < 0)
                                return error_setf(ret_error, -EINVAL, "--rdzv-conf join_timeout=%s: give seconds", eq + 1);
                        continue;
                }
                if (strcmp(t, "last_call_timeout") == 0) {
                        if (parse_duration_usec(eq + 1, &ret->last_call_usec) < 0)
                                return error_setf(ret_error, -EINVAL, "--rdzv-conf last_call_timeout=%s: give seconds",
                                                  eq + 1);
                        continue;
                }
                for (size_t i = 0; i < ELEMENTSOF(tls) && !known; i++)
                        if (strcmp(t, tls[i].name) == 0) {
                                char **field = (char **) ((char *) ret + tls[i].field);
                                free(*field);
                                *field = strdup(eq + 1);
                                if (!*field)
                                        return -ENOMEM;
                                known = true;
                        }
                for (size_t i = 0; i < ELEMENTSOF(inert); i++)
                        known = known || strcmp(t, inert[i]) == 0;
                if (!known)
                        return error_setf(ret_error, -EINVAL, "--rdzv-conf: '%s' is not a key ringmaster knows (join_timeout, "
                                               "last_call_timeout, etcd's protocol, cacert, cert, key (etcd-v3: ca_cert, "
                                               "ssl_cert, ssl_cert_key), and torchrun's rendezvous tuning: read_timeout, "
                                               "close_timeout, timeout, keep_alive_*, is_host, use_agent_store)", t);
        }
        if (ret->protocol && strcasecmp(ret->protocol, "http") != 0 && strcasecmp(ret->protocol, "https") != 0)
                return error_setf(ret_error, -EINVAL, "--rdzv-conf protocol=%s: give http or https", ret->protocol);
        return 0;
}

/* --rdzv-conf's join_timeout and last_call_timeout, for a rendezvous (0: not given). */
static int rdzv_timeouts(char ***run, const struct rdzv_conf *conf) {
        int r = 0;

        if (conf->join_timeout_usec) {
                r |= strv_extend(run, "--join-timeout");
                r |= strv_extendf(run, "%gs", (double) conf->join_timeout_usec / 1e6);
        }
        if (conf->last_call_usec) {
                r |= strv_extend(run, "--last-call-timeout");
                r |= strv_extendf(run, "%gs", (double) conf->last_call_usec / 1e6);
        }
        return r;
}

/* etcd's endpoint and TLS files, as torchrun's etcd backends take them from --rdzv-conf. */
static int etcd_store(char ***run, const char *endpoint, const struct rdzv_conf *conf) {
        bool https = conf->protocol ? strcasecmp(conf->protocol, "https") == 0 : conf->cacert || conf->cert;
        int r = 0;

        r |= strv_extend(run, "--store");
        r |= strv_extendf(run, "etcd://%s%s", https ? "https://" : "", endpoint);
        if (conf->cacert) {
                r |= strv_extend(run, "--store-cacert");
                r |= strv_extend(run, conf->cacert);
        }
        if (conf->cert) {
                r |= strv_extend(run, "--store-cert");
                r |= strv_extend(run, conf->cert);
        }
        if (conf->key) {
                r |= strv_extend(run, "--store-key");
                r |= strv_extend(run, conf->key);
        }
        return r;
}

static int translate(const struct targs *a, char *const *env, char ***ret, char **ret_error) {
        _cleanup_strv_free_ char **run = NULL;
        _cleanup_free_ char *master_addr = NULL, *prefix = NULL;
        const char *v, *backend;
        struct std_spec redirects, tee;
        long long min_nodes, max_nodes, n;
        int master_port = 0, r = 0;
        __attribute__((cleanup(rdzv_conf_done))) struct rdzv_conf conf = {};
        bool standalone = a->value[T_STANDALONE] != NULL;
        bool multi, etcd;

        if (strv_extend(&run, "run") < 0)
                return -ENOMEM;

        /* Refused: what ringmaster cannot do. */
        if (a->value[T_VIRTUAL_LOCAL_RANK])
                return error_setf(ret_error, -EINVAL, "--virtual-local-rank is not supported: 'ringmaster run --bind-gpu visible' "
                                       "gives each rank its own GPU as CUDA device 0 (LOCAL_RANK stays the local "
                                       "rank)");
        if (a->value[T_LOGS_SPECS])
                return error_setf(ret_error, -EINVAL, "--logs-specs: ringmaster has no LogsSpecs plugins; --log-dir keeps each "
                                       "rank's raw output in DIR/RUN_ID/rank-N.out and rank-N.err");
        if (a->value[T_NUMA_BINDING])
                return error_setf(ret_error, -EINVAL, "--numa-binding is not supported: start ringmaster under numactl, or bind "
                                       "in the worker");
        if (a->value[T_PRINT_COMPLETION])
                return error_setf(ret_error, -EINVAL, "--print-completion is not supported by ringmaster torchrun");
        if ((v = a->value[T_DUPLICATE_STDOUT_FILTERS]) && *v)
                return error_setf(ret_error, -EINVAL, "--duplicate-stdout-filters is not supported: --log-dir keeps every line "
                                       "of every rank; filter those files");
        if ((v = a->value[T_DUPLICATE_STDERR_FILTERS]) && *v)
                return error_setf(ret_error, -EINVAL, "--duplicate-stderr-filters is not supported: --log-dir keeps every line "
                                       "of every rank; filter those files");
        if (strcmp(a->value[T_EVENT_LOG_HANDLER], "null") != 0)
                return error_setf(ret_error, -EINVAL, "--event-log-handler %s: ringmaster has no torchelastic event handlers; "
                                       "its JSON report (--report FILE) and the journal carry the job's events",
                            a->value[T_EVENT_LOG_HANDLER]);
        v = a->value[T_START_METHOD];
        if (strcmp(v, "spawn") != 0 && strcmp(v, "fork") != 0 && strcmp(v, "forkserver") != 0)
                return error_setf(ret_error, -EINVAL, "--start-method '%s': give spawn, fork or forkserver", v);
        /* Accepted: the signals ringmaster forwards to every rank. */
        {
                _cleanup_free_ char *copy = strdup(a->value[T_SIGNALS_TO_HANDLE]);
                char *save = NULL;

                if (!copy)
                        return -ENOMEM;
                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                        if (strcmp(t, "SIGTERM") != 0 && strcmp(t, "SIGINT") != 0 && strcmp(t, "SIGHUP") != 0 &&
                            strcmp(t, "SIGQUIT") != 0)
                                return error_setf(ret_error, -EINVAL, "--signals-to-handle: ringmaster stops the job on SIGTERM, "
                                                       "SIGINT, SIGHUP and SIGQUIT; %s is not forwarded (SIGUSR2 "
                                                       "asks ringmaster for a diagnosis of every rank; with --init, "
                                                       "SIGUSR1 is forwarded)", t);
        }
        v = a->value[T_MONITOR_INTERVAL];
        {
                uint64_t usec;
                if (parse_duration_usec(v, &usec) < 0 || usec == 0)
                        return error_setf(ret_error, -EINVAL, "--monitor-interval '%s': give seconds above 0 (ringmaster waits for "
                                               "events instead of polling, so the value has no effect)", v);
        }

        /* Nodes. */
        v = a->value[T_NNODES];
        {
                const char *colon = strchr(v, ':');
                char lo[32];

                if (colon) {
                        snprintf(lo, sizeof(lo), "%.*s", (int) (colon - v), v);
                        if (parse_int_range(lo, 1, 65536, &min_nodes) < 0 ||
                            parse_int_range(colon + 1, 1, 65536, &max_nodes) < 0 || min_nodes > max_nodes)
                                return error_setf(ret_error, -EINVAL, "--nnodes '%s': give N, or MIN:MAX with 0 < MIN <= MAX", v);
                } else {
                        if (parse_int_range(v, 1, 65536, &min_nodes) < 0)
                                return error_setf(ret_error, -EINVAL, "--nnodes '%s': give N, or MIN:MAX with 0 < MIN <= MAX", v);
                        max_nodes = min_nodes;
                }
        }
        backend = a->value[T_RDZV_BACKEND];
        etcd = strcmp(backend, "etcd") == 0 || strcmp(backend, "etcd-v2") == 0 || strcmp(backend, "etcd-v3") == 0;
        /* Elastic: the round's size is fixed once it closes (no resizing while it runs); etcd's or c10d's rendezvous. */
        if (min_nodes != max_nodes && !etcd && strcmp(backend, "c10d") != 0)
                return error_setf(ret_error, -EINVAL, "--nnodes %s: with --rdzv-backend %s ringmaster cannot number nodes "
                                  "as they join: give --rdzv-backend c10d --rdzv-endpoint NODE0:29400, or etcd-v3 "
                                  "--rdzv-endpoint ETCD:2379 --rdzv-id ID (the round then holds MIN to MAX nodes), or "
                                  "a fixed count, --nnodes %lld", v,
                                  backend, max_nodes);
        if (!etcd && strcmp(backend, "static") != 0 && strcmp(backend, "c10d") != 0)
                return error_setf(ret_error, -EINVAL, "--rdzv-backend '%s': ringmaster knows static, c10d (node ranks from "
                                       "--node-rank or the launcher) and etcd-v3 (etcd, etcd-v2: the same store)",
                            backend);
        if (standalone) {
                if (max_nodes != 1)
                        return error_setf(ret_error, -EINVAL, "--standalone is one node: leave out --nnodes %s", v);
                backend = "c10d";
        }
        multi = max_nodes > 1;
        r = check_rdzv_conf(a->value[T_RDZV_CONF], &conf, ret_error);
        if (r < 0)
                return r;
        if (!etcd && (conf.protocol || conf.cacert || conf.cert || conf.key))
                return error_setf(ret_error, -EINVAL, "--rdzv-conf protocol, cacert, cert and key are etcd's: they need "
                                  "--rdzv-backend etcd or etcd-v3 (the %s backend has no TLS)", backend);

        if (parse_int_range(a->value[T_NODE_RANK], 0, 65535, &n) < 0)
                return error_setf(ret_error, -EINVAL, "--node-rank '%s': give a node index from 0", a->value[T_NODE_RANK]);
        if (multi || a->given[T_NNODES]) {
                r |= strv_extend(&run, "--nnodes");
                if (min_nodes < max_nodes)
                        r |= strv_extendf(&run, "%lld:%lld", min_nodes, max_nodes);
                else
                        r |= strv_extendf(&run, "%lld", max_nodes);
        } else
                /* torchrun is one node unless told otherwise: no launcher's variables are read. */
                r |= strv_extend(&run, "--nodes-from=none");
        if (multi && n >= max_nodes)
                return error_setf(ret_error, -EINVAL, "--node-rank %lld is not below --nnodes %lld: number nodes from 0", n, max_nodes);
        /* torchrun's static rendezvous takes --node-rank (default 0); c10d and etcd number nodes as they join:
         * there, a given --node-rank, else the launcher's (srun, LWS, Indexed Job), else (etcd) the store's
         * rendezvous, in join order. */
        if (min_nodes < max_nodes && (a->given[T_NODE_RANK] || strv_env_get(env, "PET_NODE_RANK")))
                return error_setf(ret_error, -EINVAL, "--nnodes %s with --node-rank: an elastic job's nodes are numbered "
                                  "as they join: leave --node-rank out", v);
        if (multi && (strcmp(backend, "static") == 0 || a->given[T_NODE_RANK] || strv_env_get(env, "PET_NODE_RANK"))) {
                r |= strv_extend(&run, "--node-rank");
                r |= strv_extendf(&run, "%lld", n);
        }

        /* Where rank 0 listens. */
        if (!standalone) {
                bool static_backend = strcmp(backend, "static") == 0;
                const char *endpoint = a->value[T_RDZV_ENDPOINT];

                if (endpoint && *endpoint && !etcd) {
                        r = split_endpoint("--rdzv-endpoint", endpoint, static_backend ? 29500 : 29400, &master_addr,
                                           &master_port, ret_error);
                        if (r < 0)
                                return r;
                } else {
                        if (!static_backend && !etcd && multi)
                                return error_setf(ret_error, -EINVAL, "--rdzv-backend %s with %lld nodes needs --rdzv-endpoint "
                                                       "HOST:PORT (node 0's address: rank 0 listens there)",
                                            backend, max_nodes);
                        master_addr = strdup(a->value[T_MASTER_ADDR]);
                        if (!master_addr)
                                return -ENOMEM;
                        if ((v = a->value[T_MASTER_PORT])) {
                                if (parse_int_range(v, 1, 65535, &n) < 0)
                                        return error_setf(ret_error, -EINVAL, "--master-port '%s': give 1 to 65535", v);
                                master_port = (int) n;
                        } else if (multi && !etcd)
                                master_port = 29500;    /* etcd: node 0 picks one and publishes it */
                }
                if (etcd) {
                        if (!endpoint || !*endpoint)
                                return error_setf(ret_error, -EINVAL, "--rdzv-backend %s needs --rdzv-endpoint HOST:PORT, the "
                                                       "etcd server (e.g. etcd-0:2379)", backend);
                        r |= etcd_store(&run, endpoint, &conf);
                        r |= rdzv_timeouts(&run, &conf);
                }
                /* etcd: node 0 publishes its address (or the launcher says it), unless one is given. */
                if (!etcd || !multi || a->given[T_MASTER_ADDR] || strv_env_get(env, "PET_MASTER_ADDR")) {
                        r |= strv_extend(&run, "--master-addr");
                        r |= strv_extend(&run, master_addr);
                }
                if (master_port) {
                        r |= strv_extend(&run, "--master-port");
                        r |= strv_extendf(&run, "%d", master_port);
                }
                /* c10d without a node rank: the nodes number themselves through a TCPStore at the endpoint (node
                 * 0 hosts it), unless a launcher numbers them. */
                if (multi && strcmp(backend, "c10d") == 0 && !a->given[T_NODE_RANK] &&
                    !strv_env_get(env, "PET_NODE_RANK")) {
                        r |= strv_extend(&run, "--rendezvous");
                        r |= strv_extendf(&run, strchr(master_addr, ':') ? "c10d://[%s]:%d" : "c10d://%s:%d",
                                          master_addr, master_port);
                        r |= rdzv_timeouts(&run, &conf);
                }
        }
        if ((v = a->value[T_LOCAL_ADDR]) && *v) {
                r |= strv_extend(&run, "--node-addr");
                r |= strv_extend(&run, v);
        }

        /* Ranks of this node. */
        v = a->value[T_NPROC_PER_NODE];
        if (parse_int_range(v, 1, 1024, &n) == 0) {
                r |= strv_extend(&run, "-n");
                r |= strv_extendf(&run, "%lld", n);
        } else if (strcmp(v, "gpu") == 0 || strcmp(v, "cpu") == 0 || strcmp(v, "auto") == 0) {
                r |= strv_extend(&run, "-n");
                r |= strv_extend(&run, v);
        } else
                return error_setf(ret_error, -EINVAL, "--nproc-per-node '%s': give a number from 1 to 1024, gpu (one rank a GPU), "
                                       "cpu (one a CPU) or auto (gpu, else cpu)", v);

        /* The run's id and role. */
        v = a->value[T_RDZV_ID];
        if (v && strcmp(v, "none") != 0 && !standalone) {
                r |= strv_extend(&run, "--run-id");
                r |= strv_extend(&run, v);
        } else if (etcd)
                return error_setf(ret_error, -EINVAL, "--rdzv-backend %s needs --rdzv-id, the job's name in the store (the same "
                                       "on every node, e.g. $SLURM_JOB_ID)", backend);
        r |= strv_extend(&run, "--role");
        r |= strv_extend(&run, a->value[T_ROLE]);

        /* Restarts and shutdown. */
        if (parse_int_range(a->value[T_MAX_RESTARTS], 0, 1000000, &n) < 0)
                return error_setf(ret_error, -EINVAL, "--max-restarts '%s': give 0 or more", a->value[T_MAX_RESTARTS]);
        r |= strv_extend(&run, "--max-restarts");
        r |= strv_extendf(&run, "%lld", n);
        v = a->value[T_SHUTDOWN_TIMEOUT];
        if (!v)
                v = strv_env_get(env, "TORCH_ELASTIC_SHUTDOWN_TIMEOUT");
        if (v) {
                if (parse_int_range(v, 0, 86400, &n) < 0)
                        return error_setf(ret_error, -EINVAL, "--shutdown-timeout '%s': give whole seconds", v);
        } else
                n = 30;         /* torchrun's: SIGTERM, 30 s, SIGKILL */
        r |= strv_extend(&run, "--grace");
        r |= strv_extendf(&run, "%lld", n);

        /* Output: torchrun shows the workers' lines as they are, unless tee'd (then with a prefix). */
        r = parse_std("--redirects", a->value[T_REDIRECTS], &redirects, ret_error);
        if (r < 0)
                return r;
        r = parse_std("--tee", a->value[T_TEE], &tee, ret_error);
        if (r < 0)
                return r;
        if (std_any(&tee)) {
                v = a->value[T_LOG_LINE_PREFIX_TEMPLATE];
                if (!v || !*v)
                        v = strv_env_get(env, "TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE");
                if (v && *v) {
                        r = prefix_template(v, &prefix, ret_error);
                        if (r < 0)
                                return r;
                }
                r = strv_extend(&run, "--prefix");
                r |= strv_extend(&run, prefix ?: "torchrun");
        } else
                r = strv_extend(&run, "--prefix=none");
        if ((v = a->value[T_LOG_DIR]) && *v) {
                r |= strv_extend(&run, "--log-dir");
                r |= strv_extend(&run, v);
        } else if (std_any(&tee) || std_any(&redirects)) {
                /* torchrun writes them under a fresh temporary directory; ringmaster under $TMPDIR/torchelastic. */
                const char *tmp = strv_env_get(env, "TMPDIR");
                r |= strv_extend(&run, "--log-dir");
                r |= strv_extendf(&run, "%s/torchelastic", tmp && *tmp ? tmp : "/tmp");
        }
        {
                /* The console: --local-ranks-filter, less the ranks whose streams are redirected (both of them). */
                long long filter[1024];
                size_t nfilter = 0;
                bool filtered = (v = a->value[T_LOCAL_RANKS_FILTER]) && *v;
                _cleanup_free_ char *list = NULL;
                size_t len = 0;

                if (filtered) {
                        _cleanup_free_ char *copy = strdup(v);
                        char *save = NULL;
                        if (!copy)
                                return -ENOMEM;
                        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                                if (nfilter == ELEMENTSOF(filter) || parse_int_range(t, 0, 1023, &filter[nfilter]) < 0)
                                        return error_setf(ret_error, -EINVAL, "--local-ranks-filter '%s': give local ranks, e.g. "
                                                               "0,1,2", v);
                                nfilter++;
                        }
                        if (nfilter == 0)
                                return error_setf(ret_error, -EINVAL, "--local-ranks-filter '%s': give local ranks, e.g. 0,1,2", v);
                }
                for (int lr = 0; lr < 1024; lr++) {
                        int s = std_of(&redirects, lr);
                        if (s == 1 || s == 2)
                                return error_setf(ret_error, -EINVAL, "--redirects %s: ringmaster shows or hides both streams of a "
                                                       "rank together: give 3 (or LOCAL_RANK:3)",
                                            a->value[T_REDIRECTS]);
                }
                if (filtered || std_any(&redirects)) {
                        /* Shown local ranks as ranges ("0,2-1023"), or none. */
                        bool shown[1024];
                        size_t count = 0;

                        for (int lr = 0; lr < 1024; lr++) {
                                shown[lr] = !filtered;
                                for (size_t i = 0; i < nfilter; i++)
                                        shown[lr] = shown[lr] || filter[i] == lr;
                                if (std_of(&redirects, lr) == 3)
                                        shown[lr] = false;
                                count += shown[lr];
                        }
                        list = calloc(1024, 12);
                        if (!list)
                                return -ENOMEM;
                        for (int lr = 0; lr < 1024;) {
                                int end;
                                if (!shown[lr]) {
                                        lr++;
                                        continue;
                                }
                                for (end = lr; end + 1 < 1024 && shown[end + 1]; end++)
                                        ;
                                if (end == lr)
                                        len += (size_t) sprintf(list + len, "%s%d", len ? "," : "", lr);
                                else
                                        len += (size_t) sprintf(list + len, "%s%d-%d", len ? "," : "", lr, end);
                                lr = end + 1;
                        }
                        if (count < 1024) {
                                r |= strv_extend(&run, "--console-ranks");
                                r |= strv_extend(&run, count == 0 ? "none" : list);
                        }
                }
        }
        if (r < 0)
                return -ENOMEM;

        /* The command. */
        r = strv_extend(&run, "--");
        {
                bool module = a->value[T_MODULE] != NULL, no_python = a->value[T_NO_PYTHON] != NULL;
                const char *python = strv_env_get(env, "PYTHON_EXEC");

                if (!python || !*python)
                        python = "python3";
                if (a->value[T_RUN_PATH]) {
                        /* torchrun: runpy.run_path(script, run_name="__main__") in its own interpreter. */
                        r |= strv_extend(&run, python);
                        r |= strv_extend(&run, "-u");
                        r |= strv_extend(&run, "-c");
                        r |= strv_extend(&run, "import runpy, sys; sys.argv = sys.argv[1:]; "
                                        "runpy.run_path(sys.argv[0], run_name='__main__')");
                } else if (no_python) {
                        if (module)
                                return error_setf(ret_error, -EINVAL, "Don't use both the '--no-python' flag and the '--module' "
                                                       "flag at the same time.");
                } else {
                        r |= strv_extend(&run, python);
                        r |= strv_extend(&run, "-u");
                        if (module)
                                r |= strv_extend(&run, "-m");
                }
        }
        for (char **s = a->script; *s; s++)
                r |= strv_extend(&run, *s);
        if (r < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(run);
        return 1;
}

int torchrun_translate(int argc, char **argv, char *const *env, char ***ret_run_argv, char **ret_error) {
        struct targs a = {};
        int r;

        *ret_error = NULL;
        r = parse_targs(argc, argv, env, &a, ret_error);
        if (r <= 0)
                return r;
        r = translate(&a, env, ret_run_argv, ret_error);
        return r < 0 ? r : a.dry_run ? 2 : 1;
}

void torchrun_help(void) {
        printf("Usage: ringmaster torchrun [TORCHRUN OPTIONS] SCRIPT [ARGS...]\n"
               "       ringmaster-torchrun [TORCHRUN OPTIONS] SCRIPT [ARGS...]\n"
               "\n"
               "torchrun's command line, run by ringmaster: the options are translated into\n"
               "'ringmaster run' options (--dry-run prints them) and the ranks get torchrun's\n"
               "environment.  Both spellings (--nproc-per-node, --nproc_per_node) and PET_*\n"
               "variables work as with torchrun.  See ringmaster(1), TORCHRUN.\n"
               "\n"
               "Honoured:\n"
               "  --nproc-per-node N|gpu|cpu|auto   --nnodes N (MIN:MAX with c10d, etcd-v3)\n"
               "  --node-rank N  --master-addr A  --master-port P  --local-addr A\n"
               "  --standalone  --rdzv-backend static|c10d|etcd-v3  --rdzv-endpoint HOST:PORT\n"
               "  --rdzv-id ID  --rdzv-conf join_timeout=S,last_call_timeout=S,...\n"
               "  --max-restarts N  --role NAME\n"
               "  -m, --module  --no-python  --run-path  --log-dir DIR  -r, --redirects 0|3|R:3,...\n"
               "  -t, --tee SPEC  --log-line-prefix-template T  --local-ranks-filter LIST\n"
               "  --shutdown-timeout S  --signals-to-handle (SIGTERM,SIGINT,SIGHUP,SIGQUIT)\n"
               "Accepted, no effect: --monitor-interval (ringmaster waits for events),\n"
               "  --start-method (each rank is its own process), --event-log-handler null\n"
               "Refused (with what to do instead): --virtual-local-rank, --logs-specs,\n"
               "  --numa-binding, --duplicate-stdout-filters, --duplicate-stderr-filters,\n"
               "  --print-completion, --nnodes MIN:MAX with static, per-stream --redirects 1|2\n"
               "With c10d or etcd-v3 and no --node-rank (nor srun, LWS, Indexed Job), the\n"
               "nodes number themselves in join order: through etcd (node 0 publishes\n"
               "MASTER_ADDR), or through a TCPStore at the c10d endpoint (its node is node 0).\n"
               "\n"
               "ringmaster's own:\n"
               "      --dry-run   print the 'ringmaster run' command line and exit\n"
               "  -h, --help      this help\n");
}

/* A word for a POSIX shell: as is when safe, else in single quotes. */
static void print_shell_word(FILE *f, const char *s) {
        bool plain = *s != 0;

        for (const char *p = s; *p && plain; p++)
                plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *p) != NULL;
        if (plain) {
                fputs(s, f);
                return;
        }
        fputc('\'', f);
        for (const char *p = s; *p; p++)
                if (*p == '\'')
                        fputs("'\\''", f);
                else
                        fputc(*p, f);
        fputc('\'', f);
}

extern char **environ;

int torchrun_main(int argc, char **argv) {
        _cleanup_strv_free_ char **run = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = torchrun_translate(argc, argv, environ, &run, &error);
        if (r == 0) {
                torchrun_help();
                return 0;
        }
        if (r == -EINVAL) {
                fprintf(stderr, "ringmaster torchrun: %s\nTry 'ringmaster torchrun --help'.\n", error);
                return EXIT_RM_USAGE;
        }
        if (r < 0) {
                fprintf(stderr, "ringmaster torchrun: %s\n", strerror(-r));
                return EXIT_RM_INTERNAL;
        }
        if (r == 2) {
                fputs("ringmaster", stdout);
                for (char **s = run; *s; s++) {
                        fputc(' ', stdout);
                        print_shell_word(stdout, *s);
                }
                fputc('\n', stdout);
                return 0;
        }
        return run_main((int) strv_length(run), run);
}

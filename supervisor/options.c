/* SPDX-License-Identifier: MIT */
/*
 * `ringmaster run` (and check) options: one table of descriptors (name,
 * argument, parser, field, help) from which getopt's table, the parsing
 * and --help all come.  To add an option: a field in struct run_options
 * (options.h) with its default in options_parse(), one row in
 * option_table[] below, and its entry in man/ringmaster.1's OPTIONS
 * (tests/supervisor/test-options-man.py checks that the two agree).
 */
#include <assert.h>
#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "capture.h"
#include "log.h"
#include "names.h"
#include "notify.h"
#include "options.h"
#include "parse-util.h"
#include "rundir.h"
#include "stack.h"

/* The command being parsed: "run" or "check". */
static const char *parsing = "run";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, "ringmaster %s: ", parsing);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'ringmaster %s --help'.\n", parsing);
        return -EINVAL;
}

/* ------------------------------------------------------------ the descriptors */

enum option_kind {
        OPTION_FLAG,       /* no argument: value is stored in the field */
        OPTION_COUNT,      /* a whole number from min to max */
        OPTION_DURATION,   /* seconds (parse_duration_usec), at least min microseconds */
        OPTION_SIZE,       /* bytes (parse_size) from min to max */
        OPTION_STRING,     /* a string, checked by parse when set; the field is a char * */
        OPTION_CHOICE,     /* one of choices' names: its value is stored */
        OPTION_CUSTOM,     /* parse does all */
        OPTION_HELP,
};

struct option_choice {
        const char *name;
        int value;
};

struct option_desc {
        const char *name;               /* --name */
        char short_name;                /* -c, or 0 */
        const char *arg;                /* what --help calls its argument; NULL: none */
        enum option_kind kind;
        size_t offset, size;            /* the field of struct run_options (not CUSTOM, HELP) */
        long long min, max;             /* COUNT, SIZE; DURATION: min */
        long long value;                /* FLAG */
        const struct option_choice *choices;  /* CHOICE: ended by a NULL name */
        /* STRING: a check of the argument (NULL: none); CUSTOM: the whole parse.  < 0 after a usage error. */
        int (*parse)(const struct option_desc *d, const char *arg, struct run_options *o);
        const char *section;            /* --help's heading before it, or NULL */
        const char *help;               /* --help's text: lines separated by '\n'; NULL: not in run's --help */
};

#define FIELD(f) .offset = offsetof(struct run_options, f), .size = sizeof(((struct run_options *) NULL)->f)

static void store(struct run_options *o, const struct option_desc *d, long long v) {
        char *p = (char *) o + d->offset;

        /* bool, int, uint32_t, an enum, size_t, uint64_t: what the table's fields are. */
        if (d->size == 1) {
                bool b = v != 0;

                memcpy(p, &b, 1);
        } else if (d->size == 4) {
                int32_t i = (int32_t) v;

                memcpy(p, &i, 4);
        } else {
                int64_t i = v;

                assert(d->size == 8);
                memcpy(p, &i, 8);
        }
}

static int parse_count(const struct option_desc *d, const char *arg, long long min, long long max, long long *ret) {
        int r = parse_int_range(arg, min, max, ret);

        if (r == -ERANGE)
                return usage_error("--%s: %s is out of range: give a number from %lld to %lld", d->name, arg, min,
                                   max);
        if (r < 0)
                return usage_error("--%s: '%s' is not a whole number: give a number from %lld to %lld", d->name, arg,
                                   min, max);
        return 0;
}

static int parse_duration_option(const struct option_desc *d, const char *arg, uint64_t min, uint64_t *ret) {
        int r = parse_duration_usec(arg, ret);

        if (r < 0)
                return usage_error("--%s: '%s' is not a duration%s: give seconds, e.g. 10, 2.5, 500ms or 1m", d->name,
                                   arg, r == -ERANGE ? " of at most a day" : "");
        if (*ret < min)
                return usage_error("--%s: %s is below the minimum of %g s", d->name, arg, secs(min));
        return 0;
}

static int parse_size_option(const struct option_desc *d, const char *arg, uint64_t min, uint64_t max,
                             uint64_t *ret) {
        char lo[32], hi[32];
        int r = parse_size(arg, ret);

        if (r < 0 || *ret < min || *ret > max)
                return usage_error("--%s: '%s' is %s: give a byte count from %s to %s, e.g. 64K, 16M, 1G", d->name,
                                   arg, r < 0 ? "not a size" : "out of range", format_bytes(lo, sizeof(lo), min),
                                   format_bytes(hi, sizeof(hi), max));
        return 0;
}

static int set_string(char **field, const char *value) {
        char *c = strdup(value);

        if (!c)
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

/* "--bind-gpu: 'x' is not a mode: give none or visible". */
static int parse_choice(const struct option_desc *d, const char *arg, struct run_options *o) {
        char names[256] = "", what[32];
        size_t n = 0, len = 0;

        for (const struct option_choice *c = d->choices; c->name; c++, n++)
                if (strcmp(arg, c->name) == 0) {
                        store(o, d, c->value);
                        return 0;
                }
        for (size_t i = 0; i < n && len < sizeof(names); i++)
                len += (size_t) snprintf(names + len, sizeof(names) - len, "%s%s",
                                         i == 0 ? "" : i + 1 == n ? " or " : ", ", d->choices[i].name);
        for (len = 0; d->arg[len] && len + 1 < sizeof(what); len++)
                what[len] = (char) (d->arg[len] - 'A' + 'a');
        what[len] = 0;
        return usage_error("--%s: '%s' is not a %s: give %s", d->name, arg, what, names);
}

/* Parses arg for d into o: 0, or < 0 after a usage error. */
static int option_apply(const struct option_desc *d, const char *arg, struct run_options *o) {
        long long v;
        uint64_t u;
        int r;

        switch (d->kind) {
        case OPTION_FLAG:
                store(o, d, d->value);
                return 0;
        case OPTION_COUNT:
                r = parse_count(d, arg, d->min, d->max, &v);
                if (r == 0)
                        store(o, d, v);
                return r;
        case OPTION_DURATION:
                r = parse_duration_option(d, arg, (uint64_t) d->min, &u);
                if (r == 0)
                        store(o, d, (long long) u);
                return r;
        case OPTION_SIZE:
                r = parse_size_option(d, arg, (uint64_t) d->min, (uint64_t) d->max, &u);
                if (r == 0)
                        store(o, d, (long long) u);
                return r;
        case OPTION_STRING:
                r = d->parse ? d->parse(d, arg, o) : 0;
                if (r == 0)
                        r = set_string((char **) ((char *) o + d->offset), arg);
                return r;
        case OPTION_CHOICE:
                return parse_choice(d, arg, o);
        case OPTION_CUSTOM:
                return d->parse(d, arg, o);
        case OPTION_HELP:
                break;
        }
        assert(false);
        return -EINVAL;
}

/* ------------------------------------------------------------ the checks and custom parsers */

static bool gpu_entry_valid(const char *s) {
        long long v;

        if (parse_int_range(s, 0, 1023, &v) == 0)
                return true;
        if (!startswith(s, "GPU-") && !startswith(s, "MIG-"))
                return false;
        for (const char *p = s; *p; p++)
                if (!(rm_name_char_valid(*p, true) || *p == ':'))
                        return false;
        return strlen(s) > 4;
}

static int parse_gpus(const struct option_desc *d, const char *arg, struct run_options *o) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *copy = NULL;
        char *save = NULL;

        copy = strdup(arg);
        l = calloc(1, sizeof(char *));
        if (!copy || !l)
                return -ENOMEM;
        if (!*arg || arg[strlen(arg) - 1] == ',' || arg[0] == ',' || strstr(arg, ",,"))
                return usage_error("--gpus: '%s' has an empty entry: give a comma-separated list such as 0,1,2,3",
                                   arg);
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (!gpu_entry_valid(t))
                        return usage_error("--gpus: '%s' is not a GPU: give indices (0,1,...) or GPU-/MIG- UUIDs", t);
                if (strv_extend(&l, t) < 0)
                        return -ENOMEM;
        }
        strv_free(o->gpus);
        o->gpus = TAKE_PTR(l);
        return 0;
}

static int check_run_id(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (!run_id_valid(arg))
                return usage_error("--run-id: '%s' is not a run id: use 1 to %d of A-Z a-z 0-9 . _ -, not starting "
                                   "with '.' or '-'", arg, RUN_ID_MAX);
        return 0;
}

static int check_absolute(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (arg[0] != '/')
                return usage_error("--%s: '%s' is not an absolute path: give one starting with /", d->name, arg);
        return 0;
}

static int check_master_addr(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (!*arg || strlen(arg) > 253)
                return usage_error("--master-addr: give a host name or an IP address");
        for (const char *p = arg; *p; p++)
                if (!rm_name_char_valid(*p, false) && !strchr(":[]%", *p))
                        return usage_error("--master-addr: '%s' is not a host name or an IP address", arg);
        return 0;
}

static int check_role(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (!*arg || strlen(arg) > ROLE_MAX)
                return usage_error("--role: give a name of 1 to %d characters", ROLE_MAX);
        for (const char *p = arg; *p; p++)
                if (!rm_name_char_valid(*p, false))
                        return usage_error("--role: '%s' has '%c': use letters, digits, '.', '_' and '-'", arg, *p);
        return 0;
}

static int check_not_empty(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (!*arg)
                return usage_error("--%s: give a %s", d->name, strcmp(d->arg, "DIR") == 0 ? "directory" : strcmp(d->arg, "NAME") == 0 ? "name" : "file name");
        return 0;
}

static int parse_prefix(const struct option_desc *d, const char *arg, struct run_options *o) {
        const char *t = arg;

        if (strcmp(arg, "rank") == 0)
                t = "[rank %r] ";
        else if (strcmp(arg, "torchrun") == 0)
                t = "[%n%l]:";
        else if (strcmp(arg, "none") == 0)
                t = "";
        else if (!capture_prefix_template_valid(arg))
                return usage_error("--prefix: '%s' has an unknown %%-sequence: use rank, torchrun, none, or a "
                                   "template with %%r %%l %%n %%s %%p %%h %%%%", arg);
        return set_string(&o->prefix, t);
}

static int parse_worker_prefix(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (strcmp(arg, "none") == 0)
                arg = "";
        else if (!capture_prefix_template_valid(arg))
                return usage_error("--worker-prefix: '%s' has an unknown %%-sequence: use none, or a template with "
                                   "%%r %%l %%n %%s %%p %%w %%%%", arg);
        return set_string(&o->worker_prefix, arg);
}

static int parse_shm_slots(const struct option_desc *d, const char *arg, struct run_options *o) {
        long long v;
        int r = parse_count(d, arg, 2, 1 << 24, &v);

        if (r == 0 && (v & (v - 1)) != 0)
                return usage_error("--shm-slots: %lld is not a power of two: try %lld", v,
                                   1ll << (64 - __builtin_clzll((unsigned long long) v)));
        if (r == 0)
                o->shm_slots = (uint32_t) v;
        return r;
}

/* NAME=SECS: NAME a phase name (notify.h), SECS a duration. */
static int add_phase_timeout(const struct option_desc *d, const char *arg, struct run_options *o) {
        const char *eq = strrchr(arg, '=');
        struct phase_timeout *l;
        uint64_t usec;
        char *name;

        if (!eq || !rm_name_valid_len(arg, (size_t) (eq - arg), NOTIFY_PHASE_NAME_MAX, false))
                return usage_error("--phase-timeout: '%s' is not NAME=SECS with NAME 1 to %d of A-Z a-z 0-9 . _ -, "
                                   "e.g. nccl-init=120", arg, NOTIFY_PHASE_NAME_MAX);
        if (parse_duration_usec(eq + 1, &usec) < 0)
                return usage_error("--phase-timeout: '%s' is not a duration of at most a day: give seconds, e.g. "
                                   "%.*s=120, 500ms or 2m", eq + 1, (int) (eq - arg), arg);
        name = strndup(arg, (size_t) (eq - arg));
        l = realloc(o->phase_timeouts, (o->n_phase_timeouts + 1) * sizeof(*l));
        if (!name || !l) {
                free(name);
                if (l)
                        o->phase_timeouts = l;
                return log_error_errno(-ENOMEM, "out of memory");
        }
        o->phase_timeouts = l;
        l[o->n_phase_timeouts++] = (struct phase_timeout) { .name = name, .usec = usec };
        return 0;
}

static int parse_no_preflight(const struct option_desc *d, const char *arg, struct run_options *o) {
        o->preflight = false;
        if (strcmp(parsing, "check") == 0)
                return usage_error("--no-preflight: ringmaster check is the preflight");
        return 0;
}

static int parse_json(const struct option_desc *d, const char *arg, struct run_options *o) {
        o->json = true;
        if (strcmp(parsing, "check") != 0)
                return usage_error("--json is an option of ringmaster check: for run's JSON report give --report "
                                   "FILE");
        return 0;
}

static int parse_stack_tool(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (stack_tool_parse(arg, &o->stack_tool) < 0)
                return usage_error("--stack-tool: '%s' is not a tool: give auto, eu-stack, gdb or none", arg);
        return 0;
}

/*
 * --diagnose-signal: none, or a signal by name (with or without SIG, any
 * case), SIGRTMIN+N, or number; not one that stops the job, the kernel's or
 * job control's.
 */
static int parse_diagnose_signal(const struct option_desc *d, const char *arg, struct run_options *o) {
        const char *name = arg;
        char buf[32];
        long long v;
        int sig = 0;

        if (strcmp(arg, "none") == 0) {
                o->diagnose_signal = 0;
                return 0;
        }
        if (strncasecmp(name, "SIG", 3) == 0)
                name += 3;
        if (parse_int_range(arg, 1, NSIG - 1, &v) == 0)
                sig = (int) v;
        else
                for (int k = 1; k < NSIG && sig == 0; k++)
                        if (strcasecmp(signal_name(k, buf, sizeof(buf)) + 3, name) == 0)
                                sig = k;
        if (sig == 0)
                return usage_error("--%s: '%s' is not a signal: give a name such as SIGUSR2 or USR1, SIGRTMIN+N, a "
                                   "number, or none", d->name, arg);
        switch (sig) {
        case SIGINT: case SIGTERM: case SIGHUP: case SIGQUIT:
                return usage_error("--%s: %s stops the job: give another (SIGUSR2, SIGUSR1, ...)", d->name,
                                   signal_name(sig, buf, sizeof(buf)));
        case SIGKILL: case SIGSTOP: case SIGCHLD: case SIGCONT: case SIGTSTP: case SIGTTIN: case SIGTTOU:
        case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGABRT: case SIGSYS:
        case SIGPIPE:
                return usage_error("--%s: %s is the kernel's or job control's: give another (SIGUSR2, SIGUSR1, ...)",
                                   d->name, signal_name(sig, buf, sizeof(buf)));
        default:
                o->diagnose_signal = sig;
                return 0;
        }
}

static int parse_quiet(const struct option_desc *d, const char *arg, struct run_options *o) {
        o->log_level = LOG_LEVEL_WARNING;
        return 0;
}

static int parse_verbose(const struct option_desc *d, const char *arg, struct run_options *o) {
        o->log_level = o->log_level < LOG_LEVEL_INFO ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;
        return 0;
}

/* -n N, or gpu, cpu, auto (torchrun's --nproc-per-node words; run.c counts them). */
static int parse_nproc(const struct option_desc *d, const char *arg, struct run_options *o) {
        static const struct option_choice words[] = {
                { "gpu", NPROC_GPU }, { "cpu", NPROC_CPU }, { "auto", NPROC_AUTO }, {},
        };
        long long v;
        int r;

        for (const struct option_choice *w = words; w->name; w++)
                if (strcmp(arg, w->name) == 0) {
                        o->nproc = 0;
                        o->nproc_mode = (enum nproc_mode) w->value;
                        return 0;
                }
        r = parse_count(d, arg, 1, MAX_NPROC, &v);
        if (r == 0) {
                o->nproc = (int) v;
                o->nproc_mode = NPROC_COUNT;
        }
        return r;
}

static int parse_master_addr(const struct option_desc *d, const char *arg, struct run_options *o) {
        int r = check_master_addr(d, arg, o);

        if (r == 0)
                r = set_string(&o->master_addr, arg);
        if (r == 0)
                o->master_addr_given = true;
        return r;
}

static int parse_nodes_from(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (nodes_from_parse(arg, &o->nodes_from) < 0)
                return usage_error("--nodes-from: '%s' is not a source: give auto, slurm, lws, indexed-job or none",
                                   arg);
        return 0;
}

/* --nnodes N, or MIN:MAX (elastic: the nodes number themselves through --store's rendezvous). */
static int parse_nnodes(const struct option_desc *d, const char *arg, struct run_options *o) {
        const char *colon = strchr(arg, ':');
        long long lo, hi;
        char min[32];

        if (colon) {
                snprintf(min, sizeof(min), "%.*s", (int) (colon - arg), arg);
                if (parse_int_range(min, 1, PLACEMENT_MAX_NODES, &lo) < 0 ||
                    parse_int_range(colon + 1, 1, PLACEMENT_MAX_NODES, &hi) < 0 || lo > hi)
                        goto bad;
        } else if (parse_int_range(arg, 1, PLACEMENT_MAX_NODES, &lo) == 0)
                hi = lo;
        else
                goto bad;
        o->nnodes = (int) hi;
        o->min_nnodes = (int) lo;
        return 0;
bad:
        return usage_error("--nnodes: '%s' is not a node count: give N, or MIN:MAX with 1 <= MIN <= MAX <= %d "
                           "(elastic, with --store)", arg, PLACEMENT_MAX_NODES);
}

static int parse_store(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (!startswith(arg, "etcd://") || !arg[7])
                return usage_error("--store: '%s' is not a store: give etcd://HOST:PORT (etcd's client address, e.g. "
                                   "etcd://10.0.0.5:2379)", arg);
        return set_string(&o->store, arg + 7);
}

/* --store-cacert, --store-cert, --store-key, --store-password-file: a file ringmaster can read now. */
static int check_store_file(const struct option_desc *d, const char *arg, struct run_options *o) {
        const char *what = strcmp(d->name, "store-cacert") == 0 ? "the CA certificate that signed etcd's (PEM)" :
                           strcmp(d->name, "store-cert") == 0 ? "this client's certificate (PEM)" :
                           strcmp(d->name, "store-key") == 0 ? "the client certificate's private key (PEM)" :
                           "a file holding --store-user's password";

        if (!*arg || access(arg, R_OK) < 0)
                return usage_error("--%s: cannot read '%s' (%s): give %s", d->name, arg,
                                   *arg ? strerror(errno) : "an empty name", what);
        return 0;
}

static int parse_rendezvous(const struct option_desc *d, const char *arg, struct run_options *o) {
        if (!startswith(arg, "c10d://") || !arg[7] || !strchr(arg + 7, ':'))
                return usage_error("--rendezvous: '%s' is not a rendezvous: give c10d://HOST:PORT (torch's TCPStore, "
                                   "hosted by the node whose address HOST is), or use --store etcd://HOST:PORT", arg);
        return set_string(&o->rendezvous, arg + 7);
}

/* --console-ranks: "none", or local ranks and ranges ("0,2-5"): every other rank is hidden. */
static int parse_console_ranks(const struct option_desc *d, const char *arg, struct run_options *o) {
        _cleanup_free_ bool *hidden = malloc(MAX_NPROC * sizeof(bool));
        _cleanup_free_ char *copy = strdup(arg);
        char *save = NULL;

        if (!hidden || !copy)
                return log_error_errno(-ENOMEM, "out of memory");
        for (int i = 0; i < MAX_NPROC; i++)
                hidden[i] = true;
        if (strcmp(arg, "none") != 0) {
                if (!*arg || arg[strlen(arg) - 1] == ',')
                        return usage_error("--console-ranks: '%s' has an empty entry: give ranks such as 0,2-3, "
                                           "or none", arg);
                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        char *dash = strchr(t, '-');
                        long long lo, hi;

                        if (dash)
                                *dash = 0;
                        if (parse_int_range(t, 0, MAX_NPROC - 1, &lo) < 0 ||
                            parse_int_range(dash ? dash + 1 : t, lo, MAX_NPROC - 1, &hi) < 0)
                                return usage_error("--console-ranks: '%s' is not a list of local ranks: give e.g. "
                                                   "0,2-3, or none", arg);
                        for (long long i = lo; i <= hi; i++)
                                hidden[i] = false;
                }
        }
        free(o->console_hidden);
        o->console_hidden = TAKE_PTR(hidden);
        return 0;
}

/* ------------------------------------------------------------ the table */

#define FLAG(f, v) .kind = OPTION_FLAG, FIELD(f), .value = (v)
#define COUNT(f, lo, hi) .kind = OPTION_COUNT, FIELD(f), .min = (lo), .max = (hi)
#define DURATION(f, lo) .arg = "SECS", .kind = OPTION_DURATION, FIELD(f), .min = (long long) (lo)
#define SIZE(f, lo, hi) .arg = "BYTES", .kind = OPTION_SIZE, FIELD(f), .min = (long long) (lo), .max = (long long) (hi)
#define STRING(f, check) .kind = OPTION_STRING, FIELD(f), .parse = (check)
#define CUSTOM(fn) .kind = OPTION_CUSTOM, .parse = (fn)
#define CHOICE(f, ...) .kind = OPTION_CHOICE, FIELD(f), .choices = (const struct option_choice[]) { __VA_ARGS__, {} }

static const struct option_desc option_table[] = {
        { "nproc", 'n', .arg = "N|gpu|cpu|auto", CUSTOM(parse_nproc), .section = "Launch",
          .help = "ranks to start on this node (default: the visible\n"
                  "GPUs, else 1); gpu: one a GPU, cpu: one a CPU, auto:\n"
                  "gpu, else cpu" },
        { "gpus", 0, .arg = "LIST", CUSTOM(parse_gpus),
          .help = "GPUs to use, e.g. 0,2,3 (indices into the current\n"
                  "CUDA_VISIBLE_DEVICES when set) or GPU-/MIG- UUIDs" },
        { "bind-gpu", 0, .arg = "MODE",
          CHOICE(bind_gpu, { "none", BIND_GPU_NONE }, { "visible", BIND_GPU_VISIBLE }),
          .help = "none (default): every rank sees every GPU, LOCAL_RANK\n"
                  "picks; visible: CUDA_VISIBLE_DEVICES is the rank's GPU" },
        { "run-id", 0, .arg = "ID", STRING(run_id, check_run_id),
          .help = "the job's id ([A-Za-z0-9._-], 1..64; default: random)" },
        { "run-dir", 0, .arg = "DIR", STRING(run_dir, check_absolute),
          .help = "private run directory (default:\n"
                  "$XDG_RUNTIME_DIR/ringmaster/ID or /tmp/ringmaster-UID/ID)" },
        { "master-addr", 0, .arg = "ADDR", CUSTOM(parse_master_addr),
          .help = "MASTER_ADDR (default 127.0.0.1; several nodes: the\n"
                  "launcher's node 0)" },
        { "master-port", 0, .arg = "PORT", COUNT(master_port, 1, 65535),
          .help = "MASTER_PORT (default: a free port)" },
        { "role", 0, .arg = "NAME", STRING(role, check_role),
          .help = "ROLE_NAME (default: default)" },

        { "grace", 0, DURATION(grace_usec, 0), .section = "Failure and restarts",
          .help = "SIGTERM to SIGKILL (default 10)" },
        { "kill-timeout", 0, DURATION(kill_timeout_usec, 0),
          .help = "after SIGKILL, how long to wait for the reaping\n"
                  "before reporting what is stuck (default 5)" },
        { "contain", 0, .arg = "MODE",
          CHOICE(contain, { "auto", CONTAIN_AUTO }, { "cgroup", CONTAIN_CGROUP }, { "watcher", CONTAIN_WATCHER },
                 { "none", CONTAIN_NONE }),
          .help = "keep every process of the job from outliving\n"
                  "ringmaster: auto (default), cgroup, watcher, none" },
        { "max-restarts", 0, .arg = "N", COUNT(max_restarts, 0, 1000000),
          .help = "restart the whole job up to N times (default 0)" },
        { "restart-delay", 0, DURATION(restart_delay_usec, MIN_RESTART_DELAY_USEC),
          .help = "first delay between attempts, doubling (default and\n"
                  "minimum 1)" },
        { "restart-delay-max", 0, DURATION(restart_delay_max_usec, MIN_RESTART_DELAY_USEC),
          .help = "the longest delay (default 60)" },

        { "prefix", 0, .arg = "FORMAT", CUSTOM(parse_prefix), .section = "Output",
          .help = "rank (default, \"[rank N] \"), torchrun (\"[default0]:\"),\n"
                  "none, or a template: %r rank, %l local rank, %n role,\n"
                  "%s out/err, %p pid, %h host, %% a percent sign" },
        { "no-escape", 0, FLAG(escape, false),
          .help = "pass control bytes and invalid UTF-8 through unchanged\n"
                  "(default: shown as \\xNN)" },
        { "max-line", 0, SIZE(max_line, 64, 16u << 20),
          .help = "longer lines are cut (default 16K)" },
        { "output-buffer", 0, SIZE(output_buffer, 4096, 1u << 30),
          .help = "per output stream of ringmaster; lines that do not fit\n"
                  "are dropped and counted (default 4M)" },
        { "tail-lines", 0, .arg = "N", COUNT(tail_lines, 0, 100000),
          .help = "lines of each rank's output kept for the report (20)" },
        { "tail-bytes", 0, SIZE(tail_bytes, 0, 64u << 20),
          .help = "bytes kept for them, per stream (default 16K)" },
        { "log-dir", 0, .arg = "DIR", STRING(log_dir, check_not_empty),
          .help = "raw logs in DIR/ID/rank-N.out and rank-N.err" },
        { "journal", 0, FLAG(journal, JOURNAL_ON),
          .help = "send lines to journald too" },
        { "no-journal", 0, FLAG(journal, JOURNAL_OFF),
          .help = "never, even when stderr is the journal" },
        { "report", 0, .arg = "FILE", STRING(report_path, check_not_empty),
          .help = "write the JSON report to FILE" },
        { "console-ranks", 0, .arg = "LIST", CUSTOM(parse_console_ranks),
          .help = "only these local ranks' lines reach the terminal, e.g.\n"
                  "0 or 0,2-3; none: no rank's (the log files and the\n"
                  "report keep every line)" },
        { "no-tty", 0, FLAG(tty, false),
          .help = "plain lines, no live status table, even on a terminal" },
        { "worker-prefix", 0, .arg = "FORMAT", CUSTOM(parse_worker_prefix),
          .help = "the prefix of a spawned worker's lines (default\n"
                  "\"[rank %r/%w] \"; %w: w<its group rank or index>, else\n"
                  "p<pid>), or none" },
        { "worker-capture", 0, .arg = "MODE", CHOICE(worker_capture, { "on", true }, { "off", false }),
          .help = "on (default): each worker the ranks spawn and that\n"
                  "announces itself gets its own output; off" },
        { "quiet", 'q', CUSTOM(parse_quiet),
          .help = "only errors and the failure report" },
        { "verbose", 'v', CUSTOM(parse_verbose),
          .help = "say more (twice: debug)" },

        { "ready-timeout", 0, DURATION(ready_timeout_usec, 0),
          .section = "Deadlines (workers report through NOTIFY_SOCKET; exit status 124)",
          .help = "every rank READY=1 within SECS of the start" },
        { "phase-timeout", 0, .arg = "NAME=SECS", CUSTOM(add_phase_timeout),
          .help = "no rank in phase NAME longer (repeatable)" },
        { "straggler-timeout", 0, DURATION(straggler_timeout_usec, 0),
          .help = "no rank short of a phase (or of READY) longer\n"
                  "than SECS after the first rank reached it (default\n"
                  "60; 0: off)" },
        { "watchdog", 0, DURATION(watchdog_usec, 0),
          .help = "a ready rank sends WATCHDOG=1 at least every SECS" },
        { "worker-failure", 0, .arg = "MODE",
          CHOICE(worker_failure_report_only, { "teardown", false }, { "report", true }),
          .help = "teardown (default): a spawned worker that fails ends\n"
                  "the job as a rank's failure does; report: only said" },

        { "shm-slots", 0, .arg = "N", CUSTOM(parse_shm_slots), .section = "Shared memory (libshmring, RINGMASTER_SHM)",
          .help = "slots per ring (power of two, default 64)" },
        { "shm-slot-size", 0, SIZE(shm_slot_size, 8, 1u << 20),
          .help = "inline bytes per slot (default 4K)" },
        { "shm-overflow", 0, SIZE(shm_overflow, 0, 64ull << 30),
          .help = "the broadcast channel's overflow area (default 16M)" },
        { "shm-queue-overflow", 0, SIZE(shm_queue_overflow, 0, 64ull << 30),
          .help = "each queue writer's overflow area (default 4M)" },
        { "shm-kv-entries", 0, .arg = "N", COUNT(shm_kv_entries, 0, 65536),
          .help = "entries of the key-value table \"kv\" (default 4096;\n"
                  "0: no table)" },
        { "shm-kv-value-size", 0, SIZE(shm_kv_value_size, 1, 65536),
          .help = "its largest value (default 512)" },
        { "no-shm", 0, FLAG(shm, false),
          .help = "create no segment" },

        { "no-preflight", 0, CUSTOM(parse_no_preflight), .section = "Preflight",
          .help = "start without the checks of 'ringmaster check'\n"
                  "(/dev/shm, memlock, GPUs, peer access, NCCL, port)" },
        /* check's (check_help()); run refuses it. */
        { "json", 0, CUSTOM(parse_json) },

        { "diagnose-timeout", 0, DURATION(diagnose_timeout_usec, 0),
          .section = "Hang diagnosis (before a deadline's teardown; on SIGUSR2 to ringmaster)",
          .help = "bound on a whole diagnosis (default 5; 0: /proc\n"
                  "and NCCL logs only)" },
        { "diagnose-signal", 0, .arg = "SIG", CUSTOM(parse_diagnose_signal),
          .help = "the signal that asks for one (default SIGUSR2; none:\n"
                  "no signal, and --init forwards SIGUSR2 to the ranks)" },
        { "stack-tool", 0, .arg = "TOOL", CUSTOM(parse_stack_tool),
          .help = "auto (default: eu-stack, else gdb), eu-stack, gdb,\n"
                  "or none: what takes a rank's native stack" },
        { "stack-timeout", 0, DURATION(stack_timeout_usec, 0),
          .help = "the stack tool's limit (default 3)" },
        { "python-hooks", 0, .arg = "MODE",
          CHOICE(python_hooks, { "auto", PYTHON_HOOKS_AUTO }, { "on", PYTHON_HOOKS_ON }, { "off", PYTHON_HOOKS_OFF }),
          .help = "auto (default: on when COMMAND is Python), on, off:\n"
                  "ringmaster's start-up hook on the workers' PYTHONPATH\n"
                  "(tracebacks on SIGUSR1, phases), PYTHONFAULTHANDLER=1" },

        { "nnodes", 0, .arg = "N|MIN:MAX", CUSTOM(parse_nnodes),
          .section = "Several nodes (one ringmaster a node; see ringmaster(1), MULTI-NODE)",
          .help = "nodes in the job (default 1, or the launcher's);\n"
                  "MIN:MAX (elastic) with --store, no --node-rank" },
        { "node-rank", 0, .arg = "I", COUNT(node_rank, 0, PLACEMENT_MAX_NODES - 1),
          .help = "this node's index, 0..N-1 (default: the launcher's,\n"
                  "else, with --store, the order the nodes join in)" },
        { "nodes-from", 0, .arg = "SOURCE", CUSTOM(parse_nodes_from),
          .help = "auto (default: Slurm's srun, a LeaderWorkerSet or an\n"
                  "Indexed Job, whichever set its variables), slurm, lws,\n"
                  "indexed-job, or none" },
        { "store", 0, .arg = "etcd://HOST:PORT", CUSTOM(parse_store),
          .help = "the cross-node view in etcd: a failure on any node\n"
                  "stops every node; node 0 names stragglers of any node" },
        { "rendezvous", 0, .arg = "c10d://HOST:PORT", CUSTOM(parse_rendezvous),
          .help = "without --store: number the nodes as they join through\n"
                  "torch's TCPStore, hosted by the node at HOST (node 0)" },
        { "store-cacert", 0, .arg = "FILE", STRING(store_cacert, check_store_file),
          .help = "etcd over TLS: the CA that signed etcd's certificate\n"
                  "(PEM; the endpoint becomes https://)" },
        { "store-cert", 0, .arg = "FILE", STRING(store_cert, check_store_file),
          .help = "with --store-key: the client certificate etcd asks\n"
                  "for (its --client-cert-auth), PEM" },
        { "store-key", 0, .arg = "FILE", STRING(store_key, check_store_file),
          .help = "the client certificate's private key (PEM)" },
        { "store-user", 0, .arg = "NAME", STRING(store_user, check_not_empty),
          .help = "etcd's user (etcd with auth enabled); the password\n"
                  "from --store-password-file or $" STORE_PASSWORD_ENV },
        { "store-password-file", 0, .arg = "FILE", STRING(store_password_file, check_store_file),
          .help = "the file whose first line is --store-user's password" },
        { "join-timeout", 0, DURATION(join_timeout_usec, 0),
          .help = "with --store: node 0 fails the job when a node has not\n"
                  "registered within SECS, and the rendezvous gives up\n"
                  "(default 600; 0: no limit)" },
        { "last-call-timeout", 0, DURATION(last_call_usec, 0),
          .help = "--nnodes MIN:MAX: once MIN nodes joined, how long\n"
                  "the rendezvous waits for more (default 30)" },
        { "node-addr", 0, .arg = "NAME", STRING(node_addr, check_not_empty),
          .help = "this node's name in reports, and MASTER_ADDR if the\n"
                  "rendezvous makes it node 0 (default: the host name;\n"
                  "MASTER_ADDR: its address toward etcd)" },

        { "init", 0, FLAG(init, true), .section = "Containers",
          .help = "act as the container's init, as tini does: reap every\n"
                  "zombie, forward SIGUSR1, SIGUSR2 (see --diagnose-signal),\n"
                  "SIGWINCH, SIGALRM, SIGVTALRM, SIGPROF, SIGURG, SIGCONT and\n"
                  "SIGPWR to the ranks (implied when ringmaster is PID 1)" },
        { "stdin", 0, .arg = "MODE",
          CHOICE(stdin_mode, { "rank0", STDIN_RANK0 }, { "all", STDIN_ALL }, { "none", STDIN_NONE }),
          .help = "whose stdin is ringmaster's: rank0 (default), all, none;\n"
                  "the others read /dev/null" },
        { "foreground", 0, .arg = "MODE",
          CHOICE(foreground, { "auto", FOREGROUND_AUTO }, { "on", FOREGROUND_ON }, { "off", FOREGROUND_OFF }),
          .help = "the one rank as the terminal's foreground job, its\n"
                  "output not captured (sh -i, Ctrl-C, Ctrl-Z): on; off;\n"
                  "auto (default): as a container's init (docker run -it)\n"
                  "with -n 1 and stdin a terminal" },

        { "help", 'h', .kind = OPTION_HELP, .section = "",
          .help = "this help" },
};

/* --help's column for the text, and the indentation of its later lines. */
#define HELP_COLUMN 29

static void print_option_help(const struct option_desc *d) {
        char left[64];
        int n;

        if (d->short_name)
                n = snprintf(left, sizeof(left), "  -%c, --%s", d->short_name, d->name);
        else
                n = snprintf(left, sizeof(left), "      --%s", d->name);
        if (d->arg)
                n += snprintf(left + n, sizeof(left) - (size_t) n, " %s", d->arg);
        /* A long one: its text two spaces after it. */
        printf("%-*s", n + 2 > HELP_COLUMN ? n + 2 : HELP_COLUMN, left);
        for (const char *p = d->help;;) {
                size_t len = strcspn(p, "\n");

                printf("%.*s\n", (int) len, p);
                if (!p[len])
                        break;
                p += len + 1;
                printf("%*s", HELP_COLUMN, "");
        }
}

void options_help_of(const char *const *names) {
        for (; *names; names++)
                for (size_t i = 0; i < ELEMENTSOF(option_table); i++)
                        if (strcmp(option_table[i].name, *names) == 0 && option_table[i].help)
                                print_option_help(&option_table[i]);
}

void run_help(void) {
        printf("Usage: ringmaster run [OPTIONS] [--] COMMAND [ARGS...]\n"
               "\n"
               "Starts N copies of COMMAND as the ranks of one job, with torchrun's\n"
               "environment, captures their output, and tears the whole job down when\n"
               "one rank fails.  See ringmaster(1).\n");
        for (size_t i = 0; i < ELEMENTSOF(option_table); i++) {
                const struct option_desc *d = &option_table[i];

                if (!d->help)
                        continue;
                if (d->section)
                        printf("\n%s%s", d->section, *d->section ? ":\n" : "");
                print_option_help(d);
        }
        printf("\n"
               "Exit status: 0 when every rank exited 0; else the first failing rank's status\n"
               "(128+N for signal N), also after a stop signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT)\n"
               "that ringmaster forwarded when the ranks ended within --grace; 128+N when\n"
               "ringmaster was stopped by signal N and had to kill a rank; 100 usage error;\n"
               "111 ringmaster failed itself (or a preflight check failed); 112 another node\n"
               "of the job failed (--store); 124 a deadline passed.\n");
}

/* ------------------------------------------------------------ parsing */

static int options_parse(int argc, char **argv, struct run_options *o, bool check) {
        struct option long_options[ELEMENTSOF(option_table) + 1] = {};
        char short_options[2 + 2 * ELEMENTSOF(option_table) + 1] = "+:";
        size_t k = 2;
        int c, r;

        *o = (struct run_options) {
                .bind_gpu = BIND_GPU_NONE,
                .grace_usec = DEFAULT_GRACE_USEC,
                .kill_timeout_usec = DEFAULT_KILL_TIMEOUT_USEC,
                .restart_delay_usec = DEFAULT_RESTART_DELAY_USEC,
                .restart_delay_max_usec = DEFAULT_RESTART_DELAY_MAX_USEC,
                .escape = true,
                .max_line = DEFAULT_MAX_LINE,
                .tail_lines = DEFAULT_TAIL_LINES,
                .tail_bytes = DEFAULT_TAIL_BYTES,
                .output_buffer = DEFAULT_OUTPUT_BUFFER,
                .journal = JOURNAL_AUTO,
                .shm = true,
                .shm_slots = DEFAULT_SHM_SLOTS,
                .shm_slot_size = DEFAULT_SHM_SLOT_SIZE,
                .shm_overflow = DEFAULT_SHM_OVERFLOW,
                .shm_queue_overflow = DEFAULT_SHM_QUEUE_OVERFLOW,
                .shm_kv_entries = DEFAULT_SHM_KV_ENTRIES,
                .shm_kv_value_size = DEFAULT_SHM_KV_VALUE_SIZE,
                .straggler_timeout_usec = DEFAULT_STRAGGLER_TIMEOUT_USEC,
                .diagnose_timeout_usec = DEFAULT_DIAGNOSE_TIMEOUT_USEC,
                .stack_tool = STACK_TOOL_AUTO,
                .stack_timeout_usec = DEFAULT_STACK_TIMEOUT_USEC,
                .python_hooks = PYTHON_HOOKS_AUTO,
                .contain = CONTAIN_AUTO,
                .log_level = LOG_LEVEL_NOTICE,
                .preflight = true,
                .tty = true,
                .node_rank = -1,
                .join_timeout_usec = DEFAULT_JOIN_TIMEOUT_USEC,
                .last_call_usec = DEFAULT_LAST_CALL_USEC,
                .worker_capture = true,
                .stdin_mode = STDIN_RANK0,
                .foreground = FOREGROUND_AUTO,
                .diagnose_signal = DEFAULT_DIAGNOSE_SIGNAL,
        };
        parsing = check ? "check" : "run";
        if (set_string(&o->master_addr, "127.0.0.1") < 0 || set_string(&o->role, "default") < 0 ||
            set_string(&o->prefix, "[rank %r] ") < 0 || set_string(&o->worker_prefix, "[rank %r/%w] ") < 0)
                return log_error_errno(-ENOMEM, "out of memory");

        /* getopt's tables, from ours: a long option's value is 0x100 + its row. */
        for (size_t i = 0; i < ELEMENTSOF(option_table); i++) {
                const struct option_desc *d = &option_table[i];

                long_options[i] = (struct option) { d->name, d->arg ? required_argument : no_argument, NULL,
                                                    (int) (0x100 + i) };
                if (d->short_name) {
                        short_options[k++] = d->short_name;
                        if (d->arg)
                                short_options[k++] = ':';
                }
        }

        optind = 0;
        opterr = 0;
        /* '+': options end at the first non-option, so COMMAND's own options are its own. */
        while ((c = getopt_long(argc, argv, short_options, long_options, NULL)) >= 0) {
                const struct option_desc *d = NULL;

                if (c == ':')
                        return usage_error("%s needs a value", argv[optind - 1]);
                if (c >= 0x100 && (size_t) (c - 0x100) < ELEMENTSOF(option_table))
                        d = &option_table[c - 0x100];
                else
                        for (size_t i = 0; i < ELEMENTSOF(option_table); i++)
                                if (c != '?' && option_table[i].short_name == c)
                                        d = &option_table[i];
                if (!d)
                        return usage_error("unknown option '%s'", argv[optind - 1]);
                if (d->kind == OPTION_HELP) {
                        /* check's help is check.c's to print. */
                        if (!check)
                                run_help();
                        return 0;
                }
                r = option_apply(d, optarg, o);
                if (r < 0)
                        return r;
        }

        if (optind >= argc && !check)
                return usage_error("no command: give one after the options, e.g. ringmaster run -n 2 -- python3 "
                                   "serve.py");
        if (optind < argc) {
                /* check: COMMAND is optional and only looked at, never started. */
                o->command = strv_copy(argv + optind);
                if (!o->command)
                        return log_error_errno(-ENOMEM, "out of memory");
                if (!o->command[0][0])
                        return usage_error("the command is an empty string");
        }
        if (!o->store && (o->store_cacert || o->store_cert || o->store_key || o->store_user || o->store_password_file))
                return usage_error("--store-%s without --store: give --store etcd://HOST:PORT too",
                                   o->store_cacert ? "cacert" : o->store_cert ? "cert" : o->store_key ? "key" :
                                   o->store_user ? "user" : "password-file");
        if (!o->store_cert != !o->store_key)
                return usage_error("--%s without --%s: a client certificate needs its private key, and a key its "
                                   "certificate: give both (PEM files)", o->store_cert ? "store-cert" : "store-key",
                                   o->store_cert ? "store-key" : "store-cert");
        if (o->store_password_file && !o->store_user)
                return usage_error("--store-password-file without --store-user: give etcd's user name too");
        if (o->restart_delay_max_usec < o->restart_delay_usec)
                return usage_error("--restart-delay-max is shorter than --restart-delay: make it at least as long");
        if (o->tail_bytes > 0 && o->tail_bytes < 2)
                o->tail_bytes = 2;
        return 1;
}

int run_options_parse(int argc, char **argv, struct run_options *o) {
        return options_parse(argc, argv, o, false);
}

int check_options_parse(int argc, char **argv, struct run_options *o) {
        return options_parse(argc, argv, o, true);
}

void run_options_done(struct run_options *o) {
        o->gpus = strv_free(o->gpus);
        o->command = strv_free(o->command);
        free(o->run_id);
        free(o->run_dir);
        free(o->master_addr);
        free(o->role);
        free(o->prefix);
        free(o->worker_prefix);
        free(o->log_dir);
        free(o->report_path);
        free(o->store);
        free(o->rendezvous);
        free(o->store_cacert);
        free(o->store_cert);
        free(o->store_key);
        free(o->store_user);
        free(o->store_password_file);
        free(o->node_addr);
        free(o->console_hidden);
        for (size_t i = 0; i < o->n_phase_timeouts; i++)
                free(o->phase_timeouts[i].name);
        free(o->phase_timeouts);
        *o = (struct run_options) {};
}

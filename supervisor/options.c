/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "capture.h"
#include "log.h"
#include "names.h"
#include "notify.h"
#include "options.h"
#include "parse-util.h"
#include "rundir.h"
#include "stack.h"

void run_help(void) {
        printf("Usage: ringmaster run [OPTIONS] [--] COMMAND [ARGS...]\n"
               "\n"
               "Starts N copies of COMMAND as the ranks of one job, with torchrun's\n"
               "environment, captures their output, and tears the whole job down when\n"
               "one rank fails.  See ringmaster(1).\n"
               "\n"
               "Launch:\n"
               "  -n, --nproc N              ranks to start (default: the visible GPUs, else 1)\n"
               "      --gpus LIST            GPUs to use, e.g. 0,2,3 (indices into the current\n"
               "                             CUDA_VISIBLE_DEVICES when set) or GPU-/MIG- UUIDs\n"
               "      --bind-gpu MODE        none (default): every rank sees every GPU, LOCAL_RANK\n"
               "                             picks; visible: CUDA_VISIBLE_DEVICES is the rank's GPU\n"
               "      --run-id ID            the job's id ([A-Za-z0-9._-], 1..64; default: random)\n"
               "      --run-dir DIR          private run directory (default:\n"
               "                             $XDG_RUNTIME_DIR/ringmaster/ID or /tmp/ringmaster-UID/ID)\n"
               "      --master-addr ADDR     MASTER_ADDR (default 127.0.0.1)\n"
               "      --master-port PORT     MASTER_PORT (default: a free port)\n"
               "      --role NAME            ROLE_NAME (default: default)\n"
               "\n"
               "Failure and restarts:\n"
               "      --grace SECS           SIGTERM to SIGKILL (default 10)\n"
               "      --kill-timeout SECS    after SIGKILL, how long to wait for the reaping\n"
               "                             before reporting what is stuck (default 5)\n"
               "      --max-restarts N       restart the whole job up to N times (default 0)\n"
               "      --restart-delay SECS   first delay between attempts, doubling (default and\n"
               "                             minimum 1)\n"
               "      --restart-delay-max SECS  the longest delay (default 60)\n"
               "\n"
               "Output:\n"
               "      --prefix FORMAT        rank (default, \"[rank N] \"), torchrun (\"[default0]:\"),\n"
               "                             none, or a template: %%r rank, %%l local rank, %%n role,\n"
               "                             %%s out/err, %%p pid, %%%% a percent sign\n"
               "      --no-escape            pass control bytes and invalid UTF-8 through unchanged\n"
               "                             (default: shown as \\xNN)\n"
               "      --max-line BYTES       longer lines are cut (default 16K)\n"
               "      --output-buffer BYTES  per output stream of ringmaster; lines that do not fit\n"
               "                             are dropped and counted (default 4M)\n"
               "      --tail-lines N         lines of each rank's output kept for the report (20)\n"
               "      --tail-bytes BYTES     bytes kept for them, per stream (default 16K)\n"
               "      --log-dir DIR          raw logs in DIR/ID/rank-N.out and rank-N.err\n"
               "      --journal              send lines to journald too\n"
               "      --no-journal           never, even when stderr is the journal\n"
               "      --report FILE          write the JSON report to FILE\n"
               "      --no-tty               plain lines, no live status table, even on a terminal\n"
               "  -q, --quiet                only errors and the failure report\n"
               "  -v, --verbose              say more (twice: debug)\n"
               "\n"
               "Deadlines (workers report through NOTIFY_SOCKET; exit status 124):\n"
               "      --ready-timeout SECS   every rank READY=1 within SECS of the start\n"
               "      --phase-timeout NAME=SECS  no rank in phase NAME longer (repeatable)\n"
               "      --straggler-timeout SECS  no rank short of a phase (or of READY) longer\n"
               "                             than SECS after the first rank reached it (default\n"
               "                             60; 0: off)\n"
               "      --watchdog SECS        a ready rank sends WATCHDOG=1 at least every SECS\n"
               "\n"
               "Shared memory (libshmring, RINGMASTER_SHM):\n"
               "      --shm-slots N          slots per ring (power of two, default 64)\n"
               "      --shm-slot-size BYTES  inline bytes per slot (default 4K)\n"
               "      --shm-overflow BYTES   the broadcast channel's overflow area (default 16M)\n"
               "      --shm-queue-overflow BYTES  each queue writer's overflow area (default 4M)\n"
               "      --shm-kv-entries N     entries of the key-value table \"kv\" (default 4096;\n"
               "                             0: no table)\n"
               "      --shm-kv-value-size BYTES  its largest value (default 512)\n"
               "      --no-shm               create no segment\n"
               "\n"
               "Preflight:\n"
               "      --no-preflight         start without the checks of 'ringmaster check'\n"
               "                             (/dev/shm, memlock, GPUs, peer access, NCCL, port)\n"
               "\n"
               "Hang diagnosis (before a deadline's teardown; on SIGUSR2 to ringmaster):\n"
               "      --diagnose-timeout SECS  bound on a whole diagnosis (default 5; 0: /proc\n"
               "                             and NCCL logs only)\n"
               "      --stack-tool TOOL      auto (default: eu-stack, else gdb), eu-stack, gdb,\n"
               "                             or none: what takes a rank's native stack\n"
               "      --stack-timeout SECS   the stack tool's limit (default 3)\n"
               "      --python-hooks MODE    auto (default: on when COMMAND is Python), on, off:\n"
               "                             ringmaster's start-up hook on the workers' PYTHONPATH\n"
               "                             (tracebacks on SIGUSR1, phases), PYTHONFAULTHANDLER=1\n"
               "\n"
               "Containers:\n"
               "      --init                 act as the container's init, as tini does: reap every\n"
               "                             zombie, forward SIGUSR1, SIGWINCH, SIGALRM, SIGCONT and\n"
               "                             SIGPWR to the ranks (implied when ringmaster is PID 1)\n"
               "\n"
               "  -h, --help                 this help\n"
               "\n"
               "Exit status: 0 when every rank exited 0; else the first failing rank's status\n"
               "(128+N for signal N); 128+N when ringmaster was stopped by signal N; 100 usage\n"
               "error; 111 ringmaster failed itself (or a preflight check failed); 124 a deadline\n"
               "passed.\n");
}

enum {
        OPT_GPUS = 0x100,
        OPT_BIND_GPU,
        OPT_RUN_ID,
        OPT_RUN_DIR,
        OPT_MASTER_ADDR,
        OPT_MASTER_PORT,
        OPT_ROLE,
        OPT_GRACE,
        OPT_KILL_TIMEOUT,
        OPT_MAX_RESTARTS,
        OPT_RESTART_DELAY,
        OPT_RESTART_DELAY_MAX,
        OPT_PREFIX,
        OPT_NO_ESCAPE,
        OPT_MAX_LINE,
        OPT_OUTPUT_BUFFER,
        OPT_TAIL_LINES,
        OPT_TAIL_BYTES,
        OPT_LOG_DIR,
        OPT_JOURNAL,
        OPT_NO_JOURNAL,
        OPT_REPORT,
        OPT_SHM_SLOTS,
        OPT_SHM_SLOT_SIZE,
        OPT_SHM_OVERFLOW,
        OPT_SHM_QUEUE_OVERFLOW,
        OPT_SHM_KV_ENTRIES,
        OPT_SHM_KV_VALUE_SIZE,
        OPT_NO_SHM,
        OPT_READY_TIMEOUT,
        OPT_PHASE_TIMEOUT,
        OPT_STRAGGLER_TIMEOUT,
        OPT_WATCHDOG,
        OPT_NO_PREFLIGHT,
        OPT_JSON,
        OPT_DIAGNOSE_TIMEOUT,
        OPT_STACK_TOOL,
        OPT_STACK_TIMEOUT,
        OPT_PYTHON_HOOKS,
        OPT_NO_TTY,
        OPT_INIT,
};

static const struct option run_long_options[] = {
        { "nproc", required_argument, NULL, 'n' },
        { "gpus", required_argument, NULL, OPT_GPUS },
        { "bind-gpu", required_argument, NULL, OPT_BIND_GPU },
        { "run-id", required_argument, NULL, OPT_RUN_ID },
        { "run-dir", required_argument, NULL, OPT_RUN_DIR },
        { "master-addr", required_argument, NULL, OPT_MASTER_ADDR },
        { "master-port", required_argument, NULL, OPT_MASTER_PORT },
        { "role", required_argument, NULL, OPT_ROLE },
        { "grace", required_argument, NULL, OPT_GRACE },
        { "kill-timeout", required_argument, NULL, OPT_KILL_TIMEOUT },
        { "max-restarts", required_argument, NULL, OPT_MAX_RESTARTS },
        { "restart-delay", required_argument, NULL, OPT_RESTART_DELAY },
        { "restart-delay-max", required_argument, NULL, OPT_RESTART_DELAY_MAX },
        { "prefix", required_argument, NULL, OPT_PREFIX },
        { "no-escape", no_argument, NULL, OPT_NO_ESCAPE },
        { "max-line", required_argument, NULL, OPT_MAX_LINE },
        { "output-buffer", required_argument, NULL, OPT_OUTPUT_BUFFER },
        { "tail-lines", required_argument, NULL, OPT_TAIL_LINES },
        { "tail-bytes", required_argument, NULL, OPT_TAIL_BYTES },
        { "log-dir", required_argument, NULL, OPT_LOG_DIR },
        { "journal", no_argument, NULL, OPT_JOURNAL },
        { "no-journal", no_argument, NULL, OPT_NO_JOURNAL },
        { "report", required_argument, NULL, OPT_REPORT },
        { "shm-slots", required_argument, NULL, OPT_SHM_SLOTS },
        { "shm-slot-size", required_argument, NULL, OPT_SHM_SLOT_SIZE },
        { "shm-overflow", required_argument, NULL, OPT_SHM_OVERFLOW },
        { "shm-queue-overflow", required_argument, NULL, OPT_SHM_QUEUE_OVERFLOW },
        { "shm-kv-entries", required_argument, NULL, OPT_SHM_KV_ENTRIES },
        { "shm-kv-value-size", required_argument, NULL, OPT_SHM_KV_VALUE_SIZE },
        { "no-shm", no_argument, NULL, OPT_NO_SHM },
        { "ready-timeout", required_argument, NULL, OPT_READY_TIMEOUT },
        { "phase-timeout", required_argument, NULL, OPT_PHASE_TIMEOUT },
        { "straggler-timeout", required_argument, NULL, OPT_STRAGGLER_TIMEOUT },
        { "watchdog", required_argument, NULL, OPT_WATCHDOG },
        { "no-preflight", no_argument, NULL, OPT_NO_PREFLIGHT },
        { "json", no_argument, NULL, OPT_JSON },
        { "diagnose-timeout", required_argument, NULL, OPT_DIAGNOSE_TIMEOUT },
        { "stack-tool", required_argument, NULL, OPT_STACK_TOOL },
        { "stack-timeout", required_argument, NULL, OPT_STACK_TIMEOUT },
        { "python-hooks", required_argument, NULL, OPT_PYTHON_HOOKS },
        { "no-tty", no_argument, NULL, OPT_NO_TTY },
        { "init", no_argument, NULL, OPT_INIT },
        { "quiet", no_argument, NULL, 'q' },
        { "verbose", no_argument, NULL, 'v' },
        { "help", no_argument, NULL, 'h' },
        {}
};

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

static const char *option_name(int c) {
        for (const struct option *o = run_long_options; o->name; o++)
                if (o->val == c)
                        return o->name;
        return "?";
}

static int parse_count(int c, const char *arg, long long min, long long max, long long *ret) {
        int r = parse_int_range(arg, min, max, ret);

        if (r == -ERANGE)
                return usage_error("--%s: %s is out of range: give a number from %lld to %lld", option_name(c), arg,
                                   min, max);
        if (r < 0)
                return usage_error("--%s: '%s' is not a whole number: give a number from %lld to %lld",
                                   option_name(c), arg, min, max);
        return 0;
}

static int parse_duration_option(int c, const char *arg, uint64_t min, uint64_t *ret) {
        int r = parse_duration_usec(arg, ret);

        if (r < 0)
                return usage_error("--%s: '%s' is not a duration%s: give seconds, e.g. 10, 2.5, 500ms or 1m",
                                   option_name(c), arg, r == -ERANGE ? " of at most a day" : "");
        if (*ret < min)
                return usage_error("--%s: %s is below the minimum of %g s", option_name(c), arg,
                                   (double) min / 1e6);
        return 0;
}

static int parse_size_option(int c, const char *arg, uint64_t min, uint64_t max, uint64_t *ret) {
        char lo[32], hi[32];
        int r = parse_size(arg, ret);

        if (r < 0 || *ret < min || *ret > max)
                return usage_error("--%s: '%s' is %s: give a byte count from %s to %s, e.g. 64K, 16M, 1G",
                                   option_name(c), arg, r < 0 ? "not a size" : "out of range",
                                   format_bytes(lo, sizeof(lo), min), format_bytes(hi, sizeof(hi), max));
        return 0;
}

static bool gpu_entry_valid(const char *s) {
        long long v;

        if (parse_int_range(s, 0, 1023, &v) == 0)
                return true;
        if (!startswith(s, "GPU-") && !startswith(s, "MIG-"))
                return false;
        for (const char *p = s; *p; p++)
                if (!(isalnum((unsigned char) *p) || strchr("-_/:.", *p)))
                        return false;
        return strlen(s) > 4;
}

static int parse_gpu_list(const char *arg, char ***ret) {
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
        *ret = TAKE_PTR(l);
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

static int check_prefix(const char *arg, char **ret) {
        const char *t = arg;

        if (strcmp(arg, "rank") == 0)
                t = "[rank %r] ";
        else if (strcmp(arg, "torchrun") == 0)
                t = "[%n%l]:";
        else if (strcmp(arg, "none") == 0)
                t = "";
        else if (!capture_prefix_template_valid(arg))
                return usage_error("--prefix: '%s' has an unknown %%-sequence: use rank, torchrun, none, or a "
                                   "template with %%r %%l %%n %%s %%p %%%%", arg);
        return set_string(ret, t);
}

static int check_role(const char *arg) {
        if (!*arg || strlen(arg) > ROLE_MAX)
                return usage_error("--role: give a name of 1 to %d characters", ROLE_MAX);
        for (const char *p = arg; *p; p++)
                if (!rm_name_char_valid(*p, false))
                        return usage_error("--role: '%s' has '%c': use letters, digits, '.', '_' and '-'", arg, *p);
        return 0;
}

static int check_master_addr(const char *arg) {
        if (!*arg || strlen(arg) > 253)
                return usage_error("--master-addr: give a host name or an IP address");
        for (const char *p = arg; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr(".-:[]_%", *p))
                        return usage_error("--master-addr: '%s' is not a host name or an IP address", arg);
        return 0;
}

/* NAME=SECS: NAME a phase name (notify.h), SECS a duration. */
static int add_phase_timeout(struct run_options *o, const char *arg) {
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

static int options_parse(int argc, char **argv, struct run_options *o, bool check) {
        long long v;
        uint64_t u;
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
                .log_level = LOG_LEVEL_NOTICE,
                .preflight = true,
                .tty = true,
        };
        parsing = check ? "check" : "run";
        if (set_string(&o->master_addr, "127.0.0.1") < 0 || set_string(&o->role, "default") < 0 ||
            set_string(&o->prefix, "[rank %r] ") < 0)
                return log_error_errno(-ENOMEM, "out of memory");

        optind = 0;
        opterr = 0;
        /* '+': options end at the first non-option, so COMMAND's own options are its own. */
        while ((c = getopt_long(argc, argv, "+:n:qvh", run_long_options, NULL)) >= 0) {
                r = 0;
                switch (c) {
                case 'n':
                        r = parse_count(c, optarg, 1, MAX_NPROC, &v);
                        o->nproc = (int) v;
                        break;
                case OPT_GPUS:
                        o->gpus = strv_free(o->gpus);
                        r = parse_gpu_list(optarg, &o->gpus);
                        break;
                case OPT_BIND_GPU:
                        if (strcmp(optarg, "none") == 0)
                                o->bind_gpu = BIND_GPU_NONE;
                        else if (strcmp(optarg, "visible") == 0)
                                o->bind_gpu = BIND_GPU_VISIBLE;
                        else
                                r = usage_error("--bind-gpu: '%s' is not a mode: give none or visible", optarg);
                        break;
                case OPT_RUN_ID:
                        if (!run_id_valid(optarg))
                                r = usage_error("--run-id: '%s' is not a run id: use 1 to %d of A-Z a-z 0-9 . _ -, "
                                                "not starting with '.' or '-'", optarg, RUN_ID_MAX);
                        else
                                r = set_string(&o->run_id, optarg);
                        break;
                case OPT_RUN_DIR:
                        if (optarg[0] != '/')
                                r = usage_error("--run-dir: '%s' is not an absolute path: give one starting with /",
                                                optarg);
                        else
                                r = set_string(&o->run_dir, optarg);
                        break;
                case OPT_MASTER_ADDR:
                        r = check_master_addr(optarg);
                        if (r == 0)
                                r = set_string(&o->master_addr, optarg);
                        break;
                case OPT_MASTER_PORT:
                        r = parse_count(c, optarg, 1, 65535, &v);
                        o->master_port = (int) v;
                        break;
                case OPT_ROLE:
                        r = check_role(optarg);
                        if (r == 0)
                                r = set_string(&o->role, optarg);
                        break;
                case OPT_GRACE:
                        r = parse_duration_option(c, optarg, 0, &o->grace_usec);
                        break;
                case OPT_KILL_TIMEOUT:
                        r = parse_duration_option(c, optarg, 0, &o->kill_timeout_usec);
                        break;
                case OPT_MAX_RESTARTS:
                        r = parse_count(c, optarg, 0, 1000000, &v);
                        o->max_restarts = (int) v;
                        break;
                case OPT_RESTART_DELAY:
                        r = parse_duration_option(c, optarg, MIN_RESTART_DELAY_USEC, &o->restart_delay_usec);
                        break;
                case OPT_RESTART_DELAY_MAX:
                        r = parse_duration_option(c, optarg, MIN_RESTART_DELAY_USEC, &o->restart_delay_max_usec);
                        break;
                case OPT_PREFIX:
                        r = check_prefix(optarg, &o->prefix);
                        break;
                case OPT_NO_ESCAPE:
                        o->escape = false;
                        break;
                case OPT_MAX_LINE:
                        r = parse_size_option(c, optarg, 64, 16u << 20, &u);
                        o->max_line = (size_t) u;
                        break;
                case OPT_OUTPUT_BUFFER:
                        r = parse_size_option(c, optarg, 4096, 1u << 30, &u);
                        o->output_buffer = (size_t) u;
                        break;
                case OPT_TAIL_LINES:
                        r = parse_count(c, optarg, 0, 100000, &v);
                        o->tail_lines = (size_t) v;
                        break;
                case OPT_TAIL_BYTES:
                        r = parse_size_option(c, optarg, 0, 64u << 20, &u);
                        o->tail_bytes = (size_t) u;
                        break;
                case OPT_LOG_DIR:
                        r = *optarg ? set_string(&o->log_dir, optarg)
                                    : usage_error("--log-dir: give a directory");
                        break;
                case OPT_JOURNAL:
                        o->journal = JOURNAL_ON;
                        break;
                case OPT_NO_JOURNAL:
                        o->journal = JOURNAL_OFF;
                        break;
                case OPT_REPORT:
                        r = *optarg ? set_string(&o->report_path, optarg)
                                    : usage_error("--report: give a file name");
                        break;
                case OPT_SHM_SLOTS:
                        r = parse_count(c, optarg, 2, 1 << 24, &v);
                        if (r == 0 && (v & (v - 1)) != 0)
                                r = usage_error("--shm-slots: %lld is not a power of two: try %lld", v,
                                                1ll << (64 - __builtin_clzll((unsigned long long) v)));
                        o->shm_slots = (uint32_t) v;
                        break;
                case OPT_SHM_SLOT_SIZE:
                        r = parse_size_option(c, optarg, 8, 1u << 20, &u);
                        o->shm_slot_size = (uint32_t) u;
                        break;
                case OPT_SHM_OVERFLOW:
                        r = parse_size_option(c, optarg, 0, 64ull << 30, &o->shm_overflow);
                        break;
                case OPT_SHM_QUEUE_OVERFLOW:
                        r = parse_size_option(c, optarg, 0, 64ull << 30, &o->shm_queue_overflow);
                        break;
                case OPT_SHM_KV_ENTRIES:
                        r = parse_count(c, optarg, 0, 65536, &v);
                        o->shm_kv_entries = (uint32_t) v;
                        break;
                case OPT_SHM_KV_VALUE_SIZE:
                        r = parse_size_option(c, optarg, 1, 65536, &u);
                        o->shm_kv_value_size = (uint32_t) u;
                        break;
                case OPT_NO_SHM:
                        o->shm = false;
                        break;
                case OPT_READY_TIMEOUT:
                        r = parse_duration_option(c, optarg, 0, &o->ready_timeout_usec);
                        break;
                case OPT_PHASE_TIMEOUT:
                        r = add_phase_timeout(o, optarg);
                        break;
                case OPT_STRAGGLER_TIMEOUT:
                        r = parse_duration_option(c, optarg, 0, &o->straggler_timeout_usec);
                        break;
                case OPT_WATCHDOG:
                        r = parse_duration_option(c, optarg, 0, &o->watchdog_usec);
                        break;
                case OPT_NO_PREFLIGHT:
                        if (check)
                                r = usage_error("--no-preflight: ringmaster check is the preflight");
                        o->preflight = false;
                        break;
                case OPT_JSON:
                        if (!check)
                                r = usage_error("--json is an option of ringmaster check: for run's JSON report give "
                                                "--report FILE");
                        o->json = true;
                        break;
                case OPT_DIAGNOSE_TIMEOUT:
                        r = parse_duration_option(c, optarg, 0, &o->diagnose_timeout_usec);
                        break;
                case OPT_STACK_TOOL:
                        if (stack_tool_parse(optarg, &o->stack_tool) < 0)
                                r = usage_error("--stack-tool: '%s' is not a tool: give auto, eu-stack, gdb or none",
                                                optarg);
                        break;
                case OPT_STACK_TIMEOUT:
                        r = parse_duration_option(c, optarg, 0, &o->stack_timeout_usec);
                        break;
                case OPT_PYTHON_HOOKS:
                        if (strcmp(optarg, "auto") == 0)
                                o->python_hooks = PYTHON_HOOKS_AUTO;
                        else if (strcmp(optarg, "on") == 0)
                                o->python_hooks = PYTHON_HOOKS_ON;
                        else if (strcmp(optarg, "off") == 0)
                                o->python_hooks = PYTHON_HOOKS_OFF;
                        else
                                r = usage_error("--python-hooks: '%s' is not a mode: give auto, on or off", optarg);
                        break;
                case OPT_NO_TTY:
                        o->tty = false;
                        break;
                case OPT_INIT:
                        o->init = true;
                        break;
                case 'q':
                        o->log_level = LOG_LEVEL_WARNING;
                        break;
                case 'v':
                        o->log_level = o->log_level < LOG_LEVEL_INFO ? LOG_LEVEL_INFO : LOG_LEVEL_DEBUG;
                        break;
                case 'h':
                        /* check's help is check.c's to print. */
                        if (!check)
                                run_help();
                        return 0;
                case ':':
                        return usage_error("%s needs a value", argv[optind - 1]);
                default:
                        return usage_error("unknown option '%s'", argv[optind - 1]);
                }
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
        free(o->log_dir);
        free(o->report_path);
        for (size_t i = 0; i < o->n_phase_timeouts; i++)
                free(o->phase_timeouts[i].name);
        free(o->phase_timeouts);
        *o = (struct run_options) {};
}

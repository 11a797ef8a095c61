/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_OPTIONS_H
#define RINGMASTER_OPTIONS_H

/*
 * `ringmaster run` (and check) options: parsed and checked in one place,
 * options.c's table of descriptors, which also prints --help.  To add one:
 * a field here, its default in options_parse(), a row of option_table[],
 * and an entry in man/ringmaster.1's OPTIONS (test-options-man.py).
 */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contain.h"
#include "placement.h"
#include "rm_run_layout.h"
#include "stack.h"
#include "util.h"

/* -n N, or a word: one rank per visible GPU (gpu), per CPU (cpu), per GPU else per CPU (auto). */
enum nproc_mode {
        NPROC_COUNT,
        NPROC_GPU,
        NPROC_CPU,
        NPROC_AUTO,
};

enum bind_gpu {
        BIND_GPU_NONE,       /* every rank sees every GPU; LOCAL_RANK picks (torchrun's way) */
        BIND_GPU_VISIBLE,    /* CUDA_VISIBLE_DEVICES narrowed to the rank's GPU */
};

/* --phase-timeout NAME=SECS */
struct phase_timeout {
        char *name;
        uint64_t usec;
};

enum journal_mode {
        JOURNAL_AUTO = -1,   /* when stderr is the journal (JOURNAL_STREAM) */
        JOURNAL_OFF = 0,
        JOURNAL_ON = 1,      /* --journal: to the journal, and to the terminal too */
};

/* --python-hooks: the start-up hook on the workers' PYTHONPATH (python-hooks.c). */
enum python_hooks_mode {
        PYTHON_HOOKS_AUTO = -1, /* when COMMAND is a Python interpreter or script */
        PYTHON_HOOKS_OFF = 0,
        PYTHON_HOOKS_ON = 1,
};

/* --stdin: whose stdin is ringmaster's (the others get /dev/null). */
enum stdin_mode {
        STDIN_RANK0,         /* rank 0's (the default, as mpirun; docker run -i) */
        STDIN_ALL,           /* every rank shares it (as torchrun) */
        STDIN_NONE,
};

/* --foreground: the one rank as the terminal's foreground job (docker run -it). */
enum foreground_mode {
        FOREGROUND_AUTO = -1,  /* as a container's init (--init, PID 1), -n 1, stdin its terminal */
        FOREGROUND_OFF = 0,
        FOREGROUND_ON = 1,     /* -n 1 and stdin ringmaster's controlling terminal, or a usage error */
};

struct run_options {
        int nproc;                      /* 0: not given (the visible GPUs, else 1), or see nproc_mode */
        enum nproc_mode nproc_mode;     /* -n gpu|cpu|auto */
        char **gpus;                    /* --gpus entries; NULL: not given */
        enum bind_gpu bind_gpu;
        char *run_id;                   /* NULL: generated */
        char *run_dir;                  /* NULL: under $XDG_RUNTIME_DIR or /tmp */
        char *master_addr;
        bool master_addr_given;         /* else 127.0.0.1, or the launcher's node 0 (placement.h) */
        int master_port;                /* 0: a free port */
        char *role;
        int max_restarts;
        uint64_t restart_delay_usec;
        uint64_t restart_delay_max_usec;
        uint64_t grace_usec;
        uint64_t kill_timeout_usec;
        char *prefix;                   /* a template (capture.h) */
        bool escape;
        size_t max_line;
        size_t tail_lines;
        size_t tail_bytes;
        size_t output_buffer;
        char *log_dir;
        enum journal_mode journal;
        char *report_path;
        bool shm;
        uint32_t shm_slots;
        uint32_t shm_slot_size;
        uint64_t shm_overflow;          /* the broadcast channel's */
        uint64_t shm_queue_overflow;    /* each queue writer's */
        uint32_t shm_kv_entries;        /* 0: no table */
        uint32_t shm_kv_value_size;
        uint64_t ready_timeout_usec;    /* 0: none (deadline.h) */
        uint64_t straggler_timeout_usec;/* 0: off */
        uint64_t watchdog_usec;         /* 0: off */
        struct phase_timeout *phase_timeouts;  /* in the order given (a repeated name: the last counts) */
        size_t n_phase_timeouts;
        uint64_t diagnose_timeout_usec; /* a whole diagnosis; 0: /proc and NCCL logs only */
        enum stack_tool stack_tool;
        uint64_t stack_timeout_usec;
        enum python_hooks_mode python_hooks;
        bool worker_capture;            /* --worker-capture: spawned workers' output apart (default on) */
        bool worker_failure_report_only;/* --worker-failure=report: a failed worker does not end the job */
        char *worker_prefix;            /* --worker-prefix: a template with %w (capture.h) */
        enum contain_mode contain;      /* --contain: how the job is kept from outliving ringmaster (contain.h) */
        int log_level;
        bool preflight;                 /* run: the checks of `ringmaster check` first (--no-preflight) */
        bool tty;                       /* the live status table when stderr is a terminal (--no-tty) */
        bool init;                      /* --init: a container's init, as tini (init.h); implied as PID 1 */
        /* Several nodes (placement.h, cluster.h; docs/multinode.md). */
        int nnodes;                     /* 0: not given; MIN:MAX: the MAX */
        int min_nnodes;                 /* MIN:MAX: the MIN (elastic, through the store's rendezvous); else nnodes */
        int node_rank;                  /* -1: not given */
        enum nodes_from nodes_from;
        char *store;                    /* etcd://HOST:PORT (the endpoint part), or NULL: no cross-node view */
        char *rendezvous;               /* c10d://HOST:PORT (the endpoint part): node ranks through a TCPStore */
        char *store_cacert;             /* PEM files for a TLS etcd (etcd.h's etcd_credentials) */
        char *store_cert, *store_key;
        char *store_user;               /* etcd's user; its password from store_password_file or the environment */
        char *store_password_file;
        uint64_t join_timeout_usec;     /* the store: every node registered within (0: no wait) */
        uint64_t last_call_usec;        /* MIN:MAX: the rendezvous' wait for more once MIN joined */
        char *node_addr;                /* this node's name in reports; NULL: the host name */
        bool *console_hidden;           /* --console-ranks: MAX_NPROC flags by local rank; NULL: all shown */
        enum stdin_mode stdin_mode;
        enum foreground_mode foreground;
        int diagnose_signal;            /* asks for a diagnosis of every rank (diagnose.c); 0: none */
        bool json;                      /* check: --json */
        char **command;                 /* COMMAND [ARGS...] */
};

/* Defaults, also quoted by --help and the man page. */
#define DEFAULT_GRACE_USEC (10 * USEC_PER_SEC)
#define DEFAULT_KILL_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define DEFAULT_RESTART_DELAY_USEC (1 * USEC_PER_SEC)
#define MIN_RESTART_DELAY_USEC (1 * USEC_PER_SEC)
#define DEFAULT_RESTART_DELAY_MAX_USEC (60 * USEC_PER_SEC)
#define DEFAULT_MAX_LINE (16u * 1024u)
#define DEFAULT_TAIL_LINES 20u
#define DEFAULT_TAIL_BYTES (16u * 1024u)
#define DEFAULT_OUTPUT_BUFFER (4u * 1024u * 1024u)
/* The run segment's default sizes are the worker runtime's (engine/rm_run_layout.h). */
#define DEFAULT_SHM_SLOTS RM_RUN_DEFAULT_SLOTS
#define DEFAULT_SHM_SLOT_SIZE RM_RUN_DEFAULT_SLOT_SIZE
#define DEFAULT_SHM_OVERFLOW RM_RUN_DEFAULT_SCHED_OVERFLOW
#define DEFAULT_SHM_QUEUE_OVERFLOW RM_RUN_DEFAULT_RESULTS_OVERFLOW
#define DEFAULT_SHM_KV_ENTRIES RM_KV_ENTRIES
#define DEFAULT_SHM_KV_VALUE_SIZE RM_KV_VALUE_SIZE
#define MAX_NPROC 1024
/* --role: 1..ROLE_MAX of [A-Za-z0-9._-] (names.h). */
#define ROLE_MAX 64
#define DEFAULT_STRAGGLER_TIMEOUT_USEC (60 * USEC_PER_SEC)
#define DEFAULT_DIAGNOSE_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define DEFAULT_STACK_TIMEOUT_USEC (3 * USEC_PER_SEC)
#define DEFAULT_JOIN_TIMEOUT_USEC (600 * USEC_PER_SEC)  /* torchrun's rendezvous join_timeout */
#define DEFAULT_LAST_CALL_USEC (30 * USEC_PER_SEC)      /* torchrun's rendezvous last_call_timeout */
/* --store-user's password when no --store-password-file is given (taken out of the ranks' environment). */
#define STORE_PASSWORD_ENV "RINGMASTER_STORE_PASSWORD"
#define DEFAULT_DIAGNOSE_SIGNAL SIGUSR2

/*
 * Parses `ringmaster run` arguments (argv[0] is "run") into o, which the
 * caller releases with run_options_done() whatever the result.  Returns 1
 * when the run should go ahead, 0 when it printed what was asked (--help)
 * and the program should exit 0, or -EINVAL after printing a usage error.
 */
int run_options_parse(int argc, char **argv, struct run_options *o);
/*
 * The same for `ringmaster check` (argv[0] is "check"): run's options, where
 * COMMAND is optional, plus --json.  0 for --help, which it does not print
 * (check_help() does).
 */
int check_options_parse(int argc, char **argv, struct run_options *o);
void run_options_done(struct run_options *o);

void run_help(void);
/* The rows of run --help for the options named (NULL-ended), as run prints them: ringmaster check --help. */
void options_help_of(const char *const *names);

#endif

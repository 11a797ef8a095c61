/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_STACK_H
#define RINGMASTER_STACK_H

/*
 * A native stack of a running process, taken by an external tool
 * (eu-stack -p PID, or gdb -p PID -batch) run as the supervisor's child:
 * its output comes through pipes watched by sd-event IO sources, it is
 * killed (SIGKILL to its process group) at its timeout, and reaped by a
 * child source.  Nothing here blocks.
 *
 * Also the text form of stacks for the report: thread blocks whose frames
 * are the same (addresses and arguments aside) are shown once.
 */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <systemd/sd-event.h>

/* --stack-tool: what takes a hung rank's native stack. */
enum stack_tool {
        STACK_TOOL_AUTO = -1,  /* eu-stack when on PATH, else gdb, else none */
        STACK_TOOL_NONE = 0,
        STACK_TOOL_EU_STACK,
        STACK_TOOL_GDB,
};

const char *stack_tool_name(enum stack_tool t);     /* "auto", "none", "eu-stack", "gdb" */
int stack_tool_parse(const char *s, enum stack_tool *ret);

/*
 * Looks the tool up on PATH; STACK_TOOL_AUTO tries eu-stack (faster), then
 * gdb.  -ENOENT when not found (for auto: neither).
 */
int stack_tool_find(enum stack_tool wanted, enum stack_tool *ret_tool, char **ret_path);

/* The tool's arguments for a process. */
int stack_tool_argv(enum stack_tool tool, const char *path, pid_t pid, char ***ret);
/* Its environment: PATH, HOME and LC_ALL=C only (no DEBUGINFOD_URLS: no downloads). */
int stack_tool_envp(char ***ret);

struct stack_run_request {
        enum stack_tool tool;           /* EU_STACK or GDB */
        const char *path;
        pid_t target;
        int target_pidfd;               /* a pidfd of target (duplicated), or -1: see stack_outcome.resumed */
        uint64_t timeout_usec;
        int dev_null_fd;                /* its stdin */
        const sigset_t *sigmask;        /* restored in the child */
        const struct rlimit *nofile;    /* RLIMIT_NOFILE restored in the child; NULL: as is */
};

/* What a run gave: handed to the done callback, which owns it then. */
struct stack_outcome {
        char **lines;                   /* the tool's stdout, escaped, line by line */
        char **errors;                  /* why it failed, what it said on stderr; empty when fine */
        uint64_t duration_usec;
        bool timed_out;
        bool resumed;                   /* the tool died and left the target stopped: it got SIGCONT */
};

void stack_outcome_done(struct stack_outcome *o);

struct stack_run;
typedef void (*stack_run_done_fn)(struct stack_run *run, struct stack_outcome *outcome, void *userdata);

/*
 * Starts the tool against req->target.  done runs from the event loop once
 * the tool was reaped and its pipes closed (or at the timeout, if a process
 * of its own keeps them open), never from within this call.  -errno when no
 * tool could be started (a failed exec is an outcome, not an error).
 */
int stack_run_start(sd_event *event, const struct stack_run_request *req, stack_run_done_fn done, void *userdata,
                    struct stack_run **ret);

/* The tool's pid while it is not reaped, else 0: such a pid is not an orphan. */
pid_t stack_run_live_pid(const struct stack_run *run);
/* The tool's pid (and process group id), reaped or not. */
pid_t stack_run_pid(const struct stack_run *run);
/* Reaped and done: the run may be freed. */
bool stack_run_finished(const struct stack_run *run);

/*
 * Stops caring about the run: done will not be called; the tool, if still
 * there, gets SIGKILL and is reaped when it goes.
 */
void stack_run_abandon(struct stack_run *run);

/* Frees the run; a tool still there gets SIGKILL and is left to PR_SET_PDEATHSIG. */
struct stack_run *stack_run_free(struct stack_run *run);

enum stack_format {
        STACK_FORMAT_EU_STACK,          /* "TID 123:" then "#0  0x... func" */
        STACK_FORMAT_GDB,               /* "Thread 2 (Thread 0x... (LWP 123) "name"):" then
                                           "#0  ... in func (args) at f:1" */
        STACK_FORMAT_PYTHON,            /* faulthandler: "Thread 0x...:" / "Current thread 0x...:" then "  File ..." */
};

/*
 * The lines to show: per thread its header and frames, threads whose frames
 * are the same (addresses and arguments aside) merged under the first one's
 * header, with a line saying how many more had them.  Lines outside thread
 * blocks are dropped when there are blocks.
 */
int stack_collapse(char *const *lines, enum stack_format format, char ***ret);

/*
 * Whether two stacks are the same place in the program: the same frames in
 * the same threads, addresses, arguments and thread ids aside (ranks of one
 * job stuck in one collective have such stacks).  False on allocation failure.
 */
bool stack_same(char *const *a, char *const *b, enum stack_format format);

#endif

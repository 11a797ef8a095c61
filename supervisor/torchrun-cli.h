/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_TORCHRUN_CLI_H
#define RINGMASTER_TORCHRUN_CLI_H

/*
 * torchrun's command line, translated into `ringmaster run`'s:
 *
 *     ringmaster torchrun [torchrun's options] script.py [args...]
 *     ringmaster-torchrun [torchrun's options] script.py [args...]
 *
 * Every option of torchrun (torch 2.x) is known under both its spellings
 * (--nproc-per-node and --nproc_per_node) and, as with argparse, by an
 * unambiguous prefix; its PET_* environment variable is the default, as
 * torchrun's.  Each one is honoured (mapped onto a run option), accepted
 * because it has no effect here (a polling interval, a start method, a
 * rendezvous tuning knob), or refused with a sentence that says why and
 * what to do instead.  A script runs as torchrun runs it: `python3 -u
 * script.py` ($PYTHON_EXEC when set), `-m` a module, --no-python the
 * program itself, --run-path through runpy.run_path().
 *
 * torchrun_translate() is a pure function (no I/O, no logging): the tests
 * call it directly (tests/supervisor/test-torchrun-cli.c), and the mapping
 * table is docs/multinode.md's.
 */

/*
 * Translates argv (argv[0] is the command's name, "torchrun") under the
 * environment env (for PET_*, PYTHON_EXEC, TORCH_ELASTIC_SHUTDOWN_TIMEOUT,
 * TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE, TMPDIR) into the arguments of
 * `ringmaster run` (ret[0] is "run"; free with strv_free()).
 *
 * Returns 1 and sets *ret_run_argv on success (2: the same, and --dry-run
 * was given: print, do not run); 0 when --help was asked
 * (printing it is the caller's: torchrun_help()); -EINVAL with an allocated
 * sentence in *ret_error for a usage error; -ENOMEM.
 */
int torchrun_translate(int argc, char **argv, char *const *env, char ***ret_run_argv, char **ret_error);

/* ringmaster torchrun's help (stdout). */
void torchrun_help(void);

/*
 * `ringmaster torchrun ...` and `ringmaster-torchrun ...`: translate and
 * run; with --dry-run, print the `ringmaster run` command line instead.
 */
int torchrun_main(int argc, char **argv);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_PYTHON_HOOKS_H
#define RINGMASTER_PYTHON_HOOKS_H

/*
 * --python-hooks: whether COMMAND runs Python, and where ringmaster's
 * start-up hook (engine/python/hook: faulthandler on SIGUSR1, phase reports)
 * and the ringmaster package are, for the workers' PYTHONPATH.
 */

#include <stdbool.h>

/*
 * A Python interpreter (python, python3, python3.11, ...), possibly through
 * env(1) (env [-S] [NAME=VALUE...] python3 ...), or a script whose "#!"
 * line names one.  exec_paths are COMMAND's execvp candidates
 * (spawn_command_candidates): the first that exists is the script read.
 */
bool command_is_python(char *const *argv, char *const *exec_paths);

/*
 * The hook's folder and the package's folder (the one holding
 * ringmaster/): $RINGMASTER_PYTHON_HOOK_DIR when set (the package then is
 * its parent folder when that holds ringmaster/), else the source tree's
 * engine/python/hook and engine/python when this program runs from its
 * build tree, else the installed ones.  ret_package_dir is NULL when there
 * is none.  -ENOENT when the hook's folder does not exist.
 */
int python_hook_dirs(char **ret_hook_dir, char **ret_package_dir);

/*
 * "HOOK:PACKAGE:INHERITED" without empty parts or repeats of the first
 * two.  inherited may be NULL; package_dir may be NULL.
 */
int python_hooks_pythonpath(const char *hook_dir, const char *package_dir, const char *inherited, char **ret);

#endif

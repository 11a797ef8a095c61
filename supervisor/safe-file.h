/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_SAFE_FILE_H
#define RINGMASTER_SAFE_FILE_H

/*
 * Files ringmaster (often root) writes where others may write too: the
 * --report file and the --log-dir run folder (issue 11, attacks 2 and 3).
 *
 *   safe_dir_check()    a folder ringmaster may write into: owned by us or
 *                       root, or not writable by group or others, or
 *                       sticky (/tmp); otherwise -EPERM and a reason.
 *   safe_tmpfile_open() a new file beside PATH under a name of its own
 *                       (random, O_CREAT|O_EXCL, which never follows a
 *                       symlink), for rename() over PATH (which replaces a
 *                       symlink at PATH rather than writing through it).
 *   safe_own_dir()      a folder that is ours: made here (mkdir), or
 *                       already there, ours and not writable by group or
 *                       others; opened O_NOFOLLOW|O_DIRECTORY.  -EPERM and a
 *                       reason otherwise (a folder another user made
 *                       first at a predictable name, a symlink).
 * Negative errnos; nothing here logs.  *ret_why strings are static.
 */

#include <sys/types.h>

int safe_dir_check(const char *dir, const char **ret_why);
int safe_tmpfile_open(const char *path, char **ret_tmp);
int safe_own_dir(const char *path, mode_t mode, int *ret_fd, const char **ret_why);

#endif

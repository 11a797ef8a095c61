/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_MEMGUARD_H
#define RINGMASTER_MEMGUARD_H

/*
 * The supervisor's few touches of the job's shared-memory segment, made
 * safe against a worker that shrinks it (ftruncate): a SIGBUS during
 * memguard_run()'s call becomes -EFAULT for the caller instead of ending
 * ringmaster with no report and the segment left behind.
 *
 * Rules: fn touches only the segment (any SIGBUS while it runs is taken as
 * the segment's), must not hold a lock of this process or allocate (it may
 * be abandoned half-way, by siglongjmp), and runs on the thread that calls
 * memguard_run(); calls do not nest.  After -EFAULT the caller must stop
 * touching the mapping (it may still munmap and unlink it).
 */

/* Returns fn's result, or -EFAULT when fn hit SIGBUS. */
int memguard_run(int (*fn)(void *userdata), void *userdata);

#endif

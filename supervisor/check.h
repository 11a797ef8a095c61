/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_CHECK_H
#define RINGMASTER_CHECK_H

/*
 * `ringmaster check`, and the same checks as the preflight of `ringmaster
 * run`: is this machine (or container) ready for a job of N ranks?  Each
 * check measures one thing and ends ok, info, skip, warn or fail; a warning
 * or a failure comes with its fix.
 *
 *   shm          /dev/shm mounted, its size and free space against the run's
 *                needs: the ring's exact size + NCCL's shared memory per rank
 *   memlock      RLIMIT_MEMLOCK (NCCL's RDMA paths pin memory against it)
 *   gpus         the visible GPUs against -n and --gpus
 *   peer-access  the GPUs (CUDA driver, NVML): names, P2P and NVLink/PCIe for every pair
 *   nccl         libnccl.so.2 and its version
 *   master-port  --master-port free (or the port ringmaster would pick)
 *   cpus         CPUs (affinity, cgroup quota) against ranks x OMP_NUM_THREADS
 *   ptrace       whether a stack tool may attach to a hung rank
 *
 * Only shm, gpus (--gpus too short), master-port (busy) and peer-access (a
 * driver that does not answer) can fail; a failure stops `ringmaster run`
 * with exit status 111 before anything starts.
 */

#include <signal.h>

struct run_options;

int check_main(int argc, char **argv);
void check_help(void);

/*
 * The preflight of `ringmaster run`, for nproc ranks: logs each failure and
 * warning with its fix (the rest at -v).  Returns 0 when the run may start,
 * the number of failed checks when it must not, or a negative errno (logged).
 * child_sigmask: the signal mask for the GPU probe (ringmaster's inherited one).
 */
int preflight_run(const struct run_options *o, int nproc, const sigset_t *child_sigmask);

#endif

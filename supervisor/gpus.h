/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_GPUS_H
#define RINGMASTER_GPUS_H

/*
 * Which GPUs the job gets, without linking CUDA: the entries of
 * CUDA_VISIBLE_DEVICES when it is set (CUDA's rules: a negative index ends
 * the list), else one per /dev/nvidiaN device node.
 */

#include <stdbool.h>

/* The visible GPUs (possibly none); -EINVAL, logged, when CUDA_VISIBLE_DEVICES is malformed. */
int gpus_visible(char ***ret, bool *ret_from_environment);

/*
 * The GPUs named by --gpus: an index picks the index-th visible entry when
 * CUDA_VISIBLE_DEVICES is set (nested visibility, as CUDA itself counts), a
 * physical index otherwise; UUIDs are kept as they are.  -EINVAL, logged.
 */
int gpus_select(char *const *requested, char *const *visible, bool from_environment, char ***ret);

#endif

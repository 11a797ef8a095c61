/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_RUN_H
#define RINGMASTER_RUN_H

/* `ringmaster run`: argv[0] is "run".  Returns the exit status. */
int run_main(int argc, char **argv);

#endif

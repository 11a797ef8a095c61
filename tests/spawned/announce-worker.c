/* SPDX-License-Identifier: MIT */
/*
 * A native worker that an engine spawns, using rm_announce.h: it announces
 * itself (asking for its own output pipes), optionally its group, prints,
 * and then ends as told.  The tests of docs/spawned-workers.md run it
 * under a fake supervisor (tests/python/test_workers.py) and under
 * ringmaster (tests/spawned/).
 *
 *   announce-worker [--name NAME] [--index I] [--no-capture] [--group KEY RANK WORLD]
 *                   [--print TEXT] [--hang] [--crash] [--exit N]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rm_announce.h"

int main(int argc, char **argv) {
        const char *name = NULL;
        int index = -1, exit_code = 0, r;
        unsigned flags = RM_ANNOUNCE_CAPTURE;

        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "--no-capture") == 0)
                        flags = 0;
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
                        name = argv[++i];
                else if (strcmp(argv[i], "--index") == 0 && i + 1 < argc)
                        index = atoi(argv[++i]);
        }
        r = rm_announce(name, index, flags);
        printf("announce=%d\n", r);
        fflush(stdout);
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--group") == 0 && i + 3 < argc) {
                        r = rm_announce_group(argv[i + 1], atoi(argv[i + 2]), atoi(argv[i + 3]));
                        printf("group=%d\n", r);
                        i += 3;
                } else if (strcmp(argv[i], "--print") == 0 && i + 1 < argc) {
                        printf("%s\n", argv[++i]);
                        fprintf(stderr, "stderr: %s\n", argv[i]);
                } else if (strcmp(argv[i], "--hang") == 0) {
                        fflush(NULL);
                        for (;;)
                                pause();
                } else if (strcmp(argv[i], "--crash") == 0) {
                        fflush(NULL);
                        raise(SIGSEGV);
                } else if (strcmp(argv[i], "--exit") == 0 && i + 1 < argc)
                        exit_code = atoi(argv[++i]);
                else if (strcmp(argv[i], "--name") == 0 || strcmp(argv[i], "--index") == 0)
                        i++;
                else if (strcmp(argv[i], "--no-capture") != 0) {
                        fprintf(stderr, "announce-worker: unknown argument %s\n", argv[i]);
                        return 2;
                }
                fflush(NULL);
        }
        rm_announce_exit(exit_code);
        return exit_code;
}

/* SPDX-License-Identifier: MIT */
/*
 * fuzz-segment's check after a corpus replay (tests/fuzz-replay.c runs the
 * corpus): the target left no shm object of this process behind.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int fuzz_replay_check(void);

/* Shm objects of this process's fuzz runs still there. */
static unsigned leftovers(void) {
        char mark[64];
        DIR *d = opendir("/dev/shm");
        struct dirent *de;
        unsigned n = 0;

        if (!d)
                return 0;
        snprintf(mark, sizeof(mark), "-fuzz-%d-", (int) getpid());
        while ((de = readdir(d)))
                if (strstr(de->d_name, mark)) {
                        fprintf(stderr, "fuzz-replay: left behind: /dev/shm/%s\n", de->d_name);
                        (void) unlinkat(dirfd(d), de->d_name, 0);
                        n++;
                }
        closedir(d);
        return n;
}

int fuzz_replay_check(void) {
        return leftovers() > 0;
}

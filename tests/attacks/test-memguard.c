/* SPDX-License-Identifier: MIT */
/* memguard_run(): a touch of a mapping that was truncated under it is -EFAULT, not a SIGBUS death. */
#include <sys/mman.h>
#include <unistd.h>

#include "memguard.h"
#include "util.h"
#include "../supervisor/unit.h"

static int touch(void *p) {
        volatile unsigned char *b = p;

        b[100] = 1;
        return b[100] + 41;
}

int main(void) {
        long page = sysconf(_SC_PAGESIZE);
        int fd = memfd_create("memguard", MFD_CLOEXEC);
        unsigned char *m;

        CHECK(fd >= 0 && ftruncate(fd, 2 * page) == 0, "a memfd of two pages");
        m = mmap(NULL, (size_t) (2 * page), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        CHECK(m != MAP_FAILED, "mapped");
        CHECK(memguard_run(touch, m) == 42, "an intact mapping: fn's result");
        CHECK(ftruncate(fd, 0) == 0, "truncated");
        CHECK(memguard_run(touch, m) == -EFAULT, "the truncated mapping: -EFAULT");
        CHECK(memguard_run(touch, m + page) == -EFAULT, "again: -EFAULT (the guard is re-armed)");
        CHECK(ftruncate(fd, 2 * page) == 0 && memguard_run(touch, m) == 42, "grown back: fn's result");
        return failures ? 1 : 0;
}

/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_TESTS_UNIT_H
#define RINGMASTER_TESTS_UNIT_H

/*
 * The checks of the supervisor's C unit tests: CHECK(cond, fmt, ...) counts
 * a failure and says where and why, and the test goes on; main() ends with
 * `return failures ? 1 : 0`.
 */

#include <stdio.h>

static int failures;

#define CHECK(cond, ...)                                                  \
        do {                                                              \
                if (!(cond)) {                                            \
                        failures++;                                       \
                        printf("FAIL %s:%d: ", __FILE__, __LINE__);       \
                        printf(__VA_ARGS__);                              \
                        printf("\n");                                     \
                }                                                         \
        } while (0)

#endif

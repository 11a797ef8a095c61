/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_REPORT_H
#define RINGMASTER_REPORT_H

/*
 * The root-cause report: text to stderr when the job did not succeed, JSON
 * to --report FILE always (schema "ringmaster-report/1", docs/supervisor.md).
 */

struct job;
struct sink;

void report_print_text(const struct job *job);

/* Written to a temporary file beside path, then renamed over it. */
int report_write_json(const struct job *job, const char *path, const struct sink *out, const struct sink *err);

#endif

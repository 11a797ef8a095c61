/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_REPORT_H
#define RINGMASTER_REPORT_H

/*
 * The root-cause report: text to stderr when the job did not succeed, JSON
 * to --report FILE always (schema "ringmaster-report/1", docs/supervisor.md).
 */

struct run_model;
struct sink;

void report_print_text(const struct run_model *run);

/* Written to a temporary file beside path, then renamed over it. */
int report_write_json(const struct run_model *run, const char *path, const struct sink *out, const struct sink *err);

#endif

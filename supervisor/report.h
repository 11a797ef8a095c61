/* SPDX-License-Identifier: MIT */
#ifndef RINGMASTER_REPORT_H
#define RINGMASTER_REPORT_H

/*
 * The root-cause report, rendered from the run model (run-model.h) in one
 * place: report-text.c writes every line of the text (to stderr, through
 * the log, when the job did not succeed; and the diagnoses taken on
 * SIGUSR2), report-json.c every key of the JSON (to --report FILE always;
 * schema "ringmaster-report/1", docs/supervisor.md).  diagnose.c collects,
 * deadline.c decides, phase.c tracks; none of them formats the report.
 */

struct run_model;
struct sink;

void report_print_text(const struct run_model *run);
/* After a run that succeeded: nothing, or what was lost on the way (dropped lines, datagrams, --log-dir data). */
void report_print_success(const struct run_model *run);

/* The diagnoses taken on SIGUSR2, between a header and a footer (the job goes on). */
void report_print_sigusr2(const struct run_model *run);

/* Written to a temporary file beside path, then renamed over it. */
int report_write_json(const struct run_model *run, const char *path, const struct sink *out, const struct sink *err);

#endif

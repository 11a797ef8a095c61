/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "exit-status.h"
#include "gpuinfo.h"
#include "options.h"
#include "run.h"
#include "torchrun-cli.h"
#include "util.h"

struct command {
        const char *name;
        int (*main)(int argc, char **argv);
        const char *summary;            /* NULL: internal, not in --help */
};

static const struct command commands[] = {
        { "run", run_main, "start N ranks of a command and supervise them" },
        { "check", check_main, "check that this machine is ready for a run (what run checks first)" },
        { "torchrun", torchrun_main, "torchrun's command line, run by ringmaster (also ringmaster-torchrun)" },
        { "__gpu-probe", gpuinfo_probe_main, NULL },
};

static void help(FILE *f) {
        fprintf(f,
                "Usage: ringmaster COMMAND [OPTIONS]\n"
                "       ringmaster --help | --version\n"
                "\n"
                "A supervisor for multi-GPU inference workers.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].summary)
                        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
        fprintf(f,
                "\n"
                "Example:\n"
                "  ringmaster run -n 4 -- python3 serve.py --tp 4\n"
                "\n"
                "'ringmaster COMMAND --help' shows a command's options; see ringmaster(1).\n");
}

int main(int argc, char **argv) {
        const char *self = argv[0] ? strrchr(argv[0], '/') : NULL;

        if (ensure_stdio_open() < 0)
                return EXIT_RM_INTERNAL;
        /* Installed as ringmaster-torchrun (a link): torchrun's command line. */
        self = self ? self + 1 : argv[0];
        if (self && strcmp(self, "ringmaster-torchrun") == 0)
                return torchrun_main(argc, argv);
        if (argc < 2) {
                help(stderr);
                return EXIT_RM_USAGE;
        }
        if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
                help(stdout);
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
                printf("ringmaster %s\n", PACKAGE_VERSION);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(argv[1], commands[i].name) == 0)
                        return commands[i].main(argc - 1, argv + 1);

        fprintf(stderr, "ringmaster: unknown command '%s'", argv[1]);
        if (argv[1][0] == '-')
                fprintf(stderr, " (options come after the command, e.g. ringmaster run %s ...)", argv[1]);
        fprintf(stderr, "\nTry 'ringmaster --help'.\n");
        return EXIT_RM_USAGE;
}

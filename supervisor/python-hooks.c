/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "proctree.h"
#include "python-hooks.h"
#include "util.h"

/* From supervisor/local.mk: where `make install` puts them, and this build's tree. */
#ifndef RINGMASTER_PYTHON_HOOK_DIR
#define RINGMASTER_PYTHON_HOOK_DIR ""
#endif
#ifndef RINGMASTER_PYTHON_PACKAGE_DIR
#define RINGMASTER_PYTHON_PACKAGE_DIR ""
#endif
#ifndef RINGMASTER_ABS_TOP_SRCDIR
#define RINGMASTER_ABS_TOP_SRCDIR ""
#endif
#ifndef RINGMASTER_ABS_TOP_BUILDDIR
#define RINGMASTER_ABS_TOP_BUILDDIR ""
#endif

static const char *base_name(const char *path) {
        const char *s = strrchr(path, '/');

        return s ? s + 1 : path;
}

/* env [-i] [-S] [-u NAME] [NAME=VALUE...] PROGRAM: the PROGRAM, or NULL. */
static const char *env_program(char *const *args) {
        for (size_t i = 0; args[i]; i++) {
                if (strcmp(args[i], "-u") == 0 || strcmp(args[i], "--unset") == 0 || strcmp(args[i], "-C") == 0 ||
                    strcmp(args[i], "--chdir") == 0) {
                        if (!args[++i])
                                return NULL;
                        continue;
                }
                if (args[i][0] == '-' || strchr(args[i], '='))
                        continue;
                return args[i];
        }
        return NULL;
}

/* The "#!" line's interpreter (through env) is a Python. */
static bool script_is_python(const char *path) {
        char line[256], *words[8], *save = NULL;
        size_t n_words = 0;
        ssize_t n;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return false;
        n = read(fd, line, sizeof(line) - 1);
        close(fd);
        if (n < 3 || line[0] != '#' || line[1] != '!')
                return false;
        line[n] = 0;
        line[strcspn(line, "\n")] = 0;
        for (char *p = line + 2, *t; n_words < ELEMENTSOF(words) - 1 && (t = strtok_r(p, " \t", &save)); p = NULL)
                words[n_words++] = t;
        words[n_words] = NULL;
        if (n_words == 0)
                return false;
        if (is_python_name(base_name(words[0])))
                return true;
        if (strcmp(base_name(words[0]), "env") == 0) {
                const char *prog = env_program(words + 1);

                return prog && is_python_name(base_name(prog));
        }
        return false;
}

bool command_is_python(char *const *argv, char *const *exec_paths) {
        const char *name = base_name(argv[0]);

        if (is_python_name(name))
                return true;
        if (strcmp(name, "env") == 0) {
                const char *prog = env_program(argv + 1);

                return prog && is_python_name(base_name(prog));
        }
        for (size_t i = 0; exec_paths && exec_paths[i]; i++) {
                struct stat st;

                if (stat(exec_paths[i], &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                /* The one execvp runs. */
                return script_is_python(exec_paths[i]);
        }
        return false;
}

static bool is_dir(const char *path) {
        struct stat st;

        return path && path[0] && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool holds_package(const char *dir) {
        _cleanup_free_ char *init = NULL;

        if (!dir || !dir[0] || asprintf(&init, "%s/ringmaster/__init__.py", dir) < 0)
                return false;
        return access(init, F_OK) == 0;
}

/* This program is the build tree's supervisor/ringmaster (or libtool's .libs/ copy of it). */
static bool running_from_build_tree(void) {
        char exe[PATH_MAX], want[PATH_MAX];
        ssize_t n;
        char *slash;

        if (!RINGMASTER_ABS_TOP_BUILDDIR[0] || !RINGMASTER_ABS_TOP_SRCDIR[0])
                return false;
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n <= 0)
                return false;
        exe[n] = 0;
        slash = strrchr(exe, '/');
        if (!slash)
                return false;
        *slash = 0;
        if (strlen(exe) > 6 && strcmp(exe + strlen(exe) - 6, "/.libs") == 0)
                exe[strlen(exe) - 6] = 0;
        snprintf(want, sizeof(want), "%s/supervisor", RINGMASTER_ABS_TOP_BUILDDIR);
        return strcmp(exe, want) == 0;
}

static void canonicalize(char **path) {
        char *c = realpath(*path, NULL);

        if (c) {
                free(*path);
                *path = c;
        }
}

int python_hook_dirs(char **ret_hook_dir, char **ret_package_dir) {
        _cleanup_free_ char *hook = NULL, *package = NULL;
        const char *e = getenv("RINGMASTER_PYTHON_HOOK_DIR");

        if (e && e[0]) {
                char *slash;

                hook = strdup(e);
                package = strdup(e);
                if (!hook || !package)
                        return -ENOMEM;
                while ((slash = strrchr(package, '/')) && slash[1] == 0 && slash != package)
                        *slash = 0;     /* trailing slashes */
                slash = strrchr(package, '/');
                if (slash && slash != package)
                        *slash = 0;
                if (!holds_package(package)) {
                        free(package);
                        package = NULL;
                }
        } else if (running_from_build_tree()) {
                if (asprintf(&hook, "%s/engine/python/hook", RINGMASTER_ABS_TOP_SRCDIR) < 0 ||
                    asprintf(&package, "%s/engine/python", RINGMASTER_ABS_TOP_SRCDIR) < 0)
                        return -ENOMEM;
        } else {
                hook = strdup(RINGMASTER_PYTHON_HOOK_DIR);
                package = strdup(RINGMASTER_PYTHON_PACKAGE_DIR);
                if (!hook || !package)
                        return -ENOMEM;
        }
        if (!is_dir(hook))
                return -ENOENT;
        /* Canonical ("build/../engine" reads badly in a worker's PYTHONPATH). */
        canonicalize(&hook);
        if (package)
                canonicalize(&package);
        if (package && !holds_package(package)) {
                free(package);
                package = NULL;
        }
        *ret_hook_dir = TAKE_PTR(hook);
        *ret_package_dir = TAKE_PTR(package);
        return 0;
}

int python_hooks_pythonpath(const char *hook_dir, const char *package_dir, const char *inherited, char **ret) {
        char *s;
        int n;

        /* The inherited value goes after ours as it was: an empty entry means something to Python. */
        n = asprintf(&s, "%s%s%s%s%s", hook_dir, package_dir ? ":" : "", package_dir ? package_dir : "",
                     inherited && inherited[0] ? ":" : "", inherited && inherited[0] ? inherited : "");
        if (n < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* SPDX-License-Identifier: MIT */
#include <dirent.h>
#include <string.h>

#include "gpus.h"
#include "log.h"
#include "parse-util.h"
#include "util.h"

static bool is_uuid(const char *s) {
        return (startswith(s, "GPU-") || startswith(s, "MIG-")) && strlen(s) > 4;
}

int gpus_visible(char ***ret, bool *ret_from_environment) {
        const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        DIR *d;

        if (!l)
                return -ENOMEM;
        if (cvd) {
                _cleanup_free_ char *copy = strdup(cvd);
                char *save = NULL;

                if (!copy)
                        return -ENOMEM;
                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        long long v;

                        t += strspn(t, " ");
                        t[strcspn(t, " ")] = 0;
                        if (parse_int_range(t, -1000000, 1000000, &v) == 0) {
                                if (v < 0)
                                        break;    /* CUDA: devices after an invalid index are hidden */
                        } else if (!is_uuid(t)) {
                                log_error("CUDA_VISIBLE_DEVICES='%s': '%s' is neither a GPU index nor a GPU-/MIG- UUID: "
                                          "fix or unset it, or give --gpus", cvd, t);
                                return -EINVAL;
                        }
                        if (strv_extend(&l, t) < 0)
                                return -ENOMEM;
                }
                *ret = TAKE_PTR(l);
                *ret_from_environment = true;
                return 0;
        }

        /* RINGMASTER_TEST_DEV_DIR (tests only): where to look instead of /dev, so that
         * the CPU tests behave the same on a GPU host. */
        d = opendir(getenv("RINGMASTER_TEST_DEV_DIR") ?: "/dev");
        if (d) {
                int count = 0;

                for (struct dirent *de; (de = readdir(d));) {
                        long long v;

                        if (startswith(de->d_name, "nvidia") && parse_int_range(de->d_name + 6, 0, 1023, &v) == 0)
                                count = MAX(count, (int) v + 1);
                }
                closedir(d);
                for (int i = 0; i < count; i++)
                        if (strv_extendf(&l, "%d", i) < 0)
                                return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        *ret_from_environment = false;
        return 0;
}

int gpus_select(char *const *requested, char *const *visible, bool from_environment, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        size_t n_visible = strv_length(visible);

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; requested[i]; i++) {
                const char *g = requested[i];
                long long v;

                if (from_environment && parse_int_range(g, 0, 1023, &v) == 0) {
                        if ((size_t) v >= n_visible) {
                                log_error("--gpus: %s is past the %zu GPU(s) of CUDA_VISIBLE_DEVICES='%s' (indices "
                                          "count within it): give indices below %zu, or unset CUDA_VISIBLE_DEVICES",
                                          g, n_visible, getenv("CUDA_VISIBLE_DEVICES"), n_visible);
                                return -EINVAL;
                        }
                        g = visible[v];
                }
                if (strv_extend(&l, g) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/*
** case.c — one ONNX node-test case: load, feed input_K.pb, compare output_K.pb.
*/
#include "case.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_exec.h"
#include "compare.h"
#include "ir/mem.h"

const char *cli_case_result_name(cli_case_result r) {
    static const char *const names[] = {"pass", "fail", "unsupported", "error", "crash", "timeout"};
    return r < CASE_RESULT_COUNT ? names[r] : "?";
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void cli_free_list(char **list, int n) {
    for (int i = 0; i < n; i++) kiln_free(list[i]);
    kiln_free(list);
}

int cli_list_dirs(const char *dir, const char *prefix, char ***out) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    char **list = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0) continue;
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) continue;
        char *name = kiln_strdup(e->d_name);
        if (!name || !kiln_grow((void **)&list, &cap, n + 1, sizeof(char *))) {
            kiln_free(name);
            cli_free_list(list, n);
            closedir(d);
            return -1;
        }
        list[n++] = name;
    }
    closedir(d);
    if (n) qsort(list, (size_t)n, sizeof(char *), cmp_str);
    *out = list;
    return n;
}

static cli_case_result classify(kiln_status s) {
    return s == KILN_ERR_UNSUPPORTED ? CASE_UNSUPPORTED : CASE_ERROR;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* Runs one test_data_set folder against a loaded model. */
static kiln_status run_on_target(kiln_ctx *ctx, kiln_model *m, const char *target, const kiln_tensor *in,
                                 int ni, kiln_tensor *out, int no) {
    cli_exec_opts o = {target, 1};
    cli_exec *e = NULL;
    kiln_status s = cli_exec_prepare(ctx, m, &o, in, ni, &e);
    if (!s) s = cli_exec_run(ctx, e, in, ni, out, no);
    cli_exec_free(e);
    return s;
}

static cli_case_result run_data_set(kiln_ctx *ctx, kiln_model *m, const char *target, const char *set,
                                    double rtol, double atol, FILE *log) {
    int ni = kiln_model_num_inputs(m), no = kiln_model_num_outputs(m);
    kiln_tensor *in = kiln_calloc((size_t)ni + 1, sizeof(kiln_tensor));
    kiln_tensor *out = kiln_calloc((size_t)no + 1, sizeof(kiln_tensor));
    cli_case_result r = CASE_PASS;
    char path[4200];
    kiln_status s = KILN_OK;
    if (!in || !out) {
        fprintf(log, "out of memory\n");
        r = CASE_ERROR;
        goto done;
    }
    for (int i = 0; i < ni && !s; i++) {
        snprintf(path, sizeof path, "%s/input_%d.pb", set, i);
        s = kiln_tensor_load_pb(ctx, path, &in[i]);
    }
    if (!s) s = run_on_target(ctx, m, target, in, ni, out, no);
    if (s) {
        fprintf(log, "%s: %s\n", set, kiln_errmsg(ctx));
        r = classify(s);
        goto done;
    }
    int compared = 0;
    for (int k = 0; k < no; k++) {
        snprintf(path, sizeof path, "%s/output_%d.pb", set, k);
        if (!file_exists(path)) continue;
        kiln_tensor want;
        s = kiln_tensor_load_pb(ctx, path, &want);
        if (s) {
            fprintf(log, "%s: %s\n", path, kiln_errmsg(ctx));
            r = classify(s);
            break;
        }
        cli_mismatch mm;
        if (!cli_compare(&out[k], &want, rtol, atol, &mm)) {
            char name[256];
            snprintf(name, sizeof name, "%s output %d '%s'", set, k, kiln_model_output_name(m, k));
            cli_print_mismatch(log, name, &out[k], &want, &mm);
            r = CASE_FAIL;
        }
        kiln_tensor_release(&want);
        compared++;
    }
    if (r == CASE_PASS && compared == 0) {
        fprintf(log, "%s: no output_K.pb to compare with\n", set);
        r = CASE_ERROR;
    }
done:
    for (int i = 0; in && i < ni; i++) kiln_tensor_release(&in[i]);
    for (int k = 0; out && k < no; k++) kiln_tensor_release(&out[k]);
    kiln_free(in);
    kiln_free(out);
    return r;
}

cli_case_result cli_run_case(const char *dir, const char *target, double rtol, double atol, FILE *log) {
    kiln_ctx *ctx = NULL;
    if (kiln_ctx_new(&ctx)) return CASE_ERROR;
    char path[4200];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    kiln_model *m = NULL;
    kiln_status s = kiln_model_load(ctx, path, &m);
    cli_case_result r = CASE_PASS;
    if (s) {
        fprintf(log, "%s: %s\n", path, kiln_errmsg(ctx));
        kiln_ctx_free(ctx);
        return classify(s);
    }
    char **sets = NULL;
    int n = cli_list_dirs(dir, "test_data_set_", &sets);
    if (n <= 0) {
        fprintf(log, "%s: no test_data_set_* folders\n", dir);
        r = CASE_ERROR;
    }
    for (int i = 0; i < n && r == CASE_PASS; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, sets[i]);
        r = run_data_set(ctx, m, target, path, rtol, atol, log);
    }
    if (n > 0) cli_free_list(sets, n);
    kiln_model_free(m);
    kiln_ctx_free(ctx);
    return r;
}

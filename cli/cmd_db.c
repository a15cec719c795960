/*
** cmd_db.c — `kiln db stats|export|import|merge|prune`: the tuner's records
** database from the command line (autotune/records.h). Export writes JSON
** lines (the format is documented in autotune/records_io.c); import and
** merge are idempotent, so re-running them changes nothing.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autotune/records.h"
#include "cli.h"
#include "cli_util.h"
#include "ir/ctx.h"

static int usage(void) {
    fprintf(stderr,
            "usage: kiln db COMMAND DB [ARGS]\n"
            "  stats DB                  workloads, targets, records by status, the best\n"
            "                            time of each workload/target pair, file size\n"
            "  export DB [-o FILE]       every record as JSON lines (stdout by default)\n"
            "  import DB FILE|-          add the records of an export (creates DB);\n"
            "                            records already there are skipped\n"
            "  merge DB OTHER.db...      add the records of other databases (idempotent)\n"
            "  prune DB [--failed] [--keep-best K] [--vacuum]\n"
            "                            drop records that are not ok, and/or keep only the\n"
            "                            K best ok records of each workload/target;\n"
            "                            --vacuum then gives the space back to the system\n");
    return 2;
}

static long long file_size(const char *path, const char *suffix) {
    char p[4096];
    snprintf(p, sizeof p, "%s%s", path, suffix);
    struct stat sb;
    return stat(p, &sb) == 0 ? (long long)sb.st_size : 0;
}

static void print_seconds(double s) {
    if (isnan(s)) printf("%12s", "-");
    else if (s < 1e-3) printf("%9.3f us", s * 1e6);
    else if (s < 1) printf("%9.3f ms", s * 1e3);
    else printf("%9.3f s ", s);
}

static kiln_status print_key(kiln_ctx *ctx, const tune_key_summary *k, void *user) {
    char key[17];
    tune_target_key(k->target, key);
    printf("  %016llx  %-8s %8lld %8lld  ", (unsigned long long)k->workload_hash, key, (long long)k->records,
           (long long)k->ok);
    print_seconds(k->best_s);
    printf("  %s\n", k->workload_ops);
    return KILN_OK;
}

static kiln_status print_target(kiln_ctx *ctx, const char *target, int64_t records, void *user) {
    char key[17];
    tune_target_key(target, key);
    printf("target %s (%lld records):\n", key, (long long)records);
    for (const char *p = target; *p;) {
        const char *e = strchr(p, '\n');
        int n = e ? (int)(e - p) : (int)strlen(p);
        printf("  %.*s%s\n", n > 160 ? 160 : n, p, n > 160 ? "..." : "");
        p = e ? e + 1 : p + n;
    }
    return KILN_OK;
}

static int db_stats(kiln_ctx *ctx, const char *path) {
    tune_db *db = NULL;
    tune_db_stats st;
    kiln_status s = tune_db_open(ctx, path, TUNE_DB_READONLY, &db);
    if (!s) s = tune_db_get_stats(ctx, db, &st);
    if (s) {
        tune_db_close(db);
        return cli_error(ctx, s);
    }
    printf("file       %s (%lld bytes, %lld in the WAL)\n", path, file_size(path, ""), file_size(path, "-wal"));
    printf("schema     version %d\n", tune_db_version(db));
    printf("workloads  %lld\ntargets    %lld\nrecords    %lld (", (long long)st.workloads, (long long)st.targets,
           (long long)st.records);
    for (int i = 0; i < TUNE_STATUS_COUNT; i++)
        printf("%s%s %lld", i ? ", " : "", tune_status_name((tune_status)i), (long long)st.by_status[i]);
    printf(")\nbest       %lld workload/target pairs have an ok record\n", (long long)st.keys_with_best);
    s = tune_db_foreach_target(ctx, db, print_target, NULL);
    if (!s && st.records) {
        printf("  %-16s  %-16s %8s %8s  %12s  %s\n", "workload", "target", "records", "ok", "best", "ops");
        s = tune_db_foreach_key(ctx, db, print_key, NULL);
    }
    tune_db_close(db);
    return s ? cli_error(ctx, s) : 0;
}

static int db_export(kiln_ctx *ctx, const char *path, const char *out_path) {
    tune_db *db = NULL;
    kiln_status s = tune_db_open(ctx, path, TUNE_DB_READONLY, &db);
    FILE *out = stdout;
    if (!s && out_path && !(out = fopen(out_path, "w")))
        s = kiln_fail(ctx, KILN_ERR_IO, "%s: cannot write: %s", out_path, strerror(errno));
    if (!s) s = tune_db_export(ctx, db, out, out_path ? out_path : "stdout");
    if (out && out != stdout && fclose(out) != 0 && !s)
        s = kiln_fail(ctx, KILN_ERR_IO, "%s: cannot write: %s", out_path, strerror(errno));
    tune_db_close(db);
    return s ? cli_error(ctx, s) : 0;
}

static int db_import(kiln_ctx *ctx, const char *path, const char *in_path) {
    bool std_in = !strcmp(in_path, "-");
    FILE *in = std_in ? stdin : fopen(in_path, "r");
    if (!in) return cli_error(ctx, kiln_fail(ctx, KILN_ERR_IO, "%s: cannot open: %s", in_path, strerror(errno)));
    tune_db *db = NULL;
    int64_t added = 0, skipped = 0;
    kiln_status s = tune_db_open(ctx, path, TUNE_DB_CREATE, &db);
    if (!s) s = tune_db_import(ctx, db, in, std_in ? "stdin" : in_path, &added, &skipped);
    if (!std_in) fclose(in);
    tune_db_close(db);
    if (s) return cli_error(ctx, s);
    printf("imported %lld records into %s (%lld already there)\n", (long long)added, path, (long long)skipped);
    return 0;
}

static int db_merge(kiln_ctx *ctx, const char *path, int n, char **others) {
    tune_db *db = NULL;
    kiln_status s = tune_db_open(ctx, path, TUNE_DB_CREATE, &db);
    for (int i = 0; !s && i < n; i++) {
        int64_t added = 0, skipped = 0;
        s = tune_db_merge(ctx, db, others[i], &added, &skipped);
        if (!s)
            printf("merged %lld records from %s into %s (%lld already there)\n", (long long)added, others[i], path,
                   (long long)skipped);
    }
    tune_db_close(db);
    return s ? cli_error(ctx, s) : 0;
}

static int db_prune(kiln_ctx *ctx, const char *path, int argc, char **argv) {
    tune_prune_opts o = {0};
    bool vacuum = false;
    for (int i = 0; i < argc; i++) {
        char *end = NULL;
        if (!strcmp(argv[i], "--failed")) o.drop_failed = true;
        else if (!strcmp(argv[i], "--vacuum")) vacuum = true;
        else if (!strcmp(argv[i], "--keep-best") && i + 1 < argc) {
            long k = strtol(argv[++i], &end, 10);
            if (*end || k < 1 || k > 1000000) {
                fprintf(stderr, "kiln db prune: --keep-best wants a count >= 1, not '%s'\n", argv[i]);
                return 2;
            }
            o.keep_best = (int)k;
        } else return usage();
    }
    if (!o.drop_failed && !o.keep_best && !vacuum) {
        fprintf(stderr, "kiln db prune: say what to drop: --failed and/or --keep-best K (or --vacuum)\n");
        return 2;
    }
    tune_db *db = NULL;
    int64_t removed = 0;
    kiln_status s = tune_db_open(ctx, path, 0, &db);
    if (!s) s = tune_db_prune(ctx, db, &o, &removed);
    if (!s && vacuum) s = tune_db_vacuum(ctx, db);
    tune_db_close(db);
    if (s) return cli_error(ctx, s);
    printf("pruned %lld records from %s\n", (long long)removed, path);
    return 0;
}

static int dispatch(kiln_ctx *ctx, int argc, char **argv) {
    const char *cmd = argv[1], *path = argv[2];
    if (!strcmp(cmd, "stats") && argc == 3) return db_stats(ctx, path);
    if (!strcmp(cmd, "export") && argc == 3) return db_export(ctx, path, NULL);
    if (!strcmp(cmd, "export") && argc == 5 && !strcmp(argv[3], "-o")) return db_export(ctx, path, argv[4]);
    if (!strcmp(cmd, "import") && argc == 4) return db_import(ctx, path, argv[3]);
    if (!strcmp(cmd, "merge") && argc >= 4) return db_merge(ctx, path, argc - 3, argv + 3);
    if (!strcmp(cmd, "prune")) return db_prune(ctx, path, argc - 3, argv + 3);
    return usage();
}

int cmd_db(int argc, char **argv) {
    if (argc < 3) return usage();
    kiln_ctx *ctx = NULL;
    if (kiln_ctx_new(&ctx) != KILN_OK) return cli_error(NULL, KILN_ERR_NOMEM);
    int rc = dispatch(ctx, argc, argv);
    kiln_ctx_free(ctx);
    return rc;
}

/*
** cli_passes.c — parsing the graph-pass options of the kiln command.
*/
#include "cli_passes.h"

#include <string.h>


void cli_pass_opts_init(cli_pass_opts *o) {
    memset(o, 0, sizeof *o);
    pass_options_default(&o->passes);
}

bool cli_pass_arg(cli_pass_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (!strcmp(a, "-O0") || !strcmp(a, "-O2")) {
        o->passes.opt_level = a[2] - '0';
        return true;
    }
    if (!strcmp(a, "--verify-passes")) {
        o->passes.verify = true;
        return true;
    }
    if (*i + 1 >= argc) return false;
    bool disable = !strcmp(a, "--disable-pass"), after = !strcmp(a, "--after");
    if (!disable && !after) return false;
    const char *name = argv[++*i];
    if (!pass_find(name)) {
        fprintf(stderr, "kiln: %s: no pass is named '%s' (kiln inspect --passes lists them)\n", a, name);
        o->bad = true;
    } else if (after) {
        o->passes.stop_after = name;
    } else if (o->passes.n_disabled < PASS_MAX_DISABLED) {
        o->passes.disabled[o->passes.n_disabled++] = name;
    } else {
        fprintf(stderr, "kiln: at most %d passes can be disabled\n", PASS_MAX_DISABLED);
        o->bad = true;
    }
    return true;
}

void cli_pass_usage(FILE *f) {
    fprintf(f, "  -O0 | -O2             graph passes: only what lowering needs, or all (default)\n"
               "  --disable-pass NAME   skip one pass (repeatable; kiln inspect --passes lists them)\n"
               "  --verify-passes       run the graph verifier after every pass\n");
}

void cli_pass_list(FILE *f) {
    for (int i = 0; i < pass_count(); i++) {
        const gir_pass *p = pass_at(i);
        fprintf(f, "%-22s -O%d  %s\n", p->name, p->level, p->about);
    }
}

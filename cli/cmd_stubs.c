#include "cli.h"
int cmd_run(int argc, char **argv) { (void)argc; (void)argv; return 1; }
int cmd_check(int argc, char **argv) { (void)argc; (void)argv; return 1; }
int cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; return 1; }
int cmd_conformance(int argc, char **argv) { (void)argc; (void)argv; return 1; }

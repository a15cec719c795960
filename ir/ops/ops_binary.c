/*
** ops_binary.c — the binary op family.
*/
#include "../op.h"

const kiln_op_def kiln_ops_binary[] = {
    {0},
};

/*
** ops_linalg.c — the linalg op family.
*/
#include "../op.h"

const kiln_op_def kiln_ops_linalg[] = {
    {0},
};

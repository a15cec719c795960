/*
** ops_reduce.c — the reduce op family.
*/
#include "../op.h"

const kiln_op_def kiln_ops_reduce[] = {
    {0},
};

/*
** ops_unary.c — the unary op family.
*/
#include "../op.h"

const kiln_op_def kiln_ops_unary[] = {
    {0},
};

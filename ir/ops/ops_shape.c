/*
** ops_shape.c — the shape op family.
*/
#include "../op.h"

const kiln_op_def kiln_ops_shape[] = {
    {0},
};

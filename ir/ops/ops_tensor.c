/*
** ops_tensor.c — the tensor op family.
*/
#include "../op.h"

const kiln_op_def kiln_ops_tensor[] = {
    {0},
};

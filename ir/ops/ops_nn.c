/*
** ops_nn.c — the nn op family.
*/
#include "../op.h"

const kiln_op_def kiln_ops_nn[] = {
    {0},
};

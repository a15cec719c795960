/*
** ops_misc.c — the misc op family.
*/
#include "../op.h"

const kiln_op_def kiln_ops_misc[] = {
    {0},
};

/* Split neural network (docs/vertical.md). */
#include "vfl_internal.h"

fh_status vfl_splitnn_run(const comm_t *c, const vfl_opts *o, const vfl_party_data *pd, const int64_t *rows, int64_t n,
                          const uint8_t *test, vfl_result *res)
{
    (void)o; (void)pd; (void)rows; (void)n; (void)test; (void)res;
    return comm_agree(c, fh_error_set(FH_EINPUT, "vertical --model splitnn: not implemented yet"));
}

fh_status vfl_splitnn_central(const vfl_opts *o, const double *x, const int32_t *y, const uint8_t *t, int64_t n, int32_t D,
                              vfl_result *res)
{
    (void)o; (void)x; (void)y; (void)t; (void)n; (void)D; (void)res;
    return fh_error_set(FH_EINPUT, "vertical --model splitnn: not implemented yet");
}

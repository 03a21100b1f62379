/* `fedhpc prepare movielens`: ratings as implicit-feedback interactions for [model] lightgcn,
 * partitioned over enterprises (clients) by users or by genre (docs/recommend.md). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "fedhpc/data.h"
#include "fedhpc/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fh_status prepare_movielens(const char *path, const char *out, const char *partition, int32_t clients, uint64_t seed,
                            double test_frac, double min_rating)
{
    if (clients < 1) return fh_error_set(FH_EINPUT, "prepare movielens: --clients N is required");
    data_ml_opts o = {partition, clients, test_frac, min_rating, seed};
    data_set ds;
    int32_t *client_of_row = NULL;
    FH_TRY(data_load_movielens(path, &o, &ds, &client_of_row));
    const int64_t n = ds.train.n;
    int64_t *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
    int64_t *offsets = malloc(((size_t)clients + 1) * sizeof *offsets);
    fh_status st = perm && offsets ? part_layout(client_of_row, n, clients, perm, offsets)
                                   : fh_error_set(FH_ENOMEM, "out of memory");
    for (int32_t c = 0; st == FH_OK && c < clients; c++)
        if (offsets[c + 1] == offsets[c])
            st = fh_error_set(FH_EINPUT, "prepare movielens: client %d holds no interactions (fewer --clients?)", c);
    int64_t held = 0;
    for (int64_t k = 0; k < n; k++) held += ds.train.x[2 * k + 1] != 0;
    if (st == FH_OK) {
        io_data_meta meta;
        memset(&meta, 0, sizeof meta);
        snprintf(meta.dataset, sizeof meta.dataset, "%s", ds.name);
        snprintf(meta.partition, sizeof meta.partition, "%s", partition);
        meta.seed = (int64_t)seed;
        meta.clients = clients;
        st = io_data_write(out, &ds, &meta, perm, offsets, NULL);
    }
    if (st == FH_OK)
        printf("prepare: movielens -> %s: %lld interactions (rating >= %g; %lld held out), %d items, %d clients (%s)\n",
               out, (long long)n, min_rating, (long long)held, ds.nclasses, clients, partition);
    free(perm);
    free(offsets);
    free(client_of_row);
    data_free(&ds);
    return st;
}

/* Freeing data sets and CSV encodings (see include/fedhpc/data.h).
 *
 * Both functions are safe on zeroed structs and on partly built ones (the loaders call them
 * on their error paths), and leave the struct zeroed so a second call is harmless.
 */
#include "fedhpc/data.h"

#include <stdlib.h>
#include <string.h>

static void strings_free(char **s, int64_t n)
{
    if (!s) return;
    for (int64_t i = 0; i < n; i++) free(s[i]);
    free(s);
}

void data_encoding_free(data_encoding *e)
{
    if (!e) return;
    if (e->cat) {
        for (int32_t j = 0; j < e->ncols; j++)
            strings_free(e->cat[j], e->ncat ? e->ncat[j] : 0);
        free(e->cat);
    }
    strings_free(e->col_name, e->ncols);
    strings_free(e->feature_name, e->d);
    free(e->kind);
    free(e->mean);
    free(e->std);
    free(e->first_feature);
    free(e->ncat);
    free(e->mode);
    memset(e, 0, sizeof *e);
}

void data_free(data_set *ds)
{
    if (!ds) return;
    strings_free(ds->class_name, ds->nclasses);
    free(ds->train.x);
    free(ds->train.y);
    free(ds->test.x);
    free(ds->test.y);
    free(ds->val.x);
    free(ds->val.y);
    if (ds->enc) {
        data_encoding_free(ds->enc);
        free(ds->enc);
    }
    free(ds->row_key);
    strings_free(ds->key_name, ds->nkeys);
    strings_free(ds->item_name, ds->items);
    memset(ds, 0, sizeof *ds);
}

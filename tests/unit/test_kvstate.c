/* test_kvstate.c - recurrent state kept beside the KV rows (mt_kvcache.state): sized from the
 * model's layers, zero for a new sequence, copied with the cache, zeroed by reset; a cache with
 * state is not trimmable and prompt-cache files refuse it (a recurrence cannot be rewound or
 * stored in mlx-lm's KV layout yet). */
#include <stdlib.h>
#include "check.h"
#include "kv/kvfile.h"
#include "models/model.h"

int main(void) {
    mt_err e = {0};
    mt_layer layers[3] = {{.state_floats = 0}, {.state_floats = 10}, {.state_floats = 3}};
    mt_model m = {.hp = {.n_layers = 3, .n_kv_heads = 1, .head_dim = 4}, .layers = layers};
    mt_kvcache *c = NULL, *d = NULL;
    CHECK_OK(mt_kvcache_new(&c, &m, &e), &e);
    CHECK(c->has_state == 1);
    CHECK(c->state[0] == NULL && c->state_n[0] == 0);
    CHECK(c->state_n[1] == 10 && c->state_n[2] == 3);
    int zero = 1;
    for (size_t i = 0; i < 10; i++) zero &= c->state[1][i] == 0.0f;
    CHECK(zero);
    size_t b0 = mt_kvcache_bytes(c);
    CHECK_EQ_INT(b0, 13 * sizeof(float));
    for (size_t i = 0; i < 10; i++) c->state[1][i] = (float)i + 0.5f;
    c->state[2][2] = -7;
    CHECK(!mt_kvcache_trimmable(c));
    c->len = 5;
    CHECK_EQ_INT(mt_kvcache_trim(c, 2), 0);
    CHECK_EQ_INT(c->len, 5);
    c->len = 0;
    CHECK_OK(mt_kvcache_copy(&d, c, &e), &e);
    CHECK(d->has_state && d->state_n[1] == 10 && d->state[0] == NULL);
    CHECK(d->state[1][9] == 9.5f && d->state[2][2] == -7.0f);
    d->state[1][0] = 42;
    CHECK(c->state[1][0] == 0.5f);   /* a deep copy */
    mt_kvcache_reset(c);
    zero = 1;
    for (size_t i = 0; i < 10; i++) zero &= c->state[1][i] == 0.0f;
    CHECK(zero && c->state[2][2] == 0.0f);
    char *buf = NULL;
    size_t len = 0;
    mt_kvmeta meta = {0};
    CHECK(mt_kvfile_serialize(c, &meta, &buf, &len, &e) == MT_EUNSUPPORTED);
    CHECK(strstr(e.msg, "recurrent") != NULL);
    free(buf);
    mt_kvcache_free(d);
    mt_kvcache_free(c);
    /* a model without stateful layers keeps none */
    layers[1].state_floats = layers[2].state_floats = 0;
    CHECK_OK(mt_kvcache_new(&c, &m, &e), &e);
    CHECK(!c->has_state && c->state == NULL && mt_kvcache_trimmable(c));
    mt_kvcache_free(c);
    return check_report("kvstate");
}

/* moe_fwd.c - the shared decoder's built-in mixture-of-experts MLP (layers with L->moe).
 * ref: mlx_lm/models/mixtral.py (top-k of the router logits, then softmax) and
 * qwen3_moe.py (softmax, top-k, optional renormalization); switch_layers.py (SwitchGLU). */
#include <stdio.h>
#include <string.h>
#include "models/decoder_int.h"
#include "tensor/ops.h"

void mt_dec_moe(const mt_fwd *f, int l, const float *x, size_t T, float *out, float *scratch) {
    const mt_model *m = f->m;
    const mt_layer *L = &m->layers[l];
    const mt_decoder_hp *hp = &m->hp;
    size_t H = (size_t)hp->hidden, I = (size_t)hp->moe_inter, E = (size_t)hp->n_experts, K = (size_t)hp->top_k;
    float *gates = scratch, *gg = gates + E, *uu = gg + I, *y = uu + I;
    int sel[64];
    float sc[64];
    for (size_t t = 0; t < T; t++) {
        const float *xt = x + t * H;
        char sub[160];
        snprintf(sub, sizeof sub, "%s.%s", m->moe_prefix, m->moe_router ? m->moe_router : "gate");
        mt_dec_observe(m, l, sub, xt, 1, H);
        mt_linear_forward(&L->router, xt, 1, gates, f->work, m->pool);
        if (hp->moe_softmax_first) mt_softmax(gates, E);
        mt_dec_topk(gates, E, K, sel, sc);
        if (!hp->moe_softmax_first) mt_softmax(sc, K);
        else if (hp->moe_norm_topk) {
            float s = 0;
            for (size_t k = 0; k < K; k++) s += sc[k];
            for (size_t k = 0; k < K; k++) sc[k] /= s;
        }
        float *ot = out + t * H;
        memset(ot, 0, H * sizeof(float));
        for (size_t k = 0; k < K; k++) {
            int e = sel[k];
            if (m->on_linear_input) {
                snprintf(sub, sizeof sub, "%s.switch_mlp.gate_proj.%d", m->moe_prefix, e);
                mt_dec_observe(m, l, sub, xt, 1, H);
                snprintf(sub, sizeof sub, "%s.switch_mlp.up_proj.%d", m->moe_prefix, e);
                mt_dec_observe(m, l, sub, xt, 1, H);
            }
            mt_linear_forward(&L->exp_gate[e], xt, 1, gg, f->work, m->pool);
            mt_linear_forward(&L->exp_up[e], xt, 1, uu, f->work, m->pool);
            mt_swiglu(gg, uu, I);
            if (m->on_linear_input) {
                snprintf(sub, sizeof sub, "%s.switch_mlp.down_proj.%d", m->moe_prefix, e);
                mt_dec_observe(m, l, sub, gg, 1, I);
            }
            mt_linear_forward(&L->exp_down[e], gg, 1, y, f->work, m->pool);
            mt_axpy(ot, sc[k], y, H);
        }
    }
}

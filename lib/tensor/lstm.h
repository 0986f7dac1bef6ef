/* lstm.h - one LSTM layer over one sequence, unidirectional or bidirectional,
 * as PyTorch's nn.LSTM(batch_first=True, num_layers=1) and mlx-audio's Kokoro
 * LSTM compute it (zero initial states).
 *
 * Gates in PyTorch's order i, f, g, o (rows [0,H), [H,2H), [2H,3H), [3H,4H)
 * of the weights), per step t:
 *   z = W_ih x_t + b_ih + b_hh + W_hh h_{t-1}
 *   c_t = sigmoid(z_f) c_{t-1} + sigmoid(z_i) tanh(z_g);  h_t = sigmoid(z_o) tanh(c_t)
 * The reverse direction runs t = T-1 .. 0 with its own weights and writes its
 * h_t at position t, after the forward one: y[t] = [h_fwd(t), h_rev(t)].
 * Checkpoint names (Kokoro's PyTorch state dict; mlx-audio's sanitize renames
 * them): weight_ih_l0 [4H, in] (Wx_forward), weight_hh_l0 [4H, H] (Wh_forward),
 * bias_ih_l0 / bias_hh_l0 [4H] (bias_ih_forward / bias_hh_forward), and the
 * same with the suffix _reverse (..._backward) for the second direction.
 *
 * ref: mlx_audio/tts/models/kokoro/modules.py (LSTM), torch.nn.LSTM. */
#ifndef MT_LSTM_H
#define MT_LSTM_H

#include <stddef.h>
#include "core/err.h"
#include "core/pool.h"

typedef struct mt_lstm {
    int in, hidden, dirs;   /* dirs: 1 (forward) or 2 (bidirectional) */
    float *w_ih[2];         /* [4H, in], owned */
    float *w_hh[2];         /* [4H, H], owned */
    float *bias[2];         /* [4H] = b_ih + b_hh (float32 sum, as the reference), owned */
} mt_lstm;

/* Copy direction d's weights (d = 0 forward, 1 reverse; d < dirs) from float32
 * arrays: w_ih[d] [4H, in], w_hh[d] [4H, H], b_ih[d], b_hh[d] [4H] (either
 * bias array may be NULL: zeros).  Errors: MT_EINVAL (sizes, dirs not 1 or 2,
 * a missing weight), MT_ENOMEM.  On error l is left empty. */
int mt_lstm_init(mt_lstm *l, int in, int hidden, int dirs, const float *const w_ih[], const float *const w_hh[],
                 const float *const b_ih[], const float *const b_hh[], mt_err *err);
/* Releases the weights (l itself is the caller's).  Accepts NULL. */
void mt_lstm_free(mt_lstm *l);

/* y [T, dirs*H] from x [T, in] (one sequence, batch_first; for a batch call
 * once per sequence).  Scratch is allocated per call.  pool may be NULL.  The
 * input projections of all steps are one product split over the pool; the
 * recurrences of the two directions run side by side.
 * Errors: MT_EINVAL (T = 0, missing arguments), MT_ENOMEM. */
int mt_lstm_forward(const mt_lstm *l, const float *x, size_t T, float *y, mt_pool *pool, mt_err *err);

#endif

// accelgen HLS kernel library: on-chip training of a tensor-train (TT) layer and its
// dense classifier head, in integer fixed point. The arithmetic is defined by
// accelgen/runtime/training/spec.py (read its docstring first); every kernel here
// computes exactly what the spec's function of the same name computes, so C simulation
// equals the spec bit for bit.
//
// Layout. Core k is G[r][m][n][s] (r_k, m_k, n_k, r_{k+1}), row-major. The state before
// core k is Z[p][m][q][r] (P_k, m_k, Q_k, r_k), row-major; the state after it,
// Z'[p][n][q][s], is in memory exactly the next state (P_k n_k, m_{k+1}, Q_{k+1}, r_{k+1}).
// Errors E_{k+1} have the layout of Z_{k+1}.
//
// One sample's training step: tt_forward_step per core (states kept on chip for the
// backward), tt_hidden (TT bias, ReLU), head_forward, softmax_error (exp table), then
// head_error, the updates of the head and biases, and per core from the last:
// tt_error_step (with the old core), then tt_core_update (gradient element by element,
// consumed by its update at once: there is no gradient buffer). Every parameter draws
// one LFSR word per sample in that order.
#ifndef ACCELGEN_TT_TRAIN_H
#define ACCELGEN_TT_TRAIN_H

#include <stdint.h>

#include "types.h"

namespace accelgen {

/// \brief Storage of a training word: the HLS type itself in synthesis, a native integer
/// holding the same value in C simulation (every value is saturated to its width).
/// \tparam BITS width; \tparam SIGNED two's complement or unsigned
template <unsigned BITS, bool SIGNED>
struct TrainWord {
    typedef typename Stored<typename Int<BITS, SIGNED>::type>::type type;
};

/// \brief The exact accumulator of the training arithmetic: ap_int<BITS> in synthesis (and
/// in the ap_types model), a 64-bit integer on the C-simulation fast path.
/// \tparam BITS the width every sum is proved to fit (TrainConfig.check)
template <unsigned BITS>
struct TrainAcc {
    static_assert(BITS >= 2 && BITS <= 64, "training accumulators are 2..64 bits");
#ifdef ACCELGEN_CSIM_FAST
    typedef long long type;
#else
    typedef ap_int<BITS> type;
#endif
};

#ifdef ACCELGEN_CSIM_FAST
typedef uint32_t lfsr_word_t;
#else
typedef ap_uint<32> lfsr_word_t;
#endif

/// \brief The stochastic-rounding source: a 32-bit Galois LFSR (x^32 + x^22 + x^2 + x + 1,
/// mask 0x80200003, shifting right), 32 steps per draw; the draw is the new state.
struct Lfsr32 {
    lfsr_word_t state;

    lfsr_word_t draw() {
#pragma HLS INLINE
    lfsr_steps:
        for (unsigned i = 0; i < 32; i++) {
#pragma HLS UNROLL
            const bool lsb = (state & 1) != 0;
            state = state >> 1;
            if (lsb) state = state ^ lfsr_word_t(0x80200003u);
        }
        return state;
    }
};

/// \brief acc / 2^SHIFT rounded to nearest, ties to even (a left shift for SHIFT <= 0).
template <int SHIFT, class ACC>
inline ACC shift_rne(ACC acc) {
#pragma HLS INLINE
    if (SHIFT <= 0) return acc << (SHIFT <= 0 ? -SHIFT : 0);
    const int s = SHIFT > 0 ? SHIFT : 1;
    const ACC half = ACC(1) << (s - 1);
    const ACC odd = (acc >> s) & ACC(1);
    return (acc + half - ACC(1) + odd) >> s;
}

/// \brief floor((v + o) / 2^SHIFT), o = floor(u 2^SHIFT / 2^32): unbiased rounding of v / 2^SHIFT.
template <int SHIFT, class ACC>
inline ACC shift_stochastic(ACC v, lfsr_word_t u) {
#pragma HLS INLINE
    if (SHIFT <= 0) return v << (SHIFT <= 0 ? -SHIFT : 0);
    const ACC word = ACC((unsigned long long)u);
    const ACC offset = SHIFT <= 32 ? ACC(word >> (SHIFT <= 32 ? 32 - SHIFT : 0)) : ACC(word << (SHIFT > 32 ? SHIFT - 32 : 0));
    return (v + offset) >> (SHIFT > 0 ? SHIFT : 1);
}

/// \brief v clipped to [LO, HI].
template <long long LO, long long HI, class ACC>
inline ACC saturate(ACC v) {
#pragma HLS INLINE
    return v < ACC(LO) ? ACC(LO) : (v > ACC(HI) ? ACC(HI) : v);
}

/// \brief The widths and types of one trainable network (generated from a TrainConfig).
/// \tparam IN_BITS unsigned input codes; \tparam CORE_BITS cores and head (signed, narrow)
/// \tparam ACT_BITS states (signed) and hidden (unsigned); \tparam ERR_BITS errors (signed)
/// \tparam BIAS_BITS biases (signed); \tparam ACC_BITS exact accumulators
/// \tparam LR_BITS the unsigned learning-rate code; \tparam PROB_FRAC softmax fraction
template <unsigned IN_BITS, unsigned CORE_BITS, unsigned HEAD_BITS, unsigned ACT_BITS, unsigned ERR_BITS,
          unsigned BIAS_BITS, unsigned ACC_BITS, unsigned LR_BITS, unsigned PROB_FRAC>
struct TrainNet {
    static_assert(IN_BITS <= 24 && CORE_BITS <= 24 && HEAD_BITS <= 24 && ACT_BITS <= 24 && ERR_BITS <= 24,
                  "training codes are at most 24 bits");
    static_assert(BIAS_BITS <= 32 && LR_BITS <= 31 && PROB_FRAC <= 24, "bias, learning rate, softmax widths");
    typedef typename TrainWord<IN_BITS, false>::type input_t;
    typedef typename TrainWord<CORE_BITS, true>::type core_t;
    typedef typename TrainWord<HEAD_BITS, true>::type head_t;
    typedef typename TrainWord<ACT_BITS, true>::type state_t;
    typedef typename TrainWord<ACT_BITS, false>::type hidden_t;
    typedef typename TrainWord<ERR_BITS, true>::type err_t;
    typedef typename TrainWord<BIAS_BITS, true>::type bias_t;
    typedef typename TrainWord<PROB_FRAC + 2, true>::type delta_t;
    typedef typename TrainAcc<ACC_BITS>::type acc_t;
    typedef unsigned lr_t;
    static const long long CORE_HI = (1LL << (CORE_BITS - 1)) - 1;  // narrow: -HI .. HI
    static const long long HEAD_HI = (1LL << (HEAD_BITS - 1)) - 1;
    static const long long STATE_HI = (1LL << (ACT_BITS - 1)) - 1;
    static const long long HIDDEN_HI = (1LL << ACT_BITS) - 1;
    static const long long ERR_HI = (1LL << (ERR_BITS - 1)) - 1;
    static const long long BIAS_HI = (1LL << (BIAS_BITS - 1)) - 1;
    static const unsigned PROB_FRAC_BITS = PROB_FRAC;
    static const unsigned PROB_ONE = 1u << PROB_FRAC;
    static const unsigned LR_MAX = (1u << LR_BITS) - 1;
};

/// \brief One core of the TT layer in training: its shapes and shifts.
/// \tparam NET the TrainNet; \tparam P, M, Q, R the state (P_k, m_k, Q_k, r_k)
/// \tparam N, S the core's output mode and right rank; \tparam STATE_SHIFT forward requant
/// \tparam ERROR_SHIFT requant of E_k (unused for core 0); \tparam UPDATE_SHIFT SR shift
/// \tparam LANES multipliers per cycle (the reduction loops' unroll factor)
template <class NET, unsigned P_, unsigned M_, unsigned Q_, unsigned R_, unsigned N_, unsigned S_, int STATE_SHIFT_,
          int ERROR_SHIFT_, int UPDATE_SHIFT_, unsigned LANES_>
struct TTTrainCore {
    typedef NET net;
    static const unsigned P = P_, M = M_, Q = Q_, R = R_, N = N_, S = S_, LANES = LANES_;
    static const int STATE_SHIFT = STATE_SHIFT_, ERROR_SHIFT = ERROR_SHIFT_, UPDATE_SHIFT = UPDATE_SHIFT_;
    static const unsigned IN_ELEMS = P * M * Q * R, OUT_ELEMS = P * N * Q * S, CORE_ELEMS = R * M * N * S;
    static_assert(P >= 1 && M >= 1 && Q >= 1 && R >= 1 && N >= 1 && S >= 1, "a core's axes are >= 1");
    static_assert(LANES >= 1, "at least one multiplier");
    static_assert(UPDATE_SHIFT <= 62 && STATE_SHIFT <= 62 && ERROR_SHIFT <= 62, "shifts fit the accumulator");
};

/// \brief Z_{k+1} = sum_{m,r} Z_k[p][m][q][r] G[r][m][j][s], requantized (RNE, saturated)
/// to the state width; ACC_OUT: the exact sums instead (the last core, before its bias).
template <class C, bool ACC_OUT, class IN, class OUT>
void tt_forward_step(const IN* z, const typename C::net::core_t* g, OUT* out) {
    typedef typename C::net::acc_t acc_t;
tt_fwd_rows:
    for (unsigned p = 0; p < C::P; p++) {
    tt_fwd_cols:
        for (unsigned j = 0; j < C::N; j++) {
        tt_fwd_q:
            for (unsigned q = 0; q < C::Q; q++) {
            tt_fwd_s:
                for (unsigned s = 0; s < C::S; s++) {
                    acc_t acc = 0;
                tt_fwd_reduce:  // t = (m, r), LANES products per cycle
                    for (unsigned t = 0; t < C::M * C::R; t++) {
#pragma HLS UNROLL factor = C::LANES
#pragma HLS PIPELINE II = 1
                        const unsigned m = t / C::R, r = t % C::R;
                        acc += acc_t(z[((p * C::M + m) * C::Q + q) * C::R + r]) *
                               acc_t(g[((r * C::M + m) * C::N + j) * C::S + s]);
                    }
                    const unsigned at = ((p * C::N + j) * C::Q + q) * C::S + s;
                    if (ACC_OUT)
                        out[at] = OUT(acc);
                    else
                        out[at] = OUT(saturate<-C::net::STATE_HI - 1, C::net::STATE_HI>(shift_rne<C::STATE_SHIFT>(acc)));
                }
            }
        }
    }
}

/// \brief E_k[p][m][q][r] = RNE(sum_{j,s} G[r][m][j][s] E_{k+1}[p][j][q][s]), saturated.
template <class C>
void tt_error_step(const typename C::net::core_t* g, const typename C::net::err_t* err_next,
                   typename C::net::err_t* err) {
    typedef typename C::net::acc_t acc_t;
tt_err_rows:
    for (unsigned p = 0; p < C::P; p++) {
    tt_err_m:
        for (unsigned m = 0; m < C::M; m++) {
        tt_err_q:
            for (unsigned q = 0; q < C::Q; q++) {
            tt_err_r:
                for (unsigned r = 0; r < C::R; r++) {
                    acc_t acc = 0;
                tt_err_reduce:  // t = (j, s)
                    for (unsigned t = 0; t < C::N * C::S; t++) {
#pragma HLS UNROLL factor = C::LANES
#pragma HLS PIPELINE II = 1
                        const unsigned j = t / C::S, s = t % C::S;
                        acc += acc_t(g[((r * C::M + m) * C::N + j) * C::S + s]) *
                               acc_t(err_next[((p * C::N + j) * C::Q + q) * C::S + s]);
                    }
                    err[((p * C::M + m) * C::Q + q) * C::R + r] = typename C::net::err_t(
                        saturate<-C::net::ERR_HI - 1, C::net::ERR_HI>(shift_rne<C::ERROR_SHIFT>(acc)));
                }
            }
        }
    }
}

/// \brief G[r][m][j][s] -= SR(eta sum_{p,q} Z_k[p][m][q][r] E_{k+1}[p][j][q][s]), saturated
/// (narrow); elements row-major, one LFSR draw each. The gradient never leaves the loop.
template <class C, class IN>
void tt_core_update(const IN* z, const typename C::net::err_t* err_next, typename C::net::core_t* g,
                    typename C::net::lr_t eta, Lfsr32& lfsr) {
    typedef typename C::net::acc_t acc_t;
tt_upd_elems:
    for (unsigned r = 0; r < C::R; r++) {
    tt_upd_m:
        for (unsigned m = 0; m < C::M; m++) {
        tt_upd_j:
            for (unsigned j = 0; j < C::N; j++) {
            tt_upd_s:
                for (unsigned s = 0; s < C::S; s++) {
                    acc_t grad = 0;
                tt_upd_reduce:  // t = (p, q)
                    for (unsigned t = 0; t < C::P * C::Q; t++) {
#pragma HLS UNROLL factor = C::LANES
#pragma HLS PIPELINE II = 1
                        const unsigned p = t / C::Q, q = t % C::Q;
                        grad += acc_t(z[((p * C::M + m) * C::Q + q) * C::R + r]) *
                                acc_t(err_next[((p * C::N + j) * C::Q + q) * C::S + s]);
                    }
                    const unsigned at = ((r * C::M + m) * C::N + j) * C::S + s;
                    const acc_t step = shift_stochastic<C::UPDATE_SHIFT>(acc_t(grad * acc_t(eta)), lfsr.draw());
                    g[at] = typename C::net::core_t(
                        saturate<-C::net::CORE_HI, C::net::CORE_HI>(acc_t(acc_t(g[at]) - step)));
                }
            }
        }
    }
}

/// \brief The dense head in training: shapes, shifts, the softmax's exp table.
/// \tparam NET the TrainNet; \tparam HIDDEN, CLASSES the head's shape
/// \tparam TT_BIAS_SHIFT, HIDDEN_SHIFT the TT bias alignment and the hidden requant
/// \tparam HEAD_BIAS_SHIFT, LUT_SHIFT the head bias alignment, logit gap -> table index
/// \tparam ERROR_SHIFT hidden error requant; \tparam UPD_HEAD, UPD_HEAD_BIAS, UPD_TT_BIAS SR shifts
/// \tparam LUT_SIZE exp table entries; \tparam LANES multipliers per cycle
template <class NET, unsigned HIDDEN_, unsigned CLASSES_, int TT_BIAS_SHIFT_, int HIDDEN_SHIFT_, int HEAD_BIAS_SHIFT_,
          int LUT_SHIFT_, int ERROR_SHIFT_, int UPD_HEAD_, int UPD_HEAD_BIAS_, int UPD_TT_BIAS_, unsigned LUT_SIZE_,
          unsigned LANES_>
struct TrainHead {
    typedef NET net;
    static const unsigned HIDDEN = HIDDEN_, CLASSES = CLASSES_, LUT_SIZE = LUT_SIZE_, LANES = LANES_;
    static const int TT_BIAS_SHIFT = TT_BIAS_SHIFT_, HIDDEN_SHIFT = HIDDEN_SHIFT_, HEAD_BIAS_SHIFT = HEAD_BIAS_SHIFT_;
    static const int LUT_SHIFT = LUT_SHIFT_, ERROR_SHIFT = ERROR_SHIFT_;
    static const int UPD_HEAD = UPD_HEAD_, UPD_HEAD_BIAS = UPD_HEAD_BIAS_, UPD_TT_BIAS = UPD_TT_BIAS_;
    static_assert(CLASSES >= 2 && CLASSES <= 1024, "2..1024 classes");
    static_assert(TT_BIAS_SHIFT >= 0 && HEAD_BIAS_SHIFT >= 0, "biases are aligned by left shifts");
    static_assert(LUT_SIZE >= 2, "the exp table has at least two entries");
};

/// \brief hidden = clip(RNE(tt_out + (b1 << TT_BIAS_SHIFT)), 0, 2^ACT_BITS - 1): bias, ReLU, requant.
/// \tparam H the TrainHead; \tparam T the TT output's storage (as wide as its exact sums)
template <class H, class T>
void tt_hidden(const T* tt_out, const typename H::net::bias_t* b1, typename H::net::hidden_t* hidden) {
    typedef typename H::net::acc_t acc_t;
tt_hidden_elems:
    for (unsigned h = 0; h < H::HIDDEN; h++) {
#pragma HLS PIPELINE II = 1
        const acc_t acc = acc_t(tt_out[h]) + (acc_t(b1[h]) << H::TT_BIAS_SHIFT);
        hidden[h] = typename H::net::hidden_t(saturate<0, H::net::HIDDEN_HI>(shift_rne<H::HIDDEN_SHIFT>(acc)));
    }
}

/// \brief logits[c] = sum_h hidden[h] W2[h][c] + (b2[c] << HEAD_BIAS_SHIFT), exact.
template <class H>
void head_forward(const typename H::net::hidden_t* hidden, const typename H::net::head_t* w2,
                  const typename H::net::bias_t* b2, typename H::net::acc_t* logits) {
    typedef typename H::net::acc_t acc_t;
head_fwd_classes:
    for (unsigned c = 0; c < H::CLASSES; c++) {
        acc_t acc = acc_t(b2[c]) << H::HEAD_BIAS_SHIFT;
    head_fwd_reduce:
        for (unsigned h = 0; h < H::HIDDEN; h++) {
#pragma HLS UNROLL factor = H::LANES
#pragma HLS PIPELINE II = 1
            acc += acc_t(hidden[h]) * acc_t(w2[h * H::CLASSES + c]);
        }
        logits[c] = acc;
    }
}

/// \brief The first class of the largest logit.
template <class H>
unsigned argmax(const typename H::net::acc_t* logits) {
    unsigned best = 0;
head_argmax:
    for (unsigned c = 1; c < H::CLASSES; c++) {
#pragma HLS PIPELINE II = 1
        if (logits[c] > logits[best]) best = c;
    }
    return best;
}

/// \brief Integer softmax and the cross-entropy error: e_c = LUT[min((max - z_c) >> LUT_SHIFT,
/// LUT_SIZE - 1)], p_c = floor(e_c 2^PROB_FRAC / sum e), delta_c = p_c - [c == label] 2^PROB_FRAC.
/// Returns p_label.
template <class H>
unsigned softmax_error(const typename H::net::acc_t* logits, const unsigned* lut, unsigned label,
                       typename H::net::delta_t* delta) {
    typedef typename H::net::acc_t acc_t;
    const acc_t top = logits[argmax<H>(logits)];
    unsigned long long e[H::CLASSES];
    unsigned long long sum = 0;
softmax_exp:
    for (unsigned c = 0; c < H::CLASSES; c++) {
#pragma HLS PIPELINE II = 1
        const acc_t gap = top - logits[c];
        const acc_t index = H::LUT_SHIFT >= 0 ? acc_t(gap >> (H::LUT_SHIFT >= 0 ? H::LUT_SHIFT : 0))
                                              : acc_t(gap << (H::LUT_SHIFT < 0 ? -H::LUT_SHIFT : 0));
        e[c] = lut[index < acc_t(H::LUT_SIZE - 1) ? (unsigned)(long long)index : H::LUT_SIZE - 1];
        sum += e[c];
    }
    unsigned p_label = 0;
softmax_divide:
    for (unsigned c = 0; c < H::CLASSES; c++) {
#pragma HLS PIPELINE II = 1
        const unsigned p = (unsigned)((e[c] << H::net::PROB_FRAC_BITS) / sum);
        if (c == label) p_label = p;
        delta[c] = typename H::net::delta_t((long long)p - (c == label ? (long long)H::net::PROB_ONE : 0));
    }
    return p_label;
}

/// \brief E_d[h] = RNE((hidden[h] > 0) sum_c W2[h][c] delta_c), saturated: the error at the TT output.
template <class H>
void head_error(const typename H::net::head_t* w2, const typename H::net::delta_t* delta,
                const typename H::net::hidden_t* hidden, typename H::net::err_t* err) {
    typedef typename H::net::acc_t acc_t;
head_err_rows:
    for (unsigned h = 0; h < H::HIDDEN; h++) {
#pragma HLS PIPELINE II = 1
        acc_t acc = 0;
    head_err_reduce:
        for (unsigned c = 0; c < H::CLASSES; c++) acc += acc_t(w2[h * H::CLASSES + c]) * acc_t(delta[c]);
        if (hidden[h] == 0) acc = 0;
        err[h] = typename H::net::err_t(saturate<-H::net::ERR_HI - 1, H::net::ERR_HI>(shift_rne<H::ERROR_SHIFT>(acc)));
    }
}

/// \brief The gradient of W2[h][c] (row-major i = h * CLASSES + c): hidden[h] delta[c].
template <class H>
struct HeadGradient {
    const typename H::net::hidden_t* hidden;
    const typename H::net::delta_t* delta;
    typename H::net::acc_t operator()(unsigned i) const {
#pragma HLS INLINE
        return typename H::net::acc_t(hidden[i / H::CLASSES]) * typename H::net::acc_t(delta[i % H::CLASSES]);
    }
};

/// \brief The gradient of a bias: the error vector itself.
template <class ACC, class T>
struct VectorGradient {
    const T* values;
    ACC operator()(unsigned i) const {
#pragma HLS INLINE
        return ACC(values[i]);
    }
};

/// \brief theta[i] -= SR(eta grad(i), SHIFT), saturated to [LO, HI]: one LFSR draw per element.
template <int SHIFT, long long LO, long long HI, class ACC, class T, class GRAD>
void sgd_update(T* theta, unsigned count, GRAD grad, unsigned eta, Lfsr32& lfsr) {
sgd_elems:
    for (unsigned i = 0; i < count; i++) {
#pragma HLS PIPELINE II = 1
        const ACC step = shift_stochastic<SHIFT>(ACC(grad(i) * ACC(eta)), lfsr.draw());
        theta[i] = T(saturate<LO, HI>(ACC(ACC(theta[i]) - step)));
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_TT_TRAIN_H

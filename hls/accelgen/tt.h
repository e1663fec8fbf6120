// accelgen HLS kernel library: one contraction step of a tensor-train (TT) matrix-vector
// product. A TTDense layer of d cores is d of these units in a row, each holding its
// core on chip, connected by streams that carry the intermediate state.
//
// A step sees its input state as a buffer of IN_ELEMS codes and its core as a RED x COLS
// matrix G (packed at its bit width in a WeightMemory, column c = nf * PE + pe, reduction
// index p = sf * SIMD + lane). For every row r (the state axes the core does not touch)
// and column c (the core axes that are new to the state):
//
//     out[r][c] = requant(sum_p (state[in_base(r) + red_offset(p)] - zp) * G[p][c])
//
// in_base(r) is a mixed-radix address over ROW_DIGITS row axes (sizes row_size(q),
// strides row_stride(q) into the buffer, q = 0 most significant); red_offset(p) splits p
// into (p / RED_INNER, p % RED_INNER) with strides RED_OUTER_STRIDE, RED_INNER_STRIDE.
// Outputs leave in (row, column) order, PE lanes per word: the memory order of the next
// step's buffer. A REORDER step (the last one, when that order is not the layer's output
// order) stores the accumulators at out_base(r) + c * COL_OUT_STRIDE in a reorder buffer
// and requantizes them on the way out, channel f * PE + pe at [pe][f].
#ifndef ACCELGEN_TT_H
#define ACCELGEN_TT_H

#include "mac.h"
#include "mvau.h"
#include "requant.h"
#include "types.h"

namespace accelgen {

/// \brief The mixed-radix position of a step's row: its digits and its base addresses in
/// the input state and (for a reordering step) in the output, advanced one row at a time
/// with additions only.
/// \tparam CFG the step configuration (ROW_DIGITS, row_size, row_stride, row_out_stride)
template <class CFG>
struct RowCursor {
    unsigned digit[CFG::ROW_DIGITS];
    unsigned in_base;
    unsigned out_base;

    void reset() {
#pragma HLS INLINE
    row_cursor_reset:
        for (unsigned q = 0; q < CFG::ROW_DIGITS; q++) {
#pragma HLS UNROLL
            digit[q] = 0;
        }
        in_base = 0;
        out_base = 0;
    }
    /// The next row: the least significant digit counts up; a digit that wraps carries.
    void next() {
#pragma HLS INLINE
        bool carry = true;
    row_cursor_digits:
        for (unsigned k = 0; k < CFG::ROW_DIGITS; k++) {
#pragma HLS UNROLL
            const unsigned q = CFG::ROW_DIGITS - 1 - k;
            if (carry) {
                if (digit[q] + 1 == CFG::row_size(q)) {
                    digit[q] = 0;
                    in_base -= (CFG::row_size(q) - 1) * CFG::row_stride(q);
                    out_base -= (CFG::row_size(q) - 1) * CFG::row_out_stride(q);
                } else {
                    digit[q]++;
                    in_base += CFG::row_stride(q);
                    out_base += CFG::row_out_stride(q);
                    carry = false;
                }
            }
        }
    }
};

/// \brief A step's input state: IN_ELEMS codes in SIMD banks, address a in bank
/// (a / GRAIN) % SIMD with GRAIN = RED_INNER_STRIDE. The SIMD lanes of one cycle are
/// consecutive values of the inner reduction digit, addresses GRAIN apart, so when SIMD
/// divides RED_INNER they fall in distinct banks and one cycle reads them all.
/// \tparam CFG the step configuration
template <class CFG>
struct StateBuffer {
    static const unsigned GRAIN = CFG::RED_INNER_STRIDE ? CFG::RED_INNER_STRIDE : 1;
    static const unsigned SPAN = GRAIN * CFG::SIMD;  // addresses per bank round
    static const unsigned DEPTH = (CFG::IN_ELEMS + SPAN - 1) / SPAN * GRAIN;
    typename CFG::in_code::raw_t bank[CFG::SIMD][DEPTH];

    static unsigned bank_of(unsigned a) { return (a / GRAIN) % CFG::SIMD; }
    static unsigned offset_of(unsigned a) { return (a / SPAN) * GRAIN + a % GRAIN; }
    void write(unsigned a, const typename CFG::in_code::raw_t& v) {
#pragma HLS INLINE
        bank[bank_of(a)][offset_of(a)] = v;
    }
    typename CFG::in_code::raw_t read(unsigned a) const {
#pragma HLS INLINE
        return bank[bank_of(a)][offset_of(a)];
    }
};

/// \brief The end of one (row, column fold): PE sums to the output stream (requantized),
/// or into the reorder buffer of a REORDER step.
template <class CFG>
inline void tt_emit(const typename CFG::acc_t (&acc)[CFG::PE], unsigned r, unsigned nf, const RowCursor<CFG>& row,
                    typename CFG::acc_t* reorder, hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out,
                    const typename CFG::requant_t& requant) {
#pragma HLS INLINE
    const unsigned NF = CFG::COLS / CFG::PE;
    if (CFG::REORDER) {
    tt_collect:
        for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
            reorder[CFG::REORDER ? row.out_base + (nf * CFG::PE + pe) * CFG::COL_OUT_STRIDE : 0] = acc[pe];
        }
    } else {
        WordBuilder<typename CFG::out_code, CFG::PE> y;
    tt_requant:
        for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
            y.set(pe, requant.apply(acc[pe], pe, CFG::LAST ? r * NF + nf : 0));
        }
        out.write(y.word());
    }
}

#ifdef ACCELGEN_CSIM_FAST
/// \brief C simulation only: the compute phase of tt_step with native integers (decoded
/// weights, centred state values, exact 64-bit sums); the same outputs in the same order
/// as the ap_types arithmetic, which never overflows its proved accumulator (see mvau.h).
template <class CFG>
void tt_compute_native(const StateBuffer<CFG>& state, const typename CFG::weights_t& weights,
                       typename CFG::acc_t* reorder,
                       hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out,
                       const typename CFG::requant_t& requant) {
    typedef DecodedWeights<CFG, typename CFG::weights_t> decoded_t;
    const decoded_t& cached = decoded_t::of(weights);
    const decoded_t own(weights, cached.source != &weights);
    const std::vector<int>& w = cached.source == &weights ? cached.values : own.values;
    const unsigned SF = CFG::RED / CFG::SIMD, NF = CFG::COLS / CFG::PE;
    std::vector<long long> x(CFG::IN_ELEMS);
    for (unsigned i = 0; i < CFG::IN_ELEMS; i++)
        x[i] = (long long)CFG::in_code::decode(state.read(i)).to_int64() - (CFG::in_code::bipolar ? 0 : CFG::IN_ZERO_POINT);
    std::vector<unsigned> offset(CFG::RED);
    for (unsigned p = 0; p < CFG::RED; p++)
        offset[p] = (p / CFG::RED_INNER) * CFG::RED_OUTER_STRIDE + (p % CFG::RED_INNER) * CFG::RED_INNER_STRIDE;
    std::vector<long long> lanes(CFG::RED);
    RowCursor<CFG> row;
    row.reset();
    typename CFG::acc_t acc[CFG::PE];
    for (unsigned r = 0; r < CFG::ROWS; r++) {
        for (unsigned p = 0; p < CFG::RED; p++) lanes[p] = x[row.in_base + offset[p]];
        for (unsigned nf = 0; nf < NF; nf++) {
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
                const int* wp = &w[(size_t(pe) * CFG::TILES + nf * SF) * CFG::SIMD];  // tiles nf*SF.. are consecutive
                long long sum = 0;
                for (unsigned p = 0; p < CFG::RED; p++) sum += lanes[p] * wp[p];
                acc[pe] = typename CFG::acc_t(sum);
            }
            tt_emit<CFG>(acc, r, nf, row, reorder, out, requant);
        }
        row.next();
    }
}
#endif

/// \brief One TT contraction step: buffer the input state, contract it with the core,
/// requantize, stream the result.
///
/// Per sample: IN_ELEMS / IN_LANES cycles read the state; ROWS * NF * SF cycles compute
/// (NF = COLS / PE column folds, SF = RED / SIMD reduction folds), each one SIMD-lane
/// gather from the state and PE x SIMD products; a REORDER step then drains ROWS * COLS /
/// PE words from its reorder buffer. The accumulator type is proved by the generator from
/// the value ranges of the state and of the core, so no sum overflows.
///
/// \tparam CFG configuration: IN_ELEMS, IN_LANES, ROWS, COLS, RED, SIMD, PE, TILES,
///   ROW_DIGITS, row_size(q), row_stride(q), row_out_stride(q), RED_INNER,
///   RED_OUTER_STRIDE, RED_INNER_STRIDE, COL_OUT_STRIDE, LAST, REORDER, in_code,
///   IN_ZERO_POINT, centred_t, weight_code, mac (dot-product policy), acc_t, out_code,
///   weights_t (WeightMemory), requant_t (Thresholds, MultiplyShift or PassThrough).
///
/// Pragmas: PIPELINE II=1 on the read, compute and drain loops; the accumulators and the
/// state buffer's SIMD banks are completely partitioned (conflict-free gathers when SIMD
/// divides RED_INNER, see StateBuffer; otherwise, and for reads of IN_LANES > 1 lanes that
/// share a bank, synthesis may schedule the loop at II > 1); weights and requantizer
/// parameters are partitioned along PE by the generator.
template <class CFG>
void tt_step(hls::stream<typename Word<typename CFG::in_code, CFG::IN_LANES>::type>& in,
             hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out,
             const typename CFG::weights_t& weights, const typename CFG::requant_t& requant, const unsigned reps) {
    static_assert(CFG::SIMD >= 1 && CFG::PE >= 1 && CFG::IN_LANES >= 1, "SIMD, PE and lanes are at least 1");
    static_assert(CFG::RED % CFG::SIMD == 0, "SIMD must divide the reduction length");
    static_assert(CFG::COLS % CFG::PE == 0, "PE must divide the columns");
    static_assert(CFG::IN_ELEMS % CFG::IN_LANES == 0, "the input lanes must divide the state");
    static_assert(CFG::RED % CFG::RED_INNER == 0, "the inner reduction digit must divide the reduction");
    static_assert(CFG::TILES == (CFG::COLS / CFG::PE) * (CFG::RED / CFG::SIMD), "one weight word per fold");
    static_assert(CFG::ROW_DIGITS >= 1, "at least one (possibly trivial) row digit");
    static_assert(!CFG::REORDER || CFG::LAST, "only the last step reorders");
    typedef typename CFG::in_code in_code;
    typedef typename Word<in_code, CFG::IN_LANES>::type in_word_t;
    const unsigned OUT_ELEMS = CFG::ROWS * CFG::COLS;

    StateBuffer<CFG> state;
#pragma HLS ARRAY_PARTITION variable = state.bank type = complete dim = 1
    typename CFG::acc_t reorder[CFG::REORDER ? OUT_ELEMS : 1];
#ifndef ACCELGEN_CSIM_FAST
    typename CFG::acc_t acc[CFG::PE];
#pragma HLS ARRAY_PARTITION variable = acc complete
    RowCursor<CFG> row;
#endif

tt_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
    tt_read:
        for (unsigned w = 0; w < CFG::IN_ELEMS / CFG::IN_LANES; w++) {
#pragma HLS PIPELINE II = 1
            const in_word_t x = in.read();
        tt_read_lanes:
            for (unsigned l = 0; l < CFG::IN_LANES; l++) {
#pragma HLS UNROLL
                state.write(w * CFG::IN_LANES + l, lane<in_code, CFG::IN_LANES>(x, l));
            }
        }
#ifdef ACCELGEN_CSIM_FAST
        tt_compute_native<CFG>(state, weights, reorder, out, requant);
#else
        typedef typename Word<in_code, CFG::SIMD>::type lane_word_t;
        const unsigned SF = CFG::RED / CFG::SIMD;
        const unsigned NF = CFG::COLS / CFG::PE;
        row.reset();
        unsigned sf = 0, nf = 0, r = 0;
    // Flattened (row, nf, sf) nest: iteration i = (r * NF + nf) * SF + sf; `row` holds
    // the addresses of row r.
    tt_folds:
        for (unsigned i = 0; i < CFG::ROWS * NF * SF; i++) {
#pragma HLS PIPELINE II = 1
            lane_word_t x = 0;
        tt_gather:
            for (unsigned s = 0; s < CFG::SIMD; s++) {
#pragma HLS UNROLL
                const unsigned p = sf * CFG::SIMD + s;
                const unsigned at = row.in_base + (p / CFG::RED_INNER) * CFG::RED_OUTER_STRIDE +
                                    (p % CFG::RED_INNER) * CFG::RED_INNER_STRIDE;
                set_lane<in_code, CFG::SIMD>(x, s, state.read(at));
            }
        tt_pe:
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                const typename CFG::acc_t partial = CFG::mac::template dot<CFG>(x, weights.word(pe, nf * SF + sf));
                acc[pe] = (sf == 0) ? partial : typename CFG::acc_t(acc[pe] + partial);
            }
            if (sf == SF - 1) tt_emit<CFG>(acc, r, nf, row, reorder, out, requant);
            if (++sf == SF) {
                sf = 0;
                if (++nf == NF) {
                    nf = 0;
                    r++;
                    row.next();
                }
            }
        }
#endif
        if (CFG::REORDER) {
        tt_drain:
            for (unsigned f = 0; f < OUT_ELEMS / CFG::PE; f++) {
#pragma HLS PIPELINE II = 1
                WordBuilder<typename CFG::out_code, CFG::PE> y;
            tt_drain_lanes:
                for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                    y.set(pe, requant.apply(reorder[CFG::REORDER ? f * CFG::PE + pe : 0], pe, f));
                }
                out.write(y.word());
            }
        }
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_TT_H

// accelgen HLS kernel library: element-wise kernels (residual add, requantize).
#ifndef ACCELGEN_ELTWISE_H
#define ACCELGEN_ELTWISE_H

#include "requant.h"
#include "types.h"

namespace accelgen {

/// \brief Residual add: acc = MA * (a - za) + MB * (b - zb), then requantize.
///
/// The integer input weights MA and MB order every input pair as the real sum does
/// (chosen and verified by the compiler), so the requantizer reproduces the float add.
/// Both inputs stream the same feature map, PE channels per word.
/// \tparam CFG configuration: PE, CHANNELS, PIXELS, a_code, A_ZERO_POINT, a_centred_t,
///   b_code, B_ZERO_POINT, b_centred_t, MA, MB, acc_t, out_code, requant_t.
/// Pragmas: PIPELINE II=1 over the words of a sample.
template <class CFG>
void add(hls::stream<typename Word<typename CFG::a_code, CFG::PE>::type>& in_a,
         hls::stream<typename Word<typename CFG::b_code, CFG::PE>::type>& in_b,
         hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out,
         const typename CFG::requant_t& requant, const unsigned reps) {
    static_assert(CFG::CHANNELS % CFG::PE == 0, "PE must divide the channels");
    const unsigned NF = CFG::CHANNELS / CFG::PE;

add_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        unsigned nf = 0;
    add_words:
        for (unsigned i = 0; i < CFG::PIXELS * NF; i++) {
#pragma HLS PIPELINE II = 1
            const typename Word<typename CFG::a_code, CFG::PE>::type a = in_a.read();
            const typename Word<typename CFG::b_code, CFG::PE>::type b = in_b.read();
            WordBuilder<typename CFG::out_code, CFG::PE> y;
        add_pe:
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                const typename CFG::a_centred_t va = centre<typename CFG::a_code, CFG::A_ZERO_POINT,
                                                            typename CFG::a_centred_t>(
                    lane<typename CFG::a_code, CFG::PE>(a, pe));
                const typename CFG::b_centred_t vb = centre<typename CFG::b_code, CFG::B_ZERO_POINT,
                                                            typename CFG::b_centred_t>(
                    lane<typename CFG::b_code, CFG::PE>(b, pe));
                const typename CFG::acc_t acc =
                    typename CFG::acc_t(va) * typename CFG::acc_t(CFG::MA) +
                    typename CFG::acc_t(vb) * typename CFG::acc_t(CFG::MB);
                y.set(pe, requant.apply(acc, pe, nf));
            }
            out.write(y.word());
            if (++nf == NF) nf = 0;
        }
    }
}

/// \brief Element-wise requantization of codes: acc = code - zero point, then requantize.
/// \tparam CFG configuration: PE, CHANNELS, PIXELS, in_code, IN_ZERO_POINT, centred_t,
///   acc_t, out_code, requant_t.
/// Pragmas: PIPELINE II=1 over the words of a sample.
template <class CFG>
void requantize(hls::stream<typename Word<typename CFG::in_code, CFG::PE>::type>& in,
                hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out,
                const typename CFG::requant_t& requant, const unsigned reps) {
    static_assert(CFG::CHANNELS % CFG::PE == 0, "PE must divide the channels");
    const unsigned NF = CFG::CHANNELS / CFG::PE;

requantize_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        unsigned nf = 0;
    requantize_words:
        for (unsigned i = 0; i < CFG::PIXELS * NF; i++) {
#pragma HLS PIPELINE II = 1
            const typename Word<typename CFG::in_code, CFG::PE>::type x = in.read();
            WordBuilder<typename CFG::out_code, CFG::PE> y;
        requantize_pe:
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                const typename CFG::acc_t acc = centre<typename CFG::in_code, CFG::IN_ZERO_POINT,
                                                       typename CFG::centred_t>(
                    lane<typename CFG::in_code, CFG::PE>(x, pe));
                y.set(pe, requant.apply(acc, pe, nf));
            }
            out.write(y.word());
            if (++nf == NF) nf = 0;
        }
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_ELTWISE_H

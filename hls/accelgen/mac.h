// accelgen HLS kernel library: SIMD dot products, one policy type per arithmetic.
//
// A matrix-vector unit asks its configuration's `mac` policy for the dot product of
// one input word (SIMD lanes of input codes) with one weight word (SIMD lanes of
// weights). The code generator picks the policy from the operand types:
//
//   XnorPopcount   bipolar inputs and bipolar weights: 2*popcount(XNOR) - SIMD
//   SignSelect     bipolar weights (+1/-1): add or subtract the input, no multiplier
//   InputSign      bipolar inputs: add or subtract the weight, no multiplier
//   LutMultiply    both operands <= 4 bits: products mapped to LUTs (BIND_OP fabric)
//   DspMultiply    wider operands: products mapped to DSP slices (BIND_OP dsp)
//
// Every policy has the same interface:
//   template <class CFG> static typename CFG::acc_t dot(x_word, w_word)
// CFG supplies SIMD, in_code, IN_ZERO_POINT, centred_t, weight_code and acc_t. The
// accumulator type is wide enough for every partial sum (proved by the generator from
// the value ranges), so the sums here never overflow.
//
// These policies are what synthesis compiles. C simulation (unless ACCELGEN_CSIM_AP_MODEL
// is defined) computes the same dot products with native integers instead (dot_native in
// mvau.h), which is bit-identical for every input; the kernel tests run both.
#ifndef ACCELGEN_MAC_H
#define ACCELGEN_MAC_H

#include "types.h"

namespace accelgen {

/// Number of set bits of a SIMD-bit word (an adder tree after HLS unrolling).
template <unsigned SIMD>
inline ap_uint<16> popcount(const ap_uint<SIMD>& bits) {
#pragma HLS INLINE
    static_assert(SIMD < 65536, "popcount result is 16 bits wide");
    ap_uint<16> count = 0;
popcount_bits:
    for (unsigned i = 0; i < SIMD; i++) {
#pragma HLS UNROLL
        count += bits[i];
    }
    return count;
}

/// \brief Bipolar x bipolar: the dot product of two +1/-1 vectors is
/// matches - mismatches = 2 * popcount(XNOR(x, w)) - SIMD.
struct XnorPopcount {
    template <class CFG>
    static typename CFG::acc_t dot(const typename Word<typename CFG::in_code, CFG::SIMD>::type& x,
                                   const typename Word<typename CFG::weight_code, CFG::SIMD>::type& w) {
#pragma HLS INLINE
        static_assert(CFG::in_code::bipolar && CFG::weight_code::bipolar, "XNOR needs bipolar operands");
        const ap_uint<CFG::SIMD> same = ~(x ^ w);
        return typename CFG::acc_t(2 * ap_int<18>(popcount<CFG::SIMD>(same)) - ap_int<18>(CFG::SIMD));
    }
};

/// \brief Bipolar weights with any input: each lane adds or subtracts the centred input.
struct SignSelect {
    template <class CFG>
    static typename CFG::acc_t dot(const typename Word<typename CFG::in_code, CFG::SIMD>::type& x,
                                   const typename Word<typename CFG::weight_code, CFG::SIMD>::type& w) {
#pragma HLS INLINE
        static_assert(CFG::weight_code::bipolar, "SignSelect needs bipolar weights");
        typename CFG::acc_t sum = 0;
    sign_select_lanes:
        for (unsigned i = 0; i < CFG::SIMD; i++) {
#pragma HLS UNROLL
            const typename CFG::centred_t v =
                centre<typename CFG::in_code, CFG::IN_ZERO_POINT, typename CFG::centred_t>(
                    lane<typename CFG::in_code, CFG::SIMD>(x, i));
            if (w[i])
                sum += v;
            else
                sum -= v;
        }
        return sum;
    }
};

/// \brief Bipolar inputs with any weights: each lane adds or subtracts the weight.
struct InputSign {
    template <class CFG>
    static typename CFG::acc_t dot(const typename Word<typename CFG::in_code, CFG::SIMD>::type& x,
                                   const typename Word<typename CFG::weight_code, CFG::SIMD>::type& w) {
#pragma HLS INLINE
        static_assert(CFG::in_code::bipolar, "InputSign needs bipolar inputs");
        typename CFG::acc_t sum = 0;
    input_sign_lanes:
        for (unsigned i = 0; i < CFG::SIMD; i++) {
#pragma HLS UNROLL
            const typename CFG::weight_code::value_t wv =
                CFG::weight_code::decode(lane<typename CFG::weight_code, CFG::SIMD>(w, i));
            if (x[i])
                sum += wv;
            else
                sum -= wv;
        }
        return sum;
    }
};

/// \brief Products of narrow operands (both <= 4 bits) mapped to LUT fabric.
struct LutMultiply {
    template <class CFG>
    static typename CFG::acc_t dot(const typename Word<typename CFG::in_code, CFG::SIMD>::type& x,
                                   const typename Word<typename CFG::weight_code, CFG::SIMD>::type& w) {
#pragma HLS INLINE
        typedef typename CFG::centred_t xt;
        typedef typename CFG::weight_code::value_t wt;
        static_assert(xt::width <= 4 && wt::width <= 4, "LUT products are for operands of <= 4 bits");
        typename CFG::acc_t sum = 0;
    lut_multiply_lanes:
        for (unsigned i = 0; i < CFG::SIMD; i++) {
#pragma HLS UNROLL
            const xt a = centre<typename CFG::in_code, CFG::IN_ZERO_POINT, xt>(
                lane<typename CFG::in_code, CFG::SIMD>(x, i));
            const wt b = CFG::weight_code::decode(lane<typename CFG::weight_code, CFG::SIMD>(w, i));
            const ap_int<xt::width + wt::width + 1> product = a * b;
#pragma HLS BIND_OP variable = product op = mul impl = fabric
            sum += product;
        }
        return sum;
    }
};

/// \brief Products of wider operands mapped to DSP slices.
struct DspMultiply {
    template <class CFG>
    static typename CFG::acc_t dot(const typename Word<typename CFG::in_code, CFG::SIMD>::type& x,
                                   const typename Word<typename CFG::weight_code, CFG::SIMD>::type& w) {
#pragma HLS INLINE
        typedef typename CFG::centred_t xt;
        typedef typename CFG::weight_code::value_t wt;
        typename CFG::acc_t sum = 0;
    dsp_multiply_lanes:
        for (unsigned i = 0; i < CFG::SIMD; i++) {
#pragma HLS UNROLL
            const xt a = centre<typename CFG::in_code, CFG::IN_ZERO_POINT, xt>(
                lane<typename CFG::in_code, CFG::SIMD>(x, i));
            const wt b = CFG::weight_code::decode(lane<typename CFG::weight_code, CFG::SIMD>(w, i));
            const ap_int<xt::width + wt::width + 1> product = a * b;
#pragma HLS BIND_OP variable = product op = mul impl = dsp
            sum += product;
        }
        return sum;
    }
};

}  // namespace accelgen

#endif  // ACCELGEN_MAC_H

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
//   DspPacked      as DspMultiply, two processing elements' products of the same input
//                  lane in one DSP48E2 multiply (packed_pair below); the matrix unit calls
//                  pair() for PE pairs and dot() for an odd last PE
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

/// \brief Width of the signed type holding every value of T (ap_int<W>: W; ap_uint<W>: W + 1).
template <class T>
struct SignedWidth;
template <int W>
struct SignedWidth<ap_int<W> > {
    static const int value = W;
};
template <int W>
struct SignedWidth<ap_uint<W> > {
    static const int value = W + 1;
};

/// \brief Two products of one operand from one multiply: p0 = a * w0 and p1 = a * w1.
///
/// The multiplier computes a * (w1 * 2^K + w0) = p1 * 2^K + p0 with K = AW + WW (every
/// product of an AW-bit and a WW-bit signed number fits K signed bits). The low K bits,
/// read as a signed number, are p0 exactly (p1 * 2^K adds nothing to them); the bits
/// above, shifted arithmetically, are p1 - 1 when p0 is negative (the shift floors p0 /
/// 2^K to -1), so adding p0's sign bit back gives p1 exactly. The packed operand is
/// K + WW + 1 bits (w1 * 2^K + w0 with both ends of both ranges), the other AW: one
/// DSP48E2 when K + WW + 1 <= 27 and AW <= 18 (UG579's 27 x 18 multiplier; the generator
/// packs only then).
template <int AW, int WW>
inline void packed_pair(const ap_int<AW>& a, const ap_int<WW>& w0, const ap_int<WW>& w1, ap_int<AW + WW>& p0,
                        ap_int<AW + WW>& p1) {
#pragma HLS INLINE
    const int K = AW + WW;
    const ap_int<K + WW + 1> packed = (ap_int<K + WW + 1>(w1) << K) + ap_int<K + WW + 1>(w0);
    const ap_int<K + WW + 1 + AW> p = packed * a;
#pragma HLS BIND_OP variable = p op = mul impl = dsp
    p0 = ap_int<K>(p);  // the low K bits, signed
    p1 = ap_int<K>(p >> K) + ap_int<K>(p0[K - 1]);  // the correction: p0's sign bit
}

/// \brief DSP products, two processing elements per DSP48E2 (packed_pair): pair() gives
/// the dot products of one input word with two weight words; dot() (an odd last PE) is
/// DspMultiply's.
struct DspPacked {
    template <class CFG>
    static typename CFG::acc_t dot(const typename Word<typename CFG::in_code, CFG::SIMD>::type& x,
                                   const typename Word<typename CFG::weight_code, CFG::SIMD>::type& w) {
#pragma HLS INLINE
        return DspMultiply::template dot<CFG>(x, w);
    }
    template <class CFG>
    static void pair(const typename Word<typename CFG::in_code, CFG::SIMD>::type& x,
                     const typename Word<typename CFG::weight_code, CFG::SIMD>::type& w0,
                     const typename Word<typename CFG::weight_code, CFG::SIMD>::type& w1, typename CFG::acc_t& sum0,
                     typename CFG::acc_t& sum1) {
#pragma HLS INLINE
        typedef typename CFG::centred_t xt;
        typedef typename CFG::weight_code::value_t wt;
        const int AW = SignedWidth<xt>::value, WW = SignedWidth<wt>::value;  // unsigned operands: one bit more
        sum0 = 0;
        sum1 = 0;
    dsp_packed_lanes:
        for (unsigned i = 0; i < CFG::SIMD; i++) {
#pragma HLS UNROLL
            const ap_int<AW> a = centre<typename CFG::in_code, CFG::IN_ZERO_POINT, xt>(
                lane<typename CFG::in_code, CFG::SIMD>(x, i));
            const ap_int<WW> b0 = CFG::weight_code::decode(lane<typename CFG::weight_code, CFG::SIMD>(w0, i));
            const ap_int<WW> b1 = CFG::weight_code::decode(lane<typename CFG::weight_code, CFG::SIMD>(w1, i));
            ap_int<AW + WW> p0, p1;
            packed_pair<AW, WW>(a, b0, b1, p0, p1);
            sum0 += p0;
            sum1 += p1;
        }
    }
};

/// \brief Whether a dot-product policy computes PE pairs together (value) and the call the
/// matrix unit makes for a pair (pair(); never called for the other policies).
template <class MAC>
struct Pairs {
    static const bool value = false;
    template <class CFG>
    static void pair(const typename Word<typename CFG::in_code, CFG::SIMD>::type&,
                     const typename Word<typename CFG::weight_code, CFG::SIMD>::type&,
                     const typename Word<typename CFG::weight_code, CFG::SIMD>::type&, typename CFG::acc_t&,
                     typename CFG::acc_t&) {}
};
template <>
struct Pairs<DspPacked> : DspPacked {  // its pair() is DspPacked's
    static const bool value = true;
};

}  // namespace accelgen

#endif  // ACCELGEN_MAC_H

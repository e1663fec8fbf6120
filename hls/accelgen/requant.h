// accelgen HLS kernel library: requantizers, the policies that turn an accumulator into
// the next layer's code. They reproduce accelgen's integer requantizers exactly:
//
//   Thresholds     out = base + STEP * count(direction * acc >= T[c][l], l < LEVELS)
//   MultiplyShift  out = clip((direction * acc * M[c] + B[c]) >> SHIFT, lo[c], hi[c]), the
//                  product in DSP slices or in the fabric (DspProduct, FabricProduct)
//   PassThrough    out = acc (the host dequantizes the raw accumulator)
//
// Parameters are stored per processing element: channel c = nf * PE + pe lives at
// [pe][nf]. NF_STORE is NF for per-channel parameters and 1 when every channel shares
// one set (then nf is ignored). The generator partitions the [pe] dimension so that
// all PE lanes requantize in the same cycle. Requantizers shared in time by a unit's lanes
// (mvau.h SharedRequant) are instantiated with PE = R units and NF_STORE = NF * steps:
// unit r's parameters for step s of fold nf at [r][nf * steps + s].
#ifndef ACCELGEN_REQUANT_H
#define ACCELGEN_REQUANT_H

#include "types.h"

namespace accelgen {

/// \brief Comparator-based requantization, exact for any monotone float function.
/// \tparam PE        channels requantized in parallel
/// \tparam NF_STORE  channel folds stored (NF, or 1 when shared)
/// \tparam LEVELS    thresholds per channel (output levels - 1)
/// \tparam ACC_T     accumulator type
/// \tparam TH_T      signed type holding thresholds and direction * acc
/// \tparam OUT_CODE  output encoding
/// \tparam STEP      output increment per passed threshold (2 for bipolar outputs)
template <unsigned PE, unsigned NF_STORE, unsigned LEVELS, class ACC_T, class TH_T, class OUT_CODE, int STEP>
struct Thresholds {
    static_assert(PE >= 1 && NF_STORE >= 1 && LEVELS >= 1, "empty threshold table");
    typedef ap_int<OUT_CODE::bits + 2> level_t;

    typename Stored<TH_T>::type threshold[PE][NF_STORE][LEVELS];  // non-decreasing along LEVELS
    typename Stored<level_t>::type base[PE][NF_STORE];
    typename Stored<ap_uint<1> >::type negate[PE][NF_STORE];  // 1 where direction == -1

    typename OUT_CODE::raw_t apply(const ACC_T& acc, unsigned pe, unsigned nf) const {
#pragma HLS INLINE
        const unsigned n = NF_STORE == 1 ? 0 : nf;
#if defined(ACCELGEN_CSIM_FAST)
        if (TH_T::width <= 64) {  // C simulation: native comparisons, same values (see mac.h)
            const unsigned long long a = (unsigned long long)acc.to_int64();
            const long long v = wrap_signed<(TH_T::width <= 64 ? TH_T::width : 64)>(negate[pe][n] ? 0ULL - a : a);
            long long passed = 0;
            for (unsigned l = 0; l < LEVELS; l++) passed += v >= (long long)threshold[pe][n][l];
            return OUT_CODE::encode(level_t((long long)base[pe][n] + STEP * passed));
        }
#endif
        const TH_T v = negate[pe][n] ? TH_T(-acc) : TH_T(acc);
        ap_uint<16> count = 0;
    thresholds_compare:
        for (unsigned l = 0; l < LEVELS; l++) {
#pragma HLS UNROLL
            count += (v >= TH_T(threshold[pe][n][l])) ? 1 : 0;
        }
        const level_t out = level_t(base[pe][n]) + level_t(STEP) * level_t(count);
        return OUT_CODE::encode(out);
    }
};

/// \brief Where MultiplyShift's product is built: DSP48E2 slices (the accelerator's default).
struct DspProduct {
    template <class PROD_T, class MUL_T>
    static PROD_T mul(const PROD_T& a, const MUL_T& m) {
#pragma HLS INLINE
        const PROD_T product = a * m;
#pragma HLS BIND_OP variable = product op = mul impl = dsp
        return product;
    }
};

/// \brief Where MultiplyShift's product is built: LUTs and the carry chain, pipelined in
/// 4 stages (UG1399's largest latency for a fabric multiplier; the cost model prices it:
/// accelgen.kernels.hw.FABRIC_MUL_LATENCY, fabric_multiplier). Same value as DspProduct.
struct FabricProduct {
    template <class PROD_T, class MUL_T>
    static PROD_T mul(const PROD_T& a, const MUL_T& m) {
#pragma HLS INLINE
        const PROD_T product = a * m;
#pragma HLS BIND_OP variable = product op = mul impl = fabric latency = 4
        return product;
    }
};

/// \brief Fixed-point multiply, add and arithmetic shift (floor), then clip.
/// \tparam PE        channels requantized in parallel
/// \tparam NF_STORE  channel folds stored (NF, or 1 when shared)
/// \tparam ACC_T     accumulator type
/// \tparam MUL_T     unsigned multiplier type
/// \tparam OFF_T     signed offset type
/// \tparam PROD_T    signed type holding direction * acc * M + B (proved by the generator)
/// \tparam SHIFT     right shift (floor division by 2**SHIFT)
/// \tparam OUT_CODE  output encoding (not bipolar)
/// \tparam PRODUCT   where the product is built: DspProduct or FabricProduct
template <unsigned PE, unsigned NF_STORE, class ACC_T, class MUL_T, class OFF_T, class PROD_T, unsigned SHIFT,
          class OUT_CODE, class PRODUCT>
struct MultiplyShift {
    static_assert(PE >= 1 && NF_STORE >= 1, "empty parameter table");
    static_assert(!OUT_CODE::bipolar, "multiply-shift does not produce bipolar codes");
    static_assert(SHIFT < PROD_T::width, "the shift exceeds the product width");
    typedef ap_int<OUT_CODE::bits + 1> bound_t;

    typename Stored<MUL_T>::type multiplier[PE][NF_STORE];
    typename Stored<OFF_T>::type offset[PE][NF_STORE];
    typename Stored<bound_t>::type lo[PE][NF_STORE];
    typename Stored<bound_t>::type hi[PE][NF_STORE];
    typename Stored<ap_uint<1> >::type negate[PE][NF_STORE];  // 1 where direction == -1

    typename OUT_CODE::raw_t apply(const ACC_T& acc, unsigned pe, unsigned nf) const {
#pragma HLS INLINE
        const unsigned n = NF_STORE == 1 ? 0 : nf;
#if defined(ACCELGEN_CSIM_FAST)
        if (PROD_T::width <= 64) {  // C simulation: native arithmetic modulo 2^width (see mac.h)
            const int PW = PROD_T::width <= 64 ? PROD_T::width : 64;
            const unsigned long long a0 = (unsigned long long)acc.to_int64();
            const unsigned long long a = (unsigned long long)wrap_signed<PW>(negate[pe][n] ? 0ULL - a0 : a0);
            const long long scaled = wrap_signed<PW>(a * (unsigned long long)multiplier[pe][n] +
                                                     (unsigned long long)offset[pe][n]);
            const long long shifted = scaled >> SHIFT;
            const long long low = lo[pe][n], high = hi[pe][n];
            return OUT_CODE::encode(bound_t(shifted < low ? low : (shifted > high ? high : shifted)));
        }
#endif
        const PROD_T a = negate[pe][n] ? PROD_T(-acc) : PROD_T(acc);
        const PROD_T scaled = PRODUCT::mul(a, MUL_T(multiplier[pe][n])) + OFF_T(offset[pe][n]);
        const PROD_T shifted = scaled >> SHIFT;
        const bound_t low = bound_t(lo[pe][n]), high = bound_t(hi[pe][n]);
        bound_t out;
        if (shifted < low)
            out = low;
        else if (shifted > high)
            out = high;
        else
            out = bound_t(shifted);
        return OUT_CODE::encode(out);
    }
};

/// \brief No requantization: the output element is the accumulator itself.
/// \tparam ACC_T    accumulator type
/// \tparam OUT_CODE output encoding (as wide as the accumulator, signed)
template <class ACC_T, class OUT_CODE>
struct PassThrough {
    static_assert(OUT_CODE::bits >= ACC_T::width, "the output lane must hold the accumulator");
    typename OUT_CODE::raw_t apply(const ACC_T& acc, unsigned, unsigned) const {
#pragma HLS INLINE
        return OUT_CODE::encode(acc);
    }
};

}  // namespace accelgen

#endif  // ACCELGEN_REQUANT_H

// accelgen HLS kernel library: element encodings, lane access and integer helpers.
//
// Every stream between kernels carries words of LANES elements packed side by side:
// lane i occupies bits [i*BITS, (i+1)*BITS) of an ap_uint<LANES*BITS>. An element is a
// raw bit pattern; its Code type says what integer it stands for (two's complement,
// unsigned, or bipolar where raw 0 means -1 and raw 1 means +1).
#ifndef ACCELGEN_TYPES_H
#define ACCELGEN_TYPES_H

// Vitis HLS's ap_int widths stop at AP_INT_MAX_W (1024 bits unless defined before the
// first ap_int.h include): the generated top.h, emu.cpp and tb.cpp define it first thing
// when a design has wider words (a stream word, or a SIMD word of weights).
#include <ap_int.h>
#include <hls_stream.h>

namespace accelgen {

/// \brief ap_int<BITS> when SIGNED, else ap_uint<BITS>.
/// \tparam BITS   width in bits (>= 1)
/// \tparam SIGNED two's complement or unsigned
template <unsigned BITS, bool SIGNED>
struct Int {
    typedef ap_int<BITS> type;
};
template <unsigned BITS>
struct Int<BITS, false> {
    typedef ap_uint<BITS> type;
};

/// \brief Type selection: If<true, A, B>::type is A, If<false, A, B>::type is B.
template <bool C, class A, class B>
struct If {
    typedef A type;
};
template <class A, class B>
struct If<false, A, B> {
    typedef B type;
};

/// \brief How an element of a constant parameter table is stored.
///
/// Synthesis stores the HLS type itself (ROMs at the real bit width). C simulation
/// stores types of at most 64 bits as plain integers holding the same value, so that
/// large tables are constant-initialised (no start-up code, fast compilation); readers
/// convert back with T(stored).
/// \tparam T the HLS type of the element
template <class T>
struct Stored {
    typedef T type;
};
#ifndef __SYNTHESIS__
template <int W>
struct Stored<ap_int<W> > {
    typedef typename If<(W <= 64), long long, ap_int<W> >::type type;
};
template <int W>
struct Stored<ap_uint<W> > {
    typedef typename If<(W <= 64), unsigned long long, ap_uint<W> >::type type;
};
#endif

#if !defined(__SYNTHESIS__) && !defined(ACCELGEN_CSIM_AP_MODEL)
/// C simulation takes native-integer fast paths for the dot products (see unpack_lanes
/// and mac.h); define ACCELGEN_CSIM_AP_MODEL to simulate every operation with ap_types.
#define ACCELGEN_CSIM_FAST 1
#endif

/// \brief Encoding of one stream element.
/// \tparam BITS    raw width (1..64)
/// \tparam SIGNED  two's complement (true) or unsigned (false)
/// \tparam BIPOLAR one bit standing for -1 (raw 0) or +1 (raw 1)
template <unsigned BITS, bool SIGNED, bool BIPOLAR = false>
struct Code {
    static_assert(BITS >= 1 && BITS <= 64, "a code is 1 to 64 bits wide");
    static_assert(!BIPOLAR || BITS == 1, "bipolar codes are one bit");
    static const unsigned bits = BITS;
    static const bool is_signed = SIGNED;
    static const bool bipolar = BIPOLAR;
    typedef ap_uint<BITS> raw_t;
    typedef typename Int<BITS, SIGNED>::type value_t;

    /// The integer a raw pattern stands for.
    static value_t decode(const raw_t& raw) {
#pragma HLS INLINE
        return value_t(raw);  // same width: reinterprets the bits (wraps for signed)
    }
    /// The raw pattern of an integer (the caller guarantees it is in range).
    template <class V>
    static raw_t encode(const V& value) {
#pragma HLS INLINE
        return raw_t(value);
    }
};

/// \brief Bipolar specialisation: raw 1 is +1, raw 0 is -1.
template <>
struct Code<1, true, true> {
    static const unsigned bits = 1;
    static const bool is_signed = true;
    static const bool bipolar = true;
    typedef ap_uint<1> raw_t;
    typedef ap_int<2> value_t;

    static value_t decode(const raw_t& raw) {
#pragma HLS INLINE
        return raw ? value_t(1) : value_t(-1);
    }
    template <class V>
    static raw_t encode(const V& value) {
#pragma HLS INLINE
        return raw_t(value > 0 ? 1 : 0);
    }
};

/// \brief A packed stream word of LANES elements of CODE.
template <class CODE, unsigned LANES>
struct Word {
    static_assert(LANES >= 1, "a word holds at least one lane");
    typedef ap_uint<LANES * CODE::bits> type;
};

/// Raw pattern of lane \p i of a packed word.
template <class CODE, unsigned LANES>
inline typename CODE::raw_t lane(const typename Word<CODE, LANES>::type& word, unsigned i) {
#pragma HLS INLINE
    // a shift and a truncation: wiring in hardware, and far cheaper than a part-select
    // in the C-simulation model of ap_uint
    return typename CODE::raw_t(word >> (i * CODE::bits));
}

/// Store the raw pattern \p raw into lane \p i of \p word.
template <class CODE, unsigned LANES>
inline void set_lane(typename Word<CODE, LANES>::type& word, unsigned i, const typename CODE::raw_t& raw) {
#pragma HLS INLINE
    typedef typename Word<CODE, LANES>::type word_t;
    const unsigned lo = i * CODE::bits;
    word = (word & ~(word_t(typename CODE::raw_t(-1)) << lo)) | (word_t(raw) << lo);
}

#ifndef __SYNTHESIS__
// Native-integer helpers of C simulation: the host code (host.h) always uses them; the
// kernels use them only on their ACCELGEN_CSIM_FAST paths.

/// \brief C simulation only: \p value modulo 2^W as a W-bit two's complement number
/// (what assigning it to an ap_int<W> does), for W <= 64.
template <int W>
inline long long wrap_signed(unsigned long long value) {
    static_assert(W >= 1 && W <= 64, "1 to 64 bits");
    return W == 64 ? (long long)value : (long long)(value << (64 - W)) >> (64 - W);
}

/// \brief C simulation only: the bits of \p word as 64-bit little-endian limbs.
template <int W>
inline void to_limbs(const ap_uint<W>& word, unsigned long long* limb) {
    if (W <= 64) {
        limb[0] = word.to_uint64();
        return;
    }
    for (unsigned k = 0; k < unsigned(W + 63) / 64; k++) limb[k] = ap_uint<64>(word >> (64 * k)).to_uint64();
}

/// \brief C simulation only: the word whose bits are the first W bits of \p limb.
template <int W>
inline ap_uint<W> from_limbs(const unsigned long long* limb) {
    if (W <= 64) return ap_uint<W>(limb[0]);
    ap_uint<W> word = 0;
    for (unsigned k = 0; k < unsigned(W + 63) / 64; k++) word |= ap_uint<W>(ap_uint<64>(limb[k])) << (64 * k);
    return word;
}

/// \brief C simulation only: the integer values of the N lanes packed in the bit string
/// \p limb (64-bit little-endian limbs, one spare zero limb at the end).
template <class CODE, unsigned N>
inline void unpack_limbs(const unsigned long long* limb, long long (&values)[N]) {
    static_assert(CODE::bits <= 63, "lanes of at most 63 bits");
    const unsigned B = CODE::bits;
    const unsigned long long mask = (1ULL << B) - 1;
    for (unsigned i = 0; i < N; i++) {
        const unsigned bit = i * B, k = bit / 64, off = bit % 64;
        unsigned long long raw = limb[k] >> off;
        if (off + B > 64) raw |= limb[k + 1] << (64 - off);
        raw &= mask;
        long long v;
        if (CODE::bipolar)
            v = raw ? 1 : -1;
        else if (CODE::is_signed && (raw >> (B - 1)))
            v = (long long)(raw | ~mask);
        else
            v = (long long)raw;
        values[i] = v;
    }
}

/// \brief C simulation only: the integer values of the N lanes of a packed word, read
/// with native shifts instead of the ap_types model of part-selects; the values are
/// exactly CODE::decode(lane(word, i)).
template <class CODE, unsigned N, int W>
inline void unpack_lanes(const ap_uint<W>& word, long long (&values)[N]) {
    const unsigned LIMBS = (W + 63) / 64;
    unsigned long long limb[LIMBS + 1];
    to_limbs<W>(word, limb);
    limb[LIMBS] = 0;
    unpack_limbs<CODE, N>(limb, values);
}

/// \brief C simulation only: as above for a word already held in a native integer.
template <class CODE, unsigned N>
inline void unpack_lanes(unsigned long long word, long long (&values)[N]) {
    const unsigned long long limb[2] = {word, 0};
    unpack_limbs<CODE, N>(limb, values);
}
#endif

/// \brief Assembles an output word lane by lane: set_lane on an ap_uint in synthesis; in
/// C simulation native 64-bit limbs turned into the word once (the same bits, far cheaper
/// than part-selects in the ap_types model).
template <class CODE, unsigned LANES>
struct WordBuilder {
    typedef typename Word<CODE, LANES>::type word_t;
#if defined(ACCELGEN_CSIM_FAST)
    static const unsigned BITS = LANES * CODE::bits;
    static const unsigned LIMBS = (BITS + 63) / 64;
    unsigned long long limb_[LIMBS + 1];
    WordBuilder() {
        for (unsigned k = 0; k <= LIMBS; k++) limb_[k] = 0;
    }
    void set(unsigned i, const typename CODE::raw_t& raw) {
        const unsigned long long r = raw.to_uint64();
        const unsigned bit = i * CODE::bits, k = bit / 64, off = bit % 64;
        limb_[k] |= r << off;
        if (off + CODE::bits > 64) limb_[k + 1] |= r >> (64 - off);
    }
    word_t word() const { return from_limbs<BITS>(limb_); }
#else
    word_t word_;
    WordBuilder() : word_(0) {}
    void set(unsigned i, const typename CODE::raw_t& raw) {
#pragma HLS INLINE
        set_lane<CODE, LANES>(word_, i, raw);
    }
    word_t word() const {
#pragma HLS INLINE
        return word_;
    }
#endif
};

/// A word whose every lane holds \p raw (padding words of the window generators).
template <class CODE, unsigned LANES>
inline typename Word<CODE, LANES>::type replicate(const typename CODE::raw_t& raw) {
#pragma HLS INLINE
    typename Word<CODE, LANES>::type word = 0;
replicate_lanes:
    for (unsigned i = 0; i < LANES; i++) {
#pragma HLS UNROLL
        set_lane<CODE, LANES>(word, i, raw);
    }
    return word;
}


/// \brief The value of an input element minus its zero point, in the narrowest type
/// that holds every such difference (chosen by the code generator from the code range).
/// \tparam CODE       the element's encoding
/// \tparam ZERO_POINT the tensor's zero point (0 for bipolar codes)
/// \tparam CENTRED_T  type of code - zero point
template <class CODE, int ZERO_POINT, class CENTRED_T>
inline CENTRED_T centre(const typename CODE::raw_t& raw) {
#pragma HLS INLINE
    static_assert(!CODE::bipolar || ZERO_POINT == 0, "bipolar codes have no zero point");
    return CENTRED_T(CODE::decode(raw) - ZERO_POINT);
}

}  // namespace accelgen

#endif  // ACCELGEN_TYPES_H

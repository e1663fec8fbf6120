// accelgen HLS kernel library: the matrix-vector unit (Dense, and Conv after a sliding
// window generator) with PE x SIMD folding and fused requantization.
#ifndef ACCELGEN_MVAU_H
#define ACCELGEN_MVAU_H

#ifndef __SYNTHESIS__
#include <vector>
#endif

#include "mac.h"
#include "requant.h"
#include "types.h"

namespace accelgen {

/// Bits of a counter up to n: ceil(log2(n)).
constexpr unsigned clog2(unsigned n) {
    unsigned bits = 0;
    while ((1ULL << bits) < n) bits++;
    return bits;
}

/// Lanes per weight chunk: the largest divisor of SIMD whose chunk is at most 64 bits.
constexpr unsigned chunk_lanes(unsigned simd, unsigned bits) {
    unsigned best = 1;
    for (unsigned d = 1; d <= simd; d++) {
        if (simd % d == 0 && d * bits <= 64) best = d;
    }
    return best;
}

/// \brief On-chip weights packed at their real bit width: SIMD weights per word, one
/// row of TILES words per processing element. A word is stored as CHUNKS chunks of
/// CHUNK_LANES weights (at most 64 bits each, together exactly SIMD * bits wide); the
/// generator partitions the PE and chunk dimensions, so a word is read in one cycle.
/// \tparam CODE  weight encoding (bipolar weights are one bit: 1 = +1, 0 = -1)
/// \tparam SIMD  weights per word
/// \tparam PE    processing elements (rows of the memory, partitioned)
/// \tparam TILES words per processing element (NF * SF)
template <class CODE, unsigned SIMD, unsigned PE, unsigned TILES>
struct WeightMemory {
    static const unsigned CHUNK_LANES = chunk_lanes(SIMD, CODE::bits);
    static const unsigned CHUNKS = SIMD / CHUNK_LANES;
    static const unsigned CHUNK_BITS = CHUNK_LANES * CODE::bits;
    static_assert(CHUNK_BITS <= 64, "a weight chunk is at most 64 bits");
    typedef ap_uint<CHUNK_BITS> chunk_t;
    typedef typename Word<CODE, SIMD>::type word_t;

    typename Stored<chunk_t>::type chunk[PE][TILES][CHUNKS];

    /// The SIMD weights of processing element \p pe at \p tile.
    word_t word(unsigned pe, unsigned tile) const {
#pragma HLS INLINE
        if (CHUNKS == 1) return word_t(chunk_t(chunk[pe][tile][0]));
        word_t w = 0;
    weight_chunks:
        for (unsigned c = 0; c < CHUNKS; c++) {
#pragma HLS UNROLL
            w.range((c + 1) * CHUNK_BITS - 1, c * CHUNK_BITS) = chunk_t(chunk[pe][tile][c]);
        }
        return w;
    }
};

#ifdef ACCELGEN_CSIM_FAST
/// \brief C simulation only: the weights of one WeightMemory decoded to native integers,
/// [pe][tile][lane], once per memory (a thread-safe function-local static per config).
template <class CFG, class W>
struct DecodedWeights {
    const W* source;
    std::vector<int> values;
    explicit DecodedWeights(const W& weights, bool decode = true)
        : source(&weights), values(decode ? size_t(CFG::PE) * CFG::TILES * CFG::SIMD : 0) {
        if (!decode) return;
        long long lanes[W::CHUNK_LANES];
        size_t at = 0;
        for (unsigned pe = 0; pe < CFG::PE; pe++)
            for (unsigned tile = 0; tile < CFG::TILES; tile++)
                for (unsigned c = 0; c < W::CHUNKS; c++) {
                    unpack_lanes<typename CFG::weight_code, W::CHUNK_LANES>((unsigned long long)weights.chunk[pe][tile][c],
                                                                           lanes);
                    for (unsigned i = 0; i < W::CHUNK_LANES; i++) values[at++] = int(lanes[i]);
                }
    }
    static const DecodedWeights& of(const W& weights) {
        static const DecodedWeights decoded(weights);
        return decoded;
    }
};

/// \brief C simulation only: the native type of a centred input lane: int while every
/// product with a (<= 9-bit) weight fits it, else long long.
template <class CFG>
struct CsimLane {
    typedef typename If<(CFG::centred_t::width <= 20), int, long long>::type type;
};

/// \brief C simulation only: the dot product of the centred input lanes \p xs with the
/// SIMD weights \p ws, with native integers.
template <class CFG>
inline long long dot_native(const typename CsimLane<CFG>::type* xs, const int* ws) {
    // 32-bit sums when no sum of SIMD products can leave the int range (vectorises)
    const bool narrow = CFG::centred_t::width + CFG::weight_code::bits + 1 + clog2(CFG::SIMD) <= 31;
    typedef typename If<narrow, int, long long>::type sum_t;
    sum_t sum = 0;
    for (unsigned i = 0; i < CFG::SIMD; i++) sum += sum_t(xs[i]) * sum_t(ws[i]);
    return (long long)sum;
}

/// \brief C simulation only: the input lanes of a word minus the zero point.
template <class CFG, unsigned N, class WORD>
inline void centred_lanes(const WORD& x, typename CsimLane<CFG>::type* xs) {
    long long lanes[N];
    unpack_lanes<typename CFG::in_code, N>(x, lanes);
    for (unsigned i = 0; i < N; i++) xs[i] = typename CsimLane<CFG>::type(lanes[i] - CFG::IN_ZERO_POINT);
}

/// \brief C simulation only: the arithmetic of a matrix or vector unit with native
/// integers: decoded weights, the centred input lanes, exact accumulators.
///
/// Bit-identical to the synthesised arithmetic (CFG::mac::dot, acc_t accumulators) for
/// every input: every product is exact in both; every MAC policy computes the sum of the
/// same products (XNOR-popcount is the sum of +1/-1 products, sign selection the product
/// by +1/-1); and two's complement sums agree modulo 2^acc_t::width whether wrapped after
/// each addition (acc_t) or once when handed to the requantizer (result()).
/// \tparam CFG   the unit's configuration
/// \tparam LANES input lanes held (MATRIX_W for the matrix unit, SIMD * PE per word for the
///   vector unit)
template <class CFG, unsigned LANES, unsigned GROUP = 1>
struct NativeUnit {
    typedef typename CsimLane<CFG>::type lane_t;
    const DecodedWeights<CFG, typename CFG::weights_t>* weights;
    DecodedWeights<CFG, typename CFG::weights_t> own;  // only when the cached decode is of another memory
    std::vector<lane_t> input;
    long long acc[GROUP][CFG::PE];  // per pixel of a group, per processing element

    explicit NativeUnit(const typename CFG::weights_t& w)
        : weights(&DecodedWeights<CFG, typename CFG::weights_t>::of(w)), own(w, weights->source != &w),
          input(LANES) {
        if (weights->source != &w) weights = &own;
    }
    /// Processing element \p pe of pixel \p j: acc (or a fresh sum) + dot(input lanes \p xs, tile).
    void step(unsigned pe, unsigned tile, const lane_t* xs, bool first, unsigned j = 0) {
        const long long d = dot_native<CFG>(xs, &weights->values[(size_t(pe) * CFG::TILES + tile) * CFG::SIMD]);
        acc[j][pe] = first ? d : acc[j][pe] + d;
    }
    typename CFG::acc_t result(unsigned pe, unsigned j = 0) const { return typename CFG::acc_t(acc[j][pe]); }
};
#endif

/// \brief Requantizers shared in time by the LANES accumulators of one output word: R =
/// CFG::REQUANT_LANES of them (R < LANES), fed from a second register bank.
///
/// A unit's output words are finished once every SF cycles (the last synapse fold), so
/// the LANES accumulators need not be requantized in the same cycle: load() copies them
/// to the bank \c held, and each of the next STEPS = ceil(LANES / R) cycles advance()
/// requantizes R of them, lanes step * R + r (r < R), into the output word, written after
/// the last step. STEPS <= SF (the unit's static_assert), so a word is done by the cycle
/// the next one is loaded, also across samples (the steps of a sample's last word run in
/// the next sample's first cycles); only the last sample's last word drains, in DRAIN =
/// STEPS cycles after the samples. A frame takes no cycle more, its output STEPS later.
///
/// Requantizer r reads its parameters at [r][nf * STEPS + step]: the generator lays the
/// tables out by this schedule (accelgen.codegen.params, lane l of fold nf holds channel
/// nf * PE + l % PE; lanes past LANES are padding), so each of the R partitions is read at
/// one variable address per cycle and no parameter multiplexer is needed. Only the bank
/// read held[step * R + r] is a STEPS:1 multiplexer per requantizer.
/// \tparam CFG   the unit's configuration (REQUANT_LANES, acc_t, out_code, requant_t)
/// \tparam LANES lanes of one output word
/// \tparam SHARED REQUANT_LANES < LANES (else the unit requantizes every lane at once and
///   this type is empty)
template <class CFG, unsigned LANES, bool SHARED = (CFG::REQUANT_LANES < LANES)>
struct SharedRequant {
    static const unsigned R = CFG::REQUANT_LANES;
    static const unsigned STEPS = (LANES + R - 1) / R;
    static const unsigned DRAIN = STEPS;  // cycles after the last sample
    static_assert(R >= 1, "at least one requantizer");
    typedef WordBuilder<typename CFG::out_code, LANES> builder_t;

    typename CFG::acc_t held[STEPS * R];  // lane l at [l]; entries from LANES on are padding (0)
    builder_t y;
    unsigned step, fold;
    bool busy;

    SharedRequant() : step(0), fold(0), busy(false) {}

    /// Take the finished accumulators of channel fold \p nf: lane j * COLS + c at acc[j][c]
    /// (the matrix unit's [pixel][pe], pixel-major as its output word).
    template <unsigned ROWS, unsigned COLS>
    void load(const typename CFG::acc_t (&acc)[ROWS][COLS], unsigned nf) {
#pragma HLS INLINE
        static_assert(ROWS * COLS == LANES, "one accumulator per lane");
    shared_load:
        for (unsigned l = 0; l < STEPS * R; l++) {
#pragma HLS UNROLL
            held[l] = 0;
            if (l < LANES) held[l] = acc[l / COLS][l % COLS];
        }
        start(nf);
    }

    /// Take the finished accumulators of channel fold \p nf: lane l at acc[l].
    void load(const typename CFG::acc_t (&acc)[LANES], unsigned nf) {
#pragma HLS INLINE
    shared_load_lanes:
        for (unsigned l = 0; l < STEPS * R; l++) {
#pragma HLS UNROLL
            held[l] = 0;
            if (l < LANES) held[l] = acc[l];
        }
        start(nf);
    }

    void start(unsigned nf) {
#pragma HLS INLINE
        y = builder_t();
        step = 0;
        fold = nf;
        busy = true;
    }

    /// One cycle's share: R lanes requantized; the word is written after the last step.
    template <class OUT_WORD>
    void advance(const typename CFG::requant_t& requant, hls::stream<OUT_WORD>& out) {
#pragma HLS INLINE
        if (!busy) return;
    shared_requant:
        for (unsigned r = 0; r < R; r++) {
#pragma HLS UNROLL
            const typename CFG::out_code::raw_t raw = requant.apply(held[step * R + r], r, fold * STEPS + step);
        shared_place:
            for (unsigned s = 0; s < STEPS; s++) {  // lane s * R + r is written at step s only: an enable
#pragma HLS UNROLL
                if (s == step && s * R + r < LANES) y.set(s * R + r, raw);
            }
        }
        if (++step == STEPS) {
            out.write(y.word());
            busy = false;
        }
    }
};

/// Every lane requantized in the cycle its word is finished (the unit's own loop): nothing held.
template <class CFG, unsigned LANES>
struct SharedRequant<CFG, LANES, false> {
    static const unsigned STEPS = 1;
    static const unsigned DRAIN = 0;
    typename CFG::acc_t held[1];  // never used: the unit's ARRAY_PARTITION pragma names it
    template <class ACC>
    void load(const ACC&, unsigned) {}
    template <class OUT_WORD>
    void advance(const typename CFG::requant_t&, hls::stream<OUT_WORD>&) {}
};

/// \brief Matrix-vector-activation unit: out[p][o] = requant(sum_i w[o][i] * (x[p][i] - zp)).
///
/// Per sample it processes PIXELS input vectors of MATRIX_W elements (one per output
/// pixel of a convolution, one for a Dense layer) and emits MATRIX_H outputs for each.
/// Each cycle consumes one input word of SIMD elements and updates PE accumulators, so a
/// vector takes NF * SF cycles with NF = MATRIX_H / PE and SF = MATRIX_W / SIMD. The
/// first output fold (nf == 0) reads the input and keeps it in a buffer for the others.
///
/// With PIXELS_PER_CYCLE (PPC) > 1, each input word holds PPC words of SIMD elements, one
/// per pixel of a group of PPC consecutive pixels (the window generator's grouped
/// output), and the unit computes the PPC pixels side by side with the same weights:
/// PPC * PE * SIMD products per cycle, PIXELS / PPC * SF cycles per sample. It needs every
/// output channel in parallel (NF == 1), so each output word (PPC * PE lanes, pixel-major)
/// is PPC whole pixels in channels-last order.
///
/// With REQUANT_LANES (R) below the PPC * PE lanes of a word, R requantizers are shared in
/// time (SharedRequant): a word is requantized in the ceil(PPC * PE / R) cycles after it is
/// finished (and the last one drained after the samples). With R == PPC * PE every lane is
/// requantized in the cycle its word is finished, requant parameters at [pe][nf].
///
/// \tparam CFG configuration: MATRIX_W, MATRIX_H, PIXELS, SIMD, PE, PIXELS_PER_CYCLE,
///   REQUANT_LANES, in_code, IN_ZERO_POINT, centred_t, weight_code, mac (dot-product
///   policy), acc_t, out_code, weights_t (WeightMemory), requant_t (Thresholds,
///   MultiplyShift or PassThrough).
///
/// Pragmas: PIPELINE II=1 on the flattened fold loop; the accumulators and the shared
/// requantizers' bank are completely partitioned; the generator partitions weights along
/// PE and requant parameters along their first dimension (PE, or R when shared).
template <class CFG>
void mvau(hls::stream<typename Word<typename CFG::in_code, CFG::SIMD * CFG::PIXELS_PER_CYCLE>::type>& in,
          hls::stream<typename Word<typename CFG::out_code, CFG::PE * CFG::PIXELS_PER_CYCLE>::type>& out,
          const typename CFG::weights_t& weights, const typename CFG::requant_t& requant, const unsigned reps) {
    static_assert(CFG::SIMD >= 1 && CFG::PE >= 1, "SIMD and PE are at least 1");
    static_assert(CFG::MATRIX_W % CFG::SIMD == 0, "SIMD must divide the matrix width");
    static_assert(CFG::MATRIX_H % CFG::PE == 0, "PE must divide the matrix height");
    static_assert(CFG::PIXELS >= 1, "at least one vector per sample");
    static_assert(CFG::PIXELS_PER_CYCLE >= 1 && CFG::PIXELS % CFG::PIXELS_PER_CYCLE == 0,
                  "PIXELS_PER_CYCLE must divide the pixels");
    static_assert(CFG::PIXELS_PER_CYCLE == 1 || CFG::PE == CFG::MATRIX_H,
                  "several pixels per cycle need every output channel in parallel (PE == MATRIX_H)");
    const unsigned PPC = CFG::PIXELS_PER_CYCLE;
    typedef typename Word<typename CFG::in_code, CFG::SIMD>::type in_word_t;
    typedef typename Word<typename CFG::in_code, CFG::SIMD * CFG::PIXELS_PER_CYCLE>::type in_group_t;
    const unsigned SF = CFG::MATRIX_W / CFG::SIMD;
    const unsigned NF = CFG::MATRIX_H / CFG::PE;
    const unsigned LANES = CFG::PE * CFG::PIXELS_PER_CYCLE;
    typedef SharedRequant<CFG, LANES> shared_t;
    const bool SHARED = CFG::REQUANT_LANES < LANES;
    static_assert(CFG::REQUANT_LANES >= 1 && CFG::REQUANT_LANES <= LANES, "1 to PE * PIXELS_PER_CYCLE requantizers");
    static_assert(!SHARED || shared_t::STEPS <= SF, "shared requantizers finish a word before the next one");
    const unsigned FOLDS = CFG::PIXELS / PPC * NF * SF;

    typename CFG::acc_t acc[CFG::PIXELS_PER_CYCLE][CFG::PE];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 0
    shared_t shared;
#pragma HLS ARRAY_PARTITION variable = shared.held complete
#ifdef ACCELGEN_CSIM_FAST
    // C simulation: native arithmetic, same values; input lanes [pixel of the group][MATRIX_W]
    NativeUnit<CFG, CFG::MATRIX_W * CFG::PIXELS_PER_CYCLE, CFG::PIXELS_PER_CYCLE> native(weights);
    typename CsimLane<CFG>::type group_lanes[CFG::SIMD * CFG::PIXELS_PER_CYCLE];
#else
    in_group_t vector[SF];  // the input vector, read while nf == 0 (PPC == 1 whenever NF > 1)
#endif

mvau_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        unsigned sf = 0, nf = 0;
    // Flattened (pixel group, nf, sf) nest: iteration i = (group * NF + nf) * SF + sf.
    mvau_folds:
        for (unsigned i = 0; i < FOLDS; i++) {
#pragma HLS PIPELINE II = 1
            shared.advance(requant, out);  // the word loaded earlier (before this one's load)
#ifdef ACCELGEN_CSIM_FAST
            if (nf == 0) {
                centred_lanes<CFG, CFG::SIMD * CFG::PIXELS_PER_CYCLE>(in.read(), group_lanes);
                for (unsigned j = 0; j < PPC; j++)
                    for (unsigned k = 0; k < CFG::SIMD; k++)
                        native.input[j * CFG::MATRIX_W + sf * CFG::SIMD + k] = group_lanes[j * CFG::SIMD + k];
            }
            for (unsigned j = 0; j < PPC; j++) {
                const typename CsimLane<CFG>::type* xs = &native.input[j * CFG::MATRIX_W + sf * CFG::SIMD];
                for (unsigned pe = 0; pe < CFG::PE; pe++) native.step(pe, nf * SF + sf, xs, sf == 0, j);
                for (unsigned pe = 0; pe < CFG::PE; pe++) acc[j][pe] = sf == SF - 1 ? native.result(pe, j) : acc[j][pe];
            }
#else
            in_group_t x;
            if (nf == 0) {
                x = in.read();
                vector[sf] = x;
            } else {
                x = vector[sf];
            }
        mvau_pixels:
            for (unsigned j = 0; j < PPC; j++) {
#pragma HLS UNROLL
                const in_word_t xj = in_word_t(x >> (j * CFG::SIMD * CFG::in_code::bits));
            mvau_pe:
                for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                    const unsigned tile = nf * SF + sf;
                    if (Pairs<typename CFG::mac>::value && pe % 2 == 1) continue;  // done with pe - 1
                    if (Pairs<typename CFG::mac>::value && pe + 1 < CFG::PE) {
                        typename CFG::acc_t p0, p1;  // PEs pe and pe + 1 share the input lanes: one DSP per lane
                        Pairs<typename CFG::mac>::template pair<CFG>(xj, weights.word(pe, tile), weights.word(pe + 1, tile),
                                                                     p0, p1);
                        acc[j][pe] = (sf == 0) ? p0 : typename CFG::acc_t(acc[j][pe] + p0);
                        acc[j][pe + 1] = (sf == 0) ? p1 : typename CFG::acc_t(acc[j][pe + 1] + p1);
                        continue;
                    }
                    const typename CFG::acc_t partial = CFG::mac::template dot<CFG>(xj, weights.word(pe, tile));
                    acc[j][pe] = (sf == 0) ? partial : typename CFG::acc_t(acc[j][pe] + partial);
                }
            }
#endif
            if (sf == SF - 1 && SHARED) {
                shared.load(acc, nf);  // lane j * PE + pe: pixel-major, as the output word
            } else if (sf == SF - 1) {
                WordBuilder<typename CFG::out_code, CFG::PE * CFG::PIXELS_PER_CYCLE> y;
            mvau_requant:
                for (unsigned j = 0; j < PPC; j++) {
#pragma HLS UNROLL
                    for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                        y.set(j * CFG::PE + pe, requant.apply(acc[j][pe], pe, nf));
                    }
                }
                out.write(y.word());
            }
            if (++sf == SF) {
                sf = 0;
                if (++nf == NF) nf = 0;
            }
        }
    }
mvau_drain:  // the last sample's last word, when the requantizers are shared
    for (unsigned i = 0; i < shared_t::DRAIN; i++) {
#pragma HLS PIPELINE II = 1
        shared.advance(requant, out);
    }
}

/// \brief Depthwise vector unit: each channel convolves with its own KERNEL taps.
///
/// Input words carry SIMD taps of PE channels, tap-major (lane t * PE + p), in the order
/// (pixel, channel fold nf, tap fold sf); the sliding window generator in depthwise
/// order followed by a width converter produces exactly that. Each cycle updates PE
/// accumulators with SIMD taps; a pixel takes NF * SF cycles, NF = CHANNELS / PE and
/// SF = KERNEL / SIMD.
///
/// With REQUANT_LANES (R) below PE, R requantizers are shared in time as in mvau
/// (SharedRequant): a word is requantized in the ceil(PE / R) cycles after it is finished.
///
/// \tparam CFG configuration: CHANNELS, KERNEL (taps), PIXELS, SIMD, PE, REQUANT_LANES,
///   in_code, IN_ZERO_POINT, centred_t, weight_code, mac, acc_t, out_code, weights_t,
///   requant_t.
///
/// Pragmas: PIPELINE II=1 on the flattened loop; accumulators and the shared
/// requantizers' bank completely partitioned.
template <class CFG>
void vvau(hls::stream<typename Word<typename CFG::in_code, CFG::SIMD * CFG::PE>::type>& in,
          hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out, const typename CFG::weights_t& weights,
          const typename CFG::requant_t& requant, const unsigned reps) {
    static_assert(CFG::SIMD >= 1 && CFG::PE >= 1, "SIMD and PE are at least 1");
    static_assert(CFG::KERNEL % CFG::SIMD == 0, "SIMD must divide the kernel taps");
    static_assert(CFG::CHANNELS % CFG::PE == 0, "PE must divide the channels");
    typedef typename Word<typename CFG::in_code, CFG::SIMD * CFG::PE>::type in_word_t;
    typedef typename Word<typename CFG::in_code, CFG::SIMD>::type tap_word_t;
    const unsigned SF = CFG::KERNEL / CFG::SIMD;
    const unsigned NF = CFG::CHANNELS / CFG::PE;
    typedef SharedRequant<CFG, CFG::PE> shared_t;
    const bool SHARED = CFG::REQUANT_LANES < CFG::PE;
    static_assert(CFG::REQUANT_LANES >= 1 && CFG::REQUANT_LANES <= CFG::PE, "1 to PE requantizers");
    static_assert(!SHARED || shared_t::STEPS <= SF, "shared requantizers finish a word before the next one");
    const unsigned FOLDS = CFG::PIXELS * NF * SF;

    typename CFG::acc_t acc[CFG::PE];
#pragma HLS ARRAY_PARTITION variable = acc complete
    shared_t shared;
#pragma HLS ARRAY_PARTITION variable = shared.held complete
#ifdef ACCELGEN_CSIM_FAST
    NativeUnit<CFG, CFG::SIMD * CFG::PE> native(weights);  // C simulation: native arithmetic, same values
    typename CsimLane<CFG>::type taps_n[CFG::SIMD];
#endif

vvau_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        unsigned sf = 0, nf = 0;
    // Flattened (pixel, nf, sf) nest: iteration i = (pixel * NF + nf) * SF + sf.
    vvau_folds:
        for (unsigned i = 0; i < FOLDS; i++) {
#pragma HLS PIPELINE II = 1
            shared.advance(requant, out);  // the word loaded earlier (before this one's load)
#ifdef ACCELGEN_CSIM_FAST
            centred_lanes<CFG, CFG::SIMD * CFG::PE>(in.read(), &native.input[0]);
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
                for (unsigned t = 0; t < CFG::SIMD; t++) taps_n[t] = native.input[t * CFG::PE + pe];
                native.step(pe, nf * SF + sf, taps_n, sf == 0);
                acc[pe] = sf == SF - 1 ? native.result(pe) : acc[pe];
            }
#else
            const in_word_t x = in.read();
        vvau_pe:
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                tap_word_t taps = 0;
            vvau_gather:
                for (unsigned t = 0; t < CFG::SIMD; t++) {
#pragma HLS UNROLL
                    set_lane<typename CFG::in_code, CFG::SIMD>(
                        taps, t, lane<typename CFG::in_code, CFG::SIMD * CFG::PE>(x, t * CFG::PE + pe));
                }
                const typename CFG::acc_t partial = CFG::mac::template dot<CFG>(taps, weights.word(pe, nf * SF + sf));
                acc[pe] = (sf == 0) ? partial : typename CFG::acc_t(acc[pe] + partial);
            }
#endif
            if (sf == SF - 1 && SHARED) {
                shared.load(acc, nf);
            } else if (sf == SF - 1) {
                WordBuilder<typename CFG::out_code, CFG::PE> y;
            vvau_requant:
                for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                    y.set(pe, requant.apply(acc[pe], pe, nf));
                }
                out.write(y.word());
            }
            if (++sf == SF) {
                sf = 0;
                if (++nf == NF) nf = 0;
            }
        }
    }
vvau_drain:  // the last sample's last word, when the requantizers are shared
    for (unsigned i = 0; i < shared_t::DRAIN; i++) {
#pragma HLS PIPELINE II = 1
        shared.advance(requant, out);
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_MVAU_H

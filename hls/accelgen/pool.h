// accelgen HLS kernel library: pooling. Window pools reduce the depthwise-ordered
// output of the sliding window generator; global pools reduce a whole feature map
// without a line buffer.
#ifndef ACCELGEN_POOL_H
#define ACCELGEN_POOL_H

#include "requant.h"
#include "types.h"

namespace accelgen {

/// \brief Max of codes. Exact: dequantization is increasing, so the max code is the
/// code of the max. The output code is the input code; no parameters.
struct MaxReduce {
    template <class CFG>
    static typename CFG::acc_t first(const typename CFG::in_code::raw_t& raw) {
#pragma HLS INLINE
        return typename CFG::acc_t(CFG::in_code::decode(raw));
    }
    template <class CFG>
    static typename CFG::acc_t combine(const typename CFG::acc_t& acc, const typename CFG::in_code::raw_t& raw) {
#pragma HLS INLINE
        const typename CFG::acc_t v = CFG::in_code::decode(raw);
        return v > acc ? v : acc;
    }
};

/// \brief Sum of centred codes (code - zero point); the mean's 1/k lives in the
/// requantizer that follows.
struct SumReduce {
    template <class CFG>
    static typename CFG::acc_t first(const typename CFG::in_code::raw_t& raw) {
#pragma HLS INLINE
        return typename CFG::acc_t(centre<typename CFG::in_code, CFG::IN_ZERO_POINT, typename CFG::centred_t>(raw));
    }
    template <class CFG>
    static typename CFG::acc_t combine(const typename CFG::acc_t& acc, const typename CFG::in_code::raw_t& raw) {
#pragma HLS INLINE
        return acc + centre<typename CFG::in_code, CFG::IN_ZERO_POINT, typename CFG::centred_t>(raw);
    }
};

/// \brief Requantizer of a max pool: the output is the input code itself.
template <class ACC_T, class OUT_CODE>
struct SameCode {
    typename OUT_CODE::raw_t apply(const ACC_T& acc, unsigned, unsigned) const {
#pragma HLS INLINE
        return OUT_CODE::encode(acc);
    }
};

/// \brief Window pool: reduces KERNEL consecutive words (one window of one channel
/// group, from sliding_window in depthwise order) to one output word.
/// \tparam CFG configuration: PE (channels per word), CHANNELS, PIXELS (output pixels),
///   KERNEL (taps), in_code, IN_ZERO_POINT, centred_t, acc_t, reduce (MaxReduce or
///   SumReduce), out_code, requant_t.
/// Pragmas: PIPELINE II=1 on the flattened (pixel, channel fold, tap) loop.
template <class CFG>
void window_pool(hls::stream<typename Word<typename CFG::in_code, CFG::PE>::type>& in,
                 hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out,
                 const typename CFG::requant_t& requant, const unsigned reps) {
    static_assert(CFG::CHANNELS % CFG::PE == 0, "PE must divide the channels");
    static_assert(CFG::KERNEL >= 1, "empty window");
    typedef typename Word<typename CFG::in_code, CFG::PE>::type in_word_t;
    const unsigned NF = CFG::CHANNELS / CFG::PE;
    typename CFG::acc_t acc[CFG::PE];
#pragma HLS ARRAY_PARTITION variable = acc complete

window_pool_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        unsigned tap = 0, nf = 0;
    // Flattened (pixel, nf, tap) nest: iteration i = (pixel * NF + nf) * KERNEL + tap.
    window_pool_taps:
        for (unsigned i = 0; i < CFG::PIXELS * NF * CFG::KERNEL; i++) {
#pragma HLS PIPELINE II = 1
            const in_word_t x = in.read();
        window_pool_pe:
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                const typename CFG::in_code::raw_t raw = lane<typename CFG::in_code, CFG::PE>(x, pe);
                acc[pe] = tap == 0 ? CFG::reduce::template first<CFG>(raw)
                                   : CFG::reduce::template combine<CFG>(acc[pe], raw);
            }
            if (tap == CFG::KERNEL - 1) {
                WordBuilder<typename CFG::out_code, CFG::PE> y;
            window_pool_requant:
                for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                    y.set(pe, requant.apply(acc[pe], pe, nf));
                }
                out.write(y.word());
            }
            if (++tap == CFG::KERNEL) {
                tap = 0;
                if (++nf == NF) nf = 0;
            }
        }
    }
}

/// Channel groups from which a global pool keeps its running reductions in block RAM
/// rather than registers. The same group comes back every NF iterations of the II=1 loop,
/// and a RAM's read, the reduction and the write take at most 3 cycles (a read latency of
/// 1-2 cycles, one for the adder or comparator): from 4 groups on no access to a group
/// can overlap the previous one, so the loop carries no dependence through the RAM.
const unsigned GLOBAL_POOL_RAM_GROUPS = 4;

/// \brief The accumulate and emit loops of one sample of a global pool, keeping the
/// running reductions in a shift register of NF x PE registers (NF < GLOBAL_POOL_RAM_GROUPS):
/// the group in the last stage is always the one the next word belongs to, so no
/// multiplexer selects it and the loop carries only a register dependence.
template <class CFG, bool IN_RAM>
struct GlobalPoolSample {
    typedef typename Word<typename CFG::in_code, CFG::PE>::type in_word_t;
    static const unsigned NF = CFG::CHANNELS / CFG::PE;

    static void run(hls::stream<in_word_t>& in, hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out,
                    const typename CFG::requant_t& requant) {
#pragma HLS INLINE
        typename CFG::acc_t acc[NF][CFG::PE];  // acc[NF - 1] is the current group, acc[0] the last one written
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 0
        unsigned pixel = 0, nf = 0;
    // Flattened (pixel, nf) nest: iteration i = pixel * NF + nf.
    global_pool_accumulate:
        for (unsigned i = 0; i < CFG::PIXELS * NF; i++) {
#pragma HLS PIPELINE II = 1
            const in_word_t x = in.read();
            typename CFG::acc_t next[CFG::PE];
        global_pool_pe:
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                const typename CFG::in_code::raw_t raw = lane<typename CFG::in_code, CFG::PE>(x, pe);
                next[pe] = pixel == 0 ? CFG::reduce::template first<CFG>(raw)
                                      : CFG::reduce::template combine<CFG>(acc[NF - 1][pe], raw);
            }
        global_pool_shift:
            for (unsigned k = NF - 1; k > 0; k--) {
#pragma HLS UNROLL
                for (unsigned pe = 0; pe < CFG::PE; pe++) acc[k][pe] = acc[k - 1][pe];
            }
            for (unsigned pe = 0; pe < CFG::PE; pe++) acc[0][pe] = next[pe];
            if (++nf == NF) {
                nf = 0;
                pixel++;
            }
        }
    // After the last pixel, group f sits in stage NF - 1 - f.
    global_pool_emit:
        for (unsigned f = 0; f < NF; f++) {
#pragma HLS PIPELINE II = 1
            WordBuilder<typename CFG::out_code, CFG::PE> y;
        global_pool_requant:
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                y.set(pe, requant.apply(acc[NF - 1 - f][pe], pe, f));
            }
            out.write(y.word());
        }
    }
};

/// \brief One sample of a global pool with the running reductions in a RAM of NF words of
/// PE lanes (NF >= GLOBAL_POOL_RAM_GROUPS): the dependence between iterations through the
/// RAM is declared false, which holds because a group's read-reduce-write finishes before
/// the same group comes back NF >= 4 iterations later (see GLOBAL_POOL_RAM_GROUPS).
template <class CFG>
struct GlobalPoolSample<CFG, true> {
    typedef typename Word<typename CFG::in_code, CFG::PE>::type in_word_t;
    static const unsigned NF = CFG::CHANNELS / CFG::PE;
    static_assert(NF >= GLOBAL_POOL_RAM_GROUPS, "the RAM form needs the same group at least 4 iterations apart");

    static void run(hls::stream<in_word_t>& in, hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out,
                    const typename CFG::requant_t& requant) {
#pragma HLS INLINE
        typename CFG::acc_t acc[NF][CFG::PE];
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 2
        unsigned pixel = 0, nf = 0;
    // Flattened (pixel, nf) nest: iteration i = pixel * NF + nf.
    global_pool_accumulate:
        for (unsigned i = 0; i < CFG::PIXELS * NF; i++) {
#pragma HLS PIPELINE II = 1
#pragma HLS DEPENDENCE variable = acc inter RAW false
            const in_word_t x = in.read();
        global_pool_pe:
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                const typename CFG::in_code::raw_t raw = lane<typename CFG::in_code, CFG::PE>(x, pe);
                acc[nf][pe] = pixel == 0 ? CFG::reduce::template first<CFG>(raw)
                                         : CFG::reduce::template combine<CFG>(acc[nf][pe], raw);
            }
            if (++nf == NF) {
                nf = 0;
                pixel++;
            }
        }
    global_pool_emit:
        for (unsigned f = 0; f < NF; f++) {
#pragma HLS PIPELINE II = 1
            WordBuilder<typename CFG::out_code, CFG::PE> y;
        global_pool_requant:
            for (unsigned pe = 0; pe < CFG::PE; pe++) {
#pragma HLS UNROLL
                y.set(pe, requant.apply(acc[f][pe], pe, f));
            }
            out.write(y.word());
        }
    }
};

/// \brief Global pool: reduces all PIXELS pixels of a feature map per channel.
/// \tparam CFG configuration: PE, CHANNELS, PIXELS (input pixels), in_code,
///   IN_ZERO_POINT, centred_t, acc_t, reduce, out_code, requant_t.
/// Pragmas: PIPELINE II=1 on the accumulate and emit loops. The running reductions of
/// NF = CHANNELS / PE channel groups are a shift register when NF < 4, else a RAM of NF
/// words partitioned along PE, whose inter-iteration dependence is declared false (a
/// group recurs only every NF >= 4 iterations): in both forms the accumulate loop has no
/// loop-carried RAM read-modify-write.
template <class CFG>
void global_pool(hls::stream<typename Word<typename CFG::in_code, CFG::PE>::type>& in,
                 hls::stream<typename Word<typename CFG::out_code, CFG::PE>::type>& out,
                 const typename CFG::requant_t& requant, const unsigned reps) {
    static_assert(CFG::CHANNELS % CFG::PE == 0, "PE must divide the channels");
    const unsigned NF = CFG::CHANNELS / CFG::PE;
global_pool_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        GlobalPoolSample<CFG, (NF >= GLOBAL_POOL_RAM_GROUPS)>::run(in, out, requant);
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_POOL_H

// accelgen HLS kernel library: stream plumbing. Forks for residual branches, channel
// concatenation, and the gearbox that converts between any two word widths (stream
// width converters and AXI-Stream bus packing).
#ifndef ACCELGEN_STREAMS_H
#define ACCELGEN_STREAMS_H

#include "types.h"

namespace accelgen {

/// \brief Fork: copies every word to two consumers. The generator sizes the FIFO of
/// the shorter branch (the bypass) from the latency of the longer one.
/// \tparam CFG configuration: word_t, WORDS (words per sample).
/// Pragmas: PIPELINE II=1.
template <class CFG>
void duplicate(hls::stream<typename CFG::word_t>& in, hls::stream<typename CFG::word_t>& out_a,
               hls::stream<typename CFG::word_t>& out_b, const unsigned reps) {
    static_assert(CFG::WORDS >= 1, "empty stream");
duplicate_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
    duplicate_words:
        for (unsigned i = 0; i < CFG::WORDS; i++) {
#pragma HLS PIPELINE II = 1
            const typename CFG::word_t w = in.read();
            out_a.write(w);
            out_b.write(w);
        }
    }
}

/// \brief Channel concatenation of two feature maps of one code type: per pixel,
/// A_WORDS words of the first input, then B_WORDS words of the second.
/// \tparam CFG configuration: word_t, PIXELS, A_WORDS, B_WORDS.
/// Pragmas: PIPELINE II=1.
template <class CFG>
void concat(hls::stream<typename CFG::word_t>& in_a, hls::stream<typename CFG::word_t>& in_b,
            hls::stream<typename CFG::word_t>& out, const unsigned reps) {
    static_assert(CFG::A_WORDS >= 1 && CFG::B_WORDS >= 1, "empty input");
    const unsigned PER_PIXEL = CFG::A_WORDS + CFG::B_WORDS;
concat_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        unsigned w = 0;
    // Flattened (pixel, word) nest: iteration i = pixel * PER_PIXEL + w.
    concat_words:
        for (unsigned i = 0; i < CFG::PIXELS * PER_PIXEL; i++) {
#pragma HLS PIPELINE II = 1
            out.write(w < CFG::A_WORDS ? in_a.read() : in_b.read());
            if (++w == PER_PIXEL) w = 0;
        }
    }
}

#ifdef ACCELGEN_CSIM_FAST
/// \brief C simulation only: the gearbox below on native 64-bit limbs (the same words in,
/// the same words out).
template <class CFG>
void gearbox_native(hls::stream<ap_uint<CFG::IN_BITS> >& in, hls::stream<ap_uint<CFG::OUT_BITS> >& out,
                    const unsigned reps) {
    const unsigned IN_LIMBS = (CFG::IN_BITS + 63) / 64;
    const unsigned LIMBS = (CFG::IN_BITS + CFG::OUT_BITS + 63) / 64 + 2;
    for (unsigned rep = 0; rep < reps; rep++) {
        unsigned long long buffer[LIMBS] = {0};
        unsigned have = 0, nin = 0, nout = 0;
        while (nout < CFG::OUT_WORDS) {
            if (have < CFG::OUT_BITS && nin < CFG::IN_WORDS) {
                unsigned long long word[IN_LIMBS + 1];
                to_limbs<CFG::IN_BITS>(in.read(), word);
                if (CFG::IN_BITS % 64) word[IN_LIMBS - 1] &= (1ULL << (CFG::IN_BITS % 64)) - 1;
                const unsigned k0 = have / 64, off = have % 64;
                for (unsigned k = 0; k < IN_LIMBS; k++) {
                    buffer[k0 + k] |= word[k] << off;
                    if (off) buffer[k0 + k + 1] |= word[k] >> (64 - off);
                }
                have += CFG::IN_BITS;
                nin++;
            }
            if (have >= CFG::OUT_BITS || nin == CFG::IN_WORDS) {
                unsigned long long word[(CFG::OUT_BITS + 63) / 64];
                for (unsigned k = 0; k < (CFG::OUT_BITS + 63) / 64; k++) word[k] = buffer[k];
                if (CFG::OUT_BITS % 64) word[CFG::OUT_BITS / 64] &= (1ULL << (CFG::OUT_BITS % 64)) - 1;
                out.write(from_limbs<CFG::OUT_BITS>(word));
                const unsigned k0 = CFG::OUT_BITS / 64, off = CFG::OUT_BITS % 64;
                for (unsigned k = 0; k < LIMBS; k++) {
                    const unsigned long long lo = k + k0 < LIMBS ? buffer[k + k0] : 0;
                    const unsigned long long hi = k + k0 + 1 < LIMBS ? buffer[k + k0 + 1] : 0;
                    buffer[k] = off ? (lo >> off) | (hi << (64 - off)) : lo;
                }
                have = have > CFG::OUT_BITS ? have - CFG::OUT_BITS : 0;
                nout++;
            }
        }
    }
}
#endif

/// \brief The gearbox below when OUT_BITS is a multiple K of IN_BITS: each input word goes
/// to slot `slot` of the output word (a K-way select per slice, no variable shifter); the
/// word is written when full or when the input is exhausted (then zeros, as the general
/// gearbox pads). The same words in, the same words out as the general form.
template <class CFG>
void gearbox_widen(hls::stream<ap_uint<CFG::IN_BITS> >& in, hls::stream<ap_uint<CFG::OUT_BITS> >& out,
                   const unsigned reps) {
    const unsigned K = CFG::OUT_BITS / CFG::IN_BITS;
gearbox_widen_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        ap_uint<CFG::OUT_BITS> word = 0;
        unsigned slot = 0, nin = 0, nout = 0;
    gearbox_widen_words:
        while (nout < CFG::OUT_WORDS) {
#pragma HLS PIPELINE II = 1
            if (nin < CFG::IN_WORDS) {
                const ap_uint<CFG::IN_BITS> x = in.read();
            gearbox_widen_slots:
                for (unsigned j = 0; j < K; j++) {
#pragma HLS UNROLL
                    if (j == slot) word.range((j + 1) * CFG::IN_BITS - 1, j * CFG::IN_BITS) = x;
                }
                slot++;
                nin++;
            }
            if (slot == K || nin == CFG::IN_WORDS) {
                out.write(word);
                word = 0;
                slot = 0;
                nout++;
            }
        }
    }
}

/// \brief The gearbox below when IN_BITS is a multiple K of OUT_BITS: an input word is held
/// and its K slices written in turn (a K-way select, no variable shifter); after the input
/// is exhausted the rest of the output words are zeros, as the general gearbox pads.
template <class CFG>
void gearbox_narrow(hls::stream<ap_uint<CFG::IN_BITS> >& in, hls::stream<ap_uint<CFG::OUT_BITS> >& out,
                    const unsigned reps) {
    const unsigned K = CFG::IN_BITS / CFG::OUT_BITS;
gearbox_narrow_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        ap_uint<CFG::IN_BITS> held = 0;
        unsigned left = 0, slot = 0, nin = 0, nout = 0;
    gearbox_narrow_words:
        while (nout < CFG::OUT_WORDS) {
#pragma HLS PIPELINE II = 1
            if (left == 0 && nin < CFG::IN_WORDS) {
                held = in.read();
                left = K;
                slot = 0;
                nin++;
            }
            if (left > 0 || nin == CFG::IN_WORDS) {
                ap_uint<CFG::OUT_BITS> y = 0;
            gearbox_narrow_slots:
                for (unsigned j = 0; j < K; j++) {
#pragma HLS UNROLL
                    if (left > 0 && j == slot) y = held.range((j + 1) * CFG::OUT_BITS - 1, j * CFG::OUT_BITS);
                }
                out.write(y);
                if (left > 0) {
                    left--;
                    slot++;
                }
                nout++;
            }
        }
    }
}

/// \brief Gearbox: re-cuts a per-sample bit string from IN_BITS-wide words into
/// OUT_BITS-wide words, lowest bits first.
///
/// Per sample it reads IN_WORDS words and writes OUT_WORDS words. When the input holds
/// more bits than the output needs (AXI words padded at the end of a sample) the rest
/// is dropped; when it holds fewer (the last AXI output word) the output is padded with
/// zeros. Used as the stream width converter between kernels of different folding
/// (whole elements on both sides) and to pack / unpack AXI-Stream bus words.
/// When one width is a multiple of the other (every converter between foldings of the same
/// elements whose lane counts divide, and the bus adapters of power-of-two codes) it is
/// gearbox_widen / gearbox_narrow, which select slices instead of shifting by a variable
/// amount (a barrel shifter is the slow path at 250-300 MHz); otherwise the general form.
/// \tparam CFG configuration: IN_BITS, OUT_BITS, IN_WORDS, OUT_WORDS.
/// Pragmas: PIPELINE II=1; each iteration reads at most one word and writes at most one.
template <class CFG>
void gearbox(hls::stream<ap_uint<CFG::IN_BITS> >& in, hls::stream<ap_uint<CFG::OUT_BITS> >& out,
             const unsigned reps) {
    static_assert(CFG::IN_BITS >= 1 && CFG::OUT_BITS >= 1, "empty words");
    static_assert(CFG::IN_WORDS * CFG::IN_BITS + CFG::OUT_BITS > CFG::OUT_WORDS * CFG::OUT_BITS,
                  "the input does not fill the output words");
#ifdef ACCELGEN_CSIM_FAST
    gearbox_native<CFG>(in, out, reps);
    return;
#endif
    if (CFG::OUT_BITS % CFG::IN_BITS == 0) {
        gearbox_widen<CFG>(in, out, reps);
        return;
    }
    if (CFG::IN_BITS % CFG::OUT_BITS == 0) {
        gearbox_narrow<CFG>(in, out, reps);
        return;
    }
gearbox_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        ap_uint<CFG::IN_BITS + CFG::OUT_BITS> buffer = 0;
        unsigned have = 0, nin = 0, nout = 0;
    // Invariant: buffer holds `have` unread bits, lowest first, zeros above.
    gearbox_words:
        while (nout < CFG::OUT_WORDS) {
#pragma HLS PIPELINE II = 1
            if (have < CFG::OUT_BITS && nin < CFG::IN_WORDS) {
                buffer.range(have + CFG::IN_BITS - 1, have) = in.read();
                have += CFG::IN_BITS;
                nin++;
            }
            if (have >= CFG::OUT_BITS || nin == CFG::IN_WORDS) {
                out.write(buffer.range(CFG::OUT_BITS - 1, 0));
                buffer >>= CFG::OUT_BITS;
                have = have > CFG::OUT_BITS ? have - CFG::OUT_BITS : 0;
                nout++;
            }
        }
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_STREAMS_H

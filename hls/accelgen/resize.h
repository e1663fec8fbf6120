// accelgen HLS kernel library: nearest-neighbour upsampling (ONNX Resize / Upsample with
// whole factors), a streaming line-buffer kernel that only moves words.
#ifndef ACCELGEN_RESIZE_H
#define ACCELGEN_RESIZE_H

#include "types.h"

namespace accelgen {

/// \brief Nearest-neighbour upsampling of a channels-last feature map by whole factors:
/// output pixel (y, x) is input pixel (y / FH, x / FW). Words of PE lanes pass through
/// unchanged (no arithmetic on the codes, no dividers: counters only).
///
/// Each input row is read once, while the first of its FH output rows is emitted, and is
/// kept in a line buffer of one input row (IN_W * WORDS_PER_PIXEL words) for the other
/// FH - 1 output rows. Within that first output row the FW - 1 repeats of a pixel come
/// from a shift register of one pixel (WORDS_PER_PIXEL words), so the buffer is only
/// written during the first copy of a row and only read during the others: a buffer word
/// is read one output row (IN_W * FW * WORDS_PER_PIXEL words) after it is written.
/// \tparam CFG configuration: word_t (PE lanes of one code), WORDS_PER_PIXEL (channels /
///   PE), IN_H, IN_W (input rows and columns), FH, FW (the factors, >= 1).
/// Output rows of one pixel (IN_W == FW == 1) repeat the shift register instead, and
/// leave the buffer unused.
/// Pragmas: PIPELINE II=1 on the flattened loop (one output word per cycle, IN_H * FH *
/// IN_W * FW * WORDS_PER_PIXEL cycles per frame); DEPENDENCE inter false on the line
/// buffer, whose accesses to one address are at least one output row (>= 2 words) apart;
/// the shift register is partitioned into registers.
template <class CFG>
void upsample_nearest(hls::stream<typename CFG::word_t>& in, hls::stream<typename CFG::word_t>& out,
                      const unsigned reps) {
    static_assert(CFG::IN_H >= 1 && CFG::IN_W >= 1 && CFG::WORDS_PER_PIXEL >= 1, "empty feature map");
    static_assert(CFG::FH >= 1 && CFG::FW >= 1, "upsampling factors must be whole numbers >= 1");
    typedef typename CFG::word_t word_t;
    const unsigned NF = CFG::WORDS_PER_PIXEL;
    const unsigned ROW_WORDS = CFG::IN_W * NF;
    const bool PIXEL_ROWS = CFG::IN_W * CFG::FW == 1;  // an output row is one pixel
    word_t row[ROW_WORDS];
#pragma HLS DEPENDENCE variable = row inter false
    word_t pixel[NF];  // pixel[k]: the word emitted k + 1 words ago
#pragma HLS ARRAY_PARTITION variable = pixel complete

upsample_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        unsigned nf = 0, copy_x = 0, copy_y = 0, base = 0;  // base = input column * NF
    // Flattened (input row, copy_y < FH, input column, copy_x < FW, nf < NF) nest:
    // iteration i emits output word i. Invariant: base + nf is the buffer address of the
    // word being emitted; copy_y == 0 && copy_x == 0 exactly when it is read from the input.
    upsample_words:
        for (unsigned i = 0; i < CFG::IN_H * CFG::FH * CFG::IN_W * CFG::FW * NF; i++) {
#pragma HLS PIPELINE II = 1
            word_t w;
            if (copy_y == 0) {
                w = copy_x == 0 ? in.read() : pixel[NF - 1];
                if (copy_x == 0) row[base + nf] = w;
            } else {
                w = PIXEL_ROWS ? pixel[NF - 1] : row[base + nf];
            }
            out.write(w);
        upsample_shift:
            for (unsigned k = NF - 1; k > 0; k--) {
#pragma HLS UNROLL
                pixel[k] = pixel[k - 1];
            }
            pixel[0] = w;
            if (++nf == NF) {
                nf = 0;
                if (++copy_x == CFG::FW) {
                    copy_x = 0;
                    base += NF;
                    if (base == ROW_WORDS) {
                        base = 0;
                        if (++copy_y == CFG::FH) copy_y = 0;
                    }
                }
            }
        }
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_RESIZE_H

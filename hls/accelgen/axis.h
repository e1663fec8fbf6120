// accelgen HLS kernel library: the AXI-Stream boundary of an accelerator.
//
// Bus layout (the runtime's accelgen/runtime/packing.py packs and unpacks the same way):
// a BUS-bit word holds LANES = BUS / BITS codes, code i in bits [i*BITS, (i+1)*BITS),
// unused high bits zero; a sample (frame) starts on a new word and its last word is
// zero-padded. axis_read keeps the FIELD_BITS = LANES * BITS code bits of each beat and
// a gearbox (streams.h) re-cuts them into the first kernel's words; at the output a
// gearbox cuts the last kernel's words into FIELD_BITS fields and axis_write places them
// in beats. TLAST marks the last beat of the last sample of a call (one DMA transfer
// per batch).
#ifndef ACCELGEN_AXIS_H
#define ACCELGEN_AXIS_H

#include "types.h"

#if defined(__has_include)
#if __has_include(<ap_axi_sdata.h>)
#include <ap_axi_sdata.h>
#define ACCELGEN_VENDOR_AXIS 1
#endif
#endif

namespace accelgen {

#ifdef ACCELGEN_VENDOR_AXIS
/// \brief One AXI-Stream beat (the vendor's side-channel type where it exists).
template <unsigned BUS>
struct AxisBeat {
    typedef ap_axiu<BUS, 0, 0, 0> type;
};
#else
/// \brief One AXI-Stream beat: TDATA, TKEEP, TSTRB, TLAST (C-simulation model).
template <unsigned BUS>
struct AxisWordModel {
    ap_uint<BUS> data;
    ap_uint<BUS / 8> keep;
    ap_uint<BUS / 8> strb;
    ap_uint<1> last;
};
template <unsigned BUS>
struct AxisBeat {
    typedef AxisWordModel<BUS> type;
};
#endif

/// \brief Keeps the code field of each input beat (drops side channels and unused bits).
///
/// TLAST of the input is not checked: the kernel reads exactly reps * WORDS beats per call
/// (a fixed-size frame stream has no use for it, and a check would need a status register
/// the block design and driver read). The PYNQ driver sends exactly that many beats per
/// call, one DMA transfer per chunk of whole samples (the DMA raises TLAST on the transfer's
/// last beat, which is where this kernel stops); an input that is too short shows as a
/// timeout, which the driver reports and recovers from (DMA reset, overlay reload).
/// \tparam CFG configuration: BUS (bits), FIELD_BITS (code bits per beat), WORDS (beats
///   per sample).
/// Pragmas: PIPELINE II=1.
template <class CFG>
void axis_read(hls::stream<typename AxisBeat<CFG::BUS>::type>& in, hls::stream<ap_uint<CFG::FIELD_BITS> >& out,
               const unsigned reps) {
    static_assert(CFG::BUS % 8 == 0, "the bus is a whole number of bytes");
    static_assert(CFG::FIELD_BITS <= CFG::BUS, "the codes of a beat exceed the bus");
axis_read_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
    axis_read_words:
        for (unsigned i = 0; i < CFG::WORDS; i++) {
#pragma HLS PIPELINE II = 1
            out.write(in.read().data.range(CFG::FIELD_BITS - 1, 0));
        }
    }
}

/// \brief Places code fields in beats (high bits zero) with TKEEP/TSTRB all valid and
/// TLAST at the end of the batch.
/// \tparam CFG configuration: BUS (bits), FIELD_BITS (code bits per beat), WORDS (beats
///   per sample).
/// Pragmas: PIPELINE II=1.
template <class CFG>
void axis_write(hls::stream<ap_uint<CFG::FIELD_BITS> >& in, hls::stream<typename AxisBeat<CFG::BUS>::type>& out,
                const unsigned reps) {
    static_assert(CFG::BUS % 8 == 0, "the bus is a whole number of bytes");
    static_assert(CFG::FIELD_BITS <= CFG::BUS, "the codes of a beat exceed the bus");
axis_write_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
    axis_write_words:
        for (unsigned i = 0; i < CFG::WORDS; i++) {
#pragma HLS PIPELINE II = 1
            typename AxisBeat<CFG::BUS>::type beat;
            beat.data = ap_uint<CFG::BUS>(in.read());
            beat.keep = -1;
            beat.strb = -1;
            beat.last = (rep == reps - 1 && i == CFG::WORDS - 1) ? 1 : 0;
            out.write(beat);
        }
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_AXIS_H

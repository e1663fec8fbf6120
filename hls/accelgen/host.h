// accelgen HLS kernel library: host-side helpers of the testbench and the emulator
// (never synthesised): integer samples <-> AXI-Stream beats, vector files.
#ifndef ACCELGEN_HOST_H
#define ACCELGEN_HOST_H

#include <stdint.h>

#include <vector>

#include "axis.h"
#include "types.h"

namespace accelgen {

/// \brief Packs \p samples samples of \p elems integers each into AXI beats with the
/// bus layout of axis.h: BUS / CODE::bits codes per beat, a sample starts a new beat.
template <class CODE, unsigned BUS>
void pack_samples(const int64_t* values, unsigned samples, unsigned elems,
                  hls::stream<typename AxisBeat<BUS>::type>& out) {
    const unsigned lanes = BUS / CODE::bits, B = CODE::bits;
    const unsigned long long mask = B >= 64 ? ~0ULL : (1ULL << B) - 1;
    for (unsigned s = 0; s < samples; s++) {
        for (unsigned first = 0; first < elems; first += lanes) {
            unsigned long long limb[BUS / 64 + 2] = {0};
            for (unsigned i = 0; i < lanes && first + i < elems; i++) {
                const int64_t v = values[size_t(s) * elems + first + i];
                const unsigned long long raw = CODE::bipolar ? (v > 0 ? 1ULL : 0ULL) : ((unsigned long long)v & mask);
                const unsigned bit = i * B, k = bit / 64, off = bit % 64;
                limb[k] |= raw << off;
                if (off && off + B > 64) limb[k + 1] |= raw >> (64 - off);
            }
            typename AxisBeat<BUS>::type beat;
            beat.data = from_limbs<BUS>(limb);
            beat.keep = -1;
            beat.strb = -1;
            beat.last = (s == samples - 1 && first + lanes >= elems) ? 1 : 0;
            out.write(beat);
        }
    }
}

/// \brief Inverse of pack_samples. Returns false when the stream runs short, a TLAST is
/// missing or misplaced (it must mark the final beat of the call), or unused bits are set.
template <class CODE, unsigned BUS>
bool unpack_samples(hls::stream<typename AxisBeat<BUS>::type>& in, unsigned samples, unsigned elems,
                    int64_t* values) {
    const unsigned lanes = BUS / CODE::bits;
    bool ok = true;
    for (unsigned s = 0; s < samples; s++) {
        for (unsigned first = 0; first < elems; first += lanes) {
            if (in.empty()) return false;
            const typename AxisBeat<BUS>::type beat = in.read();
            const bool final_beat = s == samples - 1 && first + lanes >= elems;
            if (bool(beat.last) != final_beat) ok = false;
            unsigned long long limb[BUS / 64 + 2] = {0};
            to_limbs<BUS>(beat.data, limb);
            const unsigned used = first + lanes <= elems ? lanes : elems - first;
            long long decoded[BUS / CODE::bits];
            unpack_limbs<CODE, BUS / CODE::bits>(limb, decoded);
            for (unsigned i = 0; i < used; i++) values[size_t(s) * elems + first + i] = decoded[i];
            if (used * CODE::bits < BUS && beat.data.range(BUS - 1, used * CODE::bits) != 0) ok = false;
        }
    }
    return ok;
}

}  // namespace accelgen

#endif  // ACCELGEN_HOST_H

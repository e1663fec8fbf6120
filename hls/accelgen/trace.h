// accelgen HLS kernel library: per-layer tracing for C simulation (never synthesised).
//
// The generated top calls trace_stream() on the output stream of every layer inside
// `#ifndef __SYNTHESIS__`. C simulation runs a DATAFLOW region's processes one after
// the other, so when the call runs the producer has written every word and the consumer
// has read none: the tap drains the stream, decodes each lane, and writes the words
// back unchanged. With no Trace attached it does nothing.
#ifndef ACCELGEN_TRACE_H
#define ACCELGEN_TRACE_H

#ifndef __SYNTHESIS__
#include <stdint.h>

#include <vector>

#include "types.h"

namespace accelgen {

/// \brief Values of every traced layer output, in stream order (samples, then
/// channels-last elements), one vector per traced layer.
struct Trace {
    std::vector<std::vector<int64_t> > layers;
    explicit Trace(unsigned count) : layers(count) {}
};

/// \brief Records the elements of \p stream into \p trace (layer \p index) and leaves
/// the stream as it was.
/// \tparam CODE  element encoding of the stream
/// \tparam LANES elements per word
template <class CODE, unsigned LANES>
void trace_stream(hls::stream<typename Word<CODE, LANES>::type>& stream, Trace* trace, unsigned index) {
    if (trace == 0) return;
    std::vector<typename Word<CODE, LANES>::type> words;
    while (!stream.empty()) words.push_back(stream.read());
    std::vector<int64_t>& out = trace->layers.at(index);
    for (size_t w = 0; w < words.size(); w++) {
        for (unsigned i = 0; i < LANES; i++) {
            out.push_back(CODE::decode(lane<CODE, LANES>(words[w], i)).to_int64());
        }
        stream.write(words[w]);
    }
}

}  // namespace accelgen

#endif  // __SYNTHESIS__
#endif  // ACCELGEN_TRACE_H

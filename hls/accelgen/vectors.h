// accelgen HLS kernel library: test-vector files of the C testbench (plain C++, no HLS
// types, never synthesised). A vector file is a flat array of little-endian two's
// complement integers of 1, 2, 4 or 8 bytes.
#ifndef ACCELGEN_VECTORS_H
#define ACCELGEN_VECTORS_H

#include <stdint.h>
#include <stdio.h>

#include <vector>

namespace accelgen {

/// Reads a vector file of \p bytes-byte integers; false if it cannot be opened or its
/// size is not a whole number of elements.
inline bool read_vector(const char* path, unsigned bytes, std::vector<int64_t>& values) {
    FILE* f = fopen(path, "rb");
    if (!f) return false;
    values.clear();
    unsigned char buf[8];
    size_t got;
    while ((got = fread(buf, 1, bytes, f)) == bytes) {
        uint64_t u = 0;
        for (unsigned b = 0; b < bytes; b++) u |= uint64_t(buf[b]) << (8 * b);
        if (bytes < 8 && ((u >> (8 * bytes - 1)) & 1)) u |= ~uint64_t(0) << (8 * bytes);
        values.push_back(int64_t(u));
    }
    fclose(f);
    return got == 0;
}

/// Writes values as 8-byte little-endian integers.
inline bool write_vector(const char* path, const int64_t* values, size_t count) {
    FILE* f = fopen(path, "wb");
    if (!f) return false;
    bool ok = true;
    for (size_t i = 0; i < count && ok; i++) {
        unsigned char buf[8];
        const uint64_t u = uint64_t(values[i]);
        for (unsigned b = 0; b < 8; b++) buf[b] = (unsigned char)(u >> (8 * b));
        ok = fwrite(buf, 1, 8, f) == 8;
    }
    return fclose(f) == 0 && ok;
}

}  // namespace accelgen

#endif  // ACCELGEN_VECTORS_H

// accelgen HLS kernel library: the sliding window generator (line buffer) that turns a
// channels-last feature map stream into the stream of convolution / pooling windows.
#ifndef ACCELGEN_SWG_H
#define ACCELGEN_SWG_H

#include "types.h"

namespace accelgen {

/// \brief Sliding window generator with stride, dilation and padding.
///
/// Input: per sample IN_H * IN_W pixels, each CHANNELS / LANES words of LANES channels
/// (row-major, channels innermost). Output: for every output pixel (row-major) the
/// window's words, in one of two orders:
///   * convolution order (DEPTHWISE == false): tap (kh, kw) major, then channel word;
///     a matrix-vector unit reads it as one vector of KH * KW * CHANNELS elements;
///   * depthwise order (DEPTHWISE == true): channel word major, then tap; depthwise
///     units and pools reduce the KH * KW consecutive words of one channel group.
/// Positions outside the image emit PAD_RAW in every lane (the zero point for
/// convolutions and average pools, the smallest code for max pools).
///
/// PIXELS_PER_CYCLE (PPC) output pixels of a row are emitted together: each output word
/// holds PPC words of LANES lanes, word j (lanes [j * LANES, (j + 1) * LANES)) belonging
/// to output pixel ox = g * PPC + j of pixel group g, all at the same tap and channel
/// word; a row takes OUT_W / PPC * KH * KW * CF emission cycles. With PPC > 1 the line
/// buffer's x dimension is partitioned cyclically by PPC * SW, so the PPC reads of one
/// cycle (x positions SW apart) fall in distinct banks.
///
/// TAPS_PER_WORD (TPW) > 1 (convolution order, one pixel per cycle, LANES == CHANNELS)
/// emits TPW consecutive taps a word, in the (kh, kw, channel) order: COLS = TPW taps of
/// one kernel row when TPW | KW, or RPW = TPW / KW whole kernel rows when TPW = KW * RPW
/// with RPW | KH (COLS = KW). Word (kh, g) of a pixel holds taps (kh + q, g * COLS + u)
/// for q < RPW, u < COLS in lanes [(q * COLS + u) * LANES, ...), and a row takes
/// OUT_W * KH * KW / TPW cycles. The COLS taps of a row sit DW apart in x; the line
/// buffer's x dimension is partitioned cyclically by BANKS = COLS * DW, so they fall in
/// distinct banks: each bank is read once a cycle (bank b at the one position of
/// [base, base + BANKS) it holds, base the first tap's x) and each tap selects its bank
/// (base + u * DW mod BANKS). base mod BANKS and base / BANKS are counters (no division):
/// the next group of taps is BANKS further (the same bank, the next address), the next
/// pixel SW further. With RPW > 1 the row slots are partitioned too (every slot is read
/// at the same bank addresses, each kernel row selects its slot).
///
/// The line buffer holds (KH - 1) * DH + 1 rows. Before emitting output row oy it reads
/// input rows up to the last one that row needs (rows a stride skips are read and
/// overwritten); after the last output row it drains the rows no window uses.
///
/// \tparam CFG configuration: code, LANES, CHANNELS, IN_H, IN_W, OUT_H, OUT_W, KH, KW,
///   SH, SW, DH, DW, PAD_T, PAD_L, PAD_RAW, DEPTHWISE, PIXELS_PER_CYCLE, TAPS_PER_WORD.
///
/// Line buffer slots are wrapping counters (no `%` by ROWS, which is rarely a power of
/// two, inside the pipelined loops): row r lives in slot r mod ROWS.
///
/// Pragmas: PIPELINE II=1 on the row read, emission and drain loops; LOOP_TRIPCOUNT on
/// the two loops whose trip count depends on the output row (fill, drain); UNROLL of the
/// PPC reads (TPW taps, SLOTS * BANKS memory reads) of one emission; ARRAY_PARTITION
/// cyclic of the line buffer's x dimension by PPC * SW when PPC > 1, by COLS * DW when
/// TPW > 1, and of its row slots (every slot a memory) when RPW > 1.
template <class CFG>
void sliding_window(
    hls::stream<typename Word<typename CFG::code, CFG::LANES>::type>& in,
    hls::stream<typename Word<typename CFG::code, CFG::LANES * CFG::PIXELS_PER_CYCLE * CFG::TAPS_PER_WORD>::type>& out,
    const unsigned reps) {
    static_assert(CFG::CHANNELS % CFG::LANES == 0, "LANES must divide the channels");
    static_assert(CFG::KH >= 1 && CFG::KW >= 1 && CFG::SH >= 1 && CFG::SW >= 1, "empty kernel or stride");
    static_assert(CFG::DH >= 1 && CFG::DW >= 1, "dilation is at least 1");
    static_assert(CFG::OUT_H >= 1 && CFG::OUT_W >= 1, "empty output");
    static_assert(CFG::PIXELS_PER_CYCLE >= 1 && CFG::OUT_W % CFG::PIXELS_PER_CYCLE == 0,
                  "PIXELS_PER_CYCLE must divide the output width");
    static_assert(CFG::TAPS_PER_WORD >= 1 && (CFG::KW % CFG::TAPS_PER_WORD == 0 ||
                                              (CFG::TAPS_PER_WORD % CFG::KW == 0 &&
                                               CFG::KH % (CFG::TAPS_PER_WORD / CFG::KW) == 0)),
                  "TAPS_PER_WORD must divide KW, or be KW times a divisor of KH");
    static_assert(CFG::TAPS_PER_WORD == 1 || (!CFG::DEPTHWISE && CFG::PIXELS_PER_CYCLE == 1 &&
                                              CFG::LANES == CFG::CHANNELS),
                  "several taps a word: convolution order, one pixel per cycle, every channel a tap");
    typedef typename Word<typename CFG::code, CFG::LANES>::type word_t;
    const unsigned PPC = CFG::PIXELS_PER_CYCLE;
    const unsigned TPW = CFG::TAPS_PER_WORD;
    const unsigned COLS = TPW < CFG::KW ? TPW : CFG::KW;  // taps of one kernel row a word
    const unsigned RPW = TPW / COLS;                       // kernel rows a word
    typedef typename Word<typename CFG::code, CFG::LANES * CFG::PIXELS_PER_CYCLE * CFG::TAPS_PER_WORD>::type out_word_t;
    const unsigned CF = CFG::CHANNELS / CFG::LANES;
    const int ROWS = (CFG::KH - 1) * CFG::DH + 1;
    const int IN_H = CFG::IN_H, IN_W = CFG::IN_W;
    // Rows read before one output row: all of the first window's, then SH (never more than the image).
    const int FILL_STEP = ROWS > int(CFG::SH) ? ROWS : int(CFG::SH);
    const int FILL_MAX = FILL_STEP < IN_H ? FILL_STEP : IN_H;
    // Rows below the last output row's window, read and dropped.
    const int LAST_USED = (int(CFG::OUT_H) - 1) * int(CFG::SH) - int(CFG::PAD_T) + (int(CFG::KH) - 1) * int(CFG::DH);
    const int DRAIN = LAST_USED >= IN_H - 1 ? 0 : IN_H - 1 - LAST_USED;
    // Slot of row 0 - PAD_T (the first output row's top row) and the step per output row, both mod ROWS.
    const int TOP_SLOT0 = ((-int(CFG::PAD_T)) % ROWS + ROWS) % ROWS;
    const int SH_SLOTS = int(CFG::SH) % ROWS;

    // one bank per pixel of a group and stride step, or per tap of a kernel row in a word and dilation step (a
    // factor of 1: no partition at one pixel and one tap); x rounded up to whole banks, so every bank has every
    // address
    const unsigned BANKS = PPC > 1 ? PPC * CFG::SW : COLS > 1 ? COLS * CFG::DW : 1;
    // the row slots each a memory of their own when a word takes several kernel rows
    const unsigned SLOTS = RPW > 1 ? unsigned(ROWS) : 1;
    const int BANK_WORDS = int((CFG::IN_W + BANKS - 1) / BANKS);
    // the first tap's x of an output row's first pixel, -PAD_L, as (address, bank): floor division
    const int BASE_ADDR0 = -int((CFG::PAD_L + BANKS - 1) / BANKS);
    const int BASE_BANK0 = -int(CFG::PAD_L) - BASE_ADDR0 * int(BANKS);
    word_t rows[ROWS][BANK_WORDS * BANKS][CF];
#pragma HLS BIND_STORAGE variable = rows type = ram_2p
#pragma HLS ARRAY_PARTITION variable = rows cyclic factor = BANKS dim = 2
#pragma HLS ARRAY_PARTITION variable = rows cyclic factor = SLOTS dim = 1
    const word_t pad = replicate<typename CFG::code, CFG::LANES>(typename CFG::code::raw_t(CFG::PAD_RAW));

swg_samples:
    for (unsigned rep = 0; rep < reps; rep++) {
        int next_row = 0;
        int fill_slot = 0;           // next_row mod ROWS
        int top_slot = TOP_SLOT0;    // top mod ROWS (top may be negative: padding rows)
    swg_output_rows:
        for (int oy = 0; oy < int(CFG::OUT_H); oy++) {
            const int top = oy * int(CFG::SH) - int(CFG::PAD_T);
            int last = top + (int(CFG::KH) - 1) * int(CFG::DH);
            if (last > IN_H - 1) last = IN_H - 1;
        swg_fill:
            while (next_row <= last) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = FILL_MAX
                const int slot = fill_slot;
                unsigned x = 0, cf = 0;
            // Flattened (x, cf) nest of one input row.
            swg_read_row:
                for (unsigned i = 0; i < CFG::IN_W * CF; i++) {
#pragma HLS PIPELINE II = 1
                    rows[slot][x][cf] = in.read();
                    if (++cf == CF) {
                        cf = 0;
                        x++;
                    }
                }
                next_row++;
                if (++fill_slot == ROWS) fill_slot = 0;
            }
            // Emission counters: ox (the first pixel of the group) outermost; (kh, kw, cf) or (cf, kh, kw) inside;
            // with TPW > 1 the first tap's x, ox * SW - PAD_L + kw * DW, as BANKS * (base_addr + kw / COLS) + base_bank.
            unsigned ox = 0, kh = 0, kw = 0, cf = 0;
            int base_addr = BASE_ADDR0, base_bank = BASE_BANK0, tap_group = 0;
        swg_emit:
            for (unsigned i = 0; i < CFG::OUT_W / PPC * (CFG::KH * CFG::KW / TPW) * CF; i++) {
#pragma HLS PIPELINE II = 1
                const int iy = top + int(kh * CFG::DH);
                const bool row_inside = iy >= 0 && iy < IN_H;
                int row_slot = top_slot + int(kh * CFG::DH);  // kh * DH <= ROWS - 1: one wrap at most
                if (row_slot >= ROWS) row_slot -= ROWS;
                out_word_t group = 0;
                if (TPW > 1) {
                    word_t banked[SLOTS][BANKS];
#pragma HLS ARRAY_PARTITION variable = banked complete dim = 0
                swg_slots:
                    for (unsigned r = 0; r < SLOTS; r++) {
#pragma HLS UNROLL
                    swg_banks:
                        for (unsigned b = 0; b < BANKS; b++) {
#pragma HLS UNROLL
                            // bank b's position in [base, base + BANKS): this group's address, the next below base_bank
                            int addr = base_addr + tap_group + (int(b) < base_bank ? 1 : 0);
                            if (addr < 0) addr = 0;  // only padding taps read outside the buffer
                            if (addr > BANK_WORDS - 1) addr = BANK_WORDS - 1;
                            banked[r][b] = rows[SLOTS > 1 ? int(r) : row_slot][addr * int(BANKS) + int(b)][0];
                        }
                    }
                swg_rows:
                    for (unsigned q = 0; q < RPW; q++) {
#pragma HLS UNROLL
                        const int iy_q = iy + int(q * CFG::DH);
                        const bool row_q_inside = iy_q >= 0 && iy_q < IN_H;
                        int slot = 0;
                        if (SLOTS > 1) {
                            slot = row_slot + int(q * CFG::DH);  // (kh + q) * DH <= ROWS - 1: one wrap at most
                            if (slot >= ROWS) slot -= ROWS;
                        }
                    swg_taps:
                        for (unsigned u = 0; u < COLS; u++) {
#pragma HLS UNROLL
                            const int ix = int(ox * CFG::SW) - int(CFG::PAD_L) + int((kw + u) * CFG::DW);
                            const bool inside = row_q_inside && ix >= 0 && ix < IN_W;
                            int b = base_bank + int(u * CFG::DW);  // u * DW < BANKS: one wrap at most
                            if (b >= int(BANKS)) b -= int(BANKS);
                            const word_t w = inside ? banked[slot][b] : pad;
                            group |= out_word_t(w) << ((q * COLS + u) * CFG::LANES * CFG::code::bits);
                        }
                    }
                } else {
                swg_group:
                    for (unsigned j = 0; j < PPC; j++) {
#pragma HLS UNROLL
                        const int ix = int((ox + j) * CFG::SW) - int(CFG::PAD_L) + int(kw * CFG::DW);
                        const bool inside = row_inside && ix >= 0 && ix < IN_W;
                        const word_t w = inside ? rows[row_slot][ix][cf] : pad;
                        if (PPC == 1) {
                            group = w;
                        } else {
                            group |= out_word_t(w) << (j * CFG::LANES * CFG::code::bits);
                        }
                    }
                }
                out.write(group);
                if (CFG::DEPTHWISE) {
                    if (++kw == CFG::KW) {
                        kw = 0;
                        if (++kh == CFG::KH) {
                            kh = 0;
                            if (++cf == CF) {
                                cf = 0;
                                ox += PPC;
                            }
                        }
                    }
                } else {
                    if (++cf == CF) {
                        cf = 0;
                        kw += COLS;
                        tap_group++;
                        if (kw == CFG::KW) {
                            kw = 0;
                            tap_group = 0;
                            kh += RPW;
                            if (kh == CFG::KH) {
                                kh = 0;
                                ox += PPC;
                                base_addr += int(CFG::SW / BANKS);  // the next pixel's first tap, SW further
                                base_bank += int(CFG::SW % BANKS);
                                if (base_bank >= int(BANKS)) {
                                    base_bank -= int(BANKS);
                                    base_addr++;
                                }
                            }
                        }
                    }
                }
            }
            top_slot += SH_SLOTS;
            if (top_slot >= ROWS) top_slot -= ROWS;
        }
    swg_drain:
        for (; next_row < IN_H; next_row++) {
#pragma HLS LOOP_TRIPCOUNT min = DRAIN max = DRAIN
        swg_drain_row:
            for (unsigned i = 0; i < CFG::IN_W * CF; i++) {
#pragma HLS PIPELINE II = 1
                in.read();
            }
        }
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_SWG_H

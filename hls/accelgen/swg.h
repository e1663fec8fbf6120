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
/// The line buffer holds BUFFER_ROWS = (KH - 1) * DH + 1 + SH rows, used circularly (row r in
/// slot r mod BUFFER_ROWS): the rows of the output row being emitted and the SH rows the next
/// one adds. One pipelined loop (II=1) per sample reads and emits at once: each iteration
/// reads one input word if the slot of its row is free (the row is below top + BUFFER_ROWS,
/// top the emitted output row's first row: the row that slot held is no longer needed; any
/// row once every output row is emitted) and emits one window word if every row of the
/// emitted output row is in. So the next output row's rows are read while this row's
/// windows are emitted, and a sample takes about max(reads, emissions) plus the first
/// window's rows (accelgen.kernels.conv.Window.cycles replays this schedule).
/// In a dataflow pipeline neither side waits for the other: when both would act in one
/// iteration the read waits for no input word and the emission for no room in the output
/// stream (a skipped one is retried the next iteration); alone, each blocks (nothing else
/// to do; with the buffer full an emission can always act). So an emission never waits for
/// a read it does not need and a read never for an emission: the generator deadlocks in no
/// pipeline (depth-2 FIFOs, forks with bypass FIFOs) where a reads-then-emits one does not.
/// The loop ends when the sample's last word is read and its last window emitted.
/// With -DACCELGEN_SWG_COUNT the C model counts the loop's iterations in swg_iterations()
/// and keeps the last sample's iteration of its first emission in swg_first_window() (tests
/// compare them with the priced cycles and the first window's lag).
///
/// \tparam CFG configuration: code, LANES, CHANNELS, IN_H, IN_W, OUT_H, OUT_W, KH, KW,
///   SH, SW, DH, DW, PAD_T, PAD_L, PAD_RAW, DEPTHWISE, PIXELS_PER_CYCLE, TAPS_PER_WORD.
///
/// Line buffer slots are wrapping counters (no `%` by BUFFER_ROWS, which is rarely a power
/// of two, inside the pipelined loop).
///
/// Pragmas: PIPELINE II=1 on the sample loop and LOOP_TRIPCOUNT (its trip count depends on
/// the schedule: between max(reads, emissions) and their sum); DEPENDENCE intra false on the
/// line buffer (an iteration writes a row its emission does not read; across iterations the
/// dependence is real: a row's last word is written the iteration before its first window
/// reads it); UNROLL of the PPC reads (TPW taps, SLOTS * BANKS memory reads) of one
/// emission; ARRAY_PARTITION cyclic of the line buffer's x dimension by PPC * SW when
/// PPC > 1, by COLS * DW when TPW > 1, and of its row slots (every slot a memory) when
/// RPW > 1.
#ifdef ACCELGEN_SWG_COUNT
inline unsigned long long& swg_iterations() {
    static unsigned long long n = 0;
    return n;
}
inline unsigned long long& swg_first_window() {
    static unsigned long long n = 0;
    return n;
}
#endif

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
    const int EXTENT = (CFG::KH - 1) * CFG::DH + 1;  // rows of one window
    const int ROWS = EXTENT + int(CFG::SH);            // BUFFER_ROWS
    const int IN_H = CFG::IN_H, IN_W = CFG::IN_W;
    const int READS = IN_H * IN_W * int(CF);
    const int EMITS = int(CFG::OUT_H * (CFG::OUT_W / PPC) * (CFG::KH * CFG::KW / TPW) * CF);
    const int TRIPS_MIN = READS > EMITS ? READS : EMITS;
    const int TRIPS_MAX = READS + EMITS;
    // Slot of row 0 - PAD_T (the first output row's top row), mod ROWS; the step per output row, SH < ROWS.
    const int TOP_SLOT0 = ((-int(CFG::PAD_T)) % ROWS + ROWS) % ROWS;
    // The last input row the first output row needs.
    const int NEED0 = EXTENT - 1 - int(CFG::PAD_T) < IN_H - 1 ? EXTENT - 1 - int(CFG::PAD_T) : IN_H - 1;

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
        // Read side: the row being read (rows below it are in) and its slot, the word's (x, cf) in it.
        int read_row = 0, read_slot = 0;
        unsigned rx = 0, rcf = 0;
        // Emission side: output row oy, its top row (negative in the padding) and top's slot, the last input
        // row it needs, and the rows below read_limit (top + ROWS: their slots are free; IN_H once all is
        // emitted). Inside a row: ox (the first pixel of the group) outermost, (kh, kw, cf) or (cf, kh, kw)
        // inside; with TPW > 1 the first tap's x, ox * SW - PAD_L + kw * DW, as
        // BANKS * (base_addr + kw / COLS) + base_bank.
        int oy = 0, top = -int(CFG::PAD_T), top_slot = TOP_SLOT0, need = NEED0, read_limit = ROWS - int(CFG::PAD_T);
        unsigned ox = 0, kh = 0, kw = 0, cf = 0;
        int base_addr = BASE_ADDR0, base_bank = BASE_BANK0, tap_group = 0;
#ifdef ACCELGEN_SWG_COUNT
        unsigned long long iteration = 0;
#endif
    swg_stream:
        while (read_row < IN_H || oy < int(CFG::OUT_H)) {
#pragma HLS PIPELINE II = 1
#pragma HLS LOOP_TRIPCOUNT min = TRIPS_MIN max = TRIPS_MAX
#pragma HLS DEPENDENCE variable = rows intra false
            const bool can_read = read_row < IN_H && read_row < read_limit;
            const bool can_emit = oy < int(CFG::OUT_H) && read_row > need;
#ifdef ACCELGEN_SWG_COUNT
            if (can_emit && oy == 0 && ox == 0 && kh == 0 && kw == 0 && cf == 0) swg_first_window() = iteration;
            swg_iterations()++;
            iteration++;
#endif
            if (can_read && (!can_emit || !in.empty())) {
                rows[read_slot][rx][rcf] = in.read();
                if (++rcf == CF) {
                    rcf = 0;
                    if (++rx == unsigned(IN_W)) {
                        rx = 0;
                        read_row++;
                        if (++read_slot == ROWS) read_slot = 0;
                    }
                }
            }
            if (can_emit && (!can_read || !out.full())) {
                const int iy = top + int(kh * CFG::DH);
                const bool row_inside = iy >= 0 && iy < IN_H;
                int row_slot = top_slot + int(kh * CFG::DH);  // kh * DH <= EXTENT - 1 < ROWS: one wrap at most
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
                            slot = row_slot + int(q * CFG::DH);  // (kh + q) * DH <= EXTENT - 1: one wrap at most
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
                if (ox == CFG::OUT_W) {  // the output row's last window: on to the next row
                    ox = 0;
                    base_addr = BASE_ADDR0;
                    base_bank = BASE_BANK0;
                    oy++;
                    top += int(CFG::SH);
                    top_slot += int(CFG::SH);
                    if (top_slot >= ROWS) top_slot -= ROWS;
                    need = top + EXTENT - 1 < IN_H - 1 ? top + EXTENT - 1 : IN_H - 1;
                    read_limit = oy == int(CFG::OUT_H) ? IN_H : top + ROWS;
                }
            }
        }
    }
}

}  // namespace accelgen

#endif  // ACCELGEN_SWG_H

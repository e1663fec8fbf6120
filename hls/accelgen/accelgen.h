// accelgen HLS kernel library: everything a generated top includes.
//
// Header-only, written against ap_int.h / hls_stream.h (from $XILINX_HLS/include, or the
// ap_types that the hls4ml distribution installs for C simulation). One kernel per layer
// class, each configured by one config struct (see the \tparam docs of each kernel).
#ifndef ACCELGEN_ACCELGEN_H
#define ACCELGEN_ACCELGEN_H

#include "axis.h"
#include "eltwise.h"
#include "mac.h"
#include "mvau.h"
#include "pool.h"
#include "requant.h"
#include "resize.h"
#include "streams.h"
#include "swg.h"
#include "trace.h"
#include "tt.h"
#include "types.h"

#endif  // ACCELGEN_ACCELGEN_H

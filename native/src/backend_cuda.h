// The cuda backend's extras beyond backend.h (built only with XFERSTATE_WITH_CUDA).
#pragma once

#include <cstdint>
#include <string>

namespace xfer::cuda {

// Whether a CUDA device can be used here, and if not, why (one line).
bool deviceAvailable(std::string* why);

// The baseline the bench compares against: one contiguous cudaMemcpyAsync device-to-device of
// `bytes` bytes, `reps` times, timed with CUDA events. GB/s of bytes moved one way.
double contiguousCopyGBps(uint64_t bytes, int reps);

}  // namespace xfer::cuda

// Kernels of the cuda backend (backend_cuda_kernels.cu, compiled by nvcc), called from the host
// code in backend_cuda.cc, which g++ compiles against the CUDA runtime headers.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace xfer::cuda {

// One contiguous piece of a transfer: `length` bytes from `src` to `dst`, both device-accessible
// (VRAM, peer VRAM opened through an IPC handle, or pinned host memory mapped into the GPU).
struct CopyTile {
  uint64_t src;
  uint64_t dst;
  uint64_t length;
};

constexpr uint64_t kTileBytes = 64 * 1024;  // descriptors are cut into tiles of at most this

// Launch shape of the gather copy for large tiles: `threads` per CTA (256, 512 or 1024),
// `ctasPerSm` CTAs per SM at most, `unroll` 16-byte loads in flight per thread (4 or 8),
// `streaming` the evict-first cache hint. The default is the measured one (docs/performance.md);
// $XFERSTATE_CUDA_COPY ("threads:ctasPerSm:unroll:streaming", e.g. "512:4:4:0") overrides it for
// tuning runs.
struct GatherCopyConfig {
  int threads = 512;
  int ctasPerSm = 4;
  int unroll = 4;
  bool streaming = false;
};

// Parses "threads:ctasPerSm:unroll:streaming"; false (and *out untouched) when malformed.
bool parseGatherCopyConfig(const char* text, GatherCopyConfig* out);

// The whole block list as ONE launch: CTAs take tiles in a grid-stride loop. `cancel` (device
// memory) is read once per tile; once it is non-zero no further tile starts. `smallTiles` (mean
// tile <= 8 KiB) picks 128-thread CTAs, else `large` gives the shape.
cudaError_t launchGatherCopy(const CopyTile* tiles, uint32_t tileCount, const volatile uint32_t* cancel, bool smallTiles,
                             int smCount, const GatherCopyConfig& large, cudaStream_t stream);

// Pattern kernels: byte i of [dst, dst+length) is byte (i % 8) of `word` (little-endian).
cudaError_t launchFillPattern(uint8_t* dst, uint64_t length, uint64_t word, int smCount, cudaStream_t stream);
// Adds to *mismatches the number of 8-byte words that differ (a trailing partial word counts
// as one word).
cudaError_t launchVerifyPattern(const uint8_t* src, uint64_t length, uint64_t word, unsigned long long* mismatches,
                                int smCount, cudaStream_t stream);

}  // namespace xfer::cuda

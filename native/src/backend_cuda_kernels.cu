// Copy and pattern kernels of the cuda backend. See backend_cuda_kernels.h.
#include "backend_cuda_kernels.h"

#include <cstdio>

namespace xfer::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kUnroll = 4;

__device__ void copyBytes(const uint8_t* src, uint8_t* dst, uint64_t length) {
  for (uint64_t i = threadIdx.x; i < length; i += blockDim.x) dst[i] = src[i];
}

// 16-byte vector copy with Unroll loads in flight per thread before the stores: enough
// memory-level parallelism for HBM3e at full occupancy. Streaming: the .cs (evict-first) cache
// hint on loads and stores, for bytes that are not read again soon.
template <int Unroll, bool Streaming>
__device__ void copyTile(const uint8_t* src, uint8_t* dst, uint64_t length) {
  if (((reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst)) & 15) != 0) {
    copyBytes(src, dst, length);
    return;
  }
  const uint4* s = reinterpret_cast<const uint4*>(src);
  uint4* d = reinterpret_cast<uint4*>(dst);
  const uint64_t vectors = length / 16;
  uint64_t i = threadIdx.x;
  const uint64_t stride = static_cast<uint64_t>(blockDim.x) * Unroll;
  for (; i + (Unroll - 1) * blockDim.x < vectors; i += stride) {
    uint4 v[Unroll];
#pragma unroll
    for (int u = 0; u < Unroll; ++u) v[u] = Streaming ? __ldcs(s + i + u * blockDim.x) : s[i + u * blockDim.x];
#pragma unroll
    for (int u = 0; u < Unroll; ++u) {
      if constexpr (Streaming) {
        __stcs(d + i + u * blockDim.x, v[u]);
      } else {
        d[i + u * blockDim.x] = v[u];
      }
    }
  }
  for (; i < vectors; i += blockDim.x) d[i] = s[i];
  const uint64_t tail = vectors * 16;
  if (tail < length) copyBytes(src + tail, dst + tail, length - tail);
}

// One CTA per tile, tiles taken in a grid-stride loop. The next tile's descriptor and the cancel
// word are loaded before the current tile is copied, so their latency hides behind the copy; no
// barrier: the cancel word only goes 0 -> 1 during a launch, so each warp may decide alone (a
// cancelled transfer's bytes are unspecified anyway).
template <int Threads, int Unroll = kUnroll, bool Streaming = false>
__global__ void __launch_bounds__(Threads) gatherCopyKernel(const CopyTile* tiles, uint32_t tileCount,
                                                            const volatile uint32_t* cancel) {
  uint32_t t = blockIdx.x;
  if (t >= tileCount || *cancel != 0) return;
  CopyTile cur = tiles[t];
  for (;;) {
    const uint32_t next = t + gridDim.x;
    CopyTile following{};
    if (next < tileCount) following = tiles[next];
    const uint32_t stop = *cancel;
    copyTile<Unroll, Streaming>(reinterpret_cast<const uint8_t*>(cur.src), reinterpret_cast<uint8_t*>(cur.dst), cur.length);
    if (next >= tileCount || stop != 0) return;
    t = next;
    cur = following;
  }
}

__device__ uint8_t patternByte(uint64_t word, uint64_t i) { return static_cast<uint8_t>(word >> (8 * (i & 7))); }

__global__ void __launch_bounds__(kThreads) fillKernel(uint8_t* dst, uint64_t length, uint64_t word) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  const uint64_t first = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if ((reinterpret_cast<uintptr_t>(dst) & 7) == 0) {
    uint64_t* d = reinterpret_cast<uint64_t*>(dst);
    const uint64_t words = length / 8;
    for (uint64_t i = first; i < words; i += stride) d[i] = word;
    for (uint64_t i = words * 8 + first; i < length; i += stride) dst[i] = patternByte(word, i);
  } else {
    for (uint64_t i = first; i < length; i += stride) dst[i] = patternByte(word, i);
  }
}

__global__ void __launch_bounds__(kThreads) verifyKernel(const uint8_t* src, uint64_t length, uint64_t word,
                                                         unsigned long long* mismatches) {
  const uint64_t stride = static_cast<uint64_t>(gridDim.x) * blockDim.x;
  const uint64_t first = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const uint64_t words = (length + 7) / 8;
  unsigned long long bad = 0;
  const bool aligned = (reinterpret_cast<uintptr_t>(src) & 7) == 0;
  for (uint64_t i = first; i < words; i += stride) {
    const uint64_t begin = i * 8;
    if (aligned && begin + 8 <= length) {
      bad += reinterpret_cast<const uint64_t*>(src)[i] != word;
    } else {
      bool differs = false;
      for (uint64_t b = begin; b < length && b < begin + 8; ++b) differs |= src[b] != patternByte(word, b);
      bad += differs;
    }
  }
  // Warp reduction, then one atomic per warp.
  for (int offset = 16; offset > 0; offset /= 2) bad += __shfl_down_sync(0xffffffffu, bad, offset);
  if ((threadIdx.x & 31) == 0 && bad != 0) atomicAdd(mismatches, bad);
}

unsigned gridFor(uint64_t work, int smCount) {
  uint64_t blocks = (work + kThreads - 1) / kThreads;
  uint64_t cap = static_cast<uint64_t>(smCount > 0 ? smCount : 1) * 4;
  if (blocks < 1) blocks = 1;
  return static_cast<unsigned>(blocks < cap ? blocks : cap);
}

template <int Threads, int Unroll, bool Streaming>
void launchLarge(const CopyTile* tiles, uint32_t tileCount, const volatile uint32_t* cancel, uint32_t grid, cudaStream_t stream) {
  gatherCopyKernel<Threads, Unroll, Streaming><<<grid, Threads, 0, stream>>>(tiles, tileCount, cancel);
}

template <int Threads>
void launchLargeThreads(const GatherCopyConfig& c, const CopyTile* tiles, uint32_t tileCount, const volatile uint32_t* cancel,
                        uint32_t grid, cudaStream_t stream) {
  if (c.unroll == 8) {
    if (c.streaming) launchLarge<Threads, 8, true>(tiles, tileCount, cancel, grid, stream);
    else launchLarge<Threads, 8, false>(tiles, tileCount, cancel, grid, stream);
  } else {
    if (c.streaming) launchLarge<Threads, 4, true>(tiles, tileCount, cancel, grid, stream);
    else launchLarge<Threads, 4, false>(tiles, tileCount, cancel, grid, stream);
  }
}

}  // namespace

bool parseGatherCopyConfig(const char* text, GatherCopyConfig* out) {
  if (text == nullptr || *text == '\0') return false;
  int threads = 0, ctas = 0, unroll = 0, streaming = 0;
  char extra = 0;
  if (std::sscanf(text, "%d:%d:%d:%d%c", &threads, &ctas, &unroll, &streaming, &extra) != 4) return false;
  if (threads != 256 && threads != 512 && threads != 1024) return false;
  if (ctas < 1 || ctas > 32 || (unroll != 4 && unroll != 8) || (streaming != 0 && streaming != 1)) return false;
  out->threads = threads;
  out->ctasPerSm = ctas;
  out->unroll = unroll;
  out->streaming = streaming == 1;
  return true;
}

cudaError_t launchGatherCopy(const CopyTile* tiles, uint32_t tileCount, const volatile uint32_t* cancel, bool smallTiles,
                             int smCount, const GatherCopyConfig& large, cudaStream_t stream) {
  if (tileCount == 0) return cudaSuccess;
  // 2048 threads fill an SM: 16 CTAs of 128 when tiles are small (a 4 KiB tile is 256 vectors: a
  // 512-thread CTA would leave half its threads idle); for large tiles `large` (default 4 CTAs of 512).
  const uint32_t sms = static_cast<uint32_t>(smCount > 0 ? smCount : 1);
  if (smallTiles) {
    uint32_t cap = sms * 16;
    gatherCopyKernel<128><<<tileCount < cap ? tileCount : cap, 128, 0, stream>>>(tiles, tileCount, cancel);
  } else {
    uint32_t cap = sms * static_cast<uint32_t>(large.ctasPerSm);
    uint32_t grid = tileCount < cap ? tileCount : cap;
    switch (large.threads) {
      case 256: launchLargeThreads<256>(large, tiles, tileCount, cancel, grid, stream); break;
      case 1024: launchLargeThreads<1024>(large, tiles, tileCount, cancel, grid, stream); break;
      default: launchLargeThreads<512>(large, tiles, tileCount, cancel, grid, stream); break;
    }
  }
  return cudaGetLastError();
}

cudaError_t launchFillPattern(uint8_t* dst, uint64_t length, uint64_t word, int smCount, cudaStream_t stream) {
  if (length == 0) return cudaSuccess;
  fillKernel<<<gridFor(length / 8 + 1, smCount), kThreads, 0, stream>>>(dst, length, word);
  return cudaGetLastError();
}

cudaError_t launchVerifyPattern(const uint8_t* src, uint64_t length, uint64_t word, unsigned long long* mismatches,
                                int smCount, cudaStream_t stream) {
  if (length == 0) return cudaSuccess;
  verifyKernel<<<gridFor((length + 7) / 8, smCount), kThreads, 0, stream>>>(src, length, word, mismatches);
  return cudaGetLastError();
}

}  // namespace xfer::cuda

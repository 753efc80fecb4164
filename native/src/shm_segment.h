// POSIX shared-memory segments (RAII), process liveness, and the shm backend's metadata codec.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "backend.h"

namespace xfer::shm {

// Owns one mapping of a shared-memory object. The creator (owner) also owns the name and
// unlinks it; a mapping of a peer's segment never unlinks. munmap and the descriptor's close happen
// exactly once: in releaseNow() or in the destructor, whichever comes first.
class Segment final : public HostMemory {
 public:
  // Creates a new object (O_EXCL), reserves its pages (posix_fallocate, so a full /dev/shm is an
  // error here instead of a SIGBUS later) and maps it populated.
  static std::shared_ptr<Segment> create(const std::string& name, uint64_t size);
  // Maps a peer's existing object; it must be at least minSize bytes.
  // Throws PeerGone when the name no longer exists.
  static std::shared_ptr<Segment> open(const std::string& name, uint64_t minSize);

  ~Segment() override;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  uint8_t* data() const noexcept override { return base_.load(std::memory_order_acquire); }
  uint64_t size() const noexcept override { return size_; }
  // munmap and close the descriptor (idempotent). Like the munmap, the close needs every thread
  // that could touch the mapping or call sizeIntact() to be done with this segment (the agent's
  // threads joined): a closed descriptor's number may be reused by the next open.
  void releaseNow() noexcept override;
  void unlinkName() noexcept;           // owner only (idempotent)
  const std::string& name() const noexcept { return name_; }
  // False once the object behind the mapping is smaller than the mapping (someone truncated it:
  // touching the missing pages would raise SIGBUS). One fstat.
  bool sizeIntact() const noexcept;

 private:
  Segment(std::string name, uint8_t* base, uint64_t size, bool owner, int fd)
      : name_(std::move(name)), base_(base), size_(size), owner_(owner), fd_(fd) {}
  std::string name_;
  std::atomic<uint8_t*> base_;
  uint64_t size_;
  bool owner_;
  std::atomic<bool> unlinked_{false};
  // Kept open for sizeIntact() while mapped; closed with the mapping (an explicit close of the agent
  // then gives it back at once, not when the JS ArrayBuffer holding the segment is collected).
  std::atomic<int> fd_;
};

// Runs body(arg) with SIGBUS turned into a `false` return instead of a dead process: the last
// line of defence when a peer truncates a segment between sizeIntact() and the access. body must
// own nothing that needs a destructor (it is left by siglongjmp) and take no lock. SIGBUS outside
// a guarded call keeps its previous disposition.
bool guardedAccess(void (*body)(void*), void* arg) noexcept;

// True while `pid` names a running (not zombie) process.
bool pidAlive(pid_t pid) noexcept;

// Names are used in shm names: [A-Za-z0-9._-], 1..64 characters.
bool validAgentName(const std::string& name) noexcept;
// A segment name this library could have created: "/xferstate-" + safe characters.
bool validSegmentName(const std::string& name) noexcept;

uint32_t crc32(const uint8_t* data, size_t length) noexcept;

struct RegionMeta {
  uint64_t id = 0;
  uint64_t size = 0;
  std::string shmName;
};

struct AgentMeta {
  std::string backend;
  std::string agentName;
  uint32_t pid = 0;
  uint64_t nonce = 0;
  std::string ctlName;
  std::vector<RegionMeta> regions;
};

std::vector<uint8_t> encodeMetadata(const AgentMeta& meta);
// Throws BadMetadata for anything malformed: wrong magic/version, truncated, bad checksum,
// out-of-bounds lengths, invalid names, absurd counts.
AgentMeta decodeMetadata(const uint8_t* data, size_t length);

}  // namespace xfer::shm

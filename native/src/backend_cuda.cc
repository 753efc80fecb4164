// The "cuda" backend: regions in GPU memory (or pinned host memory the GPU maps), shared across
// processes of one host through CUDA IPC handles; a transfer's whole block list is copied by ONE
// gather/scatter kernel launch; completion is a CUDA event that the progress thread (and status())
// polls; the notification goes out only after that event completed, so every byte it announces
// is in the peer's memory. Notifications travel through a shared-memory mailbox, as in shm.
//
// Why IPC handles and not VMM allocations exported as POSIX fds: an IPC handle is 64 bytes that
// fit in the metadata blob, so the existing metadata exchange is all the peer needs; an fd would
// need a Unix socket (SCM_RIGHTS) or pidfd_getfd beside it. IPC handles cover cudaMalloc memory,
// which is what engines' caching allocators (PyTorch's among them) hand out; an engine allocation
// that cannot be exported (cuMemCreate without the IPC flag, managed memory) registers as a
// local-only region (the local side of a transfer), and says so in RegionInfo.name.
//
// Concurrency model. One mutex (mu_) guards agent state. A posted transfer is one kernel plus one
// event on the transfer's own stream. Cancellation (abort, release, close, invalidation) writes
// the transfer's cancel word in device memory through the copy engine (no SM is needed, so it
// lands while the copy kernel occupies every SM); the kernel reads it before each tile and stops
// starting tiles. A cancelled transfer becomes terminal (ERROR) only when its event completed:
// terminal implies quiesced.
#include "backend_cuda.h"

#include <cuda.h>
#include <cuda_runtime_api.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "backend.h"
#include "backend_cuda_kernels.h"
#include "shm_segment.h"

namespace xfer::cuda {
namespace {

using shm::Segment;

constexpr uint32_t kLanes = 8;
constexpr uint32_t kSlots = 32;
constexpr uint32_t kMaxNotif = 4096;
constexpr uint32_t kMaxName = 64;
constexpr char kCtlMagic[8] = {'X', 'F', 'C', 'U', 'C', 'T', 'L', '1'};
constexpr char kMetaMagic[8] = {'X', 'F', 'C', 'U', 'M', 'E', 'T', '1'};
constexpr uint32_t kMetaVersion = 1;
constexpr uint32_t kCancelSlots = 4096;  // transfers alive at once per agent
constexpr uint64_t kMaxRegionBytes = 1ull << 40;

struct Slot {
  uint32_t fromLength;
  uint32_t length;
  char from[kMaxName];
  uint8_t data[kMaxNotif];
};

struct alignas(64) Lane {
  std::atomic<uint64_t> owner;
  alignas(64) std::atomic<uint64_t> head;
  alignas(64) std::atomic<uint64_t> tail;
  Slot slots[kSlots];
};

struct ControlBlock {
  char magic[8];
  uint32_t pid;
  uint32_t reserved0;
  uint64_t nonce;
  std::atomic<uint32_t> closed;
  std::atomic<uint32_t> doorbell;
  Lane lane[kLanes];
};

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void futexWake(std::atomic<uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void futexWait(std::atomic<uint32_t>* word, uint32_t expected, int timeoutMs) {
  timespec ts{timeoutMs / 1000, static_cast<long>(timeoutMs % 1000) * 1000000L};
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// The JS thread's status()/info() poll and the progress thread's poll hold mu_ for a few hundred
// ns (one cudaEventQuery). Blocking on it puts the poller to sleep in a futex and costs a wake-up
// of several us on a 4 KiB post's critical path, so a poller spins on try_lock first (bounded,
// then blocks as before).
std::unique_lock<std::mutex> lockSpinning(std::mutex& m) {
  for (int i = 0; i < 2048; ++i) {
    if (m.try_lock()) return std::unique_lock<std::mutex>(m, std::adopt_lock);
    cpuRelax();
  }
  return std::unique_lock<std::mutex>(m);
}

// How long the progress thread keeps watching the doorbell after its last launch completed
// before it sleeps: a post inside this window needs no futex wake (a syscall on the poster's
// critical path, then a sleeping thread's wake-up contending for mu_).
constexpr int64_t kProgressLingerNs = 200'000;

GatherCopyConfig gatherCopyConfigFromEnv() {
  GatherCopyConfig c;
  const char* env = std::getenv("XFERSTATE_CUDA_COPY");
  if (env != nullptr && *env != '\0' && !parseGatherCopyConfig(env, &c)) {
    throw Error(ErrorCode::InvalidArgument,
                std::string("XFERSTATE_CUDA_COPY must be threads:ctasPerSm:unroll:streaming (e.g. 512:4:4:0), not '") + env + "'");
  }
  return c;
}

[[noreturn]] void fail(cudaError_t err, const std::string& what) {
  cudaGetLastError();  // clear it: a later launch's cudaGetLastError() must not report this one
  throw Error(ErrorCode::Backend, what + ": " + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")");
}

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail(err, what);
}

int selectedDevice() {
  const char* env = std::getenv("XFERSTATE_CUDA_DEVICE");
  return env != nullptr ? std::atoi(env) : 0;
}

// ---------------------------------------------------------------------------------------------
// Memory the GPU can address. The destructor undoes what the constructor's caller did.

struct Mapping {
  virtual ~Mapping() = default;
  virtual void retire() {}  // at deregistration, for memory the caller may free right after
  int device = 0;
  uint64_t devicePtr = 0;  // address kernels use
  uint64_t size = 0;
  uint8_t* hostPtr = nullptr;  // for host kinds
};

struct OwnedDevice final : Mapping {
  ~OwnedDevice() override {
    cudaSetDevice(device);
    cudaFree(reinterpret_cast<void*>(devicePtr));
  }
};

struct IpcOpened final : Mapping {
  void* base = nullptr;
  ~IpcOpened() override {
    cudaSetDevice(device);
    cudaIpcCloseMemHandle(base);
  }
};

// A shm segment pinned with cudaHostRegister. Each agent pins its own mapping (peers in the same
// process too), so unpinning at deregistration touches nobody else's: the addon unmaps right
// after, and CUDA must not keep a registration for an address range that mmap may hand out again.
struct PinnedShm final : Mapping {
  std::shared_ptr<Segment> segment;
  bool pinned = false;
  void retire() override {
    if (!pinned) return;
    cudaSetDevice(device);
    cudaHostUnregister(hostPtr);
    pinned = false;
  }
  ~PinnedShm() override { retire(); }
};

struct ExternalHost final : Mapping {
  std::shared_ptr<void> keepAlive;
  // Unpinned at deregistration: the caller may free the buffer as soon as that returns, and no
  // transfer can run on it any more (post() refuses deregistered regions; local-only, no peer).
  void retire() override {
    if (hostPtr == nullptr) return;
    cudaSetDevice(device);
    cudaHostUnregister(hostPtr);
    hostPtr = nullptr;
  }
  ~ExternalHost() override { retire(); }
};

struct ExternalDevice final : Mapping {
  std::shared_ptr<void> keepAlive;  // the engine frees it, not us
};

// In-process peers: cudaIpcOpenMemHandle refuses a handle from its own process, so agents of one
// process find each other's mappings here, by (agent nonce, region id).
std::mutex gLocalMu;
std::map<std::pair<uint64_t, uint64_t>, std::weak_ptr<Mapping>> gLocal;

// ---------------------------------------------------------------------------------------------
// Metadata codec: magic, version, then fields, then a CRC32 of all that precedes it.

enum class Export : uint8_t { None = 0, Ipc = 1, Shm = 2 };

struct RegionMeta {
  uint64_t id = 0;
  uint64_t size = 0;
  MemoryKind kind = MemoryKind::Device;
  Export how = Export::None;
  cudaIpcMemHandle_t handle{};
  uint64_t offset = 0;  // from the IPC allocation's base
  std::string shmName;
};

struct AgentMeta {
  std::string agentName;
  uint32_t pid = 0;
  uint64_t nonce = 0;
  std::string ctlName;
  uint8_t uuid[16] = {};
  std::vector<RegionMeta> regions;
};

class Writer {
 public:
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  void u8(uint8_t v) { bytes(&v, 1); }
  void u32(uint32_t v) { bytes(&v, 4); }
  void u64(uint64_t v) { bytes(&v, 8); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  std::vector<uint8_t> out;
};

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  void bytes(void* dst, size_t n) {
    if (n > n_ - at_) throw Error(ErrorCode::BadMetadata, "cuda metadata is truncated");
    std::memcpy(dst, p_ + at_, n);
    at_ += n;
  }
  uint8_t u8() {
    uint8_t v;
    bytes(&v, 1);
    return v;
  }
  uint32_t u32() {
    uint32_t v;
    bytes(&v, 4);
    return v;
  }
  uint64_t u64() {
    uint64_t v;
    bytes(&v, 8);
    return v;
  }
  std::string str(uint32_t max) {
    uint32_t n = u32();
    if (n > max) throw Error(ErrorCode::BadMetadata, "cuda metadata string too long");
    std::string s(n, '\0');
    bytes(s.data(), n);
    return s;
  }
  bool done() const { return at_ == n_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t at_ = 0;
};

std::vector<uint8_t> encode(const AgentMeta& m) {
  Writer w;
  w.bytes(kMetaMagic, 8);
  w.u32(kMetaVersion);
  w.str(m.agentName);
  w.u32(m.pid);
  w.u64(m.nonce);
  w.str(m.ctlName);
  w.bytes(m.uuid, 16);
  w.u32(static_cast<uint32_t>(m.regions.size()));
  for (const RegionMeta& r : m.regions) {
    w.u64(r.id);
    w.u64(r.size);
    w.u8(static_cast<uint8_t>(r.kind));
    w.u8(static_cast<uint8_t>(r.how));
    if (r.how == Export::Ipc) {
      w.bytes(&r.handle, sizeof r.handle);
      w.u64(r.offset);
    } else if (r.how == Export::Shm) {
      w.str(r.shmName);
    }
  }
  w.u32(shm::crc32(w.out.data(), w.out.size()));
  return w.out;
}

AgentMeta decode(const uint8_t* data, size_t length) {
  if (length < 12 || std::memcmp(data, kMetaMagic, 8) != 0) throw Error(ErrorCode::BadMetadata, "not cuda metadata (bad magic)");
  uint32_t crc;
  std::memcpy(&crc, data + length - 4, 4);
  if (crc != shm::crc32(data, length - 4)) throw Error(ErrorCode::BadMetadata, "cuda metadata checksum mismatch");
  Reader r(data + 8, length - 12);
  if (r.u32() != kMetaVersion) throw Error(ErrorCode::BadMetadata, "unsupported cuda metadata version");
  AgentMeta m;
  m.agentName = r.str(kMaxName);
  if (!shm::validAgentName(m.agentName)) throw Error(ErrorCode::BadMetadata, "invalid agent name in metadata");
  m.pid = r.u32();
  m.nonce = r.u64();
  m.ctlName = r.str(255);
  if (!shm::validSegmentName(m.ctlName)) throw Error(ErrorCode::BadMetadata, "invalid control segment name");
  r.bytes(m.uuid, 16);
  uint32_t count = r.u32();
  if (count > 65536) throw Error(ErrorCode::BadMetadata, "absurd region count");
  for (uint32_t i = 0; i < count; ++i) {
    RegionMeta rm;
    rm.id = r.u64();
    rm.size = r.u64();
    uint8_t kind = r.u8();
    uint8_t how = r.u8();
    if (kind > 1 || how < 1 || how > 2 || rm.size == 0 || rm.size > kMaxRegionBytes) {
      throw Error(ErrorCode::BadMetadata, "bad region entry in cuda metadata");
    }
    rm.kind = static_cast<MemoryKind>(kind);
    rm.how = static_cast<Export>(how);
    if (rm.how == Export::Ipc) {
      r.bytes(&rm.handle, sizeof rm.handle);
      rm.offset = r.u64();
    } else {
      rm.shmName = r.str(255);
      if (!shm::validSegmentName(rm.shmName)) throw Error(ErrorCode::BadMetadata, "invalid region segment name");
    }
    m.regions.push_back(rm);
  }
  if (!r.done()) throw Error(ErrorCode::BadMetadata, "trailing bytes in cuda metadata");
  return m;
}

// ---------------------------------------------------------------------------------------------

std::atomic<uint32_t> gAgentSequence{0};

struct RemoteAgent {
  std::string name;
  pid_t pid = 0;
  uint64_t nonce = 0;
  std::shared_ptr<Segment> ctlSegment;
  ControlBlock* ctl = nullptr;
  std::map<uint64_t, std::shared_ptr<Mapping>> regions;
  std::atomic<bool> invalidated{false};
  std::atomic<bool> dead{false};
  std::atomic<int64_t> lastCheckNs{0};
  std::mutex sendMutex;
  int lane = -1;

  bool alive() {
    if (dead.load(std::memory_order_acquire)) return false;
    if (ctl->closed.load(std::memory_order_acquire) != 0) {
      dead.store(true);
      return false;
    }
    int64_t now = nowNs();
    int64_t last = lastCheckNs.load(std::memory_order_relaxed);
    if (now - last > 2'000'000 && lastCheckNs.compare_exchange_strong(last, now) && !shm::pidAlive(pid)) {
      dead.store(true);
      return false;
    }
    return true;
  }
};

struct LocalRegion {
  uint64_t id = 0;
  MemoryKind kind = MemoryKind::Device;
  std::shared_ptr<Mapping> mapping;
  std::shared_ptr<Segment> segment;  // agent-allocated pinned host memory
  RegionMeta meta;                   // how it is exported (how == None: local only)
  bool registered = true;
  uint32_t activeUses = 0;
};

struct Transfer {
  uint64_t id = 0;
  XferOp op = XferOp::Write;
  std::shared_ptr<RemoteAgent> remote;
  std::vector<std::shared_ptr<LocalRegion>> locals;
  std::vector<std::shared_ptr<Mapping>> remoteMappings;
  CopyTile* tiles = nullptr;  // device memory
  uint32_t tileCount = 0;
  uint64_t totalBytes = 0;
  std::optional<std::vector<uint8_t>> notification;
  cudaStream_t stream = nullptr;
  cudaEvent_t done = nullptr;
  uint32_t cancelSlot = 0;
  bool cancelDirty = false;  // the cancel word is set and must be cleared before the next launch

  std::atomic<XferStatus> status{XferStatus::NotPosted};
  std::atomic<uint64_t> bytesDone{0};
  std::optional<ErrorCode> error;
  ErrorCode cancelCode = ErrorCode::Aborted;
  bool active = false;    // posted and not yet quiescent
  bool launched = false;  // the kernel's event has not been seen complete
  bool cancelled = false;
  bool released = false;
  bool notifyPending = false;
};

class CudaAgent final : public AgentState {
 public:
  CudaAgent(const AgentConfig& config, EventSink* sink) : config_(config), sink_(sink) {
    if (!shm::validAgentName(config.name)) {
      throw Error(ErrorCode::InvalidArgument, "agent name must be 1-64 characters of [A-Za-z0-9._-]");
    }
    // Validated as shm does, though a launch has no chunks or copy threads: the same options
    // must mean the same on every backend.
    if (config.chunkBytes < 4096 || config.chunkBytes > (64ull << 20)) {
      throw Error(ErrorCode::InvalidArgument, "chunkBytes must be 4096..67108864");
    }
    if (config.copyThreads < 1 || config.copyThreads > 16) throw Error(ErrorCode::InvalidArgument, "copyThreads must be 1..16");
    copyConfig_ = gatherCopyConfigFromEnv();  // a bad tuning value is bad input, GPU or not
    std::string why;
    if (!deviceAvailable(&why)) throw Error(ErrorCode::NotSupported, "cuda backend: " + why);
    device_ = selectedDevice();
    check(cudaSetDevice(device_), "cudaSetDevice");
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, device_), "cudaGetDeviceProperties");
    smCount_ = prop.multiProcessorCount;
    std::memcpy(uuid_, &prop.uuid, 16);

    pid_ = ::getpid();
    uint32_t sequence = gAgentSequence.fetch_add(1) + 1;
    token_ = (static_cast<uint64_t>(static_cast<uint32_t>(pid_)) << 32) | sequence;
    std::random_device rd;
    nonce_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(nowNs());
    prefix_ = "/xferstate-" + std::to_string(pid_) + "-" + config.name + "-cu" + std::to_string(sequence);
    ctlSegment_ = Segment::create(prefix_ + "-ctl", sizeof(ControlBlock));
    ctl_ = new (ctlSegment_->data()) ControlBlock();
    std::memcpy(ctl_->magic, kCtlMagic, 8);
    ctl_->pid = static_cast<uint32_t>(pid_);
    ctl_->nonce = nonce_;

    try {
      check(cudaStreamCreateWithFlags(&ctlStream_, cudaStreamNonBlocking), "cudaStreamCreate");
      check(cudaStreamCreateWithFlags(&utilStream_, cudaStreamNonBlocking), "cudaStreamCreate");
      check(cudaEventCreateWithFlags(&ctlEvent_, cudaEventDisableTiming), "cudaEventCreate");
      check(cudaMalloc(reinterpret_cast<void**>(&cancelWords_), kCancelSlots * sizeof(uint32_t)), "cudaMalloc(cancel words)");
      check(cudaMemset(cancelWords_, 0, kCancelSlots * sizeof(uint32_t)), "cudaMemset");
      check(cudaMalloc(reinterpret_cast<void**>(&counter_), sizeof(unsigned long long)), "cudaMalloc(counter)");
      check(cudaHostAlloc(reinterpret_cast<void**>(&hostWords_), 2 * sizeof(uint32_t), cudaHostAllocDefault), "cudaHostAlloc");
      hostWords_[0] = 0;
      hostWords_[1] = 1;
      for (uint32_t i = kCancelSlots; i > 0; --i) freeSlots_.push_back(i - 1);
      if (config.progress == ProgressMode::Thread) progressThread_ = std::thread([this] { progressLoop(); });
    } catch (...) {
      close();
      throw;
    }
  }

  ~CudaAgent() override { close(); }

  Semantics semantics() const override {
    Semantics s;
    s.backend = "cuda";
    s.canAbortInFlight = true;               // the kernel stops starting tiles once its cancel word is set
    s.releaseInFlightAccepted = true;
    s.releaseInFlightQuiesces = false;       // tiles already started still finish
    s.notificationAfterData = true;          // sent after the copy's event completed
    s.notificationOnReleasedTransfer = false;
    s.terminalImpliesQuiesced = true;        // terminal only once the event completed
    s.repostActiveRejected = true;
    s.terminalStatusSticky = true;
    s.crossProcess = true;
    s.manualProgress = config_.progress == ProgressMode::Manual;
    s.maxNotificationBytes = kMaxNotif;
    s.chunkBytes = kTileBytes;
    s.chunkedProgress = false;  // one launch: bytesDone jumps to the total when its event completes
    return s;
  }

  // Device memory by default. XFERSTATE_CUDA_MEMORY=host makes it pinned host memory (the GPU
  // still does every copy), so suites written against host views run unchanged on this backend.
  RegionInfo registerMemory(uint64_t size) override {
    const char* env = std::getenv("XFERSTATE_CUDA_MEMORY");
    bool host = env != nullptr && std::string(env) == "host";
    return registerMemoryOfKind(size, host ? MemoryKind::Host : MemoryKind::Device);
  }

  RegionInfo registerMemoryOfKind(uint64_t size, MemoryKind kind) override {
    if (size == 0 || size > kMaxRegionBytes) throw Error(ErrorCode::InvalidArgument, "region size must be 1..2^40");
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    cudaSetDevice(device_);
    auto region = std::make_shared<LocalRegion>();
    region->id = nextRegionId_++;
    region->kind = kind;
    region->meta.id = region->id;
    region->meta.size = size;
    region->meta.kind = kind;
    RegionInfo info;
    if (kind == MemoryKind::Device) {
      auto m = std::make_shared<OwnedDevice>();
      void* p = nullptr;
      check(cudaMalloc(&p, size), "cudaMalloc");
      m->device = device_;
      m->devicePtr = reinterpret_cast<uint64_t>(p);
      m->size = size;
      region->mapping = m;
      check(cudaIpcGetMemHandle(&region->meta.handle, p), "cudaIpcGetMemHandle");
      region->meta.how = Export::Ipc;
      region->meta.offset = 0;
      info.name = "cuda:" + std::to_string(device_) + ":ipc";
    } else {
      // Pinned host memory shared across processes: a shm segment each side registers with CUDA.
      auto m = std::make_shared<PinnedShm>();
      m->segment = Segment::create(prefix_ + "-" + std::to_string(region->id), size);
      m->device = device_;
      m->size = size;
      m->hostPtr = m->segment->data();
      cudaError_t e = cudaHostRegister(m->hostPtr, size, cudaHostRegisterMapped | cudaHostRegisterPortable);
      if (e != cudaSuccess) {
        m->segment->unlinkName();
        fail(e, "cudaHostRegister");
      }
      m->pinned = true;
      void* dp = nullptr;
      e = cudaHostGetDevicePointer(&dp, m->hostPtr, 0);
      if (e != cudaSuccess) {
        m->retire();
        m->segment->unlinkName();
        fail(e, "cudaHostGetDevicePointer");
      }
      m->devicePtr = reinterpret_cast<uint64_t>(dp);
      region->segment = m->segment;
      region->mapping = m;
      region->meta.how = Export::Shm;
      region->meta.shmName = m->segment->name();
      info.name = m->segment->name();
      info.memory = m->segment;
    }
    publishLocal(*region);
    regions_[region->id] = region;
    info.id = region->id;
    info.size = size;
    info.kind = kind;
    return info;
  }

  RegionInfo registerExternal(const ExternalMemory& ext) override {
    if (ext.length == 0 || ext.length > kMaxRegionBytes || ext.address == 0) {
      throw Error(ErrorCode::InvalidArgument, "caller-owned memory needs a non-null address and a length of 1..2^40");
    }
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    cudaSetDevice(device_);
    auto region = std::make_shared<LocalRegion>();
    region->id = nextRegionId_++;
    region->kind = ext.kind;
    region->meta.id = region->id;
    region->meta.size = ext.length;
    region->meta.kind = ext.kind;
    RegionInfo info;
    if (ext.kind == MemoryKind::Host) {
      // Process-private memory: pinned and mapped for this agent's kernels; a peer cannot open
      // it, so it is the local side of transfers only.
      auto m = std::make_shared<ExternalHost>();
      m->device = device_;
      m->hostPtr = reinterpret_cast<uint8_t*>(ext.address);
      m->size = ext.length;
      cudaError_t e = cudaHostRegister(m->hostPtr, ext.length, cudaHostRegisterMapped | cudaHostRegisterPortable);
      if (e == cudaErrorHostMemoryAlreadyRegistered) {
        cudaGetLastError();
        m->hostPtr = nullptr;  // nothing to unregister
        throw Error(ErrorCode::InvalidArgument, "caller-owned host memory overlaps pages already registered with CUDA");
      }
      if (e != cudaSuccess) {
        m->hostPtr = nullptr;
        fail(e, "cudaHostRegister(caller-owned)");
      }
      void* dp = nullptr;
      check(cudaHostGetDevicePointer(&dp, m->hostPtr, 0), "cudaHostGetDevicePointer");
      m->devicePtr = reinterpret_cast<uint64_t>(dp);
      m->keepAlive = ext.keepAlive;
      region->mapping = m;
      region->meta.how = Export::None;
      info.name = "cuda:host:caller-owned:local";
    } else {
      if (ext.device != device_) {
        throw Error(ErrorCode::NotSupported, "caller-owned device memory must be on this agent's device " + std::to_string(device_));
      }
      cudaPointerAttributes attr{};
      cudaError_t e = cudaPointerGetAttributes(&attr, reinterpret_cast<void*>(ext.address));
      if (e != cudaSuccess || attr.type != cudaMemoryTypeDevice || attr.device != device_) {
        cudaGetLastError();
        throw Error(ErrorCode::InvalidArgument, "address is not device memory of device " + std::to_string(device_));
      }
      uint64_t base = 0;
      uint64_t allocSize = 0;
      allocationRange(ext.address, &base, &allocSize);
      if (ext.address + ext.length > base + allocSize) {
        throw Error(ErrorCode::OutOfRange, "caller-owned range runs past the end of its allocation");
      }
      auto m = std::make_shared<ExternalDevice>();
      m->device = device_;
      m->devicePtr = ext.address;
      m->size = ext.length;
      m->keepAlive = ext.keepAlive;
      region->mapping = m;
      if (cudaIpcGetMemHandle(&region->meta.handle, reinterpret_cast<void*>(base)) == cudaSuccess) {
        region->meta.how = Export::Ipc;
        region->meta.offset = ext.address - base;
        info.name = "cuda:" + std::to_string(device_) + ":ipc:caller-owned";
      } else {
        cudaGetLastError();
        region->meta.how = Export::None;  // e.g. a VMM allocation made without an IPC handle type
        info.name = "cuda:" + std::to_string(device_) + ":caller-owned:local";
      }
    }
    publishLocal(*region);
    regions_[region->id] = region;
    info.id = region->id;
    info.size = ext.length;
    info.kind = ext.kind;
    return info;
  }

  void deregisterMemory(uint64_t regionId) override {
    std::shared_ptr<LocalRegion> region;
    {
      std::lock_guard<std::mutex> lock(mu_);
      checkOpen();
      auto it = regions_.find(regionId);
      if (it == regions_.end()) throw Error(ErrorCode::NotRegistered, "region " + std::to_string(regionId) + " is not registered");
      if (it->second->activeUses > 0) {
        throw Error(ErrorCode::InUse, "region " + std::to_string(regionId) + " is used by a transfer that is not quiescent");
      }
      region = it->second;
      region->registered = false;
      if (region->segment) region->segment->unlinkName();
      region->mapping->retire();
      regions_.erase(it);
    }
    // Unregistering from CUDA before the addon unmaps: transfers that still hold the region
    // (created, never to be posted again) keep only a pointer they will not use.
    std::lock_guard<std::mutex> g(gLocalMu);
    gLocal.erase({nonce_, regionId});
  }

  std::vector<uint8_t> exportMetadata() override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    AgentMeta m;
    m.agentName = config_.name;
    m.pid = static_cast<uint32_t>(pid_);
    m.nonce = nonce_;
    m.ctlName = ctlSegment_->name();
    std::memcpy(m.uuid, uuid_, 16);
    for (const auto& [id, region] : regions_)
      if (region->meta.how != Export::None) m.regions.push_back(region->meta);
    return encode(m);
  }

  std::string loadRemoteMetadata(const uint8_t* data, size_t length) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      checkOpen();
    }
    AgentMeta meta = decode(data, length);
    if (std::memcmp(meta.uuid, uuid_, 16) != 0) {
      throw Error(ErrorCode::NotSupported, "agent '" + meta.agentName + "' uses another GPU; the cuda backend shares one device");
    }
    if (!shm::pidAlive(static_cast<pid_t>(meta.pid))) throw Error(ErrorCode::PeerGone, "agent '" + meta.agentName + "' is not running");
    cudaSetDevice(device_);
    auto remote = std::make_shared<RemoteAgent>();
    remote->name = meta.agentName;
    remote->pid = static_cast<pid_t>(meta.pid);
    remote->nonce = meta.nonce;
    remote->ctlSegment = Segment::open(meta.ctlName, sizeof(ControlBlock));
    remote->ctl = reinterpret_cast<ControlBlock*>(remote->ctlSegment->data());
    if (std::memcmp(remote->ctl->magic, kCtlMagic, 8) != 0 || remote->ctl->pid != meta.pid || remote->ctl->nonce != meta.nonce) {
      throw Error(ErrorCode::BadMetadata, "control segment does not match the metadata");
    }
    if (remote->ctl->closed.load() != 0) throw Error(ErrorCode::PeerGone, "agent '" + meta.agentName + "' is closed");
    const bool sameProcess = meta.pid == static_cast<uint32_t>(pid_);
    for (const RegionMeta& r : meta.regions) {
      if (remote->regions.count(r.id) != 0) throw Error(ErrorCode::BadMetadata, "duplicate region id in metadata");
      // cudaIpcOpenMemHandle refuses our own process's handles; shm host regions are mapped anew.
      remote->regions[r.id] = sameProcess && r.how == Export::Ipc ? findLocal(meta.nonce, r.id) : openRemote(r);
    }

    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = remotes_.find(meta.agentName);
    if (it != remotes_.end()) {
      std::shared_ptr<RemoteAgent> old = it->second;
      old->invalidated.store(true);
      std::lock_guard<std::mutex> sendLock(old->sendMutex);
      if (old->nonce == remote->nonce && old->lane >= 0) {
        remote->lane = old->lane;
        old->lane = -1;
      } else {
        releaseLaneLocked(*old);
      }
    }
    remotes_[meta.agentName] = remote;
    return meta.agentName;
  }

  void invalidateRemote(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = remotes_.find(name);
    if (it == remotes_.end()) throw Error(ErrorCode::UnknownRemote, "no metadata loaded for agent '" + name + "'");
    std::shared_ptr<RemoteAgent> remote = it->second;
    remotes_.erase(it);
    remote->invalidated.store(true);
    for (auto& [id, t] : transfers_)
      if (t->remote == remote) cancelLocked(*t, ErrorCode::UnknownRemote);
    std::lock_guard<std::mutex> sendLock(remote->sendMutex);
    releaseLaneLocked(*remote);
  }

  uint64_t createTransfer(const TransferSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    cudaSetDevice(device_);
    if (spec.local.empty()) throw Error(ErrorCode::InvalidArgument, "descriptor lists must not be empty");
    if (spec.local.size() != spec.remote.size()) {
      throw Error(ErrorCode::LengthMismatch, "local and remote descriptor counts differ (" + std::to_string(spec.local.size()) +
                                                 " vs " + std::to_string(spec.remote.size()) + ")");
    }
    if (spec.notification && spec.notification->size() > kMaxNotif) {
      throw Error(ErrorCode::InvalidArgument, "notification larger than " + std::to_string(kMaxNotif) + " bytes");
    }
    auto rit = remotes_.find(spec.remoteAgent);
    if (rit == remotes_.end()) throw Error(ErrorCode::UnknownRemote, "no metadata loaded for agent '" + spec.remoteAgent + "'");
    if (freeSlots_.empty()) throw Error(ErrorCode::Backend, "too many transfers alive (" + std::to_string(kCancelSlots) + ")");

    auto t = std::make_shared<Transfer>();
    t->op = spec.op;
    t->remote = rit->second;
    t->notification = spec.notification;
    std::vector<CopyTile> tiles;
    std::map<uint64_t, bool> seenLocal, seenRemote;
    for (size_t i = 0; i < spec.local.size(); ++i) {
      const Descriptor& l = spec.local[i];
      const Descriptor& r = spec.remote[i];
      auto lit = regions_.find(l.regionId);
      if (lit == regions_.end()) throw Error(ErrorCode::NotRegistered, "local region " + std::to_string(l.regionId) + " is not registered");
      auto sit = t->remote->regions.find(r.regionId);
      if (sit == t->remote->regions.end()) {
        throw Error(ErrorCode::NotRegistered, "remote region " + std::to_string(r.regionId) + " is not in the metadata of '" +
                                                  spec.remoteAgent + "'");
      }
      const Mapping& lm = *lit->second->mapping;
      const Mapping& rm = *sit->second;
      if (l.length == 0 || r.length == 0) throw Error(ErrorCode::InvalidArgument, "descriptor length must be > 0");
      if (l.offset > lm.size || l.length > lm.size - l.offset) {
        throw Error(ErrorCode::OutOfRange, "local descriptor " + std::to_string(i) + " is outside its region");
      }
      if (r.offset > rm.size || r.length > rm.size - r.offset) {
        throw Error(ErrorCode::OutOfRange, "remote descriptor " + std::to_string(i) + " is outside its region");
      }
      if (l.length != r.length) throw Error(ErrorCode::LengthMismatch, "descriptor " + std::to_string(i) + " lengths differ");
      if (!seenLocal[l.regionId]) {
        seenLocal[l.regionId] = true;
        t->locals.push_back(lit->second);
      }
      if (!seenRemote[r.regionId]) {
        seenRemote[r.regionId] = true;
        t->remoteMappings.push_back(sit->second);
      }
      uint64_t localAddr = lm.devicePtr + l.offset;
      uint64_t remoteAddr = rm.devicePtr + r.offset;
      for (uint64_t done = 0; done < l.length; done += kTileBytes) {
        uint64_t n = std::min<uint64_t>(kTileBytes, l.length - done);
        if (spec.op == XferOp::Write) {
          tiles.push_back({localAddr + done, remoteAddr + done, n});
        } else {
          tiles.push_back({remoteAddr + done, localAddr + done, n});
        }
      }
      t->totalBytes += l.length;
    }
    if (tiles.size() > UINT32_MAX) throw Error(ErrorCode::InvalidArgument, "transfer has too many tiles");
    t->tileCount = static_cast<uint32_t>(tiles.size());
    try {
      check(cudaMalloc(reinterpret_cast<void**>(&t->tiles), tiles.size() * sizeof(CopyTile)), "cudaMalloc(tile list)");
      check(cudaMemcpy(t->tiles, tiles.data(), tiles.size() * sizeof(CopyTile), cudaMemcpyHostToDevice), "cudaMemcpy(tile list)");
      check(cudaStreamCreateWithFlags(&t->stream, cudaStreamNonBlocking), "cudaStreamCreate");
      check(cudaEventCreateWithFlags(&t->done, cudaEventDisableTiming), "cudaEventCreate");
    } catch (...) {
      freeCudaLocked(*t);
      throw;
    }
    t->cancelSlot = freeSlots_.back();
    freeSlots_.pop_back();
    t->id = nextTransferId_++;
    transfers_[t->id] = t;
    return t->id;
  }

  void post(uint64_t id) override {
    {
      std::unique_lock<std::mutex> lock = lockSpinning(mu_);
      checkOpen();
      cudaSetDevice(device_);
      Transfer& t = findLocked(id);
      if (t.released) throw Error(ErrorCode::Released, "transfer handle was released");
      if (t.active) throw Error(ErrorCode::RepostActive, "transfer is still active");
      if (t.remote->invalidated.load()) throw Error(ErrorCode::UnknownRemote, "metadata of '" + t.remote->name + "' was invalidated or replaced");
      if (!t.remote->alive()) throw Error(ErrorCode::PeerGone, "agent '" + t.remote->name + "' is gone");
      for (const auto& region : t.locals)
        if (!region->registered) throw Error(ErrorCode::NotRegistered, "local region " + std::to_string(region->id) + " was deregistered");
      uint32_t* cancel = cancelWords_ + t.cancelSlot;
      if (t.cancelDirty) {
        // The word was set on ctlStream_; clear it only after that copy landed.
        check(cudaStreamWaitEvent(t.stream, ctlEvent_, 0), "cudaStreamWaitEvent");
        check(cudaMemcpyAsync(cancel, &hostWords_[0], sizeof(uint32_t), cudaMemcpyHostToDevice, t.stream), "clear cancel word");
        t.cancelDirty = false;
      }
      check(launchGatherCopy(t.tiles, t.tileCount, cancel, t.totalBytes <= 8192ull * t.tileCount, smCount_, copyConfig_, t.stream), "gather copy launch");
      check(cudaEventRecord(t.done, t.stream), "cudaEventRecord");
      t.cancelled = false;
      t.notifyPending = false;
      t.error.reset();
      t.bytesDone.store(0);
      t.active = true;
      t.launched = true;
      for (const auto& region : t.locals) region->activeUses++;
      t.status.store(XferStatus::InProgress, std::memory_order_release);
      inflight_.push_back(transfers_[id]);
    }
    wakeProgress();
  }

  XferStatus status(uint64_t id) override {
    std::unique_lock<std::mutex> lock = lockSpinning(mu_);
    checkOpen();
    Transfer& t = findLocked(id);
    if (t.released) throw Error(ErrorCode::Released, "transfer handle was released");
    if (t.launched) pollOneLocked(t);  // a poller need not wait for the progress thread
    return t.status.load(std::memory_order_acquire);
  }

  TransferInfo info(uint64_t id) override {
    std::unique_lock<std::mutex> lock = lockSpinning(mu_);
    checkOpen();
    Transfer& t = findLocked(id);
    if (t.released) throw Error(ErrorCode::Released, "transfer handle was released");
    if (t.launched) pollOneLocked(t);
    TransferInfo info;
    info.status = t.status.load();
    info.bytesDone = t.bytesDone.load();
    info.totalBytes = t.totalBytes;
    info.quiesced = !t.active;
    info.error = t.error;
    return info;
  }

  ReleaseResult release(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    Transfer& t = findLocked(id);
    if (t.released) throw Error(ErrorCode::DoubleRelease, "transfer handle was already released");
    t.released = true;
    if (t.active) cancelLocked(t, ErrorCode::Aborted);
    bool quiesced = !t.active;
    if (quiesced) dropLocked(t);
    return {true, quiesced};
  }

  ReleaseResult abort(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    Transfer& t = findLocked(id);
    if (t.released) throw Error(ErrorCode::Released, "transfer handle was released");
    bool accepted = t.active && !t.cancelled;
    if (accepted) cancelLocked(t, ErrorCode::Aborted);
    return {accepted, !t.active};
  }

  void sendNotification(const std::string& remoteName, const uint8_t* data, size_t length) override {
    if (length > kMaxNotif) throw Error(ErrorCode::InvalidArgument, "notification larger than " + std::to_string(kMaxNotif) + " bytes");
    std::shared_ptr<RemoteAgent> remote;
    {
      std::lock_guard<std::mutex> lock(mu_);
      checkOpen();
      auto it = remotes_.find(remoteName);
      if (it == remotes_.end()) throw Error(ErrorCode::UnknownRemote, "no metadata loaded for agent '" + remoteName + "'");
      remote = it->second;
    }
    switch (sendTo(*remote, data, length)) {
      case SendResult::Ok: return;
      case SendResult::Gone: throw Error(ErrorCode::PeerGone, "agent '" + remoteName + "' is gone");
      case SendResult::Full: throw Error(ErrorCode::Backend, "notification mailbox of '" + remoteName + "' is full");
      case SendResult::NoLane: throw Error(ErrorCode::Backend, "notification mailbox of '" + remoteName + "' has no free sender lane");
    }
  }

  // The peer's region ids from its metadata (what a caller needs to address remote blocks).
  std::vector<RemoteRegionInfo> remoteRegions(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = remotes_.find(name);
    if (it == remotes_.end()) throw Error(ErrorCode::UnknownRemote, "no metadata loaded for agent '" + name + "'");
    std::vector<RemoteRegionInfo> out;
    for (const auto& [id, mapping] : it->second->regions) out.push_back({id, mapping->size});
    return out;
  }

  std::vector<Notification> pollNotifications() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      checkOpen();
    }
    std::lock_guard<std::mutex> consume(consumeMu_);
    Notification n;
    while (popOneLocked(n)) inbox_.push_back(std::move(n));
    std::vector<Notification> out(std::make_move_iterator(inbox_.begin()), std::make_move_iterator(inbox_.end()));
    inbox_.clear();
    return out;
  }

  StepResult step() override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    if (config_.progress != ProgressMode::Manual) throw Error(ErrorCode::NotSupported, "step() needs progress: 'manual'");
    StepResult result;
    {
      std::lock_guard<std::mutex> consume(consumeMu_);
      Notification n;
      if (popOneLocked(n)) {
        result.kind = StepResult::Kind::Notification;
        result.notification = n;
        inbox_.push_back(std::move(n));
        return result;
      }
    }
    if (!pendingNotify_.empty()) {
      std::shared_ptr<Transfer> t = pendingNotify_.front();
      pendingNotify_.pop_front();
      t->notifyPending = false;
      if (t->active && !t->cancelled) tryNotifyLocked(*t);
      fill(result, StepResult::Kind::NotificationRetry, *t, 0);
      return result;
    }
    // One step = one completed launch (the whole block list is one kernel).
    for (auto it = inflight_.begin(); it != inflight_.end(); ++it) {
      std::shared_ptr<Transfer> t = *it;
      if (pollOneLocked(*t)) {
        fill(result, StepResult::Kind::Chunk, *t, t->bytesDone.load());
        return result;
      }
    }
    return result;
  }

  void fillPattern(uint64_t regionId, uint64_t offset, uint64_t length, uint64_t word) override {
    std::shared_ptr<Mapping> m = patternTarget(regionId, offset, length);
    std::lock_guard<std::mutex> util(utilMu_);
    cudaSetDevice(device_);
    check(launchFillPattern(reinterpret_cast<uint8_t*>(m->devicePtr + offset), length, word, smCount_, utilStream_), "fill launch");
    check(cudaStreamSynchronize(utilStream_), "fill");
  }

  uint64_t verifyPattern(uint64_t regionId, uint64_t offset, uint64_t length, uint64_t word) override {
    std::shared_ptr<Mapping> m = patternTarget(regionId, offset, length);
    std::lock_guard<std::mutex> util(utilMu_);
    cudaSetDevice(device_);
    unsigned long long bad = 0;
    check(cudaMemsetAsync(counter_, 0, sizeof bad, utilStream_), "cudaMemsetAsync");
    check(launchVerifyPattern(reinterpret_cast<const uint8_t*>(m->devicePtr + offset), length, word, counter_, smCount_, utilStream_),
          "verify launch");
    check(cudaMemcpyAsync(&bad, counter_, sizeof bad, cudaMemcpyDeviceToHost, utilStream_), "cudaMemcpyAsync");
    check(cudaStreamSynchronize(utilStream_), "verify");
    return bad;
  }

  void close() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      closed_ = true;
      stop_ = true;
      cudaSetDevice(device_);
      for (auto& [id, t] : transfers_) cancelLocked(*t, ErrorCode::Aborted);
    }
    if (ctl_ != nullptr) {
      ctl_->closed.store(1, std::memory_order_release);
      ctl_->doorbell.fetch_add(1, std::memory_order_release);
      futexWake(&ctl_->doorbell);
    }
    if (progressThread_.joinable()) progressThread_.join();

    std::lock_guard<std::mutex> lock(mu_);
    cudaSetDevice(device_);
    // The GPU must stop touching every buffer before close returns: wait for each launch (the
    // cancel words make the kernels stop at their next tile).
    for (auto& [id, t] : transfers_) {
      if (t->launched) {
        cudaEventSynchronize(t->done);
        t->launched = false;
      }
      if (t->active) finishLocked(*t, XferStatus::Error, t->cancelled ? t->cancelCode : ErrorCode::Aborted);
      dropLocked(*t);
    }
    inflight_.clear();
    pendingNotify_.clear();
    for (auto& [name, remote] : remotes_) {
      remote->invalidated.store(true);
      std::lock_guard<std::mutex> sendLock(remote->sendMutex);
      releaseLaneLocked(*remote);
    }
    remotes_.clear();
    {
      std::lock_guard<std::mutex> g(gLocalMu);
      for (auto& [id, region] : regions_) {
        region->registered = false;
        if (region->segment) region->segment->unlinkName();
        region->mapping->retire();  // every launch is over (synchronized above)
        gLocal.erase({nonce_, id});
      }
    }
    regions_.clear();
    if (ctlStream_ != nullptr) cudaStreamSynchronize(ctlStream_);
    if (ctlEvent_ != nullptr) cudaEventDestroy(ctlEvent_);
    ctlEvent_ = nullptr;
    if (ctlStream_ != nullptr) cudaStreamDestroy(ctlStream_);
    if (utilStream_ != nullptr) cudaStreamDestroy(utilStream_);
    if (cancelWords_ != nullptr) cudaFree(cancelWords_);
    if (counter_ != nullptr) cudaFree(counter_);
    if (hostWords_ != nullptr) cudaFreeHost(hostWords_);
    ctlStream_ = utilStream_ = nullptr;
    cancelWords_ = nullptr;
    counter_ = nullptr;
    hostWords_ = nullptr;
    if (ctlSegment_) {
      std::lock_guard<std::mutex> consume(consumeMu_);
      ctlSegment_->unlinkName();
      ctl_ = nullptr;
      ctlSegment_.reset();
    }
  }

 private:
  enum class SendResult { Ok, Full, Gone, NoLane };

  void checkOpen() const {
    if (closed_) throw Error(ErrorCode::Closed, "agent '" + config_.name + "' is closed");
  }

  Transfer& findLocked(uint64_t id) {
    auto it = transfers_.find(id);
    if (it == transfers_.end()) throw Error(ErrorCode::InvalidArgument, "unknown transfer handle " + std::to_string(id));
    return *it->second;
  }

  void publishLocal(const LocalRegion& region) {
    std::lock_guard<std::mutex> g(gLocalMu);
    gLocal[{nonce_, region.id}] = region.mapping;
  }

  std::shared_ptr<Mapping> findLocal(uint64_t nonce, uint64_t id) {
    std::lock_guard<std::mutex> g(gLocalMu);
    auto it = gLocal.find({nonce, id});
    std::shared_ptr<Mapping> m = it == gLocal.end() ? nullptr : it->second.lock();
    if (!m) throw Error(ErrorCode::PeerGone, "region " + std::to_string(id) + " of an in-process agent is gone");
    return m;
  }

  std::shared_ptr<Mapping> openRemote(const RegionMeta& r) {
    if (r.how == Export::Ipc) {
      auto m = std::make_shared<IpcOpened>();
      m->device = device_;
      cudaError_t e = cudaIpcOpenMemHandle(&m->base, r.handle, cudaIpcMemLazyEnablePeerAccess);
      if (e != cudaSuccess) {
        cudaGetLastError();
        m->base = nullptr;
        throw Error(ErrorCode::PeerGone, std::string("cannot open the peer's CUDA IPC handle: ") + cudaGetErrorName(e));
      }
      m->devicePtr = reinterpret_cast<uint64_t>(m->base) + r.offset;
      m->size = r.size;
      return m;
    }
    auto m = std::make_shared<PinnedShm>();
    m->device = device_;
    m->segment = Segment::open(r.shmName, r.size);
    m->size = r.size;
    m->hostPtr = m->segment->data();
    check(cudaHostRegister(m->hostPtr, r.size, cudaHostRegisterMapped | cudaHostRegisterPortable), "cudaHostRegister(peer)");
    m->pinned = true;
    void* dp = nullptr;
    check(cudaHostGetDevicePointer(&dp, m->hostPtr, 0), "cudaHostGetDevicePointer(peer)");
    m->devicePtr = reinterpret_cast<uint64_t>(dp);
    return m;
  }

  // The base and size of the allocation holding `address`, through the driver API entry point
  // the runtime hands out (no link-time dependency on libcuda).
  void allocationRange(uint64_t address, uint64_t* base, uint64_t* size) {
    using Fn = CUresult (*)(CUdeviceptr*, size_t*, CUdeviceptr);
    static Fn fn = [] {
      void* p = nullptr;
      cudaDriverEntryPointQueryResult q{};
      if (cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &p, 12000, cudaEnableDefault, &q) != cudaSuccess ||
          q != cudaDriverEntryPointSuccess) {
        return static_cast<Fn>(nullptr);
      }
      return reinterpret_cast<Fn>(p);
    }();
    if (fn == nullptr) throw Error(ErrorCode::Backend, "cuMemGetAddressRange is not available from the driver");
    CUdeviceptr b = 0;
    size_t s = 0;
    if (fn(&b, &s, static_cast<CUdeviceptr>(address)) != CUDA_SUCCESS) {
      throw Error(ErrorCode::InvalidArgument, "address is not inside a CUDA allocation");
    }
    *base = b;
    *size = s;
  }

  std::shared_ptr<Mapping> patternTarget(uint64_t regionId, uint64_t offset, uint64_t length) {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = regions_.find(regionId);
    if (it == regions_.end()) throw Error(ErrorCode::NotRegistered, "region " + std::to_string(regionId) + " is not registered");
    std::shared_ptr<Mapping> m = it->second->mapping;
    if (length == 0 || offset > m->size || length > m->size - offset) throw Error(ErrorCode::OutOfRange, "pattern range is outside the region");
    return m;
  }

  void fill(StepResult& r, StepResult::Kind kind, const Transfer& t, uint64_t bytes) {
    r.kind = kind;
    r.transferId = t.id;
    r.chunkIndex = 0;
    r.bytes = bytes;
    r.bytesDone = t.bytesDone.load();
    r.totalBytes = t.totalBytes;
    r.status = t.status.load();
  }

  // Returns true when this call saw the launch complete.
  bool pollOneLocked(Transfer& t) {
    if (!t.launched) return false;
    cudaError_t e = cudaEventQuery(t.done);
    if (e == cudaErrorNotReady) return false;
    t.launched = false;
    auto it = std::find(inflight_.begin(), inflight_.end(), transfers_[t.id]);
    if (it != inflight_.end()) inflight_.erase(it);
    if (e != cudaSuccess) {
      cudaGetLastError();
      finishLocked(t, XferStatus::Error, ErrorCode::Backend);
      return true;
    }
    if (t.cancelled) {
      finishLocked(t, XferStatus::Error, t.cancelCode);
      return true;
    }
    t.bytesDone.store(t.totalBytes);
    if (!t.remote->alive()) {
      finishLocked(t, XferStatus::Error, ErrorCode::PeerGone);
    } else if (t.notification) {
      tryNotifyLocked(t);  // the data's event completed: every byte is in place
    } else {
      finishLocked(t, XferStatus::Done, std::nullopt);
    }
    return true;
  }

  void cancelLocked(Transfer& t, ErrorCode code) {
    if (!t.active || t.cancelled) return;
    t.cancelled = true;
    t.cancelCode = code;
    auto matches = [&t](const std::shared_ptr<Transfer>& p) { return p.get() == &t; };
    pendingNotify_.erase(std::remove_if(pendingNotify_.begin(), pendingNotify_.end(), matches), pendingNotify_.end());
    t.notifyPending = false;
    if (t.launched) {
      // Through the copy engine on another stream: lands while the kernel holds every SM.
      cudaMemcpyAsync(cancelWords_ + t.cancelSlot, &hostWords_[1], sizeof(uint32_t), cudaMemcpyHostToDevice, ctlStream_);
      cudaEventRecord(ctlEvent_, ctlStream_);
      t.cancelDirty = true;
    } else {
      finishLocked(t, XferStatus::Error, code);  // data done, only the notification was pending
    }
  }

  void finishLocked(Transfer& t, XferStatus status, std::optional<ErrorCode> error) {
    t.error = error;
    t.active = false;
    t.notifyPending = false;
    for (const auto& region : t.locals) region->activeUses--;
    t.status.store(status, std::memory_order_release);
    Event terminal;
    terminal.kind = Event::Kind::Terminal;
    terminal.transferId = t.id;
    terminal.status = status;
    terminal.error = error;
    terminal.bytesDone = t.bytesDone.load();
    sink_->push(terminal);
    Event quiesced = terminal;
    quiesced.kind = Event::Kind::Quiesced;
    sink_->push(quiesced);
    if (t.released) dropLocked(t);
  }

  void freeCudaLocked(Transfer& t) {
    if (t.tiles != nullptr) cudaFree(t.tiles);
    if (t.done != nullptr) cudaEventDestroy(t.done);
    if (t.stream != nullptr) cudaStreamDestroy(t.stream);
    t.tiles = nullptr;
    t.done = nullptr;
    t.stream = nullptr;
  }

  void dropLocked(Transfer& t) {
    if (t.launched) return;  // the kernel still reads the tile list
    bool hadCuda = t.stream != nullptr;
    freeCudaLocked(t);
    if (hadCuda) {
      if (t.cancelDirty) {
        // The slot goes to the next transfer: its word must read 0 before any launch can use it,
        // and that launch will be on another stream, unordered with ctlStream_. A few µs, only
        // after a cancelled transfer.
        cudaMemcpyAsync(cancelWords_ + t.cancelSlot, &hostWords_[0], sizeof(uint32_t), cudaMemcpyHostToDevice, ctlStream_);
        cudaStreamSynchronize(ctlStream_);
        t.cancelDirty = false;
      }
      freeSlots_.push_back(t.cancelSlot);
    }
    t.remote.reset();
    t.locals.clear();
    t.remoteMappings.clear();
  }

  void tryNotifyLocked(Transfer& t) {
    const std::vector<uint8_t>& msg = *t.notification;
    switch (sendTo(*t.remote, msg.data(), msg.size())) {
      case SendResult::Ok:
        finishLocked(t, XferStatus::Done, std::nullopt);
        break;
      case SendResult::Gone:
        finishLocked(t, XferStatus::Error, ErrorCode::PeerGone);
        break;
      case SendResult::Full:
      case SendResult::NoLane:
        t.notifyPending = true;
        pendingNotify_.push_back(transfers_[t.id]);
        break;
    }
  }

  SendResult sendTo(RemoteAgent& remote, const uint8_t* data, size_t length) {
    if (remote.invalidated.load() || !remote.alive()) return SendResult::Gone;
    std::lock_guard<std::mutex> sendLock(remote.sendMutex);
    ControlBlock* ctl = remote.ctl;
    if (remote.lane < 0) {
      for (uint32_t i = 0; i < kLanes; ++i) {
        uint64_t expected = 0;
        if (ctl->lane[i].owner.compare_exchange_strong(expected, token_, std::memory_order_acq_rel)) {
          remote.lane = static_cast<int>(i);
          break;
        }
      }
      if (remote.lane < 0) return SendResult::NoLane;
    }
    Lane& lane = ctl->lane[remote.lane];
    uint64_t tail = lane.tail.load(std::memory_order_relaxed);
    uint64_t head = lane.head.load(std::memory_order_acquire);
    if (tail - head >= kSlots) return SendResult::Full;
    Slot& slot = lane.slots[tail % kSlots];
    slot.fromLength = static_cast<uint32_t>(config_.name.size());
    std::memcpy(slot.from, config_.name.data(), config_.name.size());
    slot.length = static_cast<uint32_t>(length);
    if (length > 0) std::memcpy(slot.data, data, length);
    lane.tail.store(tail + 1, std::memory_order_release);
    ctl->doorbell.fetch_add(1, std::memory_order_release);
    futexWake(&ctl->doorbell);
    return SendResult::Ok;
  }

  void releaseLaneLocked(RemoteAgent& remote) {
    if (remote.lane < 0) return;
    uint64_t expected = token_;
    remote.ctl->lane[remote.lane].owner.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
    remote.lane = -1;
  }

  bool popOneLocked(Notification& out) {
    if (ctl_ == nullptr) return false;
    for (uint32_t k = 0; k < kLanes; ++k) {
      uint32_t i = (nextLane_ + k) % kLanes;
      Lane& lane = ctl_->lane[i];
      uint64_t head = lane.head.load(std::memory_order_relaxed);
      uint64_t tail = lane.tail.load(std::memory_order_acquire);
      if (head == tail) continue;
      const Slot& slot = lane.slots[head % kSlots];
      out.from.assign(slot.from, std::min<uint32_t>(slot.fromLength, kMaxName));
      out.bytes.assign(slot.data, slot.data + std::min<uint32_t>(slot.length, kMaxNotif));
      lane.head.store(head + 1, std::memory_order_release);
      nextLane_ = (i + 1) % kLanes;
      return true;
    }
    return false;
  }

  void wakeProgress() {
    if (ctl_ == nullptr) return;
    ctl_->doorbell.fetch_add(1, std::memory_order_release);
    if (progressSleeping_.load(std::memory_order_acquire)) futexWake(&ctl_->doorbell);
  }

  // Spins (yielding) while launches are in flight, so DONE follows the event by microseconds;
  // sleeps on the mailbox doorbell otherwise (post() rings it too).
  void progressLoop() {
    cudaSetDevice(device_);
    for (;;) {
      uint32_t seen = ctl_->doorbell.load(std::memory_order_acquire);
      bool arrived = false;
      {
        std::lock_guard<std::mutex> consume(consumeMu_);
        Notification n;
        while (inbox_.size() < 4096 && popOneLocked(n)) {
          inbox_.push_back(std::move(n));
          arrived = true;
        }
      }
      if (arrived) {
        Event e;
        e.kind = Event::Kind::Notification;
        sink_->push(e);
      }
      bool busy;
      {
        std::unique_lock<std::mutex> lock = lockSpinning(mu_);
        if (stop_) return;
        // A reused scratch list: no allocation per turn while the lock is held.
        pollScratch_.assign(inflight_.begin(), inflight_.end());
        for (auto& t : pollScratch_) pollOneLocked(*t);
        pollScratch_.clear();
        if (!pendingNotify_.empty()) {
          std::deque<std::shared_ptr<Transfer>> retry;
          retry.swap(pendingNotify_);
          for (auto& t : retry) {
            t->notifyPending = false;
            if (t->active && !t->cancelled) tryNotifyLocked(*t);
          }
        }
        busy = !inflight_.empty() || !pendingNotify_.empty();
      }
      if (busy) {
        lastBusyNs_ = nowNs();
        std::this_thread::yield();
      } else if (nowNs() - lastBusyNs_ < kProgressLingerNs) {
        // Idle for a moment only: watch the doorbell (no lock, no syscall) rather than sleep.
        for (int i = 0; i < 256 && ctl_->doorbell.load(std::memory_order_acquire) == seen; ++i) cpuRelax();
      } else {
        progressSleeping_.store(true, std::memory_order_release);
        futexWait(&ctl_->doorbell, seen, 50);
        progressSleeping_.store(false, std::memory_order_release);
      }
    }
  }

  AgentConfig config_;
  EventSink* sink_;
  int device_ = 0;
  int smCount_ = 1;
  uint8_t uuid_[16] = {};
  pid_t pid_ = 0;
  uint64_t token_ = 0;
  uint64_t nonce_ = 0;
  std::string prefix_;
  std::shared_ptr<Segment> ctlSegment_;
  ControlBlock* ctl_ = nullptr;

  cudaStream_t ctlStream_ = nullptr;
  cudaStream_t utilStream_ = nullptr;
  cudaEvent_t ctlEvent_ = nullptr;  // recorded after each cancel-word set on ctlStream_
  uint32_t* cancelWords_ = nullptr;
  unsigned long long* counter_ = nullptr;
  uint32_t* hostWords_ = nullptr;  // pinned {0, 1}: sources for the cancel-word copies
  std::vector<uint32_t> freeSlots_;
  std::mutex utilMu_;

  std::mutex mu_;
  bool closed_ = false;
  bool stop_ = false;
  uint64_t nextRegionId_ = 1;
  uint64_t nextTransferId_ = 1;
  std::map<uint64_t, std::shared_ptr<LocalRegion>> regions_;
  std::map<std::string, std::shared_ptr<RemoteAgent>> remotes_;
  std::map<uint64_t, std::shared_ptr<Transfer>> transfers_;
  std::deque<std::shared_ptr<Transfer>> inflight_;
  std::deque<std::shared_ptr<Transfer>> pendingNotify_;

  std::mutex consumeMu_;
  std::deque<Notification> inbox_;
  uint32_t nextLane_ = 0;
  std::atomic<bool> progressSleeping_{false};
  int64_t lastBusyNs_ = 0;  // progress thread only
  std::vector<std::shared_ptr<Transfer>> pollScratch_;  // progress thread only, under mu_
  GatherCopyConfig copyConfig_;
  std::thread progressThread_;
};

class CudaBackend final : public Backend {
 public:
  std::string name() const override { return "cuda"; }
  std::unique_ptr<AgentState> createAgentState(const AgentConfig& config, EventSink* sink) override {
    return std::make_unique<CudaAgent>(config, sink);
  }
};

}  // namespace

bool deviceAvailable(std::string* why) {
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why != nullptr) *why = std::string("no usable CUDA device (cudaGetDeviceCount: ") + cudaGetErrorName(e) + ")";
    return false;
  }
  int device = selectedDevice();
  if (device < 0 || device >= count) {
    if (why != nullptr) *why = "CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(count) + " found)";
    return false;
  }
  return true;
}

double contiguousCopyGBps(uint64_t bytes, int reps) {
  std::string why;
  if (!deviceAvailable(&why)) throw Error(ErrorCode::NotSupported, why);
  check(cudaSetDevice(selectedDevice()), "cudaSetDevice");
  void* a = nullptr;
  void* b = nullptr;
  cudaStream_t s = nullptr;
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  double gbps = 0;
  cudaError_t err = cudaMalloc(&a, bytes);
  if (err == cudaSuccess) err = cudaMalloc(&b, bytes);
  if (err == cudaSuccess) err = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
  if (err == cudaSuccess) err = cudaEventCreate(&e0);
  if (err == cudaSuccess) err = cudaEventCreate(&e1);
  if (err == cudaSuccess) err = cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s);  // warm-up
  if (err == cudaSuccess) err = cudaEventRecord(e0, s);
  for (int i = 0; err == cudaSuccess && i < reps; ++i) err = cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, s);
  if (err == cudaSuccess) err = cudaEventRecord(e1, s);
  if (err == cudaSuccess) err = cudaEventSynchronize(e1);
  float ms = 0;
  if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, e0, e1);
  if (err == cudaSuccess && ms > 0) gbps = static_cast<double>(bytes) * reps / (ms * 1e-3) / 1e9;
  if (e0) cudaEventDestroy(e0);
  if (e1) cudaEventDestroy(e1);
  if (s) cudaStreamDestroy(s);
  if (a) cudaFree(a);
  if (b) cudaFree(b);
  if (err != cudaSuccess) fail(err, "contiguous copy baseline");
  return gbps;
}

}  // namespace xfer::cuda

XFERSTATE_REGISTER_BACKEND("cuda", ::xfer::cuda::CudaBackend)

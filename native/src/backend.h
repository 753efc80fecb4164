// Backend interface of the xferstate native transfer agent.
//
// The N-API layer (addon.cc) talks only to this interface. A backend turns an agent
// configuration into an AgentState, which owns everything the agent does: memory
// registration, metadata, transfers, notifications and progress. The embedded default is
// "shm" (backend_shm.cc); a NIXL backend (backend_nixl.cc, built only when NIXL is found)
// registers itself the same way.
//
// Error convention: every failure is an xfer::Error carrying an ErrorCode. addon.cc converts
// it (and any other C++ exception) into a JavaScript Error with a `code` property, so no C++
// exception ever crosses the N-API boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace xfer {

enum class ErrorCode {
  InvalidArgument,
  NotRegistered,
  OutOfRange,
  LengthMismatch,
  UnknownRemote,
  BadMetadata,
  DoubleRelease,
  RepostActive,
  Closed,
  PeerGone,
  InUse,
  Backend,
  Released,
  Aborted,
  NotSupported,
};

// The string used on the JavaScript side (XferErrorCode in src/native/index.ts).
const char* errorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

enum class XferOp { Write, Read };  // WRITE: local -> remote; READ: remote -> local (as NIXL)
enum class XferStatus { NotPosted, InProgress, Done, Error };
enum class ProgressMode { Thread, Manual };

// What a backend promises; the transfer-handle machine reads this instead of assuming.
struct Semantics {
  std::string backend;
  bool canAbortInFlight = false;
  bool releaseInFlightAccepted = false;    // release() of an in-flight handle succeeds
  bool releaseInFlightQuiesces = false;    // ...and the buffers are untouched once it returns
  bool notificationAfterData = false;      // notification seen => every byte of it is visible
  bool notificationOnReleasedTransfer = false;
  bool terminalImpliesQuiesced = false;    // a terminal status => the engine stopped touching both buffers
  bool repostActiveRejected = false;
  bool terminalStatusSticky = false;
  bool crossProcess = false;
  bool manualProgress = false;
  uint64_t maxNotificationBytes = 0;
  uint64_t chunkBytes = 0;
};

struct AgentConfig {
  std::string name;
  ProgressMode progress = ProgressMode::Thread;
  uint64_t chunkBytes = 256 * 1024;
  unsigned copyThreads = 2;
};

// Host memory handed to JavaScript as an external ArrayBuffer. The ArrayBuffer's finalizer
// holds a shared_ptr, so the memory outlives any JS view; releaseNow() unmaps early (after the
// addon has detached the ArrayBuffer, so no JS view can reach it).
class HostMemory {
 public:
  virtual ~HostMemory() = default;
  virtual uint8_t* data() const noexcept = 0;
  virtual uint64_t size() const noexcept = 0;
  virtual void releaseNow() noexcept = 0;
};

// Where a region's bytes live. Host: CPU memory (the cuda backend pins it); Device: GPU memory.
enum class MemoryKind { Host, Device };

struct RegionInfo {
  uint64_t id = 0;
  uint64_t size = 0;
  std::string name;  // backend-specific (shm: the POSIX shared-memory name)
  std::shared_ptr<HostMemory> memory;  // null for device memory and caller-owned memory
  MemoryKind kind = MemoryKind::Host;
};

// Memory the caller owns and registers (issue 12): a JS ArrayBuffer's bytes, or an engine's own
// GPU allocation given as (device, address, length). The agent never frees it; `keepAlive` holds
// whatever keeps it valid (the addon puts a reference to the JS buffer there) until the region is
// deregistered and no transfer still uses it.
struct ExternalMemory {
  MemoryKind kind = MemoryKind::Host;
  int device = 0;
  uint64_t address = 0;
  uint64_t length = 0;
  std::shared_ptr<void> keepAlive;
};

struct Descriptor {
  uint64_t regionId = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
};

struct TransferSpec {
  XferOp op = XferOp::Write;
  std::vector<Descriptor> local;
  std::vector<Descriptor> remote;
  std::string remoteAgent;
  std::optional<std::vector<uint8_t>> notification;
};

struct TransferInfo {
  XferStatus status = XferStatus::NotPosted;
  uint64_t bytesDone = 0;
  uint64_t totalBytes = 0;
  bool quiesced = true;
  std::optional<ErrorCode> error;  // why the last run ended in ERROR
};

struct ReleaseResult {
  bool accepted = false;
  bool quiesced = false;
};

struct Notification {
  std::string from;
  std::vector<uint8_t> bytes;
};

struct StepResult {
  // Fault: an injected error (AgentState::injectError) ended the transfer in this step.
  enum class Kind { Idle, Chunk, Notification, NotificationRetry, Fault };
  Kind kind = Kind::Idle;
  uint64_t transferId = 0;
  uint64_t chunkIndex = 0;
  uint64_t bytes = 0;
  uint64_t bytesDone = 0;
  uint64_t totalBytes = 0;
  XferStatus status = XferStatus::NotPosted;
  Notification notification;  // Kind::Notification
};

// What manual progress could do next: every choice a deterministic scheduler may pick.
struct PendingWork {
  std::vector<uint64_t> chunks;               // transfers with a chunk to copy, in step() order
  std::vector<uint64_t> notificationRetries;  // transfers whose notification waits for mailbox room
  uint64_t notifications = 0;                 // arrived notifications that step() has not taken yet
};

// A region of a loaded peer, as its metadata describes it (the id to put in remote descriptors).
struct RemoteRegionInfo {
  uint64_t id = 0;
  uint64_t size = 0;
};

// Record counts, so a long-running process can check that nothing accumulates.
struct AgentStats {
  uint64_t transfers = 0;  // transfer records (created, not yet released, or released but in flight)
  uint64_t regions = 0;
  uint64_t remotes = 0;
};

// Events flow from backend threads to JavaScript. push() may be called from any thread; the
// addon wakes the JS thread (ThreadSafeFunction) and JS drains them.
struct Event {
  enum class Kind { Terminal, Quiesced, Notification };
  Kind kind = Kind::Terminal;
  uint64_t transferId = 0;
  XferStatus status = XferStatus::NotPosted;
  std::optional<ErrorCode> error;
  uint64_t bytesDone = 0;
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void push(Event event) = 0;
};

class AgentState {
 public:
  virtual ~AgentState() = default;

  virtual Semantics semantics() const = 0;
  virtual RegionInfo registerMemory(uint64_t size) = 0;
  virtual void deregisterMemory(uint64_t regionId) = 0;
  // Agent-allocated memory of a given kind; registerMemory(size) is the backend's default kind.
  virtual RegionInfo registerMemoryOfKind(uint64_t size, MemoryKind kind) {
    if (kind == MemoryKind::Host) return registerMemory(size);
    throw Error(ErrorCode::NotSupported, "backend '" + semantics().backend + "' has no device memory");
  }
  // Caller-owned memory; a backend that cannot use it says so.
  virtual RegionInfo registerExternal(const ExternalMemory& memory) {
    throw Error(ErrorCode::NotSupported, "backend '" + semantics().backend + "' cannot register caller-owned memory");
  }
  // The executor's block pattern (an 8-byte word repeated from `offset`), written and checked
  // where the region lives (a GPU kernel for device regions). verifyPattern returns how many
  // 8-byte words differ (0 = intact).
  virtual void fillPattern(uint64_t regionId, uint64_t offset, uint64_t length, uint64_t word) {
    throw Error(ErrorCode::NotSupported, "backend '" + semantics().backend + "' has no pattern kernels");
  }
  virtual uint64_t verifyPattern(uint64_t regionId, uint64_t offset, uint64_t length, uint64_t word) {
    throw Error(ErrorCode::NotSupported, "backend '" + semantics().backend + "' has no pattern kernels");
  }
  virtual std::vector<uint8_t> exportMetadata() = 0;
  virtual std::string loadRemoteMetadata(const uint8_t* data, size_t length) = 0;
  virtual void invalidateRemote(const std::string& name) = 0;

  virtual uint64_t createTransfer(const TransferSpec& spec) = 0;
  virtual void post(uint64_t transferId) = 0;
  virtual XferStatus status(uint64_t transferId) = 0;
  virtual TransferInfo info(uint64_t transferId) = 0;
  virtual ReleaseResult release(uint64_t transferId) = 0;
  virtual ReleaseResult abort(uint64_t transferId) = 0;

  virtual void sendNotification(const std::string& remote, const uint8_t* data, size_t length) = 0;
  virtual std::vector<Notification> pollNotifications() = 0;

  // Manual progress: one chunk of one transfer, or one notification, or nothing.
  virtual StepResult step() = 0;

  // Deterministic fault controls (manual progress). Defaults refuse, so a backend that does not
  // implement them keeps compiling and reports NOT_SUPPORTED.
  // One step of one chosen transfer: its next chunk, or its notification retry (Idle if neither).
  virtual StepResult stepTransfer(uint64_t transferId) {
    throw Error(ErrorCode::NotSupported, "stepping a chosen transfer is not supported by this backend");
  }
  // Takes one arrived notification (Idle if none), leaving chunks alone.
  virtual StepResult stepNotification() {
    throw Error(ErrorCode::NotSupported, "stepping a notification is not supported by this backend");
  }
  // The transfer's next step ends it in ERROR (code Backend): no byte copied in that step, no
  // notification for this run; bytes already copied stay.
  virtual void injectError(uint64_t transferId) {
    throw Error(ErrorCode::NotSupported, "injectError is not supported by this backend");
  }
  virtual PendingWork pendingWork() { throw Error(ErrorCode::NotSupported, "pendingWork is not supported by this backend"); }
  virtual std::vector<RemoteRegionInfo> remoteRegions(const std::string& name) {
    throw Error(ErrorCode::NotSupported, "remoteRegions is not supported by this backend");
  }
  // Benchmark baseline (bench native): the copy a WRITE of `length` bytes does, without the
  // engine: `threads` threads take `chunkBytes` chunks from a shared counter and memcpy each in
  // `blockBytes` pieces, from local region offset 0 to the peer's region offset 0, over the same
  // mappings transfers use. Returns when every thread is joined.
  virtual void baselineCopy(uint64_t localRegionId, const std::string& remote, uint64_t remoteRegionId, uint64_t length,
                            uint64_t blockBytes, unsigned threads, uint64_t chunkBytes) {
    throw Error(ErrorCode::NotSupported, "baselineCopy is not supported by this backend");
  }
  // Offset of the first byte that differs between the two regions' first `length` bytes, or -1.
  virtual int64_t compareWithRemote(uint64_t localRegionId, const std::string& remote, uint64_t remoteRegionId, uint64_t length) {
    throw Error(ErrorCode::NotSupported, "compareWithRemote is not supported by this backend");
  }
  virtual AgentStats stats() { throw Error(ErrorCode::NotSupported, "stats is not supported by this backend"); }

  // Idempotent. Stops and joins every thread, then unlinks what the agent created. After it
  // returns no thread of this agent touches any buffer.
  virtual void close() = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual std::unique_ptr<AgentState> createAgentState(const AgentConfig& config, EventSink* sink) = 0;
};

// Registry by name. Backends register themselves from their translation unit
// (see XFERSTATE_REGISTER_BACKEND); the shm backend is always present.
using BackendFactory = std::function<std::unique_ptr<Backend>()>;
bool registerBackend(const std::string& name, BackendFactory factory);
std::vector<std::string> backendNames();
std::unique_ptr<Backend> makeBackend(const std::string& name);  // nullptr when unknown

// Housekeeping for the shm backend: removes /dev/shm segments left by dead processes.
// Returns how many names were unlinked.
uint64_t reapStaleShmSegments();
std::string shmSegmentPrefix();  // "xferstate-"

}  // namespace xfer

#define XFERSTATE_CONCAT_(a, b) a##b
#define XFERSTATE_CONCAT(a, b) XFERSTATE_CONCAT_(a, b)
#define XFERSTATE_REGISTER_BACKEND(NAME, TYPE)                                                     \
  namespace {                                                                                     \
  const bool XFERSTATE_CONCAT(registered_backend_, __LINE__) =                                    \
      ::xfer::registerBackend(NAME, [] { return std::unique_ptr<::xfer::Backend>(new TYPE()); }); \
  }

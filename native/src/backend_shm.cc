// The embedded "shm" backend: regions are POSIX shared-memory segments that two processes map,
// a copy engine on native threads moves bytes chunk by chunk, and notifications travel through
// a shared-memory mailbox in the receiving agent's control segment.
//
// Concurrency model. One mutex (mu_) guards all agent state; copy threads hold it only to pick
// a chunk and to account for it, never while copying. A chunk, once picked, is copied whole;
// cancellation (abort/release/peer death/close) stops the picking, so a transfer is quiescent
// exactly when it is cancelled and no chunk is in flight. The notification is published with a
// release store after the last chunk was accounted under mu_ (which orders every copy thread's
// writes before it), so a receiver that acquires it sees every byte.
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "backend.h"
#include "shm_segment.h"

namespace xfer::shm {
namespace {

constexpr uint32_t kLanes = 8;        // concurrent senders per receiver
constexpr uint32_t kSlots = 32;       // notifications buffered per sender
constexpr uint32_t kMaxNotif = 4096;  // bytes per notification
constexpr uint32_t kMaxName = 64;
constexpr uint32_t kCtlVersion = 2;  // 2: the sender's name is in the lane, not in each slot
constexpr char kCtlMagic[8] = {'X', 'F', 'S', 'T', 'C', 'T', 'L', '1'};
constexpr size_t kMaxInbox = 4096;  // beyond this the progress thread leaves messages in the ring
constexpr uint32_t kMaxPopPerCall = kLanes * kSlots;  // one full mailbox: a peer that keeps refilling cannot hold a poll

static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared-memory atomics must be lock-free");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared-memory atomics must be lock-free");
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex word layout");

struct Slot {
  uint32_t length;
  uint8_t data[kMaxNotif];
};

// A single-producer/single-consumer ring. A sender claims an empty lane by CAS on `owner`, then
// writes its name once; the receiver reads the name when it first sees that owner and keeps it,
// so the sender of a message comes from the lane (the connection), never from the payload.
// The receiver reclaims lanes whose owner process died, once drained.
struct alignas(64) Lane {
  std::atomic<uint64_t> owner;  // (pid << 32) | agent sequence; 0 = free
  uint32_t ownerNameLength;
  char ownerName[kMaxName];
  alignas(64) std::atomic<uint64_t> head;  // written by the consumer
  alignas(64) std::atomic<uint64_t> tail;  // written by the producer
  Slot slots[kSlots];
};

struct ControlBlock {
  char magic[8];
  uint32_t version;
  uint32_t pid;
  uint64_t nonce;
  uint32_t lanes;
  uint32_t slots;
  uint32_t maxNotif;
  std::atomic<uint32_t> closed;    // set when the owning agent closes
  std::atomic<uint32_t> doorbell;  // futex word: bumped on every enqueue
  uint32_t reserved;
  Lane lane[kLanes];
};

// test/native/fixtures/hostile.ts writes into these offsets to play a misbehaving peer.
static_assert(offsetof(ControlBlock, lane) == 64, "control block layout (fixtures/hostile.ts)");
static_assert(offsetof(Lane, ownerNameLength) == 8 && offsetof(Lane, ownerName) == 12, "lane layout (fixtures/hostile.ts)");
static_assert(offsetof(Lane, head) == 128 && offsetof(Lane, tail) == 192 && offsetof(Lane, slots) == 200, "lane layout");
static_assert(sizeof(Slot) == 4100 && sizeof(Lane) == 131456, "lane layout (fixtures/hostile.ts)");

std::string hex16(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Memory of a peer (or our own, which a peer can truncate by name) is touched only through
// these: a size check first, then the access with SIGBUS turned into a failure (guardedAccess).
struct CtlClosedRead {
  ControlBlock* ctl;
  uint32_t value;
};
void readClosedRaw(void* p) {
  auto* r = static_cast<CtlClosedRead*>(p);
  r->value = r->ctl->closed.load(std::memory_order_acquire);
}

int64_t nowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint32_t* futexWord(std::atomic<uint32_t>* word) { return reinterpret_cast<uint32_t*>(word); }

void futexWake(std::atomic<uint32_t>* word) {
  // Shared (not FUTEX_PRIVATE): the waiter is usually another process.
  ::syscall(SYS_futex, futexWord(word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void futexWait(std::atomic<uint32_t>* word, uint32_t expected, int timeoutMs) {
  timespec ts{timeoutMs / 1000, static_cast<long>(timeoutMs % 1000) * 1000000L};
  ::syscall(SYS_futex, futexWord(word), FUTEX_WAIT, expected, &ts, nullptr, 0);
}

std::atomic<uint32_t> gAgentSequence{0};

struct RemoteAgent {
  std::string name;
  pid_t pid = 0;
  uint64_t nonce = 0;
  std::shared_ptr<Segment> ctlSegment;
  ControlBlock* ctl = nullptr;
  std::map<uint64_t, std::shared_ptr<Segment>> regions;
  std::atomic<bool> invalidated{false};
  std::atomic<bool> dead{false};
  std::atomic<int64_t> lastLivenessCheckNs{0};
  std::mutex sendMutex;  // one producer per lane
  int lane = -1;         // guarded by sendMutex

  // The peer's memory stays mapped for us after it dies (POSIX), so death must be detected:
  // its close flag, or its pid gone (checked at most every 2 ms).
  bool alive() {
    if (dead.load(std::memory_order_acquire)) return false;
    CtlClosedRead closed{ctl, 0};
    if (!ctlSegment->sizeIntact() || !guardedAccess(&readClosedRaw, &closed) || closed.value != 0) {
      dead.store(true, std::memory_order_release);  // closed, or its control segment was truncated
      return false;
    }
    int64_t now = nowNs();
    int64_t last = lastLivenessCheckNs.load(std::memory_order_relaxed);
    if (now - last > 2'000'000 && lastLivenessCheckNs.compare_exchange_strong(last, now)) {
      if (!pidAlive(pid)) {
        dead.store(true, std::memory_order_release);
        return false;
      }
    }
    return true;
  }
};

enum class SendResult { Ok, Full, Gone, NoLane };

struct LocalRegion {
  uint64_t id = 0;
  std::shared_ptr<Segment> segment;
  bool registered = true;
  uint32_t activeUses = 0;  // posted runs not yet quiescent
};

struct Piece {
  uint32_t localIndex;
  uint32_t remoteIndex;
  uint64_t localOffset;
  uint64_t remoteOffset;
  uint64_t length;
};

struct Transfer : std::enable_shared_from_this<Transfer> {
  uint64_t id = 0;
  XferOp op = XferOp::Write;
  std::shared_ptr<RemoteAgent> remote;
  std::vector<std::shared_ptr<LocalRegion>> locals;
  std::vector<std::shared_ptr<Segment>> remoteSegments;
  std::vector<Piece> pieces;
  std::vector<uint32_t> chunkStart;  // chunk i = pieces[chunkStart[i], chunkStart[i+1])
  std::vector<uint64_t> chunkBytes;
  uint64_t totalBytes = 0;
  std::optional<std::vector<uint8_t>> notification;

  // Guarded by the agent mutex (status/bytesDone are also read lock-free).
  std::atomic<XferStatus> status{XferStatus::NotPosted};
  std::atomic<uint64_t> bytesDone{0};
  std::optional<ErrorCode> error;
  ErrorCode cancelCode = ErrorCode::Aborted;
  uint32_t nextChunk = 0;
  uint32_t chunksDone = 0;
  uint32_t inflight = 0;
  bool active = false;  // a posted run that is not yet quiescent
  bool cancelled = false;
  bool released = false;
  bool notifyPending = false;
  bool faultArmed = false;  // injectError(): the next step of this run ends it in ERROR

  uint32_t chunkCount() const { return static_cast<uint32_t>(chunkBytes.size()); }
  void dropResources() {
    remote.reset();
    locals.clear();
    remoteSegments.clear();
    pieces.clear();
    pieces.shrink_to_fit();
    chunkStart.clear();
    chunkBytes.clear();
  }
};

class ShmAgent final : public AgentState {
 public:
  ShmAgent(const AgentConfig& config, EventSink* sink) : config_(config), sink_(sink) {
    if (!validAgentName(config.name)) {
      throw Error(ErrorCode::InvalidArgument, "agent name must be 1-64 characters of [A-Za-z0-9._-]");
    }
    if (config.chunkBytes < 4096 || config.chunkBytes > (64ull << 20)) {
      throw Error(ErrorCode::InvalidArgument, "chunkBytes must be 4096..67108864");
    }
    if (config.copyThreads < 1 || config.copyThreads > 16) {
      throw Error(ErrorCode::InvalidArgument, "copyThreads must be 1..16");
    }
    pid_ = ::getpid();
    uint32_t sequence = gAgentSequence.fetch_add(1) + 1;
    token_ = (static_cast<uint64_t>(static_cast<uint32_t>(pid_)) << 32) | sequence;
    std::random_device rd;
    nonce_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(nowNs());
    // The nonce is part of every name, so a peer's metadata can only name segments of the agent
    // whose control segment carries that nonce (checked in loadRemoteMetadata).
    prefix_ = "/xferstate-" + std::to_string(pid_) + "-" + config.name + "-" + std::to_string(sequence) + "-" + hex16(nonce_);

    ctlSegment_ = Segment::create(prefix_ + "-ctl", sizeof(ControlBlock));
    ctl_ = new (ctlSegment_->data()) ControlBlock();
    std::memcpy(ctl_->magic, kCtlMagic, sizeof kCtlMagic);
    ctl_->version = kCtlVersion;
    ctl_->pid = static_cast<uint32_t>(pid_);
    ctl_->nonce = nonce_;
    ctl_->lanes = kLanes;
    ctl_->slots = kSlots;
    ctl_->maxNotif = kMaxNotif;

    if (config.progress == ProgressMode::Thread) {
      try {
        for (unsigned i = 0; i < config.copyThreads; ++i) workers_.emplace_back([this] { copyLoop(); });
        progressThread_ = std::thread([this] { progressLoop(); });
      } catch (...) {
        close();
        throw;
      }
    }
  }

  ~ShmAgent() override { close(); }

  Semantics semantics() const override {
    Semantics s;
    s.backend = "shm";
    s.canAbortInFlight = true;
    s.releaseInFlightAccepted = true;
    s.releaseInFlightQuiesces = false;  // a chunk in progress still finishes
    s.notificationAfterData = true;
    s.notificationOnReleasedTransfer = false;
    s.terminalImpliesQuiesced = true;
    s.repostActiveRejected = true;
    s.terminalStatusSticky = true;
    s.crossProcess = true;
    s.manualProgress = config_.progress == ProgressMode::Manual;
    s.maxNotificationBytes = kMaxNotif;
    s.chunkBytes = config_.chunkBytes;
    s.chunkedProgress = true;
    return s;
  }

  RegionInfo registerMemory(uint64_t size) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    uint64_t id = nextRegionId_++;
    auto region = std::make_shared<LocalRegion>();
    region->id = id;
    region->segment = Segment::create(prefix_ + "-" + std::to_string(id), size);
    regions_[id] = region;
    RegionInfo info;
    info.id = id;
    info.size = size;
    info.name = region->segment->name();
    info.memory = region->segment;
    return info;
  }

  void deregisterMemory(uint64_t regionId) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = regions_.find(regionId);
    if (it == regions_.end()) throw Error(ErrorCode::NotRegistered, "region " + std::to_string(regionId) + " is not registered");
    if (it->second->activeUses > 0) {
      throw Error(ErrorCode::InUse, "region " + std::to_string(regionId) + " is used by a transfer that is not quiescent");
    }
    it->second->registered = false;
    it->second->segment->unlinkName();
    regions_.erase(it);
  }

  std::vector<uint8_t> exportMetadata() override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    AgentMeta meta;
    meta.backend = "shm";
    meta.agentName = config_.name;
    meta.pid = static_cast<uint32_t>(pid_);
    meta.nonce = nonce_;
    meta.ctlName = ctlSegment_->name();
    for (const auto& [id, region] : regions_) meta.regions.push_back({id, region->segment->size(), region->segment->name()});
    return encodeMetadata(meta);
  }

  std::string loadRemoteMetadata(const uint8_t* data, size_t length) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      checkOpen();
    }
    AgentMeta meta = decodeMetadata(data, length);
    if (meta.backend != "shm") throw Error(ErrorCode::BadMetadata, "metadata is from backend '" + meta.backend + "', not shm");
    if (!pidAlive(static_cast<pid_t>(meta.pid))) throw Error(ErrorCode::PeerGone, "agent '" + meta.agentName + "' is not running");
    auto remote = std::make_shared<RemoteAgent>();
    remote->name = meta.agentName;
    remote->pid = static_cast<pid_t>(meta.pid);
    remote->nonce = meta.nonce;
    remote->ctlSegment = Segment::open(meta.ctlName, sizeof(ControlBlock));
    remote->ctl = reinterpret_cast<ControlBlock*>(remote->ctlSegment->data());
    const ControlBlock& c = *remote->ctl;
    if (std::memcmp(c.magic, kCtlMagic, sizeof kCtlMagic) != 0 || c.version != kCtlVersion || c.pid != meta.pid ||
        c.nonce != meta.nonce || c.lanes != kLanes || c.slots != kSlots || c.maxNotif != kMaxNotif) {
      throw Error(ErrorCode::BadMetadata, "control segment does not match the metadata");
    }
    if (c.closed.load(std::memory_order_acquire) != 0) throw Error(ErrorCode::PeerGone, "agent '" + meta.agentName + "' is closed");
    // Every region must be named after this control segment (pid, agent name, nonce, region id):
    // a peer cannot point a region at another agent's segment.
    const std::string stem = "/xferstate-" + std::to_string(meta.pid) + "-" + meta.agentName + "-";
    const std::string tail = "-" + hex16(meta.nonce) + "-ctl";
    if (meta.ctlName.size() <= stem.size() + tail.size() || meta.ctlName.compare(0, stem.size(), stem) != 0 ||
        meta.ctlName.compare(meta.ctlName.size() - tail.size(), tail.size(), tail) != 0) {
      throw Error(ErrorCode::BadMetadata, "control segment name is not bound to the agent's pid, name and nonce");
    }
    const std::string regionStem = meta.ctlName.substr(0, meta.ctlName.size() - 3);  // "...-<nonce>-"
    for (const RegionMeta& r : meta.regions) {
      if (remote->regions.count(r.id) != 0) throw Error(ErrorCode::BadMetadata, "duplicate region id in metadata");
      if (r.shmName != regionStem + std::to_string(r.id)) {
        throw Error(ErrorCode::BadMetadata, "region " + std::to_string(r.id) + " is not a segment of agent '" + meta.agentName + "'");
      }
      remote->regions[r.id] = Segment::open(r.shmName, r.size);
    }

    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = remotes_.find(meta.agentName);
    if (it != remotes_.end()) {
      // A newer generation replaces the old one; handles made for the old one can't be posted.
      std::shared_ptr<RemoteAgent> old = it->second;
      old->invalidated.store(true);
      std::lock_guard<std::mutex> sendLock(old->sendMutex);
      if (old->nonce == remote->nonce && old->lane >= 0) {
        remote->lane = old->lane;  // same peer, same mailbox: keep our lane
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
    // A snapshot: cancelling a released transfer erases its record.
    for (const std::shared_ptr<Transfer>& t : liveTransfersLocked())
      if (t->remote == remote) cancelLocked(*t, ErrorCode::UnknownRemote);
    std::lock_guard<std::mutex> sendLock(remote->sendMutex);
    releaseLaneLocked(*remote);
  }

  uint64_t createTransfer(const TransferSpec& spec) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
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

    auto t = std::make_shared<Transfer>();
    t->op = spec.op;
    t->remote = rit->second;
    t->notification = spec.notification;
    std::map<uint64_t, uint32_t> localIndex;
    std::map<uint64_t, uint32_t> remoteIndex;
    uint64_t chunkFill = 0;
    const uint64_t chunk = config_.chunkBytes;
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
      if (l.length == 0 || r.length == 0) throw Error(ErrorCode::InvalidArgument, "descriptor length must be > 0");
      if (l.offset > lit->second->segment->size() || l.length > lit->second->segment->size() - l.offset) {
        throw Error(ErrorCode::OutOfRange, "local descriptor " + std::to_string(i) + " is outside its region");
      }
      if (r.offset > sit->second->size() || r.length > sit->second->size() - r.offset) {
        throw Error(ErrorCode::OutOfRange, "remote descriptor " + std::to_string(i) + " is outside its region");
      }
      if (l.length != r.length) throw Error(ErrorCode::LengthMismatch, "descriptor " + std::to_string(i) + " lengths differ");

      auto [li, lnew] = localIndex.emplace(l.regionId, static_cast<uint32_t>(t->locals.size()));
      if (lnew) t->locals.push_back(lit->second);
      auto [ri, rnew] = remoteIndex.emplace(r.regionId, static_cast<uint32_t>(t->remoteSegments.size()));
      if (rnew) t->remoteSegments.push_back(sit->second);

      // Split into pieces of at most one chunk; consecutive pieces share a chunk while they fit.
      for (uint64_t done = 0; done < l.length;) {
        uint64_t length = std::min(chunk, l.length - done);
        if (t->chunkBytes.empty() || chunkFill + length > chunk) {
          t->chunkStart.push_back(static_cast<uint32_t>(t->pieces.size()));
          t->chunkBytes.push_back(0);
          chunkFill = 0;
        }
        t->pieces.push_back({li->second, ri->second, l.offset + done, r.offset + done, length});
        t->chunkBytes.back() += length;
        chunkFill += length;
        done += length;
      }
      t->totalBytes += l.length;
    }
    t->chunkStart.push_back(static_cast<uint32_t>(t->pieces.size()));
    t->id = nextTransferId_++;
    transfers_[t->id] = t;
    return t->id;
  }

  void post(uint64_t id) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      postLocked(id);
    }
    // One worker, woken after the lock is dropped: a woken worker must not block on the mutex we hold,
    // and a worker that takes a chunk wakes the next one while chunks remain (copyLoop).
    cv_.notify_one();
  }

  void postLocked(uint64_t id) {
    checkOpen();
    std::shared_ptr<Transfer> held = findUnreleasedLocked(id);  // keeps t alive if finishing erases its record
    Transfer& t = *held;
    if (t.active) throw Error(ErrorCode::RepostActive, "transfer is still active");
    if (t.remote->invalidated.load()) throw Error(ErrorCode::UnknownRemote, "metadata of '" + t.remote->name + "' was invalidated or replaced");
    if (!t.remote->alive()) throw Error(ErrorCode::PeerGone, "agent '" + t.remote->name + "' is gone");
    for (const auto& region : t.locals)
      if (!region->registered) throw Error(ErrorCode::NotRegistered, "local region " + std::to_string(region->id) + " was deregistered");
    t.nextChunk = 0;
    t.chunksDone = 0;
    t.inflight = 0;
    t.cancelled = false;
    t.notifyPending = false;
    t.faultArmed = false;
    t.error.reset();
    t.bytesDone.store(0);
    t.active = true;
    for (const auto& region : t.locals) region->activeUses++;
    t.status.store(XferStatus::InProgress, std::memory_order_release);
    runq_.push_back(held);
  }

  XferStatus status(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    std::shared_ptr<Transfer> held = findUnreleasedLocked(id);  // keeps t alive if finishing erases its record
    Transfer& t = *held;
    return t.status.load(std::memory_order_acquire);
  }

  TransferInfo info(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    std::shared_ptr<Transfer> held = findUnreleasedLocked(id);  // keeps t alive if finishing erases its record
    Transfer& t = *held;
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
    std::shared_ptr<Transfer> held = findLocked(id, ErrorCode::DoubleRelease);  // keeps t alive past the erase
    Transfer& t = *held;
    if (t.released) throw Error(ErrorCode::DoubleRelease, "transfer handle was already released");
    t.released = true;
    // Accepted at once; in flight the copy engine stops at the next chunk boundary, so
    // quiescence may come later (a Quiesced event reports it).
    if (t.active) cancelLocked(t, ErrorCode::Aborted);
    bool quiesced = !t.active;
    if (quiesced) eraseReleasedLocked(t);  // else the run's finishLocked erases it
    return {true, quiesced};
  }

  ReleaseResult abort(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    std::shared_ptr<Transfer> held = findUnreleasedLocked(id);  // keeps t alive if finishing erases its record
    Transfer& t = *held;
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

  std::vector<Notification> pollNotifications() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      checkOpen();
    }
    std::lock_guard<std::mutex> consume(consumeMu_);
    Notification n;
    for (uint32_t popped = 0; popped < kMaxPopPerCall && popOneLocked(n); ++popped) inbox_.push_back(std::move(n));
    maybeReclaimLanesLocked();
    std::vector<Notification> out(std::make_move_iterator(inbox_.begin()), std::make_move_iterator(inbox_.end()));
    inbox_.clear();
    return out;
  }

  StepResult step() override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    if (config_.progress != ProgressMode::Manual) throw Error(ErrorCode::NotSupported, "step() needs progress: 'manual'");
    StepResult result;
    // Deterministic order: an arrived notification first, then a pending outgoing
    // notification, then one chunk of the transfer at the head of the round-robin queue.
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
    if (!pendingNotify_.empty()) return stepTransferLocked(pendingNotify_.front());
    if (!runq_.empty()) return stepTransferLocked(runq_.front());
    return result;
  }

  StepResult stepTransfer(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    requireManual("step({ transferId })");
    std::shared_ptr<Transfer> t = findUnreleasedLocked(id);
    return stepTransferLocked(t);
  }

  StepResult stepNotification() override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    requireManual("step({ notification: true })");
    StepResult result;
    std::lock_guard<std::mutex> consume(consumeMu_);
    Notification n;
    if (popOneLocked(n)) {
      result.kind = StepResult::Kind::Notification;
      result.notification = n;
      inbox_.push_back(std::move(n));
    }
    return result;
  }

  void injectError(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    requireManual("injectError()");
    std::shared_ptr<Transfer> t = findUnreleasedLocked(id);
    if (!t->active || t->cancelled) throw Error(ErrorCode::InvalidArgument, "transfer " + std::to_string(id) + " is not in progress");
    t->faultArmed = true;
  }

  PendingWork pendingWork() override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    PendingWork work;
    work.chunks.reserve(runq_.size());
    for (const auto& t : runq_) work.chunks.push_back(t->id);
    for (const auto& t : pendingNotify_) work.notificationRetries.push_back(t->id);
    std::lock_guard<std::mutex> consume(consumeMu_);
    if (ctl_ != nullptr && ctlSegment_->sizeIntact()) {
      for (uint32_t i = 0; i < kLanes; ++i) {
        uint64_t head = ctl_->lane[i].head.load(std::memory_order_relaxed);
        uint64_t tail = ctl_->lane[i].tail.load(std::memory_order_acquire);
        work.notifications += std::min<uint64_t>(tail - head, kSlots);  // a peer's garbage tail counts as a full ring
      }
    }
    return work;
  }

  std::vector<RemoteRegionInfo> remoteRegions(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = remotes_.find(name);
    if (it == remotes_.end()) throw Error(ErrorCode::UnknownRemote, "no metadata loaded for agent '" + name + "'");
    std::vector<RemoteRegionInfo> out;
    for (const auto& [id, region] : it->second->regions) out.push_back({id, region->size()});
    return out;
  }

  void baselineCopy(uint64_t localRegionId, const std::string& remoteName, uint64_t remoteRegionId, uint64_t length,
                    uint64_t blockBytes, unsigned threads, uint64_t chunkBytes) override {
    auto [local, remote] = benchSegments(localRegionId, remoteName, remoteRegionId, length);
    if (threads < 1 || threads > 16) throw Error(ErrorCode::InvalidArgument, "threads must be 1..16");
    if (chunkBytes < 4096 || blockBytes == 0) throw Error(ErrorCode::InvalidArgument, "chunkBytes must be >= 4096 and blockBytes > 0");
    std::unique_lock<std::mutex> lock(baselineMu_);
    // Persistent threads that sleep between runs, like the copy engine's: freshly created threads
    // would start behind sleeping ones in the scheduler and make the baseline look slow.
    while (baselineThreads_.size() < threads) {
      unsigned index = static_cast<unsigned>(baselineThreads_.size());
      baselineThreads_.emplace_back([this, index] { baselineLoop(index); });
    }
    baselineJob_ = BaselineJob{local->data(), remote->data(), length, blockBytes, chunkBytes, threads};
    baselineNext_.store(0);
    baselineRunning_ = threads;
    baselineGeneration_++;
    baselineCv_.notify_all();
    baselineDone_.wait(lock, [this] { return baselineRunning_ == 0; });
  }

  void baselineLoop(unsigned index) {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(baselineMu_);
    for (;;) {
      baselineCv_.wait(lock, [&] { return baselineStop_ || baselineGeneration_ != seen; });
      if (baselineStop_) return;
      seen = baselineGeneration_;
      if (index >= baselineJob_.threads) continue;
      BaselineJob job = baselineJob_;
      lock.unlock();
      for (;;) {
        uint64_t start = baselineNext_.fetch_add(1, std::memory_order_relaxed) * job.chunkBytes;
        if (start >= job.length) break;
        uint64_t end = std::min(job.length, start + job.chunkBytes);
        // The transfer splits each descriptor into pieces at block (descriptor) boundaries too.
        for (uint64_t at = start; at < end;) {
          uint64_t blockEnd = std::min(end, (at / job.blockBytes + 1) * job.blockBytes);
          std::memcpy(job.dst + at, job.src + at, blockEnd - at);
          at = blockEnd;
        }
      }
      lock.lock();
      if (--baselineRunning_ == 0) baselineDone_.notify_all();
    }
  }

  int64_t compareWithRemote(uint64_t localRegionId, const std::string& remoteName, uint64_t remoteRegionId, uint64_t length) override {
    auto [local, remote] = benchSegments(localRegionId, remoteName, remoteRegionId, length);
    const uint8_t* a = local->data();
    const uint8_t* b = remote->data();
    if (std::memcmp(a, b, length) == 0) return -1;
    for (uint64_t i = 0; i < length; ++i)
      if (a[i] != b[i]) return static_cast<int64_t>(i);
    return -1;
  }

  AgentStats stats() override {
    std::lock_guard<std::mutex> lock(mu_);
    AgentStats s;
    s.transfers = transfers_.size();
    s.regions = regions_.size();
    s.remotes = remotes_.size();
    return s;
  }

  void close() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closed_) return;
      closed_ = true;
      stop_ = true;
      for (const std::shared_ptr<Transfer>& t : liveTransfersLocked()) cancelLocked(*t, ErrorCode::Aborted);
      cv_.notify_all();
    }
    if (ctl_ != nullptr && ctlSegment_->sizeIntact()) {
      ctl_->closed.store(1, std::memory_order_release);
      ctl_->doorbell.fetch_add(1, std::memory_order_release);
      futexWake(&ctl_->doorbell);
    }
    for (std::thread& worker : workers_)
      if (worker.joinable()) worker.join();
    if (progressThread_.joinable()) progressThread_.join();
    {
      std::lock_guard<std::mutex> lock(baselineMu_);
      baselineStop_ = true;
      baselineCv_.notify_all();
    }
    for (std::thread& t : baselineThreads_)
      if (t.joinable()) t.join();

    std::lock_guard<std::mutex> lock(mu_);
    // Every copy thread finished its chunk before exiting, so nothing is in flight now.
    for (const std::shared_ptr<Transfer>& t : liveTransfersLocked()) {
      if (t->active) finishLocked(*t, XferStatus::Error, ErrorCode::Aborted);
      t->dropResources();
    }
    transfers_.clear();
    runq_.clear();
    pendingNotify_.clear();
    for (auto& [name, remote] : remotes_) {
      remote->invalidated.store(true);
      std::lock_guard<std::mutex> sendLock(remote->sendMutex);
      releaseLaneLocked(*remote);
    }
    remotes_.clear();
    for (auto& [id, region] : regions_) {
      region->registered = false;
      region->segment->unlinkName();
    }
    regions_.clear();
    if (ctlSegment_) {
      std::lock_guard<std::mutex> consume(consumeMu_);  // a poll may still be draining the mailbox
      ctlSegment_->unlinkName();
      ctl_ = nullptr;
      ctlSegment_.reset();
    }
  }

 private:
  void checkOpen() const {
    if (closed_) throw Error(ErrorCode::Closed, "agent '" + config_.name + "' is closed");
  }

  // `gone` is the error for an id that existed and was released (its record is erased).
  // A handle the caller may still use: RELEASED once release() was accepted, even while its record
  // lives on until quiescence.
  std::shared_ptr<Transfer> findUnreleasedLocked(uint64_t id) {
    std::shared_ptr<Transfer> t = findLocked(id);
    if (t->released) throw Error(ErrorCode::Released, "transfer handle was released");
    return t;
  }

  std::shared_ptr<Transfer> findLocked(uint64_t id, ErrorCode gone = ErrorCode::Released) {
    auto it = transfers_.find(id);
    if (it != transfers_.end()) return it->second;
    if (id > 0 && id < nextTransferId_) {
      throw Error(gone, gone == ErrorCode::DoubleRelease ? "transfer handle " + std::to_string(id) + " was already released"
                                                         : "transfer handle " + std::to_string(id) + " was released");
    }
    throw Error(ErrorCode::InvalidArgument, "unknown transfer handle " + std::to_string(id));
  }

  std::pair<std::shared_ptr<Segment>, std::shared_ptr<Segment>> benchSegments(uint64_t localRegionId, const std::string& remoteName,
                                                                           uint64_t remoteRegionId, uint64_t length) {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto lit = regions_.find(localRegionId);
    if (lit == regions_.end()) throw Error(ErrorCode::NotRegistered, "local region " + std::to_string(localRegionId) + " is not registered");
    auto rit = remotes_.find(remoteName);
    if (rit == remotes_.end()) throw Error(ErrorCode::UnknownRemote, "no metadata loaded for agent '" + remoteName + "'");
    auto sit = rit->second->regions.find(remoteRegionId);
    if (sit == rit->second->regions.end()) throw Error(ErrorCode::NotRegistered, "remote region " + std::to_string(remoteRegionId) + " is not in the metadata");
    if (length == 0 || length > lit->second->segment->size() || length > sit->second->size()) {
      throw Error(ErrorCode::OutOfRange, "length is outside a region");
    }
    return {lit->second->segment, sit->second};
  }

  void requireManual(const char* what) const {
    if (config_.progress != ProgressMode::Manual) throw Error(ErrorCode::NotSupported, std::string(what) + " needs progress: 'manual'");
  }

  // Manual progress, one step of `t`: an armed fault, else its notification retry, else its next
  // chunk. The transfer keeps its place in the round-robin queue unless this was its last chunk
  // (FIFO step() passes the queue head, which then moves to the back), so stepping a chosen
  // transfer never reorders the others.
  StepResult stepTransferLocked(std::shared_ptr<Transfer> t) {
    StepResult result;
    if (!t->active || t->cancelled) return result;
    if (t->faultArmed) {
      t->faultArmed = false;
      cancelLocked(*t, ErrorCode::Backend);  // manual mode: nothing in flight, so terminal now
      fillStep(result, StepResult::Kind::Fault, *t, t->nextChunk, 0);
      return result;
    }
    if (t->notifyPending) {
      pendingNotify_.erase(std::find(pendingNotify_.begin(), pendingNotify_.end(), t));
      t->notifyPending = false;
      tryNotifyLocked(*t);
      fillStep(result, StepResult::Kind::NotificationRetry, *t, 0, 0);
      return result;
    }
    auto pos = std::find(runq_.begin(), runq_.end(), t);
    if (pos == runq_.end()) return result;
    bool head = pos == runq_.begin();
    auto index = pos - runq_.begin();
    runq_.erase(pos);
    uint32_t c = t->nextChunk++;
    t->inflight++;
    if (t->nextChunk < t->chunkCount()) {
      if (head) {
        runq_.push_back(t);
      } else {
        runq_.insert(runq_.begin() + index, t);
      }
    }
    bool ok = runChunk(*t, c);
    uint64_t bytes = t->chunkBytes[c];
    completeChunkLocked(*t, c, ok);
    fillStep(result, StepResult::Kind::Chunk, *t, c, ok ? bytes : 0);
    return result;
  }

  void fillStep(StepResult& r, StepResult::Kind kind, const Transfer& t, uint32_t chunk, uint64_t bytes) {
    r.kind = kind;
    r.transferId = t.id;
    r.chunkIndex = chunk;
    r.bytes = bytes;
    r.bytesDone = t.bytesDone.load();
    r.totalBytes = t.totalBytes;
    r.status = t.status.load();
  }

  // Picks the next chunk of the transfer at the head of the queue (round-robin).
  std::shared_ptr<Transfer> takeChunkLocked() {
    std::shared_ptr<Transfer> t = runq_.front();
    runq_.pop_front();
    t->nextChunk++;
    t->inflight++;
    if (t->nextChunk < t->chunkCount()) runq_.push_back(t);
    return t;
  }

  struct ChunkCopy {
    const Transfer* t;
    uint32_t chunk;
  };

  static void copyChunkRaw(void* arg) {
    const ChunkCopy& c = *static_cast<const ChunkCopy*>(arg);
    const Transfer& t = *c.t;
    for (uint32_t p = t.chunkStart[c.chunk]; p < t.chunkStart[c.chunk + 1]; ++p) {
      const Piece& piece = t.pieces[p];
      uint8_t* local = t.locals[piece.localIndex]->segment->data() + piece.localOffset;
      uint8_t* remote = t.remoteSegments[piece.remoteIndex]->data() + piece.remoteOffset;
      if (t.op == XferOp::Write) {
        std::memcpy(remote, local, piece.length);
      } else {
        std::memcpy(local, remote, piece.length);
      }
    }
  }

  // False when a segment of the transfer was truncated (before the chunk, or during it: SIGBUS
  // caught). The peer is then treated as gone: the run ends ERROR / PEER_GONE.
  bool copyChunk(const Transfer& t, uint32_t chunk) {
    for (const auto& segment : t.remoteSegments)
      if (!segment->sizeIntact()) return false;
    for (const auto& region : t.locals)
      if (!region->segment->sizeIntact()) return false;
    ChunkCopy c{&t, chunk};
    return guardedAccess(&copyChunkRaw, &c);
  }

  // One attempt at a chunk: the peer must be alive and every segment whole.
  bool runChunk(Transfer& t, uint32_t chunk) {
    if (!t.remote->alive()) return false;
    if (copyChunk(t, chunk)) return true;
    t.remote->dead.store(true, std::memory_order_release);  // its memory can no longer be trusted
    return false;
  }

  void completeChunkLocked(Transfer& t, uint32_t chunk, bool copied) {
    t.inflight--;
    if (copied) {
      t.chunksDone++;
      t.bytesDone.fetch_add(t.chunkBytes[chunk], std::memory_order_relaxed);
    } else if (!t.cancelled) {
      cancelLocked(t, ErrorCode::PeerGone);
    }
    if (t.cancelled) {
      if (t.inflight == 0 && t.active) finishLocked(t, XferStatus::Error, t.cancelCode);
      return;
    }
    if (t.chunksDone == t.chunkCount()) {
      if (t.notification) {
        tryNotifyLocked(t);
      } else {
        finishLocked(t, XferStatus::Done, std::nullopt);
      }
    }
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
        // The receiver has not drained its mailbox yet: the transfer stays IN_PROGRESS (as
        // NIXL's does until its notification left) and the progress loop retries.
        t.notifyPending = true;
        pendingNotify_.push_back(t.shared_from_this());
        break;
    }
  }

  void cancelLocked(Transfer& t, ErrorCode code) {
    if (!t.active || t.cancelled) return;
    t.cancelled = true;
    t.cancelCode = code;
    auto matches = [&t](const std::shared_ptr<Transfer>& p) { return p.get() == &t; };
    runq_.erase(std::remove_if(runq_.begin(), runq_.end(), matches), runq_.end());
    pendingNotify_.erase(std::remove_if(pendingNotify_.begin(), pendingNotify_.end(), matches), pendingNotify_.end());
    t.notifyPending = false;
    if (t.inflight == 0) finishLocked(t, XferStatus::Error, code);
  }

  // The run is over and no chunk is in flight: terminal and quiescent at once.
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
    if (t.released) eraseReleasedLocked(t);
  }

  // A released, quiescent transfer leaves no record: ids are never reused (nextTransferId_ only
  // grows), so an id below it that is not in transfers_ is known to be released, without a
  // tombstone. Callers hold a shared_ptr to t (findLocked/snapshots), so t outlives the erase.
  void eraseReleasedLocked(Transfer& t) {
    t.dropResources();
    transfers_.erase(t.id);
  }

  std::vector<std::shared_ptr<Transfer>> liveTransfersLocked() const {
    std::vector<std::shared_ptr<Transfer>> out;
    out.reserve(transfers_.size());
    for (const auto& [id, t] : transfers_) out.push_back(t);
    return out;
  }

  struct SendOp {
    ControlBlock* ctl;
    int* lane;  // RemoteAgent::lane (sendMutex held by the caller)
    uint64_t token;
    const std::string* name;
    const uint8_t* data;
    size_t length;
    SendResult result;
  };

  // Runs under guardedAccess: plain memory and atomics only.
  static void sendRaw(void* arg) {
    SendOp& op = *static_cast<SendOp*>(arg);
    ControlBlock* ctl = op.ctl;
    if (*op.lane < 0) {
      for (uint32_t i = 0; i < kLanes; ++i) {
        Lane& candidate = ctl->lane[i];
        // Only an empty lane: messages left by a previous owner must not be read as ours.
        if (candidate.head.load(std::memory_order_acquire) != candidate.tail.load(std::memory_order_acquire)) continue;
        uint64_t expected = 0;
        if (candidate.owner.compare_exchange_strong(expected, op.token, std::memory_order_acq_rel)) {
          candidate.ownerNameLength = static_cast<uint32_t>(op.name->size());
          std::memcpy(candidate.ownerName, op.name->data(), op.name->size());
          *op.lane = static_cast<int>(i);
          break;
        }
      }
      if (*op.lane < 0) {
        op.result = SendResult::NoLane;
        return;
      }
    }
    Lane& lane = ctl->lane[*op.lane];
    uint64_t tail = lane.tail.load(std::memory_order_relaxed);
    uint64_t head = lane.head.load(std::memory_order_acquire);
    if (tail - head >= kSlots) {
      op.result = SendResult::Full;
      return;
    }
    Slot& slot = lane.slots[tail % kSlots];
    slot.length = static_cast<uint32_t>(op.length);
    if (op.length > 0) std::memcpy(slot.data, op.data, op.length);
    lane.tail.store(tail + 1, std::memory_order_release);  // publishes the name too, on first use
    ctl->doorbell.fetch_add(1, std::memory_order_release);
    futexWake(&ctl->doorbell);
    op.result = SendResult::Ok;
  }

  SendResult sendTo(RemoteAgent& remote, const uint8_t* data, size_t length) {
    if (remote.invalidated.load() || !remote.alive()) return SendResult::Gone;
    std::lock_guard<std::mutex> sendLock(remote.sendMutex);
    SendOp op{remote.ctl, &remote.lane, token_, &config_.name, data, length, SendResult::Gone};
    if (!remote.ctlSegment->sizeIntact() || !guardedAccess(&sendRaw, &op)) {
      remote.dead.store(true, std::memory_order_release);  // its control segment was truncated
      return SendResult::Gone;
    }
    return op.result;
  }

  struct ReleaseLaneOp {
    Lane* lane;
    uint64_t token;
  };
  static void releaseLaneRaw(void* arg) {
    auto* op = static_cast<ReleaseLaneOp*>(arg);
    uint64_t expected = op->token;
    op->lane->owner.compare_exchange_strong(expected, 0, std::memory_order_acq_rel);
  }

  void releaseLaneLocked(RemoteAgent& remote) {
    if (remote.lane < 0) return;
    ReleaseLaneOp op{&remote.ctl->lane[remote.lane], token_};
    if (remote.ctlSegment->sizeIntact()) guardedAccess(&releaseLaneRaw, &op);
    remote.lane = -1;
  }

  // One message out of lane i of our own mailbox, copied to plain memory under guardedAccess
  // (a peer can truncate our control segment by name).
  struct PopOp {
    Lane* lane;
    bool got;
    uint64_t owner;
    uint32_t nameLength;
    char name[kMaxName];
    uint32_t length;
    uint8_t data[kMaxNotif];
  };
  static void popRaw(void* arg) {
    PopOp& op = *static_cast<PopOp*>(arg);
    Lane& lane = *op.lane;
    op.got = false;
    uint64_t head = lane.head.load(std::memory_order_relaxed);
    uint64_t tail = lane.tail.load(std::memory_order_acquire);
    if (head == tail) return;
    if (tail - head > kSlots) {
      // Not a ring any more (a peer wrote garbage): drop what it claims, never loop over it.
      lane.head.store(tail, std::memory_order_release);
      return;
    }
    const Slot& slot = lane.slots[head % kSlots];
    op.owner = lane.owner.load(std::memory_order_acquire);
    op.nameLength = std::min<uint32_t>(lane.ownerNameLength, kMaxName);  // clamp: a peer could write garbage
    std::memcpy(op.name, lane.ownerName, op.nameLength);
    op.length = std::min<uint32_t>(slot.length, kMaxNotif);
    std::memcpy(op.data, slot.data, op.length);
    lane.head.store(head + 1, std::memory_order_release);
    op.got = true;
  }

  // Consumer side of our own mailbox (consumeMu_ held). Lanes are scanned round-robin.
  bool popOneLocked(Notification& out) {
    if (ctl_ == nullptr || !ctlSegment_->sizeIntact()) return false;
    for (uint32_t k = 0; k < kLanes; ++k) {
      uint32_t i = (nextLane_ + k) % kLanes;
      popScratch_.lane = &ctl_->lane[i];
      if (!guardedAccess(&popRaw, &popScratch_)) return false;
      if (!popScratch_.got) continue;
      // The sender is the lane's owner as first seen: a later rewrite of the name by anyone
      // does not change who the messages of this owner are from.
      LaneSender& sender = laneSenders_[i];
      if (sender.owner != popScratch_.owner) {
        sender.owner = popScratch_.owner;
        sender.name.assign(popScratch_.name, popScratch_.nameLength);
      }
      out.from = sender.name;
      out.bytes.assign(popScratch_.data, popScratch_.data + popScratch_.length);
      nextLane_ = (i + 1) % kLanes;
      return true;
    }
    return false;
  }

  void maybeReclaimLanesLocked() {
    if (ctl_ == nullptr || !ctlSegment_->sizeIntact()) return;
    int64_t now = nowNs();
    if (now - lastReclaimNs_ < 100'000'000) return;
    lastReclaimNs_ = now;
    for (uint32_t i = 0; i < kLanes; ++i) {
      Lane& lane = ctl_->lane[i];
      uint64_t owner = lane.owner.load(std::memory_order_acquire);
      if (owner == 0 || lane.head.load() != lane.tail.load()) continue;
      if (!pidAlive(static_cast<pid_t>(owner >> 32))) lane.owner.compare_exchange_strong(owner, 0);
    }
  }

  void copyLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || !runq_.empty(); });
      if (stop_) return;
      std::shared_ptr<Transfer> t = takeChunkLocked();
      uint32_t c = t->nextChunk - 1;
      if (!runq_.empty()) cv_.notify_one();
      lock.unlock();
      bool ok = runChunk(*t, c);
      lock.lock();
      completeChunkLocked(*t, c, ok);
    }
  }

  void progressLoop() {
    for (;;) {
      // Our own control segment can be truncated by name too; then the doorbell is unreadable
      // and the loop falls back to polling (futex on a missing page fails with EFAULT, no signal).
      uint32_t seen = ctlSegment_->sizeIntact() ? ctl_->doorbell.load(std::memory_order_acquire) : 0;
      bool arrived = false;
      {
        std::lock_guard<std::mutex> consume(consumeMu_);
        Notification n;
        while (inbox_.size() < kMaxInbox && popOneLocked(n)) {
          inbox_.push_back(std::move(n));
          arrived = true;
        }
        maybeReclaimLanesLocked();
      }
      if (arrived) {
        Event e;
        e.kind = Event::Kind::Notification;
        sink_->push(e);
      }
      bool pending;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        std::deque<std::shared_ptr<Transfer>> retry;
        retry.swap(pendingNotify_);
        for (auto& t : retry) {
          t->notifyPending = false;
          if (t->active && !t->cancelled) tryNotifyLocked(*t);
        }
        pending = !pendingNotify_.empty();
      }
      futexWait(&ctl_->doorbell, seen, pending ? 1 : 50);
    }
  }

  AgentConfig config_;
  EventSink* sink_;
  pid_t pid_ = 0;
  uint64_t token_ = 0;
  uint64_t nonce_ = 0;
  std::string prefix_;
  std::shared_ptr<Segment> ctlSegment_;
  ControlBlock* ctl_ = nullptr;

  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  bool stop_ = false;
  uint64_t nextRegionId_ = 1;
  uint64_t nextTransferId_ = 1;
  std::map<uint64_t, std::shared_ptr<LocalRegion>> regions_;
  std::map<std::string, std::shared_ptr<RemoteAgent>> remotes_;
  std::map<uint64_t, std::shared_ptr<Transfer>> transfers_;
  std::deque<std::shared_ptr<Transfer>> runq_;
  std::deque<std::shared_ptr<Transfer>> pendingNotify_;

  std::mutex consumeMu_;  // our mailbox's single consumer; never held while taking mu_
  std::deque<Notification> inbox_;
  struct LaneSender {
    uint64_t owner = 0;
    std::string name;
  };
  LaneSender laneSenders_[kLanes];
  PopOp popScratch_{};  // 4 KiB: kept off the copy and progress threads' stacks
  uint32_t nextLane_ = 0;
  int64_t lastReclaimNs_ = 0;

  std::vector<std::thread> workers_;
  std::thread progressThread_;

  // Benchmark baseline pool (baselineCopy); started on first use, joined in close().
  struct BaselineJob {
    const uint8_t* src = nullptr;
    uint8_t* dst = nullptr;
    uint64_t length = 0;
    uint64_t blockBytes = 1;
    uint64_t chunkBytes = 1;
    unsigned threads = 0;
  };
  std::mutex baselineMu_;
  std::condition_variable baselineCv_;
  std::condition_variable baselineDone_;
  std::vector<std::thread> baselineThreads_;
  BaselineJob baselineJob_;
  std::atomic<uint64_t> baselineNext_{0};
  uint64_t baselineGeneration_ = 0;
  unsigned baselineRunning_ = 0;
  bool baselineStop_ = false;
};

class ShmBackend final : public Backend {
 public:
  std::string name() const override { return "shm"; }
  std::unique_ptr<AgentState> createAgentState(const AgentConfig& config, EventSink* sink) override {
    return std::make_unique<ShmAgent>(config, sink);
  }
};

}  // namespace
}  // namespace xfer::shm

XFERSTATE_REGISTER_BACKEND("shm", ::xfer::shm::ShmBackend)

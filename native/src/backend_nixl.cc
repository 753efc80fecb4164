// The "nixl" backend: the real NIXL agent (ai-dynamo/nixl, v1.4.0) with its UCX plugin, compiled
// in only when NIXL is installed (detect-nixl.cjs defines XFERSTATE_WITH_NIXL).
//
// What NIXL really does, and what this backend therefore promises (see docs/backends.md):
// - There is no cancel. releaseXferReq() on an in-flight UCX transfer returns success while the
//   bytes keep moving and the notification is never sent, and deregistering the memory under an
//   orphaned UCX request can crash inside UCX. So abort() is refused, and release() of an
//   in-flight handle is accepted but NOT quiescent: the handle is drained (its status polled to a
//   terminal value) and only then given to releaseXferReq(); a Quiesced event reports that.
// - The completion notification is sent from the initiator's getXferStatus() call, and without
//   RDMA the target must make progress too. So every agent runs a poller thread (or, with
//   progress: 'manual', polls in step()) that calls getXferStatus() on every posted handle and
//   getNotifs() for the target side.
// - A terminal status is sticky; reposting an active handle is refused (REPOST_ACTIVE).
//
// Threading: every nixlAgent call is made with mu_ held (and the agent runs with
// NIXL_THREAD_SYNC_STRICT, under which NIXL creates its UCX workers SERIALIZED).
#include <sys/mman.h>
#include <unistd.h>

#include <nixl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "backend.h"
#include "shm_segment.h"  // pidAlive, crc32, validAgentName

namespace xfer::nixlb {
namespace {

constexpr char kMetaMagic[8] = {'X', 'F', 'S', 'T', 'N', 'I', 'X', '1'};
constexpr uint32_t kMaxNotif = 4096;  // same bound as shm; NIXL itself has none this small
constexpr uint32_t kMaxName = 64;
constexpr uint64_t kMaxRegionBytes = 1ull << 40;

using Clock = std::chrono::steady_clock;

using shm::crc32;
using shm::pidAlive;
using shm::validAgentName;

// Agents of this process that are open, by nonce: a peer in this process is alive exactly while
// it is listed (its pid is ours, so pidAlive() cannot tell).
std::mutex gLiveMu;
std::set<uint64_t> gLive;
// Transfers in flight towards each agent of this process (by target nonce), counted by the
// initiators: a closing agent keeps its UCX worker progressing until they are over (see close()).
std::map<uint64_t, int64_t> gInbound;

void countInbound(uint64_t nonce, int64_t delta) {
  std::lock_guard<std::mutex> lock(gLiveMu);
  if ((gInbound[nonce] += delta) <= 0) gInbound.erase(nonce);
}

bool peerAlive(uint32_t pid, uint64_t nonce) {
  if (static_cast<pid_t>(pid) == ::getpid()) {
    std::lock_guard<std::mutex> lock(gLiveMu);
    return gLive.count(nonce) != 0;
  }
  return pidAlive(static_cast<pid_t>(pid));
}

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

ErrorCode codeOf(nixl_status_t s) {
  switch (s) {
    case NIXL_ERR_NOT_FOUND: return ErrorCode::UnknownRemote;
    case NIXL_ERR_REMOTE_DISCONNECT: return ErrorCode::PeerGone;
    case NIXL_ERR_INVALID_PARAM: return ErrorCode::InvalidArgument;
    case NIXL_ERR_REPOST_ACTIVE: return ErrorCode::RepostActive;
    case NIXL_ERR_CANCELED: return ErrorCode::Aborted;
    case NIXL_ERR_NOT_SUPPORTED: return ErrorCode::NotSupported;
    default: return ErrorCode::Backend;
  }
}

[[noreturn]] void failNixl(const char* what, nixl_status_t s) {
  throw Error(codeOf(s), std::string(what) + " failed: " + nixlEnumStrings::statusStr(s) + " (" + std::to_string(s) + ")");
}

// ---- host memory handed to JS: anonymous private pages, registered with NIXL ----
//
// The address range is never unmapped, only emptied: without RDMA, UCX emulates RMA with active
// messages and the *target's* put handler memcpy()s to the address it was given without checking
// that the region is still registered. A peer holding an old rkey (a transfer created before we
// deregistered, or a late one) would otherwise crash this process (SIGSEGV in ucp_put_handler).
// Releasing replaces the pages with fresh zero pages (the memory goes back to the OS) and keeps
// the range mapped, so such a write lands in scratch memory. Only address space is kept.
class NixlMemory final : public HostMemory {
 public:
  explicit NixlMemory(uint64_t size) : size_(size) {
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw Error(ErrorCode::Backend, "mmap of " + std::to_string(size) + " bytes failed");
    data_ = static_cast<uint8_t*>(p);
  }
  ~NixlMemory() override { releaseNow(); }
  uint8_t* data() const noexcept override { return data_; }
  uint64_t size() const noexcept override { return size_; }
  void releaseNow() noexcept override {
    std::lock_guard<std::mutex> lock(mu_);
    if (released_) return;
    released_ = true;
    ::mmap(data_, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  }

 private:
  std::mutex mu_;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool released_ = false;
};

struct LocalRegion {
  uint64_t id = 0;
  std::shared_ptr<NixlMemory> memory;
  nixl_reg_dlist_t regList{DRAM_SEG};
  uint32_t activeUses = 0;  // posted runs not yet terminal
};

struct RemoteRegion {
  uint64_t addr = 0;
  uint64_t size = 0;
};

struct RemoteAgent {
  std::string name;
  uint32_t pid = 0;
  uint64_t nonce = 0;
  uint64_t generation = 0;
  std::map<uint64_t, RemoteRegion> regions;
  bool invalidating = false;  // invalidateRemote() asked; NIXL is told once nothing is in flight
  bool dead = false;
  Clock::time_point lastCheck{};
  // Its process exited or the agent closed (checked at most every 2 ms).
  bool alive() {
    if (dead) return false;
    Clock::time_point now = Clock::now();
    if (now - lastCheck < std::chrono::milliseconds(2)) return true;
    lastCheck = now;
    if (!peerAlive(pid, nonce)) dead = true;
    return !dead;
  }
};

struct Transfer {
  uint64_t id = 0;
  nixlXferReqH* req = nullptr;
  std::shared_ptr<RemoteAgent> remote;
  uint64_t remoteGeneration = 0;
  std::vector<std::shared_ptr<LocalRegion>> locals;
  std::optional<std::vector<uint8_t>> notification;
  uint64_t totalBytes = 0;
  XferStatus status = XferStatus::NotPosted;
  std::optional<ErrorCode> error;
  bool active = false;    // posted, and NIXL has not reported a terminal status yet (not quiescent)
  bool reported = false;  // a Terminal event went out for this run (maybe before quiescence: peer died)
  bool released = false;  // the caller released it (maybe still draining)
  Clock::time_point postedAt{};
};

// ---- metadata blob: our header + region table + NIXL's own getLocalMD() blob ----

struct Writer {
  std::vector<uint8_t> out;
  void bytes(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  void u32(uint32_t v) { bytes(&v, sizeof v); }
  void u64(uint64_t v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
};

struct Reader {
  const uint8_t* p;
  size_t left;
  void need(size_t n) {
    if (n > left) throw Error(ErrorCode::BadMetadata, "metadata is truncated");
  }
  void bytes(void* dst, size_t n) {
    need(n);
    std::memcpy(dst, p, n);
    p += n;
    left -= n;
  }
  uint32_t u32() {
    uint32_t v;
    bytes(&v, sizeof v);
    return v;
  }
  uint64_t u64() {
    uint64_t v;
    bytes(&v, sizeof v);
    return v;
  }
  std::string str(size_t max) {
    uint32_t n = u32();
    if (n > max) throw Error(ErrorCode::BadMetadata, "metadata field too long");
    need(n);
    std::string s(reinterpret_cast<const char*>(p), n);
    p += n;
    left -= n;
    return s;
  }
};

struct Options {
  std::string errorMode;  // ucx_error_handling_mode: peer | none
  bool progressThread = false;
  uint64_t idlePollUs = 100;
  uint64_t closeDrainMs = 5000;
};

Options readOptions() {
  Options o;
  // Default `none`, not NIXL's `peer`: with Debian's UCX 1.13, `peer` on a host without RDMA
  // runs RMA as active messages over TCP, and a target whose initiator dies mid-transfer aborts
  // in ucp_put_handler ("Fatal: unexpected error: Endpoint timeout"). `none` uses shared memory
  // (2-4x faster) and has no UCX failure detection; peer death is detected by pid instead.
  o.errorMode = envOr("XFERSTATE_NIXL_ERROR_MODE", "none");
  if (o.errorMode != "peer" && o.errorMode != "none") {
    throw Error(ErrorCode::InvalidArgument, "XFERSTATE_NIXL_ERROR_MODE must be 'peer' or 'none'");
  }
  o.progressThread = envOr("XFERSTATE_NIXL_PROGRESS_THREAD", "0") == "1";
  o.idlePollUs = std::strtoull(envOr("XFERSTATE_NIXL_IDLE_POLL_US", "100").c_str(), nullptr, 10);
  if (o.idlePollUs > 100000) o.idlePollUs = 100000;
  o.closeDrainMs = std::strtoull(envOr("XFERSTATE_NIXL_CLOSE_DRAIN_MS", "5000").c_str(), nullptr, 10);
  return o;
}

class NixlAgentState final : public AgentState {
 public:
  NixlAgentState(const AgentConfig& config, EventSink* sink) : config_(config), sink_(sink), options_(readOptions()) {
    if (!validAgentName(config.name)) {
      throw Error(ErrorCode::InvalidArgument, "agent name must be 1-64 characters of [A-Za-z0-9._-]");
    }
    // Same bounds as shm so one options object fits every backend (NIXL itself uses neither).
    if (config.chunkBytes < 4096 || config.chunkBytes > (64ull << 20)) {
      throw Error(ErrorCode::InvalidArgument, "chunkBytes must be 4096..67108864");
    }
    if (config.copyThreads < 1 || config.copyThreads > 16) {
      throw Error(ErrorCode::InvalidArgument, "copyThreads must be 1..16");
    }
    // UCX 1.13 warns on every context about keys NIXL sets that it does not know; keep
    // stderr readable unless the user chose a level.
    ::setenv("UCX_LOG_LEVEL", "error", 0);
    // No UCX memory hooks (mmap/munmap/brk patching) inside V8's process: tcp, sysv, posix and
    // cma need no registration cache, and a hooked process crashed once in V8's GC here.
    ::setenv("UCX_MEM_EVENTS", "no", 0);
    std::random_device rd;
    nonce_ = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^
             static_cast<uint64_t>(Clock::now().time_since_epoch().count());

    nixlAgentConfig cfg(options_.progressThread, false, 0, nixl_thread_sync_t::NIXL_THREAD_SYNC_STRICT);
    agent_ = std::make_unique<nixlAgent>(config.name, cfg);
    nixl_b_params_t params;
    nixl_mem_list_t mems;
    nixl_status_t s = agent_->getPluginParams("UCX", mems, params);
    if (s != NIXL_SUCCESS) {
      throw Error(ErrorCode::NotSupported, std::string("NIXL UCX plugin not found (NIXL_PLUGIN_DIR?): ") + nixlEnumStrings::statusStr(s));
    }
    params["ucx_error_handling_mode"] = options_.errorMode;
    // UCX's TCP transport listens on every interface by default; this is a single-host layer.
    if (std::getenv("UCX_NET_DEVICES") == nullptr) params["engine_config"] = "NET_DEVICES=lo";
    s = agent_->createBackend("UCX", params, ucx_);
    if (s != NIXL_SUCCESS) failNixl("createBackend(UCX)", s);

    {
      std::lock_guard<std::mutex> lock(gLiveMu);
      gLive.insert(nonce_);
    }
    if (config.progress == ProgressMode::Thread) {
      poller_ = std::thread([this] { pollLoop(); });
    }
  }

  ~NixlAgentState() override { close(); }

  Semantics semantics() const override {
    Semantics s;
    s.backend = "nixl";
    s.canAbortInFlight = false;             // NIXL has no abort (nixl.md §5)
    s.releaseInFlightAccepted = true;       // accepted, then drained to a terminal status
    s.releaseInFlightQuiesces = false;      // the bytes keep moving after release returns
    s.notificationAfterData = true;         // UCX sends it after puts + ep flush completed
    s.notificationOnReleasedTransfer = true;  // the drain's status poll still sends it
    s.terminalImpliesQuiesced = true;       // terminal = every UCX request of the run completed
    s.repostActiveRejected = true;
    s.terminalStatusSticky = true;
    s.crossProcess = true;
    s.manualProgress = config_.progress == ProgressMode::Manual;
    s.maxNotificationBytes = kMaxNotif;
    s.chunkBytes = 0;  // NIXL reports no partial progress
    return s;
  }

  RegionInfo registerMemory(uint64_t size) override {
    if (size == 0 || size > kMaxRegionBytes) throw Error(ErrorCode::InvalidArgument, "region size must be 1..2^40 bytes");
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto region = std::make_shared<LocalRegion>();
    region->id = nextRegionId_++;
    region->memory = std::make_shared<NixlMemory>(size);
    region->regList.addDesc(nixlBlobDesc(reinterpret_cast<uintptr_t>(region->memory->data()), size, 0));
    nixl_status_t s = agent_->registerMem(region->regList);
    if (s != NIXL_SUCCESS) failNixl("registerMem", s);
    regions_[region->id] = region;
    RegionInfo info;
    info.id = region->id;
    info.size = size;
    info.name = config_.name + "#" + std::to_string(region->id);
    info.memory = region->memory;
    return info;
  }

  void deregisterMemory(uint64_t regionId) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = regions_.find(regionId);
    if (it == regions_.end()) throw Error(ErrorCode::NotRegistered, "region " + std::to_string(regionId) + " is not registered");
    // NIXL's deregisterMem does not check for in-flight transfers, and unmapping a UCX memh
    // that an orphaned request still uses crashes (nixl #2044): refuse instead.
    if (it->second->activeUses > 0) {
      throw Error(ErrorCode::InUse, "region " + std::to_string(regionId) + " is used by a transfer that is not quiescent");
    }
    nixl_status_t s = agent_->deregisterMem(it->second->regList);
    if (s != NIXL_SUCCESS) failNixl("deregisterMem", s);
    regions_.erase(it);
  }

  std::vector<uint8_t> exportMetadata() override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    nixl_blob_t md;
    nixl_status_t s = agent_->getLocalMD(md);
    if (s != NIXL_SUCCESS) failNixl("getLocalMD", s);
    Writer w;
    w.bytes(kMetaMagic, sizeof kMetaMagic);
    w.str(config_.name);
    w.u32(static_cast<uint32_t>(::getpid()));
    w.u64(nonce_);
    w.u32(static_cast<uint32_t>(regions_.size()));
    for (const auto& [id, region] : regions_) {
      w.u64(id);
      w.u64(reinterpret_cast<uintptr_t>(region->memory->data()));
      w.u64(region->memory->size());
    }
    w.str(md);
    w.u32(crc32(w.out.data(), w.out.size()));
    return std::move(w.out);
  }

  std::string loadRemoteMetadata(const uint8_t* data, size_t length) override {
    if (length < sizeof kMetaMagic + 4) throw Error(ErrorCode::BadMetadata, "metadata is truncated");
    uint32_t crc;
    std::memcpy(&crc, data + length - 4, 4);
    if (std::memcmp(data, kMetaMagic, sizeof kMetaMagic) == 0 && crc32(data, length - 4) != crc) {
      throw Error(ErrorCode::BadMetadata, "metadata checksum mismatch (corrupted or truncated)");
    }
    Reader r{data, length - 4};
    char magic[8];
    r.bytes(magic, sizeof magic);
    if (std::memcmp(magic, kMetaMagic, sizeof magic) != 0) {
      throw Error(ErrorCode::BadMetadata, "not nixl-backend metadata (wrong magic)");
    }
    auto remote = std::make_shared<RemoteAgent>();
    remote->name = r.str(kMaxName);
    remote->pid = r.u32();
    remote->nonce = r.u64();
    uint32_t count = r.u32();
    if (count > (1u << 20)) throw Error(ErrorCode::BadMetadata, "too many regions in metadata");
    for (uint32_t i = 0; i < count; ++i) {
      uint64_t id = r.u64();
      RemoteRegion region{r.u64(), r.u64()};
      if (region.size == 0 || region.addr + region.size < region.addr) throw Error(ErrorCode::BadMetadata, "bad region in metadata");
      if (!remote->regions.emplace(id, region).second) throw Error(ErrorCode::BadMetadata, "duplicate region id in metadata");
    }
    std::string md = r.str(1u << 26);
    if (r.left != 0) throw Error(ErrorCode::BadMetadata, "trailing bytes after metadata");
    if (!validAgentName(remote->name)) throw Error(ErrorCode::BadMetadata, "bad agent name in metadata");
    if (!peerAlive(remote->pid, remote->nonce)) throw Error(ErrorCode::PeerGone, "agent '" + remote->name + "' is not running");

    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    if (remote->name == config_.name) {
      // Loopback: NIXL needs no metadata for its own name (createXferReq to itself uses UCX's
      // self connection), only our region table does.
      if (remote->nonce != nonce_) throw Error(ErrorCode::BadMetadata, "metadata of another agent named like this one");
      remote->generation = ++generation_;
      remotes_[remote->name] = remote;
      return remote->name;
    }
    auto it = remotes_.find(remote->name);
    if (it != remotes_.end() && it->second->nonce != remote->nonce) {
      // Another incarnation under the same name: NIXL refuses new connection info for a known
      // agent (NOT_ALLOWED), so forget the old one first. Its handles can no longer be posted.
      if (!it->second->invalidating) agent_->invalidateRemoteMD(remote->name);
      remotes_.erase(it);
      it = remotes_.end();
    }
    std::string loaded;
    nixl_status_t s = agent_->loadRemoteMD(md, loaded);
    if (s != NIXL_SUCCESS) {
      if (s == NIXL_ERR_MISMATCH || s == NIXL_ERR_INVALID_PARAM) {
        throw Error(ErrorCode::BadMetadata, std::string("NIXL rejected the metadata: ") + nixlEnumStrings::statusStr(s));
      }
      failNixl("loadRemoteMD", s);
    }
    if (loaded != remote->name) throw Error(ErrorCode::BadMetadata, "agent name in metadata does not match NIXL's");
    remote->generation = ++generation_;
    // Same incarnation (re-exported after more registrations): keep one record, so handles
    // created from the earlier metadata stay valid, as they do in NIXL.
    if (it != remotes_.end() && !it->second->invalidating) {
      it->second->regions = remote->regions;
      return remote->name;
    }
    remotes_[remote->name] = remote;
    return remote->name;
  }

  void invalidateRemote(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = remotes_.find(name);
    if (it == remotes_.end()) throw Error(ErrorCode::UnknownRemote, "no metadata loaded for agent '" + name + "'");
    std::shared_ptr<RemoteAgent> remote = it->second;
    remotes_.erase(it);
    remote->invalidating = true;
    // invalidateRemoteMD() mid-flight leaves the bytes landing while getXferStatus() says
    // NOT_FOUND forever (nixl.md §5.4): tell NIXL only once nothing is in flight to it.
    maybeFinishInvalidateLocked(remote);
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
    t->remote = rit->second;
    t->remoteGeneration = rit->second->generation;
    t->notification = spec.notification;
    nixl_xfer_dlist_t local(DRAM_SEG), remote(DRAM_SEG);
    std::set<uint64_t> seen;
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
      uint64_t lsize = lit->second->memory->size();
      if (l.offset > lsize || l.length > lsize - l.offset) {
        throw Error(ErrorCode::OutOfRange, "local descriptor " + std::to_string(i) + " is outside its region");
      }
      if (r.offset > sit->second.size || r.length > sit->second.size - r.offset) {
        throw Error(ErrorCode::OutOfRange, "remote descriptor " + std::to_string(i) + " is outside its region");
      }
      if (l.length != r.length) throw Error(ErrorCode::LengthMismatch, "descriptor " + std::to_string(i) + " lengths differ");
      local.addDesc(nixlBasicDesc(reinterpret_cast<uintptr_t>(lit->second->memory->data()) + l.offset, l.length, 0));
      remote.addDesc(nixlBasicDesc(sit->second.addr + r.offset, r.length, 0));
      if (seen.insert(l.regionId).second) t->locals.push_back(lit->second);
      t->totalBytes += l.length;
    }
    nixl_opt_args_t extra;
    extra.backends.push_back(ucx_);
    if (spec.notification) extra.notif = std::string(spec.notification->begin(), spec.notification->end());
    nixl_status_t s = agent_->createXferReq(spec.op == XferOp::Write ? NIXL_WRITE : NIXL_READ, local, remote,
                                            spec.remoteAgent, t->req, &extra);
    if (s != NIXL_SUCCESS) failNixl("createXferReq", s);
    t->id = nextTransferId_++;
    transfers_[t->id] = t;
    return t->id;
  }

  void post(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    std::shared_ptr<Transfer> held = findLocked(id);  // keeps t alive if finishing erases its record
    Transfer& t = *held;
    if (t.released) throw Error(ErrorCode::Released, "transfer handle was released");
    if (!t.remote->alive()) throw Error(ErrorCode::PeerGone, "agent '" + t.remote->name + "' is gone");
    // NIXL would answer NIXL_ERR_REPOST_ACTIVE too (after one more check of the backend).
    if (t.active) throw Error(ErrorCode::RepostActive, "transfer is still active");
    if (t.remote->invalidating || remotes_.count(t.remote->name) == 0 || remotes_[t.remote->name] != t.remote) {
      throw Error(ErrorCode::UnknownRemote, "metadata of '" + t.remote->name + "' was invalidated or replaced");
    }
    if (!t.remote->alive()) throw Error(ErrorCode::PeerGone, "agent '" + t.remote->name + "' is gone");
    for (const auto& region : t.locals) {
      if (regions_.count(region->id) == 0) throw Error(ErrorCode::NotRegistered, "local region " + std::to_string(region->id) + " was deregistered");
    }
    // Always pass extra: with a null extra NIXL reuses the previous post's notification.
    nixl_opt_args_t extra;
    extra.backends.push_back(ucx_);
    if (t.notification) extra.notif = std::string(t.notification->begin(), t.notification->end());
    nixl_status_t s = agent_->postXferReq(t.req, &extra);
    if (s < 0) failNixl("postXferReq", s);
    t.error.reset();
    t.reported = false;
    t.active = true;
    t.postedAt = Clock::now();
    for (const auto& region : t.locals) region->activeUses++;
    if (static_cast<pid_t>(t.remote->pid) == ::getpid()) countInbound(t.remote->nonce, 1);
    t.status = XferStatus::InProgress;
    active_.push_back(held);
    if (s == NIXL_SUCCESS) {
      // Completed inside the post (the notification, if any, left with it).
      finishLocked(t, XferStatus::Done, std::nullopt);
    }
    cv_.notify_all();
  }

  XferStatus status(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    std::shared_ptr<Transfer> held = findLocked(id);  // keeps t alive if finishing erases its record
    Transfer& t = *held;
    if (t.released) throw Error(ErrorCode::Released, "transfer handle was released");
    if (t.active) pollOneLocked(t);
    return t.status;
  }

  TransferInfo info(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    std::shared_ptr<Transfer> held = findLocked(id);  // keeps t alive if finishing erases its record
    Transfer& t = *held;
    if (t.released) throw Error(ErrorCode::Released, "transfer handle was released");
    if (t.active) pollOneLocked(t);
    TransferInfo info;
    info.status = t.status;
    info.bytesDone = t.status == XferStatus::Done ? t.totalBytes : 0;  // NIXL reports no partial progress
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
    if (t.active) pollOneLocked(t);
    if (t.active) {
      // Not nixlAgent::releaseXferReq() now: that would orphan the UCX requests (the bytes keep
      // landing, no notification, no way to know when the buffers are free). Drain instead;
      // finishLocked() releases the NIXL handle and reports Quiesced.
      return {true, false};
    }
    freeRequestLocked(t);
    eraseIfFreedLocked(t);
    return {true, true};
  }

  ReleaseResult abort(uint64_t id) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    std::shared_ptr<Transfer> held = findLocked(id);  // keeps t alive if finishing erases its record
    Transfer& t = *held;
    if (t.released) throw Error(ErrorCode::Released, "transfer handle was released");
    if (t.active) pollOneLocked(t);
    return {false, !t.active};  // NIXL cannot abort an in-flight transfer
  }

  void sendNotification(const std::string& remoteName, const uint8_t* data, size_t length) override {
    if (length > kMaxNotif) throw Error(ErrorCode::InvalidArgument, "notification larger than " + std::to_string(kMaxNotif) + " bytes");
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto rit = remotes_.find(remoteName);
    if (rit == remotes_.end()) throw Error(ErrorCode::UnknownRemote, "no metadata loaded for agent '" + remoteName + "'");
    if (!rit->second->alive()) throw Error(ErrorCode::PeerGone, "agent '" + remoteName + "' is gone");
    nixl_opt_args_t extra;
    extra.backends.push_back(ucx_);
    nixl_status_t s = agent_->genNotif(remoteName, std::string(reinterpret_cast<const char*>(data), length), &extra);
    if (s < 0) failNixl("genNotif", s);
    cv_.notify_all();  // the poller's progress pushes it out
  }

  std::vector<Notification> pollNotifications() override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    pollNotifsLocked();
    std::vector<Notification> out(std::make_move_iterator(inbox_.begin()), std::make_move_iterator(inbox_.end()));
    inbox_.clear();
    return out;
  }

  // Manual progress: one round of the poller (status of every posted handle, then the
  // notifications). NIXL moves bytes inside those calls, not chunk by chunk, so a step reports
  // the first notification that arrived, else the first transfer that became terminal.
  StepResult step() override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    if (config_.progress != ProgressMode::Manual) throw Error(ErrorCode::NotSupported, "step() needs progress: 'manual'");
    StepResult result;
    std::shared_ptr<Transfer> finished;
    std::vector<std::shared_ptr<Transfer>> snapshot(active_.begin(), active_.end());
    for (auto& t : snapshot) {
      if (pollOneLocked(*t) && !finished) finished = t;
    }
    size_t before = inbox_.size();
    pollNotifsLocked();
    if (inbox_.size() > before) {
      result.kind = StepResult::Kind::Notification;
      result.notification = inbox_[before];
      return result;
    }
    if (finished) {
      result.kind = StepResult::Kind::Chunk;
      result.transferId = finished->id;
      result.bytes = finished->status == XferStatus::Done ? finished->totalBytes : 0;
      result.bytesDone = result.bytes;
      result.totalBytes = finished->totalBytes;
      result.status = finished->status;
    }
    return result;
  }

  std::vector<RemoteRegionInfo> remoteRegions(const std::string& name) override {
    std::lock_guard<std::mutex> lock(mu_);
    checkOpen();
    auto it = remotes_.find(name);
    if (it == remotes_.end()) throw Error(ErrorCode::UnknownRemote, "no metadata loaded for agent '" + name + "'");
    std::vector<RemoteRegionInfo> out;
    for (const auto& [id, region] : it->second->regions) out.push_back({id, region.size});
    return out;
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
      cv_.notify_all();
    }
    {
      std::lock_guard<std::mutex> lock(gLiveMu);
      gLive.erase(nonce_);
    }
    if (poller_.joinable()) poller_.join();

    std::lock_guard<std::mutex> lock(mu_);
    if (!agent_) return;
    // Linger: UCX 1.13 aborts the *peer's* process (assertion `wireup_ep->pending_count == 0`)
    // when its endpoint to us fails while still wiring up with operations queued. So keep our
    // worker progressing a little, and for as long as agents of this process still have
    // transfers in flight towards us (bounded), before the worker goes away.
    Clock::time_point lingerMin = Clock::now() + std::chrono::milliseconds(10);
    Clock::time_point lingerMax = Clock::now() + std::chrono::milliseconds(options_.closeDrainMs);
    for (;;) {
      pollNotifsLocked();
      Clock::time_point now = Clock::now();
      bool inbound;
      {
        std::lock_guard<std::mutex> live(gLiveMu);
        inbound = gInbound.count(nonce_) != 0;
      }
      if ((now >= lingerMin && !inbound) || now >= lingerMax) break;
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    inbox_.clear();
    // Nothing can abort a NIXL transfer: drain what is in flight (bounded), so no UCX request
    // outlives the registrations and the agent.
    Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(options_.closeDrainMs);
    while (!active_.empty() && Clock::now() < deadline) {
      std::vector<std::shared_ptr<Transfer>> snapshot(active_.begin(), active_.end());
      for (auto& t : snapshot) pollOneLocked(*t);
      pollNotifsLocked();
      if (!active_.empty()) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (!active_.empty()) {
      // Still moving after the deadline (a peer that stopped progressing, or died in
      // ucx_error_handling_mode=none). Freeing anything now could let UCX write into freed
      // memory or crash in ucp_memh_put: leak the agent (regions are never unmapped, see NixlMemory).
      for (auto& t : active_) {
        t->status = XferStatus::Error;
        t->error = ErrorCode::Aborted;
        Event e;
        e.kind = Event::Kind::Terminal;
        e.transferId = t->id;
        e.status = XferStatus::Error;
        e.error = ErrorCode::Aborted;
        sink_->push(e);  // terminal for the caller, but never Quiesced
      }
      (void)agent_.release();  // intentionally leaked
      regions_.clear();
      transfers_.clear();
      active_.clear();
      remotes_.clear();
      return;
    }
    for (auto& [id, t] : transfers_) freeRequestLocked(*t);
    transfers_.clear();
    for (auto& [id, region] : regions_) agent_->deregisterMem(region->regList);
    regions_.clear();
    remotes_.clear();
    agent_.reset();  // destroys the UCX backend before JS can unmap any region
  }

 private:
  void checkOpen() const {
    if (closed_) throw Error(ErrorCode::Closed, "agent '" + config_.name + "' is closed");
  }

  // `gone` is the error for an id that existed and was released (its record is erased).
  std::shared_ptr<Transfer> findLocked(uint64_t id, ErrorCode gone = ErrorCode::Released) {
    auto it = transfers_.find(id);
    if (it != transfers_.end()) return it->second;
    if (id > 0 && id < nextTransferId_) {
      throw Error(gone, gone == ErrorCode::DoubleRelease ? "transfer handle " + std::to_string(id) + " was already released"
                                                         : "transfer handle " + std::to_string(id) + " was released");
    }
    throw Error(ErrorCode::InvalidArgument, "unknown transfer handle " + std::to_string(id));
  }

  // One getXferStatus() (which also progresses UCX and sends the deferred notification).
  // Returns true when the transfer became terminal in this call.
  bool pollOneLocked(Transfer& t) {
    if (!t.active) return false;
    nixl_status_t s = agent_->getXferStatus(t.req);
    if (s == NIXL_IN_PROG) {
      if (!t.reported && !t.remote->alive()) {
        // The peer is gone but UCX has not completed the requests (with
        // ucx_error_handling_mode=none it never will): the run is over for the caller (ERROR,
        // PEER_GONE) but NOT quiescent, so its memory stays IN_USE; keep polling.
        t.status = XferStatus::Error;
        t.error = ErrorCode::PeerGone;
        t.reported = true;
        Event terminal;
        terminal.kind = Event::Kind::Terminal;
        terminal.transferId = t.id;
        terminal.status = XferStatus::Error;
        terminal.error = ErrorCode::PeerGone;
        sink_->push(terminal);
        return true;
      }
      return false;
    }
    if (s == NIXL_SUCCESS) {
      finishLocked(t, XferStatus::Done, std::nullopt);
    } else {
      finishLocked(t, XferStatus::Error, codeOf(s));
    }
    return true;
  }

  void finishLocked(Transfer& t, XferStatus status, std::optional<ErrorCode> error) {
    t.active = false;
    if (t.reported) {  // already reported as ERROR/PEER_GONE: that stays the run's outcome
      status = t.status;
      error = t.error;
    }
    t.status = status;
    t.error = error;
    for (const auto& region : t.locals) region->activeUses--;
    if (static_cast<pid_t>(t.remote->pid) == ::getpid()) countInbound(t.remote->nonce, -1);
    active_.erase(std::remove_if(active_.begin(), active_.end(), [&t](const std::shared_ptr<Transfer>& p) { return p.get() == &t; }),
                  active_.end());
    Event terminal;
    terminal.kind = Event::Kind::Terminal;
    terminal.transferId = t.id;
    terminal.status = status;
    terminal.error = error;
    terminal.bytesDone = status == XferStatus::Done ? t.totalBytes : 0;
    if (!t.reported) sink_->push(terminal);
    t.reported = true;
    Event quiesced = terminal;
    quiesced.kind = Event::Kind::Quiesced;
    sink_->push(quiesced);
    if (t.released) {
      freeRequestLocked(t);
      eraseIfFreedLocked(t);  // callers hold a shared_ptr (snapshots, `held`): t outlives this
    }
    if (t.remote && t.remote->invalidating) maybeFinishInvalidateLocked(t.remote);
  }

  // A released transfer whose NIXL request is freed leaves no record (bounded memory for long
  // runs). Ids are never reused, so findLocked() still tells a released id from an unknown one.
  // A request NIXL refused to free keeps its record, so close() retries it.
  void eraseIfFreedLocked(Transfer& t) {
    if (t.released && !t.active && t.req == nullptr) transfers_.erase(t.id);
  }

  void freeRequestLocked(Transfer& t) {
    if (t.req != nullptr && agent_) {
      nixl_status_t s = agent_->releaseXferReq(t.req);
      if (s == NIXL_SUCCESS) t.req = nullptr;  // else (REPOST_ACTIVE) keep it: never reuse its memory blindly
    }
    t.locals.clear();
  }

  void maybeFinishInvalidateLocked(const std::shared_ptr<RemoteAgent>& remote) {
    for (const auto& t : active_)
      if (t->remote == remote) return;
    if (!remote->invalidating) return;
    auto it = remotes_.find(remote->name);
    if (it != remotes_.end() && it->second != remote) return;  // a newer incarnation owns the name
    if (remote->name != config_.name) agent_->invalidateRemoteMD(remote->name);
    remote->invalidating = false;
    remote->generation = 0;
  }

  bool pollNotifsLocked() {
    nixl_notifs_t notifs;
    nixl_opt_args_t extra;
    extra.backends.push_back(ucx_);
    nixl_status_t s = agent_->getNotifs(notifs, &extra);
    (void)s;  // best effort: a backend error here resurfaces on the transfer's status
    bool any = false;
    for (auto& [from, list] : notifs) {
      for (auto& blob : list) {
        Notification n;
        n.from = from;
        n.bytes.assign(blob.begin(), blob.end());
        inbox_.push_back(std::move(n));
        any = true;
      }
    }
    return any;
  }

  // The poller: without RDMA nothing moves unless both sides call into UCX, and the
  // notification leaves only from the initiator's status poll. Busy-ish while a transfer is in
  // flight or traffic was seen recently, otherwise every idlePollUs.
  void pollLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    Clock::time_point lastActivity = Clock::now();
    while (!stop_) {
      bool activity = false;
      std::vector<std::shared_ptr<Transfer>> snapshot(active_.begin(), active_.end());
      for (auto& t : snapshot) activity |= pollOneLocked(*t);
      if (pollNotifsLocked()) {
        activity = true;
        Event e;
        e.kind = Event::Kind::Notification;
        sink_->push(e);
      }
      Clock::time_point now = Clock::now();
      if (activity) lastActivity = now;
      bool running = std::any_of(active_.begin(), active_.end(), [](const std::shared_ptr<Transfer>& t) { return !t->reported; });
      bool hot = running || now - lastActivity < std::chrono::milliseconds(20);
      if (hot) {
        lock.unlock();
        std::this_thread::yield();
        lock.lock();
      } else {
        cv_.wait_for(lock, std::chrono::microseconds(options_.idlePollUs));
      }
    }
  }

  AgentConfig config_;
  EventSink* sink_;
  Options options_;
  uint64_t nonce_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  bool stop_ = false;
  std::unique_ptr<nixlAgent> agent_;
  nixlBackendH* ucx_ = nullptr;
  uint64_t nextRegionId_ = 1;
  uint64_t nextTransferId_ = 1;
  uint64_t generation_ = 0;
  std::map<uint64_t, std::shared_ptr<LocalRegion>> regions_;
  std::map<std::string, std::shared_ptr<RemoteAgent>> remotes_;
  std::map<uint64_t, std::shared_ptr<Transfer>> transfers_;
  std::vector<std::shared_ptr<Transfer>> active_;
  std::deque<Notification> inbox_;
  std::thread poller_;
};

class NixlBackend final : public Backend {
 public:
  std::string name() const override { return "nixl"; }
  std::unique_ptr<AgentState> createAgentState(const AgentConfig& config, EventSink* sink) override {
    return std::make_unique<NixlAgentState>(config, sink);
  }
};

}  // namespace
}  // namespace xfer::nixlb

XFERSTATE_REGISTER_BACKEND("nixl", ::xfer::nixlb::NixlBackend)

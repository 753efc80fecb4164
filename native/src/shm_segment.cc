#include "shm_segment.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <setjmp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace xfer::shm {

namespace {

// Closes a file descriptor on every path out of a scope.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) noexcept : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const noexcept { return fd_; }
  int release() noexcept {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

std::string errnoText(int err) { return std::string(std::strerror(err)); }

constexpr char kMetaMagic[8] = {'X', 'F', 'S', 'T', 'M', 'E', 'T', 'A'};
constexpr uint16_t kMetaVersion = 1;
constexpr size_t kMetaHeaderBytes = 24;
constexpr uint32_t kMaxRegionsInMeta = 1u << 20;
constexpr uint64_t kMaxSegmentBytes = 1ull << 40;

}  // namespace

std::shared_ptr<Segment> Segment::create(const std::string& name, uint64_t size) {
  if (size == 0 || size > kMaxSegmentBytes) {
    throw Error(ErrorCode::InvalidArgument, "region size must be 1.." + std::to_string(kMaxSegmentBytes));
  }
  // posix_fallocate on tmpfs allocates page by page before it reports ENOSPC: refuse sizes that
  // cannot fit up front instead of filling /dev/shm first.
  struct statvfs fs {};
  if (::statvfs("/dev/shm", &fs) == 0 && size / fs.f_frsize >= fs.f_bavail) {
    throw Error(ErrorCode::Backend, "not enough space in /dev/shm for " + std::to_string(size) + " bytes");
  }
  FileDescriptor fd(::shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    int err = errno;
    throw Error(ErrorCode::Backend, "shm_open(" + name + "): " + errnoText(err));
  }
  // From here on, any failure must remove the name again.
  struct UnlinkOnFailure {
    const std::string& name;
    bool armed = true;
    ~UnlinkOnFailure() {
      if (armed) ::shm_unlink(name.c_str());
    }
  } guard{name};
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    int err = errno;
    throw Error(ErrorCode::Backend, "ftruncate(" + name + "): " + errnoText(err));
  }
  int rc = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(size));
  if (rc != 0) {
    throw Error(ErrorCode::Backend, "cannot reserve " + std::to_string(size) + " bytes in /dev/shm: " + errnoText(rc));
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (base == MAP_FAILED) {
    int err = errno;
    throw Error(ErrorCode::Backend, "mmap(" + name + "): " + errnoText(err));
  }
  guard.armed = false;
  return std::shared_ptr<Segment>(new Segment(name, static_cast<uint8_t*>(base), size, true, fd.release()));
}

std::shared_ptr<Segment> Segment::open(const std::string& name, uint64_t minSize) {
  if (!validSegmentName(name)) throw Error(ErrorCode::BadMetadata, "invalid segment name");
  FileDescriptor fd(::shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0));
  if (fd.get() < 0) {
    int err = errno;
    if (err == ENOENT) throw Error(ErrorCode::PeerGone, "peer segment " + name + " is gone");
    throw Error(ErrorCode::Backend, "shm_open(" + name + "): " + errnoText(err));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    int err = errno;
    throw Error(ErrorCode::Backend, "fstat(" + name + "): " + errnoText(err));
  }
  // Mapping past the end of the object would turn every access into SIGBUS.
  if (minSize == 0 || static_cast<uint64_t>(st.st_size) < minSize) {
    throw Error(ErrorCode::BadMetadata, "segment " + name + " is smaller than its metadata claims");
  }
  void* base = ::mmap(nullptr, minSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd.get(), 0);
  if (base == MAP_FAILED) {
    int err = errno;
    throw Error(ErrorCode::Backend, "mmap(" + name + "): " + errnoText(err));
  }
  return std::shared_ptr<Segment>(new Segment(name, static_cast<uint8_t*>(base), minSize, false, fd.release()));
}

Segment::~Segment() {
  releaseNow();
  unlinkName();
}

bool Segment::sizeIntact() const noexcept {
  struct stat st {};
  int fd = fd_.load(std::memory_order_acquire);
  if (fd < 0 || ::fstat(fd, &st) != 0) return false;
  return static_cast<uint64_t>(st.st_size) >= size_;
}

namespace {

thread_local sigjmp_buf* tGuard = nullptr;  // set only around a guarded body on this thread
struct sigaction gPreviousSigbus {};
std::once_flag gSigbusInstalled;

void onSigbus(int sig, siginfo_t* info, void* context) {
  sigjmp_buf* guard = tGuard;
  if (guard != nullptr) {
    tGuard = nullptr;
    siglongjmp(*guard, 1);
  }
  // Not a guarded access: behave as if we had never installed a handler.
  if ((gPreviousSigbus.sa_flags & SA_SIGINFO) != 0 && gPreviousSigbus.sa_sigaction != nullptr) {
    gPreviousSigbus.sa_sigaction(sig, info, context);
    return;
  }
  if ((gPreviousSigbus.sa_flags & SA_SIGINFO) == 0 && gPreviousSigbus.sa_handler != SIG_DFL &&
      gPreviousSigbus.sa_handler != SIG_IGN) {
    gPreviousSigbus.sa_handler(sig);
    return;
  }
  ::signal(SIGBUS, SIG_DFL);  // the faulting access runs again and ends the process as before
}

}  // namespace

bool guardedAccess(void (*body)(void*), void* arg) noexcept {
  std::call_once(gSigbusInstalled, [] {
    struct sigaction action {};
    action.sa_sigaction = onSigbus;
    action.sa_flags = SA_SIGINFO | SA_NODEFER;  // NODEFER: SIGBUS is not left blocked after the jump
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGBUS, &action, &gPreviousSigbus);
  });
  sigjmp_buf buffer;
  if (sigsetjmp(buffer, 0) != 0) return false;  // 0: no mask syscall; NODEFER keeps the mask as it was
  tGuard = &buffer;
  body(arg);
  tGuard = nullptr;
  return true;
}

void Segment::releaseNow() noexcept {
  uint8_t* base = base_.exchange(nullptr, std::memory_order_acq_rel);
  if (base != nullptr) ::munmap(base, size_);
  int fd = fd_.exchange(-1, std::memory_order_acq_rel);
  if (fd >= 0) ::close(fd);
}

void Segment::unlinkName() noexcept {
  if (!owner_) return;
  if (!unlinked_.exchange(true)) ::shm_unlink(name_.c_str());
}

bool pidAlive(pid_t pid) noexcept {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  // A zombie still answers kill(0); its mappings are gone, so it counts as dead.
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  FILE* f = std::fopen(path, "re");
  if (f == nullptr) return true;  // no procfs: trust kill()
  char buf[512];
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = '\0';
  const char* close = std::strrchr(buf, ')');
  if (close == nullptr || close[1] == '\0' || close[2] == '\0') return true;
  char state = close[2];
  return state != 'Z' && state != 'X';
}

static bool safeChar(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

bool validAgentName(const std::string& name) noexcept {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!safeChar(c)) return false;
  return true;
}

bool validSegmentName(const std::string& name) noexcept {
  static const std::string prefix = "/xferstate-";
  if (name.size() <= prefix.size() || name.size() > 200 || name.compare(0, prefix.size(), prefix) != 0) return false;
  for (size_t i = prefix.size(); i < name.size(); ++i)
    if (!safeChar(name[i])) return false;
  return true;
}

uint32_t crc32(const uint8_t* data, size_t length) noexcept {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < length; ++i) crc = table[(crc ^ data[i]) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

namespace {

class Writer {
 public:
  void u16(uint16_t v) { put(&v, sizeof v); }
  void u32(uint32_t v) { put(&v, sizeof v); }
  void u64(uint64_t v) { put(&v, sizeof v); }
  void str(const std::string& s) {
    u16(static_cast<uint16_t>(s.size()));
    put(s.data(), s.size());
  }
  void put(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
  std::vector<uint8_t> out;
};

// Bounds-checked reader: any read past the end is BadMetadata, never an out-of-bounds access.
class Reader {
 public:
  Reader(const uint8_t* data, size_t length) : data_(data), length_(length) {}
  uint16_t u16() { return get<uint16_t>(); }
  uint32_t u32() { return get<uint32_t>(); }
  uint64_t u64() { return get<uint64_t>(); }
  std::string str(size_t maxLength) {
    uint16_t n = u16();
    if (n > maxLength) throw Error(ErrorCode::BadMetadata, "metadata string too long");
    need(n);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return s;
  }
  bool atEnd() const { return pos_ == length_; }

 private:
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data_ + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  void need(size_t n) {
    if (n > length_ - pos_) throw Error(ErrorCode::BadMetadata, "metadata truncated");
  }
  const uint8_t* data_;
  size_t length_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<uint8_t> encodeMetadata(const AgentMeta& meta) {
  Writer body;
  body.str(meta.backend);
  body.str(meta.agentName);
  body.u32(meta.pid);
  body.u64(meta.nonce);
  body.str(meta.ctlName);
  body.u32(static_cast<uint32_t>(meta.regions.size()));
  for (const RegionMeta& r : meta.regions) {
    body.u64(r.id);
    body.u64(r.size);
    body.str(r.shmName);
  }
  Writer blob;
  blob.put(kMetaMagic, sizeof kMetaMagic);
  blob.u16(kMetaVersion);
  blob.u16(0);
  blob.u32(static_cast<uint32_t>(kMetaHeaderBytes + body.out.size()));
  blob.u32(crc32(body.out.data(), body.out.size()));
  blob.u32(0);
  blob.put(body.out.data(), body.out.size());
  return blob.out;
}

AgentMeta decodeMetadata(const uint8_t* data, size_t length) {
  if (data == nullptr || length < kMetaHeaderBytes) throw Error(ErrorCode::BadMetadata, "metadata truncated");
  if (std::memcmp(data, kMetaMagic, sizeof kMetaMagic) != 0) throw Error(ErrorCode::BadMetadata, "bad metadata magic");
  Reader header(data + 8, kMetaHeaderBytes - 8);
  uint16_t version = header.u16();
  uint16_t reserved16 = header.u16();
  uint32_t total = header.u32();
  uint32_t checksum = header.u32();
  uint32_t reserved32 = header.u32();
  if (reserved16 != 0 || reserved32 != 0) throw Error(ErrorCode::BadMetadata, "bad metadata header");
  if (version != kMetaVersion) throw Error(ErrorCode::BadMetadata, "unsupported metadata version " + std::to_string(version));
  if (total != length) throw Error(ErrorCode::BadMetadata, "metadata length mismatch (truncated or padded)");
  if (crc32(data + kMetaHeaderBytes, length - kMetaHeaderBytes) != checksum) {
    throw Error(ErrorCode::BadMetadata, "metadata checksum mismatch");
  }
  Reader r(data + kMetaHeaderBytes, length - kMetaHeaderBytes);
  AgentMeta meta;
  meta.backend = r.str(32);
  meta.agentName = r.str(64);
  if (!validAgentName(meta.agentName)) throw Error(ErrorCode::BadMetadata, "invalid agent name in metadata");
  meta.pid = r.u32();
  meta.nonce = r.u64();
  meta.ctlName = r.str(200);
  if (!validSegmentName(meta.ctlName)) throw Error(ErrorCode::BadMetadata, "invalid control segment name");
  uint32_t count = r.u32();
  if (count > kMaxRegionsInMeta) throw Error(ErrorCode::BadMetadata, "too many regions in metadata");
  for (uint32_t i = 0; i < count; ++i) {
    RegionMeta region;
    region.id = r.u64();
    region.size = r.u64();
    region.shmName = r.str(200);
    if (region.size == 0 || region.size > kMaxSegmentBytes || !validSegmentName(region.shmName)) {
      throw Error(ErrorCode::BadMetadata, "invalid region in metadata");
    }
    meta.regions.push_back(std::move(region));
  }
  if (!r.atEnd()) throw Error(ErrorCode::BadMetadata, "trailing bytes in metadata");
  return meta;
}

}  // namespace xfer::shm

namespace xfer {

std::string shmSegmentPrefix() { return "xferstate-"; }

uint64_t reapStaleShmSegments() {
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) return 0;
  std::vector<std::string> stale;
  const std::string prefix = shmSegmentPrefix();
  const pid_t self = ::getpid();
  while (dirent* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    // xferstate-<pid>-...
    char* end = nullptr;
    long pid = std::strtol(name.c_str() + prefix.size(), &end, 10);
    if (end == nullptr || *end != '-' || pid <= 0 || pid == self) continue;
    if (!shm::pidAlive(static_cast<pid_t>(pid))) stale.push_back("/" + name);
  }
  ::closedir(dir);
  uint64_t removed = 0;
  for (const std::string& name : stale)
    if (::shm_unlink(name.c_str()) == 0) ++removed;
  return removed;
}

}  // namespace xfer

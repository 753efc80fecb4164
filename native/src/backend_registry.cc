#include <map>
#include <mutex>

#include "backend.h"

namespace xfer {

const char* errorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::InvalidArgument: return "INVALID_ARGUMENT";
    case ErrorCode::NotRegistered: return "NOT_REGISTERED";
    case ErrorCode::OutOfRange: return "OUT_OF_RANGE";
    case ErrorCode::LengthMismatch: return "LENGTH_MISMATCH";
    case ErrorCode::UnknownRemote: return "UNKNOWN_REMOTE";
    case ErrorCode::BadMetadata: return "BAD_METADATA";
    case ErrorCode::DoubleRelease: return "DOUBLE_RELEASE";
    case ErrorCode::RepostActive: return "REPOST_ACTIVE";
    case ErrorCode::Closed: return "CLOSED";
    case ErrorCode::PeerGone: return "PEER_GONE";
    case ErrorCode::InUse: return "IN_USE";
    case ErrorCode::Backend: return "BACKEND";
    case ErrorCode::Released: return "RELEASED";
    case ErrorCode::Aborted: return "ABORTED";
    case ErrorCode::NotSupported: return "NOT_SUPPORTED";
  }
  return "BACKEND";
}

namespace {
struct Registry {
  std::mutex mutex;
  std::map<std::string, BackendFactory> factories;
};
// Function-local static: safe to use from other translation units' static initializers.
Registry& registry() {
  static Registry instance;
  return instance;
}
}  // namespace

bool registerBackend(const std::string& name, BackendFactory factory) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  r.factories[name] = std::move(factory);
  return true;
}

std::vector<std::string> backendNames() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& entry : r.factories) names.push_back(entry.first);
  return names;
}

std::unique_ptr<Backend> makeBackend(const std::string& name) {
  Registry& r = registry();
  BackendFactory factory;
  {
    std::lock_guard<std::mutex> lock(r.mutex);
    auto it = r.factories.find(name);
    if (it == r.factories.end()) return nullptr;
    factory = it->second;
  }
  return factory();
}

}  // namespace xfer

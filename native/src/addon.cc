// N-API surface of the transfer agent. Every entry point runs inside guard(), which turns
// xfer::Error (and any other C++ exception) into a JavaScript Error with a `code` property:
// no C++ exception crosses the N-API boundary. The typed facade is src/native/index.ts.
#include <napi.h>

#include <atomic>
#include <cmath>
#include <map>
#include <mutex>
#include <new>

#include "backend.h"
#ifdef XFERSTATE_WITH_CUDA
#include "backend_cuda.h"
#endif

namespace {

using xfer::ErrorCode;

Napi::Error makeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

[[noreturn]] void fail(ErrorCode code, const std::string& message) { throw xfer::Error(code, message); }

template <typename F>
Napi::Value guard(Napi::Env env, F&& body) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;  // already a JavaScript exception (node-addon-api rethrows it into JS)
  } catch (const xfer::Error& e) {
    throw makeError(env, xfer::errorCodeName(e.code()), e.what());
  } catch (const std::bad_alloc&) {
    throw makeError(env, "BACKEND", "out of memory");
  } catch (const std::exception& e) {
    throw makeError(env, "BACKEND", e.what());
  } catch (...) {
    throw makeError(env, "BACKEND", "unknown native error");
  }
}

// ---- argument parsing (wrong types are INVALID_ARGUMENT, never a crash) ----

constexpr double kMaxSafeInteger = 9007199254740991.0;

uint64_t toIndex(double v, const char* what) {
  if (!std::isfinite(v) || v < 0 || v > kMaxSafeInteger || std::floor(v) != v) {
    fail(ErrorCode::InvalidArgument, std::string(what) + " must be a non-negative safe integer");
  }
  return static_cast<uint64_t>(v);
}

uint64_t argIndex(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) fail(ErrorCode::InvalidArgument, std::string(what) + " must be a number");
  return toIndex(info[i].As<Napi::Number>().DoubleValue(), what);
}

std::string argString(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) fail(ErrorCode::InvalidArgument, std::string(what) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

// `v` as a typed array of the given element type, or INVALID_ARGUMENT with `message` (a missing
// argument is undefined, so it fails the same way).
template <typename Array>
Array typedArrayOf(const Napi::Value& v, napi_typedarray_type type, const std::string& message) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) fail(ErrorCode::InvalidArgument, message);
  return v.As<Array>();
}

std::vector<uint8_t> bytesOf(const Napi::Value& v, const char* what) {
  Napi::Uint8Array a = typedArrayOf<Napi::Uint8Array>(v, napi_uint8_array, std::string(what) + " must be a Uint8Array");
  if (a.ByteLength() == 0) return {};
  if (a.Data() == nullptr) fail(ErrorCode::InvalidArgument, std::string(what) + " is detached");
  return std::vector<uint8_t>(a.Data(), a.Data() + a.ByteLength());
}

std::vector<xfer::Descriptor> descriptorsOf(const Napi::Value& v, const char* what) {
  Napi::Float64Array a = typedArrayOf<Napi::Float64Array>(v, napi_float64_array, std::string(what) + " must be a Float64Array of [regionId, offset, length] triples");
  size_t n = a.ElementLength();
  if (n % 3 != 0) fail(ErrorCode::InvalidArgument, std::string(what) + " length must be a multiple of 3");
  if (n / 3 > (1u << 22)) fail(ErrorCode::InvalidArgument, std::string(what) + " has too many descriptors");
  std::vector<xfer::Descriptor> out(n / 3);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i].regionId = toIndex(a[3 * i], "regionId");
    out[i].offset = toIndex(a[3 * i + 1], "offset");
    out[i].length = toIndex(a[3 * i + 2], "length");
  }
  return out;
}

constexpr size_t kPackedEventFields = 5;

int statusIndex(xfer::XferStatus s) {
  switch (s) {
    case xfer::XferStatus::NotPosted: return 0;
    case xfer::XferStatus::InProgress: return 1;
    case xfer::XferStatus::Done: return 2;
    case xfer::XferStatus::Error: return 3;
  }
  return 3;
}

const char* statusName(xfer::XferStatus s) {
  switch (s) {
    case xfer::XferStatus::NotPosted: return "NOT_POSTED";
    case xfer::XferStatus::InProgress: return "IN_PROGRESS";
    case xfer::XferStatus::Done: return "DONE";
    case xfer::XferStatus::Error: return "ERROR";
  }
  return "ERROR";
}

Napi::Uint8Array copyToJs(Napi::Env env, const std::vector<uint8_t>& bytes) {
  Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
  if (!bytes.empty()) std::memcpy(out.Data(), bytes.data(), bytes.size());
  return out;
}

// ---- events: backend threads -> JS thread ----

class EventQueue final : public xfer::EventSink {
 public:
  void push(xfer::Event event) override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      events_.push_back(std::move(event));
    }
    // signaled_: a callback is queued and has not started yet; it will drain this event too.
    // (A drain from JS does not clear it, so a poll loop that drains after every completion
    // does not cost the pushing thread one uv_async_send per event.)
    if (!signaled_.exchange(true)) {
      std::lock_guard<std::mutex> lock(tsfnMutex_);
      if (tsfnOpen_) {
        if (tsfn_.NonBlockingCall(this, &EventQueue::callJs) != napi_ok) signaled_.store(false);
      } else {
        signaled_.store(false);
      }
    }
  }

  // Runs on the JS thread. Plain C calls: during environment teardown calling JS fails, and that
  // must not become a C++ exception in a C callback. A JS exception from the callback stays
  // pending, and Node reports it as uncaught, as for any other callback. `self` is alive here:
  // the queued call holds the JS callback, which holds the agent that owns this queue.
  static void callJs(Napi::Env env, Napi::Function callback, EventQueue* self) {
    if (env == nullptr || callback.IsEmpty()) return;
    self->signaled_.store(false);  // before the drain: a later push queues another call
    napi_value undefined = nullptr;
    napi_value result = nullptr;
    if (napi_get_undefined(env, &undefined) != napi_ok) return;
    napi_call_function(env, undefined, callback, 0, nullptr, &result);
  }

  std::vector<xfer::Event> drain() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<xfer::Event> out;
    out.swap(events_);
    return out;
  }

  // Moves every queued event into `into` (which must be empty): the two vectors trade storage,
  // so a steady post/drain cycle allocates nothing.
  void drainInto(std::vector<xfer::Event>& into) {
    std::lock_guard<std::mutex> lock(mutex_);
    into.swap(events_);
  }

  void attach(Napi::ThreadSafeFunction tsfn) {
    std::lock_guard<std::mutex> lock(tsfnMutex_);
    tsfn_ = tsfn;
    tsfnOpen_ = true;
  }

  // JS thread only.
  void ref(Napi::Env env) {
    std::lock_guard<std::mutex> lock(tsfnMutex_);
    if (tsfnOpen_) tsfn_.Ref(env);
  }
  void unref(Napi::Env env) {
    std::lock_guard<std::mutex> lock(tsfnMutex_);
    if (tsfnOpen_) tsfn_.Unref(env);
  }

  void detach() {
    std::lock_guard<std::mutex> lock(tsfnMutex_);
    if (tsfnOpen_) {
      tsfnOpen_ = false;
      tsfn_.Release();
    }
  }

 private:
  std::mutex mutex_;
  std::vector<xfer::Event> events_;
  std::atomic<bool> signaled_{false};
  std::mutex tsfnMutex_;
  Napi::ThreadSafeFunction tsfn_;
  bool tsfnOpen_ = false;
};

struct JsRegion {
  std::shared_ptr<xfer::HostMemory> memory;   // null: device or caller-owned memory
  Napi::Reference<Napi::ArrayBuffer> buffer;  // weak
  Napi::ObjectReference owner;                // strong: a caller-owned buffer, kept alive while registered
};

class AgentWrap final : public Napi::ObjectWrap<AgentWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeAgent",
                       {
                           InstanceMethod("semantics", &AgentWrap::semantics),
                           InstanceMethod("registerMemory", &AgentWrap::registerMemory),
                           InstanceMethod("deregisterMemory", &AgentWrap::deregisterMemory),
                           InstanceMethod("registerMemoryOfKind", &AgentWrap::registerMemoryOfKind),
                           InstanceMethod("registerExternalHost", &AgentWrap::registerExternalHost),
                           InstanceMethod("registerExternalDevice", &AgentWrap::registerExternalDevice),
                           InstanceMethod("fillPattern", &AgentWrap::fillPattern),
                           InstanceMethod("verifyPattern", &AgentWrap::verifyPattern),
                           InstanceMethod("exportMetadata", &AgentWrap::exportMetadata),
                           InstanceMethod("loadRemoteMetadata", &AgentWrap::loadRemoteMetadata),
                           InstanceMethod("invalidateRemote", &AgentWrap::invalidateRemote),
                           InstanceMethod("createTransfer", &AgentWrap::createTransfer),
                           InstanceMethod("post", &AgentWrap::post),
                           InstanceMethod("status", &AgentWrap::status),
                           InstanceMethod("info", &AgentWrap::info),
                           InstanceMethod("release", &AgentWrap::release),
                           InstanceMethod("abort", &AgentWrap::abort),
                           InstanceMethod("sendNotification", &AgentWrap::sendNotification),
                           InstanceMethod("pollNotifications", &AgentWrap::pollNotifications),
                           InstanceMethod("step", &AgentWrap::step),
                           InstanceMethod("stepTransfer", &AgentWrap::stepTransfer),
                           InstanceMethod("stepNotification", &AgentWrap::stepNotification),
                           InstanceMethod("injectError", &AgentWrap::injectError),
                           InstanceMethod("pendingWork", &AgentWrap::pendingWork),
                           InstanceMethod("stats", &AgentWrap::stats),
                           InstanceMethod("remoteRegions", &AgentWrap::remoteRegions),
                           InstanceMethod("baselineCopy", &AgentWrap::baselineCopy),
                           InstanceMethod("compareWithRemote", &AgentWrap::compareWithRemote),
                           InstanceMethod("drainEvents", &AgentWrap::drainEvents),
                           InstanceMethod("drainEventsPacked", &AgentWrap::drainEventsPacked),
                           InstanceMethod("close", &AgentWrap::close),
                       });
  }

  // new NativeAgent(name, backend, progress, chunkBytes, copyThreads, onEvents)
  explicit AgentWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AgentWrap>(info) {
    Napi::Env env = info.Env();
    guard(env, [&]() -> Napi::Value {
      xfer::AgentConfig config;
      config.name = argString(info, 0, "name");
      std::string backendName = argString(info, 1, "backend");
      std::string progress = argString(info, 2, "progress");
      if (progress == "thread") {
        config.progress = xfer::ProgressMode::Thread;
      } else if (progress == "manual") {
        config.progress = xfer::ProgressMode::Manual;
      } else {
        fail(ErrorCode::InvalidArgument, "progress must be 'thread' or 'manual'");
      }
      config.chunkBytes = argIndex(info, 3, "chunkBytes");
      uint64_t threads = argIndex(info, 4, "copyThreads");
      if (threads > 64) fail(ErrorCode::InvalidArgument, "copyThreads out of range");
      config.copyThreads = static_cast<unsigned>(threads);
      if (info.Length() <= 5 || !info[5].IsFunction()) fail(ErrorCode::InvalidArgument, "onEvents must be a function");

      std::unique_ptr<xfer::Backend> backend = xfer::makeBackend(backendName);
      if (!backend) fail(ErrorCode::NotSupported, "backend '" + backendName + "' is not available in this build");

      if (config.progress == xfer::ProgressMode::Thread) {
        Napi::ThreadSafeFunction tsfn =
            Napi::ThreadSafeFunction::New(env, info[5].As<Napi::Function>(), "xferstate-events", 0, 1);
        tsfn.Unref(env);  // only posted, not yet quiescent transfers keep the process alive
        queue_.attach(tsfn);
      }
      try {
        state_ = backend->createAgentState(config, &queue_);
      } catch (...) {
        queue_.detach();
        throw;
      }
      // N-API 8 references only objects: the four strings live in an array held by reference.
      Napi::Array names = Napi::Array::New(env, 4);
      for (uint32_t i = 0; i < 4; ++i) names.Set(i, statusName(static_cast<xfer::XferStatus>(i)));
      statusStrings_ = Napi::Persistent(names.As<Napi::Object>());
      env_ = env;
      napi_add_env_cleanup_hook(env, &AgentWrap::onEnvCleanup, this);
      hookRegistered_ = true;
      return env.Undefined();
    });
  }

  ~AgentWrap() override {
    shutdown(false);
  }

 private:
  static void onEnvCleanup(void* arg) {
    auto* self = static_cast<AgentWrap*>(arg);
    self->hookRegistered_ = false;  // Node removes it after running it
    self->shutdown(false);
  }

  // Stops threads, unlinks segments, releases the TSFN. With detachBuffers (only on an explicit
  // close from JS) the region ArrayBuffers are detached and unmapped right away; otherwise
  // their memory stays mapped until the ArrayBuffers are collected.
  void shutdown(bool detachBuffers) {
    if (state_) {
      try {
        state_->close();
      } catch (...) {
        // close() reports nothing useful here; the process must go on.
      }
    }
    if (detachBuffers) {
      for (auto& [id, region] : regions_) detachAndUnmap(region);
    }
    regions_.clear();
    queue_.detach();
    if (hookRegistered_) {
      hookRegistered_ = false;
      napi_remove_env_cleanup_hook(env_, &AgentWrap::onEnvCleanup, this);
    }
    closed_ = true;
  }

  static void detachAndUnmap(JsRegion& region) {
    if (!region.memory) return;  // nothing of ours is mapped: device memory or the caller's buffer
    try {
      if (!region.buffer.IsEmpty()) {
        Napi::ArrayBuffer ab = region.buffer.Value();
        if (!ab.IsEmpty() && !ab.IsDetached()) ab.Detach();
        if (!ab.IsEmpty() && !ab.IsDetached()) return;  // still reachable: keep it mapped
      }
      region.memory->releaseNow();
    } catch (...) {
      // Could not detach: leave the memory mapped until the ArrayBuffer is collected.
    }
  }

  xfer::AgentState& state() {
    if (closed_ || !state_) fail(ErrorCode::Closed, "agent is closed");
    return *state_;
  }

  Napi::Value semantics(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      xfer::Semantics s = state().semantics();
      Napi::Object o = Napi::Object::New(env);
      o.Set("backend", s.backend);
      o.Set("canAbortInFlight", s.canAbortInFlight);
      o.Set("releaseInFlightAccepted", s.releaseInFlightAccepted);
      o.Set("releaseInFlightQuiesces", s.releaseInFlightQuiesces);
      o.Set("notificationAfterData", s.notificationAfterData);
      o.Set("notificationOnReleasedTransfer", s.notificationOnReleasedTransfer);
      o.Set("terminalImpliesQuiesced", s.terminalImpliesQuiesced);
      o.Set("repostActiveRejected", s.repostActiveRejected);
      o.Set("terminalStatusSticky", s.terminalStatusSticky);
      o.Set("crossProcess", s.crossProcess);
      o.Set("manualProgress", s.manualProgress);
      o.Set("maxNotificationBytes", static_cast<double>(s.maxNotificationBytes));
      o.Set("chunkBytes", static_cast<double>(s.chunkBytes));
      o.Set("chunkedProgress", s.chunkedProgress);
      return o;
    });
  }

  Napi::Value registerMemory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      uint64_t size = argIndex(info, 0, "size");
      xfer::RegionInfo region = state().registerMemory(size);
      if (!region.memory) return regionObject(env, region, JsRegion{});  // device memory: no host view
      Napi::ArrayBuffer buffer;
      try {
        auto keep = std::make_unique<std::shared_ptr<xfer::HostMemory>>(region.memory);
        buffer = Napi::ArrayBuffer::New(
            env, region.memory->data(), region.memory->size(),
            [](Napi::Env, void*, std::shared_ptr<xfer::HostMemory>* k) { delete k; }, keep.get());
        keep.release();  // owned by the ArrayBuffer's finalizer now
      } catch (...) {
        state_->deregisterMemory(region.id);
        throw;
      }
      regions_[region.id] = JsRegion{region.memory, Napi::Weak(buffer)};
      Napi::Object o = Napi::Object::New(env);
      o.Set("id", static_cast<double>(region.id));
      o.Set("size", static_cast<double>(region.size));
      o.Set("name", region.name);
      o.Set("buffer", buffer);
      return o;
    });
  }

  Napi::Object regionObject(Napi::Env env, const xfer::RegionInfo& region, JsRegion js) {
    regions_[region.id] = std::move(js);
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", static_cast<double>(region.id));
    o.Set("size", static_cast<double>(region.size));
    o.Set("name", region.name);
    o.Set("kind", region.kind == xfer::MemoryKind::Device ? "device" : "host");
    return o;
  }

  // registerMemoryOfKind(size, 'host' | 'device'): agent-allocated memory of that kind.
  Napi::Value registerMemoryOfKind(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      uint64_t size = argIndex(info, 0, "size");
      std::string kind = argString(info, 1, "kind");
      if (kind != "host" && kind != "device") fail(ErrorCode::InvalidArgument, "kind must be 'host' or 'device'");
      xfer::RegionInfo region =
          state().registerMemoryOfKind(size, kind == "device" ? xfer::MemoryKind::Device : xfer::MemoryKind::Host);
      if (!region.memory) return regionObject(env, region, JsRegion{});
      Napi::ArrayBuffer buffer;
      try {
        auto keep = std::make_unique<std::shared_ptr<xfer::HostMemory>>(region.memory);
        buffer = Napi::ArrayBuffer::New(
            env, region.memory->data(), region.memory->size(),
            [](Napi::Env, void*, std::shared_ptr<xfer::HostMemory>* k) { delete k; }, keep.get());
        keep.release();
      } catch (...) {
        state_->deregisterMemory(region.id);
        throw;
      }
      Napi::Object o = regionObject(env, region, JsRegion{region.memory, Napi::Weak(buffer), {}});
      o.Set("buffer", buffer);
      return o;
    });
  }

  // registerExternalHost(view): the caller's ArrayBuffer/Buffer bytes. The view is referenced
  // strongly until deregistration (which the backend refuses while a transfer uses it).
  Napi::Value registerExternalHost(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      Napi::Uint8Array view = typedArrayOf<Napi::Uint8Array>(info[0], napi_uint8_array, "caller-owned host memory must be a Uint8Array (or Buffer) view");
      if (view.ByteLength() == 0 || view.Data() == nullptr) fail(ErrorCode::InvalidArgument, "caller-owned host memory is empty or detached");
      xfer::ExternalMemory ext;
      ext.kind = xfer::MemoryKind::Host;
      ext.address = reinterpret_cast<uint64_t>(view.Data());
      ext.length = view.ByteLength();
      xfer::RegionInfo region = state().registerExternal(ext);
      JsRegion js;
      js.owner = Napi::Persistent(view.As<Napi::Object>());
      return regionObject(env, region, std::move(js));
    });
  }

  // registerExternalDevice(device, address: bigint, length): an engine's own GPU allocation.
  Napi::Value registerExternalDevice(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      uint64_t device = argIndex(info, 0, "device");
      if (info.Length() < 2 || !info[1].IsBigInt()) fail(ErrorCode::InvalidArgument, "address must be a bigint");
      bool lossless = false;
      uint64_t address = info[1].As<Napi::BigInt>().Uint64Value(&lossless);
      if (!lossless) fail(ErrorCode::InvalidArgument, "address must fit in 64 bits");
      xfer::ExternalMemory ext;
      ext.kind = xfer::MemoryKind::Device;
      ext.device = static_cast<int>(device);
      ext.address = address;
      ext.length = argIndex(info, 2, "length");
      xfer::RegionInfo region = state().registerExternal(ext);
      return regionObject(env, region, JsRegion{});
    });
  }

  static uint64_t patternWordOf(const Napi::CallbackInfo& info, size_t i) {
    std::vector<uint8_t> w = bytesOf(info.Length() > i ? info[i] : info.Env().Undefined(), "pattern word");
    if (w.size() != 8) fail(ErrorCode::InvalidArgument, "pattern word must be 8 bytes");
    uint64_t word = 0;
    for (int b = 7; b >= 0; --b) word = (word << 8) | w[b];
    return word;
  }

  Napi::Value fillPattern(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      state().fillPattern(argIndex(info, 0, "regionId"), argIndex(info, 1, "offset"), argIndex(info, 2, "length"), patternWordOf(info, 3));
      return env.Undefined();
    });
  }

  Napi::Value verifyPattern(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      uint64_t bad = state().verifyPattern(argIndex(info, 0, "regionId"), argIndex(info, 1, "offset"),
                                           argIndex(info, 2, "length"), patternWordOf(info, 3));
      return Napi::Number::New(env, static_cast<double>(bad));
    });
  }

  Napi::Value deregisterMemory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      uint64_t id = argIndex(info, 0, "regionId");
      state().deregisterMemory(id);
      auto it = regions_.find(id);
      if (it != regions_.end()) {
        detachAndUnmap(it->second);
        regions_.erase(it);
      }
      return env.Undefined();
    });
  }

  Napi::Value exportMetadata(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value { return copyToJs(env, state().exportMetadata()); });
  }

  Napi::Value loadRemoteMetadata(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      if (info.Length() < 1) fail(ErrorCode::InvalidArgument, "metadata must be a Uint8Array");
      std::vector<uint8_t> blob = bytesOf(info[0], "metadata");
      return Napi::String::New(env, state().loadRemoteMetadata(blob.data(), blob.size()));
    });
  }

  Napi::Value invalidateRemote(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      state().invalidateRemote(argString(info, 0, "remote agent name"));
      return env.Undefined();
    });
  }

  // createTransfer(op, localTriples, remoteTriples, remoteAgent, notification?)
  Napi::Value createTransfer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      xfer::TransferSpec spec;
      std::string op = argString(info, 0, "op");
      if (op == "WRITE") {
        spec.op = xfer::XferOp::Write;
      } else if (op == "READ") {
        spec.op = xfer::XferOp::Read;
      } else {
        fail(ErrorCode::InvalidArgument, "op must be 'WRITE' or 'READ'");
      }
      if (info.Length() < 3) fail(ErrorCode::InvalidArgument, "descriptor lists are required");
      spec.local = descriptorsOf(info[1], "local");
      spec.remote = descriptorsOf(info[2], "remote");
      spec.remoteAgent = argString(info, 3, "remoteAgent");
      if (info.Length() > 4 && !info[4].IsUndefined() && !info[4].IsNull()) spec.notification = bytesOf(info[4], "notification");
      return Napi::Number::New(env, static_cast<double>(state().createTransfer(spec)));
    });
  }

  Napi::Value post(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      state().post(argIndex(info, 0, "transferId"));
      if (outstanding_++ == 0) queue_.ref(env);
      return env.Undefined();
    });
  }

  Napi::Value status(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      // One of four strings made once: a poll loop allocates nothing per turn.
      return statusStrings_.Value().Get(static_cast<uint32_t>(statusIndex(state().status(argIndex(info, 0, "transferId")))));
    });
  }

  Napi::Value info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      xfer::TransferInfo t = state().info(argIndex(info, 0, "transferId"));
      Napi::Object o = Napi::Object::New(env);
      o.Set("status", statusName(t.status));
      o.Set("bytesDone", static_cast<double>(t.bytesDone));
      o.Set("totalBytes", static_cast<double>(t.totalBytes));
      o.Set("quiesced", t.quiesced);
      if (t.error) o.Set("error", xfer::errorCodeName(*t.error));
      return o;
    });
  }

  static Napi::Object releaseResult(Napi::Env env, const xfer::ReleaseResult& r) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("accepted", r.accepted);
    o.Set("quiesced", r.quiesced);
    return o;
  }

  Napi::Value release(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value { return releaseResult(env, state().release(argIndex(info, 0, "transferId"))); });
  }

  Napi::Value abort(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value { return releaseResult(env, state().abort(argIndex(info, 0, "transferId"))); });
  }

  Napi::Value sendNotification(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      std::string remote = argString(info, 0, "remote agent name");
      if (info.Length() < 2) fail(ErrorCode::InvalidArgument, "notification must be a Uint8Array");
      std::vector<uint8_t> bytes = bytesOf(info[1], "notification");
      state().sendNotification(remote, bytes.data(), bytes.size());
      return env.Undefined();
    });
  }

  static Napi::Object notificationToJs(Napi::Env env, const xfer::Notification& n) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("from", n.from);
    o.Set("bytes", copyToJs(env, n.bytes));
    return o;
  }

  Napi::Value pollNotifications(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      std::vector<xfer::Notification> list = state().pollNotifications();
      Napi::Array out = Napi::Array::New(env, list.size());
      for (size_t i = 0; i < list.size(); ++i) out.Set(static_cast<uint32_t>(i), notificationToJs(env, list[i]));
      return out;
    });
  }

  Napi::Value step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value { return stepToJs(env, state().step()); });
  }

  Napi::Value stepTransfer(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value { return stepToJs(env, state().stepTransfer(argIndex(info, 0, "transferId"))); });
  }

  Napi::Value stepNotification(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value { return stepToJs(env, state().stepNotification()); });
  }

  Napi::Value injectError(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      state().injectError(argIndex(info, 0, "transferId"));
      return env.Undefined();
    });
  }

  static Napi::Array idsToJs(Napi::Env env, const std::vector<uint64_t>& ids) {
    Napi::Array out = Napi::Array::New(env, ids.size());
    for (size_t i = 0; i < ids.size(); ++i) out.Set(static_cast<uint32_t>(i), static_cast<double>(ids[i]));
    return out;
  }

  Napi::Value pendingWork(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      xfer::PendingWork w = state().pendingWork();
      Napi::Object o = Napi::Object::New(env);
      o.Set("chunks", idsToJs(env, w.chunks));
      o.Set("notificationRetries", idsToJs(env, w.notificationRetries));
      o.Set("notifications", static_cast<double>(w.notifications));
      return o;
    });
  }

  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      xfer::AgentStats s = state().stats();
      Napi::Object o = Napi::Object::New(env);
      o.Set("transfers", static_cast<double>(s.transfers));
      o.Set("regions", static_cast<double>(s.regions));
      o.Set("remotes", static_cast<double>(s.remotes));
      return o;
    });
  }

  Napi::Value remoteRegions(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      std::vector<xfer::RemoteRegionInfo> list = state().remoteRegions(argString(info, 0, "remote agent name"));
      Napi::Array out = Napi::Array::New(env, list.size());
      for (size_t i = 0; i < list.size(); ++i) {
        Napi::Object o = Napi::Object::New(env);
        o.Set("id", static_cast<double>(list[i].id));
        o.Set("size", static_cast<double>(list[i].size));
        out.Set(static_cast<uint32_t>(i), o);
      }
      return out;
    });
  }

  // baselineCopy(localRegionId, remoteAgent, remoteRegionId, length, blockBytes, threads, chunkBytes)
  // Blocks the JS thread for the copy: it is a benchmark baseline, timed by the caller.
  Napi::Value baselineCopy(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      uint64_t threads = argIndex(info, 5, "threads");
      if (threads > 64) fail(ErrorCode::InvalidArgument, "threads out of range");
      state().baselineCopy(argIndex(info, 0, "localRegionId"), argString(info, 1, "remoteAgent"), argIndex(info, 2, "remoteRegionId"),
                           argIndex(info, 3, "length"), argIndex(info, 4, "blockBytes"), static_cast<unsigned>(threads),
                           argIndex(info, 6, "chunkBytes"));
      return env.Undefined();
    });
  }

  Napi::Value compareWithRemote(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      int64_t at = state().compareWithRemote(argIndex(info, 0, "localRegionId"), argString(info, 1, "remoteAgent"),
                                             argIndex(info, 2, "remoteRegionId"), argIndex(info, 3, "length"));
      return Napi::Number::New(env, static_cast<double>(at));
    });
  }

  static Napi::Object stepToJs(Napi::Env env, const xfer::StepResult& r) {
    Napi::Object o = Napi::Object::New(env);
    switch (r.kind) {
      case xfer::StepResult::Kind::Idle:
        o.Set("kind", "idle");
        return o;
      case xfer::StepResult::Kind::Notification:
        o.Set("kind", "notification");
        o.Set("from", r.notification.from);
        o.Set("bytes", copyToJs(env, r.notification.bytes));
        return o;
      case xfer::StepResult::Kind::Chunk:
        o.Set("kind", "chunk");
        o.Set("chunkIndex", static_cast<double>(r.chunkIndex));
        o.Set("bytes", static_cast<double>(r.bytes));
        break;
      case xfer::StepResult::Kind::NotificationRetry:
        o.Set("kind", "notification-retry");
        break;
      case xfer::StepResult::Kind::Fault:
        o.Set("kind", "fault");
        break;
    }
    o.Set("transferId", static_cast<double>(r.transferId));
    o.Set("bytesDone", static_cast<double>(r.bytesDone));
    o.Set("totalBytes", static_cast<double>(r.totalBytes));
    o.Set("status", statusName(r.status));
    return o;
  }


  // Allowed after close(): the facade drains the final events.
  Napi::Value drainEvents(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      // Events a packed drain left behind come first (order is per transfer).
      std::vector<xfer::Event> events(packed_.begin() + static_cast<std::ptrdiff_t>(packedNext_), packed_.end());
      packed_.clear();
      packedNext_ = 0;
      for (xfer::Event& e : queue_.drain()) events.push_back(std::move(e));
      Napi::Array out = Napi::Array::New(env, events.size());
      uint32_t i = 0;
      for (const xfer::Event& e : events) {
        Napi::Object o = Napi::Object::New(env);
        switch (e.kind) {
          case xfer::Event::Kind::Terminal: o.Set("kind", "terminal"); break;
          case xfer::Event::Kind::Quiesced:
            o.Set("kind", "quiesced");
            if (outstanding_ > 0 && --outstanding_ == 0) queue_.unref(env);
            break;
          case xfer::Event::Kind::Notification: o.Set("kind", "notification"); break;
        }
        o.Set("transferId", static_cast<double>(e.transferId));
        o.Set("status", statusName(e.status));
        o.Set("bytesDone", static_cast<double>(e.bytesDone));
        if (e.error) o.Set("error", xfer::errorCodeName(*e.error));
        out.Set(i++, o);
      }
      return out;
    });
  }

  // drainEventsPacked(out: Float64Array): the facade's hot path, drainEvents without an object per
  // event. Writes up to out.length / 5 events as [kind, transferId, status, bytesDone, error]
  // (kind 0 terminal, 1 quiesced, 2 notification; status the XferStatus index: NOT_POSTED,
  // IN_PROGRESS, DONE, ERROR; error the ErrorCode index, as in `eventErrorCodes`, or -1) and
  // returns how many; the rest wait for the next call. Allowed after close(), as drainEvents.
  Napi::Value drainEventsPacked(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      Napi::Float64Array out = typedArrayOf<Napi::Float64Array>(info[0], napi_float64_array, "event buffer must be a Float64Array");
      const size_t room = out.ElementLength() / kPackedEventFields;
      if (room == 0) fail(ErrorCode::InvalidArgument, "event buffer must hold at least one event (5 numbers)");
      if (packedNext_ >= packed_.size()) {
        packed_.clear();
        packedNext_ = 0;
        queue_.drainInto(packed_);
      }
      double* d = out.Data();
      size_t n = 0;
      for (; n < room && packedNext_ < packed_.size(); ++n, ++packedNext_) {
        const xfer::Event& e = packed_[packedNext_];
        double kind = 2;
        if (e.kind == xfer::Event::Kind::Terminal) kind = 0;
        if (e.kind == xfer::Event::Kind::Quiesced) {
          kind = 1;
          if (outstanding_ > 0 && --outstanding_ == 0) queue_.unref(env);
        }
        double* f = d + n * kPackedEventFields;
        f[0] = kind;
        f[1] = static_cast<double>(e.transferId);
        f[2] = static_cast<double>(statusIndex(e.status));
        f[3] = static_cast<double>(e.bytesDone);
        f[4] = e.error ? static_cast<double>(static_cast<int>(*e.error)) : -1.0;
      }
      return Napi::Number::New(env, static_cast<double>(n));
    });
  }

  Napi::Value close(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      if (!closed_) shutdown(true);
      return env.Undefined();
    });
  }

  EventQueue queue_;  // declared before state_: destroyed after it
  std::unique_ptr<xfer::AgentState> state_;
  std::map<uint64_t, JsRegion> regions_;
  uint64_t outstanding_ = 0;  // posts whose Quiesced event JS has not drained yet
  std::vector<xfer::Event> packed_;  // drained from queue_, not yet handed to JS (JS thread only)
  size_t packedNext_ = 0;
  Napi::ObjectReference statusStrings_;  // ["NOT_POSTED", "IN_PROGRESS", "DONE", "ERROR"]
  bool closed_ = false;
  bool hookRegistered_ = false;
  napi_env env_ = nullptr;
};

Napi::Value availableBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    std::vector<std::string> names = xfer::backendNames();
    Napi::Array out = Napi::Array::New(env, names.size());
    for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
    return out;
  });
}

Napi::Value reapStaleSegments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    return Napi::Number::New(env, static_cast<double>(xfer::reapStaleShmSegments()));
  });
}

Napi::Object init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeAgent", AgentWrap::define(env));
  exports.Set("availableBackends", Napi::Function::New(env, availableBackends));
  exports.Set("reapStaleSegments", Napi::Function::New(env, reapStaleSegments));
  exports.Set("segmentPrefix", Napi::String::New(env, xfer::shmSegmentPrefix()));
  {
    // Names of ErrorCode by index: the error field of drainEventsPacked.
    constexpr int kCodes = static_cast<int>(ErrorCode::NotSupported) + 1;
    Napi::Array codes = Napi::Array::New(env, kCodes);
    for (int i = 0; i < kCodes; ++i) codes.Set(static_cast<uint32_t>(i), xfer::errorCodeName(static_cast<ErrorCode>(i)));
    exports.Set("eventErrorCodes", codes);
  }
#ifdef XFERSTATE_WITH_CUDA
  exports.Set("builtWithCuda", Napi::Boolean::New(env, true));
  exports.Set("cudaDeviceStatus", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    std::string why;
    bool ok = xfer::cuda::deviceAvailable(&why);
    return Napi::String::New(info.Env(), ok ? "" : why);
  }));
  exports.Set("cudaContiguousCopyGBps", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Napi::Env env = info.Env();
    return guard(env, [&]() -> Napi::Value {
      uint64_t bytes = argIndex(info, 0, "bytes");
      uint64_t reps = argIndex(info, 1, "reps");
      return Napi::Number::New(env, xfer::cuda::contiguousCopyGBps(bytes, static_cast<int>(std::max<uint64_t>(reps, 1))));
    });
  }));
#else
  exports.Set("builtWithCuda", Napi::Boolean::New(env, false));
#endif
#ifdef XFERSTATE_WITH_NIXL
  exports.Set("builtWithNixl", Napi::Boolean::New(env, true));
#else
  exports.Set("builtWithNixl", Napi::Boolean::New(env, false));
#endif
  return exports;
}

}  // namespace

NODE_API_MODULE(xferstate_native, init)

// Conformance checks and bench of the cuda backend, driven through backend.h with no Node (the
// GPU machine has none). Two processes: this one (the initiator) spawns itself as the target,
// which owns a VRAM region, prints its metadata, and answers line commands on stdin.
//
//   cuda_harness [--bench-only] [--reps N]   conformance, then bench; the last line is the bench JSON
//   exit codes: 0 all passed, 1 a check failed, 2 bad usage, 3 no CUDA device
//
// Build (see docs/backends.md):
//   nvcc -std=c++20 -O2 -arch=sm_90 -Inative/src native/src/backend_cuda_harness.cc native/src/backend_cuda.cc
//        native/src/backend_cuda_kernels.cu native/src/backend_registry.cc native/src/shm_segment.cc -o cuda_harness -lrt
#include <cuda_runtime_api.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backend.h"
#include "backend_cuda.h"

extern char** environ;

namespace {

using namespace xfer;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kRegionBytes = 1ull << 30;

struct Sink final : EventSink {
  std::mutex mu;
  std::vector<Event> events;
  std::map<uint64_t, size_t> terminalCount;
  void push(Event e) override {
    std::lock_guard<std::mutex> l(mu);
    if (e.kind == Event::Kind::Terminal) terminalCount[e.transferId]++;
    events.push_back(e);
  }
  size_t terminals(uint64_t id) {
    std::lock_guard<std::mutex> l(mu);
    return terminalCount[id];
  }
  bool sawQuiesced(uint64_t id) {
    std::lock_guard<std::mutex> l(mu);
    for (const Event& e : events)
      if (e.kind == Event::Kind::Quiesced && e.transferId == id) return true;
    return false;
  }
};

std::string hex(const std::vector<uint8_t>& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t c : b) {
    s += d[c >> 4];
    s += d[c & 15];
  }
  return s;
}

std::vector<uint8_t> unhex(const std::string& s) {
  std::vector<uint8_t> b;
  for (size_t i = 0; i + 1 < s.size(); i += 2) b.push_back(static_cast<uint8_t>(std::stoi(s.substr(i, 2), nullptr, 16)));
  return b;
}

std::unique_ptr<AgentState> makeAgent(const std::string& name, Sink* sink) {
  AgentConfig c;
  c.name = name;
  return makeBackend("cuda")->createAgentState(c, sink);
}

// ---------------------------------------------------------------------------------------------
int runTarget() {
  Sink sink;
  auto agent = makeAgent("target", &sink);
  RegionInfo region = agent->registerMemory(kRegionBytes);
  std::cout << "META " << hex(agent->exportMetadata()) << std::endl;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    try {
      if (cmd == "FILL") {
        uint64_t off, len, word;
        in >> off >> len >> word;
        agent->fillPattern(region.id, off, len, word);
        std::cout << "OK 0" << std::endl;
      } else if (cmd == "VERIFY") {
        uint64_t off, len, word;
        in >> off >> len >> word;
        std::cout << "OK " << agent->verifyPattern(region.id, off, len, word) << std::endl;
      } else if (cmd == "EXPECT") {
        // Wait for notification `tag`, then check the bytes at once: notification-after-data.
        std::string tag;
        uint64_t off, len, word;
        in >> tag >> off >> len >> word;
        auto deadline = Clock::now() + std::chrono::seconds(20);
        bool got = false;
        while (!got && Clock::now() < deadline) {
          for (const Notification& n : agent->pollNotifications())
            if (std::string(n.bytes.begin(), n.bytes.end()) == tag) got = true;
        }
        if (!got) {
          std::cout << "ERR no notification " << tag << std::endl;
        } else {
          std::cout << "OK " << agent->verifyPattern(region.id, off, len, word) << std::endl;
        }
      } else if (cmd == "QUIT") {
        break;
      } else {
        std::cout << "ERR unknown command" << std::endl;
      }
    } catch (const Error& e) {
      std::cout << "ERR " << errorCodeName(e.code()) << " " << e.what() << std::endl;
    }
  }
  agent->close();
  return 0;
}

// ---------------------------------------------------------------------------------------------
struct Target {
  pid_t pid = 0;
  FILE* to = nullptr;
  FILE* from = nullptr;
  std::vector<uint8_t> meta;

  std::string ask(const std::string& cmd) {
    std::fprintf(to, "%s\n", cmd.c_str());
    std::fflush(to);
    char buf[65536];
    if (std::fgets(buf, sizeof buf, from) == nullptr) return "ERR target gone";
    std::string s(buf);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
  }

  static Target spawn(const char* self) {
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) throw std::runtime_error("pipe");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char arg0[] = "cuda_harness";
    char arg1[] = "--target";
    char* argv[] = {arg0, arg1, nullptr};
    Target t;
    if (posix_spawn(&t.pid, self, &fa, nullptr, argv, environ) != 0) throw std::runtime_error("posix_spawn");
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    t.to = fdopen(in[1], "w");
    t.from = fdopen(out[0], "r");
    char buf[65536];
    if (std::fgets(buf, sizeof buf, t.from) == nullptr || std::strncmp(buf, "META ", 5) != 0) {
      throw std::runtime_error("target printed no metadata");
    }
    std::string s(buf + 5);
    while (!s.empty() && (s.back() == '\n')) s.pop_back();
    t.meta = unhex(s);
    return t;
  }

  void quit() {
    std::fprintf(to, "QUIT\n");
    std::fflush(to);
    int status = 0;
    waitpid(pid, &status, 0);
  }
};

int failures = 0;
void report(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "PASS" : "FAIL", what.c_str());
  std::fflush(stdout);
  if (!ok) failures++;
}

template <typename F>
std::string codeOf(F&& f) {
  try {
    f();
    return "none";
  } catch (const Error& e) {
    return errorCodeName(e.code());
  }
}

XferStatus waitDone(AgentState& a, uint64_t id) {
  for (;;) {
    XferStatus s = a.status(id);
    if (s == XferStatus::Done || s == XferStatus::Error) return s;
  }
}

void waitQuiesced(AgentState& a, uint64_t id) {
  while (!a.info(id).quiesced) {
  }
}

// Blocks of `blockBytes` covering [0, bytes): local block i goes to remote block perm[i] (a
// shuffle, so the copy is a real gather/scatter, not one range in disguise).
TransferSpec blockSpec(XferOp op, uint64_t localRegion, uint64_t remoteRegion, uint64_t bytes, uint64_t blockBytes,
                       const std::string& remote, uint32_t seed) {
  uint64_t n = bytes / blockBytes;
  std::vector<uint64_t> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(perm.begin(), perm.end(), rng);
  TransferSpec s;
  s.op = op;
  s.remoteAgent = remote;
  for (uint64_t i = 0; i < n; ++i) {
    s.local.push_back({localRegion, i * blockBytes, blockBytes});
    s.remote.push_back({remoteRegion, perm[i] * blockBytes, blockBytes});
  }
  return s;
}

uint64_t okValue(const std::string& reply) {
  if (reply.rfind("OK ", 0) != 0) return UINT64_MAX;
  return std::stoull(reply.substr(3));
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * (v.size() - 1))];
}

int runInitiator(const char* self, bool benchOnly, int reps) {
  Target target = Target::spawn(self);
  Sink sink;
  auto agent = makeAgent("initiator", &sink);
  RegionInfo local = agent->registerMemory(kRegionBytes);
  std::string remote = agent->loadRemoteMetadata(target.meta.data(), target.meta.size());
  const uint64_t remoteRegion = 1;  // the target's first region
  const uint64_t W1 = 0x1111222233334444ull, W2 = 0xa5a5a5a5deadbeefull, W3 = 0x0102030405060708ull;
  const uint64_t quarter = kRegionBytes / 4;

  if (!benchOnly) {
    // 1. Cross-process VRAM WRITE, 64 KiB blocks scattered, notification only after the data.
    target.ask("FILL 0 " + std::to_string(quarter) + " 0");
    agent->fillPattern(local.id, 0, quarter, W1);
    TransferSpec w = blockSpec(XferOp::Write, local.id, remoteRegion, quarter, 64 << 10, remote, 1);
    w.notification = std::vector<uint8_t>{'w', '1'};
    uint64_t t1 = agent->createTransfer(w);
    std::fprintf(target.to, "EXPECT w1 0 %llu %llu\n", (unsigned long long)quarter, (unsigned long long)W1);
    std::fflush(target.to);
    agent->post(t1);
    XferStatus s1 = waitDone(*agent, t1);
    char buf[4096];
    std::string reply = std::fgets(buf, sizeof buf, target.from) ? std::string(buf) : "ERR";
    report(s1 == XferStatus::Done, "cross-process WRITE (4096 x 64 KiB, scattered) reaches DONE");
    report(okValue(reply) == 0, "target saw every byte when the notification arrived (mismatched words: " + reply.substr(0, reply.size() - 1) + ")");
    report(agent->info(t1).bytesDone == quarter && agent->info(t1).quiesced, "DONE reports all bytes and quiesced");
    report(codeOf([&] { agent->release(t1); }) == "none" && codeOf([&] { agent->release(t1); }) == "DOUBLE_RELEASE",
           "second release is DOUBLE_RELEASE");
    report(codeOf([&] { agent->status(t1); }) == "RELEASED", "status of a released handle is RELEASED");

    // 2. Cross-process READ.
    target.ask("FILL 0 " + std::to_string(quarter) + " " + std::to_string(W2));
    agent->fillPattern(local.id, 0, quarter, 0);
    uint64_t t2 = agent->createTransfer(blockSpec(XferOp::Read, local.id, remoteRegion, quarter, 64 << 10, remote, 2));
    agent->post(t2);
    report(waitDone(*agent, t2) == XferStatus::Done, "cross-process READ reaches DONE");
    report(agent->verifyPattern(local.id, 0, quarter, W2) == 0, "READ brought every byte");
    report(agent->verifyPattern(local.id, 0, quarter, W1) == quarter / 8, "verifyPattern counts every differing word");
    agent->release(t2);

    // 3. Abort in flight: deregistration refused while not quiescent; terminal implies quiesced.
    uint64_t t3 = agent->createTransfer(blockSpec(XferOp::Write, local.id, remoteRegion, kRegionBytes, 64 << 10, remote, 3));
    agent->post(t3);
    report(codeOf([&] { agent->post(t3); }) == "REPOST_ACTIVE", "repost while active is REPOST_ACTIVE");
    report(codeOf([&] { agent->deregisterMemory(local.id); }) == "IN_USE", "deregister during a transfer is IN_USE");
    ReleaseResult a3 = agent->abort(t3);
    report(a3.accepted, "abort in flight accepted");
    XferStatus s3 = waitDone(*agent, t3);
    TransferInfo i3 = agent->info(t3);
    report(s3 == XferStatus::Error && i3.error == ErrorCode::Aborted && i3.quiesced, "aborted transfer ends ERROR/ABORTED, quiesced");
    report(codeOf([&] { agent->abort(t3); }) == "none" && !agent->abort(t3).accepted, "abort after terminal is not accepted");
    agent->post(t3);  // a cleared cancel word: the same handle runs to DONE
    report(waitDone(*agent, t3) == XferStatus::Done, "reposted after abort reaches DONE (cancel word cleared)");
    agent->release(t3);

    // 4. Release in flight: accepted, quiescence reported later by an event.
    uint64_t t4 = agent->createTransfer(blockSpec(XferOp::Write, local.id, remoteRegion, kRegionBytes, 64 << 10, remote, 4));
    agent->post(t4);
    ReleaseResult r4 = agent->release(t4);
    report(r4.accepted, std::string("release in flight accepted (quiesced at return: ") + (r4.quiesced ? "yes" : "no") + ")");
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!sink.sawQuiesced(t4) && Clock::now() < deadline) std::this_thread::yield();
    report(sink.sawQuiesced(t4), "released transfer's Quiesced event arrives");

    // 5. Pinned host <-> VRAM, cross-process.
    const uint64_t hostBytes = 64ull << 20;
    RegionInfo host = agent->registerMemoryOfKind(hostBytes, MemoryKind::Host);
    uint8_t* h = host.memory->data();
    for (uint64_t i = 0; i < hostBytes; ++i) h[i] = static_cast<uint8_t>(W3 >> (8 * (i & 7)));
    TransferSpec hw = blockSpec(XferOp::Write, host.id, remoteRegion, hostBytes, 64 << 10, remote, 5);
    hw.notification = std::vector<uint8_t>{'h', '1'};
    uint64_t t5 = agent->createTransfer(hw);
    std::fprintf(target.to, "EXPECT h1 0 %llu %llu\n", (unsigned long long)hostBytes, (unsigned long long)W3);
    std::fflush(target.to);
    agent->post(t5);
    bool ok5 = waitDone(*agent, t5) == XferStatus::Done;
    reply = std::fgets(buf, sizeof buf, target.from) ? std::string(buf) : "ERR";
    report(ok5 && okValue(reply) == 0, "pinned host -> peer VRAM WRITE, verified by the target after the notification");
    std::memset(h, 0, hostBytes);
    uint64_t t6 = agent->createTransfer(blockSpec(XferOp::Read, host.id, remoteRegion, hostBytes, 64 << 10, remote, 5));
    agent->post(t6);
    bool ok6 = waitDone(*agent, t6) == XferStatus::Done;
    bool same = true;
    for (uint64_t i = 0; i < hostBytes && same; ++i) same = h[i] == static_cast<uint8_t>(W3 >> (8 * (i & 7)));
    report(ok6 && same, "peer VRAM -> pinned host READ, checked by the CPU");
    report(agent->verifyPattern(host.id, 0, hostBytes, W3) == 0, "GPU verifyPattern on a pinned host region");

    // 6. Caller-owned memory: an "engine" cudaMalloc buffer (interior pointer) and a host vector.
    void* engine = nullptr;
    cudaMalloc(&engine, 3 * hostBytes);
    ExternalMemory ed;
    ed.kind = MemoryKind::Device;
    ed.device = 0;
    ed.address = reinterpret_cast<uint64_t>(engine) + hostBytes;  // interior: the IPC offset path
    ed.length = hostBytes;
    RegionInfo er = agent->registerExternal(ed);
    agent->fillPattern(er.id, 0, hostBytes, W1);
    TransferSpec ew = blockSpec(XferOp::Write, er.id, remoteRegion, hostBytes, 64 << 10, remote, 6);
    ew.notification = std::vector<uint8_t>{'e', '1'};
    uint64_t t7 = agent->createTransfer(ew);
    std::fprintf(target.to, "EXPECT e1 0 %llu %llu\n", (unsigned long long)hostBytes, (unsigned long long)W1);
    std::fflush(target.to);
    agent->post(t7);
    report(codeOf([&] { agent->deregisterMemory(er.id); }) == "IN_USE" || agent->info(t7).quiesced,
           "caller-owned device region: deregister refused while in use");
    bool ok7 = waitDone(*agent, t7) == XferStatus::Done;
    reply = std::fgets(buf, sizeof buf, target.from) ? std::string(buf) : "ERR";
    report(ok7 && okValue(reply) == 0, "caller-owned VRAM (interior of an engine allocation) -> peer VRAM WRITE");
    report(er.name.find("ipc") != std::string::npos, "caller-owned cudaMalloc memory is exported by IPC handle (" + er.name + ")");
    agent->release(t7);
    agent->deregisterMemory(er.id);
    std::vector<uint8_t> mine(hostBytes + 4096);
    uint8_t* aligned = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(mine.data()) + 4095) & ~uintptr_t(4095));
    ExternalMemory eh;
    eh.kind = MemoryKind::Host;
    eh.address = reinterpret_cast<uint64_t>(aligned);
    eh.length = hostBytes;
    RegionInfo hr = agent->registerExternal(eh);
    uint64_t t8 = agent->createTransfer(blockSpec(XferOp::Read, hr.id, remoteRegion, hostBytes, 64 << 10, remote, 7));
    agent->post(t8);
    bool ok8 = waitDone(*agent, t8) == XferStatus::Done;
    same = true;
    for (uint64_t i = 0; i < hostBytes && same; ++i) same = aligned[i] == static_cast<uint8_t>(W1 >> (8 * (i & 7)));
    report(ok8 && same, "peer VRAM -> caller-owned host buffer READ");
    agent->release(t8);
    agent->deregisterMemory(hr.id);
    ExternalMemory bad = ed;
    bad.address = reinterpret_cast<uint64_t>(aligned);
    report(codeOf([&] { agent->registerExternal(bad); }) == "INVALID_ARGUMENT", "host address given as device memory is refused");
    cudaFree(engine);

    // 7. Bad metadata, same-process peers.
    std::vector<uint8_t> corrupt = target.meta;
    corrupt[corrupt.size() / 2] ^= 0xff;
    report(codeOf([&] { agent->loadRemoteMetadata(corrupt.data(), corrupt.size()); }) == "BAD_METADATA", "corrupted metadata is BAD_METADATA");
    Sink sink2;
    auto peer = makeAgent("peer", &sink2);
    RegionInfo pr = peer->registerMemory(quarter);
    std::vector<uint8_t> pm = peer->exportMetadata();
    std::string peerName = agent->loadRemoteMetadata(pm.data(), pm.size());
    agent->fillPattern(local.id, 0, quarter, W2);
    uint64_t t9 = agent->createTransfer(blockSpec(XferOp::Write, local.id, pr.id, quarter, 4096, peerName, 8));
    agent->post(t9);
    report(waitDone(*agent, t9) == XferStatus::Done && peer->verifyPattern(pr.id, 0, quarter, W2) == 0,
           "in-process peer WRITE (65536 x 4 KiB) verified");
    agent->release(t9);
    peer->close();
  }

  // ---- Bench -----------------------------------------------------------------------------------
  const uint64_t bytes = kRegionBytes;
  double baseline = cuda::contiguousCopyGBps(bytes, reps);
  std::printf("baseline: one contiguous cudaMemcpyAsync D2D of %llu bytes: %.1f GB/s\n", (unsigned long long)bytes, baseline);
  std::ostringstream rows;
  const uint64_t sizes[] = {4096, 64 << 10, 1 << 20, 16 << 20};
  bool first = true;
  for (uint64_t bb : sizes) {
    uint64_t id = agent->createTransfer(blockSpec(XferOp::Write, local.id, remoteRegion, bytes, bb, remote, 9));
    agent->post(id);
    waitDone(*agent, id);  // warm-up
    auto t0 = Clock::now();
    for (int r = 0; r < reps; ++r) {
      agent->post(id);
      waitDone(*agent, id);
    }
    double s = std::chrono::duration<double>(Clock::now() - t0).count();
    double gbps = static_cast<double>(bytes) * reps / s / 1e9;
    std::printf("cross-process WRITE, %llu blocks of %llu B (one launch each post): %.1f GB/s = %.3f x baseline\n",
                (unsigned long long)(bytes / bb), (unsigned long long)bb, gbps, gbps / baseline);
    rows << (first ? "" : ",") << "{\"blockBytes\":" << bb << ",\"gbps\":" << gbps << ",\"ratioToBaseline\":" << gbps / baseline << "}";
    first = false;
    agent->release(id);
  }
  // 4 KiB post -> DONE, polled with status() (which queries the event).
  uint64_t small = agent->createTransfer(blockSpec(XferOp::Write, local.id, remoteRegion, 4096, 4096, remote, 10));
  std::vector<double> lat;
  for (int i = 0; i < 3000; ++i) {
    auto t0 = Clock::now();
    agent->post(small);
    waitDone(*agent, small);
    if (i >= 200) lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  // The same, waiting for the progress thread's Terminal event instead of polling status().
  std::vector<double> latEvent;
  for (int i = 0; i < 1000; ++i) {
    size_t before = sink.terminals(small);
    auto t0 = Clock::now();
    agent->post(small);
    while (sink.terminals(small) == before) {
    }
    latEvent.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  agent->release(small);
  std::printf("4 KiB post->DONE (status polling): p50 %.2f us, p99 %.2f us (%zu samples)\n", percentile(lat, 0.5),
              percentile(lat, 0.99), lat.size());
  std::printf("4 KiB post->Terminal event (progress thread): p50 %.2f us, p99 %.2f us\n", percentile(latEvent, 0.5),
              percentile(latEvent, 0.99));
  // Quiescence: abort of an in-flight 1 GiB, 64 KiB-block transfer -> quiesced.
  uint64_t big = agent->createTransfer(blockSpec(XferOp::Write, local.id, remoteRegion, bytes, 64 << 10, remote, 11));
  std::vector<double> qs;
  for (int i = 0; i < 7; ++i) {
    agent->post(big);
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    auto t0 = Clock::now();
    agent->abort(big);
    waitQuiesced(*agent, big);
    qs.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  agent->release(big);
  double fullCopyUs = static_cast<double>(bytes) / (baseline * 1e9) * 1e6;
  std::printf("abort -> quiesced of a 1 GiB transfer in flight: median %.1f us (the whole copy takes ~%.0f us)\n",
              percentile(qs, 0.5), fullCopyUs);
  std::printf("{\"backend\":\"cuda\",\"baselineGBps\":%g,\"rows\":[%s],\"smallLatencyUs\":%g,\"quiesceUs\":%g}\n", baseline,
              rows.str().c_str(), percentile(lat, 0.5), percentile(qs, 0.5));
  agent->close();
  target.quit();
  if (!benchOnly) std::printf("%d check(s) failed\n", failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  bool target = false, benchOnly = false;
  int reps = 10;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--target") target = true;
    else if (a == "--bench-only") benchOnly = true;
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: cuda_harness [--bench-only] [--reps N]\n");
      return 2;
    }
  }
  std::string why;
  if (!xfer::cuda::deviceAvailable(&why)) {
    std::fprintf(stderr, "cuda_harness: %s\n", why.c_str());
    return 3;
  }
  try {
    if (target) return runTarget();
    return runInitiator("/proc/self/exe", benchOnly, reps);
  } catch (const xfer::Error& e) {
    std::fprintf(stderr, "cuda_harness: %s: %s\n", xfer::errorCodeName(e.code()), e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_harness: %s\n", e.what());
    return 1;
  }
}

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import type { ChildMessage, RequestSpec, ServerConfig } from '../executor/config.js';
import { burstDelays } from '../executor/config.js';
import { UsageError } from '../errors.js';
import { ContextServer } from '../executor/contextServer.js';
import { ControlChannel, connectControl, listenControl } from '../executor/control.js';
import type { ControlMessage } from '../executor/control.js';
import { GenerationServer } from '../executor/generationServer.js';
import { fillBlock, PatternChecker } from '../executor/pattern.js';
import { BlockPool } from '../executor/pool.js';
import { Agent } from '../native/index.js';
import { callgrindAvailable, childOfBuild, jsThreadInstructions, netOfGc, spreadOf } from './_instructions.js';
import type { InstructionsSample } from './_instructions.js';

export const description = 'machines executor vs a plain-callback executor doing the same native calls, fill and verify: CPU per request, throughput (4 × 1 MiB), scaling to concurrency 4096, heap allocated per request; with --only instructions, JS-thread instructions per request under callgrind';

const SMALL = 4096;
const OVERHEAD_ROUNDS = 5;
const WARMUP_RUNS = 4;
const THROUGHPUT_ROUNDS = 5;
/**
 * Pairs run at the throughput phase's own configuration before its timed pairs. The small runs of the
 * overhead phase's warm-up do not settle the code the 1 MiB runs take (other numbers, other paths):
 * with --trace-opt, TurboFan compiled 87, 60, 28, 46 and 28 functions in the first engine runs at 4 ×
 * 1 MiB, 300 and 400 ms of compiling each in the first two, on the helper threads of a 2-core machine
 * whose other core runs the copies.
 */
const THROUGHPUT_WARMUP_RUNS = 6;
/**
 * The throughput phase's wait after each run's pools are made (RunOptions.settleMs). Without it, 4 of
 * 16 runs in one process read their fresh pool memory at about 0.8 GB/s for most of the window (the JS
 * thread at 2.2–3.7 ms per request instead of 1.1–1.5 ms), in either executor; with 1,000 ms, none of 20
 * runs did, and none of 16 with 3,000 ms.
 */
const THROUGHPUT_SETTLE_MS = 1000;
const ALLOCATION_ROUNDS = 2;
/** Requests run before the instruction window: past the optimizing compiler's last wave (see `warm` in runBench), so the window is the fifth run, as the overhead phase's first pair is. */
const INSTRUCTIONS_WARM = 8000;
/** Deadlines far beyond any run: the bench measures the engine, and a loaded machine must not turn into timeouts. */
const BENCH_TIMEOUT_MS = 600_000;
const MiB = 1024 * 1024;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
/**
 * CPU time of the JS thread alone, in ms (Linux: the first field of /proc/thread-self/schedstat, in
 * ns); null where it cannot be read. The rest of the process's CPU is native copy and progress threads,
 * V8's GC and compiler helpers: splitting the two says whether a ratio comes from the JS thread.
 */
const jsThreadCpuMs = (): number | null => {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return null;
  }
};

/** A forced GC, so heap samples count live objects only (V8's flag, set at run time). */
const gc: () => void = (() => {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
})();

export interface RunOptions {
  requests: number;
  concurrency: number;
  blockBytes: number;
  blocksPerRequest: number;
  /** Sample the heap once in steady state (concurrency requests in flight) for bytes per in-flight request. */
  sampleHeap?: boolean;
  /** Called where the CPU measurement starts and ends (the instruction counter's markers: _instructions.ts). */
  window?: { start(): void; end(): void };
  /**
   * Milliseconds to wait between making the run's servers (or agents) and pools and opening its window.
   * The throughput phase's pools are 1 GiB a side, written whole when they are made; on this project's
   * 2-core VM, reading that memory in the following second ran at times at about 0.8 GB/s, 30 times
   * slower than usual, in either executor (docs/performance.md, forty-first session). A deployed server
   * makes its pools once; the phase measures that steady state, not the host catching up.
   */
  settleMs?: number;
}

export interface RunResult {
  cpuPerRequestMs: number;
  /** The JS thread's share of cpuPerRequestMs (null where the platform does not say). */
  jsThreadCpuPerRequestMs: number | null;
  /**
   * Voluntary context switches of the process per request (every thread, those that ended included): how
   * often a thread went to sleep with nothing to do. It falls where the native threads take several posts
   * or notifications per wake-up (at times when the second core is busy: docs/performance.md).
   */
  sleepsPerRequest: number;
  wallMs: number;
  /** Payload bytes delivered and verified. */
  bytes: number;
  requestsPerSecond: number;
  bytesPerInFlightRequest: number | null;
  /** Heap a finished request leaves behind (bookkeeping the executor keeps after the request ended). */
  retainedBytesPerFinishedRequest: number | null;
}

function result(o: RunOptions, cpu: number, jsCpu: number | null, sleeps: number, wallMs: number, heap: HeapSample | null): RunResult {
  return {
    cpuPerRequestMs: cpu / o.requests,
    jsThreadCpuPerRequestMs: jsCpu === null ? null : jsCpu / o.requests,
    sleepsPerRequest: sleeps / o.requests,
    wallMs,
    bytes: o.requests * o.blocksPerRequest * o.blockBytes,
    requestsPerSecond: o.requests / (wallMs / 1000),
    bytesPerInFlightRequest: heap === null ? null : Math.round(heap.perInFlight),
    retainedBytesPerFinishedRequest: heap === null ? null : Math.round(heap.perFinished),
  };
}

/**
 * Drive `o.requests` requests with at most `o.concurrency` in flight; `submit(i)` starts request i and
 * `finished()` counts completed ones. With `sampleHeap`, the heap is measured after a forced GC at the
 * start, once with a full window in flight, and at the end with nothing in flight. The end sample gives
 * what each finished request leaves behind; the full-window sample, less that, what an in-flight
 * request holds.
 */
async function drive(o: RunOptions, submit: (i: number) => void, finished: () => number, waitForProgress: () => Promise<void>): Promise<{ cpu: number; jsCpu: number | null; sleeps: number; wallMs: number; heap: HeapSample | null }> {
  let full: { heap: number; finished: number } | null = null;
  const heapNow = () => (gc(), process.memoryUsage().heapUsed);
  const start = o.sampleHeap ? heapNow() : 0;
  o.window?.start();
  const t0 = performance.now();
  const c0 = cpuMs();
  const j0 = jsThreadCpuMs();
  const s0 = process.resourceUsage().voluntaryContextSwitches;
  let next = 0;
  while (finished() < o.requests) {
    while (next < o.requests && next - finished() < o.concurrency) submit(next++);
    const f = finished();
    if (o.sampleHeap && full === null && f > 0 && next - f === o.concurrency) full = { heap: heapNow(), finished: f };
    await waitForProgress();
  }
  const cpu = cpuMs() - c0;
  const j1 = jsThreadCpuMs();
  const jsCpu = j0 === null || j1 === null ? null : j1 - j0;
  const sleeps = process.resourceUsage().voluntaryContextSwitches - s0;
  const wallMs = performance.now() - t0;
  o.window?.end();
  let heap: HeapSample | null = null;
  if (full) {
    // Let cleanup queued behind the last completion run before the end sample.
    await new Promise((r) => setImmediate(r));
    const perFinished = (heapNow() - start) / o.requests;
    heap = { perInFlight: (full.heap - start - full.finished * perFinished) / o.concurrency, perFinished };
  }
  return { cpu, jsCpu, sleeps, wallMs, heap };
}

interface HeapSample {
  perInFlight: number;
  perFinished: number;
}

/**
 * What `drive` waits on between submissions: woken once per wait. A resolve of a promise already
 * resolved goes into V8's runtime (about 2,400 instructions: the multiple-resolves hook); both harnesses
 * called it per completion, and the executor's per side report, so the harness charged the executor
 * twice what it charged the baseline.
 */
class Waker {
  private resolve: (() => void) | null = null;
  /** A wake with nobody waiting: the next wait returns at once (no wake-up is lost). */
  private pending = false;
  readonly wait = (): Promise<void> => {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((res) => (this.resolve = res));
  };
  wake(): void {
    const r = this.resolve;
    if (r === null) return void (this.pending = true);
    this.resolve = null;
    r();
  }
}

/** The machines' executor: both servers in this process, every block filled and verified. */
export async function engineRun(o: RunOptions): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-bench-'));
  const base = { blockBytes: o.blockBytes, poolBlocks: o.concurrency * o.blocksPerRequest * 2, backend: 'shm', progress: 'thread' as const, recvSlots: o.concurrency, delays: burstDelays(BENCH_TIMEOUT_MS) };
  const done = new Map<string, number>();
  let completed = 0;
  const waker = new Waker();
  const emit = (m: ChildMessage) => {
    if (m.t !== 'done') return;
    // Each side's report is checked (the first one's too), and a request counts once both reported.
    if (m.report.outcome !== 'completed' || m.report.corrupted) throw new Error(`bench: request ${m.report.id} ${m.report.outcome} on the ${m.report.role} side (${m.report.finalState}, ${m.report.reason})${m.report.corrupted ? ' (corrupted)' : ''}`);
    const n = (done.get(m.report.id) ?? 0) + 1;
    if (n < 2) return void done.set(m.report.id, n);
    done.delete(m.report.id);
    completed++;
    waker.wake();
  };
  const socketPath = join(dir, 'ctx.sock');
  const ctx = new ContextServer({ ...base, role: 'context', name: `bench-ctx-${process.pid}`, socketPath } as ServerConfig, emit);
  await ctx.listen();
  const gen = new GenerationServer({ ...base, role: 'generation', name: `bench-gen-${process.pid}`, socketPath } as ServerConfig, emit);
  await gen.connect(socketPath);
  ctx.loadPeer(gen.agent.exportMetadata());
  try {
    if (o.settleMs) await sleep(o.settleMs);
    const r = await drive(
      o,
      (i) => {
        const spec: RequestSpec = { id: `b${i}`, number: i + 1, blocks: o.blocksPerRequest, faults: [] };
        gen.submit(spec);
        ctx.submit(spec);
      },
      () => completed,
      waker.wait,
    );
    return result(o, r.cpu, r.jsCpu, r.sleeps, r.wallMs, r.heap);
  } finally {
    ctx.close();
    gen.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The baseline: the same native calls and control messages with plain callbacks and no machines —
 * allocate, fill, request info, ready signal, create + post, terminal status, release, notification,
 * verify every block at receipt and when served, free.
 */
export async function callbacksRun(o: RunOptions): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-bench-'));
  const src = new Agent(`base-ctx-${process.pid}`, {});
  const dst = new Agent(`base-gen-${process.pid}`, {});
  const B = o.blockBytes;
  // Pools as the servers make them (the sender's poison checked right before its fill).
  const srcPool = new BlockPool(src, B, o.concurrency * o.blocksPerRequest * 2, { checkPoison: 'firstWrite' });
  const dstPool = new BlockPool(dst, B, o.concurrency * o.blocksPerRequest * 2);
  const remote = src.loadRemoteMetadata(dst.exportMetadata());
  const checker = new PatternChecker(B);
  const socketPath = join(dir, 'ctx.sock');
  let finished = 0;
  const waker = new Waker();
  let corrupted = 0;
  let toGen: ControlChannel | null = null;
  /**
   * A request is finished when both sides are done with it, the sender's handle released and its blocks
   * back, the receiver's blocks verified twice and back: where the executor's window ends too (it counts
   * a request when both servers reported it, the context server after its release). Counted at the
   * receiver alone, the last requests' releases fell outside the timed window, and a new request was
   * admitted while the sender still held an old one's blocks.
   */
  const sidesDone = new Map<string, number>();
  let failed: Error | null = null;
  const sideDone = (id: string): void => {
    const n = (sidesDone.get(id) ?? 0) + 1;
    if (n < 2) return void sidesDone.set(id, n);
    sidesDone.delete(id);
    finished++;
    waker.wake();
  };
  const server = await listenControl(socketPath, (s) => {
    toGen = new ControlChannel(
      s,
      (m: ControlMessage) => {
        if (m.t !== 'info') return;
        const n = Number(m.id.slice(1));
        const blocks = srcPool.allocate(m.id, o.blocksPerRequest)!;
        // The receiver's epoch for these blocks travels in its request info, as in the servers.
        blocks.forEach((b, i) => srcPool.fillRange(b, 0, B, n, m.remote.epoch, i));
        const h = src.createTransfer({
          op: 'WRITE',
          local: blocks.map((b) => ({ region: srcPool.region, offset: b * B, length: B })),
          remote: m.remote.blocks.map((b) => ({ regionId: m.remote.region, offset: b * B, length: B })),
          remoteAgent: remote,
          notification: new TextEncoder().encode(m.id),
        });
        toGen!.send({ t: 'ready', id: m.id, ready: true });
        h.post();
        h.whenTerminal().then(
          () => {
            h.release();
            srcPool.giveBack(m.id);
            sideDone(m.id);
          },
          (error: unknown) => {
            failed ??= error instanceof Error ? error : new Error(String(error));
            waker.wake();
          },
        );
      },
      () => {},
    );
  });
  const toCtx = new ControlChannel(await connectControl(socketPath), () => {}, () => {});
  dst.on('notification', (note) => {
    const id = new TextDecoder().decode(note.bytes);
    const n = Number(id.slice(1));
    // The number travels in the ready signal, which the notification may overtake: derive it from the id.
    const epoch = dstPool.epochOf(id)!;
    // Verified at receipt and again when served, as the generation server must (a late write between
    // the two is corruption): the same byte work as the executor, so the ratio is about the engine.
    for (let pass = 0; pass < 2; pass++) dstPool.blocksOf(id)!.forEach((b, i) => checker.verify(dstPool.view(b), n, epoch, i) || corrupted++);
    dstPool.giveBack(id);
    sideDone(id);
  });
  try {
    if (o.settleMs) await sleep(o.settleMs);
    const r = await drive(
      o,
      (i) => {
        const id = `b${i + 1}`;
        const blocks = dstPool.allocate(id, o.blocksPerRequest)!;
        toCtx.send({ t: 'info', id, remote: { region: dstPool.region.id, blocks, epoch: dstPool.epochOf(id)! } });
      },
      () => {
        if (failed) throw failed;
        return finished;
      },
      waker.wait,
    );
    if (corrupted > 0) throw new Error(`baseline: ${corrupted} corrupted blocks`);
    return result(o, r.cpu, r.jsCpu, r.sleeps, r.wallMs, r.heap);
  } finally {
    toCtx.close();
    server.close();
    src.close();
    dst.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What one process can do at most per byte: fill (memset), verify (memcmp) and the native copy, each measured alone. */
async function bounds(): Promise<{ rawGBps: number; fillGBps: number; verifyGBps: number; boundGBps: number }> {
  const a = new Agent(`raw-src-${process.pid}`, {});
  const b = new Agent(`raw-dst-${process.pid}`, {});
  try {
    const size = 64 * MiB;
    const src = a.registerMemory(size);
    const dst = b.registerMemory(size);
    const remote = a.loadRemoteMetadata(b.exportMetadata());
    const rate = (ms: number) => size / (ms / 1000) / 1e9;
    const med = (v: number[]) => [...v].sort((x, y) => x - y)[1]!;
    const raw: number[] = [];
    const fill: number[] = [];
    const verify: number[] = [];
    const checker = new PatternChecker(MiB);
    for (let r = 0; r < 3; r++) {
      let t0 = performance.now();
      for (let off = 0; off < size; off += MiB) fillBlock(src.bytes.subarray(off, off + MiB), 7, 1, off / MiB);
      fill.push(rate(performance.now() - t0));
      t0 = performance.now();
      const handles = [];
      for (let off = 0; off < size; off += MiB) {
        const h = a.createTransfer({ op: 'WRITE', local: [{ region: src, offset: off, length: MiB }], remote: [{ regionId: dst.id, offset: off, length: MiB }], remoteAgent: remote });
        h.post();
        handles.push(h);
      }
      for (const h of handles) (await h.whenTerminal(), h.release());
      raw.push(rate(performance.now() - t0));
      t0 = performance.now();
      let ok = true;
      for (let off = 0; off < size; off += MiB) ok = checker.verify(dst.bytes.subarray(off, off + MiB), 7, 1, off / MiB) && ok;
      verify.push(rate(performance.now() - t0));
      if (!ok) throw new Error('bench: raw copy did not verify');
    }
    const [rawGBps, fillGBps, verifyGBps] = [med(raw), med(fill), med(verify)];
    // Fill and verify run on the one JS thread; the copy runs on native threads and can overlap them.
    const boundGBps = 1 / Math.max(1 / fillGBps + 1 / verifyGBps, 1 / rawGBps);
    return { rawGBps, fillGBps, verifyGBps, boundGBps };
  } finally {
    a.close();
    b.close();
  }
}

export interface AllocationSample {
  bytesPerRequest: number;
  /** Where the bytes were allocated, by function (file:line), largest first. */
  sites: Array<{ site: string; share: number }>;
}

/**
 * Bytes allocated per request, from V8's sampling heap profiler with the objects that GC already
 * collected kept in the profile: an estimate (one sample per ~4 KiB allocated, scaled by V8), over
 * `rounds` runs after the warm-up. Allocation drives the GC work (scavenges on the JS thread, marking on
 * helper threads) that counts in the CPU figures.
 */
export async function allocation(run: (o: RunOptions) => Promise<RunResult>, o: RunOptions, rounds: number): Promise<AllocationSample> {
  const session = new Session();
  session.connect();
  let sampling = false;
  try {
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
    sampling = true;
    for (let k = 0; k < rounds; k++) await run(o);
    const { profile } = await session.post('HeapProfiler.stopSampling');
    sampling = false;
    const bySite = new Map<string, number>();
    let total = 0;
    const stack = [profile.head];
    for (let node = stack.pop(); node !== undefined; node = stack.pop()) {
      stack.push(...node.children);
      if (node.selfSize === 0) continue;
      total += node.selfSize;
      const f = node.callFrame;
      // Generated step code (step/generate.ts) carries no url here; the rest without one are builtins.
      const where = f.url ? `${f.url.slice(f.url.lastIndexOf('/') + 1)}:${f.lineNumber + 1}` : /_config\d+_/.test(f.functionName) ? '(generated)' : '(builtin)';
      const site = `${f.functionName || '(anonymous)'} ${where}`;
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
    }
    const sites = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([site, bytes]) => ({ site, share: round(bytes / total) }));
    return { bytesPerRequest: Math.round(total / (rounds * o.requests)), sites };
  } finally {
    // A run that threw leaves the profiler sampling: stop it before the session goes.
    if (sampling) await session.post('HeapProfiler.stopSampling').catch(() => undefined);
    session.disconnect();
  }
}

const round = (x: number, d = 3) => Number(x.toFixed(d));
const median = (v: number[]) => [...v].sort((x, y) => x - y)[Math.floor(v.length / 2)]!;

/**
 * Each A/B pair's own ratio, in run order, with the least and greatest: the spread the headline ratio (a
 * ratio of medians) sits in. On this shared 2-core machine one pair differs from the next by more than a
 * change of a few percent in the engine, so a reader needs the spread to tell a result from its noise.
 */
export function pairRatios(a: readonly number[], b: readonly number[]): { ratios: number[]; min: number; max: number } {
  if (a.length !== b.length || a.length === 0) throw new Error(`pairRatios: ${a.length} against ${b.length} runs`);
  const ratios = a.map((x, i) => round(x / b[i]!, 2));
  return { ratios, min: Math.min(...ratios), max: Math.max(...ratios) };
}
/** The median of the runs' JS-thread CPU per request, and of the rest of the process's; null where the platform does not say. */
const jsThreadMedian = (rs: RunResult[]) => (rs.every((r) => r.jsThreadCpuPerRequestMs !== null) ? round(median(rs.map((r) => r.jsThreadCpuPerRequestMs!))) : null);
const otherThreadsMedian = (rs: RunResult[]) => (rs.every((r) => r.jsThreadCpuPerRequestMs !== null) ? round(median(rs.map((r) => r.cpuPerRequestMs - r.jsThreadCpuPerRequestMs!))) : null);

/** What `--only instructions` reports (see runBench). */
type Spread = ReturnType<typeof spreadOf>;
type InstructionsResult =
  | { skipped: string }
  | { warmRequests: number; requests: number; baselineBuild: string; rounds: { engine: number; baseline: number }[]; netOfGcPerRequest: { engine: Spread; baseline: Spread }; difference: number; ratioToBaseline: number }
  | {
      warmRequests: number;
      requests: number;
      perRequest: { engine: number; plainCallbacks: number };
      ratio: number;
      compilerPerRequest: { engine: number; plainCallbacks: number };
      gcPerRequest: { engine: number; plainCallbacks: number };
      rounds: { engine: number; plainCallbacks: number; netOfGc: { engine: number; plainCallbacks: number } }[];
      netOfGcPerRequest: { engine: Spread; plainCallbacks: Spread };
    };

/** Most rounds of the instruction counter one command may ask for (each round takes minutes). */
const MAX_INSTRUCTION_ROUNDS = 50;

/**
 * The instruction counter's options: `--rounds <n>` (rounds of the counter, median reported) and
 * `--baseline-build <dir>` (another built checkout whose engine is counted beside this one's in every
 * round, instead of the callbacks). Both only with the instructions part.
 */
export function instructionsOptions(args: readonly string[], instructions: boolean): { rounds: number; baselineChild: string | null; baselineBuild: string | null } {
  const value = (flag: string): string | undefined => {
    const k = args.indexOf(flag);
    if (k < 0) return undefined;
    const v = args[k + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`bench burst ${flag}: expected a value`);
    return v;
  };
  const r = value('--rounds');
  const b = value('--baseline-build');
  if ((r !== undefined || b !== undefined) && !instructions) throw new UsageError('bench burst: --rounds and --baseline-build apply to the instruction counter; add --only instructions');
  let rounds = 1;
  if (r !== undefined) {
    rounds = Number(r);
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > MAX_INSTRUCTION_ROUNDS) throw new UsageError(`bench burst --rounds: expected a whole number from 1 to ${MAX_INSTRUCTION_ROUNDS}, got '${r}'`);
  }
  if (b === undefined) return { rounds, baselineChild: null, baselineBuild: null };
  const child = childOfBuild(b);
  if (child === null) throw new UsageError(`bench burst --baseline-build: ${b} is not a built checkout (no dist/src/bench/_instructionsChild.js: run 'npm ci' there)`);
  return { rounds, baselineChild: child, baselineBuild: b };
}

export async function runBench({ json, args }: { json: boolean; args: string[] }): Promise<number> {
  // `--only overhead,throughput,scaling,allocation,instructions` runs a subset (the JSON then lacks the
  // others). `instructions` (valgrind, minutes) runs only when named.
  const i = args.indexOf('--only');
  const parts = ['overhead', 'throughput', 'scaling', 'allocation', 'instructions'];
  const only = new Set(i >= 0 ? (args[i + 1] ?? '').split(',') : parts.filter((p) => p !== 'instructions'));
  for (const p of only) if (!parts.includes(p)) throw new UsageError(`bench burst --only: unknown part '${p}'; known: ${parts.join(', ')}`);
  const { rounds, baselineChild, baselineBuild } = instructionsOptions(args, only.has('instructions'));
  const small = (requests: number, concurrency: number, sampleHeap = false): RunOptions => ({ requests, concurrency, blockBytes: SMALL, blocksPerRequest: 1, sampleHeap });
  const result: Record<string, unknown> = {};
  const n = 2000;
  // Warm-up to steady state, once, before the phases that compare CPU or time: the engine's code is
  // optimized over its first ~8,000 requests, and that compiling runs on other threads of this process,
  // so it would count in the first pairs. With --trace-opt --trace-deopt, successive 2,000-request engine
  // runs compile 211, 126, 22, 14, then 3, 2, 5, 0 functions, and deoptimize 5, 24, 7, 8, then 0: the
  // fourth run still met new maps (admission's and peerSession's contexts, their fields made mutable
  // by a second write), so it is warm-up too. (Around the tenth server pair in one process another
  // wave comes, 18 compiled and 16 deoptimized, in the servers' own methods: a process that makes
  // server after server; a deployed server is made once. docs/performance.md shows both.)
  let warmed = false;
  const warm = async () => {
    if (warmed) return;
    warmed = true;
    for (let k = 0; k < WARMUP_RUNS; k++) {
      await callbacksRun(small(n, 64));
      await engineRun(small(n, 64));
    }
  };
  if (only.has('overhead')) {
    // CPU per request lifecycle: tiny blocks so copies don't count; warm both paths, then alternate A B A B.
    await warm();
    const base: RunResult[] = [];
    const eng: RunResult[] = [];
    // Five pairs: on a shared machine the baseline's own figure moves by half between runs.
    for (let k = 0; k < OVERHEAD_ROUNDS; k++) {
      base.push(await callbacksRun(small(n, 64)));
      eng.push(await engineRun(small(n, 64)));
    }
    const cpu = (rs: RunResult[]) => median(rs.map((r) => r.cpuPerRequestMs));
    result.cpuPerRequestMs = { engine: round(cpu(eng)), plainCallbacks: round(cpu(base)) };
    result.engineOverheadRatio = round(cpu(eng) / cpu(base), 2);
    result.overheadPairRatios = pairRatios(eng.map((r) => r.cpuPerRequestMs), base.map((r) => r.cpuPerRequestMs));
    // The JS thread's part of each (median of the same runs); null where the platform does not say.
    result.jsThreadCpuPerRequestMs = { engine: jsThreadMedian(eng), plainCallbacks: jsThreadMedian(base) };
    // How often the threads slept (the same runs): about equal on an idle machine; where the two part,
    // the executors' other threads batched differently (docs/performance.md, 37th session).
    result.sleepsPerRequest = { engine: round(median(eng.map((r) => r.sleepsPerRequest)), 2), plainCallbacks: round(median(base.map((r) => r.sleepsPerRequest)), 2) };
  }
  if (only.has('throughput')) {
    // Concurrency 128, 4 × 1 MiB per request, every byte filled and verified: same process, same work.
    const big: RunOptions = { requests: 256, concurrency: 128, blockBytes: MiB, blocksPerRequest: 4, settleMs: THROUGHPUT_SETTLE_MS };
    const gbps = (r: RunResult) => r.bytes / (r.wallMs / 1000) / 1e9;
    await warm();
    // Then pairs at this configuration, kept apart: their median is the figure while the code settles.
    const warmE: number[] = [];
    const warmC: number[] = [];
    for (let k = 0; k < THROUGHPUT_WARMUP_RUNS; k++) {
      warmC.push(gbps(await callbacksRun(big)));
      warmE.push(gbps(await engineRun(big)));
    }
    const engR: RunResult[] = [];
    const cbR: RunResult[] = [];
    for (let k = 0; k < THROUGHPUT_ROUNDS; k++) {
      cbR.push(await callbacksRun(big));
      engR.push(await engineRun(big));
    }
    const engT = engR.map(gbps);
    const cbT = cbR.map(gbps);
    const b = await bounds();
    result.throughput = {
      concurrency: big.concurrency,
      requests: big.requests,
      blockBytes: big.blockBytes,
      blocksPerRequest: big.blocksPerRequest,
      settleMs: THROUGHPUT_SETTLE_MS,
      engineGBps: round(median(engT)),
      callbacksGBps: round(median(cbT)),
      rawGBps: round(b.rawGBps),
      fillGBps: round(b.fillGBps),
      verifyGBps: round(b.verifyGBps),
      fillVerifyCopyBoundGBps: round(b.boundGBps),
      ratioToCallbacks: round(median(engT) / median(cbT), 2),
      pairRatios: pairRatios(engT, cbT),
      // CPU per request split by thread, as in the overhead phase: the other threads' share is where a
      // recompiling engine showed (the optimizing compiler's helpers compete with the copies for the cores).
      jsThreadCpuPerRequestMs: { engine: jsThreadMedian(engR), plainCallbacks: jsThreadMedian(cbR) },
      otherThreadsCpuPerRequestMs: { engine: otherThreadsMedian(engR), plainCallbacks: otherThreadsMedian(cbR) },
      warmup: { runs: THROUGHPUT_WARMUP_RUNS, engineGBps: round(median(warmE)), callbacksGBps: round(median(warmC)), ratioToCallbacks: round(median(warmE) / median(warmC), 2) },
    };
  }
  if (only.has('scaling')) {
    // Requests/s, CPU and heap per in-flight request as the window grows. Rate and CPU come from a run
    // of their own after a warm-up run at the same concurrency; the heap from a third run, because its
    // samples force full GCs inside the measured window (at 4,096 in flight, several ms each). The heap
    // runs come after every timed run: their forced full GCs, with no request in flight, collected
    // objects the engine's optimized code had embedded (--trace-deopt: "weak objects"), and the next
    // timed runs spent their time recompiling it (with --trace-opt, 26 compiles and 155 ms of compiling
    // in the timed engine run at 128 in flight; 2 compiles and 4 ms with the heap runs moved here).
    const timedAt = async (run: (o: RunOptions) => Promise<RunResult>, requests: number, concurrency: number) => {
      await run(small(requests, concurrency));
      return run(small(requests, concurrency));
    };
    await warm();
    const concurrencies = [16, 128, 1024, 4096];
    const requestsAt = (concurrency: number) => Math.max(1000, 2 * concurrency);
    const timed: { e: RunResult; c: RunResult }[] = [];
    for (const concurrency of concurrencies) {
      const e = await timedAt(engineRun, requestsAt(concurrency), concurrency);
      const c = await timedAt(callbacksRun, requestsAt(concurrency), concurrency);
      timed.push({ e, c });
    }
    const scaling = [];
    for (const [i, concurrency] of concurrencies.entries()) {
      const requests = requestsAt(concurrency);
      const e = { timed: timed[i]!.e, heap: await engineRun(small(requests, concurrency, true)) };
      const c = { timed: timed[i]!.c, heap: await callbacksRun(small(requests, concurrency, true)) };
      scaling.push({
        concurrency,
        requests,
        requestsPerSecond: Math.round(e.timed.requestsPerSecond),
        cpuPerRequestMs: round(e.timed.cpuPerRequestMs),
        bytesPerInFlightRequest: e.heap.bytesPerInFlightRequest,
        retainedBytesPerFinishedRequest: e.heap.retainedBytesPerFinishedRequest,
        plainCallbacks: {
          requestsPerSecond: Math.round(c.timed.requestsPerSecond),
          cpuPerRequestMs: round(c.timed.cpuPerRequestMs),
          bytesPerInFlightRequest: c.heap.bytesPerInFlightRequest,
          retainedBytesPerFinishedRequest: c.heap.retainedBytesPerFinishedRequest,
        },
      });
    }
    result.scaling = scaling;
  }
  if (only.has('allocation')) {
    await warm();
    const o = small(n, 64);
    const e = await allocation(engineRun, o, ALLOCATION_ROUNDS);
    const c = await allocation(callbacksRun, o, ALLOCATION_ROUNDS);
    result.allocation = { bytesPerRequest: { engine: e.bytesPerRequest, plainCallbacks: c.bytesPerRequest }, ratio: round(e.bytesPerRequest / c.bytesPerRequest, 2), engineSites: e.sites };
  }
  if (only.has('instructions')) {
    if (!callgrindAvailable()) result.instructions = { skipped: 'valgrind is not installed' };
    else if (baselineChild !== null) {
      // This build's engine beside another build's, two processes per round (the counter's spread
      // between rounds is about 1 %: a change of that size shows only over several).
      const samples: { engine: InstructionsSample; baseline: InstructionsSample }[] = [];
      for (let r = 0; r < rounds; r++) {
        const [engine, baseline] = await Promise.all([jsThreadInstructions('engine', INSTRUCTIONS_WARM, n), jsThreadInstructions('engine', INSTRUCTIONS_WARM, n, baselineChild)]);
        samples.push({ engine, baseline });
      }
      const e = spreadOf(samples.map((x) => netOfGc(x.engine)));
      const b = spreadOf(samples.map((x) => netOfGc(x.baseline)));
      result.instructions = {
        warmRequests: samples[0]!.engine.warmRequests,
        requests: n,
        baselineBuild,
        rounds: samples.map((x) => ({ engine: Math.round(netOfGc(x.engine)), baseline: Math.round(netOfGc(x.baseline)) })),
        netOfGcPerRequest: { engine: e, baseline: b },
        difference: e.median - b.median,
        ratioToBaseline: round(e.median / b.median, 4),
      };
    } else {
      // The engine and the callbacks under callgrind at once, round after round (two processes; a count
      // does not depend on what else runs, but three or more at once on two cores left more code in
      // V8's lower tiers in the window).
      const samples: { e: InstructionsSample; c: InstructionsSample }[] = [];
      for (let r = 0; r < rounds; r++) {
        const [e, c] = await Promise.all([jsThreadInstructions('engine', INSTRUCTIONS_WARM, n), jsThreadInstructions('callbacks', INSTRUCTIONS_WARM, n)]);
        samples.push({ e, c });
      }
      const med = (f: (x: { e: InstructionsSample; c: InstructionsSample }) => number) => spreadOf(samples.map(f)).median;
      const e = med((x) => x.e.perRequest);
      const c = med((x) => x.c.perRequest);
      result.instructions = {
        warmRequests: samples[0]!.e.warmRequests,
        requests: n,
        perRequest: { engine: e, plainCallbacks: c },
        ratio: round(e / c, 2),
        compilerPerRequest: { engine: med((x) => x.e.compiler / x.e.requests), plainCallbacks: med((x) => x.c.compiler / x.c.requests) },
        gcPerRequest: { engine: med((x) => x.e.gc / x.e.requests), plainCallbacks: med((x) => x.c.gc / x.c.requests) },
        rounds: samples.map((x) => ({ engine: Math.round(x.e.perRequest), plainCallbacks: Math.round(x.c.perRequest), netOfGc: { engine: Math.round(netOfGc(x.e)), plainCallbacks: Math.round(netOfGc(x.c)) } })),
        netOfGcPerRequest: { engine: spreadOf(samples.map((x) => netOfGc(x.e))), plainCallbacks: spreadOf(samples.map((x) => netOfGc(x.c))) },
      };
    }
  }
  if (json) {
    console.log(JSON.stringify(result));
    return 0;
  }
  const cpu = result.cpuPerRequestMs as { engine: number; plainCallbacks: number } | undefined;
  if (cpu) {
    console.log(`CPU per request lifecycle (4 KiB, 1 block, both sides in one process, median of ${OVERHEAD_ROUNDS} × ${n}, concurrency 64):`);
    console.log(`  machines executor   ${cpu.engine} ms`);
    console.log(`  plain callbacks     ${cpu.plainCallbacks} ms   (same native calls and control messages, no machines)`);
    console.log(`  ratio               ${String(result.engineOverheadRatio)}×   (goal ≤ 1.5×)`);
    const pr = result.overheadPairRatios as ReturnType<typeof pairRatios>;
    console.log(`  pair by pair        ${pr.ratios.map((x) => `${x}×`).join(', ')}   (each pair's own ratio, in run order: ${pr.min}–${pr.max})`);
    const js = result.jsThreadCpuPerRequestMs as { engine: number | null; plainCallbacks: number | null };
    if (js.engine !== null && js.plainCallbacks !== null) {
      console.log(`  of which JS thread  ${js.engine} ms vs ${js.plainCallbacks} ms; other threads (native copy and progress, GC and compiler helpers) ${round(cpu.engine - js.engine)} ms vs ${round(cpu.plainCallbacks - js.plainCallbacks)} ms`);
    }
    const sl = result.sleepsPerRequest as { engine: number; plainCallbacks: number };
    console.log(`  sleeps per request  ${sl.engine} vs ${sl.plainCallbacks}   (voluntary context switches, all threads: about equal on an idle machine; fewer where the other threads batch)`);
  }
  const t = result.throughput as Record<string, number> | undefined;
  if (t) {
    const w = (result.throughput as { warmup: { runs: number; engineGBps: number; callbacksGBps: number; ratioToCallbacks: number } }).warmup;
    console.log(`throughput at concurrency ${t.concurrency} (${t.blocksPerRequest} × 1 MiB per request, one process, every byte filled and verified, median of ${THROUGHPUT_ROUNDS} after ${w.runs} warm-up pairs; each run's window opens ${t.settleMs} ms after its pools are made):`);
    console.log(`  machines executor   ${t.engineGBps} GB/s`);
    console.log(`  plain callbacks     ${t.callbacksGBps} GB/s`);
    console.log(`  ratio               ${t.ratioToCallbacks}   (goal ≥ 0.9)`);
    const tp = (result.throughput as { pairRatios: ReturnType<typeof pairRatios> }).pairRatios;
    console.log(`  pair by pair        ${tp.ratios.join(', ')}   (each pair's own ratio, in run order: ${tp.min}–${tp.max})`);
    console.log(`  while warming up    ${w.engineGBps} vs ${w.callbacksGBps} GB/s, ratio ${w.ratioToCallbacks}   (median of the ${w.runs} warm-up pairs: the engine's code is still being compiled)`);
    const tj = result.throughput as { jsThreadCpuPerRequestMs: { engine: number | null; plainCallbacks: number | null }; otherThreadsCpuPerRequestMs: { engine: number | null; plainCallbacks: number | null } };
    if (tj.jsThreadCpuPerRequestMs.engine !== null) {
      console.log(`  CPU per request     JS thread ${tj.jsThreadCpuPerRequestMs.engine} ms vs ${tj.jsThreadCpuPerRequestMs.plainCallbacks} ms; other threads (copies, progress, GC and compiler helpers) ${tj.otherThreadsCpuPerRequestMs.engine} ms vs ${tj.otherThreadsCpuPerRequestMs.plainCallbacks} ms`);
    }
    console.log(`  bound               ${t.fillVerifyCopyBoundGBps} GB/s   (fill ${t.fillGBps} + verify ${t.verifyGBps} on the JS thread; native copy ${t.rawGBps} overlapping)`);
  }
  type Row = { concurrency: number; requestsPerSecond: number; cpuPerRequestMs: number; bytesPerInFlightRequest: number | null; retainedBytesPerFinishedRequest: number | null };
  const scaling = result.scaling as Array<Row & { plainCallbacks: Omit<Row, 'concurrency'> }> | undefined;
  if (scaling) {
    console.log('scaling (4 KiB, 1 block; heap after a forced GC: per request in flight, and left behind per finished request):');
    console.log(`  ${'concurrency'.padStart(11)} ${'req/s'.padStart(8)} ${'cpu ms/req'.padStart(11)} ${'B/in flight'.padStart(12)} ${'B/finished'.padStart(11)}   plain callbacks: req/s, cpu ms/req, B/in flight, B/finished`);
    for (const s of scaling) {
      const c = s.plainCallbacks;
      console.log(
        `  ${String(s.concurrency).padStart(11)} ${String(s.requestsPerSecond).padStart(8)} ${String(s.cpuPerRequestMs).padStart(11)} ${String(s.bytesPerInFlightRequest).padStart(12)} ${String(s.retainedBytesPerFinishedRequest).padStart(11)}   ${c.requestsPerSecond}, ${c.cpuPerRequestMs}, ${c.bytesPerInFlightRequest}, ${c.retainedBytesPerFinishedRequest}`,
      );
    }
  }
  const a = result.allocation as { bytesPerRequest: { engine: number; plainCallbacks: number }; ratio: number; engineSites: AllocationSample['sites'] } | undefined;
  if (a) {
    console.log(`heap allocated per request (4 KiB, 1 block, concurrency 64, ${ALLOCATION_ROUNDS} × ${n} requests, V8's sampling heap profiler, collected objects included):`);
    console.log(`  machines executor   ${a.bytesPerRequest.engine} B`);
    console.log(`  plain callbacks     ${a.bytesPerRequest.plainCallbacks} B`);
    console.log(`  ratio               ${a.ratio}×`);
    console.log(`  executor's largest sites: ${a.engineSites.map((x) => `${x.site} ${Math.round(x.share * 100)}%`).join(', ')}`);
  }
  const ins = result.instructions as InstructionsResult | undefined;
  if (ins && 'skipped' in ins) console.log(`instructions: skipped, ${ins.skipped}`);
  else if (ins && 'baselineBuild' in ins) {
    const { engine: e, baseline: b } = ins.netOfGcPerRequest;
    console.log(`JS-thread instructions per request, net of GC (callgrind; 4 KiB, 1 block, concurrency 64; ${ins.requests} requests after ${ins.warmRequests} warm-up; ${ins.rounds.length} round(s), two processes at once):`);
    console.log(`  this build's engine   ${e.median}   (rounds ${ins.rounds.map((x) => x.engine).join(', ')})`);
    console.log(`  baseline's engine     ${b.median}   (rounds ${ins.rounds.map((x) => x.baseline).join(', ')}; ${ins.baselineBuild})`);
    console.log(`  difference            ${ins.difference > 0 ? '+' : ''}${ins.difference} per request, medians (${ins.ratioToBaseline}× the baseline; one round's spread is about 1 %)`);
  } else if (ins) {
    console.log(`JS-thread instructions per request (callgrind; 4 KiB, 1 block, concurrency 64; ${ins.requests} requests after ${ins.warmRequests} warm-up${ins.rounds.length > 1 ? `; median of ${ins.rounds.length} rounds` : ''}):`);
    console.log(`  machines executor   ${ins.perRequest.engine}   (of which optimizing compiler ${ins.compilerPerRequest.engine}, GC ${ins.gcPerRequest.engine})`);
    console.log(`  plain callbacks     ${ins.perRequest.plainCallbacks}   (of which optimizing compiler ${ins.compilerPerRequest.plainCallbacks}, GC ${ins.gcPerRequest.plainCallbacks})`);
    console.log(`  ratio               ${ins.ratio}×   (instructions, not time: cache misses and system calls, the same in both, weigh more in time)`);
    if (ins.rounds.length > 1) {
      const { engine: e, plainCallbacks: c } = ins.netOfGcPerRequest;
      console.log(`  net of GC, by round engine ${ins.rounds.map((x) => x.netOfGc.engine).join(', ')} (${e.min}–${e.max}); callbacks ${ins.rounds.map((x) => x.netOfGc.plainCallbacks).join(', ')} (${c.min}–${c.max})`);
    }
  }
  return 0;
}

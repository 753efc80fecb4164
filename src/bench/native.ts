/**
 * `xferstate bench native`: the native transfer agent across two processes.
 *
 * - WRITE throughput as 16 KiB, 256 KiB and 4 MiB blocks into a region owned by a child process,
 *   against a native baseline that does the same work (issue 11 item 3): the same number of
 *   threads as copyThreads, the same chunk size and block pieces, over the same shared mappings
 *   (Agent.baselineCopy), run interleaved with the transfer (A B A B), hot (both buffers fit in a
 *   quarter of the last-level cache) and cold (each buffer >= 4x the LLC, read from sysfs), the
 *   destination verified after every run. Also a ratio to single-thread memcpy, as before;
 * - post -> DONE latency of a 4 KiB transfer (awaited through whenTerminal(), the event path);
 * - release -> quiesced latency of a release issued while a 64 MiB transfer is in flight.
 *
 * Options: --backend shm[,other...] (unavailable backends are reported and skipped; `nixl:peer`
 * / `nixl:none` pick NIXL's ucx_error_handling_mode), --chunk-bytes N, --copy-threads N, --json.
 * With shm and another backend in one run, the shm/other throughput ratio per block size is
 * printed last (measured in the same run).
 */
import { fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../errors.js';

import { Agent, availableBackends, type Region, type TransferHandle } from '../native/index.js';

export const description =
  'native agent: cross-process WRITE GB/s vs a same-work native baseline, hot and cold (16 KiB/256 KiB/4 MiB blocks), 4 KiB post->DONE and release->quiesced latency';

const MiB = 1 << 20;
const TOTAL = 64 * MiB;
const BLOCKS = [16 * 1024, 256 * 1024, 4 * MiB];
const PEER_FLAG = '--xferstate-bench-peer';

interface HotCold {
  hot: number;
  cold: number;
}

interface Row {
  blockBytes: number;
  /** Transfer GB/s, cold buffers (the figure that holds for real KV blocks). */
  gbps: number;
  hotGBps: number;
  baselineGBps: HotCold;
  /** Transfer / baseline, each the median of its interleaved runs. */
  ratioToBaseline: HotCold;
  ratioToMemcpy: number;
  /** Runs whose destination was compared byte for byte with the source (all of them). */
  verifiedRuns: number;
}

interface Baseline {
  threads: number;
  chunkBytes: number;
  hotBytes: number;
  coldBytes: number;
  /** Last-level cache size from sysfs; null if unreadable (then 32 MiB was assumed). */
  llcBytes: number | null;
}

interface Percentiles {
  p50: number;
  p99: number;
}

interface Result {
  baseline: Baseline;
  memcpyGBps: number;
  rows: Row[];
  smallLatencyUs: Percentiles;
  quiesceUs: Percentiles;
}

function nowNs(): bigint {
  return process.hrtime.bigint();
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function percentiles(values: number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { p50: round(at(0.5), 1), p99: round(at(0.99), 1) };
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  const eq = args.find((a) => a.startsWith(`${name}=`));
  return eq?.slice(name.length + 1);
}

/** Single-thread memcpy of 64 MiB between two pre-faulted buffers (Buffer.copy is memmove). */
function measureMemcpy(): number {
  const src = Buffer.alloc(TOTAL, 1);
  const dst = Buffer.alloc(TOTAL, 2);
  src.copy(dst); // fault in
  const rates: number[] = [];
  for (let i = 0; i < 9; i++) {
    const t0 = nowNs();
    src.copy(dst);
    const ns = Number(nowNs() - t0);
    rates.push(TOTAL / ns);
  }
  return median(rates);
}

/** Size of the largest (last-level) CPU cache of cpu0, from sysfs. */
function lastLevelCacheBytes(): number | undefined {
  const dir = '/sys/devices/system/cpu/cpu0/cache';
  let best: { level: number; bytes: number } | undefined;
  try {
    for (const entry of readdirSync(dir)) {
      if (!entry.startsWith('index')) continue;
      const read = (f: string): string => readFileSync(`${dir}/${entry}/${f}`, 'utf8').trim();
      if (read('type') === 'Instruction') continue;
      const level = Number(read('level'));
      const m = /^(\d+)([KMG]?)$/.exec(read('size'));
      if (!m) continue;
      const bytes = Number(m[1]) * ({ '': 1, K: 1024, M: MiB, G: 1024 * MiB } as Record<string, number>)[m[2] ?? '']!;
      if (!best || level > best.level) best = { level, bytes };
    }
  } catch {
    return undefined;
  }
  return best?.bytes;
}

function roundUpMiB(bytes: number): number {
  return Math.ceil(bytes / MiB) * MiB;
}

interface PeerInfo {
  meta: Uint8Array;
  regionId: number;
  name: string;
  stop: () => Promise<void>;
}

/** Starts the target agent in a child process (this same module, run with PEER_FLAG). */
async function startPeer(backend: string, size: number): Promise<PeerInfo> {
  const child = fork(fileURLToPath(import.meta.url), [PEER_FLAG], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const reply = await new Promise<{ meta: string; regionId: number; name: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { meta: string; regionId: number; name: string }));
    child.once('exit', (code) => reject(new Error(`benchmark peer exited (${code})`)));
    child.send({ backend, size });
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    meta: new Uint8Array(Buffer.from(reply.meta, 'base64')),
    regionId: reply.regionId,
    name: reply.name,
    stop: async () => {
      if (child.connected) child.disconnect();
      await exited;
    },
  };
}

async function runPeer(): Promise<void> {
  const request = await new Promise<{ backend: string; size: number }>((resolve) =>
    process.once('message', (m) => resolve(m as { backend: string; size: number })),
  );
  const agent = new Agent(`bench-target-${process.pid}`, { backend: request.backend });
  const region = agent.registerMemory(request.size);
  region.bytes.fill(0); // the pages are already reserved; touch them anyway
  process.send?.({ meta: Buffer.from(agent.exportMetadata()).toString('base64'), regionId: region.id, name: agent.name });
  process.once('disconnect', () => {
    agent.close();
    process.exit(0);
  });
}

function writeTransfer(agent: Agent, region: Region, peer: PeerInfo, blockBytes: number, length = TOTAL): TransferHandle {
  const local = [];
  const remote = [];
  for (let offset = 0; offset < length; offset += blockBytes) {
    const n = Math.min(blockBytes, length - offset);
    local.push({ region, offset, length: n });
    remote.push({ regionId: peer.regionId, offset, length: n });
  }
  return agent.createTransfer({ op: 'WRITE', local, remote, remoteAgent: peer.name });
}

async function timedRun(handle: TransferHandle): Promise<number> {
  const t0 = nowNs();
  handle.post({ repost: true }); // the same handle runs again and again
  const status = await handle.whenTerminal();
  const ns = Number(nowNs() - t0);
  if (status !== 'DONE') throw new Error(`transfer ended ${status} (${handle.error ?? 'no reason'})`);
  return ns;
}

const HOT_PAIRS = 7;
const COLD_PAIRS = 5;

async function benchBackend(backend: string, chunkBytes: number, copyThreads: number): Promise<Result> {
  const memcpyGBps = measureMemcpy();
  const llc = lastLevelCacheBytes();
  const llcAssumed = llc ?? 32 * MiB;
  // Hot: source and destination together fit in half the LLC. Cold: each is at least 4x the LLC.
  const hotBytes = Math.max(BLOCKS.at(-1)!, Math.floor(llcAssumed / 4 / MiB) * MiB);
  const coldBytes = Math.max(TOTAL, roundUpMiB(4 * llcAssumed));
  const baseline: Baseline = { threads: copyThreads, chunkBytes, hotBytes, coldBytes, llcBytes: llc ?? null };
  const peer = await startPeer(backend, coldBytes);
  const agent = new Agent(`bench-initiator-${process.pid}`, { backend, chunkBytes, copyThreads });
  try {
    const region = agent.registerMemory(coldBytes);
    region.bytes.fill(0xab);
    agent.loadRemoteMetadata(peer.meta);
    const canBaseline = agent.semantics.backend === 'shm';

    // A new stamp in every 4 KiB of the source before each run, so the comparison after the run
    // fails if any piece was not copied by that run.
    const words = new Uint32Array(region.bytes.buffer, region.bytes.byteOffset, coldBytes / 4);
    let stamp = 0;
    const restamp = (length: number): void => {
      stamp++;
      for (let i = 0; i < length / 4; i += 1024) words[i] = stamp;
    };
    let verifiedRuns = 0;
    const verify = (length: number, what: string): void => {
      const at = agent.compareWithRemote(region, peer.name, peer.regionId, length);
      if (at !== -1) throw new Error(`${what}: destination differs from the source at byte ${at}`);
      verifiedRuns++;
    };
    // One sample = `reps` runs back to back, each stamped before and verified after outside the
    // timed interval; GB/s = bytes / summed run time. Several runs per sample keep a hot sample
    // longer than a scheduler time slice on a loaded machine.
    const transferSample = async (h: TransferHandle, length: number, reps: number): Promise<number> => {
      let ns = 0;
      for (let r = 0; r < reps; r++) {
        restamp(length);
        ns += await timedRun(h);
        if (canBaseline) verify(length, 'transfer');
      }
      return (reps * length) / ns;
    };
    const baselineSample = (length: number, blockBytes: number, reps: number): number => {
      let ns = 0;
      for (let r = 0; r < reps; r++) {
        restamp(length);
        const t0 = nowNs();
        agent.baselineCopy({ local: region, remoteAgent: peer.name, remoteRegionId: peer.regionId, length, blockBytes, threads: copyThreads, chunkBytes });
        ns += Number(nowNs() - t0);
        verify(length, 'baseline');
      }
      return (reps * length) / ns;
    };
    const interleaved = async (h: TransferHandle, length: number, blockBytes: number, pairs: number) => {
      const reps = Math.max(1, Math.round(TOTAL / length)); // about 64 MiB per sample
      const transfer: number[] = [];
      const base: number[] = [];
      await transferSample(h, length, 1); // warm-up of both (page tables, thread start)
      if (canBaseline) baselineSample(length, blockBytes, 1);
      for (let i = 0; i < pairs; i++) {
        transfer.push(await transferSample(h, length, reps)); // A
        if (canBaseline) base.push(baselineSample(length, blockBytes, reps)); // B
      }
      return { transfer: median(transfer), baseline: canBaseline ? median(base) : Number.NaN };
    };

    const rows: Row[] = [];
    for (const blockBytes of BLOCKS) {
      verifiedRuns = 0;
      const hotHandle = writeTransfer(agent, region, peer, blockBytes, hotBytes);
      const hot = await interleaved(hotHandle, hotBytes, blockBytes, HOT_PAIRS);
      hotHandle.release();
      const coldHandle = writeTransfer(agent, region, peer, blockBytes, coldBytes);
      const cold = await interleaved(coldHandle, coldBytes, blockBytes, COLD_PAIRS);
      coldHandle.release();
      rows.push({
        blockBytes,
        gbps: round(cold.transfer, 2),
        hotGBps: round(hot.transfer, 2),
        baselineGBps: { hot: round(hot.baseline, 2), cold: round(cold.baseline, 2) },
        ratioToBaseline: { hot: round(hot.transfer / hot.baseline, 3), cold: round(cold.transfer / cold.baseline, 3) },
        ratioToMemcpy: round(cold.transfer / memcpyGBps, 3),
        verifiedRuns,
      });
    }

    const small = writeTransfer(agent, region, peer, 4096, 4096);
    for (let i = 0; i < 200; i++) await timedRun(small);
    const smallUs: number[] = [];
    for (let i = 0; i < 2000; i++) smallUs.push((await timedRun(small)) / 1000);
    small.release();

    const quiesceUs: number[] = [];
    // Backends without partial progress (semantics.chunkBytes 0, e.g. nixl) release right after post.
    const partialProgress = agent.semantics.chunkBytes > 0;
    for (let i = 0; i < 40; i++) {
      const h = writeTransfer(agent, region, peer, TOTAL);
      h.post();
      while (partialProgress && h.bytesDone === 0 && h.status() === 'IN_PROGRESS') {
        /* wait until the copy engine is inside the transfer */
      }
      const t0 = nowNs();
      const result = h.release();
      if (!result.quiesced) await h.whenQuiesced();
      quiesceUs.push(Number(nowNs() - t0) / 1000);
    }

    return {
      baseline,
      memcpyGBps: round(memcpyGBps, 2),
      rows,
      smallLatencyUs: percentiles(smallUs),
      quiesceUs: percentiles(quiesceUs),
    };
  } finally {
    agent.close();
    await peer.stop();
  }
}

function printTable(backend: string, r: Result, chunkBytes: number, copyThreads: number): void {
  const b = r.baseline;
  const mib = (n: number): string => `${n / MiB} MiB`;
  console.log(`backend ${backend}: WRITE into another process, chunk ${chunkBytes} B, ${copyThreads} copy threads`);
  console.log(
    `baseline: native memcpy on ${b.threads} threads, ${b.chunkBytes} B chunks, same mappings, interleaved A B A B; ` +
      `LLC ${b.llcBytes === null ? 'unknown (32 MiB assumed)' : mib(b.llcBytes)}, hot ${mib(b.hotBytes)}, cold ${mib(b.coldBytes)}, every run verified`,
  );
  console.log(`single-thread memcpy (same run): ${r.memcpyGBps.toFixed(2)} GB/s`);
  console.log('block bytes   hot GB/s (baseline)  ratio   cold GB/s (baseline)  ratio   cold/memcpy  verified runs');
  for (const row of r.rows) {
    console.log(
      `${String(row.blockBytes).padStart(11)}   ${row.hotGBps.toFixed(2).padStart(6)} (${row.baselineGBps.hot.toFixed(2).padStart(6)})    ${row.ratioToBaseline.hot.toFixed(3)}` +
        `    ${row.gbps.toFixed(2).padStart(6)} (${row.baselineGBps.cold.toFixed(2).padStart(6)})    ${row.ratioToBaseline.cold.toFixed(3)}` +
        `   ${row.ratioToMemcpy.toFixed(3).padStart(6)}       ${row.verifiedRuns}`,
    );
  }
  console.log(`4 KiB post->DONE (whenTerminal): p50 ${r.smallLatencyUs.p50} us, p99 ${r.smallLatencyUs.p99} us`);
  console.log(`release in flight -> quiesced:   p50 ${r.quiesceUs.p50} us, p99 ${r.quiesceUs.p99} us`);
}

export async function runBench({ json, args }: { json: boolean; args: string[] }): Promise<number> {
  const requested = (option(args, '--backend') ?? 'shm')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  // The cuda backend has its own bench (VRAM, baseline = contiguous D2D copy): src/bench/_nativeCuda.ts.
  if (requested.length === 1 && requested[0] === 'cuda') return (await import('./_nativeCuda.js')).runCudaBench({ json });
  const known = ['shm', 'nixl', 'cuda'];
  for (const spec of requested) {
    const b = spec.split(':')[0]!;
    if (!known.includes(b)) throw new UsageError(`bench native --backend: unknown backend '${b}'; known: ${known.join(', ')}`);
  }
  const positive = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v) || Number(v) < 1) throw new UsageError(`bench native ${name} must be a positive decimal integer, got '${v}'`);
    return Number(v);
  };
  const chunkBytes = positive('--chunk-bytes', option(args, '--chunk-bytes'), 256 * 1024);
  const copyThreads = positive('--copy-threads', option(args, '--copy-threads'), 2);
  const available = availableBackends();
  let ran = 0;
  let code = 0;
  const results = new Map<string, Result>();
  for (const spec of requested) {
    // `nixl:peer` / `nixl:none`: NIXL's ucx_error_handling_mode, read by each agent at creation
    // (the child inherits it through the environment).
    const [backend = spec, errorMode] = spec.split(':');
    if (errorMode !== undefined) process.env.XFERSTATE_NIXL_ERROR_MODE = errorMode;
    else delete process.env.XFERSTATE_NIXL_ERROR_MODE;
    if (!available.includes(backend)) {
      console.error(`backend '${backend}' is not available in this build (available: ${available.join(', ')}); skipped`);
      code = 1;
      continue;
    }
    try {
      const result = await benchBackend(backend, chunkBytes, copyThreads);
      if (json) console.log(JSON.stringify({ backend: spec, ...result }));
      else printTable(spec, result, chunkBytes, copyThreads);
      results.set(spec, result);
      ran++;
    } catch (error) {
      console.error(`backend '${backend}' failed: ${String(error)}`);
      code = 1;
    }
  }
  printRatios(results, json);
  return ran > 0 ? code : 1;
}

/** shm throughput divided by each other backend's, per block size (same run, same host). */
function printRatios(results: Map<string, Result>, json: boolean): void {
  const shm = results.get('shm');
  if (!shm) return;
  for (const [spec, other] of results) {
    if (spec === 'shm') continue;
    const ratios = shm.rows.map((row, i) => ({
      blockBytes: row.blockBytes,
      shmGBps: row.gbps,
      otherGBps: other.rows[i]?.gbps ?? 0,
      ratio: round(row.gbps / (other.rows[i]?.gbps || Number.NaN), 2),
    }));
    if (json) {
      console.log(JSON.stringify({ ratio: `shm/${spec}`, rows: ratios }));
      continue;
    }
    console.log(`shm/${spec} throughput ratio (64 MiB cross-process WRITE, same run):`);
    for (const r of ratios) {
      console.log(`${String(r.blockBytes).padStart(11)}  shm ${r.shmGBps.toFixed(2)} GB/s  ${spec} ${r.otherGBps.toFixed(2)} GB/s  ratio ${r.ratio.toFixed(2)}`);
    }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes(PEER_FLAG)) {
  void runPeer();
}

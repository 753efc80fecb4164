/**
 * `xferstate bench native`: the native transfer agent across two processes.
 *
 * - WRITE throughput of 64 MiB as 16 KiB, 256 KiB and 4 MiB blocks into a region owned by a
 *   child process, each as a ratio to single-thread memcpy of the same 64 MiB measured in the
 *   same run;
 * - post -> DONE latency of a 4 KiB transfer (awaited through whenTerminal(), the event path);
 * - release -> quiesced latency of a release issued while a 64 MiB transfer is in flight.
 *
 * Options: --backend shm[,other...] (unavailable backends are reported and skipped; `nixl:peer`
 * / `nixl:none` pick NIXL's ucx_error_handling_mode), --chunk-bytes N, --copy-threads N, --json.
 * With shm and another backend in one run, the shm/other throughput ratio per block size is
 * printed last (measured in the same run).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { Agent, availableBackends, type Region, type TransferHandle } from '../native/index.js';

export const description =
  'native agent: cross-process WRITE GB/s vs memcpy (16 KiB/256 KiB/4 MiB blocks), 4 KiB post->DONE and release->quiesced latency';

const MiB = 1 << 20;
const TOTAL = 64 * MiB;
const BLOCKS = [16 * 1024, 256 * 1024, 4 * MiB];
const PEER_FLAG = '--xferstate-bench-peer';

interface Row {
  blockBytes: number;
  gbps: number;
  ratioToMemcpy: number;
}

interface Percentiles {
  p50: number;
  p99: number;
}

interface Result {
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

interface PeerInfo {
  meta: Uint8Array;
  regionId: number;
  name: string;
  stop: () => Promise<void>;
}

/** Starts the target agent in a child process (this same module, run with PEER_FLAG). */
async function startPeer(backend: string): Promise<PeerInfo> {
  const child = fork(fileURLToPath(import.meta.url), [PEER_FLAG], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const reply = await new Promise<{ meta: string; regionId: number; name: string }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { meta: string; regionId: number; name: string }));
    child.once('exit', (code) => reject(new Error(`benchmark peer exited (${code})`)));
    child.send({ backend, size: TOTAL });
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
  handle.post();
  const status = await handle.whenTerminal();
  const ns = Number(nowNs() - t0);
  if (status !== 'DONE') throw new Error(`transfer ended ${status} (${handle.error ?? 'no reason'})`);
  return ns;
}

async function benchBackend(backend: string, chunkBytes: number, copyThreads: number): Promise<Result> {
  const memcpyGBps = measureMemcpy();
  const peer = await startPeer(backend);
  const agent = new Agent(`bench-initiator-${process.pid}`, { backend, chunkBytes, copyThreads });
  try {
    const region = agent.registerMemory(TOTAL);
    region.bytes.fill(0xab);
    agent.loadRemoteMetadata(peer.meta);

    const rows: Row[] = [];
    for (const blockBytes of BLOCKS) {
      const handle = writeTransfer(agent, region, peer, blockBytes);
      await timedRun(handle); // warm-up (page tables, caches)
      const rates: number[] = [];
      for (let i = 0; i < 9; i++) rates.push(TOTAL / (await timedRun(handle)));
      handle.release();
      const gbps = median(rates);
      rows.push({ blockBytes, gbps: round(gbps, 2), ratioToMemcpy: round(gbps / memcpyGBps, 3) });
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
  console.log(`backend ${backend}: 64 MiB WRITE into another process, chunk ${chunkBytes} B, ${copyThreads} copy threads`);
  console.log(`single-thread memcpy (same run): ${r.memcpyGBps.toFixed(2)} GB/s`);
  console.log('block bytes   GB/s   ratio to memcpy');
  for (const row of r.rows) {
    console.log(`${String(row.blockBytes).padStart(11)}  ${row.gbps.toFixed(2).padStart(5)}   ${row.ratioToMemcpy.toFixed(3)}`);
  }
  console.log(`4 KiB post->DONE (whenTerminal): p50 ${r.smallLatencyUs.p50} us, p99 ${r.smallLatencyUs.p99} us`);
  console.log(`release in flight -> quiesced:   p50 ${r.quiesceUs.p50} us, p99 ${r.quiesceUs.p99} us`);
}

export async function runBench({ json, args }: { json: boolean; args: string[] }): Promise<number> {
  const requested = (option(args, '--backend') ?? 'shm')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  // The cuda backend has its own bench (VRAM, baseline = contiguous D2D copy): src/bench/nativeCuda.ts.
  if (requested.length === 1 && requested[0] === 'cuda') return (await import('./nativeCuda.js')).runCudaBench({ json });
  const chunkBytes = Number(option(args, '--chunk-bytes') ?? 256 * 1024);
  const copyThreads = Number(option(args, '--copy-threads') ?? 2);
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

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildMessage, RequestSpec, ServerConfig } from '../executor/config.js';
import { burstDelays } from '../executor/config.js';
import { ContextServer } from '../executor/contextServer.js';
import { ControlChannel, connectControl, listenControl } from '../executor/control.js';
import type { ControlMessage } from '../executor/control.js';
import { GenerationServer } from '../executor/generationServer.js';
import { runBurst } from '../executor/harness.js';
import { fillBlock, PatternChecker } from '../executor/pattern.js';
import { BlockPool } from '../executor/pool.js';
import { Agent } from '../native/index.js';

export const description = 'engine overhead per request lifecycle vs a plain-callback executor, and burst throughput at concurrency 128 vs raw native';

const BLOCK = 4096;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** The machines' executor, both servers in this process: CPU per request, tiny blocks so copies don't count. */
export async function engineCpuPerRequest(requests: number, concurrency: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-bench-'));
  const base = { blockBytes: BLOCK, poolBlocks: concurrency * 2, backend: 'shm', progress: 'thread' as const, recvSlots: concurrency, delays: burstDelays(60_000) };
  const done = new Map<string, number>();
  let wake: (() => void) | null = null;
  const emit = (m: ChildMessage) => {
    if (m.t !== 'done') return;
    done.set(m.report.id, (done.get(m.report.id) ?? 0) + 1);
    wake?.();
  };
  const socketPath = join(dir, 'ctx.sock');
  const ctx = new ContextServer({ ...base, role: 'context', name: `bench-ctx-${process.pid}`, socketPath } as ServerConfig, emit);
  await ctx.listen();
  const gen = new GenerationServer({ ...base, role: 'generation', name: `bench-gen-${process.pid}`, socketPath } as ServerConfig, emit);
  await gen.connect(socketPath);
  ctx.loadPeer(gen.agent.exportMetadata());
  const finished = () => [...done.values()].filter((n) => n === 2).length;
  try {
    const t0 = cpuMs();
    let next = 0;
    while (finished() < requests) {
      while (next < requests && next - finished() < concurrency) {
        const spec: RequestSpec = { id: `b${next}`, number: next + 1, blocks: 1, faults: [] };
        gen.submit(spec);
        ctx.submit(spec);
        next++;
      }
      await new Promise<void>((r) => (wake = r));
    }
    return (cpuMs() - t0) / requests;
  } finally {
    ctx.close();
    gen.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The baseline: the same native calls and control messages with plain callbacks and no machines —
 * fill, request info, ready signal, create + post, terminal status, release, notification, verify.
 */
async function baselineCpuPerRequest(requests: number, concurrency: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-bench-'));
  const src = new Agent(`base-ctx-${process.pid}`, {});
  const dst = new Agent(`base-gen-${process.pid}`, {});
  const srcPool = new BlockPool(src, BLOCK, concurrency * 2);
  const dstPool = new BlockPool(dst, BLOCK, concurrency * 2);
  const remote = src.loadRemoteMetadata(dst.exportMetadata());
  const checker = new PatternChecker(BLOCK);
  const socketPath = join(dir, 'ctx.sock');
  let finished = 0;
  let wake: (() => void) | null = null;
  let corrupted = 0;
  let toGen: ControlChannel | null = null;
  const server = await listenControl(socketPath, (s) => {
    toGen = new ControlChannel(
      s,
      (m: ControlMessage) => {
        if (m.t !== 'info') return;
        const blocks = srcPool.allocate(m.id, 1)!;
        fillBlock(srcPool.view(blocks[0]!), Number(m.id.slice(1)), m.remote.epoch, 0);
        const h = src.createTransfer({ op: 'WRITE', local: [{ region: srcPool.region, offset: blocks[0]! * BLOCK, length: BLOCK }], remote: m.remote.blocks.map((b) => ({ regionId: m.remote.region, offset: b * BLOCK, length: BLOCK })), remoteAgent: remote, notification: new TextEncoder().encode(m.id) });
        toGen!.send({ t: 'ready', id: m.id, ready: true });
        h.post();
        void h.whenTerminal().then(() => {
          h.release();
          srcPool.giveBack(m.id);
        });
      },
      () => {},
    );
  });
  const toCtx = new ControlChannel(await connectControl(socketPath), () => {}, () => {});
  dst.on('notification', (n) => {
    const id = new TextDecoder().decode(n.bytes);
    const block = dstPool.blocksOf(id)![0]!;
    // The number travels in the ready signal, which the notification may overtake: derive it from the id.
    if (!checker.verify(dstPool.view(block), Number(id.slice(1)), dstPool.epochOf(id)!, 0)) corrupted++;
    dstPool.giveBack(id);
    finished++;
    wake?.();
  });
  try {
    const t0 = cpuMs();
    let next = 0;
    while (finished < requests) {
      while (next < requests && next - finished < concurrency) {
        const id = `b${next + 1}`;
        const blocks = dstPool.allocate(id, 1)!;
        toCtx.send({ t: 'info', id, remote: { region: dstPool.region.id, blocks, epoch: dstPool.epochOf(id)! } });
        next++;
      }
      await new Promise<void>((r) => (wake = r));
    }
    if (corrupted > 0) throw new Error(`baseline: ${corrupted} corrupted blocks`);
    return (cpuMs() - t0) / requests;
  } finally {
    toCtx.close();
    server.close();
    src.close();
    dst.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Raw native WRITE throughput for 1 MiB blocks in this run (GB/s, median of 3). */
async function rawGbps(): Promise<number> {
  const a = new Agent(`raw-src-${process.pid}`, {});
  const b = new Agent(`raw-dst-${process.pid}`, {});
  try {
    const size = 64 * 1024 * 1024;
    const src = a.registerMemory(size);
    const dst = b.registerMemory(size);
    const remote = a.loadRemoteMetadata(b.exportMetadata());
    const block = 1024 * 1024;
    const runs: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      const handles = [];
      for (let off = 0; off < size; off += block) {
        const h = a.createTransfer({ op: 'WRITE', local: [{ region: src, offset: off, length: block }], remote: [{ regionId: dst.id, offset: off, length: block }], remoteAgent: remote });
        h.post();
        handles.push(h);
      }
      for (const h of handles) (await h.whenTerminal(), h.release());
      runs.push(size / ((performance.now() - t0) / 1000) / 1e9);
    }
    return runs.sort((x, y) => x - y)[1]!;
  } finally {
    a.close();
    b.close();
  }
}

export async function runBench({ json }: { json: boolean; args: string[] }): Promise<number> {
  const n = 2000;
  // Warm both paths once, then measure alternately and keep the medians.
  await baselineCpuPerRequest(200, 64);
  await engineCpuPerRequest(200, 64);
  const base: number[] = [];
  const eng: number[] = [];
  for (let i = 0; i < 3; i++) {
    base.push(await baselineCpuPerRequest(n, 64));
    eng.push(await engineCpuPerRequest(n, 64));
  }
  const med = (v: number[]) => [...v].sort((x, y) => x - y)[1]!;
  const baselineMs = med(base);
  const engineMs = med(eng);
  const raw = await rawGbps();
  const burst = await runBurst({ concurrency: 128, requests: 1000, faults: [], faultRate: 0, seed: 1, blockBytes: 1024 * 1024, blocksPerRequest: 4, backend: 'shm', kvTransferTimeoutMs: 60_000, recvSlots: 128 });
  const result = {
    cpuPerRequestMs: { engine: Number(engineMs.toFixed(3)), plainCallbacks: Number(baselineMs.toFixed(3)) },
    engineOverheadRatio: Number((engineMs / baselineMs).toFixed(2)),
    burst: { concurrency: 128, requests: 1000, blockBytes: 1024 * 1024, blocksPerRequest: 4, gbps: burst.gbps, requestsPerSecond: burst.requestsPerSecond },
    rawNativeGbps: Number(raw.toFixed(3)),
    throughputRatio: Number((burst.gbps / raw).toFixed(3)),
  };
  if (json) console.log(JSON.stringify(result));
  else {
    console.log(`CPU per request lifecycle (4 KiB, 1 block, both servers in one process, median of 3 × ${n}):`);
    console.log(`  machines executor   ${result.cpuPerRequestMs.engine} ms`);
    console.log(`  plain callbacks     ${result.cpuPerRequestMs.plainCallbacks} ms   (same native calls and control messages, no machines)`);
    console.log(`  ratio               ${result.engineOverheadRatio}×   (goal ≤ 2×)`);
    console.log(`throughput at concurrency 128 (4 × 1 MiB per request, two server processes, every byte verified):`);
    console.log(`  burst               ${burst.gbps} GB/s, ${burst.requestsPerSecond} requests/s`);
    console.log(`  raw native WRITE    ${result.rawNativeGbps} GB/s   (64 MiB as 1 MiB blocks, no pattern fill or verification)`);
    console.log(`  ratio               ${result.throughputRatio}   (goal ≥ 0.8)`);
  }
  return 0;
}

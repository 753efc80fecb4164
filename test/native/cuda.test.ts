// The cuda backend (issue 12). Without a GPU (CI) the GPU suite does not run and says why, in
// its title and on stderr; what can be checked without a GPU (the build's backend list, the
// refusal to create a cuda agent, caller-owned memory on backends that lack it) still runs.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { Agent, availableBackends, cudaStatus } from '../../src/native/index.js';
import { xferErrorOf } from './helpers.js';

const status = cudaStatus();
const notRun = status.usable ? '' : ` — NOT RUN: ${status.reason}`;
if (!status.usable) console.warn(`[cuda tests] the GPU suite did not run: ${status.reason}`);

const MiB = 1 << 20;
const W1 = [0x44, 0x44, 0x33, 0x33, 0x22, 0x22, 0x11, 0x11];
const W2 = [0xef, 0xbe, 0xad, 0xde, 0xa5, 0xa5, 0xa5, 0xa5];

describe('cuda backend, without a GPU too', () => {
  it('availableBackends() lists cuda exactly when the toolkit was found at build time', () => {
    expect(availableBackends().includes('cuda')).toBe(status.built);
    expect(availableBackends()).toContain('shm');
  });

  it.skipIf(!status.built || status.usable)('a cuda agent on a machine without a usable GPU is NOT_SUPPORTED, with the reason', () => {
    const e = xferErrorOf(() => new Agent(`cuda-none-${process.pid}`, { backend: 'cuda' }));
    expect(e.code).toBe('NOT_SUPPORTED');
    expect(e.message).toContain(status.reason);
  });

  it.skipIf(!status.built)('cuda validates chunkBytes and copyThreads as shm does, before looking for a GPU', () => {
    expect(xferErrorOf(() => new Agent('x', { backend: 'cuda', chunkBytes: 12 })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(() => new Agent('x', { backend: 'cuda', copyThreads: 0 })).code).toBe('INVALID_ARGUMENT');
  });

  it.skipIf(!status.built)('a malformed XFERSTATE_CUDA_COPY (launch-shape tuning) is INVALID_ARGUMENT naming the variable, before looking for a GPU', () => {
    const saved = process.env.XFERSTATE_CUDA_COPY;
    try {
      for (const bad of ['512', '512:4:4', '300:4:4:0', '512:0:4:0', '512:4:5:0', '512:4:4:2', '512:4:4:0x']) {
        process.env.XFERSTATE_CUDA_COPY = bad;
        const e = xferErrorOf(() => new Agent(`cuda-copy-${process.pid}`, { backend: 'cuda' }));
        expect(e.code).toBe('INVALID_ARGUMENT');
        expect(e.message).toContain('XFERSTATE_CUDA_COPY');
      }
      // A well-formed shape passes the check: the agent is made (GPU) or refused for the GPU alone.
      process.env.XFERSTATE_CUDA_COPY = '256:8:8:1';
      if (status.usable) new Agent(`cuda-copy-${process.pid}`, { backend: 'cuda' }).close();
      else expect(xferErrorOf(() => new Agent(`cuda-copy-${process.pid}`, { backend: 'cuda' })).code).toBe('NOT_SUPPORTED');
    } finally {
      if (saved === undefined) delete process.env.XFERSTATE_CUDA_COPY;
      else process.env.XFERSTATE_CUDA_COPY = saved;
    }
  });

  it('shm refuses device memory, caller-owned memory and pattern kernels with NOT_SUPPORTED', () => {
    const agent = new Agent(`cuda-shm-${process.pid}`, { backend: 'shm' });
    try {
      expect(xferErrorOf(() => agent.registerMemoryOfKind(4096, 'device')).code).toBe('NOT_SUPPORTED');
      expect(xferErrorOf(() => agent.registerHostBuffer(Buffer.alloc(4096))).code).toBe('NOT_SUPPORTED');
      expect(xferErrorOf(() => agent.registerDeviceMemory({ device: 0, address: 1n << 40n, length: 4096 })).code).toBe('NOT_SUPPORTED');
      const r = agent.registerMemoryOfKind(4096, 'host');
      expect(r.kind).toBe('host');
      expect(r.bytes.byteLength).toBe(4096);
      expect(xferErrorOf(() => r.fillPattern(0, 4096, new Uint8Array(W1))).code).toBe('NOT_SUPPORTED');
    } finally {
      agent.close();
    }
  });

  it('bad caller-owned arguments are INVALID_ARGUMENT before reaching a backend', () => {
    const agent = new Agent(`cuda-args-${process.pid}`, { backend: 'shm' });
    try {
      const bad = { device: 0, address: 5, length: 4096 } as unknown as { device: number; address: bigint; length: number };
      expect(xferErrorOf(() => agent.registerDeviceMemory(bad)).code).toBe('INVALID_ARGUMENT');
      expect(xferErrorOf(() => agent.registerHostBuffer('nope' as unknown as Uint8Array)).code).toBe('INVALID_ARGUMENT');
      expect(xferErrorOf(() => agent.registerMemoryOfKind(4096, 'gpu' as unknown as 'device')).code).toBe('INVALID_ARGUMENT');
    } finally {
      agent.close();
    }
  });
});

// ---- GPU suite -----------------------------------------------------------------------------------

interface Reply {
  ok: boolean;
  code?: string;
  message?: string;
  [k: string]: unknown;
}

class Target {
  readonly child: ChildProcess;
  #next = 1;
  #pending = new Map<number, (r: Reply) => void>();
  constructor() {
    const script = fileURLToPath(new URL('./fixtures/cuda-peer.mjs', import.meta.url));
    this.child = fork(script, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (m: unknown) => {
      const r = m as Reply & { id: number };
      this.#pending.get(r.id)?.(r);
      this.#pending.delete(r.id);
    });
  }
  async call(cmd: string, args: Record<string, unknown> = {}): Promise<Reply> {
    const id = this.#next++;
    const reply = new Promise<Reply>((resolve) => this.#pending.set(id, resolve));
    this.child.send({ id, cmd, ...args });
    const r = await reply;
    if (!r.ok) throw new Error(`target ${cmd}: ${r.code ?? ''} ${r.message ?? ''}`);
    return r;
  }
  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.disconnect();
    await exited;
  }
}

describe.skipIf(!status.usable)(`cuda backend on a GPU${notRun}`, { timeout: 60_000 }, () => {
  const targets: Target[] = [];
  afterAll(async () => {
    await Promise.all(targets.map((t) => t.stop()));
  });

  async function setup(size: number): Promise<{ agent: Agent; target: Target; remote: string; regionId: number }> {
    const target = new Target();
    targets.push(target);
    const init = await target.call('init', { name: `cuda-target-${targets.length}`, size });
    const agent = new Agent(`cuda-initiator-${process.pid}-${targets.length}`, { backend: 'cuda' });
    const remote = agent.loadRemoteMetadata(new Uint8Array(Buffer.from(init.meta as string, 'base64')));
    return { agent, target, remote, regionId: init.regionId as number };
  }

  it('publishes what it guarantees', () => {
    const agent = new Agent(`cuda-sem-${process.pid}`, { backend: 'cuda' });
    try {
      expect(agent.semantics).toMatchObject({
        backend: 'cuda',
        canAbortInFlight: true,
        notificationAfterData: true,
        terminalImpliesQuiesced: true,
        releaseInFlightQuiesces: false,
        crossProcess: true,
        chunkedProgress: false, // one launch: bytesDone is known only at its end
      });
    } finally {
      agent.close();
    }
  });

  it('WRITEs 64 KiB blocks (shuffled) VRAM to another process in one launch; every byte is there at the notification', async () => {
    const size = 64 * MiB;
    const { agent, target, remote, regionId } = await setup(size);
    try {
      await target.call('fill', { offset: 0, length: size, word: [0, 0, 0, 0, 0, 0, 0, 0] });
      const local = agent.registerMemoryOfKind(size, 'device'); // VRAM whatever XFERSTATE_CUDA_MEMORY says
      expect(local.kind).toBe('device');
      expect(xferErrorOf(() => local.bytes).code).toBe('NOT_SUPPORTED');
      local.fillPattern(0, size, new Uint8Array(W1));
      const n = size / (64 * 1024);
      const order = Array.from({ length: n }, (_, i) => (i * 7919) % n); // a permutation (7919 is prime)
      const h = agent.createTransfer({
        op: 'WRITE',
        local: order.map((_, i) => ({ region: local, offset: i * 65536, length: 65536 })),
        remote: order.map((j) => ({ regionId, offset: j * 65536, length: 65536 })),
        remoteAgent: remote,
        notification: new TextEncoder().encode('w1'),
      });
      const seen = target.call('expect', { tag: 'w1', offset: 0, length: size, word: W1 });
      h.post();
      expect(await h.whenTerminal()).toBe('DONE');
      expect((await seen).mismatches).toBe(0);
      expect(local.verifyPattern(0, size, new Uint8Array(W2))).toBe(size / 8);
    } finally {
      agent.close();
    }
  });

  it('READs into a caller-owned Buffer; deregistration is IN_USE until the transfer is quiescent', async () => {
    const size = 1024 * MiB; // ~0.5 ms of copying: long enough to be caught in flight
    const { agent, target, remote, regionId } = await setup(size);
    try {
      await target.call('fill', { offset: 0, length: size, word: W2 });
      const mine = Buffer.alloc(4 * MiB);
      const region = agent.registerHostBuffer(mine);
      expect(region.callerOwned).toBe(true);
      const r = agent.createTransfer({
        op: 'READ',
        local: [{ region, offset: 0, length: mine.length }],
        remote: [{ regionId, offset: 8 * MiB, length: mine.length }],
        remoteAgent: remote,
      });
      r.post();
      expect(await r.whenTerminal()).toBe('DONE');
      const expected = Buffer.alloc(mine.length, Buffer.from(W2));
      expect(mine.equals(expected)).toBe(true);

      // A long VRAM transfer: deregistration refused while it runs, allowed once aborted and quiescent.
      const vram = agent.registerMemoryOfKind(size, 'device');
      const big = agent.createTransfer({
        op: 'WRITE',
        local: [{ region: vram, offset: 0, length: size }],
        remote: [{ regionId, offset: 0, length: size }],
        remoteAgent: remote,
      });
      big.post();
      expect(xferErrorOf(() => agent.deregisterMemory(vram)).code).toBe('IN_USE');
      const a = big.abort();
      if (!a.quiesced) await big.whenQuiesced();
      expect(big.status()).toBe(a.aborted ? 'ERROR' : 'DONE');
      if (a.aborted) expect(big.error).toBe('ABORTED');
      agent.deregisterMemory(vram);
      r.release();
      agent.deregisterMemory(region);
      expect(xferErrorOf(() => r.post()).code).toBe('RELEASED');
    } finally {
      agent.close();
    }
  });
});

// The nixl backend: the real NIXL agent over its UCX plugin, held to what NIXL really does
// (docs/backends.md, reference/nixl.md). Runs only when the addon was built with NIXL
// (`cd native && NIXL_PREFIX=/opt/nixl node-gyp rebuild`); otherwise the suite says why it
// did not run. The shared conformance tests run against NIXL with XFERSTATE_BACKEND=nixl.
import { afterEach, describe, expect, it } from 'vitest';

import { Agent, availableBackends, type Region, type TransferHandle } from '../../src/native/index.js';
import { fillPattern, firstMismatch, Peer, patternWord, toBase64, withDeadline, xferErrorOf } from './helpers.js';

const available = availableBackends().includes('nixl');
const reason = available
  ? ''
  : 'this addon build has no nixl backend (NIXL not found at build time: no `pkg-config nixl`, NIXL_PREFIX unset)';
if (!available) console.warn(`[nixl.test] NOT RUN: ${reason}`);

const MiB = 1 << 20;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

let agents: Agent[] = [];
let peers: Peer[] = [];

afterEach(async () => {
  for (const a of agents) a.close();
  agents = [];
  for (const p of peers) await p.stop();
  peers = [];
  delete process.env.XFERSTATE_NIXL_ERROR_MODE;
});

/** A nixl agent; errorMode sets ucx_error_handling_mode (read at construction), else the default (none). */
function agent(name: string, errorMode?: 'peer' | 'none'): Agent {
  if (errorMode) process.env.XFERSTATE_NIXL_ERROR_MODE = errorMode;
  else delete process.env.XFERSTATE_NIXL_ERROR_MODE;
  const a = new Agent(name, { backend: 'nixl' });
  agents.push(a);
  return a;
}

/** Initiator `a` with `size` bytes of pattern `seed`, target `b` with `size` zero bytes; a knows b. */
function pair(size: number, seed: number, errorMode?: 'peer' | 'none') {
  const a = agent(`init-${process.pid}`, errorMode);
  const b = agent(`target-${process.pid}`, errorMode);
  const src = a.registerMemory(size);
  const dst = b.registerMemory(size);
  fillPattern(src.bytes, seed);
  expect(a.loadRemoteMetadata(b.exportMetadata())).toBe(b.name);
  return { a, b, src, dst };
}

function write(a: Agent, src: Region, b: Agent, dst: Region, notification?: string): TransferHandle {
  return a.createTransfer({
    op: 'WRITE',
    local: [{ region: src, offset: 0, length: src.size }],
    remote: [{ regionId: dst.id, offset: 0, length: dst.size }],
    remoteAgent: b.name,
    notification: notification === undefined ? undefined : encoder.encode(notification),
  });
}

async function nextNotification(b: Agent, ms = 10_000): Promise<{ from: string; text: string }> {
  const deadline = Date.now() + ms;
  for (;;) {
    const [n] = b.pollNotifications();
    if (n) return { from: n.from, text: decoder.decode(n.bytes) };
    if (Date.now() > deadline) throw new Error('no notification');
    await new Promise((r) => setTimeout(r, 1));
  }
}

describe.skipIf(!available)(available ? 'nixl backend' : `nixl backend — NOT RUN: ${reason}`, () => {
  it('declares what NIXL really does: no abort, release in flight is not quiescent', () => {
    const a = agent('semantics');
    expect(a.semantics).toMatchObject({
      backend: 'nixl',
      canAbortInFlight: false,
      releaseInFlightAccepted: true,
      releaseInFlightQuiesces: false,
      notificationAfterData: true,
      repostActiveRejected: true,
      terminalStatusSticky: true,
      crossProcess: true,
    });
  });

  for (const mode of ['peer', 'none'] as const) {
    it(`WRITE 8 MiB lands whole and the notification follows the data (ucx_error_handling_mode=${mode})`, async () => {
      const { a, b, src, dst } = pair(8 * MiB, 11, mode);
      const h = write(a, src, b, dst, 'req-1');
      h.post();
      expect(await withDeadline(h.whenTerminal(), 20_000, 'terminal')).toBe('DONE');
      const n = await nextNotification(b);
      expect(n).toEqual({ from: a.name, text: 'req-1' });
      expect(firstMismatch(dst.bytes, 11)).toBe(-1);
      expect(h.bytesDone).toBe(8 * MiB);
      expect(h.release()).toEqual({ accepted: true, quiesced: true });
    });
  }

  it('READ pulls the remote region into the local one', async () => {
    const a = agent(`reader-${process.pid}`);
    const b = agent(`owner-${process.pid}`);
    const local = a.registerMemory(2 * MiB);
    const remote = b.registerMemory(2 * MiB);
    fillPattern(remote.bytes, 23);
    a.loadRemoteMetadata(b.exportMetadata());
    const h = a.createTransfer({
      op: 'READ',
      local: [{ region: local, offset: 0, length: MiB }, { region: local, offset: MiB, length: MiB }],
      remote: [{ regionId: remote.id, offset: 0, length: MiB }, { regionId: remote.id, offset: MiB, length: MiB }],
      remoteAgent: b.name,
    });
    h.post();
    expect(await withDeadline(h.whenTerminal(), 20_000, 'terminal')).toBe('DONE');
    expect(firstMismatch(local.bytes, 23)).toBe(-1);
  });

  it('reposting an active handle is REPOST_ACTIVE and the running transfer still completes', async () => {
    const { a, b, src, dst } = pair(64 * MiB, 5);
    const h = write(a, src, b, dst, 'once');
    h.post();
    if (h.status() === 'IN_PROGRESS') expect(xferErrorOf(() => h.post({ repost: true })).code).toBe('REPOST_ACTIVE');
    expect(await withDeadline(h.whenTerminal(), 30_000, 'terminal')).toBe('DONE');
    expect(firstMismatch(dst.bytes, 5)).toBe(-1);
    expect((await nextNotification(b)).text).toBe('once');
    // Terminal is sticky; after it the handle may be posted again.
    expect(h.status()).toBe('DONE');
    h.post({ repost: true });
    expect(await withDeadline(h.whenTerminal(), 30_000, 'terminal')).toBe('DONE');
  });

  it('abort is NOT_SUPPORTED; deregistering memory under an in-flight transfer is IN_USE', async () => {
    const { a, b, src, dst } = pair(64 * MiB, 9);
    const h = write(a, src, b, dst);
    h.post();
    expect(xferErrorOf(() => h.abort()).code).toBe('NOT_SUPPORTED');
    if (h.status() === 'IN_PROGRESS') expect(xferErrorOf(() => a.deregisterMemory(src)).code).toBe('IN_USE');
    await withDeadline(h.whenTerminal(), 30_000, 'terminal');
    h.release();
    a.deregisterMemory(src);
  });

  it('release in flight: accepted, not quiescent; the drain lands every byte, then quiesces', async () => {
    const { a, b, src, dst } = pair(64 * MiB, 77);
    const h = write(a, src, b, dst, 'released');
    h.post();
    const t0 = performance.now();
    const result = h.release();
    if (result.quiesced) return; // finished inside post(): nothing was in flight to observe
    expect(result).toEqual({ accepted: true, quiesced: false });
    // Unless it drained already, the source is still in use by UCX.
    const deregistered = (() => {
      try {
        a.deregisterMemory(src);
        return 'ok';
      } catch (error) {
        return (error as { code?: string }).code;
      }
    })();
    const landedAtRelease = 64 * MiB - countMismatchedPages(dst.bytes, 77);
    if (deregistered === 'ok') expect(landedAtRelease).toBe(64 * MiB); // it had drained already: every byte is there
    else expect(deregistered).toBe('IN_USE');
    await withDeadline(h.whenQuiesced(), 30_000, 'quiesced');
    const quiesceMs = performance.now() - t0;
    expect(firstMismatch(dst.bytes, 77)).toBe(-1);
    // The drain's status poll is what sends NIXL's notification, so it still arrives.
    expect((await nextNotification(b)).text).toBe('released');
    if (deregistered !== 'ok') a.deregisterMemory(src);
    console.log(
      `[nixl release-in-flight] landed at release: ${landedAtRelease} B; quiesced after ${quiesceMs.toFixed(1)} ms; all 64 MiB landed; notification arrived`,
    );
  });

  it('invalidateRemote waits for in-flight transfers, then new posts are UNKNOWN_REMOTE', async () => {
    const { a, b, src, dst } = pair(16 * MiB, 3);
    const h = write(a, src, b, dst);
    h.post();
    a.invalidateRemote(b.name);
    expect(await withDeadline(h.whenTerminal(), 30_000, 'terminal')).toBe('DONE');
    expect(firstMismatch(dst.bytes, 3)).toBe(-1);
    expect(xferErrorOf(() => h.post({ repost: true })).code).toBe('UNKNOWN_REMOTE');
    expect(xferErrorOf(() => write(a, src, b, dst)).code).toBe('UNKNOWN_REMOTE');
    // Loading the metadata again makes the peer reachable.
    a.loadRemoteMetadata(b.exportMetadata());
    const again = write(a, src, b, dst);
    again.post();
    expect(await withDeadline(again.whenTerminal(), 30_000, 'terminal')).toBe('DONE');
  });

  it('bad metadata is BAD_METADATA, never a crash', () => {
    const a = agent('md-check');
    expect(xferErrorOf(() => a.loadRemoteMetadata(new Uint8Array([1, 2, 3]))).code).toBe('BAD_METADATA');
    const shm = new Agent('shm-peer', { backend: 'shm' });
    agents.push(shm);
    expect(xferErrorOf(() => a.loadRemoteMetadata(shm.exportMetadata())).code).toBe('BAD_METADATA');
    const good = agent('md-good').exportMetadata();
    const truncated = good.slice(0, good.length - 7);
    expect(xferErrorOf(() => a.loadRemoteMetadata(truncated)).code).toBe('BAD_METADATA');
  });

  it('cross-process: a peer process writes 32 MiB into this process over NIXL and notifies', async () => {
    const peer = new Peer();
    peers.push(peer);
    const b = agent(`xp-target-${process.pid}`);
    const dst = b.registerMemory(32 * MiB);
    await peer.call('init', { name: `xp-init-${process.pid}`, backend: 'nixl', sizes: [32 * MiB], seed: 41 });
    await peer.call('load', { meta: toBase64(b.exportMetadata()) });
    const reply = await peer.call('transfer', {
      op: 'WRITE',
      region: 0,
      blocks: [[0, 32 * MiB]],
      remoteRegionId: dst.id,
      remote: b.name,
      notification: toBase64(encoder.encode('xp')),
    });
    expect(reply.status).toBe('DONE');
    const n = await nextNotification(b);
    expect(n).toEqual({ from: `xp-init-${process.pid}`, text: 'xp' });
    expect(firstMismatch(dst.bytes, 41)).toBe(-1);
  });
});

/** Bytes in 4 KiB pages that do not yet hold the pattern (a coarse "not landed yet" count). */
function countMismatchedPages(bytes: Uint8Array, seed: number): number {
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  let bad = 0;
  for (let page = 0; page < words.length; page += 1024) {
    for (let i = page; i < Math.min(page + 1024, words.length); i++) {
      if (words[i] !== patternWord(i, seed)) {
        bad += 4096;
        break;
      }
    }
  }
  return bad;
}

// Cross-process behaviour of the shm backend: real child processes (test/native/fixtures/peer.mjs).
import { afterAll, describe, expect, it } from 'vitest';

import { Agent, reapStaleSegments } from '../../src/native/index.js';
import { BACKEND, backendSemantics, fillPattern, fromBase64, Peer, segmentsOf, toBase64, withDeadline } from './helpers.js';

// The backend under test is XFERSTATE_BACKEND (children inherit it), else shm.
const semantics = backendSemantics();

const peers: Peer[] = [];
function peer(): Peer {
  const p = new Peer();
  peers.push(p);
  return p;
}
afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop()));
});

const MiB = 1 << 20;

/** Deterministic pseudo-random generator (tests must be reproducible). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('two processes', { timeout: 60_000 }, () => {
  it('moves 64 MiB child to child as 4 KiB..1 MiB blocks; every byte verified when the notification is seen', async () => {
    const source = peer();
    const target = peer();
    const size = 64 * MiB;
    const s = await source.call('init', { name: 'src', sizes: [size], seed: 0x5eed });
    const t = await target.call('init', { name: 'dst', sizes: [size] });
    await source.call('load', { meta: t.meta });
    await target.call('load', { meta: s.meta });
    // Blocks of random sizes from 4 KiB to 1 MiB, covering the region exactly.
    const random = rng(42);
    const choices = [4096, 16384, 65536, 262144, MiB];
    const blocks: [number, number][] = [];
    for (let offset = 0; offset < size; ) {
      const length = Math.min(choices[Math.floor(random() * choices.length)]!, size - offset);
      blocks.push([offset, length]);
      offset += length;
    }
    const used = new Set(blocks.map((b) => b[1]));
    for (const c of choices) expect(used.has(c)).toBe(true);
    const waiting = target.call('waitNotifications', { count: 1, timeoutMs: 30_000, region: 0, verifySeed: 0x5eed });
    const done = await source.call('transfer', {
      op: 'WRITE',
      remote: 'dst',
      region: 0,
      remoteRegionId: (t.regionIds as number[])[0],
      blocks,
      notification: toBase64(new TextEncoder().encode('kv-ready:7')),
    });
    expect(done).toMatchObject({ status: 'DONE', bytesDone: size });
    const seen = await waiting;
    expect((seen.notifications as { from: string; bytes: string }[]).map((n) => [n.from, new TextDecoder().decode(fromBase64(n.bytes))])).toEqual([
      ['src', 'kv-ready:7'],
    ]);
    expect(seen.firstBad).toBe(-1);
    await source.call('close');
    await target.call('close');
  });

  // Needs a cancel that stops the bytes; nixl drains instead (nixl-release-in-flight.test.ts).
  it.skipIf(!semantics.canAbortInFlight)('cancel at random points: once quiesced, no byte of the remote target changes', async () => {
    const target = peer();
    const size = 64 * MiB;
    const t = await target.call('init', { name: 'cancel-dst', sizes: [size] });
    const a = new Agent('cancel-src', { chunkBytes: 64 * 1024, copyThreads: 2 });
    try {
      const ra = a.registerMemory(size);
      fillPattern(ra.bytes, 77);
      a.loadRemoteMetadata(fromBase64(t.meta));
      const random = rng(7);
      let midTransfer = 0;
      for (let round = 0; round < 6; round++) {
        const threshold = Math.floor(random() * 0.8 * size);
        const h = a.createTransfer({
          op: 'WRITE',
          local: [{ region: ra, offset: 0, length: size }],
          remote: [{ regionId: (t.regionIds as number[])[0]!, offset: 0, length: size }],
          remoteAgent: 'cancel-dst',
          notification: new Uint8Array([round]),
        });
        h.post();
        // Busy-wait on this thread until the copy engine passed the random point.
        while (h.bytesDone < threshold && h.status() === 'IN_PROGRESS') {
          /* spin */
        }
        const useRelease = random() < 0.5;
        const result = useRelease ? h.release() : h.abort();
        expect('aborted' in result || result.accepted).toBe(true);
        await withDeadline(h.whenQuiesced(), 10_000, 'quiescence');
        // ERROR means the cancel landed while the transfer was running.
        const finalStatus = await h.whenTerminal();
        if (finalStatus === 'ERROR') midTransfer++;
        await target.call('snapshot', { region: 0 });
        await new Promise((r) => setTimeout(r, 60));
        const changed = await target.call('changedSinceSnapshot', { region: 0 });
        expect(changed.changed).toBe(0);
        if (!useRelease) h.release();
        const notes = await target.call('waitNotifications', { count: 1, timeoutMs: 0 });
        // A cancelled transfer never sends its notification; a completed one does.
        expect((notes.notifications as unknown[]).length).toBe(finalStatus === 'DONE' ? 1 : 0);
        await target.call('fill', { region: 0, seed: round }); // reset the target
      }
      expect(midTransfer).toBeGreaterThan(0);
    } finally {
      a.close();
    }
  });

  it('killing the target mid-transfer surfaces ERROR (PEER_GONE) to the initiator, which never hangs', async () => {
    const target = peer();
    const size = 256 * MiB;
    const t = await target.call('init', { name: 'victim', sizes: [size] });
    const a = new Agent('survivor', { chunkBytes: 64 * 1024, copyThreads: 1 });
    try {
      const ra = a.registerMemory(size);
      const meta = fromBase64(t.meta);
      a.loadRemoteMetadata(meta);
      const h = a.createTransfer({
        op: 'WRITE',
        local: [{ region: ra, offset: 0, length: size }],
        remote: [{ regionId: (t.regionIds as number[])[0]!, offset: 0, length: size }],
        remoteAgent: 'victim',
      });
      h.post();
      // Backends without partial progress (chunkBytes 0) report bytesDone only at the end.
      const spinUntil = Date.now() + (semantics.chunkBytes > 0 ? Infinity : 20);
      while (h.bytesDone === 0 && h.status() === 'IN_PROGRESS' && Date.now() < spinUntil) {
        /* spin until the first chunk landed */
      }
      target.child.kill('SIGKILL');
      const status = await withDeadline(h.whenTerminal(), 10_000, 'terminal status after peer death');
      expect(status).toBe('ERROR');
      expect(h.error).toBe('PEER_GONE');
      expect(h.bytesDone).toBeLessThan(size);
      await target.exited();
      expect(() => h.post({ repost: true })).toThrow(expect.objectContaining({ code: 'PEER_GONE' }));
      expect(() => a.sendNotification('victim', new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'PEER_GONE' }));
      const b = new Agent('late');
      expect(() => b.loadRemoteMetadata(meta)).toThrow(expect.objectContaining({ code: 'PEER_GONE' }));
      b.close();
      if (BACKEND === 'shm') {
        // The dead peer's segments are still named in /dev/shm until someone reaps them.
        expect(segmentsOf(target.pid).length).toBeGreaterThan(0);
        expect(reapStaleSegments()).toBeGreaterThan(0);
        expect(segmentsOf(target.pid)).toEqual([]);
      }
    } finally {
      a.close();
    }
  });

  it('killing the initiator mid-transfer: the target detects the stall by its own deadline and stays usable', async () => {
    const initiator = peer();
    const size = 256 * MiB;
    const b = new Agent('waiting-target');
    try {
      const rb = b.registerMemory(size);
      const i = await initiator.call('init', { name: 'doomed', sizes: [size], copyThreads: 1, chunkBytes: 65536 });
      await initiator.call('load', { meta: toBase64(b.exportMetadata()) });
      b.loadRemoteMetadata(fromBase64(i.meta));
      const posted = new Promise<void>((resolve) => initiator.onEvent((m) => m.event === 'posted' && resolve()));
      const running = initiator.request('transfer', {
        op: 'WRITE',
        remote: 'waiting-target',
        region: 0,
        remoteRegionId: rb.id,
        blocks: [[0, size]],
        notification: toBase64(new Uint8Array([1])),
        announcePosted: true,
      });
      running.catch(() => undefined); // the initiator dies before it can answer
      await withDeadline(posted, 10_000, 'posted');
      initiator.child.kill('SIGKILL');
      await initiator.exited();
      // The caller's deadline, not the library, decides: no notification within it.
      const arrived = new Promise<boolean>((resolve) => b.on('notification', () => resolve(true)));
      const outcome = await Promise.race([arrived, new Promise<boolean>((r) => setTimeout(() => r(false), 300))]);
      expect(outcome).toBe(false);
      expect(b.pollNotifications()).toEqual([]);
      expect(() => b.sendNotification('doomed', new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'PEER_GONE' }));
      // Still a working agent.
      b.loadRemoteMetadata(b.exportMetadata());
      const h = b.createTransfer({
        op: 'WRITE',
        local: [{ region: rb, offset: 0, length: 4096 }],
        remote: [{ regionId: rb.id, offset: 4096, length: 4096 }],
        remoteAgent: 'waiting-target',
      });
      h.post();
      expect(await withDeadline(h.whenTerminal(), 10_000, 'loopback')).toBe('DONE');
      reapStaleSegments();
      expect(segmentsOf(initiator.pid)).toEqual([]);
    } finally {
      b.close();
    }
  });
});

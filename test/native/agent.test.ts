import { readdirSync, readlinkSync } from 'node:fs';

import { afterEach, describe, expect, it } from 'vitest';

import { Agent, availableBackends, SEGMENT_PREFIX, XferError, type Region } from '../../src/native/index.js';
import {
  BACKEND,
  backendSemantics,
  fillPattern,
  firstMismatch,
  itWhere,
  NEEDS_HOST_VIEW,
  registersHostMemory,
  segmentsOf,
  withDeadline,
  xferErrorOf,
} from './helpers.js';

// Backend under test: XFERSTATE_BACKEND (Agent's default), else shm. shm-only facts are guarded.
const ON_SHM = BACKEND === 'shm';
const semantics = backendSemantics();
const HOST_VIEW = registersHostMemory();
const itHost = itWhere(HOST_VIEW, NEEDS_HOST_VIEW);

const open: Agent[] = [];
function agent(name: string, options: ConstructorParameters<typeof Agent>[1] = {}): Agent {
  const a = new Agent(name, options);
  open.push(a);
  return a;
}
afterEach(() => {
  for (const a of open.splice(0)) a.close();
});

/** Two agents in this process that know each other. */
function pair(options: ConstructorParameters<typeof Agent>[1] = {}): { a: Agent; b: Agent; ra: Region; rb: Region } {
  const a = agent('a', options);
  const b = agent('b', options);
  const ra = a.registerMemory(1 << 20);
  const rb = b.registerMemory(1 << 20);
  expect(a.loadRemoteMetadata(b.exportMetadata())).toBe('b');
  expect(b.loadRemoteMetadata(a.exportMetadata())).toBe('a');
  return { a, b, ra, rb };
}

describe('native agent basics', () => {
  it('lists the shm backend and publishes its semantics', () => {
    expect(availableBackends()).toContain('shm');
    const a = agent('sem');
    expect(a.semantics.backend).toBe(BACKEND);
    if (!ON_SHM) return; // each backend's own suite checks its declaration (e.g. nixl.test.ts)
    expect(a.semantics).toMatchObject({
      backend: 'shm',
      canAbortInFlight: true,
      releaseInFlightAccepted: true,
      releaseInFlightQuiesces: false,
      notificationAfterData: true,
      notificationOnReleasedTransfer: false,
      terminalImpliesQuiesced: true,
      repostActiveRejected: true,
      terminalStatusSticky: true,
      crossProcess: true,
      chunkBytes: 256 * 1024,
      chunkedProgress: true,
    });
  });

  it('refuses an unknown backend and bad options with typed errors', () => {
    expect(xferErrorOf(() => new Agent('x', { backend: 'ucx' })).code).toBe('NOT_SUPPORTED');
    expect(xferErrorOf(() => new Agent('bad name!')).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(() => new Agent('x', { chunkBytes: 12 })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(() => new Agent('x', { copyThreads: 0 })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(() => new Agent('x', { progress: 'eager' as unknown as 'thread' })).code).toBe('INVALID_ARGUMENT');
  });

  itHost('registers memory as a shared-memory segment visible through region.bytes', () => {
    const before = segmentsOf().length;
    const a = agent('reg');
    const r = a.registerMemory(12345);
    expect(r.size).toBe(12345);
    expect(r.bytes.byteLength).toBe(12345);
    if (ON_SHM) expect(r.name).toMatch(new RegExp(`^/xferstate-${process.pid}-reg-`));
    r.bytes[12344] = 7;
    expect(r.bytes[12344]).toBe(7);
    if (ON_SHM) expect(segmentsOf().length).toBe(before + 2); // control segment + region
    a.deregisterMemory(r);
    expect(r.bytes.byteLength).toBe(0); // detached, not a dangling view
    if (ON_SHM) expect(segmentsOf().length).toBe(before + 1);
    expect(xferErrorOf(() => a.deregisterMemory(r)).code).toBe('NOT_REGISTERED');
    expect(xferErrorOf(() => a.registerMemory(0)).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(() => a.registerMemory(-1)).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(() => a.registerMemory(2 ** 45)).code).toMatch(/^(INVALID_ARGUMENT|BACKEND)$/);
  });

  itHost('close() unmaps and unlinks every segment it created', () => {
    const before = segmentsOf();
    const a = agent('cl');
    const regions = [a.registerMemory(4096), a.registerMemory(1 << 20), a.registerMemory(100)];
    const b = agent('cl2');
    b.loadRemoteMetadata(a.exportMetadata());
    if (ON_SHM) expect(segmentsOf().length).toBe(before.length + 5);
    a.close();
    b.close();
    expect(segmentsOf()).toEqual(before);
    for (const r of regions) expect(r.bytes.byteLength).toBe(0);
  });

  // A segment's descriptor went back only when the JS ArrayBuffer holding it was collected: a
  // simulation of thousands of seeds (servers closed, never collected in between) ran out of
  // descriptors. Here the regions stay referenced, so only close() can give them back.
  itHost('close() gives back the descriptors of every segment it mapped, with its regions still referenced', () => {
    const shmFds = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(`/dev/shm/${SEGMENT_PREFIX}${process.pid}-`);
        } catch {
          return false; // the directory's own descriptor, gone by now
        }
      }).length;
    const before = shmFds();
    const a = agent('fd');
    const regions = [a.registerMemory(4096), a.registerMemory(1 << 20)];
    const b = agent('fd2');
    b.loadRemoteMetadata(a.exportMetadata());
    if (ON_SHM) expect(shmFds()).toBeGreaterThan(before);
    a.close();
    b.close();
    expect(shmFds()).toBe(before);
    expect(regions.map((r) => r.bytes.byteLength)).toEqual([0, 0]); // referenced to the end, and detached
  });

  it('throws CLOSED for any call after close()', () => {
    const { a, ra, rb } = pair();
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: 16 }],
      remote: [{ regionId: rb.id, offset: 0, length: 16 }],
      remoteAgent: 'b',
    });
    a.close();
    a.close(); // idempotent
    const calls: (() => unknown)[] = [
      () => a.registerMemory(10),
      () => a.deregisterMemory(ra),
      () => a.exportMetadata(),
      () => a.loadRemoteMetadata(new Uint8Array(4)),
      () => a.invalidateRemote('b'),
      () => a.createTransfer({ op: 'WRITE', local: [], remote: [], remoteAgent: 'b' }),
      () => a.sendNotification('b', new Uint8Array(1)),
      () => a.pollNotifications(),
      () => a.step(),
      () => h.post(),
      () => h.status(),
      () => h.release(),
      () => h.abort(),
    ];
    for (const call of calls) expect(xferErrorOf(call).code).toBe('CLOSED');
  });
});

describe('metadata', () => {
  it('detects malformed, truncated and corrupted blobs', () => {
    const a = agent('meta');
    a.registerMemory(4096);
    const good = a.exportMetadata();
    const b = agent('metb');
    expect(b.loadRemoteMetadata(good)).toBe('meta');
    expect(xferErrorOf(() => b.loadRemoteMetadata(new Uint8Array(0))).code).toBe('BAD_METADATA');
    expect(xferErrorOf(() => b.loadRemoteMetadata(good.slice(0, good.length - 1))).code).toBe('BAD_METADATA');
    expect(xferErrorOf(() => b.loadRemoteMetadata(good.slice(0, 10))).code).toBe('BAD_METADATA');
    const padded = new Uint8Array(good.length + 3);
    padded.set(good);
    expect(xferErrorOf(() => b.loadRemoteMetadata(padded)).code).toBe('BAD_METADATA');
    for (let i = 0; i < good.length; i++) {
      const flipped = good.slice();
      flipped[i] ^= 0x20;
      expect(xferErrorOf(() => b.loadRemoteMetadata(flipped)).code).toBe('BAD_METADATA');
    }
    expect(xferErrorOf(() => b.loadRemoteMetadata('blob' as unknown as Uint8Array)).code).toBe('INVALID_ARGUMENT');
  });

  it('invalidateRemote forgets the peer', () => {
    const { a, ra, rb } = pair();
    a.invalidateRemote('b');
    expect(xferErrorOf(() => a.invalidateRemote('b')).code).toBe('UNKNOWN_REMOTE');
    expect(
      xferErrorOf(() =>
        a.createTransfer({ op: 'WRITE', local: [{ region: ra, offset: 0, length: 1 }], remote: [{ regionId: rb.id, offset: 0, length: 1 }], remoteAgent: 'b' }),
      ).code,
    ).toBe('UNKNOWN_REMOTE');
  });
});

describe('transfer validation', () => {
  it('maps every bad descriptor list to its code', () => {
    const { a, b, ra, rb } = pair();
    const other = b.registerMemory(64);
    const req = (over: Partial<Parameters<Agent['createTransfer']>[0]>) => () =>
      a.createTransfer({
        op: 'WRITE',
        local: [{ region: ra, offset: 0, length: 64 }],
        remote: [{ regionId: rb.id, offset: 0, length: 64 }],
        remoteAgent: 'b',
        ...over,
      });
    expect(xferErrorOf(req({ local: [{ region: other, offset: 0, length: 64 }] })).code).toBe('NOT_REGISTERED');
    expect(xferErrorOf(req({ remote: [{ regionId: 999, offset: 0, length: 64 }] })).code).toBe('NOT_REGISTERED');
    expect(xferErrorOf(req({ local: [{ region: ra, offset: (1 << 20) - 10, length: 64 }] })).code).toBe('OUT_OF_RANGE');
    expect(xferErrorOf(req({ remote: [{ regionId: rb.id, offset: 2 ** 52, length: 64 }] })).code).toBe('OUT_OF_RANGE');
    expect(xferErrorOf(req({ remote: [{ regionId: rb.id, offset: 0, length: 65 }] })).code).toBe('LENGTH_MISMATCH');
    expect(xferErrorOf(req({ remote: [] })).code).toBe('LENGTH_MISMATCH');
    expect(xferErrorOf(req({ local: [], remote: [] })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(req({ remoteAgent: 'nobody' })).code).toBe('UNKNOWN_REMOTE');
    expect(xferErrorOf(req({ op: 'COPY' as unknown as 'WRITE' })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(req({ local: [{ region: ra, offset: -1, length: 64 }] })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(req({ local: [{ region: ra, offset: 0.5, length: 64 }] })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(req({ local: [{ region: ra, offset: 0, length: 0 }], remote: [{ regionId: rb.id, offset: 0, length: 0 }] })).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(xferErrorOf(req({ notification: new Uint8Array(4097) })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(req({ local: 'x' as unknown as [] })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(() => a.createTransfer(null as unknown as Parameters<Agent['createTransfer']>[0])).code).toBe('INVALID_ARGUMENT');
  });
});

describe('transfers (thread progress, one process)', { timeout: 30_000 }, () => {
  itHost('WRITE and READ scattered descriptors move the right bytes', async () => {
    const { a, ra, rb } = pair({ chunkBytes: 8192 });
    fillPattern(ra.bytes, 11);
    // 64 blocks of 16 KiB, written to the remote in reverse order.
    const n = 64;
    const block = 16384;
    const local = Array.from({ length: n }, (_, i) => ({ region: ra, offset: i * block, length: block }));
    const remote = Array.from({ length: n }, (_, i) => ({ regionId: rb.id, offset: (n - 1 - i) * block, length: block }));
    const w = a.createTransfer({ op: 'WRITE', local, remote, remoteAgent: 'b' });
    w.post();
    expect(await withDeadline(w.whenTerminal(), 10_000, 'write')).toBe('DONE');
    expect(w.bytesDone).toBe(n * block);
    for (let i = 0; i < n; i++) {
      expect(Buffer.compare(ra.bytes.subarray(i * block, (i + 1) * block), rb.bytes.subarray((n - 1 - i) * block, (n - i) * block))).toBe(0);
    }
    // READ it back (reversed again) into a fresh region: must equal the original pattern.
    const back = a.registerMemory(1 << 20);
    const r = a.createTransfer({
      op: 'READ',
      local: Array.from({ length: n }, (_, i) => ({ region: back, offset: i * block, length: block })),
      remote,
      remoteAgent: 'b',
    });
    r.post();
    expect(await withDeadline(r.whenTerminal(), 10_000, 'read')).toBe('DONE');
    expect(firstMismatch(back.bytes, 11)).toBe(-1);
  });

  itHost('status is sticky, REPOST_ACTIVE leaves the running transfer alone, repost after DONE works', async () => {
    const a = agent('big', { chunkBytes: 64 * 1024, copyThreads: 1 });
    const b = agent('bigb');
    const size = 64 << 20;
    const ra = a.registerMemory(size);
    const rb = b.registerMemory(size);
    fillPattern(ra.bytes, 5);
    a.loadRemoteMetadata(b.exportMetadata());
    const h = a.createTransfer({ op: 'WRITE', local: [{ region: ra, offset: 0, length: size }], remote: [{ regionId: rb.id, offset: 0, length: size }], remoteAgent: 'bigb' });
    expect(h.status()).toBe('NOT_POSTED');
    h.post();
    expect(xferErrorOf(() => h.post()).code).toBe('REPOST_ACTIVE'); // posted once: refused by the facade
    const repost = xferErrorOf(() => h.post({ repost: true }));
    expect(repost.code).toBe('REPOST_ACTIVE'); // asked for, but still running: refused by the backend
    expect(await withDeadline(h.whenTerminal(), 20_000, 'transfer')).toBe('DONE');
    expect(firstMismatch(rb.bytes, 5)).toBe(-1);
    expect(h.status()).toBe('DONE');
    expect(h.status()).toBe('DONE');
    fillPattern(ra.bytes, 6);
    expect(xferErrorOf(() => h.post()).code).toBe('REPOST_ACTIVE'); // finished, but a repost must be asked for
    h.post({ repost: true });
    expect(await withDeadline(h.whenTerminal(), 20_000, 'repost')).toBe('DONE');
    expect(firstMismatch(rb.bytes, 6)).toBe(-1);
    expect(h.release()).toEqual({ accepted: true, quiesced: true });
    expect(xferErrorOf(() => h.release()).code).toBe('DOUBLE_RELEASE');
    expect(xferErrorOf(() => h.status()).code).toBe('RELEASED');
    expect(xferErrorOf(() => h.post()).code).toBe('RELEASED');
  });

  // A backend that cannot stop a transfer drains it instead: nixl-release-in-flight.test.ts.
  itWhere(
    semantics.canAbortInFlight && HOST_VIEW,
    semantics.canAbortInFlight ? NEEDS_HOST_VIEW : 'it cannot abort in flight (semantics.canAbortInFlight false); nixl-release-in-flight.test.ts covers its drain',
  )('release in flight is accepted at once; after quiescence nothing changes and no notification comes', async () => {
    const a = agent('rel', { chunkBytes: 64 * 1024, copyThreads: 2 });
    const b = agent('relb');
    const size = 64 << 20;
    const ra = a.registerMemory(size);
    const rb = b.registerMemory(size);
    fillPattern(ra.bytes, 9);
    a.loadRemoteMetadata(b.exportMetadata());
    // The release is made right after the first chunk landed, but the copy threads run on: where this
    // thread is descheduled for the few milliseconds the rest of the copy takes (two shared cores), the
    // transfer completes before the release. Each round checks what its outcome requires, as the
    // multi-process cancel test does, and one round at least must have stopped the copy.
    let stopped = 0;
    for (let round = 0; round < 3; round++) {
      rb.bytes.fill(0);
      const h = a.createTransfer({
        op: 'WRITE',
        local: [{ region: ra, offset: 0, length: size }],
        remote: [{ regionId: rb.id, offset: 0, length: size }],
        remoteAgent: 'relb',
        notification: new Uint8Array([1, 2, 3, round]),
      });
      h.post();
      // With chunked progress, release after the first chunk landed; where the bytes move as one
      // unit (a GPU launch) there is nothing to wait for: released right after the post, the
      // 64 MiB copy is still in flight.
      while (semantics.chunkedProgress && h.bytesDone === 0 && h.status() === 'IN_PROGRESS') {
        /* spin until the first chunk landed */
      }
      const result = h.release();
      expect(result.accepted).toBe(true);
      await withDeadline(h.whenQuiesced(), 10_000, 'quiesce');
      const status = await h.whenTerminal();
      const snapshot = Buffer.from(rb.bytes);
      await new Promise((r) => setTimeout(r, 100));
      expect(Buffer.compare(snapshot, Buffer.from(rb.bytes))).toBe(0);
      if (status === 'ERROR') {
        stopped++;
        expect(h.error).toBe('ABORTED');
        expect(b.pollNotifications()).toEqual([]);
      } else {
        // Completed before the release reached it: every byte landed and its notification came.
        expect(status).toBe('DONE');
        expect(result.quiesced).toBe(true);
        expect(firstMismatch(rb.bytes, 9)).toBe(-1);
        let notes = b.pollNotifications();
        for (let t = 0; notes.length === 0 && t < 200; t++) {
          await new Promise((r) => setTimeout(r, 10));
          notes = b.pollNotifications();
        }
        expect(notes.map((n) => [...n.bytes])).toEqual([[1, 2, 3, round]]);
      }
    }
    expect(stopped).toBeGreaterThan(0);
    a.deregisterMemory(ra); // quiescent: allowed now
  });

  itWhere(
    semantics.canAbortInFlight && HOST_VIEW,
    semantics.canAbortInFlight ? NEEDS_HOST_VIEW : 'it cannot abort in flight (semantics.canAbortInFlight false)',
  )('abort in flight ends in ERROR/ABORTED once quiescent; a later repost completes', async () => {
    const a = agent('ab', { chunkBytes: 64 * 1024 });
    const b = agent('abb');
    const size = 32 << 20;
    const ra = a.registerMemory(size);
    const rb = b.registerMemory(size);
    fillPattern(ra.bytes, 3);
    a.loadRemoteMetadata(b.exportMetadata());
    const h = a.createTransfer({ op: 'WRITE', local: [{ region: ra, offset: 0, length: size }], remote: [{ regionId: rb.id, offset: 0, length: size }], remoteAgent: 'abb' });
    h.post();
    const result = h.abort();
    await withDeadline(h.whenQuiesced(), 10_000, 'quiesce');
    const status = await h.whenTerminal();
    if (result.aborted) {
      expect(status).toBe('ERROR');
      expect(h.error).toBe('ABORTED');
    } else {
      expect(status).toBe('DONE');
    }
    expect(h.abort()).toEqual({ aborted: false, quiesced: true });
    h.post({ repost: true });
    expect(await withDeadline(h.whenTerminal(), 20_000, 'repost')).toBe('DONE');
    expect(firstMismatch(rb.bytes, 3)).toBe(-1);
  });

  itHost('the notification arrives only after every byte, via poll and via the event form', async () => {
    const { a, b, ra, rb } = pair();
    fillPattern(ra.bytes, 21);
    const seen: { from: string; text: string; intact: boolean }[] = [];
    const arrived = new Promise<void>((resolve) => {
      b.on('notification', (n) => {
        seen.push({ from: n.from, text: new TextDecoder().decode(n.bytes), intact: firstMismatch(rb.bytes, 21) === -1 });
        resolve();
      });
    });
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: ra.size }],
      remote: [{ regionId: rb.id, offset: 0, length: rb.size }],
      remoteAgent: 'b',
      notification: new TextEncoder().encode('req-1'),
    });
    h.post();
    await withDeadline(arrived, 10_000, 'notification');
    expect(seen).toEqual([{ from: 'a', text: 'req-1', intact: true }]);

    a.sendNotification('b', new TextEncoder().encode('hello'));
    const iterator = b.notifications();
    const next = await withDeadline(iterator.next(), 10_000, 'iterator');
    expect(next.done).toBe(false);
    expect(next.value && new TextDecoder().decode(next.value.bytes)).toBe('hello');
    await iterator.return(undefined);
    expect(xferErrorOf(() => a.sendNotification('nobody', new Uint8Array(1))).code).toBe('UNKNOWN_REMOTE');
    expect(xferErrorOf(() => a.sendNotification('b', new Uint8Array(5000))).code).toBe('INVALID_ARGUMENT');
  });

  it('a closed peer surfaces PEER_GONE, never a crash', async () => {
    const { a, b, ra, rb } = pair();
    const h = a.createTransfer({ op: 'WRITE', local: [{ region: ra, offset: 0, length: 4096 }], remote: [{ regionId: rb.id, offset: 0, length: 4096 }], remoteAgent: 'b' });
    const meta = b.exportMetadata();
    b.close();
    expect(xferErrorOf(() => h.post()).code).toBe('PEER_GONE');
    expect(xferErrorOf(() => a.sendNotification('b', new Uint8Array(1))).code).toBe('PEER_GONE');
    const c = agent('c');
    expect(xferErrorOf(() => c.loadRemoteMetadata(meta)).code).toBe('PEER_GONE');
    expect(h.release()).toEqual({ accepted: true, quiesced: true });
  });

  it('XferError is an Error with a typed code', () => {
    const e = xferErrorOf(() => agent('e').registerMemory(-5));
    expect(e).toBeInstanceOf(XferError);
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe('XferError');
  });
});

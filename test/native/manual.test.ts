import { afterEach, describe, expect, it } from 'vitest';

import { Agent, type StepResult } from '../../src/native/index.js';
import { backendSemantics, fillPattern, firstMismatch, xferErrorOf } from './helpers.js';

// Chunk-by-chunk determinism needs a backend with its own copy engine (semantics.chunkBytes > 0);
// NIXL moves bytes inside UCX calls, so its step() is one poll round, not one chunk.
const chunked = backendSemantics().chunkBytes > 0;

const open: Agent[] = [];
afterEach(() => {
  for (const a of open.splice(0)) a.close();
});

function manualPair(chunkBytes = 4096) {
  const a = new Agent('ma', { progress: 'manual', chunkBytes });
  const b = new Agent('mb', { progress: 'manual', chunkBytes });
  open.push(a, b);
  const ra = a.registerMemory(64 * 1024);
  const rb = b.registerMemory(64 * 1024);
  a.loadRemoteMetadata(b.exportMetadata());
  b.loadRemoteMetadata(a.exportMetadata());
  return { a, b, ra, rb };
}

/** Runs a fixed scenario and returns every step() result until idle (transfer ids made relative). */
function scenario(): StepResult[] {
  const { a, b, ra, rb } = manualPair(4096);
  fillPattern(ra.bytes, 1);
  const sizes = [10_000, 4096, 20_000];
  let offset = 0;
  const handles = sizes.map((size, i) => {
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset, length: size }],
      remote: [{ regionId: rb.id, offset, length: size }],
      remoteAgent: 'mb',
      notification: new Uint8Array([i]),
    });
    offset += size;
    return h;
  });
  for (const h of handles) h.post();
  b.sendNotification('ma', new Uint8Array([42]));
  const base = handles[0]!.id;
  const steps: StepResult[] = [];
  for (;;) {
    const s = a.step();
    steps.push('transferId' in s ? { ...s, transferId: s.transferId - base } : s);
    if (s.kind === 'idle') break;
  }
  return steps;
}

describe('manual progress', () => {
  it.skipIf(!chunked)('step() is deterministic and round-robins one chunk at a time', () => {
    const first = scenario();
    const second = scenario();
    expect(second).toEqual(first);
    // The arrived notification first, then chunks: transfer 0,1,2,0,2,0,2,2,2 (3, 1 and 5 chunks).
    expect(first[0]).toMatchObject({ kind: 'notification', from: 'mb' });
    const order = first.filter((s) => s.kind === 'chunk').map((s) => ('transferId' in s ? s.transferId : -1));
    expect(order).toEqual([0, 1, 2, 0, 2, 0, 2, 2, 2]);
    const chunkBytes = first.filter((s) => s.kind === 'chunk').map((s) => (s.kind === 'chunk' ? s.bytes : -1));
    expect(chunkBytes.every((n) => n > 0 && n <= 4096)).toBe(true);
    expect(first.at(-1)).toEqual({ kind: 'idle' });
  });

  it.skipIf(!chunked)('nothing moves without step(); the notification comes with the last chunk, after the data', () => {
    const { a, b, ra, rb } = manualPair(4096);
    fillPattern(ra.bytes, 7);
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: ra.size }],
      remote: [{ regionId: rb.id, offset: 0, length: rb.size }],
      remoteAgent: 'mb',
      notification: new TextEncoder().encode('done'),
    });
    h.post();
    expect(h.status()).toBe('IN_PROGRESS');
    expect(h.bytesDone).toBe(0);
    expect(rb.bytes.every((x) => x === 0)).toBe(true);
    for (let i = 0; i < 15; i++) {
      const s = a.step();
      expect(s).toMatchObject({ kind: 'chunk', chunkIndex: i, bytes: 4096, bytesDone: (i + 1) * 4096, status: 'IN_PROGRESS' });
      expect(b.pollNotifications()).toEqual([]);
    }
    expect(firstMismatch(rb.bytes.subarray(0, 15 * 4096), 7)).toBe(-1);
    expect(rb.bytes.subarray(15 * 4096).every((x) => x === 0)).toBe(true);
    expect(a.step()).toMatchObject({ kind: 'chunk', chunkIndex: 15, status: 'DONE', bytesDone: 65536 });
    expect(h.status()).toBe('DONE');
    const s = b.step();
    expect(s).toMatchObject({ kind: 'notification', from: 'ma' });
    expect(firstMismatch(rb.bytes, 7)).toBe(-1);
    const polled = b.pollNotifications();
    expect(polled.map((n) => new TextDecoder().decode(n.bytes))).toEqual(['done']);
    expect(a.step()).toEqual({ kind: 'idle' });
  });

  it.skipIf(!chunked)('release mid-transfer is quiescent at once in manual mode and nothing lands afterwards', async () => {
    const { a, b, ra, rb } = manualPair(4096);
    fillPattern(ra.bytes, 3);
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: ra.size }],
      remote: [{ regionId: rb.id, offset: 0, length: rb.size }],
      remoteAgent: 'mb',
      notification: new Uint8Array([1]),
    });
    h.post();
    expect(xferErrorOf(() => a.deregisterMemory(ra)).code).toBe('IN_USE');
    a.step();
    a.step();
    expect(h.release()).toEqual({ accepted: true, quiesced: true });
    await h.whenQuiesced();
    expect(await h.whenTerminal()).toBe('ERROR');
    expect(h.bytesDone).toBe(8192);
    const snapshot = Buffer.from(rb.bytes);
    expect(a.step()).toEqual({ kind: 'idle' });
    expect(b.step()).toEqual({ kind: 'idle' });
    expect(Buffer.compare(snapshot, Buffer.from(rb.bytes))).toBe(0);
    expect(b.pollNotifications()).toEqual([]);
    a.deregisterMemory(ra);
  });

  it.skipIf(!chunked)('a full mailbox keeps the transfer IN_PROGRESS until the receiver drains it', () => {
    const { a, b, ra, rb } = manualPair(65536);
    for (let i = 0; i < 32; i++) a.sendNotification('mb', new Uint8Array([i]));
    expect(xferErrorOf(() => a.sendNotification('mb', new Uint8Array([99]))).code).toBe('BACKEND');
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: 100 }],
      remote: [{ regionId: rb.id, offset: 0, length: 100 }],
      remoteAgent: 'mb',
      notification: new Uint8Array([200]),
    });
    h.post();
    expect(a.step()).toMatchObject({ kind: 'chunk', status: 'IN_PROGRESS', bytesDone: 100 });
    expect(a.step()).toMatchObject({ kind: 'notification-retry', status: 'IN_PROGRESS' });
    expect(b.pollNotifications()).toHaveLength(32);
    expect(a.step()).toMatchObject({ kind: 'notification-retry', status: 'DONE' });
    expect(b.pollNotifications().map((n) => n.bytes[0])).toEqual([200]);
  });

  it.skipIf(!chunked)('step({ transferId }) moves only that transfer and keeps the others in order', () => {
    const { a, ra, rb } = manualPair(4096);
    fillPattern(ra.bytes, 5);
    const mk = (offset: number, length: number) =>
      a.createTransfer({
        op: 'WRITE',
        local: [{ region: ra, offset, length }],
        remote: [{ regionId: rb.id, offset, length }],
        remoteAgent: 'mb',
      });
    const [x, y, z] = [mk(0, 8192), mk(8192, 8192), mk(16384, 8192)] as const;
    for (const h of [x, y, z]) h.post();
    expect(a.pendingWork()).toEqual({ chunks: [x.id, y.id, z.id], notificationRetries: [], notifications: 0 });
    expect(y.step()).toMatchObject({ kind: 'chunk', transferId: y.id, chunkIndex: 0, bytesDone: 4096 });
    expect(x.bytesDone).toBe(0);
    expect(z.bytesDone).toBe(0);
    expect(a.pendingWork().chunks).toEqual([x.id, y.id, z.id]); // y keeps its place
    expect(a.step({ transferId: y.id })).toMatchObject({ kind: 'chunk', chunkIndex: 1, status: 'DONE' });
    expect(a.pendingWork().chunks).toEqual([x.id, z.id]);
    expect(y.step()).toEqual({ kind: 'idle' }); // nothing left for y
    expect(Buffer.compare(rb.bytes.subarray(8192, 16384), ra.bytes.subarray(8192, 16384))).toBe(0);
    expect(rb.bytes.subarray(0, 8192).every((v) => v === 0)).toBe(true);
    // Plain step() still round-robins the rest from the head.
    expect(a.step()).toMatchObject({ kind: 'chunk', transferId: x.id, chunkIndex: 0 });
    expect(a.pendingWork().chunks).toEqual([z.id, x.id]);
    expect(xferErrorOf(() => a.step({ transferId: 999_999 })).code).toBe('INVALID_ARGUMENT');
    expect(xferErrorOf(() => a.step({} as never)).code).toBe('INVALID_ARGUMENT');
  });

  it.skipIf(!chunked)('step({ notification: true }) takes an arrived notification and leaves chunks alone', () => {
    const { a, b, ra, rb } = manualPair(4096);
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: 4096 }],
      remote: [{ regionId: rb.id, offset: 0, length: 4096 }],
      remoteAgent: 'mb',
    });
    h.post();
    expect(a.step({ notification: true })).toEqual({ kind: 'idle' });
    b.sendNotification('ma', new Uint8Array([1]));
    b.sendNotification('ma', new Uint8Array([2]));
    expect(a.pendingWork()).toEqual({ chunks: [h.id], notificationRetries: [], notifications: 2 });
    expect(a.step({ notification: true })).toMatchObject({ kind: 'notification', from: 'mb', bytes: new Uint8Array([1]) });
    expect(a.pendingWork().notifications).toBe(1);
    expect(h.bytesDone).toBe(0);
  });

  it.skipIf(!chunked)('injectError(): ERROR at the next step, copied bytes stay, no notification', async () => {
    const { a, b, ra, rb } = manualPair(4096);
    fillPattern(ra.bytes, 9);
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: 4 * 4096 }],
      remote: [{ regionId: rb.id, offset: 0, length: 4 * 4096 }],
      remoteAgent: 'mb',
      notification: new Uint8Array([7]),
    });
    h.post();
    h.step();
    h.injectError();
    expect(h.status()).toBe('IN_PROGRESS'); // armed, not yet fired
    expect(h.bytesDone).toBe(4096);
    expect(a.step()).toEqual({ kind: 'fault', transferId: h.id, bytesDone: 4096, totalBytes: 4 * 4096, status: 'ERROR' });
    expect(h.status()).toBe('ERROR');
    expect(await h.whenTerminal()).toBe('ERROR');
    expect(h.error).toBe('BACKEND');
    await h.whenQuiesced();
    expect(firstMismatch(rb.bytes.subarray(0, 4096), 9)).toBe(-1);
    expect(rb.bytes.subarray(4096).every((x) => x === 0)).toBe(true);
    expect(a.pendingWork()).toEqual({ chunks: [], notificationRetries: [], notifications: 0 });
    expect(b.step()).toEqual({ kind: 'idle' });
    expect(b.pollNotifications()).toEqual([]);
    // Not in progress any more: nothing to arm. A repost clears nothing it needs to: it runs clean.
    expect(xferErrorOf(() => h.injectError()).code).toBe('INVALID_ARGUMENT');
    h.post({ repost: true });
    for (let i = 0; i < 4; i++) h.step();
    expect(h.status()).toBe('DONE');
    expect(b.step()).toMatchObject({ kind: 'notification', bytes: new Uint8Array([7]) });
  });

  it.skipIf(!chunked)('injectError() on a transfer waiting to notify ends it without the notification', () => {
    const { a, b, ra, rb } = manualPair(65536);
    for (let i = 0; i < 32; i++) a.sendNotification('mb', new Uint8Array([i]));
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: 100 }],
      remote: [{ regionId: rb.id, offset: 0, length: 100 }],
      remoteAgent: 'mb',
      notification: new Uint8Array([200]),
    });
    h.post();
    expect(h.step()).toMatchObject({ kind: 'chunk', status: 'IN_PROGRESS', bytesDone: 100 });
    expect(a.pendingWork()).toEqual({ chunks: [], notificationRetries: [h.id], notifications: 0 });
    h.injectError();
    expect(b.pollNotifications()).toHaveLength(32);
    expect(a.step({ transferId: h.id })).toMatchObject({ kind: 'fault', status: 'ERROR', bytesDone: 100 });
    expect(b.pollNotifications()).toEqual([]);
    expect(a.pendingWork().notificationRetries).toEqual([]);
  });

  it('injectError() and chosen steps need manual mode', () => {
    const t = new Agent('t2');
    const u = new Agent('u2');
    open.push(t, u);
    const rt = t.registerMemory(1 << 20);
    const ru = u.registerMemory(1 << 20);
    t.loadRemoteMetadata(u.exportMetadata());
    const h = t.createTransfer({
      op: 'WRITE',
      local: [{ region: rt, offset: 0, length: rt.size }],
      remote: [{ regionId: ru.id, offset: 0, length: ru.size }],
      remoteAgent: 'u2',
    });
    expect(xferErrorOf(() => h.injectError()).code).toBe('NOT_SUPPORTED');
    expect(xferErrorOf(() => h.step()).code).toBe('NOT_SUPPORTED');
    expect(xferErrorOf(() => t.step({ notification: true })).code).toBe('NOT_SUPPORTED');
  });

  it('remoteRegions() lists the peer\'s region ids from its metadata', () => {
    const { a, b, rb } = manualPair(4096);
    const second = b.registerMemory(12_288);
    expect(a.remoteRegions('mb')).toEqual([{ id: rb.id, size: rb.size }]); // the metadata a loaded
    a.loadRemoteMetadata(b.exportMetadata());
    expect(a.remoteRegions('mb')).toEqual([
      { id: rb.id, size: rb.size },
      { id: second.id, size: 12_288 },
    ]);
    expect(xferErrorOf(() => a.remoteRegions('nobody')).code).toBe('UNKNOWN_REMOTE');
  });

  it.skipIf(!chunked)('a finished handle is not posted again unless asked: data and notification arrive once', () => {
    const { a, b, ra } = manualPair(4096);
    const [target] = a.remoteRegions('mb');
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: 4096 }],
      remote: [{ regionId: target!.id, offset: 0, length: 4096 }],
      remoteAgent: 'mb',
      notification: new Uint8Array([1]),
    });
    h.post();
    expect(h.step()).toMatchObject({ status: 'DONE' });
    expect(xferErrorOf(() => h.post()).code).toBe('REPOST_ACTIVE'); // the retry that used to deliver twice
    expect(a.step()).toEqual({ kind: 'idle' });
    expect(b.pollNotifications()).toHaveLength(1);
    h.post({ repost: true }); // an explicit second run
    expect(h.step()).toMatchObject({ status: 'DONE' });
    expect(b.pollNotifications()).toHaveLength(1);
    expect(xferErrorOf(() => h.post({ repost: 'yes' } as never)).code).toBe('REPOST_ACTIVE');
  });

  it.skipIf(!chunked)('baselineCopy() copies like a WRITE over the same mappings; compareWithRemote() finds a difference', () => {
    const { a, ra, rb } = manualPair(4096);
    fillPattern(ra.bytes, 11);
    expect(a.compareWithRemote(ra, 'mb', rb.id, ra.size)).toBe(0);
    a.baselineCopy({ local: ra, remoteAgent: 'mb', remoteRegionId: rb.id, length: 40_000, blockBytes: 16_384, threads: 2, chunkBytes: 4096 });
    expect(a.compareWithRemote(ra, 'mb', rb.id, 40_000)).toBe(-1);
    expect(Buffer.compare(rb.bytes.subarray(0, 40_000), ra.bytes.subarray(0, 40_000))).toBe(0);
    expect(rb.bytes.subarray(40_000).every((v) => v === 0)).toBe(true);
    expect(a.compareWithRemote(ra, 'mb', rb.id, ra.size)).toBe(40_000);
    expect(xferErrorOf(() => a.baselineCopy({ local: ra, remoteAgent: 'mb', remoteRegionId: rb.id, length: ra.size + 1, blockBytes: 1, threads: 1, chunkBytes: 4096 })).code).toBe('OUT_OF_RANGE');
  });

  it('step() needs manual mode', () => {
    const t = new Agent('t');
    open.push(t);
    expect(xferErrorOf(() => t.step()).code).toBe('NOT_SUPPORTED');
  });
});

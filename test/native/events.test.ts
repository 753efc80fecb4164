import { afterEach, describe, expect, it } from 'vitest';

import { Agent, XferError, type TransferHandle } from '../../src/native/index.js';
import { BACKEND } from './helpers.js';

// The facade routes the addon's events through drainEventsPacked (numbers in a reused
// Float64Array, no object per event) and skips the drain before a repost once the previous run's
// Terminal and Quiesced were routed. These check the parts a 4 KiB post->DONE loop never reaches:
// more events than the buffer holds, the raw format, and reposts that must not mix runs.

const open: Agent[] = [];
afterEach(() => {
  for (const a of open.splice(0)) a.close();
});

const BLOCK = 4096;

function pair(tag: string) {
  const a = new Agent(`ev-a-${tag}-${process.pid}`, { backend: BACKEND });
  const b = new Agent(`ev-b-${tag}-${process.pid}`, { backend: BACKEND });
  open.push(a, b);
  const ra = a.registerMemory(1 << 20);
  const rb = b.registerMemory(1 << 20);
  const remoteAgent = a.loadRemoteMetadata(b.exportMetadata());
  const transfer = (i: number): TransferHandle =>
    a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: i * BLOCK, length: BLOCK }],
      remote: [{ regionId: rb.id, offset: i * BLOCK, length: BLOCK }],
      remoteAgent,
    });
  return { a, transfer };
}

/** Waits, without returning to the event loop (so no event callback drains), until the native
 * side says the run is quiescent: its Terminal and Quiesced events are then queued. */
function spinUntilQuiesced(a: Agent, id: number): void {
  const n = a.nativeAgent();
  const deadline = Date.now() + 20_000;
  while (!n.info(id).quiesced) {
    if (Date.now() > deadline) throw new Error(`transfer ${id} not quiescent after 20 s`);
  }
}

/** 'pending' unless the promise is already settled (the race's other side waits one macrotask). */
async function settledNow<T>(p: Promise<T>): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((resolve) => setImmediate(() => resolve('pending')))]);
}

describe(`native events (${BACKEND})`, () => {
  it('one drain routes more events than the packed buffer holds (100 runs = 200 events, 64 per call)', async () => {
    const { a, transfer } = pair('many');
    const handles = Array.from({ length: 100 }, (_, i) => transfer(i));
    for (const h of handles) h.post();
    for (const h of handles) spinUntilQuiesced(a, h.id);
    a.drainEvents();
    // Nothing is left in the addon ...
    const n = a.nativeAgent();
    expect(n.drainEventsPacked?.(new Float64Array(5))).toBe(0);
    expect(n.drainEvents()).toEqual([]);
    // ... and every handle already knows its run ended and is quiescent.
    for (const h of handles) {
      expect(await settledNow(h.whenTerminal())).toBe('DONE');
      expect(await settledNow(h.whenQuiesced())).toBeUndefined();
    }
  });

  it('raw drainEventsPacked: numbers in order, one event per call with room for one, the rest left for drainEvents', () => {
    const { a, transfer } = pair('raw');
    const h = transfer(0);
    const n = a.nativeAgent();
    const packed = n.drainEventsPacked;
    expect(packed).toBeTypeOf('function');
    if (packed === undefined) return;
    const call = (arg: unknown): unknown => Reflect.apply(packed, n, [arg]);
    for (const bad of [undefined, new Float32Array(5), new Float64Array(4), [0, 0, 0, 0, 0]]) {
      expect(() => call(bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    n.post(h.id);
    spinUntilQuiesced(a, h.id);
    const one = new Float64Array(5);
    expect(call(one)).toBe(1);
    // [kind 0 = terminal, transferId, status 2 = DONE, bytesDone, error -1 = none]
    expect([...one]).toEqual([0, h.id, 2, BLOCK, -1]);
    const rest = n.drainEvents();
    expect(rest).toEqual([expect.objectContaining({ kind: 'quiesced', transferId: h.id, status: 'DONE', bytesDone: BLOCK })]);
    expect(call(one)).toBe(0);
  });

  it('back-to-back reposts (the drain before a repost skipped once both events were routed) end DONE, each with its bytes', async () => {
    const { a, transfer } = pair('repost');
    const h = transfer(1);
    for (let run = 0; run < 50; run++) {
      h.post({ repost: true });
      expect(h.error).toBeUndefined();
      let s = h.status();
      while (s === 'IN_PROGRESS') s = h.status();
      expect(s).toBe('DONE');
      expect(await settledNow(h.whenTerminal())).toBe('DONE');
      expect(h.bytesDone).toBe(BLOCK);
    }
    // A repost after a run the facade never saw end (no status(), no drain) still drains first.
    h.post({ repost: true });
    spinUntilQuiesced(a, h.id);
    h.post({ repost: true });
    let s = h.status();
    while (s === 'IN_PROGRESS') s = h.status();
    expect(s).toBe('DONE');
    expect(await settledNow(h.whenTerminal())).toBe('DONE');
    expect(await settledNow(h.whenQuiesced())).toBeUndefined();
    expect(h.bytesDone).toBe(BLOCK);
  });

  it('drainEvents after close is allowed and routes nothing twice', () => {
    const { a, transfer } = pair('closed');
    const h = transfer(2);
    h.post();
    spinUntilQuiesced(a, h.id);
    a.close();
    expect(() => a.drainEvents()).not.toThrow();
    expect(h.error).toBeUndefined();
    expect(() => h.post({ repost: true })).toThrow(XferError);
  });
});

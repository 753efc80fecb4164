import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import { afterEach, describe, expect, it } from 'vitest';

import { Agent, type ProgressMode } from '../../src/native/index.js';
import { backendSemantics, xferErrorOf } from './helpers.js';

// Issue 10 item 3: a server that runs for days must not keep a record per transfer. Released,
// quiescent transfers leave no native record; the facade forgets their handles too.
const chunked = backendSemantics().chunkBytes > 0;

const open: Agent[] = [];
afterEach(() => {
  for (const a of open.splice(0)) a.close();
});

function pair(progress: ProgressMode) {
  const a = new Agent(`rec-a-${progress}`, { progress, chunkBytes: 4096, copyThreads: 2 });
  const b = new Agent(`rec-b-${progress}`, { progress, chunkBytes: 4096, copyThreads: 2 });
  open.push(a, b);
  const ra = a.registerMemory(1 << 20);
  const rb = b.registerMemory(1 << 20);
  a.loadRemoteMetadata(b.exportMetadata());
  return { a, b, ra, rb };
}

// A full GC before each RSS reading, so JS garbage not yet collected does not count as growth.
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/**
 * Resident memory outside V8's heap (native records, malloc), after a full GC. V8's own pages
 * move by megabytes around a GC, which would drown what is measured here; the JS side is
 * checked through the facade's handle count instead.
 */
function settledRss(): number {
  collect();
  collect();
  return process.memoryUsage().rss - getHeapStatistics().total_physical_size;
}

const underAsan = /libasan/.test(process.env.LD_PRELOAD ?? '');

const TOTAL = 50_000;
const BATCH = 500;

async function churn(progress: ProgressMode): Promise<{ rssGrowthBytes: number; peakTransfers: number }> {
  const { a, b, ra, rb } = pair(progress);
  let peakTransfers = 0;
  let rssAfterWarmup = 0;
  for (let done = 0; done < TOTAL; done += BATCH) {
    if (done === TOTAL / 2) rssAfterWarmup = settledRss(); // JIT, arenas and the regions' pages settle in the first half
    if (process.env.RECORDS_TRACE && done % 5000 === 0) {
      collect();
      const m = process.memoryUsage();
      console.log(progress, done, (m.rss / 1048576).toFixed(1), (m.heapUsed / 1048576).toFixed(1), (m.external / 1048576).toFixed(1), JSON.stringify(a.stats()));
    }
    const handles = [];
    for (let i = 0; i < BATCH; i++) {
      const offset = (i % 256) * 4096;
      handles.push(
        a.createTransfer({
          op: 'WRITE',
          local: [{ region: ra, offset, length: 4096 }],
          remote: [{ regionId: rb.id, offset, length: 4096 }],
          remoteAgent: b.name,
          notification: new Uint8Array([i & 0xff]),
        }),
      );
    }
    // Every third is released without a post, every third while in flight, the rest after DONE.
    handles.forEach((h, i) => (i % 3 === 0 ? undefined : h.post()));
    peakTransfers = Math.max(peakTransfers, a.stats().transfers);
    handles.forEach((h, i) => (i % 3 === 1 ? h.release() : undefined));
    if (progress === 'manual') {
      for (let s = a.step(); s.kind !== 'idle'; s = a.step()) if (s.kind === 'notification-retry') b.pollNotifications();
    }
    for (const [i, h] of handles.entries()) {
      if (i % 3 === 2) {
        if (h.status() === 'IN_PROGRESS') b.pollNotifications(); // room for its notification
        await h.whenTerminal();
        h.release();
      } else if (i % 3 === 0) {
        h.release();
      } else {
        await h.whenQuiesced();
      }
    }
    b.pollNotifications();
  }
  const rssEnd = settledRss();
  if (process.env.RECORDS_TRACE) console.log(progress, "end", rssAfterWarmup, rssEnd);
  const rssGrowthBytes = rssEnd - rssAfterWarmup;
  return { rssGrowthBytes, peakTransfers };
}

/** The `code` of what a raw native call threw (the addon throws plain Errors with a code). */
function rawCodeOf(body: () => unknown): unknown {
  try {
    body();
  } catch (error) {
    return (error as { code?: unknown }).code;
  }
  return 'nothing thrown';
}

describe('transfer records are erased on release', () => {
  for (const progress of ['manual', 'thread'] as const) {
    it.skipIf(!chunked)(`${TOTAL} transfers (${progress}): counts return to 0, RSS growth stays small`, async () => {
      const { rssGrowthBytes, peakTransfers } = await churn(progress);
      if (process.env.RECORDS_TRACE) console.log(progress, 'rss growth over the second half', rssGrowthBytes);
      const a = open[0]!;
      expect(peakTransfers).toBeGreaterThanOrEqual(BATCH); // the count really counts
      expect(a.stats()).toEqual({ transfers: 0, regions: 1, remotes: 1, handles: 0 });
      // Over the second 25,000: before erasure each record kept ~600 B native (issue 10), ≈ 15 MB.
      // Measured, not timed: a leak of 250 B per transfer or more fails this bound.
      // Under ASan freed memory sits in its quarantine (up to 256 MiB), so RSS says nothing there.
      if (!underAsan) expect(rssGrowthBytes).toBeLessThan(6 * 1024 * 1024);
    }, 120_000);
  }

  it.skipIf(!chunked)('a released id still fails clearly: RELEASED, DOUBLE_RELEASE, never UB', () => {
    const { a, ra, rb } = pair('manual');
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: 8192 }],
      remote: [{ regionId: rb.id, offset: 0, length: 8192 }],
      remoteAgent: 'rec-b-manual',
    });
    h.post();
    h.step();
    expect(a.stats().transfers).toBe(1);
    expect(h.release()).toEqual({ accepted: true, quiesced: true });
    expect(a.stats()).toMatchObject({ transfers: 0, handles: 0 });
    expect(xferErrorOf(() => h.status()).code).toBe('RELEASED');
    expect(xferErrorOf(() => h.post()).code).toBe('RELEASED');
    expect(xferErrorOf(() => h.abort()).code).toBe('RELEASED');
    expect(xferErrorOf(() => h.step()).code).toBe('RELEASED');
    expect(xferErrorOf(() => h.injectError()).code).toBe('RELEASED');
    expect(xferErrorOf(() => h.release()).code).toBe('DOUBLE_RELEASE');
    expect(h.bytesDone).toBe(4096); // kept by the facade from the last run
    // The same through the raw native object, below the facade's own checks.
    const n = a.nativeAgent();
    expect(rawCodeOf(() => n.release(h.id))).toBe('DOUBLE_RELEASE');
    expect(rawCodeOf(() => n.info(h.id))).toBe('RELEASED');
    expect(rawCodeOf(() => n.status(h.id + 1000))).toBe('INVALID_ARGUMENT'); // never existed
  });

  it.skipIf(!chunked)('a transfer released in flight (thread mode) keeps its record until quiescent, then none', async () => {
    const { a, ra, rb } = pair('thread');
    const h = a.createTransfer({
      op: 'WRITE',
      local: [{ region: ra, offset: 0, length: ra.size }],
      remote: [{ regionId: rb.id, offset: 0, length: rb.size }],
      remoteAgent: 'rec-b-thread',
    });
    h.post();
    const r = h.release();
    expect(r.accepted).toBe(true);
    await h.whenQuiesced();
    expect(a.stats()).toMatchObject({ transfers: 0, handles: 0 });
    expect(xferErrorOf(() => h.status()).code).toBe('RELEASED');
  });
});

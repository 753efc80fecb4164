import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { RunOptions, RunResult } from '../../src/bench/burst.js';
import { allocation, callbacksRun, engineRun, pairRatios } from '../../src/bench/burst.js';
import { TransferHandle } from '../../src/native/index.js';

/**
 * The burst bench's two diagnostic figures: the JS thread's share of the CPU per request, and the heap
 * allocated per request. Each is checked against something known, so a figure that measured nothing
 * (a zero, a constant, the whole process's CPU) would fail here.
 */
describe('bench burst: what the figures measure', () => {
  it("each pair's own ratio, in run order, and their spread", () => {
    // Pairs kept in order (A[i] against B[i], not sorted apart): a ratio of sorted lists would pair runs
    // that did not run side by side.
    expect(pairRatios([3, 1, 2], [2, 2, 1])).toEqual({ ratios: [1.5, 0.5, 2], min: 0.5, max: 2 });
    expect(() => pairRatios([1, 2], [1])).toThrow(/2 against 1/);
    expect(() => pairRatios([], [])).toThrow();
  });

  it('the JS thread share is part of the CPU per request, and more than nothing (Linux)', async () => {
    const r = await engineRun({ requests: 300, concurrency: 16, blockBytes: 4096, blocksPerRequest: 1 });
    if (!existsSync('/proc/thread-self/schedstat')) {
      expect(r.jsThreadCpuPerRequestMs).toBeNull();
      return;
    }
    expect(r.jsThreadCpuPerRequestMs).toBeGreaterThan(0);
    expect(r.jsThreadCpuPerRequestMs!).toBeLessThanOrEqual(r.cpuPerRequestMs);
  }, 60_000);

  it("sleeps per request: how often the process's threads went to sleep, per request", async () => {
    // Each request's transfer completes on the native agents' threads, which wait on a futex or a
    // condition variable between posts, one request at a time here: a figure that read nothing (zero) or
    // a count not divided by the requests would fail.
    const o: RunOptions = { requests: 400, concurrency: 1, blockBytes: 4096, blocksPerRequest: 1 };
    const r = await engineRun(o);
    expect(r.sleepsPerRequest).toBeGreaterThan(0.5);
    expect(r.sleepsPerRequest).toBeLessThan(100);
  }, 60_000);

  it('heap allocated per request: a run that allocates a known amount reads about that amount', async () => {
    const o: RunOptions = { requests: 2000, concurrency: 1, blockBytes: 4096, blocksPerRequest: 1 };
    const keep: unknown[] = [];
    // 2000 "requests" of 16 arrays of 256 small integers each (2 KiB of elements on the V8 heap; a typed
    // array's elements would live outside it, and the profiler would rightly not count them): 32 KiB and a little.
    const run = async (x: RunOptions): Promise<RunResult> => {
      for (let i = 0; i < x.requests; i++) {
        for (let j = 0; j < 16; j++) keep[(i * 16 + j) % 64] = new Array<number>(256).fill(i);
        if (i % 100 === 0) await new Promise((r) => setImmediate(r));
      }
      return { cpuPerRequestMs: 0, jsThreadCpuPerRequestMs: null, sleepsPerRequest: 0, wallMs: 0, bytes: 0, requestsPerSecond: 0, bytesPerInFlightRequest: null, retainedBytesPerFinishedRequest: null };
    };
    const a = await allocation(run, o, 2);
    const expected = 16 * 256 * 8;
    expect(a.bytesPerRequest).toBeGreaterThan(expected * 0.8);
    expect(a.bytesPerRequest).toBeLessThan(expected * 1.6);
    expect(a.sites[0]!.site).toMatch(/burst\.test\.ts/);
    const shares = a.sites.map((s) => s.share);
    expect([...shares].sort((x, y) => y - x)).toEqual(shares);
  }, 60_000);

  it('settleMs: each executor opens its window no sooner than that long after its pools are made', async () => {
    // The throughput phase waits after making its 1 GiB pools (RunOptions.settleMs); a run that skipped
    // the wait would open its window at once.
    for (const run of [engineRun, callbacksRun]) {
      const t0 = performance.now();
      let opened = -1;
      const o: RunOptions = { requests: 20, concurrency: 4, blockBytes: 4096, blocksPerRequest: 1, settleMs: 400, window: { start: () => void (opened = performance.now() - t0), end: () => undefined } };
      await run(o);
      expect(opened).toBeGreaterThanOrEqual(400);
    }
  }, 60_000);

  it('the callbacks baseline ends its window where the executor does: every request released by the sender and verified by the receiver', async () => {
    // The executor's window ends when both servers reported every request, the context server after its
    // release. Counted at the receiver alone, the baseline's last releases fell outside its window.
    const release = TransferHandle.prototype.release;
    const whenTerminal = TransferHandle.prototype.whenTerminal;
    let released = 0;
    let atEnd = -1;
    TransferHandle.prototype.release = function (this: TransferHandle) {
      released++;
      return release.call(this);
    };
    // The sender learns of each terminal status late: its release then comes after the receiver's
    // notification, and a window that counted the receiver alone would close before the last releases.
    TransferHandle.prototype.whenTerminal = function (this: TransferHandle) {
      return whenTerminal.call(this).then((s) => new Promise<typeof s>((res) => setTimeout(() => res(s), 5)));
    };
    try {
      const o: RunOptions = { requests: 200, concurrency: 32, blockBytes: 4096, blocksPerRequest: 2, window: { start: () => undefined, end: () => void (atEnd = released) } };
      const r = await callbacksRun(o);
      expect(atEnd).toBe(o.requests);
      expect(r.bytes).toBe(o.requests * o.blocksPerRequest * o.blockBytes);
    } finally {
      TransferHandle.prototype.release = release;
      TransferHandle.prototype.whenTerminal = whenTerminal;
    }
  }, 60_000);
});

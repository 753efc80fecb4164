import { describe, expect, it } from 'vitest';
import { FAULTS } from '../../src/executor/config.js';
import type { BurstOptions } from '../../src/executor/harness.js';
import { runBurst } from '../../src/executor/harness.js';

/**
 * End-to-end bursts: a context and a generation server as real processes over the native shm backend,
 * at the sizes of the seed change's harness (16, 48, 128 with every fault) and 1024 without faults.
 * Whatever the faults do, nothing is corrupted, no block leaks and no request is left stuck.
 */
const base: Omit<BurstOptions, 'concurrency' | 'requests' | 'faults'> = {
  faultRate: 0.5,
  seed: 7,
  blockBytes: 16 * 1024,
  blocksPerRequest: 4,
  backend: process.env.XFERSTATE_BACKEND ?? 'shm',
  kvTransferTimeoutMs: 1500,
  recvSlots: 16,
};

describe('burst with every fault', () => {
  for (const [concurrency, requests] of [
    [16, 160],
    [48, 300],
    [128, 600],
  ] as const) {
    it(`concurrency ${concurrency}, ${requests} requests`, { timeout: 180_000 }, async () => {
      const r = await runBurst({ ...base, concurrency, requests, faults: [...FAULTS], recvSlots: concurrency });
      expect({ corrupted: r.corrupted, leakedBlocks: r.leakedBlocks, stuck: r.stuck }).toEqual({ corrupted: 0, leakedBlocks: 0, stuck: 0 });
      expect(r.completed + r.cancelled + r.failed).toBe(requests);
      // The faults really happened and really had effects.
      expect(Object.keys(r.faultsInjected).length).toBeGreaterThanOrEqual(FAULTS.length - 2);
      // ...and their points acted in the servers (a fault point that never answers yes would pass every
      // check above: the harness's own peer-kill and cancels make cancelled, failed and quarantined requests).
      const injected = Object.entries(r.faultsInjected).reduce((n, [f, k]) => n + (f === 'peer-kill' ? 0 : k), 0);
      const fired = Object.values(r.faultsFired).reduce((n, k) => n + k, 0);
      expect(Object.keys(r.faultsFired).length).toBeGreaterThanOrEqual(FAULTS.length - 3);
      expect(fired).toBeGreaterThanOrEqual(injected / 2);
      expect(r.cancelled).toBeGreaterThan(0);
      expect(r.failed).toBeGreaterThan(0);
      expect(r.completed).toBeGreaterThan(0);
      expect(r.quarantine.entered).toBeGreaterThan(0);
      expect(r.quarantine.releasedByProof + r.quarantine.releasedByFence).toBe(r.quarantine.entered);
      expect(r.peerRestarts).toBe(1);
      // The harness asks its servers for time in state (off by default in a server): the report has it.
      expect(Object.keys(r.timeInStateMs).length).toBeGreaterThan(0);
      // One log line per state transition at most: no "Cannot cancel request" loop.
      expect(r.logLinesPerRequest.max).toBeLessThanOrEqual(r.transitionsPerRequest.max);
    });
  }
});

describe('burst without faults', () => {
  it('concurrency 1024, 2048 requests: everything completes', { timeout: 180_000 }, async () => {
    // TensorRT-LLM's default kv_transfer_timeout_ms: a loaded CI machine must not turn queueing into timeouts.
    const r = await runBurst({ ...base, concurrency: 1024, requests: 2048, faults: [], kvTransferTimeoutMs: 60_000, recvSlots: 1024 });
    expect({ corrupted: r.corrupted, leakedBlocks: r.leakedBlocks, stuck: r.stuck, failed: r.failed, cancelled: r.cancelled }).toEqual({
      corrupted: 0,
      leakedBlocks: 0,
      stuck: 0,
      failed: 0,
      cancelled: 0,
    });
    expect(r.completed).toBe(2048);
    expect(r.quarantine.entered).toBe(0);
  });
});

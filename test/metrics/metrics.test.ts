import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { BurstOptions } from '../../src/executor/harness.js';
import { runBurst } from '../../src/executor/harness.js';
import { serveMetrics, XferMetrics } from '../../src/metrics/index.js';

const scrape = async (url: string) => {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
};

describe('XferMetrics', () => {
  it('counts outcomes, quarantine by proof and fence, time in state, and serves them on loopback /metrics', async () => {
    let now = 0;
    const m = new XferMetrics({ labels: { server: 'test' } }, () => now);
    let held = 3;
    m.track('generation', 'blocks_held', () => held);
    // One lease: free → allocated (10 ms) → exposed (20 ms) → quarantined (stays).
    m.transition({ actor: 'r1.lease', machine: 'blockLease', to: 'free', status: 'active' });
    now = 10;
    m.transition({ actor: 'r1.lease', machine: 'blockLease', to: 'allocated', status: 'active' });
    now = 30;
    m.transition({ actor: 'r1.lease', machine: 'blockLease', to: 'exposed', status: 'active' });
    now = 35;
    m.transition({ actor: 'r1.lease', machine: 'blockLease', to: 'quarantined', status: 'active' });
    expect(m.leaseAction('generation', { type: 'quarantineEntered', params: { leaseId: 'r1' } })).toBe(true);
    m.leaseAction('generation', { type: 'quarantineReleased', params: { leaseId: 'r1', by: 'fence' } });
    m.leaseAction('generation', { type: 'quarantineReleased', params: { leaseId: 'r2', by: 'proof' } });
    expect(m.leaseAction('generation', { type: 'fencePeer', params: {} })).toBe(false);
    m.requestFinished('generation', 'completed');
    m.requestFinished('generation', 'timedOut');
    m.requestFinished('generation', 'completed');
    held = 5;

    const ep = await serveMetrics(m.registry, { port: 0 });
    try {
      expect(ep.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const text = await scrape(ep.url);
      expect(sample(text, 'xferstate_requests_total', { role: 'generation', outcome: 'completed', server: 'test' })).toBe(2);
      expect(sample(text, 'xferstate_requests_total', { role: 'generation', outcome: 'timedOut' })).toBe(1);
      expect(sample(text, 'xferstate_quarantine_entered_total', { role: 'generation' })).toBe(1);
      expect(sample(text, 'xferstate_quarantine_left_total', { by: 'fence' })).toBe(1);
      expect(sample(text, 'xferstate_quarantine_left_total', { by: 'proof' })).toBe(1);
      // Left states only: free (10 ms), allocated (20 ms), exposed (5 ms); quarantined is still current.
      expect(sample(text, 'xferstate_time_in_state_seconds_count', { machine: 'blockLease', state: 'allocated' })).toBe(1);
      expect(sample(text, 'xferstate_time_in_state_seconds_sum', { machine: 'blockLease', state: 'allocated' })).toBeCloseTo(0.02, 9);
      expect(sample(text, 'xferstate_time_in_state_seconds_bucket', { le: '0.005', state: 'exposed' })).toBe(1);
      expect(sample(text, 'xferstate_time_in_state_seconds_bucket', { le: '0.01', state: 'free' })).toBe(1);
      expect(sample(text, 'xferstate_time_in_state_seconds_bucket', { le: '0.005', state: 'free' })).toBe(0);
      expect(text).not.toContain('state="quarantined"');
      expect(sample(text, 'xferstate_in_flight', { role: 'generation', what: 'blocks_held', server: 'test' })).toBe(5);
      expect((await fetch(ep.url.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await ep.close();
    }
  });
});

/** The value of the sample `name` whose labels include all of `labels` (label order is prom-client's business), or undefined. */
function sample(text: string, name: string, labels: Record<string, string | RegExp>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => (typeof v === 'string' ? have[k] === v : v.test(have[k] ?? '')))) return Number(m[3]);
  }
  return undefined;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

describe('burst --metrics-port', () => {
  it('both servers serve their metrics on loopback while the burst runs', { timeout: 120_000 }, async () => {
    const port = await freePort();
    const scrapes: Array<Promise<string>> = [];
    const o: BurstOptions = {
      concurrency: 4,
      requests: 60,
      faults: ['cancel-mid-transfer', 'notif-drop'],
      faultRate: 0.5,
      seed: 3,
      blockBytes: 16 * 1024,
      blocksPerRequest: 2,
      backend: 'shm',
      kvTransferTimeoutMs: 400,
      recvSlots: 4,
      metricsPort: port,
      // Scrape both servers once, half way through (they serve until the burst finishes).
      onProgress: (done, total) => {
        if (done === total / 2) for (const p of [port, port + 1]) scrapes.push(scrape(`http://127.0.0.1:${p}/metrics`));
      },
    };
    const r = await runBurst(o);
    expect(r.completed + r.cancelled + r.failed).toBe(60);
    const [ctx, gen] = await Promise.all(scrapes);
    expect(sample(ctx!, 'xferstate_requests_total', { role: 'context', outcome: 'completed', server: /^ctx-/ })).toBeGreaterThan(0);
    expect(sample(gen!, 'xferstate_requests_total', { role: 'generation', outcome: 'completed', server: /^gen-/ })).toBeGreaterThan(0);
    expect(sample(gen!, 'xferstate_time_in_state_seconds_count', { machine: 'generationReceive', state: 'worker.receiving' })).toBeGreaterThan(0);
    expect(sample(ctx!, 'xferstate_in_flight', { role: 'context', what: 'requests' })).toBeGreaterThanOrEqual(0);
  });
});

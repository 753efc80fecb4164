// Mounting xferstate's Prometheus metrics in an engine: one XferMetrics per process, fed by the host's
// transition records and the blockLease's metric actions, served on loopback (or registered on the
// engine's own prom-client registry). Run:  node docs/examples/metrics.mjs
import { blockLeaseMachine, EngineHost, XferMetrics, serveMetrics } from 'xferstate';

const metrics = new XferMetrics({ labels: { server: 'decode-0' } });
const host = new EngineHost({
  machines: { lease: blockLeaseMachine },
  delays: { lease: { quarantineMaxAge: 20 } },
  onTransition: (record) => metrics.transition(record),
  actions: {
    lease: {
      quarantineEntered: (p) => metrics.leaseAction('generation', { type: 'quarantineEntered', params: p }),
      quarantineReleased: (p) => metrics.leaseAction('generation', { type: 'quarantineReleased', params: p }),
      fencePeer: (_p, { host, actor }) => setImmediate(() => host.send(actor, { type: 'FENCE_CONFIRMED' })),
      retireBlocks: (p) => metrics.leaseAction('generation', { type: 'retireBlocks', params: p }),
      returnBlocks() {}, // the blocks are back in the pool: give them to your allocator
      withdrawFence() {}, // fencePeer is answered at once here: nothing to forget
    },
  },
});
metrics.track('generation', 'leases', () => host.names().length);

// One lease released without proof: quarantined, then freed by a confirmed fence.
host.spawn('r1.lease', { leaseId: 'r1' });
host.send('r1.lease', { type: 'ALLOCATE' });
host.send('r1.lease', { type: 'EXPOSE' });
host.send('r1.lease', { type: 'RELEASE', proof: null });
while (!host.in('r1.lease', 'free')) await new Promise((r) => setTimeout(r, 5));
metrics.requestFinished('generation', 'cancelled');

const endpoint = await serveMetrics(metrics.registry, { port: 0 }); // 127.0.0.1 unless you say otherwise
const text = await (await fetch(endpoint.url)).text();
console.log(text.split('\n').filter((l) => /^xferstate_(requests_total|quarantine_\w+_total|in_flight)\{/.test(l)).join('\n'));
await endpoint.close();
host.stopAll();
console.log(JSON.stringify({ scraped: text.length > 0 }));

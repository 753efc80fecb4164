import { expect, it } from 'vitest';
import { runBurst } from '../../src/executor/harness.js';
import { startInspector } from '../../src/inspect/index.js';

it('burst --inspect: both server processes stream their actors to the inspector over WebSocket', { timeout: 120_000 }, async () => {
  const inspector = await startInspector({ port: 0 });
  try {
    const r = await runBurst({ concurrency: 8, requests: 24, faults: ['cancel-owned', 'notif-drop'], faultRate: 0.5, seed: 5, blockBytes: 4096, blocksPerRequest: 2, backend: 'shm', kvTransferTimeoutMs: 500, recvSlots: 8, inspectUrl: inspector.wsUrl });
    expect({ corrupted: r.corrupted, leakedBlocks: r.leakedBlocks, stuck: r.stuck }).toEqual({ corrupted: 0, leakedBlocks: 0, stuck: 0 });
    inspector.flush();
    const res = await fetch(new URL('/api/actors', inspector.url));
    const body = (await res.json()) as { actors: Array<{ id?: string; name?: string; machine?: string }> };
    const text = JSON.stringify(body.actors);
    // Actors of both servers, every machine kind, arrived.
    for (const m of ['requestLifecycle', 'contextSend', 'generationReceive', 'transferHandle', 'blockLease']) expect(text, m).toContain(m);
    expect(inspector.stats().received).toBeGreaterThan(100);
  } finally {
    await inspector.close();
  }
});

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
    const body = (await res.json()) as { actors: Array<{ id: string; name: string; machineId: string }> };
    const byMachine: Record<string, number> = {};
    for (const a of body.actors) byMachine[a.machineId] = (byMachine[a.machineId] ?? 0) + 1;
    // Every actor of both servers arrived, none merged with another process's actor of the same name.
    // A generation request that timed out waiting for blocks (quarantined by notif-drop) never got a
    // lease or a receiver: count those from what arrived, per server.
    const recv = byMachine.generationReceive ?? 0;
    expect(recv).toBeGreaterThanOrEqual(20);
    expect(byMachine).toMatchObject({ requestLifecycle: 48, contextSend: 24, blockLease: 24 + recv, peerSession: 1, fenceClient: 1, admission: 3 });
    expect(new Set(body.actors.map((a) => a.name)).size).toBe(body.actors.length);
    // Per request a lifecycle (and, once admitted, a lease and a receiver), plus admission, slots and fences.
    expect(body.actors.filter((a) => a.name.startsWith('gen/')).length).toBe(24 + 2 * recv + 3);
    expect(inspector.dropped()).toBe(0);
  } finally {
    await inspector.close();
  }
});

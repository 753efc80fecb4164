import { createActor } from 'xstate';
import { describe, expect, it } from 'vitest';
import { blockLeaseMachine } from '../../machines/index.js';
import { BoundedQueue, RingBuffer } from '../../src/inspect/buffer.js';
import { startInspector } from '../../src/inspect/server.js';

describe('RingBuffer', () => {
  it('keeps the last N and counts what it overwrote', () => {
    const r = new RingBuffer<number>(3);
    for (let i = 1; i <= 5; i++) r.push(i);
    expect(r.toArray()).toEqual([3, 4, 5]);
    expect(r.total).toBe(5);
    expect(r.overwritten).toBe(2);
  });

  it('rejects a non-positive capacity', () => {
    expect(() => new RingBuffer(0)).toThrow(/positive/);
  });
});

describe('BoundedQueue', () => {
  it('drops the newest when full and counts every drop', () => {
    const q = new BoundedQueue<number>(2);
    expect([q.offer(1), q.offer(2), q.offer(3), q.offer(4)]).toEqual([true, true, false, false]);
    expect(q.dropped).toBe(2);
    expect(q.drain()).toEqual([1, 2]);
    expect(q.offer(5)).toBe(true);
    expect(q.take(5)).toEqual([5]);
    expect(q.length).toBe(0);
  });
});

describe('inspector drop accounting', () => {
  it('drops (and counts) events beyond maxBufferedEvents without blocking the producer', async () => {
    const inspector = await startInspector({ maxBufferedEvents: 5, flushIntervalMs: 60_000 });
    try {
      const a = createActor(blockLeaseMachine, { input: { leaseId: 'l' }, inspect: inspector.inspect, systemId: 'l.blocks' }).start();
      // Each send produces an @xstate.event and an @xstate.snapshot; nothing is processed until flush().
      for (let i = 0; i < 10; i++) a.send({ type: i % 2 === 0 ? 'ALLOCATE' : 'RELEASE', proof: null } as never);
      expect(a.getSnapshot().value).toBe('free');
      const dropped = inspector.dropped();
      expect(dropped).toBeGreaterThan(0);
      inspector.flush();
      const s = inspector.stats();
      expect(s.received).toBe(5);
      expect(s.droppedIngest).toBe(dropped);
      a.stop();
    } finally {
      await inspector.close();
    }
  });

  it('counts timeline entries a page could not take (per-page queue bound)', async () => {
    const { WebSocket } = await import('ws');
    const inspector = await startInspector({ maxQueuedPerClient: 2, flushIntervalMs: 60_000 });
    try {
      const a = createActor(blockLeaseMachine, { input: { leaseId: 'l' }, inspect: inspector.inspect, systemId: 'l.blocks' }).start();
      inspector.flush();
      const id = a.sessionId;
      const page = new WebSocket(`${inspector.wsUrl}/viewer`);
      const messages: Array<{ type: string; stats?: { pageDropped: number } }> = [];
      const got = (type: string) => new Promise<void>((resolve) => {
        const check = () => (messages.some((m) => m.type === type) ? resolve() : setTimeout(check, 5));
        check();
      });
      page.on('message', (d) => messages.push(JSON.parse(String(d))));
      await got('hello');
      page.send(JSON.stringify({ type: 'select', id }));
      await got('timeline');
      for (let i = 0; i < 6; i++) a.send({ type: i % 2 === 0 ? 'ALLOCATE' : 'RELEASE', proof: null } as never);
      inspector.flush();
      await got('update');
      const update = messages.find((m) => m.type === 'update')!;
      // 12 entries (6 events + 6 state changes) for the selected actor, 2 fit the page's queue.
      expect(update.stats!.pageDropped).toBe(10);
      expect(inspector.dropped()).toBe(10);
      page.close();
      a.stop();
    } finally {
      await inspector.close();
    }
  });
});

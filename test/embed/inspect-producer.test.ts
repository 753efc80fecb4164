import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { createActor } from 'xstate';
import { expect, it } from 'vitest';
import { blockLeaseMachine } from '../../machines/index.js';
import { connectInspector, startInspector } from '../../src/inspect/index.js';

interface Actor {
  id: string;
  name: string;
}
const example = fileURLToPath(new URL('../../docs/examples/inspector-producer.mjs', import.meta.url));

it('producers: actors named as created, session ids unique per producer, the timeline starts at the real initial state', { timeout: 60_000 }, async () => {
  const inspector = await startInspector({ port: 0 });
  try {
    // Two producer processes with the same actor name and the same xstate session ids (x:N); run
    // asynchronously, since the inspector they connect to lives in this process.
    for (let i = 0; i < 2; i++) await promisify(execFile)(process.execPath, [example, inspector.wsUrl], { encoding: 'utf8', timeout: 30_000 });
    // And one in this process, created with only a systemId (as xstate's docs do).
    const producer = await connectInspector(inspector.wsUrl);
    const a = createActor(blockLeaseMachine, { input: { leaseId: 'q' }, systemId: 'r2.lease', inspect: producer.inspect }).start();
    a.send({ type: 'ALLOCATE' });
    a.stop();
    await producer.flush();

    const get = async <T>(path: string): Promise<T> => (await fetch(new URL(path, inspector.url))).json() as Promise<T>;
    let actors: Actor[] = [];
    for (let i = 0; i < 300 && actors.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 10));
      inspector.flush();
      ({ actors } = await get<{ actors: Actor[] }>('/api/actors'));
    }
    expect(actors.map((x) => x.name).sort()).toEqual(['r1.lease', 'r1.lease', 'r2.lease']);
    const producers = new Set(actors.map((x) => x.id.split('/')[0]));
    expect(producers.size).toBe(3);
    expect(producers.has(producer.producerId)).toBe(true);
    for (const x of actors.filter((y) => y.name === 'r1.lease')) {
      const { entries } = await get<{ entries: Array<{ kind: string; state?: string; event: string }> }>(`/api/actors/${encodeURIComponent(x.id)}/timeline`);
      // No "→ quarantined (xstate.init)": the first state is the initial one, caused by xstate.init.
      expect(entries.filter((e) => e.kind === 'state').map((e) => `${e.state} (${e.event})`)).toEqual(['free (xstate.init)', 'allocated (ALLOCATE)', 'exposed (EXPOSE)', 'quarantined (RELEASE)']);
    }
    expect(inspector.dropped()).toBe(0);
  } finally {
    await inspector.close();
  }
});

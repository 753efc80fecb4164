import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createActor } from 'xstate';
import { WebSocket } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createWebSocketInspector } from '@statelyai/inspect';
import { contextSendMachine, transferHandleMachine } from '../../machines/index.js';
import type { ActorSummary } from '../../src/inspect/model.js';
import type { Inspector } from '../../src/inspect/server.js';
import { startInspector } from '../../src/inspect/server.js';
import type { CounterexampleResult } from '../../src/inspect/counterexamples.js';

let inspector: Inspector | null = null;
afterEach(async () => {
  await inspector?.close();
  inspector = null;
});

async function actors(i: Inspector): Promise<ActorSummary[]> {
  return ((await (await fetch(`${i.url}api/actors`)).json()) as { actors: ActorSummary[] }).actors;
}

/** Poll (no wall-clock assertion: the test's own timeout bounds it). */
async function until<T>(f: () => Promise<T | undefined | null | false>): Promise<T> {
  for (;;) {
    const v = await f();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('inspector server', () => {
  it('binds to 127.0.0.1 by default and serves the page, the assets and the diagrams', async () => {
    inspector = await startInspector();
    expect(inspector.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const html = await (await fetch(inspector.url)).text();
    expect(html).toContain('<script type="module" src="/app.js">');
    expect(html).not.toMatch(/https?:\/\//); // nothing from a CDN
    expect((await fetch(`${inspector.url}app.js`)).status).toBe(200);
    const machines = (await (await fetch(`${inspector.url}api/machines`)).json()) as Array<{ key: string; svg: string }>;
    expect(machines.map((m) => m.key)).toEqual(expect.arrayContaining(['transferHandle', 'contextSend', 'generationReceive', 'requestLifecycle', 'blockLease', 'variant.v2']));
    const svg = await (await fetch(`${inspector.url}diagrams/transferHandle.svg`)).text();
    expect(svg).toContain('id="transferHandle.inProgress"');
    expect((await fetch(`${inspector.url}diagrams/nope.svg`)).status).toBe(404);
  });

  it('takes xstate inspection events in process (createActor(..., { inspect }))', async () => {
    inspector = await startInspector();
    const a = createActor(transferHandleMachine, { input: { handleId: 'h1', semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } }, inspect: inspector.inspect, systemId: 'r9.handle' }).start();
    a.send({ type: 'POST' });
    const row = await until(async () => (await actors(inspector!)).find((x) => x.name === 'r9.handle' && x.state === 'inProgress'));
    expect(row).toMatchObject({ request: 'r9', machineId: 'transferHandle', diagram: 'transferHandle', activeIds: ['transferHandle.inProgress'], status: 'active' });
    const tl = (await (await fetch(`${inspector.url}api/actors/${encodeURIComponent(row.id)}/timeline`)).json()) as { entries: Array<{ kind: string; event: string }> };
    expect(tl.entries.map((e) => `${e.kind}:${e.event}`)).toEqual(['event:xstate.init', 'state:xstate.init', 'event:POST', 'state:POST']);
    a.stop();
  });

  it('takes @statelyai/inspect messages from createWebSocketInspector over WebSocket', async () => {
    inspector = await startInspector();
    const remote = createWebSocketInspector({ url: inspector.wsUrl });
    try {
      const a = createActor(contextSendMachine, { input: { requestId: 'rw' }, inspect: remote.inspect }).start();
      a.send({ type: 'REQUEST_INFO' });
      const row = await until(async () => (await actors(inspector!)).find((x) => x.machineId === 'contextSend' && x.activeIds.includes('contextSend.sender.sending')));
      expect(row.diagram).toBe('contextSend');
      expect(row.activeIds).toEqual(['contextSend.sender', 'contextSend.sender.sending', 'contextSend.future', 'contextSend.future.pending']);
      expect(inspector.stats().producers).toBe(1);
      a.stop();
    } finally {
      remote.stop();
    }
  });

  it('computes a counterexample in a worker and replays it step by step', async () => {
    inspector = await startInspector();
    const catalog = (await (await fetch(`${inspector.url}api/counterexamples`)).json()) as Array<{ scenario: string; variant: string }>;
    expect(catalog).toContainEqual(expect.objectContaining({ scenario: 'handleRelease/ucx', variant: 'releaseIsQuiescence' }));
    const r = (await (await fetch(`${inspector.url}api/counterexample?scenario=handleRelease%2Fucx&variant=releaseIsQuiescence`)).json()) as CounterexampleResult;
    const s6 = r.violations.find((v) => v.invariant === 'S6')!;
    expect(s6.frames.length).toBe(s6.path.length + 1);
    expect(s6.frames[0]!.label).toBeNull();
    expect(s6.frames.at(-1)!.label).toBe(s6.path.at(-1));
    const handle = s6.frames.at(-1)!.actors['h.handle']!;
    expect(handle.diagram).toBe('variant.releaseIsQuiescence');
    expect(handle.activeIds.length).toBeGreaterThan(0);
    expect((await fetch(`${inspector.url}api/counterexample?scenario=x&variant=y`)).status).toBe(404);
  });

  it('close() ends page sockets, producers and the server', async () => {
    inspector = await startInspector();
    const page = new WebSocket(`${inspector.wsUrl}/viewer`);
    await new Promise((r) => page.once('message', r));
    const closed = new Promise((r) => page.once('close', r));
    await inspector.close();
    await closed;
    await expect(fetch(inspector.url)).rejects.toThrow();
  });

  it('only binds another host when asked', async () => {
    inspector = await startInspector({ host: '::1' });
    expect(inspector.url).toMatch(/^http:\/\/\[::1\]:\d+\/$/);
  });
});

describe('xferstate inspect (CLI)', () => {
  it('prints the URL, runs the demo, and exits by itself once the page closes', async () => {
    const child = spawn(process.execPath, ['bin/xferstate.js', 'inspect', '--port', '0', '--demo', '--tick', '20', '--exit-on-close'], { cwd: new URL('../..', import.meta.url), stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const lines = createInterface({ input: child.stdout! });
    const out: string[] = [];
    const url = await new Promise<string>((resolve) => lines.on('line', (l) => (out.push(l), l.startsWith('inspector: ') && resolve(l.slice('inspector: '.length)))));
    const page = new WebSocket(`${url.replace('http', 'ws')}viewer`);
    // Wait until the demo's actors show up on the page, then close it.
    await new Promise<void>((resolve) => page.on('message', (d) => (JSON.parse(String(d)) as { actors: unknown[] }).actors.length > 0 && resolve()));
    page.close();
    // The process ends on its own: no dangling sockets, timers or workers.
    expect(await exited).toBe(0);
    expect(out.join('\n')).toMatch(/inspector closed \(page closed\); \d+ events, 0 dropped/);
  }, 30_000);
});

import { describe, expect, it } from 'vitest';
import type { EventObject } from 'xstate';
import { ActorHost } from '../../src/engine/host.js';
import { scenarioFor } from '../../src/explore/catalog.js';
import { buildGraph, pathTo } from '../../src/explore/explorer.js';
import { enabledChoices, initialWorld, step } from '../../src/explore/world.js';
import type { WorldState } from '../../src/explore/world.js';
import { routeNativeHandle } from '../../src/executor/nativeHandle.js';
import type { NativeHandleBinding } from '../../src/executor/nativeHandle.js';
import { Agent } from '../../src/native/index.js';

/**
 * Explored paths of the handle-release scenario (shm semantics) replayed against the executor's real
 * handle routing over the real native layer in manual-progress mode: the backend's "choices" become
 * native steps (chunks, an invalidated peer, a confirmed abort), completions are delivered when the path
 * says so, and after every step the live actors must be in the explored states with the explored contexts.
 */
const sc = scenarioFor({ scenario: 'handleRelease/shm', variant: 'shipped' });
const g = buildGraph(sc);
const paths: string[][] = [];
g.out.forEach((edges, from) => edges.forEach((e) => paths.push([...pathTo(g, from), e.label])));
// In manual mode an abort is quiescent at once: a transfer cannot complete, fail, or outlive its drain
// deadline after it was cancelled, so paths that need that are not realizable natively.
const realizable = (p: string[]) =>
  !p.some((l, i) => (/status (DONE|ERROR)/.test(l) || l.includes('drainTimeout')) && p.slice(0, i).some((x) => x === 'owner: cancel' || x.includes('kvTransferTimeout')));
const sample = paths.filter(realizable);

const NEVER = 1e9; // deadlines fire only when the path fires them

async function replay(labels: string[]): Promise<void> {
  const src = new Agent(`replay-src-${process.pid}`, { progress: 'manual', chunkBytes: 4096 });
  const dst = new Agent(`replay-dst-${process.pid}`, { progress: 'manual' });
  try {
    const local = src.registerMemory(64 * 1024);
    const remote = dst.registerMemory(64 * 1024);
    const remoteName = src.loadRemoteMetadata(dst.exportMetadata());
    const handle = src.createTransfer({ op: 'WRITE', local: [{ region: local, offset: 0, length: 64 * 1024 }], remote: [{ regionId: remote.id, offset: 0, length: 64 * 1024 }], remoteAgent: remoteName });
    const held: Array<{ actor: string; event: EventObject }> = [];
    const binding: NativeHandleBinding = { agent: src, handle, posted: false, deliver: (actor, event) => held.push({ actor, event }) };
    const host = new ActorHost({
      machines: sc.machines,
      delays: Object.fromEntries(['kvTransferTimeout', 'drainTimeout', 'quarantineMaxAge', 'fenceTimeout'].map((d) => [d, NEVER])),
      route: (h, actor, a) => {
        if (actor !== 'h.handle') return sc.route(h, actor, a);
        // The owner exposes its blocks when it posts (as the context server does), then the native call.
        if (a.type === 'postTransfer') h.send('h.lease', { type: 'EXPOSE' });
        routeNativeHandle(h, actor, a, binding);
      },
      onDone: (h, actor, output) => sc.onDone!(h, actor, output),
      initialEnv: sc.initialEnv,
    });
    sc.start(host);
    const tick = () => new Promise((r) => setImmediate(r));
    // Deliver the held native completions this step stands for (the others stay held).
    const flush = async (label: string) => {
      await tick();
      const wanted = (e: EventObject) =>
        label === 'backend: abort confirmed' ? true : label.startsWith('backend: transfer') ? e.type === 'STATUS' : false;
      for (const h of held.filter((x) => wanted(x.event))) (held.splice(held.indexOf(h), 1), host.send(h.actor, h.event));
    };
    const stepUntil = async (done: () => boolean) => {
      for (let i = 0; i < 1000 && !done(); i++) (src.step(), dst.step());
      expect(done(), 'the native layer reached the state the path needs').toBe(true);
    };

    let pure: WorldState = initialWorld(sc);
    for (const [i, label] of labels.entries()) {
      if (label === 'owner: post') host.send('h.handle', { type: 'POST' });
      else if (label === 'owner: cancel') host.send('h.handle', { type: 'CANCEL' });
      else if (label === 'backend: transfer completes (status DONE)') await stepUntil(() => handle.status() === 'DONE');
      else if (label === 'backend: transfer fails (status ERROR)') (src.invalidateRemote(remoteName), await stepUntil(() => handle.status() === 'ERROR'));
      else if (label === 'backend: abort confirmed') await tick();
      else if (label === 'backend: released transfer stops writing') {
        await handle.whenQuiesced();
        if (host.in('h.lease', 'quarantined') || host.in('h.lease', 'fencing')) host.send('h.lease', { type: 'QUIESCENCE_PROOF', proof: 'abortConfirmed' });
      } else if (label === 'peer: confirms fence') host.send('h.lease', { type: 'FENCE_CONFIRMED' });
      else if (label.startsWith('deadline ')) enabledChoices(sc, pure).find((c) => c.label === label)!.apply(host);
      else throw new Error(`no native mapping for step '${label}'`);
      await flush(label);
      pure = step(sc, pure, label);
      for (const name of Object.keys(pure.actors)) {
        const where = `after step ${i + 1} "${label}": ${name}`;
        expect(host.actor(name)?.value, where).toEqual(pure.actors[name]!.value);
        expect(host.actor(name)?.context, where).toEqual(pure.actors[name]!.context);
      }
    }
    host.stopAll();
  } finally {
    src.close();
    dst.close();
  }
}

describe(`handleRelease/shm explored paths on the native layer in manual mode (${sample.length} of ${paths.length} edge paths realizable)`, () => {
  it('the sample is not empty and covers post, completion, failure, cancel and release', () => {
    expect(sample.length).toBeGreaterThanOrEqual(8);
    for (const l of ['owner: post', 'owner: cancel', 'backend: transfer completes (status DONE)', 'backend: transfer fails (status ERROR)', 'backend: abort confirmed']) {
      expect(sample.some((p) => p.includes(l)), l).toBe(true);
    }
  });
  it.each(sample.map((p) => [p.join(' > '), p] as const))('%s', async (_n, p) => replay([...p]));
});

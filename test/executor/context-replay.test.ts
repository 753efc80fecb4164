import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EventObject } from 'xstate';
import { scenarioFor } from '../../src/explore/catalog.js';
import { buildGraph, pathTo } from '../../src/explore/explorer.js';
import { enabledChoices, initialWorld, isFinished, step } from '../../src/explore/world.js';
import type { WorldState } from '../../src/explore/world.js';
import { ContextServer } from '../../src/executor/contextServer.js';
import { ControlChannel, connectControl } from '../../src/executor/control.js';
import type { ServerConfig } from '../../src/executor/config.js';
import { rng } from '../../src/executor/harness.js';
import { Agent } from '../../src/native/index.js';

/**
 * A sample of explored context-cancellation orderings replayed against the real context server: its
 * loop stepped by hand (worker steps and status polls exactly where the path has them), the native layer
 * in manual progress (chunks move only when the path says the backend completes), the generation peer
 * a real agent on the other end of the real control socket. After every step, every actor the explorer
 * has is in the explored state on the server (or the server has already dropped it as finished).
 */
const sc = scenarioFor({ scenario: 'contextCancel/shm', variant: 'shipped' });
const g = buildGraph(sc);

/** In manual mode an abort is quiescent at once and a fence confirms itself, so some orderings cannot happen natively. */
function realizable(labels: string[]): boolean {
  let w: WorldState = initialWorld(sc);
  for (const l of labels) {
    const draining = w.actors['r.handle']?.matches('draining' as never) ?? false;
    if (draining && (/status (DONE|ERROR)/.test(l) || l.includes('drainTimeout'))) return false;
    if (l === 'user: cancel request' && w.actors['r.lifecycle']!.matches('CONTEXT_INIT' as never)) return false;
    if (l.includes('quarantineMaxAge') || l.includes('fence') || l.includes('stops writing')) return false;
    w = step(sc, w, l);
  }
  return true;
}

const all: string[][] = [];
g.out.forEach((edges, from) => edges.forEach((e) => all.push([...pathTo(g, from), e.label])));
const candidates = all.filter(realizable);
const random = rng(42);
const sample = candidates.filter(() => random() < 120 / candidates.length);
const NEVER = 1e9;
const delays = { kvTransferTimeout: NEVER, senderFutureTimeout: NEVER, cancelResolveTimeout: NEVER, drainTimeout: NEVER, quiescenceTimeout: NEVER, quarantineMaxAge: NEVER, fenceTimeout: NEVER };
let n = 0;

async function replay(labels: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-replay-'));
  const socketPath = join(dir, 'ctx.sock');
  const name = `cr-${process.pid}-${n++}`;
  const config: ServerConfig = { role: 'context', name: `${name}-ctx`, socketPath, blockBytes: 16 * 1024, poolBlocks: 4, backend: 'shm', progress: 'manual', recvSlots: 1, delays, loop: 'manual', copyThreads: 1 };
  const ctx = new ContextServer(config, () => {});
  const held: Array<{ actor: string; event: EventObject }> = [];
  ctx.nativeDelivery = (actor, event) => held.push({ actor, event });
  const peer = new Agent(`${name}-gen`, { progress: 'manual' });
  const tick = () => new Promise((r) => setImmediate(r));
  try {
    await ctx.listen();
    const region = peer.registerMemory(2 * 16 * 1024);
    ctx.loadPeer(peer.exportMetadata());
    const channel = new ControlChannel(await connectControl(socketPath), () => {}, () => {});
    await tick();
    let pure: WorldState = initialWorld(sc);
    for (const [i, label] of labels.entries()) {
      const w = pure;
      if (label === 'executor: prefill done (CONTEXT_DONE)') ctx.submit({ id: 'r', number: 1, blocks: 2, faults: [] });
      else if (label === 'user: cancel request') ctx.cancel('r');
      else if (label === 'peer: asks for KV (REQUEST_INFO)') {
        channel.send({ t: 'info', id: 'r', remote: [0, 1].map((b) => ({ regionId: region.id, offset: b * 16 * 1024, length: 16 * 1024 })), epoch: 1 });
        const before = JSON.stringify(ctx.host.actor('r.send')?.value);
        for (let k = 0; k < 5000 && JSON.stringify(ctx.host.actor('r.send')?.value) === before; k++) await tick();
      } else if (label === 'checker: poll sender future (STATUS_POLL)') ctx.stepLoop('poll');
      else if (label === 'sender worker: next step') ctx.stepLoop('worker');
      else if (label.startsWith('backend: transfer')) {
        if (label.includes('ERROR')) ctx.agent.invalidateRemote(peer.name);
        for (let k = 0; k < 1000 && !held.some((h) => h.event.type === 'STATUS'); k++) (ctx.agent.step(), peer.step(), await tick());
        const status = held.find((h) => h.event.type === 'STATUS');
        expect(status, `the native transfer reached a terminal status for "${label}"`).toBeDefined();
        held.splice(held.indexOf(status!), 1);
        ctx.host.send(status!.actor, status!.event);
      } else if (label === 'backend: abort confirmed') {
        await tick();
        for (const h of held.splice(0)) ctx.host.send(h.actor, h.event);
      } else if (label.startsWith('deadline ')) enabledChoices(sc, w).find((c) => c.label === label)!.apply(ctx.host);
      else throw new Error(`no mapping for step '${label}'`);
      await tick();
      pure = step(sc, pure, label);
      if (i === 0 && label !== 'executor: prefill done (CONTEXT_DONE)') continue;
      for (const [actor, model] of Object.entries(pure.actors)) {
        const real = ctx.host.actor(actor);
        const where = `after step ${i + 1} "${label}": ${actor}`;
        if (!real) {
          // The server drops a finished request's actors; before the request exists it has none.
          expect(isFinished(model) || !ctx.host.has('r.lifecycle'), `${where} is missing on the server while the model has it in ${JSON.stringify(model.value)}`).toBe(true);
          continue;
        }
        expect(real.value, where).toEqual(model.value);
        for (const k of ['promise', 'outcome', 'inReadyMap', 'isCurrent', 'cancelMarked', 'quiesced', 'errorReason'] as const) {
          if (k in model.context) expect(real.context[k], `${where} context.${k}`).toEqual(model.context[k]);
        }
      }
    }
    channel.close();
  } finally {
    ctx.close();
    peer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe(`contextCancel explored orderings on the real context server (manual loop, manual native progress): ${sample.length} sampled of ${candidates.length} realizable of ${all.length}`, () => {
  it('the sample exercises every kind of step', () => {
    for (const l of ['executor: prefill done (CONTEXT_DONE)', 'user: cancel request', 'peer: asks for KV (REQUEST_INFO)', 'checker: poll sender future (STATUS_POLL)', 'sender worker: next step', 'backend: transfer completes (status DONE)', 'backend: transfer fails (status ERROR)', 'backend: abort confirmed']) {
      expect(sample.some((p) => p.includes(l)), l).toBe(true);
    }
    expect(sample.some((p) => p.some((l) => l.startsWith('deadline ')))).toBe(true);
  });
  it.each(sample.map((p) => [p.join(' > '), p] as const))('%s', async (_n, p) => replay([...p]), 30_000);
});

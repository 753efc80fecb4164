import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scenarioFor } from '../../src/explore/catalog.js';
import { buildGraph, pathTo } from '../../src/explore/explorer.js';
import { enabledChoices, initialWorld, isFinished, step } from '../../src/explore/world.js';
import type { WorldState } from '../../src/explore/world.js';
import type { ServerConfig } from '../../src/executor/config.js';
import { ControlChannel, listenControl } from '../../src/executor/control.js';
import { GenerationServer } from '../../src/executor/generationServer.js';
import { rng } from '../../src/executor/harness.js';
import { fillBlock } from '../../src/executor/pattern.js';
import { Agent } from '../../src/native/index.js';

/**
 * A sample of explored generation-timeout orderings — the ready signal and the sync notification on
 * different channels, either first — replayed against the real generation server: its loop stepped by
 * hand, the native layer in manual progress, and this test as the context peer on the real control
 * socket writing real blocks. After every step the request's lifecycle and receiver are in the explored
 * states. (The explored slot and blocks leases are modelled as two leases; the server keeps one lease
 * and a slot counter, so leases are compared by the burst tests, not here.)
 */
const sc = scenarioFor({ scenario: 'generationTimeout', variant: 'shipped' });
const g = buildGraph(sc);

/** Steps with no native trigger (a terminated wait, a peer's death) and the lease model's own steps are not replayed. */
function realizable(labels: string[]): boolean {
  return !labels.some((l) => /wait ends, nothing arrived|process dies|confirms fence|deadline r\.(slot|blocks)/.test(l));
}

const all: string[][] = [];
g.out.forEach((edges, from) => edges.forEach((e) => all.push([...pathTo(g, from), e.label])));
const candidates = all.filter(realizable);
const random = rng(7);
const sample = candidates.filter(() => random() < 120 / candidates.length);
const NEVER = 1e9;
const delays = { kvTransferTimeout: NEVER, senderFutureTimeout: NEVER, cancelResolveTimeout: NEVER, drainTimeout: NEVER, quiescenceTimeout: NEVER, quarantineMaxAge: NEVER, fenceTimeout: NEVER };
const BLOCK = 16 * 1024;
let n = 0;

async function replay(labels: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-greplay-'));
  const socketPath = join(dir, 'ctx.sock');
  const name = `gr-${process.pid}-${n++}`;
  const tick = () => new Promise((r) => setImmediate(r));
  let peerChannel: ControlChannel | null = null;
  const infos: Array<{ regionId: number; offset: number; length: number }[]> = [];
  const server = await listenControl(socketPath, (s) => {
    peerChannel = new ControlChannel(s, (m) => m.t === 'info' && infos.push(m.remote), () => {});
  });
  const config: ServerConfig = { role: 'generation', name: `${name}-gen`, socketPath, blockBytes: BLOCK, poolBlocks: 4, backend: 'shm', progress: 'manual', recvSlots: 1, delays, loop: 'manual' };
  const gen = new GenerationServer(config, () => {});
  const ctx = new Agent(`${name}-ctx`, { progress: 'manual', chunkBytes: 4096 });
  try {
    await gen.connect(socketPath);
    for (let k = 0; k < 100 && !peerChannel; k++) await tick();
    const src = ctx.registerMemory(2 * BLOCK);
    [0, 1].forEach((b) => fillBlock(src.bytes.subarray(b * BLOCK, (b + 1) * BLOCK), 1, 1, b));
    const remote = ctx.loadRemoteMetadata(gen.agent.exportMetadata());
    gen.submit({ id: 'r', number: 1, blocks: 2, faults: [] });
    let pendingSignal: boolean | null = null;
    let pure: WorldState = initialWorld(sc);
    for (const [i, label] of labels.entries()) {
      const w = pure;
      if (label === 'executor: schedule request, allocate KV blocks') gen.stepLoop('admit');
      else if (label.startsWith('executor: start decoding') || label.startsWith('executor: decoding done')) gen.stepLoop('decode');
      else if (label === 'user: cancel request') gen.cancel('r');
      else if (label === 'worker r: pops request') gen.stepLoop('worker');
      else if (label === 'pool: grants receive slot to r') {
        gen.stepLoop('slot');
        for (let k = 0; k < 1000 && infos.length === 0; k++) await tick();
      } else if (label === 'checker: poll r receive future') gen.stepLoop('poll');
      else if (label === 'peer r: sends ready signal (data follows)') {
        pendingSignal = true;
        const h = ctx.createTransfer({ op: 'WRITE', local: [0, 1].map((b) => ({ region: src, offset: b * BLOCK, length: BLOCK })), remote: infos[0]!, remoteAgent: remote, notification: new TextEncoder().encode(JSON.stringify({ id: 'r', number: 1, epoch: 1 })) });
        h.post();
      } else if (label === 'peer r: sends not-ready signal (no data will be written)') pendingSignal = false;
      else if (label.startsWith('network: ')) {
        const before = JSON.stringify(gen.host.actor('r.recv')?.value);
        peerChannel!.send({ t: 'ready', id: 'r', ready: pendingSignal!, epoch: 1, requestNumber: 1 });
        for (let k = 0; k < 1000 && JSON.stringify(gen.host.actor('r.recv')?.value) === before && gen.host.in('r.recv', { worker: 'awaitingReady' }); k++) await tick();
        await tick();
      } else if (label === 'peer r: last byte lands') {
        for (let k = 0; k < 100; k++) if (ctx.step().kind === 'idle') break;
      } else if (label === 'peer r: sync notification') {
        for (let k = 0; k < 100; k++) if (gen.agent.step().kind === 'notification') break;
        await tick();
      } else if (label.startsWith('deadline ')) enabledChoices(sc, w).find((c) => c.label === label)!.apply(gen.host);
      else throw new Error(`no mapping for step '${label}'`);
      await tick();
      pure = step(sc, pure, label);
      for (const actor of ['r.lifecycle', 'r.recv']) {
        const model = pure.actors[actor];
        if (!model) continue;
        const real = gen.host.actor(actor);
        const where = `after step ${i + 1} "${label}": ${actor}`;
        if (!real) {
          expect(isFinished(model), `${where} is missing on the server while the model has it in ${JSON.stringify(model.value)}`).toBe(true);
          continue;
        }
        expect(real.value, where).toEqual(model.value);
        for (const k of ['promise', 'outcome', 'proof', 'syncSeen', 'slot', 'errorReason'] as const) {
          if (k in model.context) expect(real.context[k], `${where} context.${k}`).toEqual(model.context[k]);
        }
      }
    }
  } finally {
    gen.close();
    ctx.close();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe(`generationTimeout explored orderings on the real generation server (manual loop, manual native progress): ${sample.length} sampled of ${candidates.length} realizable of ${all.length}`, () => {
  it('the sample exercises the overtaking sync notification and every kind of step', () => {
    expect(sample.some((p) => p.indexOf('peer r: sync notification') >= 0 && p.indexOf('peer r: sync notification') < p.findIndex((l) => l.startsWith('network: ready')))).toBe(true);
    for (const l of ['user: cancel request', 'worker r: pops request', 'pool: grants receive slot to r', 'checker: poll r receive future', 'peer r: last byte lands']) {
      expect(sample.some((p) => p.includes(l)), l).toBe(true);
    }
    expect(sample.some((p) => p.some((l) => l.startsWith('deadline r.')))).toBe(true);
  });
  it.each(sample.map((p) => [p.join(' > '), p] as const))('%s', async (_n, p) => replay([...p]), 30_000);
});

import { describe, expect, it } from 'vitest';
import { contextSendMachine, peerSessionMachine } from '../../machines/index.js';
import { addressKey, parseAddress, wiringFor } from '../../src/core/wiring.js';
import { COMPOSED_PLAN, composedConfig } from '../../src/explore/composedCatalog.js';
import { exploreComposed, replayComposed, shrinkPath } from '../../src/explore/composedExplorer.js';
import { INVARIANTS } from '../../src/explore/invariantCatalog.js';
import { pureInitialTransition, pureTransition } from '../../src/explore/world.js';
import type { MachineEvent } from '../../src/explore/world.js';
import type { AnyStateMachine } from 'xstate';

/** Run events through a machine purely; return the final snapshot and every named action it emitted. */
function run(machine: AnyStateMachine, input: unknown, events: MachineEvent[]) {
  let [s] = pureInitialTransition(machine, input);
  const actions: Array<{ type: string; params: Record<string, unknown> }> = [];
  for (const e of events) {
    const [n, a] = pureTransition(machine, s, e);
    s = n;
    for (const x of a as Array<{ type: string; params?: Record<string, unknown> }>) if (!x.type.startsWith('xstate.')) actions.push({ type: x.type, params: x.params ?? {} });
  }
  return { s, actions };
}

describe('the fence protocol lives in machines (issue 9)', () => {
  it('a fence of a request that has not started drops its early info, and when it starts it is fenced, never given the info', () => {
    const { s, actions } = run(peerSessionMachine, {}, [
      { type: 'INFO', request: 'r1', remote: { region: 0, blocks: [0], epoch: 1 } },
      { type: 'FENCE', request: 'r1' },
      { type: 'REQUEST_STARTED', request: 'r1' },
    ]);
    expect(actions.map((a) => a.type)).toEqual(['ackFence', 'forwardFence']);
    expect(s.context.early).toEqual({});
  });

  it('a fence while two handles transfer is acknowledged only after both settled with proof', () => {
    const { s, actions } = run(contextSendMachine, { requestId: 'r', handles: 2 }, [
      { type: 'REQUEST_INFO', remote: { region: 0, blocks: [0], epoch: 1 } },
      { type: 'FENCE' },
      { type: 'TRANSFERS_SETTLED', outcome: 'cancelled', quiesced: true, index: 0 },
    ]);
    expect(actions.map((a) => a.type)).not.toContain('ackFence');
    const [after, more] = pureTransition(contextSendMachine, s, { type: 'TRANSFERS_SETTLED', outcome: 'cancelled', quiesced: true, index: 1 });
    expect((more as Array<{ type: string }>).map((a) => a.type)).toContain('ackFence');
    expect(after.matches({ sender: 'unwinding' } as never)).toBe(true);
  });

  it('the first of two handles failing cancels its sibling and does not unwind until the sibling settled (vLLM #56104)', () => {
    const { s, actions } = run(contextSendMachine, { requestId: 'r', handles: 2 }, [{ type: 'REQUEST_INFO' }, { type: 'TRANSFERS_SETTLED', outcome: 'failed', quiesced: true, index: 0 }]);
    expect(actions.filter((a) => a.type === 'cancelTransfers')).toHaveLength(1);
    expect(s.matches({ sender: 'cancellingTransfers' } as never)).toBe(true);
  });
});

describe('wiring', () => {
  it('addresses round-trip through their string form', () => {
    for (const a of [{ side: 'context', role: 'handle', request: 'r1', index: 1 }, { side: 'generation', role: 'slots' }, { side: 'generation', role: 'lease', request: 'r2' }] as const) {
      expect(parseAddress(addressKey(a))).toEqual(a);
    }
  });

  it('refuses an action it does not know (the table is total, not permissive)', () => {
    const w = wiringFor('context', { handles: 2, semantics: { canAbortInFlight: true, releaseInFlightQuiesces: true } });
    expect(() => w.action({ side: 'context', role: 'send', request: 'r' }, { type: 'noSuchAction', params: {} })).toThrow(/no entry/);
  });
});

describe('composed exploration', () => {
  it('the shipped machines, both sides composed, are clean on every world within a small budget (and every emitted action is wired)', () => {
    const r = exploreComposed(composedConfig('composed/reuse', 'shipped'), { scenario: 'composed/reuse', variant: 'shipped' }, { maxStates: 1500 });
    expect(r.states).toBeGreaterThan(1000);
    expect(r.violations).toEqual([]);
  }, 180_000);

  // Counterexamples as the explorer printed them (xferstate explore --variant …): they break a consequence
  // invariant with the variant, and the same steps with the shipped machines do not.
  const paths: Record<string, { scenario: string; path: string[]; invariant: string }> = {
    fenceBeforeTransfer: {
      scenario: 'composed/reuse',
      invariant: 'M1',
      path: [
        'gen loop r1: pop',
        'net gen→ctx: deliver info(r1@1)',
        'deadline g:r1.lifecycle: kvTransferTimeout in DISAGG_GENERATION_TRANS_IN_PROGRESS',
        'gen loop r1: poll',
        'deadline g:r1.lease: quarantineMaxAge in quarantined',
        'net gen→ctx: deliver fence(r1)',
        'ctx loop r1: prefill',
        'net ctx→gen: deliver fenceAck(r1)',
        'backend: write of r1#0.handle lands',
      ],
    },
    staleReference: {
      scenario: 'composed/reuse',
      invariant: 'M1',
      path: [
        'gen loop r1: pop',
        'deadline g:r1.lifecycle: kvTransferTimeout in DISAGG_GENERATION_TRANS_IN_PROGRESS',
        'gen loop r1: poll',
        'deadline g:r1.lease: quarantineMaxAge in quarantined',
        'net gen→ctx: deliver fence(r1) ahead of 1 older',
        'net gen→ctx: deliver info(r1@1)',
        'ctx loop r1: prefill',
        'net ctx→gen: deliver fenceAck(r1)',
        'backend: write of r1#0.handle lands',
      ],
    },
    ackWithUnresolvedError: {
      scenario: 'composed/handles',
      invariant: 'M1',
      path: [
        'ctx loop r1: prefill',
        'gen loop r1: pop',
        'user: cancel r1 on the generation side',
        'gen loop r1: poll',
        'net gen→ctx: deliver info(r1@1)',
        'net ctx→gen: deliver ready(r1)',
        'deadline g:r1.lease: quarantineMaxAge in quarantined',
        'net gen→ctx: deliver fence(r1)',
        'net ctx→gen: deliver fenceAck(r1)',
        'backend: write of r1#0.handle lands',
      ],
    },
    notReadyAfterWrite: {
      scenario: 'composed/handles',
      invariant: 'M1',
      path: [
        'gen loop r1: pop',
        'net gen→ctx: deliver info(r1@1)',
        'deadline g:r1.lifecycle: kvTransferTimeout in DISAGG_GENERATION_TRANS_IN_PROGRESS',
        'ctx loop r1: prefill',
        'net ctx→gen: deliver ready(r1)',
        'backend: r1#1.handle ERROR',
        'gen loop r1: poll',
        'deadline c:r1#0.handle: drainTimeout in draining',
        'ctx loop r1: worker',
        'net ctx→gen: deliver not-ready(r1)',
        'backend: write of r1#0.handle lands',
      ],
    },
  };
  it.each(Object.entries(paths))('%s: its counterexample breaks the expected consequence invariant; the shipped machines on the same steps do not', (variant, { scenario, path, invariant }) => {
    const bad = replayComposed(composedConfig(scenario, variant), path);
    expect(bad.violation?.id).toBe(invariant);
    expect(COMPOSED_PLAN[variant]!.expect).toContain(invariant);
    const good = replayComposed(composedConfig(scenario, 'shipped'), path);
    expect(good.violation).toBeNull();
  });

  it('a wandering counterexample is shrunk to the steps it needs, and the shrunk path still replays to the violation', () => {
    const { scenario, path, invariant } = paths.fenceBeforeTransfer!;
    const cfg = composedConfig(scenario, 'fenceBeforeTransfer');
    // A step of the other request first: irrelevant to r1's write into r2's block.
    const noisy = ['ctx loop r2: prefill', ...path];
    expect(replayComposed(cfg, noisy).violation?.id).toBe(invariant);
    const short = shrinkPath(cfg, noisy, invariant);
    expect(short.length).toBeLessThanOrEqual(path.length);
    expect(short.some((l) => l.includes('r2'))).toBe(false);
    expect(replayComposed(cfg, short).violation?.id).toBe(invariant);
  });

  it('every composed variant is expected to be caught by consequence invariants only', () => {
    for (const plan of Object.values(COMPOSED_PLAN)) for (const id of plan.expect) expect(INVARIANTS.find((i) => i.id === id)?.kind).toBe('consequence');
  });
});

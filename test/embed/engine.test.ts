import { describe, expect, it } from 'vitest';
import type { AnyStateMachine } from 'xstate';
import { admissionMachine, blockLeaseMachine, contextSendMachine, fenceClientMachine, generationReceiveMachine, peerSessionMachine, REGRESSION_VARIANTS, requestLifecycleMachine, transferHandleMachine } from '../../machines/index.js';
import { EmbeddingError, ENGINE_ACTIONS, EngineHost, engineActionsOf, leaseRelease, outcomeEvent, provideEngine, requestResult, sideQuiescent } from '../../src/embed/index.js';

const PRODUCTION: AnyStateMachine[] = [transferHandleMachine, contextSendMachine, generationReceiveMachine, requestLifecycleMachine, blockLeaseMachine, peerSessionMachine, admissionMachine, fenceClientMachine];
const noop = () => {};
const handleActions = { postTransfer: noop, abortTransfer: noop, releaseHandle: noop };

describe('engine actions', () => {
  it('ENGINE_ACTIONS lists exactly the engine actions each production machine names', () => {
    for (const m of PRODUCTION) expect(engineActionsOf(m), m.id).toEqual([...ENGINE_ACTIONS[m.id as keyof typeof ENGINE_ACTIONS]].sort());
  });

  it('regression variants ask for nothing beyond the machine they replace, except the refused-cancel log line', () => {
    const extras = new Set<string>();
    for (const v of REGRESSION_VARIANTS) {
      for (const a of engineActionsOf(v.machine)) if (!(ENGINE_ACTIONS[v.replaces as keyof typeof ENGINE_ACTIONS] as readonly string[]).includes(a)) extras.add(a);
    }
    expect([...extras]).toEqual(['cancelRefused']);
  });

  it('a host created without an engine action fails at once, naming it', () => {
    const make = () =>
      new EngineHost({ machines: { handle: transferHandleMachine }, actions: { handle: { postTransfer: noop, abortTransfer: noop } } as never });
    expect(make).toThrow(EmbeddingError);
    expect(make).toThrow(/role 'handle': engine action not provided: releaseHandle \(machine transferHandle\)/);
  });

  it('provideEngine refuses a missing action, an unknown action and an unknown delay', () => {
    expect(() => provideEngine(transferHandleMachine, { actions: { postTransfer: noop, abortTransfer: noop } as never })).toThrow(/transferHandle: engine action not provided: releaseHandle/);
    expect(() => provideEngine(transferHandleMachine, { actions: { ...handleActions, relaseHandle: noop } as never })).toThrow(/has no engine action relaseHandle/);
    expect(() => provideEngine(transferHandleMachine, { actions: handleActions, delays: { drainTimout: 1 } as never })).toThrow(/has no delay drainTimout/);
    expect(provideEngine(transferHandleMachine, { actions: handleActions }).id).toBe('transferHandle');
  });
});

describe('EngineHost', () => {
  it('routes each action with its own params and reports the typed output', () => {
    const calls: string[] = [];
    const outputs: unknown[] = [];
    const host = new EngineHost({
      machines: { handle: transferHandleMachine },
      actions: {
        handle: {
          postTransfer: (p, at) => {
            calls.push(`post ${p.handleId} ${at.request}/${at.role}`);
            at.host.send(at.actor, { type: 'STATUS', status: 'DONE' });
          },
          abortTransfer: noop,
          releaseHandle: (p, at) => {
            calls.push(`release ${p.handleId}`);
            at.host.send(at.actor, { type: 'RELEASE_RESULT', accepted: true, quiesced: false });
          },
        },
      },
      onDone: { handle: (output) => outputs.push(output) },
    });
    host.spawn({ request: 'r1', role: 'handle' }, { handleId: 'h1', semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } });
    host.send('r1.handle', { type: 'POST' });
    expect(calls).toEqual(['post h1 r1/handle', 'release h1']);
    expect(outputs).toEqual([{ handleId: 'h1', outcome: 'succeeded', quiesced: true, leaked: false }]);
    expect(host.in('r1.handle', 'released')).toBe(true);
    host.stopAll();
  });

  it('applies deadlines per role: the same delay name in two machines bounds two different things', () => {
    const host = new EngineHost({
      machines: { handle: transferHandleMachine, lease: blockLeaseMachine },
      actions: { handle: handleActions, lease: { quarantineEntered: noop, quarantineReleased: noop, fencePeer: noop, retireBlocks: noop, returnBlocks: noop, withdrawFence: noop } },
      delays: { handle: { kvTransferTimeout: 1 } },
    });
    // The handle's own deadline is 1 ms; the lifecycle default (60 s) is untouched for other roles.
    host.spawn('r1.handle', { handleId: 'h', semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } });
    const snap = host.snapshot('r1.handle')!;
    expect(snap.machine.implementations.delays.kvTransferTimeout).toBe(1);
    host.stopAll();
  });
});

describe('wiring', () => {
  it('maps reportOutcome to the lifecycle event of each role', () => {
    expect(outcomeEvent('context', { result: 'complete' })).toEqual({ type: 'SEND_COMPLETE' });
    expect(outcomeEvent('context', { result: 'cancelled' })).toEqual({ type: 'SEND_FAILED', reason: 'cancelled' });
    expect(outcomeEvent('generation', { result: 'transferFailed' })).toEqual({ type: 'RECV_FAILED', reason: 'transferFailed' });
    expect(leaseRelease({ release: null })).toEqual({ type: 'RELEASE', proof: null });
    expect(sideQuiescent({ requestId: 'r', outcome: 'succeeded', proof: 'terminalAndSync' })).toEqual({ type: 'SIDE_QUIESCENT', proof: true, how: 'terminalAndSync' });
  });

  it('requestResult is null until the lifecycle is finished, then typed; requestFinished reports it once', () => {
    const finished: unknown[] = [];
    const host = new EngineHost({
      machines: { lifecycle: requestLifecycleMachine },
      actions: { lifecycle: { startContextSend: noop, startGenerationReceive: noop, cancelSide: noop, freeResources: noop, requestFinished: (p) => finished.push(p), respondError: noop, tellPeerCancelled: noop } },
    });
    host.spawn('r1.lifecycle', { requestId: 'r1', role: 'context' });
    host.send('r1.lifecycle', { type: 'CONTEXT_DONE' });
    expect(requestResult(host.snapshot('r1.lifecycle'))).toBeNull();
    host.send('r1.lifecycle', { type: 'SEND_FAILED', reason: 'timedOut' });
    host.send('r1.lifecycle', { type: 'SIDE_QUIESCENT', proof: true });
    expect(requestResult(host.snapshot('r1.lifecycle'))).toEqual({ requestId: 'r1', role: 'context', state: 'DISAGG_TRANS_ERROR', outcome: 'timedOut', reason: 'timedOut', freed: 'released' });
    expect(finished).toEqual([{ requestId: 'r1', outcome: 'failed', reason: 'timedOut', sideStarted: true }]);
    host.stopAll();
  });
});

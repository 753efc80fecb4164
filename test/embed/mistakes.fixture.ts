// Compiled by test/embed/types.test.ts (never run). Every line marked `// MISTAKE: <what>` must be a
// compile error and no other line may be one: the typed embedding catches each mistake an engine can make.
import { createInspector } from '@statelyai/inspect';
import { ActorHost, blockLeaseMachine, EngineHost, generationReceiveMachine, provideEngine, transferHandleMachine } from '../../src/index.js';

const machines = { handle: transferHandleMachine, lease: blockLeaseMachine, recv: generationReceiveMachine };
const handleActions = { postTransfer: () => {}, abortTransfer: () => {}, releaseHandle: () => {} };
const leaseActions = { quarantineEntered: () => {}, quarantineReleased: () => {}, fencePeer: () => {}, retireBlocks: () => {}, returnBlocks: () => {}, withdrawFence: () => {} };
const recvActions = { requestSlot: () => {}, withdrawSlotRequest: () => {}, sendRequestInfo: () => {}, releaseSlot: () => {}, reportOutcome: () => {}, tellPeerCancelled: () => {} };

// Correct use: every engine action, each with its own params; Stately's own inspector observer.
const stately = createInspector({ send: () => {} });
const host = new EngineHost({
  machines,
  actions: {
    handle: { ...handleActions, postTransfer: (p, at) => void [p.handleId.length, at.request] },
    lease: { ...leaseActions, quarantineReleased: (p) => void (p.by === 'fence') },
    recv: recvActions,
  },
  onDone: { handle: (output) => void output.quiesced },
  delays: { handle: { drainTimeout: 50 }, lease: { quarantineMaxAge: 100 } },
  inspect: stately.inspect,
});
const id: string = 'r1';
host.spawn({ request: id, role: 'handle' }, { handleId: id, semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } });
host.send(`${id}.handle`, { type: 'POST' });
host.send({ request: id, role: 'lease' }, { type: 'RELEASE', proof: 'terminalStatus' });
void host.in(`${id}.lease`, 'quarantined');
void host.in(`${id}.recv`, { worker: 'awaitingReady' });
// ActorHost (untyped routing) takes the same observer.
new ActorHost({ machines, route: () => {}, inspect: stately.inspect });
provideEngine(transferHandleMachine, { actions: { postTransfer: (_, p) => void p.handleId, abortTransfer: () => {}, releaseHandle: () => {} }, delays: { drainTimeout: 1 } });

// 1. An action the machine does not have (a misspelled engine action).
new EngineHost({ machines, actions: { handle: { ...handleActions, relaseHandle: () => {} }, lease: leaseActions, recv: recvActions } }); // MISTAKE: wrong action type
// 2. A misspelled delay.
new EngineHost({ machines, actions: { handle: handleActions, lease: leaseActions, recv: recvActions }, delays: { handle: { drainTimout: 50 } } }); // MISTAKE: misspelled delay
// 3. An event no machine accepts.
host.send(`${id}.handle`, { type: 'POSTED' }); // MISTAKE: wrong event
// 4. An event of another role's machine.
host.send(`${id}.lease`, { type: 'POST' }); // MISTAKE: wrong event for the role
// 5. A bad spawn input.
host.spawn(`${id}.handle`, { handleId: 7, semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } }); // MISTAKE: bad spawn input
// 6. A misspelled role in an actor name.
host.send(`${id}.handel`, { type: 'POST' }); // MISTAKE: misspelled role
// 7. A misspelled state in host.in (flat and parallel machines).
void host.in(`${id}.lease`, 'quarantine'); // MISTAKE: misspelled state
void host.in(`${id}.recv`, { worker: 'awaitingRedy' }); // MISTAKE: misspelled region state
// 8. A forgotten engine action (it would leave the handle in `releasing` forever).
new EngineHost({ machines, actions: { handle: { postTransfer: () => {}, abortTransfer: () => {} }, lease: leaseActions, recv: recvActions } }); // MISTAKE: forgotten action
provideEngine(transferHandleMachine, { actions: { postTransfer: () => {}, abortTransfer: () => {} } }); // MISTAKE: forgotten action via provide
// Params are the action's own: blockLease's quarantineReleased has `by`, not `reason`.
new EngineHost({ machines, actions: { handle: handleActions, lease: { ...leaseActions, quarantineReleased: (p) => void p.reason }, recv: recvActions } }); // MISTAKE: wrong params

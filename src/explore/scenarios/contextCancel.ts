import type { TransferHandleOutput, ContextSendOutput, PromiseState, TransferOutcome, BackendSemantics } from '../../../machines/index.js';
import { blockLeaseMachine, contextSendMachine, requestLifecycleMachine, transferHandleMachine } from '../../../machines/index.js';
import type { Choice, ScenarioDefinition, WorldView } from '../world.js';
import { nativeChoices, routeHandleAction, settledLease, touching, type NativeBackend } from './native.js';

/**
 * (a) Context-send cancellation: the sender worker (contextSend.sender) × the status checker
 * (contextSend.future) × the executor (requestLifecycle, user cancel, deadlines) × the generation peer
 * (asks or never asks) × the transfer handle and its backend, with the request's source blocks as a lease.
 */
export function contextCancelScenario(backend: NativeBackend = 'shm'): ScenarioDefinition {
  const semantics: BackendSemantics = backendSemantics(backend);
  const isSettled = (w: WorldView) =>
    w.done('r.lifecycle') && settledLease(w, 'r.lease') && (!w.actor('r.send') || w.done('r.send')) && (!w.actor('r.handle') || w.done('r.handle'));
  return {
    name: 'contextCancel',
    description: 'context-send cancellation: sender worker × status checker × executor × generation peer',
    machines: { lifecycle: requestLifecycleMachine, send: contextSendMachine, handle: transferHandleMachine, lease: blockLeaseMachine },
    initialEnv: {
      backend,
      peer: 'waiting', // waiting | asked
      peerSignal: 'none', // none | ready | notReady
      userCancelled: false,
      xfer: 'idle', // see native.ts
      abortRequested: false,
      releases: 0,
      reports: 0,
      brokenPromise: false,
      fenceRequested: false,
      errorResponses: 0,
    },
    start(w) {
      w.spawn('r.lifecycle', { requestId: 'r', role: 'context' });
      w.spawn('r.lease', { leaseId: 'r' });
      // Prefill writes the KV cache into the request's blocks.
      w.send('r.lease', { type: 'ALLOCATE' });
    },
    route(w, actor, a) {
      const p = a.params;
      switch (`${actor}/${a.type}`) {
        case 'r.lifecycle/startContextSend':
          return w.spawn('r.send', { requestId: 'r' });
        case 'r.lifecycle/cancelSide':
          return w.send('r.send', { type: 'CANCEL' });
        case 'r.lifecycle/freeResources':
          return w.send('r.lease', { type: 'RELEASE', proof: p.proof ? 'terminalStatus' : null });
        case 'r.lifecycle/respondError':
          w.env.errorResponses = Number(w.env.errorResponses) + 1;
          return;
        case 'r.send/sendReadySignal':
          w.env.peerSignal = 'ready';
          return;
        case 'r.send/signalPeer':
          if (p.notReady) w.env.peerSignal = 'notReady';
          return;
        case 'r.send/startTransfers':
          w.send('r.lease', { type: 'EXPOSE' });
          w.spawn('r.handle', { handleId: 'r', semantics });
          return w.send('r.handle', { type: 'POST' });
        case 'r.send/cancelTransfers':
          return w.send('r.handle', { type: 'CANCEL' });
        case 'r.send/reportOutcome': {
          w.env.reports = Number(w.env.reports) + 1;
          const promise = p.promise as PromiseState;
          if (promise === 'broken') w.env.brokenPromise = true;
          const outcome = p.outcome as TransferOutcome;
          if (promise === 'value') return w.send('r.lifecycle', { type: 'SEND_COMPLETE' });
          return w.send('r.lifecycle', { type: 'SEND_FAILED', reason: outcome === 'succeeded' ? 'transferFailed' : outcome === 'failed' ? 'transferFailed' : outcome });
        }
        default:
          if (actor === 'r.handle') return routeHandleAction(w, 'r.handle', a, semantics);
          if (actor === 'r.lease' && a.type === 'fencePeer') {
            w.env.fenceRequested = true;
            return;
          }
      }
    },
    onDone(w, actor, output) {
      if (actor === 'r.handle') {
        const o = output as TransferHandleOutput;
        w.send('r.send', { type: 'TRANSFERS_SETTLED', outcome: o.outcome, quiesced: o.quiesced });
      } else if (actor === 'r.send') {
        w.send('r.lifecycle', { type: 'SIDE_QUIESCENT', proof: (output as ContextSendOutput).quiesced });
      }
    },
    choices(w) {
      const c: Choice[] = [];
      if (w.in('r.lifecycle', 'CONTEXT_INIT')) c.push({ label: 'executor: prefill done (CONTEXT_DONE)', kind: 'local', apply: (d) => d.send('r.lifecycle', { type: 'CONTEXT_DONE' }) });
      if (!w.env.userCancelled && w.actor('r.lifecycle')?.status === 'active') {
        c.push({ label: 'user: cancel request', kind: 'env', apply: (d) => ((d.env.userCancelled = true), d.send('r.lifecycle', { type: 'CANCEL' })) });
      }
      if (w.env.peer === 'waiting' && w.actor('r.send')) {
        c.push({ label: 'peer: asks for KV (REQUEST_INFO)', kind: 'env', apply: (d) => ((d.env.peer = 'asked'), d.send('r.send', { type: 'REQUEST_INFO' })) });
      }
      // A poll of a future that is not ready changes nothing, so only polls that can observe are offered.
      if (w.in('r.send', { future: 'pending' }) && w.actor('r.send')!.context.promise !== 'pending') {
        c.push({ label: 'checker: poll sender future (STATUS_POLL)', kind: 'local', apply: (d) => d.send('r.send', { type: 'STATUS_POLL' }) });
      }
      if (w.in('r.send', { sender: 'unwinding' })) c.push({ label: 'sender worker: next step', kind: 'local', apply: (d) => d.send('r.send', { type: 'WORKER_STEP' }) });
      c.push(...nativeChoices(w, 'r.handle', 'r.lease', semantics));
      return c;
    },
    isSettled,
    facts: {
      requests: ['r'],
      leases: [{ name: 'r.lease', request: 'r', ownerFinished: (w) => w.done('r.lifecycle'), touched: (w) => touching(w.env) }],
      requestSettled: (w) => isSettled(w),
    },
  };
}

export function backendSemantics(backend: NativeBackend): BackendSemantics {
  switch (backend) {
    case 'shm':
      return { canAbortInFlight: true, releaseInFlightQuiesces: false };
    case 'ucx':
    case 'refusing':
      return { canAbortInFlight: false, releaseInFlightQuiesces: false };
  }
}

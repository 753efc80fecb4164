import type { PromiseState, QuiescenceProof, TransferOutcome } from '../../../machines/index.js';
import { blockLeaseMachine, generationReceiveMachine, requestLifecycleMachine } from '../../../machines/index.js';
import type { Choice, EmittedAction, ScenarioDefinition, WorldOps, WorldView } from '../world.js';
import { settledLease } from './native.js';
import { fenceChoice, senderChoices, senderEnv, senderWriting } from './remotePeer.js';

/**
 * (b) Generation timeout: the receiver worker (generationReceive.worker) × the executor's timeout and
 * cancel path (requestLifecycle, its own deadline racing the worker's) × the status checker × the
 * context-side sender writing into the advertised receive slot (a lease) × the request's KV blocks.
 */
export function generationTimeoutScenario(): ScenarioDefinition {
  const isSettled = (w: WorldView) =>
    w.done('r.lifecycle') && (!w.actor('r.recv') || w.done('r.recv')) && settledLease(w, 'r.slot') && settledLease(w, 'r.blocks');
  return {
    name: 'generationTimeout',
    description: 'generation timeout: receiver worker × executor timeout path × status checker × sender writing into the slot',
    machines: { lifecycle: requestLifecycleMachine, recv: generationReceiveMachine, slot: blockLeaseMachine, blocks: blockLeaseMachine },
    initialEnv: { ...senderEnv('r'), userCancelled: false, slotRequested: false, 'r.reports': 0, 'r.slotReleases': 0, brokenPromise: false, fenceRequested: false },
    start(w) {
      w.spawn('r.lifecycle', { requestId: 'r', role: 'generation' });
      w.spawn('r.slot', { leaseId: 'r.slot' });
      w.spawn('r.blocks', { leaseId: 'r.blocks' });
    },
    route(w, actor, a) {
      if (actor === 'r.lifecycle') {
        // The receiver worker copies into the KV blocks, so they are exposed while it runs.
        if (a.type === 'startGenerationReceive') return w.send('r.blocks', { type: 'EXPOSE' }), w.spawn('r.recv', { requestId: 'r' });
        if (a.type === 'cancelSide') return w.send('r.recv', { type: 'CANCEL' });
        if (a.type === 'freeResources') return w.send('r.blocks', { type: 'RELEASE', proof: a.params.proof ? 'terminalStatus' : null });
        return;
      }
      if (actor === 'r.recv') return routeReceiveAction(w, 'r', 'r.slot', a, { toLifecycle: true });
      if (a.type === 'fencePeer') w.env.fenceRequested = true;
    },
    onDone(w, actor) {
      if (actor === 'r.recv') w.send('r.lifecycle', { type: 'SIDE_QUIESCENT', proof: true });
    },
    choices(w) {
      const c: Choice[] = [];
      if (w.in('r.lifecycle', 'DISAGG_GENERATION_INIT')) {
        c.push({ label: 'executor: schedule request, allocate KV blocks', kind: 'local', apply: (d) => (d.send('r.blocks', { type: 'ALLOCATE' }), d.send('r.lifecycle', { type: 'SCHEDULED' })) });
      }
      if (w.in('r.lifecycle', 'DISAGG_GENERATION_TRANS_COMPLETE')) c.push({ label: 'executor: start decoding', kind: 'local', apply: (d) => d.send('r.lifecycle', { type: 'DECODE_START' }) });
      if (w.in('r.lifecycle', 'GENERATION_IN_PROGRESS')) c.push({ label: 'executor: decoding done', kind: 'local', apply: (d) => d.send('r.lifecycle', { type: 'DECODE_DONE' }) });
      if (!w.env.userCancelled && w.actor('r.lifecycle')?.status === 'active') {
        c.push({ label: 'user: cancel request', kind: 'env', apply: (d) => ((d.env.userCancelled = true), d.send('r.lifecycle', { type: 'CANCEL' })) });
      }
      c.push(...receiverLocalChoices(w, 'r', 'r.slot'));
      c.push(...senderChoices(w, 'r', 'r.slot'));
      c.push(...fenceChoice(w, 'r', 'r.slot'));
      return c;
    },
    isSettled,
    facts: {
      requests: ['r'],
      leases: [
        { name: 'r.slot', request: 'r', ownerFinished: (w) => !w.actor('r.recv') || w.in('r.recv', { worker: 'done' }), touched: (w) => senderWriting(w, 'r') },
        { name: 'r.blocks', request: 'r', ownerFinished: (w) => w.done('r.lifecycle'), touched: (w) => w.in('r.recv', { worker: 'receiving' }) },
      ],
      dataArrived: (w, req) => w.env[`${req}.sender`] === 'synced',
      requestSettled: (w) => isSettled(w),
    },
  };
}

/** Routing of generationReceive's named actions, shared by the scenarios that run it. */
export function routeReceiveAction(w: WorldOps, req: string, slot: string, a: EmittedAction, opts: { toLifecycle: boolean }): void {
  const p = a.params;
  switch (a.type) {
    case 'requestSlot':
      w.env[opts.toLifecycle ? 'slotRequested' : `${req}.slotRequested`] = true;
      return;
    case 'withdrawSlotRequest':
      w.env[opts.toLifecycle ? 'slotRequested' : `${req}.slotRequested`] = false;
      return;
    case 'sendRequestInfo':
      w.env[`${req}.sender`] = 'gotInfo';
      return w.send(slot, { type: 'EXPOSE' });
    case 'releaseSlot': {
      w.env[`${req}.slotReleases`] = Number(w.env[`${req}.slotReleases`] ?? 0) + 1;
      // Only the holder's release reaches the slot (a request that never got it has nothing to give back).
      const holder = w.env.slotOwner === undefined || w.env.slotOwner === req;
      if (holder && (w.in(slot, 'allocated') || w.in(slot, 'exposed'))) w.send(slot, { type: 'RELEASE', proof: p.proof as QuiescenceProof | null });
      return;
    }
    case 'reportOutcome': {
      w.env[`${req}.reports`] = Number(w.env[`${req}.reports`] ?? 0) + 1;
      const promise = p.promise as PromiseState;
      if (promise === 'broken') w.env.brokenPromise = true;
      if (!opts.toLifecycle) return;
      const outcome = p.outcome as TransferOutcome;
      if (promise === 'value') return w.send(`${req}.lifecycle`, { type: 'RECV_COMPLETE' });
      return w.send(`${req}.lifecycle`, { type: 'RECV_FAILED', reason: outcome === 'succeeded' || outcome === 'failed' ? 'transferFailed' : outcome });
    }
  }
}

/** The receiver side's own steps: worker pop, slot grant, status poll. */
export function receiverLocalChoices(w: WorldView, req: string, slot: string, slotRequestedKey = 'slotRequested'): Choice[] {
  const c: Choice[] = [];
  const recv = `${req}.recv`;
  if (w.in(recv, { worker: 'queued' })) c.push({ label: `worker ${req}: pops request`, kind: 'local', request: req, apply: (d) => d.send(recv, { type: 'WORKER_POP' }) });
  if (w.env[slotRequestedKey] === true && w.in(recv, { worker: 'awaitingSlot' }) && w.in(slot, 'free')) {
    c.push({
      label: `pool: grants receive slot to ${req}`,
      kind: 'local',
      request: req,
      apply: (d) => {
        d.env[slotRequestedKey] = false;
        if (d.env.slotOwner !== undefined) d.env.slotOwner = req;
        d.send(slot, { type: 'ALLOCATE' });
        d.send(recv, { type: 'SLOT_GRANTED' });
      },
    });
  }
  if (w.in(recv, { future: 'pending' }) && w.actor(recv)!.context.promise !== 'pending') {
    c.push({ label: `checker: poll ${req} receive future`, kind: 'local', request: req, apply: (d) => d.send(recv, { type: 'STATUS_POLL' }) });
  }
  return c;
}

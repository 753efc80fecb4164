// Both sides of disaggregated serving embedded in one process, with fake transports: a context
// (prefill) engine and a generation (decode) engine, each hosting the production machines through
// EngineHost (xstate's provide(), checked: every engine action must be implemented). The control
// channel is an in-memory queue and a "transfer" copies bytes between two arrays, so the example needs
// no native addon; docs/embedding.md walks through it.
//
// Run:  node docs/examples/two-sides.mjs
import {
  blockLeaseMachine,
  contextDelays,
  contextSendMachine,
  EngineHost,
  generationDelays,
  generationReceiveMachine,
  leaseRelease,
  outcomeEvent,
  requestLifecycleMachine,
  requestResult,
  sideQuiescent,
  transferHandleMachine,
  transfersSettled,
} from 'xferstate';

// ---- deadlines, named for what they bound (docs/embedding.md, "Deadlines") ----
const deadlines = { requestTransferMs: 1000, sideWaitMs: 500, handleTransferMs: 200, drainMs: 50, quarantineMaxAgeMs: 100, fenceMs: 200 };

// ---- the fake world: a control channel each way, one "NIC" that copies bytes, and the KV blocks ----
const toContext = [];
const toGeneration = [];
const contextBlocks = new Map(); // request → bytes prefill produced
const generationBlocks = new Map(); // request → bytes that arrived
const stalled = new Set(['r4']); // this request's transfer never completes: its deadlines end it
const counters = { quarantined: 0, fenced: 0, proofAfterQuarantine: 0 };
const noEngineWork = () => {}; // an action this example has no work for (or that only the other role's lifecycle asks for)
const finished = new Map(); // `${request}.${side}` → the lifecycle's requestFinished { requestId, outcome, reason }

// ---- the context side: lifecycle (context role) + contextSend + transferHandle + blockLease ----
const earlyInfo = new Set();
const earlyCancel = new Set(); // peer cancels that came before their request started sending here
const ctx = new EngineHost({
  machines: { lifecycle: requestLifecycleMachine, send: contextSendMachine, handle: transferHandleMachine, lease: blockLeaseMachine },
  delays: contextDelays(deadlines),
  actions: {
    lifecycle: {
      startContextSend: ({ requestId }, { host }) => {
        host.spawn({ request: requestId, role: 'send' }, { requestId });
        if (earlyInfo.delete(requestId)) host.send({ request: requestId, role: 'send' }, { type: 'REQUEST_INFO' });
        if (earlyCancel.delete(requestId)) host.send({ request: requestId, role: 'send' }, { type: 'PEER_CANCEL' });
      },
      startGenerationReceive: noEngineWork,
      cancelSide: ({ requestId }, { host }) => host.send({ request: requestId, role: 'send' }, { type: 'CANCEL' }),
      // The lifecycle names the evidence its side proved (or none: the lease is quarantined).
      freeResources: (p, { host }) => host.send({ request: p.requestId, role: 'lease' }, leaseRelease(p)),
      requestFinished: (p) => finished.set(`${p.requestId}.context`, p),
      respondError: noEngineWork,
      tellPeerCancelled: noEngineWork, // asked only by the generation role's lifecycle
    },
    send: {
      sendReadySignal: ({ requestId }) => toGeneration.push({ t: 'ready', id: requestId, ready: true }),
      signalPeer: ({ requestId, notReady }) => notReady && toGeneration.push({ t: 'ready', id: requestId, ready: false }),
      startTransfers: ({ requestId }, { host }) => {
        host.send({ request: requestId, role: 'lease' }, { type: 'EXPOSE' });
        host.spawn({ request: requestId, role: 'handle' }, { handleId: requestId, semantics: { canAbortInFlight: true, releaseInFlightQuiesces: false } });
        host.send({ request: requestId, role: 'handle' }, { type: 'POST' });
      },
      cancelTransfers: ({ requestId }, { host }) => host.send({ request: requestId, role: 'handle' }, { type: 'CANCEL' }),
      reportOutcome: (p, { host }) => host.send({ request: p.requestId, role: 'lifecycle' }, outcomeEvent('context', p)),
      ackFence: noEngineWork, // answers a FENCE from the generation side, which this example never sends
    },
    handle: {
      postTransfer: ({ handleId }, { host, actor }) => {
        if (stalled.has(handleId)) return;
        setImmediate(() => {
          generationBlocks.set(handleId, Uint8Array.from(contextBlocks.get(handleId)));
          host.send(actor, { type: 'STATUS', status: 'DONE' });
          toGeneration.push({ t: 'sync', id: handleId }); // the completion notification
        });
      },
      // Our fake NIC can abort in flight and confirm it.
      abortTransfer: (_p, { host, actor }) => setImmediate(() => host.send(actor, { type: 'ABORTED' })),
      releaseHandle: (_p, { host, actor }) => host.send(actor, { type: 'RELEASE_RESULT', accepted: true, quiesced: false }),
    },
    lease: {
      quarantineEntered: () => counters.quarantined++,
      quarantineReleased: ({ by }) => (by === 'fence' ? counters.fenced++ : counters.proofAfterQuarantine++),
      fencePeer: (_p, { host, actor }) => host.send(actor, { type: 'FENCE_CONFIRMED' }), // our own transfer is the only writer
      retireBlocks: noEngineWork,
      returnBlocks: noEngineWork, // the blocks are free again: a real engine hands them to its allocator
      withdrawFence: noEngineWork, // the fence is answered at once: nothing pending to forget
    },
  },
  onDone: {
    handle: (output, { host, request }) => host.send({ request, role: 'send' }, transfersSettled(output)),
    send: (output, { host, request }) => host.send({ request, role: 'lifecycle' }, sideQuiescent(output)),
  },
});

// ---- the generation side: lifecycle (generation role) + generationReceive + blockLease ----
const gen = new EngineHost({
  machines: { lifecycle: requestLifecycleMachine, recv: generationReceiveMachine, lease: blockLeaseMachine },
  delays: generationDelays(deadlines),
  actions: {
    lifecycle: {
      startContextSend: noEngineWork,
      startGenerationReceive: ({ requestId }, { host }) => {
        host.send({ request: requestId, role: 'lease' }, { type: 'EXPOSE' });
        host.spawn({ request: requestId, role: 'recv' }, { requestId });
      },
      cancelSide: ({ requestId }, { host }) => host.send({ request: requestId, role: 'recv' }, { type: 'CANCEL' }),
      // The evidence is the receiver's own proof (terminal status + sync, an explicit not-ready, …) or none.
      freeResources: (p, { host }) => host.send({ request: p.requestId, role: 'lease' }, leaseRelease(p)),
      requestFinished: (p) => finished.set(`${p.requestId}.generation`, p),
      respondError: noEngineWork,
      // A cancel before the request info was sent: tell the context side, which resolves it at once.
      tellPeerCancelled: ({ requestId }) => toContext.push({ t: 'cancel', id: requestId }),
    },
    recv: {
      requestSlot: ({ requestId }, { host }) => host.send({ request: requestId, role: 'recv' }, { type: 'SLOT_GRANTED' }), // unbounded slots here
      withdrawSlotRequest: noEngineWork,
      sendRequestInfo: ({ requestId }) => toContext.push({ t: 'info', id: requestId }),
      tellPeerCancelled: ({ requestId }) => toContext.push({ t: 'cancel', id: requestId }),
      releaseSlot: noEngineWork, // unbounded slots: nothing to hand back
      reportOutcome: (p, { host }) => host.send({ request: p.requestId, role: 'lifecycle' }, outcomeEvent('generation', p)),
    },
    lease: {
      quarantineEntered: () => counters.quarantined++,
      quarantineReleased: ({ by }) => (by === 'fence' ? counters.fenced++ : counters.proofAfterQuarantine++),
      // A real engine asks the context side to fence the request and waits for its acknowledgement.
      fencePeer: (_p, { host, actor }) => setImmediate(() => host.send(actor, { type: 'FENCE_CONFIRMED' })),
      retireBlocks: noEngineWork,
      returnBlocks: noEngineWork,
      // A real engine forgets the fence it still waits on (a late acknowledgement then confirms nothing).
      withdrawFence: noEngineWork,
    },
  },
  onDone: {
    recv: (output, { host, request }) => host.send({ request, role: 'lifecycle' }, sideQuiescent(output)),
  },
});

// ---- the executor loops: deliver control messages, take the worker, status-checker and decode steps ----
function iterate() {
  let work = false;
  for (const m of toContext.splice(0)) {
    work = true;
    if (m.t === 'cancel') {
      // The peer will never ask for this request: its sender resolves it as cancelled.
      if (ctx.has({ request: m.id, role: 'send' })) ctx.send({ request: m.id, role: 'send' }, { type: 'PEER_CANCEL' });
      else earlyCancel.add(m.id);
      continue;
    }
    if (ctx.has({ request: m.id, role: 'send' })) ctx.send({ request: m.id, role: 'send' }, { type: 'REQUEST_INFO' });
    else earlyInfo.add(m.id);
  }
  for (const m of toGeneration.splice(0)) {
    work = true;
    const recv = { request: m.id, role: 'recv' };
    if (m.t === 'ready' && gen.in(recv, { worker: 'awaitingReady' })) gen.send(recv, { type: 'READY_SIGNAL', ready: m.ready });
    if (m.t === 'sync' && gen.has(recv)) {
      const arrived = generationBlocks.get(m.id)?.every((b, i) => b === contextBlocks.get(m.id)[i]) ?? false;
      if (gen.in(recv, { worker: 'awaitingReady' }) || gen.in(recv, { worker: 'receiving' })) gen.send(recv, { type: 'SYNC_WAIT_ENDED', arrived });
    }
  }
  for (const name of ctx.names()) {
    if (!name.endsWith('.send')) continue;
    const s = ctx.snapshot(name);
    if (ctx.in(name, { sender: 'unwinding' })) (ctx.send(name, { type: 'WORKER_STEP' }), (work = true));
    if (ctx.in(name, { future: 'pending' }) && s.context.promise !== 'pending') (ctx.send(name, { type: 'STATUS_POLL' }), (work = true));
  }
  for (const name of gen.names()) {
    if (name.endsWith('.recv')) {
      const s = gen.snapshot(name);
      if (gen.in(name, { worker: 'queued' })) (gen.send(name, { type: 'WORKER_POP' }), (work = true));
      if (gen.in(name, { future: 'pending' }) && s.context.promise !== 'pending') (gen.send(name, { type: 'STATUS_POLL' }), (work = true));
    } else if (name.endsWith('.lifecycle')) {
      if (gen.in(name, 'DISAGG_GENERATION_TRANS_COMPLETE')) (gen.send(name, { type: 'DECODE_START' }), (work = true));
      else if (gen.in(name, 'GENERATION_IN_PROGRESS')) (gen.send(name, { type: 'DECODE_DONE' }), (work = true));
    }
  }
  return work;
}

// ---- requests: prefill on the context side, scheduling on the generation side ----
const requests = ['r1', 'r2', 'r3', 'r4', 'r5', 'r6'];
for (const [i, id] of requests.entries()) {
  contextBlocks.set(id, Uint8Array.from({ length: 64 }, (_, b) => (i * 31 + b) & 0xff));
  for (const [host, role] of [[ctx, 'context'], [gen, 'generation']]) {
    host.spawn({ request: id, role: 'lease' }, { leaseId: id });
    host.send({ request: id, role: 'lease' }, { type: 'ALLOCATE' });
    host.spawn({ request: id, role: 'lifecycle' }, { requestId: id, role });
  }
  ctx.send({ request: id, role: 'lifecycle' }, { type: 'CONTEXT_DONE' });
  gen.send({ request: id, role: 'lifecycle' }, { type: 'SCHEDULED' });
}
// A user cancels r5 while its KV cache is in flight.
gen.send({ request: 'r5', role: 'lifecycle' }, { type: 'CANCEL' });

// ---- how to know a request is finished: each lifecycle calls requestFinished once, with a typed outcome ----
const leasesAtRest = () => requests.every((id) => ctx.in({ request: id, role: 'lease' }, 'free') && gen.in({ request: id, role: 'lease' }, 'free'));
while (finished.size < 2 * requests.length || !leasesAtRest()) {
  if (!iterate()) await new Promise((r) => setTimeout(r, 2));
}

for (const id of requests) {
  const [c, g] = [finished.get(`${id}.context`), finished.get(`${id}.generation`)];
  // requestResult() reads the same from a lifecycle snapshot, with the terminal state it ended in.
  const [cs, gs] = [ctx, gen].map((h) => requestResult(h.snapshot({ request: id, role: 'lifecycle' })).state);
  console.log(`${id}  context ${c.outcome.padEnd(9)} ${c.reason.padEnd(14)} (${cs})  generation ${g.outcome.padEnd(9)} ${g.reason.padEnd(14)} (${gs})`);
}
console.log(JSON.stringify(counters));
ctx.stopAll();
gen.stopAll();

import { assign, setup } from 'xstate';
import type { IgnorePolicy, RemoteRef, StateMeta } from './common.js';
import { FINISHED_MEMORY, FinishedRecords, RequestTable } from './common.js';

/**
 * The context server's side of its session with the generation peer: what to do with a request info
 * or a fence, whatever the request's state on this side — not arrived yet, sending, finished, or
 * forgotten. One actor per server. It holds the infos that arrived before their request (early infos),
 * the requests the peer fenced before they started (tombstones) and a bounded record of finished ones.
 *
 * The fence rule: a fence's acknowledgement is a fact about every transfer handle of the request —
 * never created (the request had not started a transfer: it never will, the stored info is dropped),
 * or all quiescent (answered by the request's contextSend). A request fenced before it started is
 * tombstoned: when it arrives it is fenced at once, so it can never start a transfer.
 */
export interface PeerSessionInput {
  /** Finished requests remembered (oldest forgotten first). */
  remember?: number;
}

export interface PeerSessionContext {
  remember: number;
  /**
   * Requests whose contextSend is alive here: a persistent table (every request starts and finishes
   * here, and a list made each of those steps copy and scan all the requests in flight).
   */
  active: RequestTable<true>;
  /**
   * Request infos that arrived before their request started sending, with their descriptors: a
   * persistent table (under overload thousands of infos wait here for their requests to start).
   */
  early: RequestTable<RemoteRef | null>;
  /** Requests the peer fenced before they started here. */
  fenced: readonly string[];
  /** Requests the peer cancelled (never asking for them) before they started here. */
  abandoned: readonly string[];
  /**
   * Finished requests, oldest first, with whether their handles were proven quiescent and whether any
   * transfer of theirs was created (`wrote`: then the peer had its ready signal, and not-ready would be
   * false). Bounded by `remember`; persistent, like the tables (see FinishedRecords).
   */
  finished: FinishedRecords;
}

export type PeerSessionEvent =
  /** Control message: the peer asks for a request's KV cache (RequestAndBufferInfo). */
  | { type: 'INFO'; request: string; remote?: RemoteRef | null }
  /** Control message: the peer fences a request (it wants to reuse that request's blocks). */
  | { type: 'FENCE'; request: string }
  /** Control message: the peer cancelled a request before asking for it; it will never ask. */
  | { type: 'PEER_CANCEL'; request: string }
  /** This server started the request's contextSend. */
  | { type: 'REQUEST_STARTED'; request: string }
  /**
   * The request's contextSend finished; `quiesced`: every handle proved quiescence (or none existed);
   * `wrote`: a transfer was created (absent: taken as true, so not-ready is never claimed without knowing).
   */
  | { type: 'REQUEST_FINISHED'; request: string; quiesced: boolean; wrote?: boolean }
  /**
   * The request finished here (its lifecycle reported). If it never started sending, nothing of it can
   * write: its early info is answered not-ready and dropped, and it is remembered as finished, quiesced.
   */
  | { type: 'REQUEST_ENDED'; request: string }
  /** The peer's connection closed: its early infos name blocks nobody waits for any more. */
  | { type: 'PEER_GONE' };

// Plain loops, not find/some/filter with a closure: these run on every event of every request.
const has = (list: readonly string[], r: string) => list.includes(r);
/** The list without `r`: the same array when `r` is not in it (most requests were never fenced or abandoned). */
function withoutItem(list: readonly string[], r: string): readonly string[] {
  return list.includes(r) ? list.filter((x) => x !== r) : list;
}
const req = ({ event }: { event: PeerSessionEvent }) => (event as { request: string }).request;

export const peerSessionMachine = setup({
  types: {
    input: {} as PeerSessionInput,
    context: {} as PeerSessionContext,
    events: {} as PeerSessionEvent,
  },
  actions: {
    /** Engine: deliver REQUEST_INFO (with the descriptors) to the request's contextSend. */
    forwardInfo: (_: unknown, _params: { request: string; remote: RemoteRef | null }) => {},
    /** Engine: deliver FENCE to the request's contextSend (it acknowledges once its handles are quiescent). */
    forwardFence: (_: unknown, _params: { request: string }) => {},
    /** Engine: send fenceAck for the request. */
    ackFence: (_: unknown, _params: { request: string }) => {},
    /** Engine: deliver PEER_CANCEL to the request's contextSend (it resolves the request as cancelled). */
    forwardCancel: (_: unknown, _params: { request: string }) => {},
    /** Engine: answer a request info with not-ready: no data will follow (the request finished here). */
    answerNotReady: (_: unknown, _params: { request: string }) => {},
    keepEarly: assign(({ context, event }) => {
      const e = event as { request: string; remote?: RemoteRef | null };
      // A repeated info replaces the one kept (the latest descriptors win, as a record would have it).
      return { early: context.early.with(e.request, e.remote ?? null) };
    }),
    dropEarly: assign(({ context, event }) => {
      const r = req({ event });
      return context.early.has(r) ? { early: context.early.without(r) } : {};
    }),
    tombstone: assign(({ context, event }) => ({ fenced: has(context.fenced, req({ event })) ? context.fenced : [...context.fenced, req({ event })] })),
    abandon: assign(({ context, event }) => ({ abandoned: has(context.abandoned, req({ event })) ? context.abandoned : [...context.abandoned, req({ event })] })),
    activate: assign(({ context, event }) => ({ active: context.active.with(req({ event }), true) })),
    retire: assign(({ context, event }) => {
      const r = req({ event });
      const quiesced = (event as { quiesced?: boolean }).quiesced === true;
      const wrote = (event as { wrote?: boolean }).wrote !== false;
      // Bounded memory: the oldest quiesced record goes first; an unproven one is kept (a fence of it must never be acknowledged).
      const finished = context.finished.record({ request: r, quiesced, wrote }, context.remember, true);
      return { active: context.active.without(r), fenced: withoutItem(context.fenced, r), abandoned: withoutItem(context.abandoned, r), finished };
    }),
    forgetEarly: assign({ early: RequestTable.empty<RemoteRef | null>() }),
    retireUnstarted: assign(({ context, event }) => {
      const r = req({ event });
      const finished = context.finished.record({ request: r, quiesced: true, wrote: false }, context.remember, false);
      return { fenced: withoutItem(context.fenced, r), abandoned: withoutItem(context.abandoned, r), finished };
    }),
  },
  guards: {
    isActive: ({ context, event }) => context.active.has(req({ event })),
    isFenced: ({ context, event }) => has(context.fenced, req({ event })),
    isAbandoned: ({ context, event }) => has(context.abandoned, req({ event })),
    isFinished: ({ context, event }) => context.finished.any(req({ event }), 0),
    finishedQuiesced: ({ context, event }) => context.finished.any(req({ event }), 1),
    finishedUnwritten: ({ context, event }) => context.finished.any(req({ event }), 2),
    hasEarly: ({ context, event }) => context.early.has(req({ event })),
  },
}).createMachine({
  id: 'peerSession',
  context: ({ input }) => ({ remember: input?.remember ?? FINISHED_MEMORY, active: RequestTable.empty<true>(), early: RequestTable.empty<RemoteRef | null>(), fenced: [], abandoned: [], finished: FinishedRecords.empty() }),
  initial: 'open',
  states: {
    open: {
      meta: { description: 'answers the peer’s infos and fences for every request, known or not' } satisfies StateMeta,
      on: {
        INFO: [
          { guard: 'isFenced', actions: [] },
          { guard: 'isActive', actions: { type: 'forwardInfo', params: ({ event }) => ({ request: event.request, remote: event.remote ?? null }) } },
          // Finished here without a transfer: nothing will be sent — say so, the peer frees its slot on not-ready.
          { guard: 'finishedUnwritten', actions: { type: 'answerNotReady', params: ({ event }) => ({ request: event.request }) } },
          // Finished after creating a transfer: this info is a duplicate, the peer had its ready signal.
          // Not-ready now would be a false proof (M21: the peer frees blocks a write targeted).
          { guard: 'isFinished', actions: [] },
          // Not arrived yet (or forgotten): keep it for when the request starts.
          { actions: 'keepEarly' },
        ],
        FENCE: [
          { guard: 'isActive', actions: { type: 'forwardFence', params: ({ event }) => ({ request: event.request }) } },
          { guard: 'finishedQuiesced', actions: { type: 'ackFence', params: ({ event }) => ({ request: event.request }) } },
          // Finished without proof: never acknowledged (the peer retires the blocks).
          { guard: 'isFinished', actions: [] },
          // Not started: it never will start a transfer. Drop its info, remember the fence, acknowledge.
          { actions: ['dropEarly', 'tombstone', { type: 'ackFence', params: ({ event }) => ({ request: event.request }) }] },
        ],
        // The peer cancelled before asking: the request is resolved now (its contextSend, or when it starts).
        PEER_CANCEL: [
          { guard: 'isActive', actions: { type: 'forwardCancel', params: ({ event }) => ({ request: event.request }) } },
          { guard: 'isFinished', actions: [] },
          { actions: 'abandon' },
        ],
        REQUEST_STARTED: [
          { guard: 'isFenced', actions: ['activate', { type: 'forwardFence', params: ({ event }) => ({ request: event.request }) }] },
          {
            guard: 'hasEarly',
            actions: ['activate', { type: 'forwardInfo', params: ({ context, event }) => ({ request: event.request, remote: context.early.get(event.request) ?? null }) }, 'dropEarly'],
          },
          { guard: 'isAbandoned', actions: ['activate', { type: 'forwardCancel', params: ({ event }) => ({ request: event.request }) }] },
          { actions: 'activate' },
        ],
        REQUEST_FINISHED: { actions: 'retire' },
        REQUEST_ENDED: [
          // Sending (its contextSend reports) or already reported: nothing to do.
          { guard: 'isActive', actions: [] },
          { guard: 'isFinished', actions: [] },
          { guard: 'hasEarly', actions: [{ type: 'answerNotReady', params: ({ event }) => ({ request: event.request }) }, 'dropEarly', 'retireUnstarted'] },
          { actions: 'retireUnstarted' },
        ],
        PEER_GONE: { actions: 'forgetEarly' },
      },
    },
  },
});

export const peerSessionIgnores: IgnorePolicy<PeerSessionEvent['type']> = {
  INFO: { where: [], why: 'handled everywhere' },
  FENCE: { where: [], why: 'handled everywhere' },
  PEER_CANCEL: { where: [], why: 'handled everywhere' },
  REQUEST_STARTED: { where: [], why: 'handled everywhere' },
  REQUEST_FINISHED: { where: [], why: 'handled everywhere' },
  REQUEST_ENDED: { where: [], why: 'handled everywhere' },
  PEER_GONE: { where: [], why: 'handled everywhere' },
};

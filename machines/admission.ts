import { assign, setup } from 'xstate';
import type { IgnorePolicy, StateMeta } from './common.js';
import { RequestQueue, RequestTable } from './common.js';

/**
 * A counted resource handed out first come, first served: KV blocks on either side (admission) and
 * the generation side's receive slots. One actor per server and resource. It decides who is granted
 * what and when; the server only performs the grant (allocates the blocks, sends SLOT_GRANTED).
 *
 * Holders are remembered, so a return is balanced by construction: a request returns what it holds,
 * once (a second return finds nothing and changes nothing — S9 without a counter anyone can reset).
 * They are a table keyed by request, so a step costs the same with 16 or 4,096 requests holding.
 */
export interface AdmissionInput {
  /** Units the resource has (blocks in the pool, receive slots). */
  capacity: number;
}

export interface AdmissionContext {
  free: number;
  /** Waiting requests in arrival order, with the units each needs (a persistent queue: see RequestQueue). */
  queue: RequestQueue<{ request: string; need: number }>;
  /** What each holding request holds (a persistent table: one step touches one entry, not all of them). */
  holders: RequestTable<number>;
}

export type AdmissionEvent =
  /** A request asks for `need` units (granted when they fit, in order). */
  | { type: 'WANT'; request: string; need: number }
  /** A waiting request no longer wants (cancelled while queued): it leaves the queue, so no late grant leaks. */
  | { type: 'WITHDRAW'; request: string }
  /** A holder gives its units back (blocks proved reusable, slot handed back). */
  | { type: 'RETURN'; request: string }
  /** Units leave the resource for good (retired blocks): the holder's units are not returned. */
  | { type: 'RETIRE'; request: string };

export const admissionMachine = setup({
  types: {
    input: {} as AdmissionInput,
    context: {} as AdmissionContext,
    events: {} as AdmissionEvent,
  },
  actions: {
    /** Engine: perform the grant (allocate the blocks / deliver SLOT_GRANTED) for the head of the queue. */
    grant: (_: unknown, _params: { request: string; need: number }) => {},
    grantHead: assign(({ context }) => {
      const head = context.queue.head();
      if (!head) return {};
      return { free: context.free - head.need, queue: context.queue.shift(), holders: context.holders.with(head.request, head.need) };
    }),
    enqueue: assign(({ context, event }) => {
      const e = event as { request: string; need: number };
      // A request asks once; a repeated WANT while queued or holding changes nothing.
      if (context.holders.has(e.request) || context.queue.has(e.request)) return {};
      return { queue: context.queue.push({ request: e.request, need: e.need }) };
    }),
    dequeue: assign(({ context, event }) => {
      const r = (event as { request: string }).request;
      // Most WITHDRAWs find nothing queued (the request was granted long ago): keep the same queue then.
      return context.queue.has(r) ? { queue: context.queue.without(r) } : {};
    }),
    giveBack: assign(({ context, event }) => {
      const r = (event as { request: string }).request;
      const need = context.holders.get(r);
      if (need === undefined) return {};
      return { free: context.free + need, holders: context.holders.without(r) };
    }),
    forget: assign(({ context, event }) => {
      const r = (event as { request: string }).request;
      return context.holders.has(r) ? { holders: context.holders.without(r) } : {};
    }),
  },
  guards: {
    headFits: ({ context }) => {
      const head = context.queue.head();
      return head !== undefined && head.need <= context.free;
    },
  },
}).createMachine({
  id: 'admission',
  context: ({ input }) => ({ free: input?.capacity ?? 1, queue: RequestQueue.empty<{ request: string; need: number }>(), holders: RequestTable.empty<number>() }),
  initial: 'serving',
  states: {
    serving: {
      meta: { description: 'grants the head of the queue whenever it fits; waits otherwise (a return or withdraw advances it)' } satisfies StateMeta,
      // Grant in order, as long as the head fits (an eventless loop: several grants in one step).
      always: {
        guard: 'headFits',
        actions: [{ type: 'grant', params: ({ context }) => ({ request: context.queue.head()!.request, need: context.queue.head()!.need }) }, 'grantHead'],
      },
      on: {
        WANT: { actions: 'enqueue' },
        WITHDRAW: { actions: 'dequeue' },
        RETURN: { actions: 'giveBack' },
        RETIRE: { actions: 'forget' },
      },
    },
  },
});

export const admissionIgnores: IgnorePolicy<AdmissionEvent['type']> = {
  WANT: { where: [], why: 'handled everywhere' },
  WITHDRAW: { where: [], why: 'handled everywhere' },
  RETURN: { where: [], why: 'handled everywhere' },
  RETIRE: { where: [], why: 'handled everywhere' },
};

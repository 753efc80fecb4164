import { assign, setup } from 'xstate';
import type { IgnorePolicy, StateMeta } from './common.js';

/**
 * The generation server's side of the fence protocol: a lease that asks to fence its request's peer
 * gets the fence sent and is confirmed when the peer acknowledges — or at once when the peer is known
 * dead (a dead process writes nothing). One actor per server.
 */
export interface FenceClientContext {
  alive: boolean;
  /** Requests fenced and not yet acknowledged. */
  pending: readonly string[];
}

export type FenceClientEvent =
  /** A lease asked to fence the peer for its request (blockLease's fencePeer). */
  | { type: 'FENCE_REQUEST'; request: string }
  /** Control message: the peer acknowledged a fence. */
  | { type: 'FENCE_ACK'; request: string }
  /** The lease stopped waiting for its fence (late proof, or the fence timed out): forget it. */
  | { type: 'FENCE_WITHDRAWN'; request: string }
  /** The peer's connection closed (process gone). */
  | { type: 'PEER_GONE' }
  /**
   * A new peer process connected (the old one died). Fences from now on go to it and wait for its
   * acknowledgement: a live peer may be writing, so it is never confirmed on its behalf.
   */
  | { type: 'PEER_CONNECTED' };

const req = ({ event }: { event: FenceClientEvent }) => (event as { request: string }).request;

export const fenceClientMachine = setup({
  types: { context: {} as FenceClientContext, events: {} as FenceClientEvent },
  actions: {
    /** Engine: send a fence for the request to the peer. */
    sendFence: (_: unknown, _params: { request: string }) => {},
    /** Engine: deliver FENCE_CONFIRMED to the request's lease. */
    confirmFence: (_: unknown, _params: { request: string }) => {},
    addPending: assign(({ context, event }) => ({ pending: context.pending.includes(req({ event })) ? context.pending : [...context.pending, req({ event })] })),
    dropPending: assign(({ context, event }) => ({ pending: context.pending.filter((p) => p !== req({ event })) })),
    popPending: assign(({ context }) => ({ pending: context.pending.slice(1) })),
    markGone: assign({ alive: false }),
    markAlive: assign({ alive: true }),
  },
  guards: {
    isPending: ({ context, event }) => context.pending.includes(req({ event })),
    alive: ({ context }) => context.alive,
    pendingAfterDeath: ({ context }) => !context.alive && context.pending.length > 0,
  },
}).createMachine({
  id: 'fenceClient',
  context: { alive: true, pending: [] },
  initial: 'open',
  states: {
    open: {
      meta: { description: 'fences sent wait for the peer’s acknowledgement; a dead peer confirms them all' } satisfies StateMeta,
      always: { guard: 'pendingAfterDeath', actions: [{ type: 'confirmFence', params: ({ context }) => ({ request: context.pending[0]! }) }, 'popPending'] },
      on: {
        FENCE_REQUEST: [
          { guard: 'alive', actions: ['addPending', { type: 'sendFence', params: ({ event }) => ({ request: event.request }) }] },
          { actions: { type: 'confirmFence', params: ({ event }) => ({ request: event.request }) } },
        ],
        // A duplicate or unsolicited ack confirms nothing.
        FENCE_ACK: { guard: 'isPending', actions: ['dropPending', { type: 'confirmFence', params: ({ event }) => ({ request: event.request }) }] },
        // Nobody waits for this fence any more; a late ack of it then confirms nothing.
        FENCE_WITHDRAWN: { guard: 'isPending', actions: 'dropPending' },
        PEER_GONE: { actions: 'markGone' },
        PEER_CONNECTED: { actions: 'markAlive' },
      },
    },
  },
});

export const fenceClientIgnores: IgnorePolicy<FenceClientEvent['type']> = {
  FENCE_REQUEST: { where: [], why: 'handled everywhere' },
  FENCE_ACK: { where: 'elsewhere', why: 'an ack for a fence not pending (duplicate, late) confirms nothing' },
  FENCE_WITHDRAWN: { where: 'elsewhere', why: 'a fence not pending (acknowledged already) has nothing to forget' },
  PEER_GONE: { where: [], why: 'handled everywhere' },
  PEER_CONNECTED: { where: [], why: 'handled everywhere' },
};

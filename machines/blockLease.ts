import { assign, setup } from 'xstate';
import type { IgnorePolicy, QuiescenceProof, StateMeta } from './common.js';
import { DEFAULT_DELAYS } from './common.js';

/**
 * A lease on a request's KV blocks in the block pool: free → allocated → exposed (advertised to a remote
 * writer, or read by an in-flight local transfer) → free again only with proof of quiescence; without
 * proof → quarantined, which ends with proof, or after a bounded age by fencing the peer, or — if even
 * the fence cannot be confirmed — by retiring the blocks from the pool for good (never by reusing them).
 */
export interface BlockLeaseInput {
  leaseId: string;
}

export interface BlockLeaseContext {
  leaseId: string;
  /** Bumped on every allocation; block contents carry it so a stale write or read is detectable. */
  epoch: number;
  /** The evidence the last release carried. */
  proof: QuiescenceProof | null;
  /**
   * The owner request's verified sync notification arrived while the lease was exposed (before its
   * release): its sender's transfers are terminal, so a release without proof of its own is not quarantined.
   */
  synced: boolean;
}

export type BlockLeaseEvent =
  | { type: 'ALLOCATE' }
  /** The blocks were advertised to a remote writer or handed to a transfer. */
  | { type: 'EXPOSE' }
  /** The owner is done with the blocks; `proof` is null when it cannot prove no write can still land. */
  | { type: 'RELEASE'; proof: QuiescenceProof | null }
  /** Proof arrived late for a quarantined lease (e.g. the sync notification, or a terminal status). */
  | { type: 'QUIESCENCE_PROOF'; proof: QuiescenceProof }
  /** The peer confirmed the fence: it holds no transfer that can still touch these blocks (or it is dead). */
  | { type: 'FENCE_CONFIRMED' }
  /** The sender said not-ready for the owner request: by contract no write was ever posted (late proof). */
  | { type: 'PEER_NOT_READY' }
  /** The owner request's sync notification arrived: its sender's transfers are terminal (late proof). */
  | { type: 'SYNC_VERIFIED'; ok: boolean };

/** Late proof ends a quarantine (or a fence in progress): the blocks are reusable. */
const releasedByProof = {
  target: 'free',
  actions: [
    { type: 'recordProof', params: ({ event }: { event: { type: 'QUIESCENCE_PROOF'; proof: QuiescenceProof } }) => ({ proof: event.proof }) },
    { type: 'quarantineReleased', params: ({ context }: { context: BlockLeaseContext }) => ({ leaseId: context.leaseId, by: 'proof' as const }) },
    { type: 'returnBlocks', params: ({ context }: { context: BlockLeaseContext }) => ({ leaseId: context.leaseId }) },
  ],
} as const;

/** The same late proof, when it comes as a peer message instead of a typed proof. */
const lateProof = (proof: QuiescenceProof) =>
  ({
    target: 'free',
    actions: [
      { type: 'recordProof', params: { proof } },
      { type: 'quarantineReleased', params: ({ context }: { context: BlockLeaseContext }) => ({ leaseId: context.leaseId, by: 'proof' as const }) },
      { type: 'returnBlocks', params: ({ context }: { context: BlockLeaseContext }) => ({ leaseId: context.leaseId }) },
    ],
  }) as const;
const leaseIdOf = ({ context }: { context: BlockLeaseContext }) => ({ leaseId: context.leaseId });

/**
 * A lease that leaves `fencing` without the confirmation (late proof, or the fence timed out) withdraws
 * its fence: otherwise the fence client keeps the request pending for the life of the peer when the
 * fence or its acknowledgement was lost (M4, nothing held at rest).
 */
const withdrawFence = { type: 'withdrawFence', params: leaseIdOf } as const;
const thenWithdraw = <T extends { actions: readonly unknown[] }>(t: T) => ({ ...t, actions: [...t.actions, withdrawFence] }) as const;

export const blockLeaseMachine = setup({
  types: {
    input: {} as BlockLeaseInput,
    context: {} as BlockLeaseContext,
    events: {} as BlockLeaseEvent,
  },
  actions: {
    /** Engine metric: quarantine entered. */
    quarantineEntered: (_: unknown, _params: { leaseId: string }) => {},
    /** Engine metric: quarantine left with proof / by fence. */
    quarantineReleased: (_: unknown, _params: { leaseId: string; by: 'proof' | 'fence' }) => {},
    /** Engine: fence the peer (invalidate it; it must drain or be known dead), answered by FENCE_CONFIRMED. */
    fencePeer: (_: unknown, _params: { leaseId: string }) => {},
    /** Engine: the lease's blocks go back to the pool's free list (and admission learns they are free). */
    returnBlocks: (_: unknown, _params: { leaseId: string }) => {},
    /** Engine: the blocks leave the pool for good; the pool reports itself unhealthy (L5). */
    retireBlocks: (_: unknown, _params: { leaseId: string }) => {},
    /** Engine: the lease no longer waits for the fence it asked for (the peer's answer, if any, confirms nothing). */
    withdrawFence: (_: unknown, _params: { leaseId: string }) => {},
    bumpEpoch: assign(({ context }) => ({ epoch: context.epoch + 1, proof: null, synced: false })),
    noteSync: assign({ synced: true }),
    recordProof: assign((_, params: { proof: QuiescenceProof | null }) => ({ proof: params.proof })),
  },
  guards: {
    /** S5: reuse of advertised memory needs positive evidence that no write can still arrive. */
    hasQuiescenceProof: (_, params: { proof: QuiescenceProof | null }) => params.proof !== null,
    /** The sync notification verified every block of this allocation (ok): no stale or foreign bytes. */
    syncOk: (_, params: { ok: boolean }) => params.ok,
    sawSync: ({ context }) => context.synced,
  },
  delays: {
    quarantineMaxAge: DEFAULT_DELAYS.quarantineMaxAge,
    fenceTimeout: DEFAULT_DELAYS.fenceTimeout,
  },
}).createMachine({
  id: 'blockLease',
  context: ({ input }) => ({ leaseId: input?.leaseId ?? 'lease', epoch: 0, proof: null, synced: false }),
  initial: 'free',
  states: {
    free: {
      meta: { localProgress: ['ALLOCATE'], description: 'in the pool, reusable' } satisfies StateMeta,
      on: { ALLOCATE: { target: 'allocated', actions: 'bumpEpoch' } },
    },
    allocated: {
      meta: { localProgress: ['EXPOSE', 'RELEASE'], description: 'owned by a request, not yet visible to any transfer' } satisfies StateMeta,
      on: {
        EXPOSE: 'exposed',
        // Never advertised: nothing remote can write here.
        RELEASE: { target: 'free', actions: [{ type: 'recordProof', params: { proof: 'neverExposed' } }, { type: 'returnBlocks', params: leaseIdOf }] },
      },
    },
    exposed: {
      meta: { localProgress: ['RELEASE'], description: 'advertised to a remote writer / used by a transfer' } satisfies StateMeta,
      on: {
        EXPOSE: {},
        // The same late proof a quarantined lease takes, come before the release: remembered, not dropped
        // (the owner may have given up waiting, e.g. a user cancel, just before the notification came).
        SYNC_VERIFIED: { guard: { type: 'syncOk', params: ({ event }) => ({ ok: event.ok }) }, actions: 'noteSync' },
        RELEASE: [
          {
            guard: { type: 'hasQuiescenceProof', params: ({ event }) => ({ proof: event.proof }) },
            target: 'free',
            actions: [{ type: 'recordProof', params: ({ event }) => ({ proof: event.proof }) }, { type: 'returnBlocks', params: leaseIdOf }],
          },
          { guard: 'sawSync', target: 'free', actions: [{ type: 'recordProof', params: { proof: 'terminalAndSync' } }, { type: 'returnBlocks', params: leaseIdOf }] },
          { target: 'quarantined', actions: { type: 'quarantineEntered', params: ({ context }) => ({ leaseId: context.leaseId }) } },
        ],
      },
    },
    quarantined: {
      meta: { description: 'released without proof; never reused until proof or a confirmed fence' } satisfies StateMeta,
      on: {
        QUIESCENCE_PROOF: releasedByProof,
        PEER_NOT_READY: lateProof('notReadyBeforeWrite'),
        SYNC_VERIFIED: lateProof('terminalAndSync'),
      },
      after: { quarantineMaxAge: { target: 'fencing', actions: { type: 'fencePeer', params: ({ context }) => ({ leaseId: context.leaseId }) } } },
    },
    fencing: {
      meta: { description: 'the pool asked the peer to fence; waiting for its confirmation' } satisfies StateMeta,
      on: {
        QUIESCENCE_PROOF: thenWithdraw(releasedByProof),
        PEER_NOT_READY: thenWithdraw(lateProof('notReadyBeforeWrite')),
        SYNC_VERIFIED: thenWithdraw(lateProof('terminalAndSync')),
        FENCE_CONFIRMED: {
          target: 'free',
          actions: [
            { type: 'recordProof', params: { proof: 'peerFenced' } },
            { type: 'quarantineReleased', params: ({ context }) => ({ leaseId: context.leaseId, by: 'fence' as const }) },
            { type: 'returnBlocks', params: leaseIdOf },
          ],
        },
      },
      after: { fenceTimeout: { target: 'retired', actions: [{ type: 'retireBlocks', params: ({ context }) => ({ leaseId: context.leaseId }) }, withdrawFence] } },
    },
    /** Fail closed: the blocks leave the pool; the pool is unhealthy and the process should restart. */
    retired: { type: 'final', meta: { description: 'blocks left the pool for good (fail closed, counted)' } },
  },
});

export const blockLeaseIgnores: IgnorePolicy<BlockLeaseEvent['type']> = {
  ALLOCATE: { where: 'elsewhere', why: 'the pool allocates free leases only' },
  EXPOSE: { where: 'elsewhere', why: 'only an owned lease can be advertised' },
  RELEASE: { where: 'elsewhere', why: 'a lease is released once by its owner; later releases are refused by the pool' },
  QUIESCENCE_PROOF: { where: 'elsewhere', why: 'proof matters only to a lease waiting for it' },
  FENCE_CONFIRMED: { where: 'elsewhere', why: 'a fence confirmation matters only while fencing' },
  PEER_NOT_READY: { where: 'elsewhere', why: 'late proof matters only to a quarantined or fencing lease' },
  SYNC_VERIFIED: { where: 'elsewhere', why: 'proof matters only to an exposed lease (remembered for its release) or a quarantined or fencing one' },
};
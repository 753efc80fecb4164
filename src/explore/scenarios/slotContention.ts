import { blockLeaseMachine, generationReceiveMachine } from '../../../machines/index.js';
import type { Choice, ScenarioDefinition, WorldView } from '../world.js';
import { receiverLocalChoices, routeReceiveAction } from './generationTimeout.js';
import { settledLease } from './native.js';
import { fenceChoice, senderChoices, senderEnv, senderWriting } from './remotePeer.js';

/**
 * (d) Two requests contending for one receive slot (TensorRT-LLM's default pool of one): a slot that is
 * never handed back wedges every later receive. Each request has its own sender; the slot is a lease
 * that passes from one request to the other only through the pool.
 */
export function slotContentionScenario(): ScenarioDefinition {
  const reqs = ['r1', 'r2'] as const;
  const requestSettled = (w: WorldView, req: string) => w.done(`${req}.recv`);
  const isSettled = (w: WorldView) => reqs.every((r) => requestSettled(w, r)) && settledLease(w, 'pool.slot');
  return {
    name: 'slotContention',
    description: 'two requests contending for one receive slot (the slot-leak wedge)',
    machines: { recv: generationReceiveMachine, slot: blockLeaseMachine },
    initialEnv: {
      ...senderEnv('r1'),
      ...senderEnv('r2'),
      slotOwner: 'none',
      'r1.slotRequested': false,
      'r2.slotRequested': false,
      'r1.reports': 0,
      'r2.reports': 0,
      'r1.slotReleases': 0,
      'r2.slotReleases': 0,
      brokenPromise: false,
      fenceRequested: false,
    },
    start(w) {
      w.spawn('pool.slot', { leaseId: 'slot' });
      for (const r of reqs) w.spawn(`${r}.recv`, { requestId: r });
    },
    route(w, actor, a) {
      for (const r of reqs) if (actor === `${r}.recv`) return routeReceiveAction(w, r, 'pool.slot', a, { toLifecycle: false });
      if (a.type === 'fencePeer') w.env.fenceRequested = true;
    },
    choices(w) {
      const c: Choice[] = [];
      for (const r of reqs) {
        c.push(...receiverLocalChoices(w, r, 'pool.slot', `${r}.slotRequested`));
        // Channel reordering is explored in generationTimeout; here the contention is the point.
        c.push(...senderChoices(w, r, 'pool.slot', { readyCanBeOvertaken: false }));
      }
      const owner = String(w.env.slotOwner);
      if (owner !== 'none') c.push(...fenceChoice(w, owner, 'pool.slot'));
      return c;
    },
    isSettled,
    facts: {
      requests: [...reqs],
      leases: [
        {
          name: 'pool.slot',
          request: 'pool',
          ownerFinished: (w) => {
            const owner = String(w.env.slotOwner);
            return owner === 'none' || w.in(`${owner}.recv`, { worker: 'done' });
          },
          // Any sender that was given the slot and is still writing touches it.
          touched: (w) => reqs.some((r) => senderWriting(w, r)),
        },
      ],
      dataArrived: (w, req) => w.env[`${req}.sender`] === 'synced',
      requestSettled,
    },
  };
}

import type { Choice, WorldOps, WorldView } from '../world.js';

/**
 * The context-side sender of one request, seen from the generation side: after our request info it
 * answers ready (then writes into the advertised slot, then sends the sync notification) or not-ready
 * (before any write), or dies, or stays silent. `<req>.sender` in env:
 * idle → gotInfo → writing → written → synced, gotInfo → notReady, any → dead; a confirmed fence
 * (the sender invalidated our metadata and drained) → fenced, after which it can never write to us.
 */
export function senderChoices(w: WorldView, req: string, slot: string, opts: { readyCanBeOvertaken: boolean } = { readyCanBeOvertaken: true }): Choice[] {
  const c: Choice[] = [];
  const s = w.env[`${req}.sender`];
  const recv = `${req}.recv`;
  if (s === 'gotInfo') {
    // The ready signal goes out on the control channel and arrives later (or never): the data and its
    // sync notification, on the transfer's own channel, can overtake it.
    const send = (d: WorldOps, sender: string, msg: 'ready' | 'notReady') => {
      d.env[`${req}.sender`] = sender;
      d.env[`${req}.readyMsg`] = msg;
      if (!opts.readyCanBeOvertaken) deliverReady(d, req, slot);
    };
    c.push({ label: `peer ${req}: sends ready signal (data follows)`, kind: 'env', request: req, apply: (d) => send(d, 'writing', 'ready') });
    c.push({ label: `peer ${req}: sends not-ready signal (no data will be written)`, kind: 'env', request: req, apply: (d) => send(d, 'notReady', 'notReady') });
  }
  const msg = w.env[`${req}.readyMsg`];
  if (msg === 'ready' || msg === 'notReady') {
    c.push({ label: `network: ${msg === 'ready' ? 'ready' : 'not-ready'} signal of ${req} arrives`, kind: 'env', request: req, apply: (d) => deliverReady(d, req, slot) });
  }
  if (s === 'writing') {
    c.push({ label: `peer ${req}: last byte lands`, kind: 'env', request: req, apply: (d) => void (d.env[`${req}.sender`] = 'written') });
  }
  if (s === 'written') {
    c.push({
      label: `peer ${req}: sync notification`,
      kind: 'env',
      request: req,
      apply: (d) => {
        d.env[`${req}.sender`] = 'synced';
        if (d.in(recv, { worker: 'receiving' }) || d.in(recv, { worker: 'awaitingReady' })) d.send(recv, { type: 'SYNC_WAIT_ENDED', arrived: true });
        // A late notification is proof for a slot that was quarantined on its behalf.
        proveSlot(d, req, slot, 'terminalAndSync');
      },
    });
  }
  if (s === 'gotInfo' || s === 'writing' || s === 'written') {
    c.push({ label: `peer ${req}: process dies`, kind: 'env', request: req, apply: (d) => void (d.env[`${req}.sender`] = 'dead') });
  }
  if (w.in(recv, { worker: 'awaitingReady' })) {
    c.push({ label: `worker ${req}: ready-signal wait ends, nothing arrived`, kind: 'env', request: req, apply: (d) => d.send(recv, { type: 'READY_WAIT_ENDED' }) });
  }
  if (w.in(recv, { worker: 'receiving' })) {
    c.push({
      label: `worker ${req}: sync wait ends, nothing arrived`,
      kind: 'env',
      request: req,
      apply: (d) => d.send(recv, { type: 'SYNC_WAIT_ENDED', arrived: false }),
    });
  }
  return c;
}

/** The ready (or not-ready) signal in flight reaches the receiver. */
function deliverReady(d: WorldOps, req: string, slot: string): void {
  const msg = d.env[`${req}.readyMsg`];
  const recv = `${req}.recv`;
  d.env[`${req}.readyMsg`] = 'delivered';
  if (d.in(recv, { worker: 'awaitingReady' })) d.send(recv, { type: 'READY_SIGNAL', ready: msg === 'ready' });
  // A not-ready that arrives after the receiver gave up is still proof that nothing was written.
  else if (msg === 'notReady') proveSlot(d, req, slot, 'notReadyBeforeWrite');
}

function proveSlot(d: WorldOps, req: string, slot: string, proof: 'terminalAndSync' | 'notReadyBeforeWrite'): void {
  const owner = d.env.slotOwner;
  if ((owner === undefined || owner === req) && (d.in(slot, 'quarantined') || d.in(slot, 'fencing'))) d.send(slot, { type: 'QUIESCENCE_PROOF', proof });
}

/** The peer confirms a fence of the slot: it is not writing now and will never write to us again. */
export function fenceChoice(w: WorldView, req: string, slot: string): Choice[] {
  if (!w.env.fenceRequested || !w.in(slot, 'fencing') || senderWriting(w, req)) return [];
  return [
    {
      label: `peer ${req}: confirms fence`,
      kind: 'env',
      request: req,
      apply: (d) => {
        d.env[`${req}.sender`] = 'fenced';
        d.send(slot, { type: 'FENCE_CONFIRMED' });
      },
    },
  ];
}

/** A sender that can still write into the slot it was given. */
export function senderWriting(w: WorldView, req: string): boolean {
  return w.env[`${req}.sender`] === 'writing';
}

/** Sender env keys for one request. */
export function senderEnv(req: string): Record<string, string> {
  return { [`${req}.sender`]: 'idle', [`${req}.readyMsg`]: 'none' };
}

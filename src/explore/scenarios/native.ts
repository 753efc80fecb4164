import type { BackendSemantics } from '../../../machines/index.js';
import type { Choice, EmittedAction, WorldOps, WorldView } from '../world.js';

/**
 * The transfer backend as an environment, with the semantics measured for each kind:
 * - 'shm' (the embedded engine): an in-flight abort is confirmed; a release in flight is
 *   accepted, the engine finishes its current chunk and then reports quiescence.
 * - 'ucx' (NIXL over UCX): no abort; a release in flight is accepted at once while the data keeps
 *   landing, and nobody is ever told when it stops (no notification, no status).
 * - 'refusing' (NIXL with a backend that refuses): a release in flight is refused (REPOST_ACTIVE).
 *
 * env.xfer: idle → inflight → done | error | aborted; inflight → orphaned (released while moving
 * bytes) → orphanLanded. 'inflight' and 'orphaned' still touch the buffers.
 */
export type NativeBackend = 'shm' | 'ucx' | 'refusing';

export function touching(env: WorldView['env']): boolean {
  return env.xfer === 'inflight' || env.xfer === 'orphaned';
}

export function routeHandleAction(w: WorldOps, handle: string, a: EmittedAction, semantics: BackendSemantics): void {
  switch (a.type) {
    case 'postTransfer':
      // Posting an active handle is refused by the backend (REPOST_ACTIVE) and changes nothing.
      if (w.env.xfer === 'idle') w.env.xfer = 'inflight';
      return;
    case 'abortTransfer':
      w.env.abortRequested = true;
      return;
    case 'releaseHandle': {
      w.env.releases = Number(w.env.releases) + 1;
      if (w.env.released === true) w.env.doubleRelease = true;
      const inFlight = w.env.xfer === 'inflight';
      if (inFlight && w.env.backend === 'refusing') {
        return w.send(handle, { type: 'RELEASE_RESULT', accepted: false, quiesced: false });
      }
      w.env.released = true;
      if (inFlight) {
        // Release is not cancel: the bytes keep moving after an accepted release.
        w.env.xfer = 'orphaned';
        return w.send(handle, { type: 'RELEASE_RESULT', accepted: true, quiesced: semantics.releaseInFlightQuiesces });
      }
      return w.send(handle, { type: 'RELEASE_RESULT', accepted: true, quiesced: w.env.xfer !== 'orphaned' });
    }
  }
}

export function nativeChoices(w: WorldView, handle: string, lease: string, semantics: BackendSemantics): Choice[] {
  const c: Choice[] = [];
  const h = w.actor(handle);
  const waiting = h !== undefined && h.status === 'active' && (h.matches('inProgress') || h.matches('draining') || h.matches('releaseRefused'));
  if (w.env.xfer === 'inflight') {
    c.push({
      label: 'backend: transfer completes (status DONE)',
      kind: 'env',
      apply: (d) => {
        d.env.xfer = 'done';
        if (waiting) d.send(handle, { type: 'STATUS', status: 'DONE' });
      },
    });
    c.push({
      label: 'backend: transfer fails (status ERROR)',
      kind: 'env',
      apply: (d) => {
        d.env.xfer = 'error';
        if (waiting) d.send(handle, { type: 'STATUS', status: 'ERROR' });
      },
    });
    if (semantics.canAbortInFlight && w.env.abortRequested) {
      c.push({
        label: 'backend: abort confirmed',
        kind: 'env',
        apply: (d) => {
          d.env.xfer = 'aborted';
          if (waiting) d.send(handle, { type: 'ABORTED' });
        },
      });
    }
  }
  if (w.env.xfer === 'orphaned') {
    c.push({
      label: 'backend: released transfer stops writing',
      kind: 'env',
      apply: (d) => {
        d.env.xfer = 'orphanLanded';
        // Only an engine that tracks quiescence after release (shm) can tell anyone.
        if (d.env.backend === 'shm' && (d.in(lease, 'quarantined') || d.in(lease, 'fencing'))) {
          d.send(lease, { type: 'QUIESCENCE_PROOF', proof: 'abortConfirmed' });
        }
      },
    });
  }
  if (w.env.fenceRequested && w.in(lease, 'fencing') && !touching(w.env)) {
    c.push({ label: 'peer: confirms fence', kind: 'env', apply: (d) => d.send(lease, { type: 'FENCE_CONFIRMED' }) });
  }
  return c;
}

/** A lease at rest: back in the pool, or retired from it (fail-closed, counted). */
export function settledLease(w: WorldView, lease: string): boolean {
  return w.in(lease, 'free') || w.done(lease);
}

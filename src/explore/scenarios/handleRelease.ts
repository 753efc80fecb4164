import type { TransferHandleOutput } from '../../../machines/index.js';
import { blockLeaseMachine, transferHandleMachine } from '../../../machines/index.js';
import type { Choice, ScenarioDefinition, WorldView } from '../world.js';
import { backendSemantics } from './contextCancel.js';
import { nativeChoices, routeHandleAction, settledLease, touching, type NativeBackend } from './native.js';

/**
 * (c) Handle release: one transfer handle × its owner's cancel × the backend's real semantics
 * (abort-capable shm; NIXL over UCX, whose release in flight is not quiescent; a backend that refuses
 * release in flight), with the buffers it touches as a lease that the owner releases with the
 * handle's proof.
 */
export function handleReleaseScenario(backend: NativeBackend): ScenarioDefinition {
  const semantics = backendSemantics(backend);
  const isSettled = (w: WorldView) => w.done('h.handle') && settledLease(w, 'h.lease');
  return {
    name: `handleRelease/${backend}`,
    description: `handle release: transfer × cancel × backend semantics (${backend})`,
    machines: { handle: transferHandleMachine, lease: blockLeaseMachine },
    initialEnv: { backend, xfer: 'idle', abortRequested: false, releases: 0, released: false, doubleRelease: false, ownerCancelled: false, fenceRequested: false },
    start(w) {
      w.spawn('h.handle', { handleId: 'h', semantics });
      w.spawn('h.lease', { leaseId: 'h' });
      w.send('h.lease', { type: 'ALLOCATE' });
    },
    route(w, actor, a) {
      if (actor === 'h.handle') {
        if (a.type === 'postTransfer') w.send('h.lease', { type: 'EXPOSE' });
        return routeHandleAction(w, 'h.handle', a, semantics);
      }
      if (a.type === 'fencePeer') w.env.fenceRequested = true;
    },
    onDone(w, actor, output) {
      if (actor !== 'h.handle') return;
      const o = output as TransferHandleOutput;
      w.send('h.lease', { type: 'RELEASE', proof: o.quiesced ? 'terminalStatus' : null });
    },
    choices(w) {
      const c: Choice[] = [];
      if (w.in('h.handle', 'prepared')) c.push({ label: 'owner: post', kind: 'local', apply: (d) => d.send('h.handle', { type: 'POST' }) });
      if (!w.env.ownerCancelled && w.actor('h.handle')?.status === 'active') {
        c.push({ label: 'owner: cancel', kind: 'env', apply: (d) => ((d.env.ownerCancelled = true), d.send('h.handle', { type: 'CANCEL' })) });
      }
      c.push(...nativeChoices(w, 'h.handle', 'h.lease', semantics));
      return c;
    },
    isSettled,
    facts: {
      requests: ['h'],
      leases: [{ name: 'h.lease', request: 'h', ownerFinished: (w) => w.done('h.handle'), touched: (w) => touching(w.env) }],
      requestSettled: (w) => isSettled(w),
    },
  };
}

import type { EmittedAction, WorldOps } from '../explore/world.js';
import type { Agent, TransferHandle } from '../native/index.js';

/**
 * The engine side of the transferHandle machine: its named actions become native calls, and native
 * completions come back as events. Shared by the context server and by the test that replays explored
 * paths against the native layer.
 */
export interface NativeHandleBinding {
  agent: Agent;
  handle: TransferHandle;
  /** Set once the handle has been posted (abort means nothing before). */
  posted: boolean;
  /** Called after a completion was delivered (the executor loop may have work). */
  onEvent?(): void;
  /** Inject a failure right after post (fault 'fail'). */
  failAfterPost?: boolean;
  /**
   * How asynchronous native completions reach the actor; default: at once. Manual-progress replays
   * hold them until the explored path says the backend delivers them.
   */
  deliver?(actor: string, event: { type: 'STATUS'; status: 'DONE' | 'ERROR' } | { type: 'ABORTED' }): void;
}

export function routeNativeHandle(host: Pick<WorldOps, 'send'>, actor: string, a: EmittedAction, b: NativeHandleBinding): void {
  const h = b.handle;
  switch (a.type) {
    case 'postTransfer':
      h.post();
      b.posted = true;
      if (b.failAfterPost && b.agent.semantics.canAbortInFlight) h.abort();
      void h.whenTerminal().then((status) => {
        (b.deliver ?? ((x, e) => host.send(x, e)))(actor, { type: 'STATUS', status });
        b.onEvent?.();
      });
      return;
    case 'abortTransfer': {
      // Without abort the handle is only no longer wanted: status polling goes on to a terminal value.
      if (!b.agent.semantics.canAbortInFlight || !b.posted || h.released) return;
      const res = h.abort();
      if (res.aborted) {
        void h.whenQuiesced().then(() => {
          (b.deliver ?? ((x, e) => host.send(x, e)))(actor, { type: 'ABORTED' });
          b.onEvent?.();
        });
      }
      return;
    }
    case 'releaseHandle': {
      const res = h.release();
      host.send(actor, { type: 'RELEASE_RESULT', accepted: res.accepted, quiesced: res.quiesced });
      return;
    }
  }
}

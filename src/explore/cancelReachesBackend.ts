import type { ComposedState } from './composed.js';

/**
 * M24, a cancel reaches the backend: once the context side has sent a request's cancel to its transfer
 * side (a user's cancel or its own deadline: the lifecycle's `cancelSide`, counted by the world), every
 * native transfer of that request still posted has been asked to stop (the backend's abort, where it
 * has one; on UCX the same call stops wanting it). A cancel that never reaches the backend leaves the
 * transfer writing into the peer's memory and holding the link until it ends on its own — or, on a
 * peer that stopped answering, until a handle deadline. Ground truth: the world's cancel count and the
 * native transfers' `abortWanted` (the call the executor made), read in every world.
 */
export function cancelNotAsked(s: ComposedState): string | null {
  for (const [k, n] of Object.entries(s.cancelsSent)) {
    if (n === 0 || !k.startsWith('context:')) continue;
    const prefix = `c:${k.slice('context:'.length)}#`;
    for (const [x, t] of Object.entries(s.nat)) {
      if (x.startsWith(prefix) && t.phase === 'posted' && !t.released && !t.abortWanted) return `${k} was cancelled, but its native transfer ${x} is still posted and was never asked to stop`;
    }
  }
  return null;
}

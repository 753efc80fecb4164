import type { ComposedState } from './composed.js';

/**
 * M21, not-ready means nothing was written: the context side sends a request's not-ready signal only
 * when no native transfer of that request was ever created. The generation side takes not-ready as
 * proof that no write was posted (it frees its slot and its lease on it, with no fence); a not-ready
 * after a transfer was created is a false proof, however the transfer ended. This is the contract
 * between the sides that issue 9 names as unchecked. Ground truth: the control channel to the
 * generation side and the backend's native transfers (which the world never forgets), read at the step
 * that sends. A message only moves on a network step (delivered, duplicated, lost, reordered: never one
 * more of it in the channel), so a step after which the channel holds more not-ready signals of a
 * request than before is a step that sent one.
 */
export function notReadyAfterWrite(before: ComposedState, after: ComposedState): string | null {
  if (after.toGen.length === 0) return null;
  const count = (q: ComposedState['toGen'], r: string): number => {
    let n = 0;
    for (const m of q) if (m.t === 'ready' && !m.ready && m.id === r) n++;
    return n;
  };
  const seen = new Set<string>();
  for (const m of after.toGen) {
    if (m.t !== 'ready' || m.ready || seen.has(m.id)) continue;
    seen.add(m.id);
    if (count(after.toGen, m.id) <= count(before.toGen, m.id)) continue;
    const prefix = `c:${m.id}#`;
    const made = Object.keys(after.nat).filter((k) => k.startsWith(prefix));
    if (made.length > 0) return `context sent not-ready(${m.id}) after a native transfer of it was created (${made.join(', ')})`;
  }
  return null;
}

import type { ComposedState } from './composed.js';

/** The per-request actors whose end is their published future (contextSend, generationReceive) or their release (transfer handles). */
const ENDS_WITH_REQUEST = ['send', 'recv', 'handle'] as const;

/**
 * M22, every future settles: at rest (no step of the executors' own left), every transfer-side actor
 * of a request — the context side's sender, the generation side's receiver, every transfer handle —
 * has finished. One that has not holds a future the status checker polls every iteration and that
 * nothing will ever fulfil (or a handle nobody will release): the executor keeps it, and its entry,
 * for ever. M3 asks that the request's *lifecycle* reports an outcome, which a lifecycle deadline does
 * on its own; this asks that the future it reports for settled too. Ground truth: which actors the
 * servers still run (an actor is the executor's object, live until it finishes). Skipped while a
 * process is dead, as M4's rest conditions are (a dead process holds nothing, its peer waits on no one).
 */
export function unsettledFutures(s: ComposedState): string[] {
  if (s.dead.context || s.dead.generation) return [];
  const out: string[] = [];
  for (const [k, a] of Object.entries(s.actors)) {
    const role = k.slice(k.lastIndexOf('.') + 1);
    if ((ENDS_WITH_REQUEST as readonly string[]).includes(role) && a.status !== 'done') out.push(`${k} never finished (${JSON.stringify(a.value)})`);
  }
  return out;
}

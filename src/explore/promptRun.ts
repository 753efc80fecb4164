import type { Choice, ComposedState } from './composed.js';
import { ComposedWorld, stateKey } from './composed.js';
import { faultRecord, wrongOutcome } from './cancelledOutcome.js';
import { earlyCancelIgnored, earlyCancelRecord, workAfterCancel } from './cancelHonoured.js';
import { causeMismatch } from './failureCause.js';
import { neededDeadline } from './promptDeadline.js';
import { falseSuccess } from './reportedSuccess.js';

/**
 * M7, no spurious failure: in a prompt environment, the system fails closed only when a fault calls for it.
 *
 * The safety invariants (M1–M6) accept a system that fails closed — a failed request, or blocks retired
 * for good, harm no one's bytes. A system that fails closed when nothing calls for it is still broken.
 * This check explores every interleaving of the prompt runs: every step of the network, the backend and
 * the executors' loops is taken before any deadline is due (deadlines fire only when nothing else can
 * happen), and the faults that lose nothing (user cancels, transfer errors, duplicates, reordering,
 * within the scenario's bounds) may happen; losses and process deaths do not. Every such run must end:
 * - with nothing held (the M4 rest conditions), no generation block retired, and an outcome on both sides
 *   for every request (a prompt peer answers every fence and every question, so no wait must time out);
 * - when no fault happened at all, with every request reported completed on both sides.
 *
 * Ground truth: the outcomes reported to users and the memory model's block owners, not machine flags.
 */

/** Choices that inject a fault that loses nothing: allowed in prompt runs, and they excuse a failed outcome. */
const BENIGN_FAULT = /^user: cancel | ERROR$|: deliver .* and keep a duplicate$|: deliver .* ahead of \d+ older$/;
/** Choices that lose a message or a process: never taken in prompt runs. */
const LOSSY_FAULT = /: lose | process dies$|^notif: sync of .* lost$/;

export function isFault(c: Pick<Choice, 'label'>): boolean {
  return BENIGN_FAULT.test(c.label) || LOSSY_FAULT.test(c.label);
}

export interface PromptRunResult {
  /** Worlds of the fault-free prompt runs explored. */
  states: number;
  /** The search stopped at the budget: no verdict on the rest. */
  truncated: boolean;
  /** M7 (a spurious failure at a run's end) or M8 (a false success on the way). */
  violation: { invariant: 'M7' | 'M8' | 'M10' | 'M11' | 'M12' | 'M13'; message: string; path: string[] } | null;
}

/** A fault history with one more fault: a sorted set, comma-separated. */
function addFault(faults: string, f: string): string {
  if (faults === '') return f;
  const all = faults.split(',');
  return all.includes(f) ? faults : [...all, f].sort().join(',');
}

/**
 * The prompt steps of a world, applied: every non-deadline step that loses nothing, or the due deadlines
 * when there is none. A step that leaves the world exactly as it was (same state key: a poll of a future
 * that stays as it is, an event every actor ignores) does not hold time back: an executor can repeat it
 * for ever while the deadlines come due, so a world where only such steps remain is treated as one with
 * none (its deadlines are offered; without any, the run has ended). Without this, a machine that keeps
 * answering a poll with the same nothing would never let a prompt run end or a deadline fire, and the
 * end checks (M7, M10, M13) and M11 would never see that run.
 */
function promptSteps(world: ComposedWorld, s: ComposedState, here: string): Array<{ c: Choice; n: ComposedState; key: string }> {
  const cs = world.choices(s).filter((c) => !LOSSY_FAULT.test(c.label));
  const now: Array<{ c: Choice; n: ComposedState; key: string }> = [];
  for (const c of cs) {
    if (c.label.startsWith('deadline ')) continue;
    const n = world.apply(s, c).next;
    const key = stateKey(n);
    if (n.violation || key !== here) now.push({ c, n, key });
  }
  if (now.length > 0) return now;
  return cs
    .filter((c) => c.label.startsWith('deadline '))
    .map((c) => {
      const n = world.apply(s, c).next;
      return { c, n, key: stateKey(n) };
    });
}

/** What is wrong with a world where a prompt run ended (no step left), or []. */
export function spuriousEnd(world: ComposedWorld, s: ComposedState, faulted: boolean): string[] {
  const p: string[] = [];
  for (const side of ['context', 'generation'] as const) {
    for (const r of world.requests) {
      const rep = s.reports[`${side}:${r}`];
      if (rep && rep.outcome !== 'completed' && !faulted) p.push(`${side} ${r} ended ${rep.outcome}`);
    }
  }
  s.blocks.forEach((b, i) => {
    if (b.owner === 'retired') p.push(`generation block ${i} retired`);
  });
  p.push(...world.restProblems(s, true));
  return p;
}

/**
 * Depth first, so that a search cut at `maxStates` still reaches (and checks) the ends of the runs it
 * explored; a breadth-first cut would stop before any run ends. Counterexample paths are therefore not
 * the shortest.
 */
export function checkPromptRun(world: ComposedWorld, maxStates = 50_000): PromptRunResult {
  const s0 = world.initial();
  // A world is seen once per fault history (the set of faults taken so far, as faultRecord writes them):
  // the end checks differ. M7 needs only whether there was one; M10 which cancels, if only cancels.
  const keyOf = (stateKeyOfS: string, faults: string) => `${faults}|${stateKeyOfS}`;
  const keys = new Map<string, number>([[keyOf(stateKey(s0), ''), 0]]);
  const parent: number[] = [-1];
  const label: string[] = [''];
  const pathTo = (n: number, last?: string): string[] => {
    const out: string[] = last === undefined ? [] : [last];
    for (let i = n; parent[i]! >= 0; i = parent[i]!) out.push(label[i]!);
    return out.reverse();
  };
  const stack: Array<[ComposedState, number, string, string]> = [[s0, 0, '', stateKey(s0)]];
  let truncated = false;
  while (stack.length > 0) {
    {
      const [s, id, faults, here] = stack.pop()!;
      const cs = promptSteps(world, s, here);
      if (cs.length === 0) {
        const faulted = faults !== '';
        const problems = spuriousEnd(world, s, faulted);
        const how = faulted ? 'with only faults that lose nothing (cancels, transfer errors, duplicates, reordering)' : 'with no fault';
        if (problems.length > 0) return { states: keys.size, truncated, violation: { invariant: 'M7', message: `${how} and a prompt network, the run ends with: ${problems.join('; ')}`, path: pathTo(id) } };
        // M10 (src/explore/cancelledOutcome.ts): after user cancels alone, the right outcome.
        const all = faulted ? faults.split(',') : [];
        const cancels = all.filter((f) => !f.startsWith('early '));
        const wrong = wrongOutcome(world, s, cancels);
        if (wrong.length > 0) return { states: keys.size, truncated, violation: { invariant: 'M10', message: `with only user cancels (${cancels.join(',')}) and a prompt network, the run ends with: ${wrong.join('; ')}`, path: pathTo(id) } };
        // M13 (src/explore/cancelHonoured.ts): a cancel made before any transfer existed is not ignored.
        const ignored = earlyCancelIgnored(s, all);
        if (ignored.length > 0) return { states: keys.size, truncated, violation: { invariant: 'M13', message: `with a prompt network (faults: ${faults}), the run ends with: ${ignored.join('; ')}`, path: pathTo(id) } };
        continue;
      }
      for (const { c, n, key } of cs) {
        // M11 (src/explore/promptDeadline.ts): a fault-free prompt run never waits out a deadline.
        const waited = neededDeadline(faults, c);
        if (waited) return { states: keys.size, truncated, violation: { invariant: 'M11', message: waited, path: pathTo(id, c.label) } };
        // A safety violation on the way is the main search's to report; this check asks about outcomes.
        if (n.violation) continue;
        // M8 on the prompt runs too: they reach the ends that the main search's budget may not.
        const lie = falseSuccess(s, n, world.cfg.bounds.handlesPerRequest);
        if (lie) return { states: keys.size, truncated, violation: { invariant: 'M8', message: lie, path: pathTo(id, c.label) } };
        const uncaused = causeMismatch(s, n);
        if (uncaused) return { states: keys.size, truncated, violation: { invariant: 'M12', message: uncaused, path: pathTo(id, c.label) } };
        // M13 (src/explore/cancelHonoured.ts): nothing new starts for a request after its user cancelled it.
        const after = faults === '' ? null : workAfterCancel(s, n, faults.split(','));
        if (after) return { states: keys.size, truncated, violation: { invariant: 'M13', message: after, path: pathTo(id, c.label) } };
        let f = BENIGN_FAULT.test(c.label) ? addFault(faults, faultRecord(c.label)) : faults;
        const early = earlyCancelRecord(s, c.label);
        if (early) f = addFault(f, early);
        const k = keyOf(key, f);
        if (keys.has(k)) continue;
        if (keys.size >= maxStates) {
          truncated = true;
          continue;
        }
        keys.set(k, keys.size);
        parent.push(id);
        label.push(c.label);
        stack.push([n, keys.size - 1, f, key]);
      }
    }
  }
  return { states: keys.size, truncated, violation: null };
}

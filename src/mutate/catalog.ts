import type { AnyStateMachine } from 'xstate';
import * as machines from '../../machines/index.js';
import { REGRESSION_VARIANTS } from '../../machines/index.js';
import type { Mutant, MutantOptions } from './operators.js';
import { mutantsOf } from './operators.js';

/**
 * The production machines, found among machines/'s exports (so a machine file added there is mutated
 * without touching this list): every exported state machine that is not a regression variant.
 */
export function productionMachines(): AnyStateMachine[] {
  const regressions = new Set<unknown>(REGRESSION_VARIANTS.map((v) => v.machine));
  const byId = new Map<string, AnyStateMachine>();
  for (const value of Object.values(machines) as unknown[]) {
    if (!isMachine(value) || regressions.has(value) || value.id.includes('.')) continue;
    if (!byId.has(value.id)) byId.set(value.id, value);
  }
  return [...byId.values()].sort((a, b) => a.id.localeCompare(b.id));
}

function isMachine(x: unknown): x is AnyStateMachine {
  return typeof x === 'object' && x !== null && typeof (x as { id?: unknown }).id === 'string' && 'config' in x && 'root' in x && typeof (x as { transition?: unknown }).transition === 'function';
}

/**
 * Every mutant of the chosen machines, interleaved machine by machine so a run cut short by a limit or a
 * budget still covers each machine about evenly.
 */
export function allMutants(opts: MutantOptions & { machine?: string } = {}): Mutant[] {
  const chosen = productionMachines().filter((m) => !opts.machine || m.id === opts.machine);
  const lists = chosen.map((m) => mutantsOf(m, opts));
  const out: Mutant[] = [];
  for (let i = 0; lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length) out.push(l[i]!);
  return out;
}

/** The mutant of that exact name (tests and tools that re-run one); throws when there is none. */
export function mutantNamed(name: string): Mutant {
  const m = allMutants().find((x) => x.name === name);
  if (!m) throw new Error(`no mutant ${name}`);
  return m;
}

/** `n` mutants spread evenly over the list (deterministic), for `--limit`. */
export function spread<T>(list: readonly T[], n: number): T[] {
  if (n >= list.length) return [...list];
  return Array.from({ length: n }, (_, i) => list[Math.floor((i * list.length) / n)]!);
}

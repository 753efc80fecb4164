import { createMachine } from 'xstate';
import type { AnyStateMachine } from 'xstate';

/**
 * Mechanical mutation operators over a machine's definition (`machine.config`). Each mutant is the
 * same config with one small edit, rebuilt with the machine's own implementations, so a mutant differs
 * from production only where its name says. The enumeration walks states, then triggers, then branches,
 * then actions in definition order, so names and order are stable across runs.
 */

export type MutationOperator = 'drop-action' | 'swap-actions' | 'retarget' | 'drop-guard' | 'remove-branch' | 'drop-deadline';

/** Where a mutation applies: a state (path from the root, '' for the root) and what fires there. */
export interface MutationSite {
  /** Dotted state path from the root ('' = the root node). */
  state: string;
  /** 'on EVENT', 'after DELAY', 'always', 'entry' or 'exit'. */
  trigger: string;
  /** The event the machine receives when this site fires (for 'on' and 'after'); null for entry/exit/always. */
  event: { kind: 'on'; type: string } | { kind: 'after'; delay: string } | null;
  /** Index of the branch among the trigger's branches; null for entry/exit lists. */
  branch: number | null;
}

export interface Mutant {
  /** Stable, human-readable, unique per machine, e.g. `contextSend: drop action signalPeer in sender.unwinding.signal WORKER_STEP`. */
  name: string;
  machineId: string;
  operator: MutationOperator;
  site: MutationSite;
  /** The action names the edit touches (dropped or swapped), for reasons computed later. */
  actions: string[];
  /** Builds the mutated machine (same id, same implementations). */
  build(): AnyStateMachine;
}

type Config = Record<string, unknown>;
type TransitionConfig = string | Config;

/** The readable name of an action or guard reference in a config. */
export function refName(ref: unknown): string {
  if (typeof ref === 'string') return ref;
  if (typeof ref === 'function') {
    const t = (ref as { type?: unknown }).type;
    return t === 'xstate.assign' ? 'assign' : typeof t === 'string' ? t.replace(/^xstate\./, '') : 'inline';
  }
  if (ref && typeof ref === 'object' && typeof (ref as { type?: unknown }).type === 'string') return (ref as { type: string }).type;
  return 'inline';
}

const asList = <T>(x: T | readonly T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? [...x] : [x as T]);

/** Copy-on-write edit of the state node at `path` (the config's nested objects are shared, e.g. spread sub-configs). */
function editAt(node: Config, path: string[], update: (node: Config) => Config): Config {
  if (path.length === 0) return update({ ...node });
  const [head, ...rest] = path;
  const states = node.states as Record<string, Config>;
  return { ...node, states: { ...states, [head!]: editAt(states[head!]!, rest, update) } };
}

function nodeAt(root: Config, path: string[]): Config {
  let n = root;
  for (const p of path) n = (n.states as Record<string, Config>)[p]!;
  return n;
}

const pathName = (path: string[]): string => (path.length === 0 ? '(root)' : path.join('.'));

/** A transition branch as an object (a bare string is a target). */
const branchObject = (t: TransitionConfig): Config => (typeof t === 'string' ? { target: t } : t);

/**
 * The state a target names, as (parent path, child name, rebuild(child)): a `#machine.a.b` target is
 * absolute, `.x` is a child of the source, anything else is a sibling path of the source.
 */
function resolveTarget(machineId: string, source: string[], target: string): { parent: string[]; leaf: string; rebuild: (leaf: string) => string } | null {
  if (target.startsWith('#')) {
    const prefix = `#${machineId}.`;
    if (!target.startsWith(prefix)) return null;
    const parts = target.slice(prefix.length).split('.');
    const leaf = parts.pop()!;
    return { parent: parts, leaf, rebuild: (l) => `${prefix}${[...parts, l].join('.')}` };
  }
  if (target.startsWith('.')) {
    const parts = target.slice(1).split('.');
    const leaf = parts.pop()!;
    return { parent: [...source, ...parts], leaf, rebuild: (l) => `.${[...parts, l].join('.')}` };
  }
  const parts = target.split('.');
  const leaf = parts.pop()!;
  return { parent: [...source.slice(0, -1), ...parts], leaf, rebuild: (l) => [...parts, l].join('.') };
}

interface Trigger {
  trigger: string;
  event: MutationSite['event'];
  get: (n: Config) => unknown;
  put: (n: Config, v: unknown) => Config;
  del: (n: Config) => Config;
}

interface Draft {
  operator: MutationOperator;
  site: MutationSite;
  what: string;
  actions: string[];
  edit: (root: Config) => Config;
}

export interface MutantOptions {
  /**
   * Retarget each transition to every sibling of its target instead of one (the next sibling in
   * definition order). Every sibling multiplies the mutant count about fourfold for little extra signal.
   */
  allTargets?: boolean;
}

/** All mutants of one machine, in a stable order. */
export function mutantsOf(machine: AnyStateMachine, opts: MutantOptions = {}): Mutant[] {
  const root = machine.config as Config;
  const id = machine.id;
  const drafts: Draft[] = [];

  const visit = (path: string[]): void => {
    const node = nodeAt(root, path);
    const where = pathName(path);

    // Entry and exit lists: drop or swap their actions.
    for (const key of ['entry', 'exit'] as const) {
      const list = asList(node[key]);
      const site: MutationSite = { state: path.join('.'), trigger: key, event: null, branch: null };
      const set = (next: unknown[]) => (r: Config) => editAt(r, path, (n) => ({ ...n, [key]: next }));
      list.forEach((a, i) => drafts.push({ operator: 'drop-action', site, what: `drop action ${refName(a)} in ${where} ${key}`, actions: [refName(a)], edit: set(list.filter((_, j) => j !== i)) }));
      for (let i = 0; i + 1 < list.length; i++) {
        const swapped = [...list];
        [swapped[i], swapped[i + 1]] = [swapped[i + 1], swapped[i]];
        drafts.push({ operator: 'swap-actions', site, what: `swap actions ${refName(list[i])},${refName(list[i + 1])} in ${where} ${key}`, actions: [refName(list[i]), refName(list[i + 1])], edit: set(swapped) });
      }
    }

    // Transitions: `on`, `after`, `always`.
    const triggers: Trigger[] = [];
    const on = (node.on ?? {}) as Record<string, unknown>;
    for (const ev of Object.keys(on)) {
      triggers.push({
        trigger: ev,
        event: { kind: 'on', type: ev },
        get: (n) => (n.on as Config)[ev],
        put: (n, v) => ({ ...n, on: { ...(n.on as Config), [ev]: v } }),
        del: (n) => {
          const { [ev]: _gone, ...rest } = n.on as Config;
          return { ...n, on: rest };
        },
      });
    }
    const after = (node.after ?? {}) as Record<string, unknown>;
    for (const delay of Object.keys(after)) {
      const t: Trigger = {
        trigger: `after ${delay}`,
        event: { kind: 'after', delay },
        get: (n) => (n.after as Config)[delay],
        put: (n, v) => ({ ...n, after: { ...(n.after as Config), [delay]: v } }),
        del: (n) => {
          const { [delay]: _gone, ...rest } = n.after as Config;
          return Object.keys(rest).length === 0 ? (({ after: _a, ...n2 }) => n2)(n) : { ...n, after: rest };
        },
      };
      triggers.push(t);
      drafts.push({
        operator: 'drop-deadline',
        site: { state: path.join('.'), trigger: `after ${delay}`, event: { kind: 'after', delay }, branch: null },
        what: `drop deadline ${delay} in ${where}`,
        actions: [],
        edit: (r) => editAt(r, path, t.del),
      });
    }
    if (node.always !== undefined) {
      triggers.push({ trigger: 'always', event: null, get: (n) => n.always, put: (n, v) => ({ ...n, always: v }), del: (n) => (({ always: _a, ...n2 }) => n2)(n) });
    }

    for (const t of triggers) {
      const raw = t.get(node);
      const isList = Array.isArray(raw);
      const branches = asList(raw as TransitionConfig | TransitionConfig[]);
      const many = branches.length > 1;
      branches.forEach((b, bi) => {
        if (b === undefined || b === null) return;
        const site: MutationSite = { state: path.join('.'), trigger: t.trigger, event: t.event, branch: bi };
        const label = `${where} ${t.trigger}${many ? `[${bi}]` : ''}`;
        const obj = branchObject(b as TransitionConfig);
        const replace = (next: Config | null) => (r: Config) =>
          editAt(r, path, (n) => {
            const list = asList(t.get(n) as TransitionConfig | TransitionConfig[]);
            const out = next === null ? list.filter((_, j) => j !== bi) : list.map((x, j) => (j === bi ? next : x));
            if (out.length === 0) return t.del(n);
            return t.put(n, isList || out.length > 1 ? out : out[0]);
          });

        const acts = asList(obj.actions as unknown);
        acts.forEach((a, i) => drafts.push({ operator: 'drop-action', site, what: `drop action ${refName(a)} in ${label}`, actions: [refName(a)], edit: replace({ ...obj, actions: acts.filter((_, j) => j !== i) }) }));
        for (let i = 0; i + 1 < acts.length; i++) {
          const swapped = [...acts];
          [swapped[i], swapped[i + 1]] = [swapped[i + 1], swapped[i]];
          drafts.push({ operator: 'swap-actions', site, what: `swap actions ${refName(acts[i])},${refName(acts[i + 1])} in ${label}`, actions: [refName(acts[i]), refName(acts[i + 1])], edit: replace({ ...obj, actions: swapped }) });
        }

        if (typeof obj.target === 'string') {
          const res = resolveTarget(id, path, obj.target);
          const parentNode = res && nodeAt(root, res.parent);
          if (res && parentNode?.states) {
            const names = Object.keys(parentNode.states as Config);
            const at = names.indexOf(res.leaf);
            const others = [...names.slice(at + 1), ...names.slice(0, Math.max(at, 0))];
            for (const sib of opts.allTargets ? others : others.slice(0, 1)) {
              drafts.push({ operator: 'retarget', site, what: `retarget ${label} ${res.leaf} → ${sib}`, actions: [], edit: replace({ ...obj, target: res.rebuild(sib) }) });
            }
          }
        }

        if (obj.guard !== undefined) {
          const { guard, ...unguarded } = obj;
          drafts.push({ operator: 'drop-guard', site, what: `drop guard ${refName(guard)} in ${label}`, actions: [], edit: replace(unguarded) });
          drafts.push({ operator: 'remove-branch', site, what: `remove branch ${refName(guard)} in ${label}`, actions: [], edit: replace(null) });
        }
      });
    }

    for (const child of Object.keys((node.states ?? {}) as Config)) visit([...path, child]);
  };
  visit([]);

  const seen = new Map<string, number>();
  return drafts.map((d) => {
    const base = `${id}: ${d.what}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const name = n === 1 ? base : `${base} #${n}`;
    let built: AnyStateMachine | null = null;
    return {
      name,
      machineId: id,
      operator: d.operator,
      site: d.site,
      actions: d.actions,
      build: () => (built ??= createMachine(d.edit(root) as never, machine.implementations as never) as unknown as AnyStateMachine),
    };
  });
}

import type { AnyStateMachine, AnyStateNode } from 'xstate';
import type { StateMeta } from '../../machines/index.js';

/**
 * A machine definition read back as data, by walking `machine.root` (`.states`, `.on`, `.after`,
 * `.always`, `.entry`, `.meta`, `.type`). Nothing here is written by hand: the docs tables are
 * renderings of this.
 */
export interface TransitionRow {
  /** The state the transition is declared on, relative to the root ('' for the root). */
  state: string;
  /** Event type; `after <delay>` for a deadline, `always` for an eventless transition. */
  event: string;
  guard: string | null;
  /** Relative target paths; empty when the transition stays (targetless). */
  targets: string[];
  actions: string[];
}

export interface StateRow {
  path: string;
  type: string;
  description: string | null;
  localProgress: string[];
  /** Deadlines declared on this node: delay name and target. */
  deadlines: Array<{ delay: string; targets: string[] }>;
  /** Entry actions declared by the machine (xstate's own delay bookkeeping excluded). */
  entry: string[];
  tags: string[];
}

export interface MachineModel {
  id: string;
  states: StateRow[];
  transitions: TransitionRow[];
  /** Every event type the machine handles somewhere (deadlines and eventless transitions excluded). */
  events: string[];
}

/** A node's path below the root, dot-joined ('' for the root). */
export function relPath(node: AnyStateNode): string {
  return node.path.join('.');
}

export function allNodes(machine: AnyStateMachine): AnyStateNode[] {
  const out: AnyStateNode[] = [];
  const visit = (n: AnyStateNode): void => {
    out.push(n);
    (Object.values(n.states) as AnyStateNode[]).forEach(visit);
  };
  visit(machine.root);
  return out;
}

type Fn = ((...args: unknown[]) => unknown) & { type?: string };

/** A readable name for one action as it appears in a definition. */
export function actionName(a: unknown): string | null {
  if (typeof a === 'string') return a;
  if (typeof a === 'function') {
    const t = (a as Fn).type;
    if (t === 'xstate.assign') return 'assign (inline)';
    if (t && t.startsWith('xstate.')) return null; // raise/cancel that xstate adds for `after`
    return '(inline function)';
  }
  if (a && typeof a === 'object' && 'type' in a) {
    const t = String((a as { type: unknown }).type);
    return t.startsWith('xstate.') ? null : t;
  }
  return '(unknown)';
}

export function guardName(g: unknown): string | null {
  if (g === undefined || g === null) return null;
  if (typeof g === 'string') return g;
  if (typeof g === 'function') return '(inline)';
  if (typeof g === 'object' && 'type' in g) return String((g as { type: unknown }).type);
  return '(unknown)';
}

interface TransitionLike {
  guard?: unknown;
  target?: AnyStateNode[] | undefined;
  actions?: readonly unknown[];
}

function row(state: string, event: string, t: TransitionLike): TransitionRow {
  return {
    state,
    event,
    guard: guardName(t.guard),
    targets: (t.target ?? []).map(relPath),
    actions: (t.actions ?? []).map(actionName).filter((x): x is string => x !== null),
  };
}

/** The transitions declared on one node, in definition order: events, then deadlines, then eventless. */
export function nodeTransitions(node: AnyStateNode): TransitionRow[] {
  const state = relPath(node);
  const out: TransitionRow[] = [];
  for (const [event, ts] of Object.entries(node.on as Record<string, TransitionLike[]>)) {
    if (event.startsWith('xstate.after.')) continue;
    for (const t of ts) out.push(row(state, event, t));
  }
  for (const t of node.after as Array<TransitionLike & { delay: unknown }>) out.push(row(state, `after ${String(t.delay)}`, t));
  for (const t of (node.always ?? []) as TransitionLike[]) out.push(row(state, 'always', t));
  return out;
}

export function machineModel(machine: AnyStateMachine): MachineModel {
  const nodes = allNodes(machine);
  const states: StateRow[] = [];
  const transitions: TransitionRow[] = [];
  const events = new Set<string>();
  for (const n of nodes) {
    const meta = (n.meta ?? {}) as StateMeta;
    if (n !== machine.root) {
      states.push({
        path: relPath(n),
        type: n.type,
        description: meta.description ?? null,
        localProgress: [...(meta.localProgress ?? [])],
        deadlines: (n.after as Array<{ delay: unknown; target?: AnyStateNode[] }>).map((t) => ({ delay: String(t.delay), targets: (t.target ?? []).map(relPath) })),
        entry: (n.entry as unknown[]).map(actionName).filter((x): x is string => x !== null),
        tags: [...n.tags],
      });
    }
    for (const t of nodeTransitions(n)) {
      transitions.push(t);
      if (!t.event.startsWith('after ') && t.event !== 'always') events.add(t.event);
    }
  }
  return { id: machine.id, states, transitions, events: [...events] };
}

/** Named actions a machine's setup declares, split into engine effects and built-in context updates. */
export function namedActions(machine: AnyStateMachine): Array<{ name: string; kind: 'effect' | 'assign' }> {
  const actions = (machine.implementations.actions ?? {}) as Record<string, Fn>;
  return Object.entries(actions).map(([name, fn]) => ({ name, kind: fn?.type === 'xstate.assign' ? 'assign' : 'effect' }));
}

/** Where each named action is used: the states whose entry or transitions name it. */
export function actionUses(model: MachineModel): Map<string, Set<string>> {
  const uses = new Map<string, Set<string>>();
  const add = (action: string, where: string) => {
    if (!uses.has(action)) uses.set(action, new Set());
    uses.get(action)!.add(where || '(root)');
  };
  for (const s of model.states) for (const a of s.entry) add(a, `${s.path} (entry)`);
  for (const t of model.transitions) for (const a of t.actions) add(a, t.state);
  return uses;
}

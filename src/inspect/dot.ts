import type { AnyStateMachine, StateValue } from 'xstate';

/**
 * Graphviz DOT for an xstate v5 machine, built by walking `machine.root` (no hand-written model).
 *
 * Every element gets an explicit, stable `id` so the SVG can be matched against live snapshots:
 * - an atomic or final state's node and a compound or parallel state's cluster: the state node id
 *   (`transferHandle.inProgress`, `contextSend.sender.unwinding.signal`);
 * - the graph: `machine:<machineId>`; edges: `edge:<n>:<sourceStateId>` in walk order;
 * - pseudo nodes (initial markers, anchors, internal-transition notes): `<stateId>#initial` and so on.
 * Graphviz would otherwise invent `node1`, `clust1`…, which collide when several diagrams share a page.
 */

/** Minimal shapes of the StateNode / TransitionDefinition fields the walk reads. */
interface WalkNode {
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  states: Record<string, WalkNode>;
  transitions: Map<string, WalkTransition[]>;
  always?: WalkTransition[];
  initial?: { target: WalkNode[] };
}

interface WalkTransition {
  eventType: string;
  target?: readonly WalkNode[];
  guard?: unknown;
  actions: readonly unknown[];
  delay?: string | number;
}

export interface DotOptions {
  /** Graph direction; top-to-bottom reads best for these lifecycles. */
  rankdir?: 'TB' | 'LR';
  /** Show the named actions of each transition under its label. */
  actions?: boolean;
}

const FONT = 'Helvetica';

export function machineToDot(machine: AnyStateMachine, options: DotOptions = {}): string {
  const root = machine.root as unknown as WalkNode;
  const showActions = options.actions ?? true;
  const lines: string[] = [];
  const edges: string[] = [];
  let edgeNo = 0;

  lines.push(`digraph ${q(`machine:${machine.id}`)} {`);
  lines.push(`  id=${q(`machine:${machine.id}`)};`);
  lines.push(`  compound=true; rankdir=${options.rankdir ?? 'TB'}; newrank=true; nodesep=0.35; ranksep=0.45;`);
  lines.push(`  label=${q(machine.id)}; labelloc=t; fontname=${q(FONT)}; fontsize=16;`);
  lines.push(`  node [fontname=${q(FONT)}, fontsize=11, shape=box, style="rounded,filled", fillcolor="#ffffff", color="#455a64", penwidth=1.2, margin="0.12,0.05"];`);
  lines.push(`  edge [fontname=${q(FONT)}, fontsize=9, color="#607d8b", fontcolor="#37474f", arrowsize=0.7];`);

  /** The node an edge into or out of `n` attaches to, plus the cluster to clip at. */
  const anchor = (n: WalkNode): { node: string; cluster?: string } => {
    if (n.type === 'compound' || n.type === 'parallel') return { node: anchorId(n), cluster: clusterName(n) };
    return { node: n.id };
  };

  /** Draws `n`'s transitions as edges; returns its internal (targetless, with actions) transitions as text. */
  const emitTransitions = (n: WalkNode): string[] => {
    const all: WalkTransition[] = [];
    for (const ts of n.transitions.values()) all.push(...ts);
    all.push(...(n.always ?? []));
    const internal: string[] = [];
    for (const t of all) {
      const label = transitionLabel(t);
      const acts = showActions ? actionNames(t.actions) : [];
      if (!t.target || t.target.length === 0) {
        // Targetless: an internal transition (actions only) or an explicit "ignore" (nothing). Ignores are not drawn.
        if (acts.length > 0) internal.push(`${label} / ${acts.join(', ')}`);
        continue;
      }
      for (const target of t.target) {
        const from = anchor(n);
        const to = anchor(target);
        const attrs = [`id=${q(`edge:${edgeNo++}:${n.id}`)}`, `label=${edgeLabel(label, acts)}`];
        if (from.cluster && !isAncestor(n, target)) attrs.push(`ltail=${q(from.cluster)}`);
        if (to.cluster && !isAncestor(target, n)) attrs.push(`lhead=${q(to.cluster)}`);
        if (t.eventType.startsWith('xstate.after.')) attrs.push('style=dashed');
        if (t.eventType === '') attrs.push('style=bold');
        edges.push(`  ${q(from.node)} -> ${q(to.node)} [${attrs.join(', ')}];`);
      }
    }
    return internal;
  };

  const noteNode = (id: string, lines: string[], indent: string) =>
    `${indent}${q(`${id}#internal`)} [id=${q(`${id}#internal`)}, class="internal", shape=note, style="filled", fillcolor="#f5f5f5", color="#b0bec5", fontsize=9, label=${htmlLabel(lines.map(esc).join('<BR ALIGN="LEFT"/>') + '<BR ALIGN="LEFT"/>')}];`;

  const emitNode = (n: WalkNode, indent: string, parallelRegion: boolean, out: string[]) => {
    if (n.type === 'history') return;
    if (n.type === 'atomic' || n.type === 'final') {
      const internal = emitTransitions(n);
      // Internal transitions are listed inside the state's box, under its name.
      const label = internal.length === 0 ? q(n.key) : htmlLabel(`${esc(n.key)}<BR/><FONT POINT-SIZE="8" COLOR="#78909c">${internal.map(esc).join('<BR/>')}</FONT>`);
      const attrs = [`id=${q(n.id)}`, `class=${q(`state ${n.type}`)}`, `label=${label}`];
      if (n.type === 'final') attrs.push('peripheries=2');
      out.push(`${indent}${q(n.id)} [${attrs.join(', ')}];`);
      return;
    }
    out.push(`${indent}subgraph ${q(clusterName(n))} {`);
    const inner = `${indent}  `;
    const style = parallelRegion ? '"dashed,rounded"' : '"rounded"';
    out.push(`${inner}id=${q(n.id)}; class=${q(`state ${n.type}`)}; label=${q(n.type === 'parallel' ? `${n.key} ∥` : n.key)}; labeljust=l; style=${style}; color="#78909c"; fontsize=12;`);
    emitChildren(n, inner, out);
    const internal = emitTransitions(n);
    if (internal.length > 0) out.push(noteNode(n.id, internal, inner));
    out.push(`${indent}}`);
  };

  const emitChildren = (n: WalkNode, indent: string, out: string[]) => {
    const children = Object.values(n.states);
    if (n.type === 'compound') {
      // The initial marker doubles as the anchor for edges into or out of the whole compound state.
      out.push(`${indent}${q(anchorId(n))} [id=${q(anchorId(n))}, class="initial", shape=point, width=0.1, style=filled, fillcolor="#37474f", label=""];`);
      for (const t of n.initial?.target ?? []) {
        edges.push(`  ${q(anchorId(n))} -> ${q(anchor(t).node)} [id=${q(`${n.id}#initial->${t.id}`)}, arrowsize=0.5${anchor(t).cluster ? `, lhead=${q(anchor(t).cluster!)}` : ''}];`);
      }
    } else if (n.type === 'parallel') {
      out.push(`${indent}${q(anchorId(n))} [id=${q(anchorId(n))}, class="anchor", shape=point, width=0.01, style=invis, label=""];`);
    }
    for (const c of children) emitNode(c, indent, n.type === 'parallel', out);
  };

  if (root.type === 'parallel' || root.type === 'compound') {
    // The root is the graph itself: its children sit at the top level, with its initial marker.
    const body: string[] = [];
    if (root.type === 'compound') {
      body.push(`  ${q(anchorId(root))} [id=${q(anchorId(root))}, class="initial", shape=point, width=0.12, style=filled, fillcolor="#37474f", label=""];`);
      for (const t of root.initial?.target ?? []) edges.push(`  ${q(anchorId(root))} -> ${q(anchor(t).node)} [id=${q(`${root.id}#initial->${t.id}`)}, arrowsize=0.5${anchor(t).cluster ? `, lhead=${q(anchor(t).cluster!)}` : ''}];`);
    }
    for (const c of Object.values(root.states)) emitNode(c, '  ', root.type === 'parallel', body);
    // Root-level transitions (targetless in practice) become a note.
    const rootNotes: string[] = [];
    const all: WalkTransition[] = [];
    for (const ts of root.transitions.values()) all.push(...ts);
    for (const t of all) {
      const acts = actionNames(t.actions);
      if ((!t.target || t.target.length === 0) && acts.length > 0) rootNotes.push(`${transitionLabel(t)} / ${acts.join(', ')}`);
    }
    if (rootNotes.length > 0) body.push(noteNode(root.id, ['in every state:', ...rootNotes], '  '));
    lines.push(...body);
  } else {
    emitNode(root, '  ', false, lines);
  }
  lines.push(...edges);
  lines.push('}');
  return lines.join('\n') + '\n';
}

/** Every state node id of a machine (root excluded), in definition order. */
export function stateNodeIds(machine: AnyStateMachine): string[] {
  const out: string[] = [];
  const walk = (n: WalkNode) => {
    for (const c of Object.values(n.states)) {
      if (c.type === 'history') continue;
      out.push(c.id);
      walk(c);
    }
  };
  walk(machine.root as unknown as WalkNode);
  return out;
}

/**
 * The ids of the active state nodes for a snapshot value (every level, e.g. `requestLifecycle.GENERATION_COMPLETE`
 * and `requestLifecycle.GENERATION_COMPLETE.released`). Walks the machine when given one (custom state ids
 * stay right); otherwise joins keys under `rootId`.
 */
export function activeStateIds(machineOrRootId: AnyStateMachine | string, value: StateValue | null | undefined): string[] {
  const out: string[] = [];
  if (value === null || value === undefined) return out;
  const byMachine = typeof machineOrRootId !== 'string';
  const root = byMachine ? (machineOrRootId.root as unknown as WalkNode) : null;
  const walk = (node: WalkNode | null, prefix: string, v: StateValue) => {
    let entries: Array<[string, StateValue | undefined]> = typeof v === 'string' ? [[v, undefined]] : Object.entries(v);
    // Definition order, whatever order the value's keys arrived in (wire messages sort them).
    if (node && typeof v !== 'string') {
      const order = Object.keys(node.states);
      entries = entries.sort(([a], [b]) => order.indexOf(a) - order.indexOf(b));
    }
    for (const [key, sub] of entries) {
      const child = node?.states[key] ?? null;
      const id = child ? child.id : `${prefix}.${key}`;
      out.push(id);
      if (sub !== undefined && sub !== null) walk(child, id, sub);
    }
  };
  walk(root, byMachine ? machineOrRootId.id : machineOrRootId, value);
  return out;
}

function transitionLabel(t: WalkTransition): string {
  let label: string;
  if (t.eventType === '') label = 'always';
  else if (t.eventType.startsWith('xstate.after.')) label = `after ${typeof t.delay === 'number' ? `${t.delay} ms` : (t.delay ?? '?')}`;
  else label = t.eventType;
  const g = guardName(t.guard);
  return g ? `${label} [${g}]` : label;
}

function guardName(guard: unknown): string | null {
  if (guard === undefined || guard === null) return null;
  if (typeof guard === 'string') return guard;
  // Inline guard functions have no stable text (compilers reformat their source), so they get a fixed label.
  if (typeof guard === 'function') return 'inline';
  if (typeof guard === 'object' && typeof (guard as { type?: unknown }).type === 'string') return (guard as { type: string }).type;
  return 'guard';
}

/** Named, non-builtin actions (inline assigns and xstate internals are left out). */
function actionNames(actions: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const a of actions) {
    let name: string | null = null;
    if (typeof a === 'string') name = a;
    else if (a && typeof a === 'object' && typeof (a as { type?: unknown }).type === 'string') name = (a as { type: string }).type;
    if (name && !name.startsWith('xstate.')) out.push(name);
  }
  return out;
}

function edgeLabel(label: string, actions: string[]): string {
  if (actions.length === 0) return htmlLabel(esc(label));
  return htmlLabel(`${esc(label)}<BR/><FONT POINT-SIZE="8" COLOR="#78909c">/ ${esc(actions.join(', '))}</FONT>`);
}

function anchorId(n: WalkNode): string {
  return n.type === 'compound' ? `${n.id}#initial` : `${n.id}#anchor`;
}

function clusterName(n: WalkNode): string {
  return `cluster:${n.id}`;
}

function isAncestor(maybeAncestor: WalkNode, n: WalkNode): boolean {
  return n.id.startsWith(`${maybeAncestor.id}.`);
}

function q(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function htmlLabel(inner: string): string {
  return `<${inner}>`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

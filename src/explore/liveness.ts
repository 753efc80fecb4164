import type { AnyStateMachine, AnyStateNode } from 'xstate';
import type { StateMeta } from '../../machines/index.js';

/**
 * L1 (bounded or cancellable waits), checked on a machine's definition: every non-final atomic state
 * either has a deadline (`after`, on itself or an ancestor), resolves at once (`always`), or names the
 * local events that advance it and handles them.
 */
export interface WaitWithoutDeadline {
  machine: string;
  state: string;
  reason: string;
}

export function statesWithoutDeadline(machine: AnyStateMachine): WaitWithoutDeadline[] {
  const out: WaitWithoutDeadline[] = [];
  const visit = (node: AnyStateNode): void => {
    const children = Object.values(node.states) as AnyStateNode[];
    if (children.length > 0) {
      children.forEach(visit);
      return;
    }
    if (node.type === 'final' || node.type === 'history') return;
    const chain: AnyStateNode[] = [];
    for (let n: AnyStateNode | undefined = node; n; n = n.parent) chain.push(n);
    if (chain.some((n) => n.after.length > 0) || (node.always?.length ?? 0) > 0) return;
    const meta = node.meta as StateMeta | undefined;
    const local = meta?.localProgress ?? [];
    if (local.length === 0) {
      out.push({ machine: machine.id, state: node.id, reason: 'waits with neither a deadline nor a local event that advances it' });
      return;
    }
    const unhandled = local.filter((e) => !chain.some((n) => Object.prototype.hasOwnProperty.call(n.on, e)));
    if (unhandled.length > 0) out.push({ machine: machine.id, state: node.id, reason: `declares local progress by ${unhandled.join(', ')} but does not handle it` });
  };
  visit(machine.root);
  return out;
}

/** Every atomic state node id of a machine (for coverage). */
export function atomicStates(machine: AnyStateMachine): string[] {
  const out: string[] = [];
  const visit = (node: AnyStateNode): void => {
    const children = Object.values(node.states) as AnyStateNode[];
    if (children.length === 0) out.push(node.id);
    children.forEach(visit);
  };
  visit(machine.root);
  return out;
}

/** Every (atomic state, event type) pair a machine handles, inherited handlers included (for coverage). */
export function handledPairs(machine: AnyStateMachine): Array<{ state: string; event: string }> {
  const out: Array<{ state: string; event: string }> = [];
  const visit = (node: AnyStateNode): void => {
    const children = Object.values(node.states) as AnyStateNode[];
    if (children.length > 0) return children.forEach(visit);
    const seen = new Set<string>();
    for (let n: AnyStateNode | undefined = node; n; n = n.parent) for (const e of Object.keys(n.on)) seen.add(e);
    for (const e of seen) out.push({ state: node.id, event: e });
  };
  visit(machine.root);
  return out;
}

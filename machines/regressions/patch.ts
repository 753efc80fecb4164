import { createMachine } from 'xstate';
import type { AnyStateMachine } from 'xstate';

type Config = Record<string, unknown>;

/**
 * Derive a regression machine from a production machine by replacing a few state nodes' definitions.
 * The production machine stays the single source: a regression is a small, named diff of it, never a
 * second hand-written copy. `path` walks `states` (e.g. ['worker', 'receiving']).
 */
export function patchStates(machine: AnyStateMachine, id: string, patches: Array<{ path: string[]; update: (node: Config) => Config }>): AnyStateMachine {
  let config: Config = { ...(machine.config as Config), id };
  for (const { path, update } of patches) config = patchAt(config, path, update);
  return createMachine(config as never, machine.implementations as never) as unknown as AnyStateMachine;
}

function patchAt(node: Config, path: string[], update: (node: Config) => Config): Config {
  if (path.length === 0) return update({ ...node });
  const [head, ...rest] = path;
  const states = node.states as Record<string, Config> | undefined;
  if (!states || !states[head!]) throw new Error(`no state '${head}' to patch`);
  return { ...node, states: { ...states, [head!]: patchAt(states[head!]!, rest, update) } };
}

/**
 * Replace how generationReceive's `awaitingReady` handles an explicit not-ready signal (the last
 * READY_SIGNAL branch), keeping the ready branches as they are.
 */
export function onNotReady(transition: Config): { path: string[]; update: (node: Config) => Config } {
  return {
    path: ['worker', 'awaitingReady'],
    update: (node) => {
      const on = node.on as Record<string, unknown>;
      const ready = on.READY_SIGNAL as Config[];
      return { ...node, on: { ...on, READY_SIGNAL: [...ready.slice(0, -1), transition] } };
    },
  };
}

import type { ScenarioDefinition, WorldState } from './world.js';
import { enabledChoices } from './world.js';
import { ActorHost } from '../engine/host.js';

/**
 * The same scenario run on live xstate actors (the executor's ActorHost) instead of pure snapshots.
 * Replaying an explored path here and comparing after every step checks that what the explorer proved
 * holds for the actors the executor runs.
 */
export class LiveWorld extends ActorHost {
  constructor(readonly scenario: ScenarioDefinition) {
    super({
      machines: scenario.machines,
      route: (host, actor, action) => scenario.route(host, actor, action),
      onDone: scenario.onDone ? (host, actor, output) => scenario.onDone!(host, actor, output) : undefined,
      initialEnv: scenario.initialEnv,
    });
    scenario.start(this);
  }

  /** Apply the choice with this label, as the explorer would. */
  apply(label: string, pure: WorldState): void {
    // The pure world tells which choices exist (timers included); the live world carries them out.
    const choice = enabledChoices(this.scenario, pure).find((c) => c.label === label);
    if (!choice) throw new Error(`choice '${label}' is not enabled`);
    choice.apply(this);
  }

  stop(): void {
    this.stopAll();
  }
}

/** Differences between a pure world and a live one: actor states, contexts, statuses and the environment. */
export function diffWorlds(pure: WorldState, live: WorldState): string[] {
  const out: string[] = [];
  const names = new Set([...Object.keys(pure.actors), ...Object.keys(live.actors)]);
  for (const n of names) {
    const p = pure.actors[n];
    const l = live.actors[n];
    if (!p || !l) {
      out.push(`${n}: ${p ? 'missing in the live world' : 'missing in the explored world'}`);
      continue;
    }
    if (JSON.stringify(p.value) !== JSON.stringify(l.value)) out.push(`${n}: state ${JSON.stringify(l.value)}, explored ${JSON.stringify(p.value)}`);
    if (JSON.stringify(p.context) !== JSON.stringify(l.context)) out.push(`${n}: context ${JSON.stringify(l.context)}, explored ${JSON.stringify(p.context)}`);
    if (p.status !== l.status) out.push(`${n}: status ${l.status}, explored ${p.status}`);
  }
  if (JSON.stringify(pure.env) !== JSON.stringify(live.env)) out.push(`env ${JSON.stringify(live.env)}, explored ${JSON.stringify(pure.env)}`);
  return out;
}

import { fromTransition } from 'xstate';
import type { ScenarioDefinition, WorldState } from './world.js';
import { enabledChoices, initialWorld, step } from './world.js';

/** One explorer step, as the graph tools see it: the label of the choice taken. */
export interface ChoiceEvent {
  type: string;
}

/** The scenario as an xstate ActorLogic, so @xstate/graph can traverse it. */
export function worldLogic(scenario: ScenarioDefinition) {
  return fromTransition<WorldState, ChoiceEvent, never, undefined>((state, event) => step(scenario, state, event.type), () => initialWorld(scenario));
}

export function worldEvents(scenario: ScenarioDefinition) {
  return (snapshot: { context: WorldState }): ChoiceEvent[] => enabledChoices(scenario, snapshot.context).map((c) => ({ type: c.label }));
}

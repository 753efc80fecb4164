import type { AnyStateMachine } from 'xstate';
import type { RegressionVariant } from '../../machines/index.js';
import { REGRESSION_VARIANTS } from '../../machines/index.js';
import type { InvariantName } from './invariants.js';
import { contextCancelScenario } from './scenarios/contextCancel.js';
import { generationTimeoutScenario } from './scenarios/generationTimeout.js';
import { handleReleaseScenario } from './scenarios/handleRelease.js';
import { slotContentionScenario } from './scenarios/slotContention.js';
import type { ScenarioDefinition } from './world.js';
import { UsageError } from '../errors.js';

/** Every explored scenario, by name. Backends are part of the environment, so they are scenarios too. */
export const SCENARIOS: Record<string, () => ScenarioDefinition> = {
  'contextCancel/shm': () => ({ ...contextCancelScenario('shm'), name: 'contextCancel/shm' }),
  'contextCancel/ucx': () => ({ ...contextCancelScenario('ucx'), name: 'contextCancel/ucx' }),
  generationTimeout: generationTimeoutScenario,
  'handleRelease/shm': () => handleReleaseScenario('shm'),
  'handleRelease/ucx': () => handleReleaseScenario('ucx'),
  'handleRelease/refusing': () => handleReleaseScenario('refusing'),
  slotContention: slotContentionScenario,
};

/**
 * Where each regression variant is explored, and which invariants its counterexample must break.
 * A variant is only run in scenarios whose orderings can expose it.
 */
export const VARIANT_PLAN: Record<string, { scenarios: string[]; expect: InvariantName[]; alsoIn?: Record<string, InvariantName[]> }> = {
  v1: { scenarios: ['contextCancel/shm', 'contextCancel/ucx'], expect: ['S2'] },
  v2: { scenarios: ['contextCancel/shm', 'contextCancel/ucx'], expect: ['S3'] },
  queuedErase: { scenarios: ['generationTimeout', 'slotContention'], expect: ['S2'] },
  // L3 needs a cancel request; slotContention cancels only by deadline, so L3 and L4 are expected where a user cancels.
  refusedCancelLoopNoDeadline: { scenarios: ['generationTimeout', 'slotContention'], expect: ['L1', 'L2'], alsoIn: { generationTimeout: ['L3', 'L4'] } },
  freeOnCancel: {
    scenarios: ['contextCancel/shm', 'contextCancel/ucx', 'generationTimeout', 'handleRelease/shm', 'handleRelease/ucx', 'handleRelease/refusing', 'slotContention'],
    expect: ['S5'],
    alsoIn: { 'contextCancel/shm': ['S4'], 'contextCancel/ucx': ['S4'] },
  },
  notArrivedAsSuccess: { scenarios: ['generationTimeout', 'slotContention'], expect: ['S7'] },
  terminalOverwrite: { scenarios: ['generationTimeout'], expect: ['S8'] },
  notReadySlotLeak: { scenarios: ['generationTimeout', 'slotContention'], expect: ['S9', 'L5'] },
  releaseIsQuiescence: { scenarios: ['contextCancel/ucx', 'handleRelease/ucx', 'handleRelease/shm'], expect: ['S6'] },
  freeOnTerminal: { scenarios: ['contextCancel/ucx', 'generationTimeout'], expect: ['S1'] },
  workerSetsState: { scenarios: ['generationTimeout'], expect: ['S10'] },
};

/** The invariants a variant's counterexamples must break in one scenario. */
export function expectedViolations(variant: string, scenario: string): InvariantName[] {
  const plan = VARIANT_PLAN[variant];
  if (!plan) return [];
  return [...plan.expect, ...(plan.alsoIn?.[scenario] ?? [])];
}

export function variantByName(name: string): RegressionVariant {
  const v = REGRESSION_VARIANTS.find((x) => x.name === name && !x.composed);
  if (!v) throw new UsageError(`unknown variant '${name}'; known: ${REGRESSION_VARIANTS.map((x) => x.name).join(', ')}`);
  return v;
}

/** The scenario with every production machine the variant replaces swapped for the variant's. */
export function withVariant(sc: ScenarioDefinition, variant: RegressionVariant | null): ScenarioDefinition {
  if (!variant) return sc;
  const machines: Record<string, AnyStateMachine> = {};
  let replaced = 0;
  for (const [role, m] of Object.entries(sc.machines)) {
    if (m.id === variant.replaces) {
      machines[role] = variant.machine;
      replaced++;
    } else machines[role] = m;
  }
  if (replaced === 0) throw new Error(`variant ${variant.name} replaces ${variant.replaces}, which scenario ${sc.name} does not run`);
  return { ...sc, machines };
}

export interface Combination {
  scenario: string;
  variant: string;
}

/** All combinations, optionally filtered: every scenario shipped, plus each variant where planned. */
export function combinations(filter: { scenario?: string; variant?: string } = {}): Combination[] {
  const out: Combination[] = [];
  const scenarioOk = (s: string) => !filter.scenario || s === filter.scenario || s.startsWith(`${filter.scenario}/`);
  if (!filter.variant || filter.variant === 'shipped') for (const s of Object.keys(SCENARIOS)) if (scenarioOk(s)) out.push({ scenario: s, variant: 'shipped' });
  for (const [v, plan] of Object.entries(VARIANT_PLAN)) {
    if (filter.variant && filter.variant !== v) continue;
    for (const s of plan.scenarios) if (scenarioOk(s)) out.push({ scenario: s, variant: v });
  }
  if (filter.scenario && !Object.keys(SCENARIOS).some(scenarioOk)) throw new UsageError(`unknown scenario '${filter.scenario}'; known: ${Object.keys(SCENARIOS).join(', ')}`);
  if (filter.variant && filter.variant !== 'shipped') variantByName(filter.variant);
  return out;
}

export function scenarioFor(c: Combination): ScenarioDefinition {
  const make = SCENARIOS[c.scenario];
  if (!make) throw new UsageError(`unknown scenario '${c.scenario}'`);
  return withVariant(make(), c.variant === 'shipped' ? null : variantByName(c.variant));
}

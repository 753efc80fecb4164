import type { AnyStateMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import type { IgnorePolicy } from '../../machines/index.js';
import {
  admissionIgnores,
  admissionMachine,
  fenceClientIgnores,
  fenceClientMachine,
  peerSessionIgnores,
  peerSessionMachine,
  blockLeaseIgnores,
  blockLeaseMachine,
  contextSendIgnores,
  contextSendMachine,
  generationReceiveIgnores,
  generationReceiveMachine,
  requestLifecycleIgnores,
  requestLifecycleMachine,
  transferHandleIgnores,
  transferHandleMachine,
} from '../../machines/index.js';
import { atomicStates, handledPairs } from '../../src/explore/liveness.js';

/** Every (state, event) pair of every machine is handled, or deliberately ignored with a reason. */
const TABLES: Array<[AnyStateMachine, IgnorePolicy<string>]> = [
  [transferHandleMachine, transferHandleIgnores],
  [contextSendMachine, contextSendIgnores],
  [generationReceiveMachine, generationReceiveIgnores],
  [requestLifecycleMachine, requestLifecycleIgnores],
  [blockLeaseMachine, blockLeaseIgnores],
  [peerSessionMachine, peerSessionIgnores],
  [fenceClientMachine, fenceClientIgnores],
  [admissionMachine, admissionIgnores],
];

const local = (m: AnyStateMachine, id: string) => id.slice(m.id.length + 1);
const under = (state: string, prefix: string) => state === prefix || state.startsWith(`${prefix}.`);

describe('total transition table', () => {
  for (const [m, policy] of TABLES) {
    const handled = new Set(handledPairs(m).map((p) => `${local(m, p.state)} ${p.event}`));
    const states = atomicStates(m).map((s) => local(m, s));

    it(`${m.id}: every event it accepts is handled somewhere`, () => {
      for (const e of Object.keys(policy)) expect(states.some((s) => handled.has(`${s} ${e}`)), e).toBe(true);
    });

    it(`${m.id}: every (state, event) pair is handled or explicitly ignored`, () => {
      const unclassified: string[] = [];
      for (const s of states) {
        for (const [e, rule] of Object.entries(policy)) {
          if (handled.has(`${s} ${e}`)) continue;
          expect(rule.why.length, `${e} needs a reason`).toBeGreaterThan(10);
          if (rule.where === 'elsewhere' || rule.where.some((p) => under(s, p))) continue;
          unclassified.push(`${s} × ${e}`);
        }
      }
      expect(unclassified).toEqual([]);
    });

    it(`${m.id}: no ignore rule names a state that handles the event`, () => {
      const stale: string[] = [];
      for (const [e, rule] of Object.entries(policy)) {
        if (rule.where === 'elsewhere') continue;
        for (const p of rule.where) if (!states.some((s) => under(s, p) && !handled.has(`${s} ${e}`))) stale.push(`${p} × ${e}`);
      }
      expect(stale).toEqual([]);
    });
  }
});

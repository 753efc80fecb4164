import { describe, expect, it } from 'vitest';
import type { ComposedConfig, ComposedState } from '../../src/explore/composed.js';
import type { ComposedResult } from '../../src/explore/composedExplorer.js';
import { exploreComposed, replayComposed } from '../../src/explore/composedExplorer.js';
import { cancelNotAsked } from '../../src/explore/cancelReachesBackend.js';
import { untrueTransferFailure } from '../../src/explore/failureTruth.js';
import { unsettledFutures } from '../../src/explore/futureSettled.js';
import { INVARIANTS } from '../../src/explore/invariantCatalog.js';
import { notReadyAfterWrite } from '../../src/explore/signalContract.js';
import { allMutants } from '../../src/mutate/catalog.js';
import { scenarioSetup, withMachine } from '../../src/mutate/explore.js';

/**
 * The checks added for contextSend's survivors (sixth session): M21 (not-ready means nothing was
 * written), M22 (every future settles), M23 (a transfer failure names a transfer), M24 (a cancel
 * reaches the backend) and the composed S3 (design rule). The smallest footing, explored completely as the mutation runner does: the shipped
 * machines pass; each named mutant is caught there, and its path replays on the mutant and, clean, on
 * the original.
 */
const footing = scenarioSetup('footing/1x1-shm');
const explore = (cfg: ComposedConfig): ComposedResult => exploreComposed(cfg, { scenario: footing.name, variant: 'x' }, { maxStates: footing.maxStates, reduce: false, symmetry: false, walks: 0, promptRun: false });
const mutantCfg = (name: string): ComposedConfig => {
  const m = allMutants().find((x) => x.name === name);
  if (!m) throw new Error(`no mutant ${name}`);
  return withMachine(footing.cfg, m.build());
};

/**
 * The check of one step (M21, M23) or of the world a path ends in (M22; the original is not idle
 * there — its worker still has steps to take — so only the mutant's end is judged).
 */
type Judge = (before: ComposedState, after: ComposedState) => unknown;

function caught(name: string, invariant: string, judge?: Judge, judgesOriginal = true): { message: string; path: string[] } {
  const cfg = mutantCfg(name);
  const v = explore(cfg).violations.find((x) => x.invariant === invariant);
  expect(v, `${name} not caught by ${invariant}`).toBeDefined();
  // The path replays on the mutant to the step (or idle world) the check judges, and breaks it there;
  // the original takes the same steps and does not.
  const end = replayComposed(cfg, v!.path);
  expect(end.stuckAt).toBeNull();
  expect(end.steps).toBe(v!.path.length);
  const orig = replayComposed(footing.cfg, v!.path);
  expect(orig.stuckAt).toBeNull();
  expect(orig.violation).toBeNull();
  if (judge) {
    const prev = (c: ComposedConfig) => replayComposed(c, v!.path.slice(0, -1)).state;
    expect(judge(prev(cfg), end.state)).toBeTruthy();
    if (judgesOriginal) expect(judge(prev(footing.cfg), orig.state)).toBeFalsy();
  }
  return v!;
}

const state = (p: Partial<ComposedState>): ComposedState => ({ toGen: [], nat: {}, reports: {}, cancelsSent: {}, actors: {}, dead: { context: false, generation: false }, ...p }) as unknown as ComposedState;

describe('contextSend survivors: M21-M24 and the composed S3', { timeout: 600_000 }, () => {
  it('are in the catalog with their kinds', () => {
    for (const id of ['M21', 'M22', 'M23', 'M24']) expect(INVARIANTS.find((i) => i.id === id)).toMatchObject({ kind: 'consequence', scope: 'composed' });
    expect(INVARIANTS.find((i) => i.id === 'S3')).toMatchObject({ kind: 'design-rule', scope: 'composed' });
  });

  it('M21 and M23 judge the step that sends or reports; M22 what is still running; M24 what a cancel left posted', () => {
    const xfer = { 'c:r1#0.handle': {} } as unknown as ComposedState['nat'];
    const nr = { t: 'ready', id: 'r1', ready: false } as const;
    expect(notReadyAfterWrite(state({}), state({ toGen: [nr] }))).toBeNull();
    expect(notReadyAfterWrite(state({ nat: xfer }), state({ toGen: [nr], nat: xfer }))).toMatch(/^context sent not-ready\(r1\) after a native transfer/);
    // Already in the channel (a network step moved another message): not sent on this step.
    expect(notReadyAfterWrite(state({ toGen: [nr, { t: 'ready', id: 'r1', ready: true }], nat: xfer }), state({ toGen: [nr], nat: xfer }))).toBeNull();
    const failed = { 'context:r1': { n: 1, outcome: 'failed', reason: 'transferFailed' } };
    expect(untrueTransferFailure(state({}), state({ reports: failed }))).toMatch(/no native transfer of r1 was ever created/);
    expect(untrueTransferFailure(state({}), state({ reports: failed, nat: xfer }))).toBeNull();
    expect(untrueTransferFailure(state({}), state({ reports: { 'generation:r1': { n: 1, outcome: 'failed', reason: 'transferFailed' } } }))).toBeNull();
    const posted = (abortWanted: boolean) => ({ 'c:r1#0.handle': { phase: 'posted', released: false, abortWanted } }) as unknown as ComposedState['nat'];
    expect(cancelNotAsked(state({ cancelsSent: { 'context:r1': 1 }, nat: posted(false) }))).toMatch(/never asked to stop/);
    expect(cancelNotAsked(state({ cancelsSent: { 'context:r1': 1 }, nat: posted(true) }))).toBeNull();
    expect(cancelNotAsked(state({ cancelsSent: { 'generation:r1': 1 }, nat: posted(false) }))).toBeNull();
    const running = { 'c:r1.send': { status: 'active', value: { sender: 'finished', future: 'pending' } } } as unknown as ComposedState['actors'];
    expect(unsettledFutures(state({ actors: running }))).toEqual(['c:r1.send never finished ({"sender":"finished","future":"pending"})']);
    expect(unsettledFutures(state({ actors: running, dead: { context: false, generation: true } }))).toEqual([]);
  });

  it('the shipped machines pass all five on the complete footing', () => {
    const r = explore(footing.cfg);
    expect(r.truncated).toBe(false);
    expect(r.violations.filter((v) => ['M21', 'M22', 'M23', 'M24', 'S3'].includes(v.invariant))).toEqual([]);
  });

  it('M21 catches a settle dropped on the last failed handle (not-ready after the write was posted)', () => {
    const v = caught('contextSend: drop action settle in sender.sending TRANSFERS_SETTLED[1]', 'M21', notReadyAfterWrite);
    expect(v.message).toMatch(/^context sent not-ready\(r1\) after a native transfer of it was created/);
  });

  it('M22 catches a fence of a queued request that skips the unwinding (the future is never published)', () => {
    const v = caught('contextSend: retarget sender.queued FENCE unwinding → finished', 'M22', (_, after) => unsettledFutures(after).length > 0, false);
    expect(v.message).toMatch(/c:r1\.send never finished/);
  });

  it('M23 catches a fence of a queued request left undecided (reported as a failed transfer that never existed)', () => {
    const v = caught('contextSend: drop action decide in sender.queued FENCE', 'M23', untrueTransferFailure);
    expect(v.message).toBe("context:r1 reported failed with reason 'transferFailed', but no native transfer of r1 was ever created");
  });

  it('M24 catches a cancel that never asks the posted transfer to stop', () => {
    const v = caught('contextSend: drop action cancelTransfers in sender.sending CANCEL', 'M24', (_, after) => cancelNotAsked(after));
    expect(v.message).toMatch(/^context:r1 was cancelled, but its native transfer c:r1#0\.handle is still posted and was never asked to stop$/);
  });

  it('S3 catches a response never moved out of the ready map', () => {
    const v = caught('contextSend: drop action moveResponseOut in sender.unwinding.moveOut WORKER_STEP', 'S3');
    expect(v.message).toMatch(/future observed while the sender still holds inReadyMap/);
  });
});

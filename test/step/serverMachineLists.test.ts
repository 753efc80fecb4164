import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admissionMachine, peerSessionMachine, without } from '../../machines/index.js';

/**
 * The admission and peerSession machines keep lists in their contexts, and their assigns and guards
 * were rewritten as plain loops (fewer copies and closures per event, issue 11). These properties
 * check the rewritten functions against the definitions they replaced, copied here unchanged, on
 * arbitrary contexts: duplicates included, which the shipped machines never build but a mutant may.
 */
type Finished = { request: string; quiesced: boolean; wrote: boolean };
type Holder = { request: string; need: number };

const reference = {
  retire(ctx: { remember: number; active: string[]; fenced: string[]; abandoned: string[]; finished: Finished[] }, ev: { request: string; quiesced?: boolean; wrote?: boolean }) {
    const r = ev.request;
    let finished = [...ctx.finished.filter((f) => f.request !== r), { request: r, quiesced: ev.quiesced === true, wrote: ev.wrote !== false }];
    while (finished.length > ctx.remember) {
      const i = finished.findIndex((f) => f.quiesced);
      if (i < 0) break;
      finished = [...finished.slice(0, i), ...finished.slice(i + 1)];
    }
    return { active: ctx.active.filter((a) => a !== r), fenced: ctx.fenced.filter((f) => f !== r), abandoned: ctx.abandoned.filter((f) => f !== r), finished };
  },
  retireUnstarted(ctx: { remember: number; fenced: string[]; abandoned: string[]; finished: Finished[] }, ev: { request: string }) {
    const r = ev.request;
    let finished = [...ctx.finished, { request: r, quiesced: true, wrote: false }];
    while (finished.length > ctx.remember) {
      const i = finished.findIndex((f) => f.quiesced);
      if (i < 0) break;
      finished = [...finished.slice(0, i), ...finished.slice(i + 1)];
    }
    return { fenced: ctx.fenced.filter((f) => f !== r), abandoned: ctx.abandoned.filter((f) => f !== r), finished };
  },
  isFinished: (ctx: { finished: Finished[] }, r: string) => ctx.finished.some((f) => f.request === r),
  finishedQuiesced: (ctx: { finished: Finished[] }, r: string) => ctx.finished.some((f) => f.request === r && f.quiesced),
  finishedUnwritten: (ctx: { finished: Finished[] }, r: string) => ctx.finished.some((f) => f.request === r && !f.wrote),
  hasEarly: (ctx: { early: Array<{ request: string }> }, r: string) => ctx.early.find((e) => e.request === r) !== undefined,
  giveBack(ctx: { free: number; holders: Holder[] }, r: string) {
    const i = ctx.holders.findIndex((h) => h.request === r);
    if (i < 0) return {};
    return { free: ctx.free + ctx.holders[i]!.need, holders: ctx.holders.slice(0, i).concat(ctx.holders.slice(i + 1)) };
  },
  forget(ctx: { holders: Holder[] }, r: string) {
    const i = ctx.holders.findIndex((h) => h.request === r);
    return i < 0 ? {} : { holders: ctx.holders.slice(0, i).concat(ctx.holders.slice(i + 1)) };
  },
  enqueue(ctx: { queue: Holder[]; holders: Holder[] }, e: Holder) {
    if (ctx.holders.findIndex((h) => h.request === e.request) >= 0 || ctx.queue.some((q) => q.request === e.request)) return {};
    return { queue: [...ctx.queue, { request: e.request, need: e.need }] };
  },
  dequeue(ctx: { queue: Holder[] }, r: string) {
    return ctx.queue.some((q) => q.request === r) ? { queue: ctx.queue.filter((q) => q.request !== r) } : {};
  },
};

type Impl = { assignment?: (args: unknown) => unknown };
const assignOf = (machine: { implementations: { actions: Record<string, unknown> } }, name: string) => (machine.implementations.actions[name] as Impl).assignment!;
const guardOf = (machine: { implementations: { guards: Record<string, unknown> } }, name: string) => machine.implementations.guards[name] as (args: unknown) => boolean;
const run = (fn: (args: unknown) => unknown, context: unknown, event: unknown) => fn({ context, event, spawn: () => undefined, self: undefined, system: undefined });

const request = fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5', 'r6');
const finishedList = fc.array(fc.record({ request, quiesced: fc.boolean(), wrote: fc.boolean() }), { maxLength: 9 });
const names = fc.array(request, { maxLength: 5 });
const holders = fc.array(fc.record({ request, need: fc.integer({ min: 1, max: 4 }) }), { maxLength: 7 });

describe('server machines: list helpers rewritten as loops give what the old definitions gave', () => {
  it('peerSession retire and retireUnstarted (finished records, bounded memory, duplicates)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), names, names, names, finishedList, request, fc.boolean(), fc.option(fc.boolean(), { nil: undefined }), (remember, active, fenced, abandoned, finished, r, quiesced, wrote) => {
        const ctx = { remember, active, early: [], fenced, abandoned, finished };
        const ev = { type: 'REQUEST_FINISHED', request: r, quiesced, ...(wrote === undefined ? {} : { wrote }) };
        expect(run(assignOf(peerSessionMachine as never, 'retire'), ctx, ev)).toEqual(reference.retire(ctx, ev));
        const ended = { type: 'REQUEST_ENDED', request: r };
        expect(run(assignOf(peerSessionMachine as never, 'retireUnstarted'), ctx, ended)).toEqual(reference.retireUnstarted(ctx, ended));
      }),
      { numRuns: 2000 },
    );
  });

  it('peerSession guards over finished records and early infos', () => {
    fc.assert(
      fc.property(finishedList, names, request, (finished, early, r) => {
        const ctx = { remember: 8, active: [], early: early.map((request) => ({ request, remote: null })), fenced: [], abandoned: [], finished };
        const ev = { type: 'FENCE', request: r };
        for (const g of ['isFinished', 'finishedQuiesced', 'finishedUnwritten', 'hasEarly'] as const) {
          expect(run(guardOf(peerSessionMachine as never, g), ctx, ev)).toBe(reference[g](ctx, r));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('admission giveBack, forget, enqueue and dequeue', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), holders, holders, request, fc.integer({ min: 1, max: 4 }), (free, held, queue, r, need) => {
        const ctx = { free, queue, holders: held };
        const adm = admissionMachine as never;
        expect(run(assignOf(adm, 'giveBack'), ctx, { type: 'RETURN', request: r })).toEqual(reference.giveBack(ctx, r));
        expect(run(assignOf(adm, 'forget'), ctx, { type: 'RETIRE', request: r })).toEqual(reference.forget(ctx, r));
        expect(run(assignOf(adm, 'enqueue'), ctx, { type: 'WANT', request: r, need })).toEqual(reference.enqueue(ctx, { request: r, need }));
        expect(run(assignOf(adm, 'dequeue'), ctx, { type: 'WITHDRAW', request: r })).toEqual(reference.dequeue(ctx, r));
      }),
      { numRuns: 2000 },
    );
  });

  it('without: every index of every list, against filter; the list given is left as it was', () => {
    fc.assert(
      fc.property(fc.array(fc.integer(), { minLength: 1, maxLength: 80 }), (list) => {
        const before = [...list];
        for (let i = 0; i < list.length; i++) {
          const out = without(list, i);
          expect(out).toEqual(list.filter((_, k) => k !== i));
          expect(out).not.toBe(list);
        }
        expect(list).toEqual(before);
      }),
      { numRuns: 500 },
    );
  });
});

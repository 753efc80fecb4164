import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { admissionMachine, FinishedRecords, OWN, peerSessionMachine, RequestQueue, RequestTable } from '../../machines/index.js';

/**
 * The admission and peerSession machines keep lists and tables in their contexts, and their assigns and
 * guards were rewritten as plain loops and persistent tables (fewer copies and closures per event,
 * issue 11). These properties check the rewritten functions against the list definitions they replaced,
 * copied here unchanged, on arbitrary contexts: duplicates included in the lists, which the shipped
 * machines never build but a mutant may. The tables (admission's holders, peerSession's active
 * requests) hold one entry per request by construction; their reference is the list with unique ids.
 *
 * The executor steps in place and gives each table and queue its owned form (OWN), updated in place:
 * each property runs the machines' functions on both forms, and the owned forms are checked against the
 * persistent ones on arbitrary sequences.
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
    return { active: RequestTable.of(ctx.active.filter((a) => a !== r).map((a) => [a, true] as const)), fenced: ctx.fenced.filter((f) => f !== r), abandoned: ctx.abandoned.filter((f) => f !== r), finished };
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
    return { free: ctx.free + ctx.holders[i]!.need, holders: table(ctx.holders.slice(0, i).concat(ctx.holders.slice(i + 1))) };
  },
  forget(ctx: { holders: Holder[] }, r: string) {
    const i = ctx.holders.findIndex((h) => h.request === r);
    return i < 0 ? {} : { holders: table(ctx.holders.slice(0, i).concat(ctx.holders.slice(i + 1))) };
  },
  enqueue(ctx: { queue: Holder[]; holders: Holder[] }, e: Holder) {
    if (ctx.holders.findIndex((h) => h.request === e.request) >= 0 || ctx.queue.some((q) => q.request === e.request)) return {};
    return { queue: [...ctx.queue, { request: e.request, need: e.need }] };
  },
  dequeue(ctx: { queue: Holder[] }, r: string) {
    return ctx.queue.some((q) => q.request === r) ? { queue: ctx.queue.filter((q) => q.request !== r) } : {};
  },
};

/** A holders list (unique requests) as the table admission keeps. */
const table = (holders: readonly Holder[]) => RequestTable.of(holders.map((h) => [h.request, h.need] as const));
/** The same context with every table and queue in its owned form (what the executor's actors hold). */
const owned = <C extends Record<string, unknown>>(ctx: C): C => Object.fromEntries(Object.entries(ctx).map(([k, v]) => [k, v instanceof RequestTable || v instanceof RequestQueue || v instanceof FinishedRecords ? v[OWN]() : v])) as C;
/** Results compared as the explorer and the lockstep check see them: their JSON (a table's is canonical). */
const json = (x: unknown) => JSON.parse(JSON.stringify(x)) as unknown;

type Impl = { assignment?: (args: unknown) => unknown };
const assignOf = (machine: { implementations: { actions: Record<string, unknown> } }, name: string) => (machine.implementations.actions[name] as Impl).assignment!;
const guardOf = (machine: { implementations: { guards: Record<string, unknown> } }, name: string) => machine.implementations.guards[name] as (args: unknown) => boolean;
const run = (fn: (args: unknown) => unknown, context: unknown, event: unknown) => fn({ context, event, spawn: () => undefined, self: undefined, system: undefined });

const request = fc.constantFrom('r1', 'r2', 'r3', 'r4', 'r5', 'r6');
const finishedList = fc.array(fc.record({ request, quiesced: fc.boolean(), wrote: fc.boolean() }), { maxLength: 9 });
const names = fc.array(request, { maxLength: 5 });
const holders = fc.array(fc.record({ request, need: fc.integer({ min: 1, max: 4 }) }), { maxLength: 7 });
const uniqueHolders = fc.uniqueArray(fc.record({ request, need: fc.integer({ min: 1, max: 4 }) }), { maxLength: 6, selector: (h) => h.request });

describe('server machines: list helpers rewritten as loops give what the old definitions gave', () => {
  it('peerSession retire and retireUnstarted (finished records, bounded memory, duplicates)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8 }), names, names, names, finishedList, request, fc.boolean(), fc.option(fc.boolean(), { nil: undefined }), (remember, active, fenced, abandoned, finished, r, quiesced, wrote) => {
        const ctx = { remember, active, early: [], fenced, abandoned, finished };
        const ev = { type: 'REQUEST_FINISHED', request: r, quiesced, ...(wrote === undefined ? {} : { wrote }) };
        const machineCtx = { ...ctx, active: RequestTable.of(active.map((a) => [a, true] as const)), finished: FinishedRecords.of(finished) };
        expect(json(run(assignOf(peerSessionMachine as never, 'retire'), machineCtx, ev))).toEqual(json(reference.retire(ctx, ev)));
        expect(json(run(assignOf(peerSessionMachine as never, 'retire'), owned(machineCtx), ev))).toEqual(json(reference.retire(ctx, ev)));
        const ended = { type: 'REQUEST_ENDED', request: r };
        expect(json(run(assignOf(peerSessionMachine as never, 'retireUnstarted'), machineCtx, ended))).toEqual(json(reference.retireUnstarted(ctx, ended)));
        expect(json(run(assignOf(peerSessionMachine as never, 'retireUnstarted'), owned(machineCtx), ended))).toEqual(json(reference.retireUnstarted(ctx, ended)));
      }),
      { numRuns: 2000 },
    );
  });

  it('peerSession guards over finished records and early infos', () => {
    fc.assert(
      fc.property(finishedList, names, request, (finished, early, r) => {
        const ctx = { remember: 8, active: [], early: early.map((request) => ({ request, remote: null })), fenced: [], abandoned: [], finished };
        const machineCtx = { ...ctx, active: RequestTable.empty<true>(), early: RequestTable.of(early.map((request) => [request, null] as const)), finished: FinishedRecords.of(finished) };
        const ev = { type: 'FENCE', request: r };
        for (const g of ['isFinished', 'finishedQuiesced', 'finishedUnwritten', 'hasEarly'] as const) {
          expect(run(guardOf(peerSessionMachine as never, g), machineCtx, ev)).toBe(reference[g](ctx, r));
          expect(run(guardOf(peerSessionMachine as never, g), owned(machineCtx), ev)).toBe(reference[g](ctx, r));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('admission giveBack, forget, enqueue and dequeue', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), uniqueHolders, holders, request, fc.integer({ min: 1, max: 4 }), (free, held, queue, r, need) => {
        const ctx = { free, queue, holders: held };
        const machineCtx = { free, queue: RequestQueue.of(queue), holders: table(held) };
        const adm = admissionMachine as never;
        // Each call gets a fresh owned context: the owned forms change in place.
        for (const c of [() => machineCtx, () => owned(machineCtx)]) {
          expect(json(run(assignOf(adm, 'giveBack'), c(), { type: 'RETURN', request: r }))).toEqual(json(reference.giveBack(ctx, r)));
          expect(json(run(assignOf(adm, 'forget'), c(), { type: 'RETIRE', request: r }))).toEqual(json(reference.forget(ctx, r)));
          expect(json(run(assignOf(adm, 'enqueue'), c(), { type: 'WANT', request: r, need }))).toEqual(json(reference.enqueue(ctx, { request: r, need })));
          expect(json(run(assignOf(adm, 'dequeue'), c(), { type: 'WITHDRAW', request: r }))).toEqual(json(reference.dequeue(ctx, r)));
          expect(run(guardOf(adm, 'headFits'), c(), { type: 'WANT', request: r, need })).toBe(queue.length > 0 && queue[0]!.need <= free);
        }
        // An unchanged table is the same object: the step keeps its context's identity (no change seen).
        if (!held.some((h) => h.request === r)) expect(machineCtx.holders.without(r)).toBe(machineCtx.holders);
      }),
      { numRuns: 2000 },
    );
  });

  it('RequestTable: any sequence of sets and removals matches a Map; old tables are untouched; the text is canonical', () => {
    const op = fc.oneof(fc.tuple(fc.constant('set' as const), request, fc.integer({ min: 0, max: 3 })), fc.tuple(fc.constant('del' as const), request, fc.constant(0)));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const model = new Map<string, number>();
        let t = RequestTable.empty<number>();
        const history: Array<[RequestTable<number>, string]> = [];
        for (const [kind, r, v] of ops) {
          history.push([t, JSON.stringify(t)]);
          if (kind === 'set') (model.set(r, v), (t = t.with(r, v)));
          else (model.delete(r), (t = t.without(r)));
          expect(t.size).toBe(model.size);
          for (const id of ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) {
            expect(t.has(id)).toBe(model.has(id));
            expect(t.get(id)).toBe(model.get(id));
          }
          expect(t.ids()).toEqual([...model.keys()].sort());
          // Built in another order, the same entries serialise the same.
          const rebuilt = RequestTable.of([...model].reverse());
          expect(JSON.stringify(rebuilt)).toBe(JSON.stringify(t));
          expect(JSON.parse(JSON.stringify(t))).toEqual(Object.fromEntries([...model].sort(([a], [b]) => (a < b ? -1 : 1))));
        }
        // Persistence: every earlier table still reads as it did.
        for (const [old, text] of history) expect(JSON.stringify(old)).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });
  it('RequestTable, owned form: any sequence answers as the persistent table does, in place; its copies are its own', () => {
    const op = fc.oneof(fc.tuple(fc.constant('set' as const), request, fc.integer({ min: 0, max: 3 })), fc.tuple(fc.constant('del' as const), request, fc.constant(0)));
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.array(fc.tuple(request, fc.integer({ min: 0, max: 3 })), { maxLength: 5 }), (ops, start) => {
        let p = RequestTable.of(start);
        const o = p[OWN]();
        const pText = JSON.stringify(p);
        expect(o.owned).toBe(true);
        expect(p.owned).toBe(false);
        for (const [kind, r, v] of ops) {
          const copy = o[OWN]();
          const copyText = JSON.stringify(copy);
          if (kind === 'set') (p = p.with(r, v), expect(o.with(r, v)).toBe(o));
          else (p = p.without(r), expect(o.without(r)).toBe(o));
          expect(o.size).toBe(p.size);
          for (const id of ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) {
            expect(o.has(id)).toBe(p.has(id));
            expect(o.get(id)).toBe(p.get(id));
          }
          expect(o.pairs()).toEqual(p.pairs());
          expect(JSON.stringify(o)).toBe(JSON.stringify(p));
          // A copy taken before the change does not see it.
          expect(JSON.stringify(copy)).toBe(copyText);
        }
        // The persistent table it was made from is untouched.
        expect(JSON.stringify(RequestTable.of(start))).toBe(pText);
      }),
      { numRuns: 1000 },
    );
  });

  it('RequestQueue: persistent and owned forms match an array on any sequence; persistent ones never change', () => {
    // Pushes weigh more than removals: the owned form counts per request in a map only past 16 waiting
    // entries, so the sequences must reach that size, fall back under it and empty again.
    const op = fc.oneof(
      { arbitrary: fc.tuple(fc.constant('push' as const), request, fc.integer({ min: 1, max: 4 })), weight: 3 },
      { arbitrary: fc.tuple(fc.constant('shift' as const), request, fc.constant(0)), weight: 2 },
      { arbitrary: fc.tuple(fc.constant('without' as const), request, fc.constant(0)), weight: 1 },
    );
    fc.assert(
      // Up to 120 operations: the owned form compacts its array once 32 entries are behind its head.
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        let model: Holder[] = [];
        let p = RequestQueue.empty<Holder>();
        const o = p[OWN]();
        const history: Array<[RequestQueue<Holder>, string]> = [];
        for (const [kind, r, need] of ops) {
          history.push([p, JSON.stringify(p)]);
          if (kind === 'push') (model.push({ request: r, need }), (p = p.push({ request: r, need })), expect(o.push({ request: r, need })).toBe(o));
          else if (kind === 'shift') (model.shift(), (p = p.shift()), expect(o.shift()).toBe(o));
          else ((model = model.filter((e) => e.request !== r)), (p = p.without(r)), expect(o.without(r)).toBe(o));
          for (const q of [p, o]) {
            expect(q.size).toBe(model.length);
            expect(q.head()).toEqual(model[0]);
            expect(q.items()).toEqual(model);
            for (const id of ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) expect(q.has(id)).toBe(model.some((e) => e.request === id));
            expect(JSON.stringify(q)).toBe(JSON.stringify(model));
          }
        }
        for (const [old, text] of history) expect(JSON.stringify(old)).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });
  it('RequestQueue, owned form: a long queue drained from the front keeps its order and counts across compactions', () => {
    const model: Holder[] = [];
    const o = RequestQueue.empty<Holder>()[OWN]();
    for (let i = 0; i < 300; i++) {
      const e = { request: `r${i % 7}`, need: (i % 4) + 1 };
      model.push(e);
      o.push(e);
      // Two pushes for each shift: the head moves past 32 entries with the queue never empty.
      if (i % 2 === 1) (model.shift(), o.shift());
      expect(o.head()).toEqual(model[0]);
      expect(o.size).toBe(model.length);
    }
    expect(o.items()).toEqual(model);
    while (model.length > 0) {
      for (let k = 0; k < 7; k++) expect(o.has(`r${k}`)).toBe(model.some((e) => e.request === `r${k}`));
      model.shift();
      o.shift();
      expect(o.items()).toEqual(model);
    }
    expect(o.size).toBe(0);
    // Emptied after it counted per request: nothing of the old entries is still said to wait.
    for (let k = 0; k < 7; k++) expect(o.has(`r${k}`)).toBe(false);
    o.push({ request: 'r3', need: 1 });
    for (let k = 0; k < 7; k++) expect(o.has(`r${k}`)).toBe(k === 3);
  });
  it('FinishedRecords: persistent and owned forms keep what the list definition keeps, on any sequence and bound', () => {
    const op = fc.tuple(request, fc.boolean(), fc.boolean(), fc.boolean());
    fc.assert(
      // Long sequences with small ids: requests finish again (replace), unproven records pile up at the front,
      // and the owned form's head moves past 32 records (a compaction).
      fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 150 }), (remember, ops) => {
        let model: Finished[] = [];
        let p = FinishedRecords.empty();
        const o = p[OWN]();
        const history: Array<[FinishedRecords, string]> = [];
        for (const [r, quiesced, wrote, replace] of ops) {
          history.push([p, JSON.stringify(p)]);
          const rec = { request: r, quiesced, wrote };
          // The list definition (as retire and retireUnstarted had it before FinishedRecords).
          let next = [...(replace ? model.filter((f) => f.request !== r) : model), rec];
          while (next.length > remember) {
            const i = next.findIndex((f) => f.quiesced);
            if (i < 0) break;
            next = [...next.slice(0, i), ...next.slice(i + 1)];
          }
          model = next;
          p = p.record(rec, remember, replace);
          expect(o.record(rec, remember, replace)).toBe(o);
          for (const f of [p, o]) {
            expect(f.items()).toEqual(model);
            expect(f.size).toBe(model.length);
            for (const id of ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']) {
              expect(f.any(id, 0)).toBe(model.some((x) => x.request === id));
              expect(f.any(id, 1)).toBe(model.some((x) => x.request === id && x.quiesced));
              expect(f.any(id, 2)).toBe(model.some((x) => x.request === id && !x.wrote));
            }
            expect(JSON.stringify(f)).toBe(JSON.stringify(model));
          }
        }
        for (const [old, text] of history) expect(JSON.stringify(old)).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });

  it('FinishedRecords, owned form: 64 remembered, thousands finished, every lookup right across compactions', () => {
    const o = FinishedRecords.empty()[OWN]();
    let model: Finished[] = [];
    for (let i = 0; i < 2000; i++) {
      // All proven for the first thousand (the head moves: compactions), then one in 50 unproven: kept past
      // the bound, so the oldest quiesced record is not always the head.
      const rec = { request: `q${i}`, quiesced: i < 1000 || i % 50 !== 7, wrote: i % 3 !== 0 };
      model = [...model, rec];
      while (model.length > 64) {
        const k = model.findIndex((f) => f.quiesced);
        if (k < 0) break;
        model = [...model.slice(0, k), ...model.slice(k + 1)];
      }
      o.record(rec, 64, true);
      if (i % 97 === 0) expect(o.items()).toEqual(model);
      for (const id of [`q${i}`, `q${i - 64}`, `q${i - 63}`, 'q1007', `q${i - 70}`]) expect(o.any(id, 0)).toBe(model.some((x) => x.request === id));
    }
    expect(o.items()).toEqual(model);
  });
});

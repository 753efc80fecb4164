import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAULTS } from '../../src/executor/config.js';
import type { BurstReport } from '../../src/executor/harness.js';
import { runBurst } from '../../src/executor/harness.js';
import { checkTraceText, conforms } from '../../src/executor/trace.js';

describe('burst --trace and check-trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-trace-'));
  const path = join(dir, 'trace.jsonl');
  let text = '';
  let report: BurstReport;

  beforeAll(async () => {
    const r = await runBurst({ concurrency: 16, requests: 80, faults: [...FAULTS], faultRate: 0.6, seed: 3, blockBytes: 4096, blocksPerRequest: 2, backend: process.env.XFERSTATE_BACKEND ?? 'shm', kvTransferTimeoutMs: 800, recvSlots: 16, tracePath: path });
    expect(r.stuck).toBe(0);
    report = r;
    text = readFileSync(path, 'utf8');
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a trace of a real burst with every fault conforms to the machines', () => {
    const r = checkTraceText(text);
    expect(r.malformed).toEqual([]);
    expect(r.violations).toEqual([]);
    expect(r.problems).toEqual([]);
    expect(conforms(r)).toBe(true);
    expect(r.transitions).toBeGreaterThan(1000);
    expect(new Set(text.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { machine?: string }).machine).filter(Boolean))).toEqual(
      new Set(['requestLifecycle', 'contextSend', 'generationReceive', 'transferHandle', 'blockLease', 'peerSession', 'admission', 'fenceClient']),
    );
  });

  it('reports a transition the machine forbids (a lifecycle that leaves DISAGG_TRANS_ERROR)', () => {
    const lines = text.split('\n').filter(Boolean);
    const i = lines.findIndex((l) => {
      const r = JSON.parse(l) as { kind: string; machine?: string; to?: unknown };
      return r.kind === 'transition' && r.machine === 'requestLifecycle' && JSON.stringify(r.to).includes('DISAGG_GENERATION_TRANS_COMPLETE');
    });
    expect(i).toBeGreaterThan(0);
    const rec = JSON.parse(lines[i]!) as Record<string, unknown>;
    lines[i] = JSON.stringify({ ...rec, to: 'DISAGG_CONTEXT_COMPLETE' });
    const r = checkTraceText(lines.join('\n'));
    expect(r.violations.length).toBeGreaterThan(0);
    expect(r.violations[0]!.line).toBe(i + 1);
    expect(r.violations[0]!.recorded).toBe('DISAGG_CONTEXT_COMPLETE');
  });

  it('reports events dropped from a log (the machine cannot reach the recorded state)', () => {
    const lines = text.split('\n').filter(Boolean);
    const i = lines.findIndex((l) => (JSON.parse(l) as { event?: { type: string } }).event?.type === 'REQUEST_INFO');
    const r = checkTraceText(lines.filter((_, j) => j !== i).join('\n'));
    expect(r.violations.length).toBeGreaterThan(0);
  });

  /** Tamperings a forger would hide: seq renumbered and end counts fixed, so only the check under test can see them. */
  type Rec = Record<string, unknown> & { kind: string; actor?: string; machine?: string; event?: { type: string }; from?: unknown; to?: unknown; seq?: number; process?: string; records?: number };
  const parse = () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Rec);
  /** Renumber seq per part and fix each end record's count, then serialise. */
  const forge = (recs: Rec[]) => {
    let seq = 0;
    let count = 0;
    for (const r of recs) {
      if (r.kind === 'begin') (seq = 0), (count = 0);
      else if (r.kind === 'end') r.records = count;
      else (r.seq = seq++), count++;
    }
    return recs.map((r) => JSON.stringify(r)).join('\n') + '\n';
  };
  /** Index of records of one process (the generation server's part is 'gen'). */
  const inPart = (recs: Rec[], process: string) => {
    const out: number[] = [];
    let cur = '';
    recs.forEach((r, i) => {
      if (r.kind === 'begin') cur = r.process!;
      else if (r.kind !== 'end' && cur === process) out.push(i);
    });
    return out;
  };
  const kinds = (t: string) => new Set(checkTraceText(t).problems.map((p) => p.kind));

  it('the forging helper alone changes nothing (so each tampering below is what is caught)', () => {
    expect(conforms(checkTraceText(forge(parse())))).toBe(true);
  });

  it('catches an edited from', () => {
    const recs = parse();
    const i = recs.findIndex((r) => r.kind === 'transition' && r.machine === 'blockLease' && r.from === 'allocated');
    recs[i]!.from = 'free';
    const r = checkTraceText(forge(recs));
    expect(r.violations).toEqual([]);
    expect(r.problems.map((p) => [p.kind, p.line])).toEqual([['from', i + 1]]);
  });

  it("catches an actor's last record deleted (its history does not end at rest)", () => {
    const recs = parse();
    const gen = inPart(recs, 'gen');
    const last = gen.filter((i) => recs[i]!.kind === 'transition' && recs[i]!.machine === 'generationReceive').at(-1)!;
    recs.splice(last, 1);
    const r = checkTraceText(forge(recs));
    expect(r.violations).toEqual([]);
    expect(r.problems.length).toBe(1);
    expect(r.problems[0]).toMatchObject({ kind: 'history', message: expect.stringMatching(/not at rest/) });
  });

  it("catches an actor's first record deleted (its history does not start with xstate.init)", () => {
    const recs = parse();
    const first = inPart(recs, 'gen').find((i) => recs[i]!.kind === 'transition' && recs[i]!.machine === 'blockLease')!;
    expect(recs[first]!.event!.type).toBe('xstate.init');
    recs.splice(first, 1);
    const r = checkTraceText(forge(recs));
    expect(r.violations).toEqual([]);
    expect(r.problems.map((p) => p.kind)).toEqual(['history']);
    expect(r.problems[0]!.message).toMatch(/not xstate\.init/);
  });

  it('catches records deleted from the middle by their seq, even when nothing else shows it', () => {
    const lines = text.split('\n').filter(Boolean);
    const i = lines.findIndex((l) => (JSON.parse(l) as Rec).kind === 'spawn');
    // A spawn and its xstate.init together: the actor then simply never existed.
    const actor = (JSON.parse(lines[i]!) as Rec).actor;
    const rest = lines.filter((l) => (JSON.parse(l) as Rec).actor !== actor || (JSON.parse(l) as Rec).kind === 'begin');
    const r = checkTraceText(rest.join('\n') + '\n');
    expect([...kinds(rest.join('\n') + '\n')]).toEqual(expect.arrayContaining(['sequence', 'truncated']));
    expect(r.violations).toEqual([]);
  });

  it('catches a file cut in half at a line boundary, and one cut inside a line', () => {
    const atLine = text.slice(0, text.lastIndexOf('\n', text.length / 2) + 1);
    expect([...kinds(atLine)]).toEqual(['truncated']);
    expect(checkTraceText(atLine).problems[0]!.message).toMatch(/no end record/);
    // Cut in the middle of the line that spans the file's midpoint (a cut at exactly half could land on
    // a line end, or just before one, and leave a whole record).
    const lineStart = text.lastIndexOf('\n', text.length / 2) + 1;
    const lineEnd = text.indexOf('\n', lineStart);
    const torn = text.slice(0, lineStart + Math.floor((lineEnd - lineStart) / 2));
    expect(torn.endsWith('\n')).toBe(false);
    expect(() => JSON.parse(torn.slice(lineStart))).toThrow();
    const r = checkTraceText(torn);
    expect(r.malformed).toEqual([]);
    expect(r.problems.map((p) => p.message)).toEqual(expect.arrayContaining([expect.stringMatching(/last line is cut off/)]));
  });

  it("catches a lease freed while its request's receiver was still receiving (cross-actor order)", () => {
    const recs = parse();
    // A request whose receiver went through 'receiving' and whose lease was then freed from 'exposed'.
    const gen = inPart(recs, 'gen');
    const freedAfter = (entered: number) => {
      const request = recs[entered]!.actor!.split('.')[0]!;
      return gen.find((i) => i > entered && recs[i]!.actor === `${request}.lease` && recs[i]!.to === 'free' && recs[i]!.from === 'exposed');
    };
    const entered = gen.find((i) => recs[i]!.machine === 'generationReceive' && String(JSON.stringify(recs[i]!.to)).includes('"receiving"') && freedAfter(i) !== undefined)!;
    expect(entered, 'a request received its data and then freed its blocks').toBeDefined();
    const request = recs[entered]!.actor!.split('.')[0]!;
    const freed = freedAfter(entered)!;
    expect(freed).toBeGreaterThan(entered);
    // Move the release to right after the receiver entered 'receiving': same records, other order. The
    // lease's records before it (e.g. the sync notification it remembers while exposed) move with it.
    const leaseRecs = gen.filter((i) => i > entered && i <= freed && recs[i]!.actor === `${request}.lease`);
    const moved = leaseRecs.map((i) => recs[i]!);
    for (const i of [...leaseRecs].reverse()) recs.splice(i, 1);
    recs.splice(entered + 1, 0, ...moved);
    const r = checkTraceText(forge(recs));
    expect(r.violations).toEqual([]);
    expect(r.problems.map((p) => p.kind)).toEqual(['order']);
    expect(r.problems[0]!.message).toMatch(new RegExp(`${request}\\.lease went exposed → free while ${request}\\.recv was still receiving`));
  });

  it("catches a lease fenced while its request's receiver was still waiting for data", () => {
    const recs = parse();
    const gen = inPart(recs, 'gen');
    const toText = (i: number) => String(JSON.stringify(recs[i]!.to));
    // A fenced lease whose receiver had been waiting for the ready signal (awaitingReady) at some point.
    const candidates = gen.filter((i) => recs[i]!.machine === 'blockLease' && recs[i]!.to === 'fencing');
    const fenced = candidates.find((f) => gen.some((i) => recs[i]!.actor === `${recs[f]!.actor!.split('.')[0]}.recv` && toText(i).includes('"awaitingReady"')));
    expect(fenced, 'the burst with every fault fences at least one lease of a request that got as far as awaitingReady').toBeDefined();
    const request = recs[fenced!]!.actor!.split('.')[0]!;
    // Move the lease's records up to its fencing to right after the receiver entered awaitingReady.
    const waiting = gen.find((i) => recs[i]!.actor === `${request}.recv` && toText(i).includes('"awaitingReady"'))!;
    const leaseRecs = gen.filter((i) => i > waiting && i <= fenced! && recs[i]!.actor === `${request}.lease`);
    const moved = leaseRecs.map((i) => recs[i]!);
    for (const i of [...leaseRecs].reverse()) recs.splice(i, 1);
    recs.splice(waiting + 1, 0, ...moved);
    const r = checkTraceText(forge(recs));
    expect(r.violations).toEqual([]);
    expect(r.problems.map((p) => p.kind)).toContain('order');
    expect(r.problems.find((p) => p.kind === 'order')!.message).toMatch(/→ (fencing|free) while .*awaitingReady/);
  });

  it('keeps the parts of a killed context server apart and does not ask them to be complete', () => {
    const recs = parse();
    const ends = recs.filter((r) => r.kind === 'end');
    expect(ends.map((e) => [e.process, e.ended]).sort()).toEqual([
      ['ctx-0', 'killed'],
      ['ctx-1', 'finished'],
      ['gen', 'finished'],
    ]);
  });

  it('reports both servers\' RSS in a run whose context server was restarted (peer-kill)', () => {
    expect(report.peerRestarts).toBe(1);
    for (const m of [report.memory.context, report.memory.generation]) {
      expect(m.rssStartMB).toBeGreaterThan(10);
      expect(m.rssEndMB).toBeGreaterThan(10);
    }
  });

  it('names malformed lines instead of crashing', () => {
    const r = checkTraceText('{not json}\n{"kind":"transition","server":"x","actor":"a","machine":"nope","event":{"type":"X"},"from":null,"to":"y","seq":1,"t":0}\n');
    expect(r.malformed.map((m) => m.line)).toEqual([1, 2]);
  });
});

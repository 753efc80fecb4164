import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAULTS } from '../../src/executor/config.js';
import { runBurst } from '../../src/executor/harness.js';
import { checkTraceText } from '../../src/executor/trace.js';

describe('burst --trace and check-trace', () => {
  const dir = mkdtempSync(join(tmpdir(), 'xferstate-trace-'));
  const path = join(dir, 'trace.jsonl');
  let text = '';

  beforeAll(async () => {
    const r = await runBurst({ concurrency: 16, requests: 80, faults: [...FAULTS], faultRate: 0.6, seed: 3, blockBytes: 4096, blocksPerRequest: 2, backend: process.env.XFERSTATE_BACKEND ?? 'shm', kvTransferTimeoutMs: 800, recvSlots: 16, tracePath: path });
    expect(r.stuck).toBe(0);
    text = readFileSync(path, 'utf8');
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('a trace of a real burst with every fault conforms to the machines', () => {
    const r = checkTraceText(text);
    expect(r.malformed).toEqual([]);
    expect(r.violations).toEqual([]);
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

  it('names malformed lines instead of crashing', () => {
    const r = checkTraceText('{not json}\n{"kind":"transition","server":"x","actor":"a","machine":"nope","event":{"type":"X"},"from":null,"to":"y","seq":1,"t":0}\n');
    expect(r.malformed.map((m) => m.line)).toEqual([1, 2]);
  });
});

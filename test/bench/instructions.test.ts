import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { callgrindAvailable, jsThreadInstructions, netOfGc, parseCallgrind, spreadOf } from '../../src/bench/_instructions.js';
import { instructionsOptions } from '../../src/bench/burst.js';
import { UsageError } from '../../src/errors.js';

/**
 * `bench burst --only instructions`: JS-thread instructions per request under callgrind. Checked against
 * what is known: an empty window counts next to nothing, twice the requests count twice the
 * instructions (so the window holds the measured requests and nothing else), and the callbacks, which
 * do a subset of the engine's JS work, count fewer.
 */
describe('bench burst: instructions per request', () => {
  it('reads self costs from a callgrind profile; a call\'s inclusive cost is not counted twice', () => {
    const profile = [
      '# callgrind format',
      'events: Ir',
      'summary: 1000',
      'fn=(1) main',
      '0 100',
      'cfn=(2) v8::internal::compiler::GraphReducer::Reduce(v8::internal::compiler::Node*)',
      'calls=1 0',
      '0 300',
      'cfn=(3) v8::internal::Scavenger::ScavengePage(v8::internal::MemoryChunk*)',
      'calls=2 0',
      '0 200',
      'fn=(2)',
      '0 250',
      '+1 50',
      'fn=(3)',
      '* 200',
    ].join('\n');
    expect(parseCallgrind(profile)).toEqual({ total: 1000, compiler: 300, gc: 200 });
    expect(() => parseCallgrind('fn=(1) main\n0 5')).toThrow(/summary/);
  });

  it.skipIf(!callgrindAvailable())(
    'an empty window counts next to nothing; twice the requests, about twice the instructions; the callbacks fewer',
    async () => {
      const [idle, e300, e600, c300] = await Promise.all([
        jsThreadInstructions('idle', 0, 0),
        jsThreadInstructions('engine', 2000, 300),
        jsThreadInstructions('engine', 2000, 600),
        jsThreadInstructions('callbacks', 2000, 300),
      ]);
      // The two marker calls and nothing else.
      expect(idle.total).toBeLessThan(1_000_000);
      // Hundreds of thousands per request: far more than the empty window, so the window is the requests.
      expect(e300.total).toBeGreaterThan(300 * 100_000);
      const scale = e600.total / e300.total;
      expect(scale).toBeGreaterThan(1.6);
      expect(scale).toBeLessThan(2.4);
      expect(c300.perRequest).toBeLessThan(e300.perRequest);
      expect(c300.perRequest).toBeGreaterThan(0);
      for (const s of [e300, e600, c300]) expect(s.compiler + s.gc).toBeLessThan(s.total);
    },
    300_000,
  );

  it('rounds: the median (of an even count, the mean of the middle two), the range, and a count net of GC', () => {
    expect(spreadOf([283_715, 282_448, 285_486, 281_815, 283_984])).toEqual({ median: 283_715, min: 281_815, max: 285_486 });
    expect(spreadOf([10, 40, 20, 30])).toEqual({ median: 25, min: 10, max: 40 });
    expect(() => spreadOf([])).toThrow(/no values/);
    expect(netOfGc({ mode: 'engine', warmRequests: 8000, requests: 2000, total: 2000 * 283_000, perRequest: 283_000, compiler: 0, gc: 2000 * 2_000 })).toBe(281_000);
  });

  it('--rounds and --baseline-build: only with the instruction counter; a bad value is one clear usage error', () => {
    expect(instructionsOptions(['--only', 'instructions'], true)).toEqual({ rounds: 1, baselineChild: null, baselineBuild: null });
    expect(instructionsOptions(['--rounds', '4'], true).rounds).toBe(4);
    const usage = (args: string[], instructions = true): string => {
      try {
        instructionsOptions(args, instructions);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        return (e as Error).message;
      }
      throw new Error('no usage error');
    };
    expect(usage(['--rounds', '3'], false)).toMatch(/add --only instructions/);
    for (const bad of ['0', '51', '2.5', 'x']) expect(usage(['--rounds', bad])).toMatch(/whole number from 1 to 50/);
    expect(usage(['--rounds'])).toMatch(/expected a value/);
    expect(usage(['--rounds', '--baseline-build'])).toMatch(/expected a value/);
    const dir = mkdtempSync(join(os.tmpdir(), 'xferstate-build-'));
    try {
      expect(usage(['--baseline-build', dir])).toMatch(/not a built checkout/);
      const child = join(dir, 'dist', 'src', 'bench', '_instructionsChild.js');
      mkdirSync(join(dir, 'dist', 'src', 'bench'), { recursive: true });
      writeFileSync(child, '');
      expect(instructionsOptions(['--baseline-build', dir, '--rounds', '2'], true)).toEqual({ rounds: 2, baselineChild: child, baselineBuild: dir });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

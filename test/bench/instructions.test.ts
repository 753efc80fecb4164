import { describe, expect, it } from 'vitest';
import { callgrindAvailable, jsThreadInstructions, parseCallgrind } from '../../src/bench/_instructions.js';

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
});

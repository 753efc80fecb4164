import { describe, expect, it } from 'vitest';
import type { FaultName } from '../../src/executor/config.js';
import { FaultPoints } from '../../src/executor/faults.js';

/**
 * FaultPoints looks nothing up until a request with faults was submitted. Once one was, every fault
 * point answers from the live request's faults, whatever else was submitted or finished; and each yes
 * is counted (the burst report's `faultsFired`).
 */
describe('FaultPoints', () => {
  const setup = () => {
    const live = new Map<string, readonly FaultName[]>();
    const points = new FaultPoints('generation', (id) => live.get(id) ?? []);
    const submit = (id: string, faults: FaultName[]) => {
      live.set(id, faults);
      points.submitted(faults);
    };
    const end = (id: string) => live.delete(id);
    return { points, submit, end };
  };

  it('answers for a faulty request among requests without faults, whatever the order they end in', () => {
    const { points, submit, end } = setup();
    submit('a', []);
    submit('b', ['notif-drop']);
    submit('c', []);
    end('a');
    end('c');
    expect(points.has('b', 'notif-drop')).toBe(true);
    expect(points.has('b', 'stall')).toBe(false);
    submit('d', ['stall', 'fail']);
    end('b');
    expect(points.has('b', 'notif-drop')).toBe(false);
    expect(points.has('d', 'fail')).toBe(true);
    end('d');
    expect(points.has('d', 'fail')).toBe(false);
    submit('e', ['fail']);
    expect(points.has('e', 'fail')).toBe(true);
    expect(points.fired).toEqual({ 'notif-drop': 1, fail: 2 });
  });

  it('a request without faults never counts, and none is looked up before a faulty one came', () => {
    const asked: string[] = [];
    const points = new FaultPoints('context', (id) => (asked.push(id), id === 'b' ? ['stall'] : []));
    points.submitted([]);
    expect(points.has('a', 'stall')).toBe(false);
    expect(asked).toEqual([]);
    points.submitted(['stall']);
    expect(points.has('a', 'stall')).toBe(false);
    expect(points.has('b', 'stall')).toBe(true);
    expect(asked).toEqual(['a', 'b']);
  });
});

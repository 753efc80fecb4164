import { describe, expect, it } from 'vitest';
import type { FaultName } from '../../src/executor/config.js';
import { FaultPoints } from '../../src/executor/faults.js';

/**
 * FaultPoints skips its lookup while no live request carries faults. The count must follow the
 * requests exactly: a fault point that went quiet while a faulty request was still live would make a
 * burst's faults silently disappear.
 */
describe('FaultPoints', () => {
  const setup = () => {
    const live = new Map<string, readonly FaultName[]>();
    const points = new FaultPoints('generation', (id) => live.get(id) ?? []);
    const start = (id: string, faults: FaultName[]) => {
      live.set(id, faults);
      points.track(faults, 1);
    };
    const end = (id: string) => {
      points.track(live.get(id)!, -1);
      live.delete(id);
    };
    return { points, start, end };
  };

  it('answers for a faulty request among requests without faults, whatever the order they end in', () => {
    const { points, start, end } = setup();
    start('a', []);
    start('b', ['notif-drop']);
    start('c', []);
    end('a');
    end('c');
    expect(points.has('b', 'notif-drop')).toBe(true);
    expect(points.has('b', 'stall')).toBe(false);
    start('d', ['stall', 'fail']);
    end('b');
    expect(points.has('b', 'notif-drop')).toBe(false);
    expect(points.has('d', 'fail')).toBe(true);
    end('d');
    expect(points.has('d', 'fail')).toBe(false);
  });

  it('a request without faults never counts', () => {
    const { points, start } = setup();
    start('a', []);
    expect(points.has('a', 'stall')).toBe(false);
    start('b', ['stall']);
    expect(points.has('a', 'stall')).toBe(false);
    expect(points.has('b', 'stall')).toBe(true);
  });
});

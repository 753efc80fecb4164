import type { Clock } from './clock.js';
import { realClock } from './clock.js';

/**
 * What a server takes from the world besides its peer and its agent: time, and a way to run work
 * soon. Production passes `nodePlatform`; the simulator passes virtual time and its own run queue, so
 * the same server classes run unchanged under a seeded scheduler (TigerBeetle's `Time`, madsim's two
 * builds).
 */
export interface Platform {
  clock: Clock;
  /** Run `fn` after the current step (production: setImmediate). */
  defer(fn: () => void): void;
}

export const nodePlatform: Platform = {
  clock: realClock,
  defer: (fn) => void setImmediate(fn),
};

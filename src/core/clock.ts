/**
 * Time as a value passed in (TigerBeetle's `Time`, xstate's `Clock`): servers and hosts read the time and
 * arm deadlines only through a Clock, so the simulator can run the production classes on virtual time.
 * The shape of setTimeout/clearTimeout is xstate's own `Clock`, so the same object can be handed to
 * `createActor(machine, { clock })`.
 */
export type TimerHandle = unknown;

export interface Clock {
  /** Milliseconds since the epoch (virtual in the simulator); reports from two processes compare. */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The process's real clock. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

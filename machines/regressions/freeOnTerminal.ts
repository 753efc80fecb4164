import { requestLifecycleMachine } from '../requestLifecycle.js';

/**
 * requestLifecycle free-on-terminal (bug classes B1/B1'): the executor frees a request's resources as
 * soon as it sees a terminal state, without waiting for the transfer side to be quiescent — the worker,
 * its transfer handles or the remote writer can still reach the request and its blocks.
 */
export const freeOnTerminalMachine = requestLifecycleMachine.provide({
  guards: { sideQuiescent: () => true },
});

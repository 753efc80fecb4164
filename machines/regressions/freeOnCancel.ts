import { blockLeaseMachine } from '../blockLease.js';

/**
 * blockLease free-on-cancel (bug class B5): blocks advertised to a remote writer (or read by an
 * in-flight transfer) go back to the pool on cancel without any proof that the transfer stopped — a
 * late write then lands in blocks another request owns.
 */
export const freeOnCancelMachine = blockLeaseMachine.provide({
  guards: { hasQuiescenceProof: () => true },
});

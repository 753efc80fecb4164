/**
 * Every invariant the explorer checks, and what kind of claim it is:
 * - consequence: read from ground truth the machines cannot fake — the memory model of the generation
 *   pool (who owns a block, whose bytes it holds), the outcomes reported to users, what is held at rest,
 *   how often a cancel was sent, and the graph of the executors' own steps;
 * - design-rule: a check of the machines' own flags or state names. It says the design was followed,
 *   not that nothing bad happened; a bug that keeps its flags right passes it.
 */
export type InvariantKind = 'consequence' | 'design-rule';

export interface InvariantInfo {
  id: string;
  kind: InvariantKind;
  /** Where it is checked: the composed world (both sides), the one-sided scenarios, or machine definitions. */
  scope: 'composed' | 'one-sided' | 'definition';
  description: string;
}

export const INVARIANTS: readonly InvariantInfo[] = [
  { id: 'M1', kind: 'consequence', scope: 'composed', description: 'no byte lands in a generation block that is free or owned by another lease (owner = request and allocation epoch)' },
  { id: 'M2', kind: 'consequence', scope: 'composed', description: 'a block served to decode holds exactly its owner’s bytes (every chunk written by the owner request for the owner allocation)' },
  { id: 'M3', kind: 'consequence', scope: 'composed', description: 'every request’s future settles exactly once per side, with a typed outcome (completed, failed, cancelled): never twice, and never missing at rest' },
  { id: 'M4', kind: 'consequence', scope: 'composed', description: 'nothing is leaked at rest: every lease free or retired, no admission or receive-slot holder, no early info kept, no fence still pending, every native transfer released' },
  { id: 'M5', kind: 'consequence', scope: 'composed', description: `no unbounded retry: a cancel is sent (or refused) at most 3 times per request and side, and no cycle of the executors’ own steps exists` },
  { id: 'M6', kind: 'consequence', scope: 'composed', description: 'a native transfer handle is released exactly once' },
  { id: 'M7', kind: 'consequence', scope: 'composed', description: 'no spurious failure: in every prompt run (network, backend and loops act before any deadline is due; no loss, no death) nothing is held or retired at the end and every request has an outcome on both sides; with no fault at all (no cancel, error, duplicate or reordering either) every request completes on both sides' },
  { id: 'M8', kind: 'consequence', scope: 'composed', description: 'a reported success is true: the context side reports a request completed only when every native transfer of it finished DONE (the generation side’s success is M2’s)' },
  { id: 'M9', kind: 'consequence', scope: 'composed', description: 'no needless retirement: a generation block leaves the pool for good only after a message was lost, while a step of the peer, network, backend or loops could still happen (the deadline beat it), while a transfer into it can still write, or after its owner’s transfer was released in flight where release does not quiesce (UCX); a process death is no excuse' },
  { id: 'M10', kind: 'consequence', scope: 'composed', description: 'a user’s cancel is reported as a cancel: in every prompt run whose only faults are user cancels, the side where a user cancelled a request reports it cancelled (or completed, when the cancel came too late), never failed; and a request no user cancelled completes on both sides (a cancel of one request fails no other)' },
  { id: 'M11', kind: 'consequence', scope: 'composed', description: 'no deadline needed when nothing goes wrong: in every prompt run with no fault at all, or whose only faults are user cancels, no deadline fires (a timeout waited out means a request, lease or message was kept waiting for the whole timeout)' },
  { id: 'M12', kind: 'consequence', scope: 'composed', description: 'a failure names its cause: every outcome reported carries the matching reason (completed: none; cancelled: cancelled; failed: timedOut, transferFailed or corrupted, never none)' },
  { id: 'M13', kind: 'consequence', scope: 'composed', description: 'a cancel stops new work: in every prompt run, after a user cancels a request on a side, that side sends no request info for it (generation) and creates no native transfer of it (context); a cancel made before any transfer of it existed ends cancelled there, never completed' },
  { id: 'M21', kind: 'consequence', scope: 'composed', description: 'not-ready means nothing was written: the context side sends a request’s not-ready signal only when no native transfer of that request was ever created (the generation side frees its blocks on it)' },
  { id: 'M22', kind: 'consequence', scope: 'composed', description: 'every future settles: once idle (no step of the executors’ own leads anywhere else), every sender, receiver and transfer handle of a request has finished (none is left holding a future nothing will fulfil)' },
  { id: 'M23', kind: 'consequence', scope: 'composed', description: 'a transfer failure names a transfer: the context side reports a request failed with reason transferFailed only when a native transfer of it was created' },
  { id: 'M24', kind: 'consequence', scope: 'composed', description: 'a cancel reaches the backend: once the context side sent a request’s cancel to its transfer side, every native transfer of it still posted has been asked to stop' },
  { id: 'L2', kind: 'consequence', scope: 'composed', description: 'from every reachable world the executors’ own steps (deadlines, loop steps) settle every request, whatever the peer, network or user do' },
  { id: 'S3', kind: 'design-rule', scope: 'composed', description: 'a future is observed only once the worker holds nothing of the request (the contextSend/generationReceive flags)' },
  { id: 'S8', kind: 'design-rule', scope: 'composed', description: 'terminal request states are absorbing (the requestLifecycle state names)' },
  { id: 'L1', kind: 'design-rule', scope: 'definition', description: 'every waiting state of every machine has a deadline or names the local events that advance it' },
  { id: 'S1', kind: 'design-rule', scope: 'one-sided', description: 'a request is released only after every actor of it finished (actor states)' },
  { id: 'S2', kind: 'design-rule', scope: 'one-sided', description: 'no promise is abandoned (the promise flag; counted reports)' },
  { id: 'S4', kind: 'design-rule', scope: 'one-sided', description: 'blocks return to the pool only once their owner finished (actor states)' },
  { id: 'S5', kind: 'consequence', scope: 'one-sided', description: 'advertised memory is reused only when no write can still land (the scenario’s modelled backend)' },
  { id: 'S6', kind: 'design-rule', scope: 'one-sided', description: 'a handle is released once and reports quiesced only with proof' },
  { id: 'S7', kind: 'consequence', scope: 'one-sided', description: 'a wait that ended without the notification is never success (the scenario’s ground truth)' },
  { id: 'S9', kind: 'design-rule', scope: 'one-sided', description: 'a receive slot is handed back exactly once (counted)' },
  { id: 'S10', kind: 'design-rule', scope: 'one-sided', description: 'request state changes only on executor steps (choice labels)' },
  { id: 'L3', kind: 'consequence', scope: 'one-sided', description: 'a requested cancel is resolved by local steps alone' },
  { id: 'L4', kind: 'consequence', scope: 'one-sided', description: 'each request is cleaned up by its own steps, whatever the others do' },
  { id: 'L5', kind: 'consequence', scope: 'one-sided', description: 'no world at rest still holds a resource of a finished owner' },
];

export function invariantKind(id: string): InvariantKind {
  return INVARIANTS.find((i) => i.id === id)?.kind ?? 'design-rule';
}

/**
 * Reviewed notes on surviving mutants: mutant name → what a reviewer found, checkable against the
 * machine and the composed world. `xferstate mutate` appends the note to the survivor's computed reason;
 * a note never changes a verdict. An entry whose mutant is killed or equivalent is stale but harmless;
 * the mutate tests fail on entries that name no mutant at all.
 *
 * The notes of the last round (the fence-never-acknowledged class, the slower release of the context
 * side's source lease, a cancelled request reported failed, fences not confirmed after a death) were
 * removed: M9, M10 and M11 kill those mutants now (docs/invariants.md, "Mutation score").
 *
 * The seventh session's full run removed the notes of mutants it killed or called equivalent (the
 * blockLease `epoch`/`proof` ones are equivalent modulo write-only context: src/mutate/reads.ts).
 */
import { CONTEXT_SEND_NOTES } from './survivorsContextSend.js';

export const SURVIVOR_REASONS: Readonly<Record<string, string>> = {
  // contextSend (sixth session; docs/invariants.md, "Survivors of contextSend, read (sixth session)").
  ...CONTEXT_SEND_NOTES,
  // requestLifecycle and generationReceive (sixth session; docs/invariants.md, "Survivors of requestLifecycle and generationReceive").
  'requestLifecycle: drop deadline quiescenceTimeout in DISAGG_TRANS_ERROR.awaitingQuiescence':
    'a backstop against a transfer side that never finishes; every side machine ends by its own deadlines (L1 on its definition, L2 on the composed graph), so in the model the mutant only loses the early fail-closed paths (a lease quarantined while its side still works). Not weaker here; it matters against a broken side, which the model does not have',
  'requestLifecycle: retarget DISAGG_TRANS_ERROR.awaitingQuiescence after quiescenceTimeout failedClosed → awaitingQuiescence':
    'the same as dropping quiescenceTimeout (the deadline re-arms and the request keeps waiting for its side, which always ends in the model)',
  'requestLifecycle: retarget DISAGG_GENERATION_TRANS_IN_PROGRESS RECV_COMPLETE DISAGG_GENERATION_TRANS_COMPLETE → GENERATION_IN_PROGRESS':
    'skips DECODE_START, where the server verifies the served blocks: defence in depth. While M1 holds (no foreign byte lands) the sync verification already proved the bytes, so the served check cannot fail on these machines and the outcomes are the same',
  // The two `cancelSide … CANCEL` drops were a world artefact (the cancel was offered only where
  // can(CANCEL)); the world now offers it wherever the request is live, and M13 kills both (seventh session).
  // "Differs observably" survivors read in the seventh session (docs/invariants.md, "Seventh session").
  'requestLifecycle: drop action cancelSide in DISAGG_CONTEXT_TRANS_IN_PROGRESS after kvTransferTimeout':
    "slower, not unsafe: the lifecycle times out but does not tell contextSend, which ends by its own deadlines (kvTransferTimeout of queued or sending, the same delay armed later, then the handles' drain and release deadlines) or is cut by the lifecycle's quiescenceTimeout (failedClosed: the source blocks quarantined, then fenced by the agent). The outcome is the same (failed, timedOut), no byte lands anywhere M1 forbids, and M24 asks only that a cancel once sent reaches the backend. What differs is time: the transfer may run on after the deadline that should have stopped it; no check measures work done after a deadline (a real gap: a check would need the lifecycle's deadline as ground truth, which is machine state)",
  'requestLifecycle: drop action cancelSide in DISAGG_GENERATION_TRANS_IN_PROGRESS after kvTransferTimeout':
    "slower, not unsafe: generationReceive is not told and ends by its own kvTransferTimeout (the same delay, armed later) or the lifecycle's quiescenceTimeout (failedClosed: blocks quarantined, then fenced); the outcome is failed/timedOut either way, and a receiver that waits longer holds no block M1, M4 or M9 can tell from the original's. Same gap as the context role: no check reads time spent after a deadline",
  'generationReceive: drop action finish in worker.queued after kvTransferTimeout':
    "real, capacity and reason only: a queue timeout publishes outcome 'pending' (output 'failed') with no proof, so the lease, exposed by startGenerationReceive but never advertised (no request info was sent), is quarantined, then fenced (the context side acks a fence of a request it does not know at once): its blocks are held for quarantineMaxAge plus a fence round trip, and the reason is a transfer failure where nothing was transferred. M12 accepts any failure cause for a failure; M9 sees only retirement. Closing it needs ground truth that no info of the request was ever sent (the world forgets a message once delivered), i.e. a per-request record in the world; not done",
  'generationReceive: drop action finish in worker.awaitingReady PEER_STOPPED':
    "real, capacity only: a 'stopped' that overtakes the ready signal (reordering, after a transfer error or a context-side cancel) ends the wait without its proof (peerFenced), so the lease is quarantined and freed only by a fence after quarantineMaxAge, where the original frees it at once; the outcome is failed either way. M11 refuses a waited-out deadline only on runs with no fault or only cancels, and reaching this needs a reorder plus an error or cancel (an error excuses the wait). No check asks that a proof in hand is used",
  'contextSend: drop action markFenced in sender FENCE[0]':
    "equal behaviour: this branch takes a fence in unwinding (every handle settled). Without markFenced, `fenced` stays false, so signalPeer may also send 'stopped' after the fence acknowledgement; the generation side's receiver finished before its lease could ask for the fence (the lease quarantines only after the receiver's release), so PEER_STOPPED is ignored there ('elsewhere'). `remote` is read only by startTransfers in queued. One more message on the channel, no effect on any block, lease, outcome or deadline",
  'peerSession: drop guard hasEarly in open REQUEST_ENDED[2]':
    "equally correct: a request that ended here without starting is answered not-ready at once instead of when its info arrives (the original answers it then, through finishedUnwritten). The not-ready is true (the request never started here, so nothing was written: M21 holds); the generation side ignores it before it asked (READY_SIGNAL in queued or awaitingSlot) and takes it as the not-ready it would get anyway after; PEER_NOT_READY to a quarantined lease is true late proof. One more message, an earlier correct answer",
  'peerSession: drop action forwardFence in open REQUEST_STARTED[0]':
    "real, latency only: a request fenced (and acknowledged) before it started is not told when it starts, so its contextSend waits in queued for an info the session drops (isFenced) and ends by kvTransferTimeout (timedOut) instead of at once (cancelled). Nothing is written (the info never reaches it) and the generation side already has its ack; M12 accepts timedOut. The fence is reached only through early deadlines, never on prompt runs, so M11 does not see the wait",
  'peerSession: drop action forgetEarly in open PEER_GONE':
    "harmless in the model, harmful with a restart: after the generation process dies its stored infos are kept, and the request, when it starts, writes to the dead peer's blocks (the world lets transfers to a dead process complete; NIXL refuses them). It would corrupt only if a new generation process reused those blocks, and the world models no restart (a death is final); M4 is not charged after a peer death (the original's own M4 there). Needs a restart in the world to decide",
  'blockLease: retarget free ALLOCATE allocated → exposed':
    "real, capacity only: a lease that was never handed to a transfer or advertised is treated as exposed, so a release without proof (the lifecycle's failedClosed after quiescenceTimeout, before its side reported) quarantines it, then fences it, instead of freeing it at once (neverExposed): blocks held for quarantineMaxAge plus a fence. No check asks that a quarantine has a cause; on the context side the ground truth exists (no native transfer of the request was ever created), on the generation side it needs a record of the infos sent. Not done",
  // peerSession, blockLease, transferHandle, fenceClient (sixth session; docs/invariants.md, "Survivors of peerSession, blockLease, ...").
  'transferHandle: drop action markWanted in inProgress CANCEL':
    "hidden context only: the handle's outcome stays null while draining instead of 'cancelled'; no guard reads it, and the output maps null to 'cancelled', so the owner is told the same",
  'transferHandle: drop action markTerminal in inProgress STATUS[1]':
    "hidden context only: after a transfer ERROR the handle reports 'cancelled' instead of 'failed' and sets quiesced through the release's answer (the world releases an errored transfer as quiesced); contextSend reads a handle's outcome only as succeeded or not, so the request's outcome and reason are the same",
  'peerSession: remove branch isActive in open REQUEST_ENDED[0]':
    'hidden context only: an active request that ends is recorded finished (quiesced) and untombstoned before its contextSend finishes; every branch that reads `finished` tests isActive first, REQUEST_FINISHED then overwrites the record, and a late info for it is forwarded to a contextSend already unwinding, which ignores REQUEST_INFO',
  'blockLease: retarget fencing after fenceTimeout retired → free':
    "lease state only: the retarget keeps the transition's retireBlocks action, so the blocks still leave the pool (the world's memory model marks the block retired, as the executor's pool would); only the lease machine rests in `free` instead of final `retired`, and a lease actor belongs to one request and is never allocated again. Searched for a kill from every world where it acted differently (random walks, sixth session): none",
};

/**
 * Reviewed notes on contextSend's survivors (sixth session), merged into SURVIVOR_REASONS. Each says
 * what the mutant does differently and why no check kills it; "equivalent at any bounds" is an
 * argument over every reader of the field or action the mutant changes (machines/contextSend.ts and
 * the wiring in src/core/wiring.ts), not a verdict: a note never changes one.
 */
const SEND_ONLY_READERS =
  'every reader of contextSend’s context is a guard or action of contextSend itself, its output (outcome, quiesced, proof) or the composed S3 (the held flags)';

export const CONTEXT_SEND_NOTES: Readonly<Record<string, string>> = {
  'contextSend: drop action openSession in sender.queued REQUEST_INFO':
    `equivalent at any bounds (argued): ${SEND_ONLY_READERS}. isCurrent and sessionOpen only make S3 fire, never stop it; peerAsked is read only by signalPeer's notReady, which also needs handlesQuiesced === null, impossible once a transfer started (every way from sending or cancellingTransfers to unwinding runs settle); remote is read by nothing (startTransfers takes the event's remote). Undecided only because the shipped scenarios are not explored completely.`,
  'contextSend: drop action markCancelled in sender.queued CANCEL':
    `equivalent at any bounds (argued): ${SEND_ONLY_READERS}; cancelMarked is read only by S3, which it can only make fire.`,
  'contextSend: drop action markFenced in sender.queued FENCE':
    'equivalent at any bounds (argued): fenced is read only by lastAndFenceAckable in cancellingTransfers, which a request fenced while queued never reaches (queued FENCE → unwinding → finished), and remote is already null while queued.',
  'contextSend: drop action decide in sender.sending TRANSFERS_SETTLED[1]':
    "equivalent at any bounds (argued): the outcome stays 'pending' instead of 'failed', and every reader treats the two alike — publishOutcome and signalPeer ask only 'succeeded or not', reportOutcome and the output map 'pending' to 'failed', resultOf gives transferFailed for both — and nothing decides after unwinding starts.",
  'contextSend: drop action decide in sender.sending TRANSFERS_SETTLED[2]':
    "equivalent at any bounds (argued): the request enters cancellingTransfers with outcome 'pending' instead of 'failed'; nothing there or later decides again (CANCEL and FENCE do not), and 'pending' reads as 'failed' everywhere (see TRANSFERS_SETTLED[1]).",
  'contextSend: drop action countSettled in sender.sending TRANSFERS_SETTLED[0]':
    "equivalent in the composed world (argued): the last report's quiesced is left out of settledQuiesced, but it is true for every succeeded handle there (a DONE status marks the handle terminal, and the world accepts every release), and settledOk is not read after the last report.",
  'contextSend: drop action settle in sender.sending TRANSFERS_SETTLED[0]':
    "equivalent in the composed world (argued): handlesQuiesced stays null instead of true (every succeeded handle is quiesced there): quiescentOrNever and output.quiesced read both as true, signalPeer sends nothing for a success either way, and the only difference, proof 'neverExposed' instead of 'terminalStatus', reaches the source lease as RELEASE proof, which blockLease reads only as proof !== null.",
  'contextSend: drop action countSettled in sender.sending TRANSFERS_SETTLED[1]':
    "real difference, undecided: a last handle that failed without proof of quiescence (UCX: drain timed out, released in flight) is left out of settledQuiesced, so the request claims its handles quiesced (fence acknowledged, source lease freed) while bytes may land; needs two handles and UCX, reached only by the truncated composed/handles (clean there to 40,000 worlds, exhaustive to depth 8).",
  'contextSend: remove branch inline in sender.sending TRANSFERS_SETTLED[2]':
    'real but harmless difference: a failed handle that is not the last is only counted, so its siblings are not asked to stop and the request fails when the last settles; the request still waits for every handle (the vLLM #56104 rule holds), and a later cancel from the lifecycle still reaches them (sending handles it), so M24 stays clean. Clean in composed/handles to 6,000 worlds.',
  'contextSend: drop guard lastHandle in sender.cancellingTransfers TRANSFERS_SETTLED[1]':
    'real bug, undecided: the first handle to settle after a cancel unwinds the request while its siblings may still write (the vLLM #56104 class); two handles only, reached only by the truncated shipped scenarios (clean in composed/handles to 40,000 worlds, exhaustive to depth 8).',
  'contextSend: drop action countSettled in sender.cancellingTransfers TRANSFERS_SETTLED[2]':
    'real bug, undecided: a handle that settles before the last is not counted, so the count never reaches N and the request stays in cancellingTransfers for ever (M22 would see the sender never finish once the world is idle); two handles only, and composed/handles is clean to 40,000 worlds (exhaustive to depth 8): the idle world is deeper.',
  'contextSend: drop action decide in sender.sending FENCE':
    "a reporting convention: a request fenced mid-transfer is reported failed (transferFailed; a transfer existed, and may have failed) instead of cancelled. The peer's fence is the peer giving up; M10 and M12 accept either for the side that did not cancel.",
  'contextSend: drop guard lastAndFenceAckable in sender.cancellingTransfers TRANSFERS_SETTLED[0]':
    'killed under --thorough: M1 on footing/1x1-ucx (a fenceAck sent when the handle settled without proof, the block reused while the write lands). The default run stops at footing/1x1-shm, where the only difference is a fenceAck nobody asked for (after a kvTransferTimeout and an ERROR), and reports it survived.',
  'contextSend: drop action signalPeer in sender.unwinding.signal WORKER_STEP':
    "real difference: a request that unwinds before any transfer never tells the asking peer not-ready, so the generation side holds its slot and lease until its own deadline. The wider M11 (no deadline waited out in cancel-only prompt runs) would catch it; the shipped machines break that formulation today (docs/invariants.md).",
  'contextSend: drop action notePeerAsked in sender.cancelMarked REQUEST_INFO':
    "real difference: a request cancelled while queued that the peer then asks for is not answered not-ready (footing/cancel-shm: no not-ready(r1) after 'user: cancel r1 on the context side' and the info), so the generation side waits out its deadline; same class as signalPeer dropped.",
};

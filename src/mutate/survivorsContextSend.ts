/**
 * Reviewed notes on contextSend's survivors (sixth session), merged into SURVIVOR_REASONS. Each says
 * what the mutant does differently and why no check kills it; "equivalent at any bounds" is an
 * argument over every reader of the field or action the mutant changes (machines/contextSend.ts and
 * the wiring in src/core/wiring.ts), not a verdict: a note never changes one.
 */
export const CONTEXT_SEND_NOTES: Readonly<Record<string, string>> = {
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
  'contextSend: drop action decide in sender.sending FENCE':
    "a reporting convention: a request fenced mid-transfer is reported failed (transferFailed; a transfer existed, and may have failed) instead of cancelled. The peer's fence is the peer giving up; M10 and M12 accept either for the side that did not cancel.",
};

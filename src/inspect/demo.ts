import type { AnyActorRef, AnyStateMachine, InspectionEvent } from 'xstate';
import { createActor, SimulatedClock } from 'xstate';
import type { ContextSendOutput, GenerationReceiveOutput, TransferHandleOutput } from '../../machines/index.js';
import type { MachineEvent } from '../explore/world.js';
import { blockLeaseMachine, contextSendMachine, generationReceiveMachine, requestLifecycleMachine, transferHandleMachine } from '../../machines/index.js';

/**
 * A small self-driving simulation for the inspector: a few requests through their lifecycles with the
 * production machines run as real actors (`createActor(..., { inspect })`), wired together the way an
 * executor would wire them (the machines' named actions become events for other actors). Each request has
 * its own SimulatedClock, so deadlines fire only when its story says time passes: stepping is deterministic.
 *
 * Actors of request `r1`: `r1.ctx` and `r1.gen` (requestLifecycle, context and generation role),
 * `r1.send` (contextSend), `r1.recv` (generationReceive), `r1.handle` (transferHandle), `r1.blocks` (blockLease).
 */
export type DemoStory = 'success' | 'cancel' | 'stall';

export const DEMO_STORIES: readonly DemoStory[] = ['success', 'cancel', 'success', 'stall'];

interface Stimulus {
  label: string;
  run(): void;
}

export interface DemoRequest {
  id: string;
  story: DemoStory;
  clock: SimulatedClock;
  actors: Map<string, AnyActorRef>;
  script: Stimulus[];
  pos: number;
}

export interface DemoOptions {
  inspect?: (ev: InspectionEvent) => void;
  /** Ticks a stalled request waits (visibly stuck) before its deadlines fire. */
  stallTicks?: number;
}

export class DemoDriver {
  readonly requests: DemoRequest[] = [];
  private readonly routed: Array<() => void> = [];
  private next = 0;
  private started = 0;
  private readonly machines: Record<'ctx' | 'gen' | 'send' | 'recv' | 'handle' | 'blocks', AnyStateMachine>;

  constructor(private readonly opts: DemoOptions = {}) {
    const later = (fn: () => void) => this.routed.push(fn);
    const req = (p: { requestId: string }) => this.request(p.requestId);
    const reason = (o: string) => (o === 'failed' ? 'transferFailed' : o) as 'cancelled' | 'timedOut' | 'transferFailed';
    this.machines = {
      ctx: requestLifecycleMachine.provide({
        actions: {
          startContextSend: (_, p) => later(() => this.spawn(req(p), 'send', this.machines.send, { requestId: p.requestId })),
          cancelSide: (_, p) => later(() => this.send(req(p), 'send', { type: 'CANCEL' })),
        },
      }),
      gen: requestLifecycleMachine.provide({
        actions: {
          startGenerationReceive: (_, p) =>
            later(() => {
              this.send(req(p), 'blocks', { type: 'EXPOSE' });
              this.spawn(req(p), 'recv', this.machines.recv, { requestId: p.requestId });
            }),
          cancelSide: (_, p) => later(() => this.send(req(p), 'recv', { type: 'CANCEL' })),
          freeResources: (_, p) => later(() => this.send(req(p), 'blocks', { type: 'RELEASE', proof: p.proof ? 'terminalStatus' : null })),
        },
      }),
      send: contextSendMachine.provide({
        actions: {
          sendReadySignal: (_, p) => later(() => this.send(req(p), 'recv', { type: 'READY_SIGNAL', ready: p.ready })),
          startTransfers: (_, p) =>
            later(() => {
              this.spawn(req(p), 'handle', this.machines.handle, { handleId: `${p.requestId}.handle`, semantics: { canAbortInFlight: false, releaseInFlightQuiesces: false } });
              this.send(req(p), 'handle', { type: 'POST' });
            }),
          cancelTransfers: (_, p) => later(() => this.send(req(p), 'handle', { type: 'CANCEL' })),
          signalPeer: (_, p) => later(() => p.notReady && this.send(req(p), 'recv', { type: 'READY_SIGNAL', ready: false })),
          reportOutcome: (_, p) =>
            later(() => this.send(req(p), 'ctx', p.outcome === 'succeeded' ? { type: 'SEND_COMPLETE' as const } : { type: 'SEND_FAILED' as const, reason: reason(p.outcome) })),
        },
      }),
      recv: generationReceiveMachine.provide({
        actions: {
          requestSlot: (_, p) => later(() => this.send(req(p), 'recv', { type: 'SLOT_GRANTED' })),
          sendRequestInfo: (_, p) => later(() => this.send(req(p), 'send', { type: 'REQUEST_INFO' })),
          reportOutcome: (_, p) =>
            later(() => this.send(req(p), 'gen', p.outcome === 'succeeded' ? { type: 'RECV_COMPLETE' as const } : { type: 'RECV_FAILED' as const, reason: reason(p.outcome) })),
        },
      }),
      handle: transferHandleMachine.provide({
        actions: {
          // NIXL over UCX: the release is accepted but proves nothing about in-flight writes.
          releaseHandle: (_, p) => later(() => this.send(this.request(p.handleId.slice(0, p.handleId.lastIndexOf('.'))), 'handle', { type: 'RELEASE_RESULT', accepted: true, quiesced: false })),
        },
      }),
      blocks: blockLeaseMachine,
    };
  }

  /** Start a request with the given story (or the next in DEMO_STORIES). */
  startRequest(story?: DemoStory): DemoRequest {
    const id = `r${++this.started}`;
    const r: DemoRequest = { id, story: story ?? DEMO_STORIES[(this.started - 1) % DEMO_STORIES.length]!, clock: new SimulatedClock(), actors: new Map(), script: [], pos: 0 };
    this.requests.push(r);
    this.spawn(r, 'ctx', this.machines.ctx, { requestId: id, role: 'context' });
    this.spawn(r, 'gen', this.machines.gen, { requestId: id, role: 'generation' });
    this.spawn(r, 'blocks', this.machines.blocks, { leaseId: `${id}.blocks` });
    r.script = this.script(r);
    this.drain();
    return r;
  }

  /** Whether a request has stimuli left. */
  pending(r: DemoRequest): boolean {
    return r.pos < r.script.length;
  }

  /** Apply the next stimulus of the next request with work left (round robin) and everything it routes. */
  step(): string | null {
    const active = this.requests.filter((r) => this.pending(r));
    if (active.length === 0) return null;
    const r = active[this.next++ % active.length]!;
    return this.stepRequest(r);
  }

  stepRequest(r: DemoRequest): string | null {
    const s = r.script[r.pos++];
    if (!s) return null;
    s.run();
    this.drain();
    return `${r.id}: ${s.label}`;
  }

  actor(name: string): AnyActorRef | undefined {
    const dot = name.lastIndexOf('.');
    return this.requests.find((r) => r.id === name.slice(0, dot))?.actors.get(name);
  }

  /** Stop a finished request's actors and forget it (keeps a long-running demo bounded). */
  retire(r: DemoRequest): void {
    for (const a of r.actors.values()) a.stop();
    this.requests.splice(this.requests.indexOf(r), 1);
  }

  stop(): void {
    for (const r of [...this.requests]) this.retire(r);
  }

  private request(id: string): DemoRequest {
    const r = this.requests.find((x) => x.id === id);
    if (!r) throw new Error(`no demo request ${id}`);
    return r;
  }

  private spawn(r: DemoRequest, role: string, machine: AnyStateMachine, input: unknown): void {
    const name = `${r.id}.${role}`;
    if (r.actors.has(name)) return;
    const a = createActor(machine, { input: input as never, clock: r.clock, systemId: name, ...(this.opts.inspect ? { inspect: this.opts.inspect } : {}) });
    r.actors.set(name, a);
    a.subscribe({
      next: (s) => {
        if (s.status !== 'done') return;
        const out = s.output as ContextSendOutput | GenerationReceiveOutput | TransferHandleOutput | undefined;
        if (role === 'send') this.routed.push(() => this.send(r, 'ctx', { type: 'SIDE_QUIESCENT', proof: (out as ContextSendOutput).quiesced }));
        if (role === 'recv') this.routed.push(() => this.send(r, 'gen', { type: 'SIDE_QUIESCENT', proof: (out as GenerationReceiveOutput).proof !== null }));
        if (role === 'handle') {
          const h = out as TransferHandleOutput;
          this.routed.push(() => this.send(r, 'send', { type: 'TRANSFERS_SETTLED', outcome: h.outcome, quiesced: h.quiesced }));
        }
      },
      error: () => {},
    });
    a.start();
  }

  private send(r: DemoRequest, role: string, event: MachineEvent): void {
    r.actors.get(`${r.id}.${role}`)?.send(event);
  }

  private drain(): void {
    for (let guard = 0; this.routed.length > 0 && guard < 10_000; guard++) this.routed.shift()!();
  }

  private script(r: DemoRequest): Stimulus[] {
    const to = (role: string, event: MachineEvent, label: string): Stimulus => ({ label, run: () => this.send(r, role, event) });
    const wait = (label: string): Stimulus => ({ label, run: () => {} });
    const time = (ms: number, label: string): Stimulus => ({ label, run: () => r.clock.increment(ms) });
    const workerSteps = Array.from({ length: 5 }, (_, i) => to('send', { type: 'WORKER_STEP' }, `sender worker step ${i + 1}/5`));
    const start = [
      to('ctx', { type: 'CONTEXT_DONE' }, 'prefill done; respond and send'),
      { label: 'scheduler admits the request; KV blocks allocated', run: () => (this.send(r, 'blocks', { type: 'ALLOCATE' }), this.send(r, 'gen', { type: 'SCHEDULED' })) },
      to('recv', { type: 'WORKER_POP' }, 'receiver worker pops the request'),
    ];
    switch (r.story) {
      case 'success':
        return [
          ...start,
          to('handle', { type: 'STATUS', status: 'DONE' }, 'transfer status DONE'),
          ...workerSteps,
          to('send', { type: 'STATUS_POLL' }, 'context status checker polls'),
          to('recv', { type: 'SYNC_WAIT_ENDED', arrived: true }, 'sync notification arrived'),
          to('recv', { type: 'STATUS_POLL' }, 'generation status checker polls'),
          to('gen', { type: 'DECODE_START' }, 'decoding starts'),
          to('gen', { type: 'DECODE_DONE' }, 'decoding done'),
        ];
      case 'cancel':
        return [
          ...start,
          wait('transfer in flight'),
          to('gen', { type: 'CANCEL' }, 'user cancels the request'),
          to('recv', { type: 'STATUS_POLL' }, 'generation status checker polls'),
          to('handle', { type: 'STATUS', status: 'DONE' }, 'the write landed anyway: status DONE'),
          ...workerSteps,
          to('send', { type: 'STATUS_POLL' }, 'context status checker polls'),
          wait('blocks stay quarantined'),
          to('blocks', { type: 'QUIESCENCE_PROOF', proof: 'terminalAndSync' }, 'late sync notification proves the blocks quiet'),
        ];
      case 'stall':
        return [
          ...start,
          ...Array.from({ length: this.opts.stallTicks ?? 12 }, () => wait('peer silent (stuck)')),
          time(60_000, '60 s pass: kvTransferTimeout'),
          time(5_000, '5 s pass: drainTimeout'),
          ...workerSteps,
          to('send', { type: 'STATUS_POLL' }, 'context status checker polls'),
          to('recv', { type: 'STATUS_POLL' }, 'generation status checker polls'),
          wait('blocks quarantined'),
          time(30_000, '30 s pass: quarantineMaxAge, fence the peer'),
          to('blocks', { type: 'FENCE_CONFIRMED' }, 'peer confirms the fence'),
        ];
    }
  }
}

/**
 * Run the demo on a wall-clock tick until stopped: a new request every few ticks (stories in rotation),
 * at most `concurrent` at a time, finished ones retired after a while. Returns a stop function.
 */
export function runDemo(inspect: (ev: InspectionEvent) => void, options: { tickMs?: number; concurrent?: number; keepFinished?: number } = {}): () => void {
  const driver = new DemoDriver({ inspect });
  const concurrent = options.concurrent ?? 4;
  const keepFinished = options.keepFinished ?? 8;
  let tick = 0;
  const finished: DemoRequest[] = [];
  const timer = setInterval(() => {
    tick++;
    const active = driver.requests.filter((r) => driver.pending(r));
    if (active.length < concurrent && (active.length === 0 || tick % 5 === 0)) driver.startRequest();
    driver.step();
    for (const r of driver.requests) if (!driver.pending(r) && !finished.includes(r)) finished.push(r);
    while (finished.length > keepFinished) driver.retire(finished.shift()!);
  }, options.tickMs ?? 500);
  return () => {
    clearInterval(timer);
    driver.stop();
  };
}

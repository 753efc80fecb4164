import { describe, expect, it } from 'vitest';
import { contextSendMachine, generationReceiveMachine, requestLifecycleMachine, transferHandleMachine } from '../../machines/index.js';
import { activeStateIds, machineToDot, stateNodeIds } from '../../src/inspect/dot.js';
import { machineToSvg, PRODUCTION_MACHINES } from '../../src/inspect/diagrams.js';

describe('machineToDot', () => {
  it('draws every state node of every production machine with its state node id', () => {
    for (const m of PRODUCTION_MACHINES) {
      const dot = machineToDot(m);
      for (const id of stateNodeIds(m)) expect(dot, `${m.id}: ${id}`).toContain(`id="${id}"`);
    }
  });

  it('is deterministic', () => {
    for (const m of PRODUCTION_MACHINES) expect(machineToDot(m)).toBe(machineToDot(m));
  });

  it('makes compound and parallel states clusters, final states double-bordered', () => {
    const dot = machineToDot(contextSendMachine);
    expect(dot).toContain('subgraph "cluster:contextSend.sender"');
    expect(dot).toContain('subgraph "cluster:contextSend.sender.unwinding"');
    expect(dot).toMatch(/"contextSend\.sender\.finished" \[[^\]]*peripheries=2/);
    // Edges into a compound state attach to its initial marker and clip at the cluster.
    expect(dot).toMatch(/-> "contextSend\.sender\.unwinding#initial" \[[^\]]*lhead="cluster:contextSend\.sender\.unwinding"/);
  });

  it('labels events, guards, delays and always transitions', () => {
    const dot = machineToDot(requestLifecycleMachine);
    expect(dot).toContain('always [isContext]');
    expect(dot).toContain('after kvTransferTimeout');
    expect(dot).toContain('SIDE_QUIESCENT');
    expect(machineToDot(contextSendMachine)).toContain('TRANSFERS_SETTLED [lastAllSucceeded]');
    // Inline guard functions get a fixed label: their source text differs between compilers.
    expect(machineToDot(transferHandleMachine)).toContain('STATUS [inline]');
    // Targetless transitions with actions are listed inside the state.
    expect(machineToDot(requestLifecycleMachine)).toContain('CANCEL / cancelSide');
  });

  it('renders to SVG whose elements carry the state node ids', async () => {
    const svg = await machineToSvg(generationReceiveMachine);
    for (const id of stateNodeIds(generationReceiveMachine)) expect(svg).toContain(`id="${id}"`);
    expect(svg).not.toMatch(/id="(node|clust|edge|graph)\d+"/);
  });
});

describe('activeStateIds', () => {
  it('lists every active node of a parallel, nested value', () => {
    expect(activeStateIds(contextSendMachine, { sender: { unwinding: 'erase' }, future: 'pending' })).toEqual([
      'contextSend.sender',
      'contextSend.sender.unwinding',
      'contextSend.sender.unwinding.erase',
      'contextSend.future',
      'contextSend.future.pending',
    ]);
  });

  it('works from a machine id alone (wire messages of unknown machines)', () => {
    expect(activeStateIds('requestLifecycle', { GENERATION_COMPLETE: 'released' })).toEqual(['requestLifecycle.GENERATION_COMPLETE', 'requestLifecycle.GENERATION_COMPLETE.released']);
    expect(activeStateIds(transferHandleMachine, 'inProgress')).toEqual(['transferHandle.inProgress']);
  });
});

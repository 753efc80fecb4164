import type { PeerMessage } from '../core/effects.js';
import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

/**
 * Messages between the generation server and the context server (JSON lines over a Unix socket): the
 * protocol's own PeerMessage (src/core/effects.ts), so what the explorer models is what travels.
 */
export type ControlMessage = PeerMessage;

/** One side's end of the control channel: a Unix socket in production, an in-memory link in the simulator. */
export interface ControlLink {
  send(m: ControlMessage): void;
  close(): void;
}

export class ControlChannel implements ControlLink {
  private buffer = '';
  constructor(
    private readonly socket: Socket,
    private readonly onMessage: (m: ControlMessage) => void,
    onClose: () => void,
  ) {
    socket.setEncoding('utf8');
    // A bound method, not an arrow: the arrow's optimized code lived only as long as its channel, and
    // every channel made after the last was collected compiled it again.
    socket.on('data', this.received.bind(this));
    socket.on('close', onClose);
    socket.on('error', () => socket.destroy());
  }

  private received(chunk: string): void {
    this.buffer += chunk;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      if (line.length > 0) this.onMessage(JSON.parse(line) as ControlMessage);
    }
  }

  send(m: ControlMessage): void {
    if (!this.socket.destroyed) this.socket.write(`${JSON.stringify(m)}\n`);
  }

  close(): void {
    this.socket.end();
  }
}

export function listenControl(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(onConnection);
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

export function connectControl(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createConnection(path, () => resolve(s));
    s.once('error', reject);
  });
}

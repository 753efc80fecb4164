import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

/** Messages between the generation server and the context server (JSON lines over a Unix socket). */
export type ControlMessage =
  /** Generation → context: RequestAndBufferInfo, the descriptors of the blocks the sender may write. */
  /** `epoch`: the generation pool's epoch for this allocation — the pattern the written blocks must carry. */
  | { t: 'info'; id: string; remote: Array<{ regionId: number; offset: number; length: number }>; epoch: number }
  /** Context → generation: the ready signal; `epoch` is the source lease epoch the blocks will carry. */
  | { t: 'ready'; id: string; ready: boolean; epoch: number; requestNumber: number }
  /** Generation → context: fence a quarantined lease; answered by fenceAck once nothing can write. */
  | { t: 'fence'; id: string }
  | { t: 'fenceAck'; id: string };

/** One side's end of the control channel: a Unix socket in production, an in-memory link in the simulator. */
export interface ControlLink {
  send(m: ControlMessage): void;
  close(): void;
}

export class ControlChannel implements ControlLink {
  private buffer = '';
  constructor(
    private readonly socket: Socket,
    onMessage: (m: ControlMessage) => void,
    onClose: () => void,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      let nl: number;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl);
        this.buffer = this.buffer.slice(nl + 1);
        if (line.length > 0) onMessage(JSON.parse(line) as ControlMessage);
      }
    });
    socket.on('close', onClose);
    socket.on('error', () => socket.destroy());
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

import { expect } from 'chai';
import net from 'node:net';
import type { ChannelModel } from 'amqplib';
import { waitUntil } from '@contexture/test-support';
import { watchSilence } from '../src/amqp-watchdog.js';

/** A loopback TCP pair: `peer` plays the broker, `socket` is what amqplib would hold. */
async function pair(): Promise<{ socket: net.Socket; peer: net.Socket; close: () => void }> {
  let peer!: net.Socket;
  const server = net.createServer((s) => (peer = s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  socket.on('error', () => {});
  socket.on('data', () => {});
  await waitUntil(() => peer !== undefined && socket.readyState === 'open', 'the connection');
  peer.on('error', () => {});
  return {
    socket,
    peer,
    close: () => {
      socket.destroy();
      peer.destroy();
      server.close();
    },
  };
}

const modelOf = (socket: net.Socket, heartbeat: number) =>
  ({ connection: { heartbeat, stream: socket } }) as unknown as ChannelModel;

describe('watchSilence: the AMQP connection watchdog (loopback sockets)', function () {
  this.timeout(20_000);

  it('cuts a connection with nothing from the peer for twice the heartbeat, saying why', async () => {
    const { socket, close } = await pair();
    try {
      let why: Error | undefined;
      socket.on('error', (err) => (why = err));
      watchSilence(modelOf(socket, 1));
      await waitUntil(() => socket.destroyed, 'the silent connection cut', 10_000);
      expect(why?.message).to.equal('Heartbeat timeout: nothing from the broker for 2 s');
    } finally {
      close();
    }
  });

  it('a program that holds the event loop longer than that is not taken for a silent peer', async () => {
    const { socket, peer, close } = await pair();
    try {
      watchSilence(modelOf(socket, 1));
      // The peer keeps talking; its bytes wait unread while the loop is held for 2.5 s (> 2 s).
      const talk = setInterval(() => peer.write('x'), 100);
      try {
        await new Promise((r) => setTimeout(r, 300));
        peer.write('x');
        const end = Date.now() + 2500;
        while (Date.now() < end) {
          /* the program's own long synchronous work */
        }
        const before = socket.bytesRead;
        await waitUntil(() => socket.bytesRead > before + 3, 'the peer heard again after the hold');
      } finally {
        clearInterval(talk);
      }
      expect(socket.destroyed).to.equal(false);
    } finally {
      close();
    }
  });

  it('does nothing without a negotiated heartbeat', async () => {
    const { socket, close } = await pair();
    try {
      watchSilence(modelOf(socket, 0));
      const end = Date.now() + 100;
      await waitUntil(() => Date.now() > end, 'a while');
      expect(socket.destroyed).to.equal(false);
    } finally {
      close();
    }
  });
});

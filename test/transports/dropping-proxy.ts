import { createConnection, createServer } from 'node:net';
import type { Server, Socket } from 'node:net';

/**
 * Decides, for one proxied connection, which of the server's bytes reach the
 * client. `fromClient` sees what the client sends (to learn what it asked
 * for); `fromServer` returns what to forward of a chunk the server sent.
 */
interface ConnectionFilter {
  fromClient(chunk: Buffer): void;
  fromServer(chunk: Buffer): Buffer;
}

/** A TCP proxy in front of a server that forwards everything but what its filter drops. */
interface DroppingProxy {
  readonly port: number;
  /** How many server messages the filters dropped, over all connections. */
  readonly dropped: number;
  close(): Promise<void>;
}

/**
 * Starts a proxy on 127.0.0.1 that forwards each connection to `target`,
 * passing the server's bytes through a fresh filter per connection. The
 * client's connection and its requests work; only what the filter drops is
 * lost, as with a middlebox that swallows asynchronous messages.
 */
export async function startDroppingProxy(
  target: { host: string; port: number },
  createFilter: (countDrop: () => void) => ConnectionFilter,
): Promise<DroppingProxy> {
  const sockets = new Set<Socket>();
  let dropped = 0;
  const server: Server = createServer((client) => {
    const upstream = createConnection(target);
    const filter = createFilter(() => void dropped++);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      // A reset on one side ends both; the client sees a lost connection, as it would without the proxy.
      socket.on('error', () => undefined);
    }
    client.on('data', (chunk: Buffer) => {
      filter.fromClient(chunk);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      const forward = filter.fromServer(chunk);
      if (forward.length > 0) client.write(forward);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  const port = await new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
  return {
    port,
    get dropped() {
      return dropped;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** SSLRequest and GSSENCRequest: the server answers each with one untyped byte. */
const ENCRYPTION_REQUESTS = new Set([80877103, 80877104]);

/**
 * Drops PostgreSQL's NotificationResponse messages ('A'): LISTEN succeeds and
 * every query (the heartbeat too) is answered, but no NOTIFY arrives.
 */
export function dropPostgresNotifications(countDrop: () => void): ConnectionFilter {
  let pending = Buffer.alloc(0);
  let untypedBytes = 0;
  let clientBytes = 0;
  return {
    fromClient(chunk) {
      // The first message of a connection may ask for encryption (length 8, then the request code).
      if (clientBytes === 0 && chunk.length >= 8 && ENCRYPTION_REQUESTS.has(chunk.readInt32BE(4))) {
        untypedBytes += 1;
      }
      clientBytes += chunk.length;
    },
    fromServer(chunk) {
      pending = Buffer.concat([pending, chunk]);
      const forward: Buffer[] = [];
      while (untypedBytes > 0 && pending.length > 0) {
        if (pending[0] === 0x53) throw new Error('the dropping proxy cannot read an encrypted connection');
        forward.push(pending.subarray(0, 1));
        pending = pending.subarray(1);
        untypedBytes -= 1;
      }
      // Each message: a type byte, then a length that counts itself but not the type.
      while (pending.length >= 5) {
        const size = 1 + pending.readInt32BE(1);
        if (pending.length < size) break;
        const message = pending.subarray(0, size);
        pending = pending.subarray(size);
        if (message[0] === 0x41) countDrop();
        else forward.push(message);
      }
      return Buffer.concat(forward);
    },
  };
}

/**
 * Drops what Redis sends a connection after it confirmed a SUBSCRIBE: the
 * subscription succeeds, but no published message (and no probe) reaches the
 * subscriber. Other connections (the publisher) are answered as usual.
 */
export function dropRedisMessages(countDrop: () => void): ConnectionFilter {
  let subscribing = false;
  let subscribed = false;
  return {
    fromClient(chunk) {
      if (/subscribe/i.test(chunk.toString('latin1'))) subscribing = true;
    },
    fromServer(chunk) {
      if (subscribed) {
        countDrop();
        return Buffer.alloc(0);
      }
      // The confirmation of the SUBSCRIBE passes; a message published afterwards never does.
      if (subscribing && chunk.toString('latin1').includes('subscribe')) subscribed = true;
      return chunk;
    },
  };
}

/**
 * A TCP forwarder for tests: it listens on one address and pipes each connection to another, as
 * NAT or a container's published port does, so a node can be reached at an address it does not
 * listen on itself.
 *
 *   const forwarder = await startForwarder({ host: '127.0.0.2', port }, { host: '127.0.0.1', port });
 *   // ... peers dial 127.0.0.2:port and reach the node listening on 127.0.0.1:port ...
 *   await forwarder.close();
 */
import net from 'node:net';

export interface TcpAddress {
  readonly host: string;
  readonly port: number;
}

export interface Forwarder {
  /** Connections forwarded so far. */
  readonly connections: number;
  /** Stops listening and ends every forwarded connection. */
  close(): Promise<void>;
}

export async function startForwarder(listen: TcpAddress, target: TcpAddress): Promise<Forwarder> {
  const open = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((inbound) => {
    connections++;
    const outbound = net.connect(target);
    for (const socket of [inbound, outbound]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      // Either side failing ends both, as a closed connection through NAT does.
      socket.on('error', () => {
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound);
    outbound.pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  return {
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

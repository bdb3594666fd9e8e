/**
 * The memcache port's listener and open client connections, numbered, for `stats conns`: one block
 * per connection as memcached formats it (`<n>:addr`, `<n>:listen_addr`, `<n>:state`,
 * `<n>:secs_since_last_cmd`). memcached numbers them by file descriptor; kai gives each connection
 * the next number from 1 as it is accepted, and the listener 0.
 */

/** What the table needs to know of an open connection. */
export interface ListedConnection {
  /** `tcp:<address>:<port>` of the client. */
  readonly remote: string;
  /** `tcp:<address>:<port>` the client connected to. */
  readonly local: string;
  /** The state as memcached names it (Connection.stateName). */
  state(): string;
  /** When its last request was decoded, or it was accepted (unix ms). */
  lastCommandAtMs(): number;
}

type Rows = [string, string][];

export class ConnectionTable {
  private readonly open = new Map<number, ListedConnection>();
  private nextId = 1;
  private listener: { readonly address: string; readonly sinceMs: number } | undefined;

  /** The port listens at `address` (`tcp:<host>:<port>`) since `sinceMs`. */
  listening(address: string, sinceMs: number): void {
    this.listener = { address, sinceMs };
  }

  /** A connection was accepted: its number, until `remove`. */
  add(connection: ListedConnection): number {
    const id = this.nextId++;
    this.open.set(id, connection);
    return id;
  }

  remove(id: number): void {
    this.open.delete(id);
  }

  /** `stats conns`: the listener, then each connection in the order they were accepted. */
  statistics(nowMs: number): Rows {
    const rows: Rows = [];
    const secondsSince = (ms: number): string => String(Math.max(0, Math.floor((nowMs - ms) / 1000)));
    if (this.listener) {
      rows.push(['0:addr', this.listener.address], ['0:state', 'conn_listening'], ['0:secs_since_last_cmd', secondsSince(this.listener.sinceMs)]);
    }
    for (const [id, connection] of this.open) {
      rows.push(
        [`${id}:addr`, connection.remote],
        [`${id}:listen_addr`, connection.local],
        [`${id}:state`, connection.state()],
        [`${id}:secs_since_last_cmd`, secondsSince(connection.lastCommandAtMs())],
      );
    }
    return rows;
  }
}

/** An address as memcached's `stats conns` writes it. */
export function tcpAddress(host: string | undefined, port: number | undefined): string {
  return `tcp:${host ?? 'unknown'}:${port ?? 0}`;
}

/**
 * TcpTransports for tests of the internal API in this process: servers on free ports and clients,
 * all closed by `closeAll` (for afterEach), plus the waits and checks those tests share.
 */
import { realEnv } from '../../src/env';
import { KaiError } from '../../src/errors';
import type { RpcRequest } from '../../src/rpc/messages';
import { TcpTransport, type TcpTransportOptions } from '../../src/rpc/tcp-transport';
import type { RequestHandler } from '../../src/rpc/transport';
import { getFreePort, loopbackHost } from './servers';

export class TransportPool {
  private readonly started: TcpTransport[] = [];

  /** `defaults` apply to every transport; `clientDefaults` to clients on top of them. */
  constructor(
    private readonly defaults: Partial<TcpTransportOptions> & { readonly frameBytesMax: number },
    private readonly clientDefaults: Partial<TcpTransportOptions> = {},
  ) {}

  /** A transport serving `handler` on a free port of 127.0.0.1. */
  async serving(handler: RequestHandler, options: Partial<TcpTransportOptions> = {}): Promise<TcpTransport> {
    const transport = new TcpTransport({ host: loopbackHost, port: await getFreePort(), env: realEnv, ...this.defaults, ...options });
    this.started.push(transport);
    await transport.serve(handler);
    return transport;
  }

  /** A transport that only sends requests. */
  client(options: Partial<TcpTransportOptions> = {}): TcpTransport {
    const transport = new TcpTransport({ host: loopbackHost, port: 0, env: realEnv, ...this.defaults, ...this.clientDefaults, ...options });
    this.started.push(transport);
    return transport;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.started.splice(0).map((transport) => transport.close()));
  }
}

/** Polls `condition` every `stepMs`, failing after `limitMs`. */
export async function waitFor(condition: () => boolean, limitMs: number, stepMs = 5): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}

/** The KaiError `promise` rejects with; fails when it resolves or rejects with anything else. */
export async function rejection(promise: Promise<unknown>): Promise<KaiError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KaiError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

/** A handler answering `stored` that keeps every request it got: none may come from a refused peer. */
export function countingHandler(): { handler: RequestHandler; handled: RpcRequest[] } {
  const handled: RpcRequest[] = [];
  return { handled, handler: (request) => (handled.push(request), { type: 'stored' }) };
}

/**
 * A simulated world: one scheduler, one network, and a host per node address bundling the Env and
 * Transport a node is built from. Crashing a host halts its timers and its transport together, as
 * a process dying does; restarting gives fresh ones for the new node instance (same clock skew).
 */
import { assert } from '../../src/errors';
import { SimNetwork, type SimNetworkOptions, type SimTransport } from './network';
import { SimScheduler, type SimEnv, type SimSchedulerOptions } from './scheduler';

export interface SimHost {
  readonly address: string;
  readonly env: SimEnv;
  readonly transport: SimTransport;
}

export interface SimWorldOptions extends SimSchedulerOptions {
  readonly network?: SimNetworkOptions;
}

export class SimWorld {
  readonly scheduler: SimScheduler;
  readonly network: SimNetwork;
  private readonly hosts = new Map<string, SimHost>();

  constructor(options: SimWorldOptions) {
    this.scheduler = new SimScheduler(options);
    this.network = new SimNetwork(this.scheduler, options.network);
  }

  get seed(): number {
    return this.scheduler.seed;
  }

  /** A new host at `address`: its node's Env (with an optional clock skew) and Transport. */
  host(address: string, options: { readonly clockSkewMs?: number } = {}): SimHost {
    assert(!this.hosts.has(address), `${address} is a host once; use restart after a crash`);
    const host: SimHost = {
      address,
      env: this.scheduler.env(address, options),
      transport: this.network.transport(address),
    };
    this.hosts.set(address, host);
    return host;
  }

  /** The current host at `address`. */
  at(address: string): SimHost {
    const host = this.hosts.get(address);
    assert(host, `${address} is a host`);
    return host;
  }

  get addresses(): string[] {
    return [...this.hosts.keys()];
  }

  /** The process at `address` dies: no more timers, no more answers, its pending requests fail. */
  crash(address: string): void {
    this.at(address).env.halt();
    this.network.crash(address);
  }

  /** Starts a new process at `address`, with a fresh Env and Transport to build the node from. */
  restart(address: string): SimHost {
    const previous = this.at(address);
    const host: SimHost = {
      address,
      env: this.scheduler.env(address, { clockSkewMs: previous.env.clockSkewMs }),
      transport: this.network.restart(address),
    };
    this.hosts.set(address, host);
    return host;
  }

  isUp(address: string): boolean {
    return !this.network.isCrashed(address);
  }

  runFor(durationMs: number): Promise<void> {
    return this.scheduler.runFor(durationMs);
  }

  runUntil(predicate: () => boolean, maxMs: number): Promise<boolean> {
    return this.scheduler.runUntil(predicate, maxMs);
  }

  runUntilIdle(maxMs: number): Promise<boolean> {
    return this.scheduler.runUntilIdle(maxMs);
  }

  /**
   * A client's call through `via`, given up after `timeoutMs` of virtual time as a memcache
   * client's socket timeout would: a node that crashes mid-request never answers.
   */
  withClientTimeout<T>(via: string, call: Promise<T>, timeoutMs: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = this.scheduler.schedule(timeoutMs, `client timeout via ${via}`, () =>
        reject(new Error(`${via} did not answer within ${timeoutMs} ms`)),
      );
      call.then(
        (value) => {
          timer.cancel();
          resolve(value);
        },
        (error: unknown) => {
          timer.cancel();
          reject(error);
        },
      );
    });
  }
}

/**
 * A simulated network for nodes in one process. Each node gets a SimTransport (the Transport the
 * real TCP one implements); requests and replies travel as scheduler events after a delay drawn
 * from the seed, and may be lost, cut by partitions, held back by clogs, or dropped because a
 * node crashed. Messages are packed and unpacked with msgpack on the way, as on the real wire,
 * so nodes never share objects, and each is shape-checked on arrival as the real receiver does.
 */
import { assert, asKaiError, KaiError } from '../../src/errors';
import type { RpcReply, RpcRequest } from '../../src/rpc/messages';
import { wirePackr } from '../../src/rpc/frames';
import { replyProblem, requestProblem } from '../../src/rpc/message-shapes';
import type { RequestHandler, Transport } from '../../src/rpc/transport';
import type { TimerHandle } from '../../src/env';
import type { SimRandom } from './random';
import type { SimScheduler } from './scheduler';


export interface LinkFaults {
  /** One-way delay of a message, drawn uniformly from [delayMsMin, delayMsMax]. */
  readonly delayMsMin: number;
  readonly delayMsMax: number;
  /** Chance that any one message (request or reply) is lost. */
  readonly lossProbability: number;
}

export interface SimNetworkOptions extends Partial<LinkFaults> {
  /**
   * What a handler's non-KaiError throw does. Operating errors are KaiErrors, so anything else is
   * a bug: by default it stops the run ('fail-run'); 'reply' answers KAI_INTERNAL as a real node would.
   */
  readonly internalErrors?: 'fail-run' | 'reply';
}

export const linkFaultsDefault: LinkFaults = { delayMsMin: 1, delayMsMax: 10, lossProbability: 0 };

/** What happened to messages, counted by outcome. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  /** Dropped by the configured loss probability. */
  lost: number;
  /** Dropped because sender and receiver were on different sides, at sending or at arrival. */
  partitioned: number;
  /** Dropped because nobody was serving there: unknown address, crashed or closed node. */
  unreachable: number;
  /** Replies that arrived after their request had timed out or its sender had gone. */
  late: number;
  timedOut: number;
}

interface Endpoint {
  readonly address: string;
  transport: SimTransport | undefined;
  crashed: boolean;
  clogUntilMs: number;
}

interface Pending {
  readonly resolve: (reply: RpcReply) => void;
  readonly reject: (error: KaiError) => void;
  readonly timeout: TimerHandle;
}

export class SimNetwork {
  readonly stats: NetworkStats = { sent: 0, delivered: 0, lost: 0, partitioned: 0, unreachable: 0, late: 0, timedOut: 0 };
  private faults: LinkFaults;
  private readonly internalErrors: 'fail-run' | 'reply';
  private readonly random: SimRandom;
  private readonly endpoints = new Map<string, Endpoint>();
  /** Which side of the current partition each address is on; unlisted addresses are on side 0. */
  private sides = new Map<string, number>();
  private sidesCreated = 0;
  private readonly cutLinks = new Set<string>();
  private messagesSent = 0;

  constructor(
    readonly scheduler: SimScheduler,
    options: SimNetworkOptions = {},
  ) {
    this.random = scheduler.random.fork();
    this.faults = { ...linkFaultsDefault };
    this.configure(options);
    this.internalErrors = options.internalErrors ?? 'fail-run';
  }

  /** Changes delay and loss for messages sent from now on. */
  configure(faults: Partial<LinkFaults>): void {
    const next = { ...this.faults, ...faults };
    const { delayMsMin, delayMsMax } = next;
    assert(
      Number.isInteger(delayMsMin) && Number.isInteger(delayMsMax) && delayMsMin >= 0 && delayMsMin <= delayMsMax,
      `delays [${next.delayMsMin}, ${next.delayMsMax}] ms are integers with 0 <= min <= max`,
    );
    assert(next.lossProbability >= 0 && next.lossProbability <= 1, `loss probability ${next.lossProbability} is in [0, 1]`);
    this.faults = next;
  }

  get linkFaults(): LinkFaults {
    return this.faults;
  }

  /** The transport of the node at `address`. One live transport per address at a time. */
  transport(address: string): SimTransport {
    const endpoint = this.endpoint(address);
    assert(!endpoint.crashed, `${address} is crashed: restart it instead`);
    assert(!endpoint.transport || endpoint.transport.isClosed, `${address} already has a live transport`);
    endpoint.transport = new SimTransport(this, address);
    return endpoint.transport;
  }

  /**
   * Splits the network: nodes in different groups cannot exchange messages; nodes in no group
   * form one more group together. Replaces any earlier partition (cut links stay).
   */
  partition(...groups: readonly (readonly string[])[]): void {
    const sides = new Map<string, number>();
    for (const group of groups) {
      const side = ++this.sidesCreated;
      for (const address of group) {
        assert(!sides.has(address), `${address} is in only one group of a partition`);
        sides.set(address, side);
      }
    }
    this.sides = sides;
  }

  /** Cuts `address` off from every other node, keeping the rest of the current partition. */
  isolate(address: string): void {
    this.sides.set(address, ++this.sidesCreated);
  }

  /** Drops messages from `from` to `to` only: an asymmetric fault, as a half-broken link. */
  cutLink(from: string, to: string): void {
    this.cutLinks.add(`${from}\u0000${to}`);
  }

  /** Removes every partition and cut link. Crashed nodes stay crashed, clogs run out on their own. */
  heal(): void {
    this.sides = new Map();
    this.cutLinks.clear();
  }

  canReach(from: string, to: string): boolean {
    if (from === to) return true;
    return (this.sides.get(from) ?? 0) === (this.sides.get(to) ?? 0) && !this.cutLinks.has(`${from}\u0000${to}`);
  }

  /** Ends every clog now; messages already held back still leave when their clog would have ended. */
  unclogAll(): void {
    for (const endpoint of this.endpoints.values()) endpoint.clogUntilMs = 0;
  }

  /** Holds back every message from or to `address` sent in the next `durationMs`, until then. */
  clog(address: string, durationMs: number): void {
    const endpoint = this.endpoint(address);
    endpoint.clogUntilMs = Math.max(endpoint.clogUntilMs, this.scheduler.nowMs() + durationMs);
  }

  /**
   * The node's process dies: it stops answering, requests it was waiting on fail, replies it owed
   * are never sent. Messages to it are dropped (senders time out) until `restart`.
   */
  crash(address: string): void {
    const endpoint = this.endpoint(address);
    endpoint.crashed = true;
    endpoint.transport?.shutDown(`${address} crashed`);
  }

  /** The node's process starts again: a fresh transport, which the new node instance serves on. */
  restart(address: string): SimTransport {
    const endpoint = this.endpoint(address);
    assert(endpoint.crashed, `${address} was crashed before its restart`);
    endpoint.crashed = false;
    return this.transport(address);
  }

  isCrashed(address: string): boolean {
    return this.endpoints.get(address)?.crashed ?? false;
  }

  /** A label and id for a new message. */
  nextMessageId(): number {
    return ++this.messagesSent;
  }

  /** Puts a message on the wire; `deliver` runs on arrival unless the message is dropped. */
  send(from: string, to: string, label: string, deliver: () => void): void {
    this.stats.sent++;
    if (!this.canReach(from, to)) {
      this.stats.partitioned++;
      return;
    }
    if (this.random.chance(this.faults.lossProbability)) {
      this.stats.lost++;
      return;
    }
    const delayMs = this.random.int(this.faults.delayMsMin, this.faults.delayMsMax);
    const clogUntilMs = Math.max(this.endpoint(from).clogUntilMs, this.endpoint(to).clogUntilMs);
    const departMs = Math.max(this.scheduler.nowMs(), clogUntilMs);
    this.scheduler.schedule(departMs + delayMs - this.scheduler.nowMs(), `${from}->${to} ${label}`, () => {
      if (!this.canReach(from, to)) {
        this.stats.partitioned++;
        return;
      }
      deliver();
    });
  }

  /** The live transport serving at `address`, if any. */
  server(address: string): SimTransport | undefined {
    const endpoint = this.endpoints.get(address);
    if (!endpoint || endpoint.crashed || !endpoint.transport || endpoint.transport.isClosed) return undefined;
    return endpoint.transport.isServing ? endpoint.transport : undefined;
  }

  /** A request arrived at `to`: hands it to the node serving there, if any. */
  arriveRequest(sender: SimTransport, to: string, id: number, bytes: Buffer): void {
    const server = this.server(to);
    if (!server) {
      this.stats.unreachable++;
      return;
    }
    const request: unknown = wirePackr.unpack(bytes);
    const problem = requestProblem(request);
    if (problem) {
      const where = `request #${id} from ${sender.address}`;
      this.scheduler.fail(new Error(`assertion failed: ${where} would not pass the wire: ${problem}`));
      return;
    }
    this.stats.delivered++;
    server.answer(sender, id, request as RpcRequest);
  }

  /** Reports a handler's non-KaiError: a bug stops the run, unless configured to answer it. */
  handlerFailed(address: string, error: unknown): RpcReply {
    if (this.internalErrors === 'fail-run') {
      const bug = error instanceof Error ? error : new Error(String(error));
      this.scheduler.fail(bug);
    }
    const kaiError = asKaiError(error);
    return { type: 'error', code: kaiError.code, detail: `${address}: ${kaiError.message}` };
  }

  private endpoint(address: string): Endpoint {
    let endpoint = this.endpoints.get(address);
    if (!endpoint) {
      endpoint = { address, transport: undefined, crashed: false, clogUntilMs: 0 };
      this.endpoints.set(address, endpoint);
    }
    return endpoint;
  }
}

function unreachable(detail: string): KaiError {
  return new KaiError('KAI_PEER_UNREACHABLE', detail);
}

/** One node's Transport over the simulated network. */
export class SimTransport implements Transport {
  private handler: RequestHandler | undefined;
  private closed = false;
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly network: SimNetwork,
    readonly address: string,
  ) {}

  get isClosed(): boolean {
    return this.closed;
  }

  get isServing(): boolean {
    return this.handler !== undefined;
  }

  /** Requests sent and not yet answered, failed or timed out. */
  get pendingRequests(): number {
    return this.pending.size;
  }

  request(address: string, request: RpcRequest, timeoutMs: number): Promise<RpcReply> {
    if (this.closed) return Promise.reject(unreachable(`${this.address} is closed`));
    const id = this.network.nextMessageId();
    // Packed now, as the real transport writes the frame now: later changes to `request` stay here.
    const bytes = wirePackr.pack(request);
    return new Promise<RpcReply>((resolve, reject) => {
      const timeout = this.network.scheduler.schedule(timeoutMs, `${this.address} timeout #${id}`, () => {
        if (!this.pending.delete(id)) return;
        this.network.stats.timedOut++;
        reject(unreachable(`${address} did not answer within ${timeoutMs} ms`));
      });
      this.pending.set(id, { resolve, reject, timeout });
      this.network.send(this.address, address, `${request.type} #${id}`, () =>
        this.network.arriveRequest(this, address, id, bytes),
      );
    });
  }

  serve(handler: RequestHandler): Promise<void> {
    assert(!this.closed, `${this.address} serves only while open`);
    this.handler = handler;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.shutDown(`${this.address} closed`);
    return Promise.resolve();
  }

  /** Stops answering and fails every pending request, with `reason`. */
  shutDown(reason: string): void {
    this.closed = true;
    this.handler = undefined;
    for (const [id, pending] of [...this.pending]) {
      this.pending.delete(id);
      pending.timeout.cancel();
      pending.reject(unreachable(reason));
    }
  }

  /** Runs the handler on an arrived request and sends its reply back to `replyTo`. */
  answer(replyTo: SimTransport, id: number, request: RpcRequest): void {
    const handler = this.handler;
    assert(handler, 'answer only while serving');
    const sendReply = (reply: RpcReply): void => {
      // A reply owed by a process that died (or closed) since is never sent.
      if (this.closed) {
        this.network.stats.unreachable++;
        return;
      }
      const bytes = wirePackr.pack(reply);
      this.network.send(this.address, replyTo.address, `reply ${reply.type} #${id}`, () => replyTo.settle(id, bytes));
    };
    const onError = (error: unknown): void =>
      sendReply(
        error instanceof KaiError
          ? { type: 'error', code: error.code, detail: error.detail ?? '' }
          : this.network.handlerFailed(this.address, error),
      );
    let result: Promise<RpcReply> | RpcReply;
    try {
      result = handler(request);
    } catch (error) {
      onError(error);
      return;
    }
    Promise.resolve(result).then(sendReply, onError);
  }

  /** A reply arrived: resolves its request, unless that already timed out or failed. */
  settle(id: number, bytes: Buffer): void {
    const pending = this.pending.get(id);
    if (!pending || this.closed) {
      this.network.stats.late++;
      return;
    }
    const reply: unknown = wirePackr.unpack(bytes);
    const problem = replyProblem(reply);
    if (problem) {
      const where = `reply #${id} to ${this.address}`;
      this.network.scheduler.fail(new Error(`assertion failed: ${where} would not pass the wire: ${problem}`));
      return;
    }
    this.pending.delete(id);
    pending.timeout.cancel();
    this.network.stats.delivered++;
    pending.resolve(reply as RpcReply);
  }
}

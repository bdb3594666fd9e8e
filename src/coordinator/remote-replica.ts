/**
 * A replica on another node, reached over the internal API: fetch is `replicaFetch`, store is
 * `replicaStore`, and a forwarded write is `coordinate`. Everything a peer answers is checked at
 * this boundary (wire.ts, specs.ts) before the coordinator uses it.
 */
import { KaiError } from '../errors';
import type { RpcReply, RpcRequest } from '../rpc/messages';
import { errorFromReply } from '../rpc/peer-connection';
import type { Transport } from '../rpc/transport';
import type { Version } from '../storage/record';
import type { Coordinated, Replica } from './replica';
import { outcomeFromWire, type SpecKind, type SpecOf } from './specs';
import { versionFromWire, versionsFromWire, versionsToWire } from './wire';

export interface RemoteReplicaOptions {
  /** How long a fetch or store waits for the peer. */
  readonly requestTimeoutMs: number;
  /** Values a peer sends larger than this are refused (the node's --max-item-size). */
  readonly valueBytesMax: number;
}

type ReplyOf<T extends RpcReply['type']> = Extract<RpcReply, { readonly type: T }>;

export class RemoteReplica implements Replica {
  constructor(
    readonly nodeId: string,
    /** host:port of the peer's internal API. */
    readonly address: string,
    private readonly transport: Transport,
    private readonly options: RemoteReplicaOptions,
  ) {}

  async fetch(key: Buffer): Promise<readonly Version[]> {
    const reply = await this.call({ type: 'replicaFetch', key }, 'versions', this.options.requestTimeoutMs);
    return versionsFromWire(reply.versions, this.options.valueBytesMax);
  }

  async store(key: Buffer, bucket: number, versions: readonly Version[]): Promise<void> {
    const request: RpcRequest = { type: 'replicaStore', key, bucket, versions: versionsToWire(versions) };
    await this.call(request, 'stored', this.options.requestTimeoutMs);
  }

  async coordinate<K extends SpecKind>(key: Buffer, spec: SpecOf<K>, timeoutMs: number): Promise<Coordinated<K>> {
    const reply = await this.call({ type: 'coordinate', key, mutation: spec }, 'coordinated', timeoutMs);
    const { valueBytesMax } = this.options;
    return {
      result: outcomeFromWire(spec.kind as K, reply.result),
      versions: versionsFromWire(reply.versions, valueBytesMax),
      written: reply.written === null ? undefined : versionFromWire(reply.written, valueBytesMax),
    };
  }

  /** Sends a request and expects a reply of type `expected`; an error reply rejects as its KaiError. */
  private async call<T extends RpcReply['type']>(request: RpcRequest, expected: T, timeoutMs: number): Promise<ReplyOf<T>> {
    const reply = await this.transport.request(this.address, request, timeoutMs);
    // The TCP transport rejects error replies itself; a transport may also hand them back.
    if (reply.type === 'error') throw errorFromReply(reply.code, reply.detail);
    if (reply.type !== expected) {
      throw new KaiError('KAI_BAD_FRAME', `${this.nodeId} answered ${request.type} with ${reply.type}`);
    }
    return reply as ReplyOf<T>;
  }
}

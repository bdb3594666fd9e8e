/**
 * How a node's shells reach other nodes. The real transport speaks msgpack frames over TCP
 * (src/rpc/tcp-transport.ts); tests run whole clusters in one process over a simulated one
 * (test/sim), with partitions, delay and loss, from a seed.
 */
import type { RpcReply, RpcRequest } from './messages';

/** Answers a request from a peer. A thrown KaiError travels back as an `error` reply. */
export type RequestHandler = (request: RpcRequest) => Promise<RpcReply> | RpcReply;

export interface Transport {
  /**
   * Sends `request` to the node whose internal API is at `address` (host:port) and resolves with
   * its reply. Rejects with KaiError('KAI_PEER_UNREACHABLE') when the peer cannot be reached or
   * does not answer within `timeoutMs`; never waits longer.
   */
  request(address: string, request: RpcRequest, timeoutMs: number): Promise<RpcReply>;
  /** Starts answering peers' requests with `handler`. */
  serve(handler: RequestHandler): Promise<void>;
  /** Stops serving and closes every connection; pending requests reject. */
  close(): Promise<void>;
}

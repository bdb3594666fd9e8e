/**
 * The latency histograms a node fills as it works: client requests (the connections), quorum
 * waits (the coordinator), SQLite commits (the store) and internal API requests (the transport it
 * uses). Each part is handed the timer it reports to; a node without metrics hands none, and
 * measures nothing.
 */
import { Histogram, type Registry } from 'prom-client';
import type { QuorumWaitKind, QuorumWaitTimer } from '../coordinator';
import { KaiError } from '../errors';
import type { RpcReply, RpcRequest, RpcRequestType } from '../rpc/messages';
import type { Transport } from '../rpc/transport';
import type { RequestOutcome, RequestTimer } from '../server/connection';
import type { CommitTimer } from '../storage/sqlite';
import { LatencyHistogram } from './latency';

/** Bucket bounds of the operations per commit: one write alone, up to writesPerCommitMax (1000). */
export const commitOperationsBuckets: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];

/** How an internal API request ended: answered, refused by the peer, or no answer at all. */
export type InternalRequestOutcome = 'ok' | 'error' | 'unreachable';

export class NodeTimings {
  readonly requests: RequestTimer;
  readonly quorumWaits: QuorumWaitTimer;
  readonly commits: CommitTimer;
  private readonly internalRequests: LatencyHistogram<RpcRequestType, InternalRequestOutcome>;

  constructor(registry: Registry) {
    this.requests = new LatencyHistogram<string, RequestOutcome>(
      registry,
      'kai_request_duration_seconds',
      'Client requests, from decoded to answered, by memcached command name and outcome (ok, client_error, server_error)',
      ['command', 'outcome'],
    );
    this.quorumWaits = new LatencyHistogram<QuorumWaitKind, 'met' | 'unmet'>(
      registry,
      'kai_quorum_wait_seconds',
      'Waits for a quorum of replicas: reads, writes, and the reads writes decide on (context_read), met or unmet',
      ['kind', 'outcome'],
    );
    this.internalRequests = new LatencyHistogram(
      registry,
      'kai_internal_request_duration_seconds',
      'Internal API requests this node sent to peers, by request type and outcome (ok, error, unreachable)',
      ['type', 'outcome'],
    );
    const commitSeconds = new LatencyHistogram<'committed' | 'failed'>(
      registry,
      'kai_storage_commit_seconds',
      'SQLite group commits, from the batch leaving for the commit worker to its report, by outcome',
      ['outcome'],
    );
    const commitOperations = new Histogram({
      name: 'kai_storage_commit_operations',
      help: 'Writes and removals per group commit',
      buckets: [...commitOperationsBuckets],
      registers: [registry],
    });
    this.commits = {
      start: () => commitSeconds.start(),
      record(outcome, operations, startedAtMs) {
        commitSeconds.record(outcome, '', startedAtMs);
        commitOperations.observe(operations);
      },
    };
  }

  /** `transport`, with each request it sends timed. */
  measured(transport: Pick<Transport, 'request'>): Pick<Transport, 'request'> {
    const histogram = this.internalRequests;
    return {
      async request(address: string, request: RpcRequest, timeoutMs: number): Promise<RpcReply> {
        const startedAtMs = histogram.start();
        try {
          const reply = await transport.request(address, request, timeoutMs);
          histogram.record(request.type, reply.type === 'error' ? 'error' : 'ok', startedAtMs);
          return reply;
        } catch (error) {
          const unreachable = error instanceof KaiError && error.code === 'KAI_PEER_UNREACHABLE';
          histogram.record(request.type, unreachable ? 'unreachable' : 'error', startedAtMs);
          throw error;
        }
      },
    };
  }
}

/**
 * The admin port of a running node: its metrics attached to the node's parts, its view, and the
 * HTTP server that answers for both (server.ts). Opened by node.ts only when --admin-port is set.
 */
import type { Settings } from '../config/settings';
import type { Env } from '../env';
import type { Logger } from '../log';
import type { NodeMetrics } from '../metrics';
import type { TcpTransport } from '../rpc/tcp-transport';
import type { ComposedNode } from '../server/compose';
import type { SqliteStore } from '../storage/sqlite';
import { NodeView } from './node-view';
import { AdminServer } from './server';

export interface OpenAdmin {
  /** The port actually bound. */
  readonly port: number;
  /** From now on /ready answers 503 (stopping). */
  markStopping(): void;
  close(): Promise<void>;
}

export interface AdminParts {
  readonly settings: Settings;
  readonly node: ComposedNode;
  readonly store: SqliteStore;
  readonly transport: TcpTransport;
  readonly metrics: NodeMetrics;
  readonly env: Env;
  readonly startedAtMs: number;
  readonly log: Logger;
}

export async function openAdmin(adminPort: number, parts: AdminParts): Promise<OpenAdmin> {
  const { settings, node, store, transport, metrics, env, startedAtMs } = parts;
  const view = new NodeView({
    nodeId: node.nodeId,
    quorum: settings,
    gossip: node.gossip,
    keeper: node.keeper,
    store,
    transfer: node.transfer,
    notReady: () => node.notReady(),
  });
  metrics.attach((group) => node.statistics(group) ?? [], {
    store,
    transport,
    members: () => node.gossip.membership.members,
    ring: () => node.keeper.state,
    view,
  });
  const server = new AdminServer(
    {
      metrics: async () => ({ body: await metrics.render(), contentType: metrics.contentType }),
      readiness: () => view.readiness(),
      status: () => view.status(),
      uptimeSeconds: () => Math.floor((env.nowMs() - startedAtMs) / 1000),
    },
    parts.log.child({ component: 'admin' }),
  );
  const port = await server.listen(adminPort, settings.adminHost);
  return { port, markStopping: () => view.markStopping(), close: () => server.close() };
}

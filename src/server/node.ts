/**
 * One kai node: the internal API on a TcpTransport (requests routed by type), the SQLite store in
 * the data dir, the parts composed around them (compose.ts), and the memcache front end.
 */
import type { Logger } from 'pino';
import type { Settings } from '../config/settings';
import { openAdmin, type OpenAdmin } from '../admin';
import { noAuthentication } from '../auth';
import { FileAuthenticator, type ReloadOutcome } from '../auth/auth-file';
import { readClusterSecret } from '../auth/cluster-secret';
import type { TlsMaterial } from '../auth/tls-material';
import { nodeTlsMaterial } from '../config/load';
import { realEnv, type Env } from '../env';
import { frameBytesMaxFor } from '../rpc/frames';
import { routeRequests, type RequestRoutes } from '../rpc/router';
import { TcpTransport } from '../rpc/tcp-transport';
import { lockDataDir } from '../storage/data-dir-lock';
import { openSqliteStore, type SqliteStore } from '../storage/sqlite';
import { KaiError } from '../errors';
import { NodeMetrics } from '../metrics';
import { composeNode } from './compose';
import { listenAttemptOf, listenOrExplain } from './listen-failure';
import { MemcacheServer } from './memcache-server';

export { requestTimeoutMs } from './compose';

/** A started node: where clients reach it, and how to stop it. */
export interface RunningNode {
  /** `hostname:port`, with the port actually bound. */
  readonly nodeId: string;
  readonly memcachePort: number;
  /** The internal API port actually bound. */
  readonly port: number;
  /** The admin HTTP port actually bound; undefined without --admin-port. */
  readonly adminPort: number | undefined;
  /**
   * Reads the auth file again (on SIGHUP) and logs the outcome. A bad file leaves the credentials
   * in force; undefined when the node has no auth file.
   */
  reloadAuthentication(): ReloadOutcome | undefined;
  /** Stops accepting, finishes in-flight requests and closes storage. */
  stop(): Promise<void>;
  /** Ends the store's commit worker as a crash would, for fault tests; false when there is none. */
  killCommitWorker(): boolean;
  /** Resolves once the node has left the ring after `kai leave`; never otherwise. */
  readonly left: Promise<void>;
}

/**
 * The node id for an internal API port: the address peers dial, which is the advertised one when
 * set, else the host name. With port 0 it is known only once the port is bound.
 */
export function nodeIdOf(settings: Settings, boundPort = settings.port): string {
  return `${settings.advertiseAddress ?? settings.hostname}:${boundPort}`;
}

/** Opens the internal API listener; requests are answered through `routes`, filled in later. */
async function openInternalApi(
  settings: Settings,
  security: { readonly clusterSecret: Buffer | undefined; readonly tls: TlsMaterial | undefined },
  log: Logger,
  env: Env,
  routes: RequestRoutes,
): Promise<TcpTransport> {
  const attempt = listenAttemptOf(settings, 'internal');
  const transport = new TcpTransport({
    host: attempt.host,
    clusterSecret: security.clusterSecret,
    tls: security.tls,
    port: settings.port,
    env,
    // A frame holds every sibling of a key at the largest value size, plus the one being written.
    frameBytesMax: frameBytesMaxFor(settings.maxItemSize, settings.siblingsMax + 1),
    log,
  });
  try {
    await listenOrExplain(attempt, () => transport.serve(routeRequests(routes)));
  } catch (error) {
    await transport.close();
    throw error;
  }
  return transport;
}

export async function startNode(settings: Settings, log: Logger, env: Env = realEnv): Promise<RunningNode> {
  const startedAtMs = env.nowMs();
  // Read before anything opens, so a bad auth file leaves nothing to close.
  const fileAuthenticator = settings.authFile === undefined ? undefined : new FileAuthenticator(settings.authFile);
  const clusterSecret = settings.clusterSecretFile === undefined ? undefined : readClusterSecret(settings.clusterSecretFile);
  const tlsMaterial = nodeTlsMaterial(settings);
  const internalTls = settings.tls === 'internal' || settings.tls === 'all' ? tlsMaterial : undefined;
  const memcacheTls = settings.tls === 'memcache' || settings.tls === 'all' ? tlsMaterial : undefined;
  if (clusterSecret === undefined && internalTls === undefined) {
    log.warn('no --cluster-secret-file: the internal API trusts whoever reaches it; keep its port unreachable from outside the cluster');
  }
  /** The internal API by request type, filled in once the node's parts are composed. */
  const routes: RequestRoutes = {};
  // Taken first: a second process on the data dir is told so before anything else can fail.
  const lock = lockDataDir(settings.dataDir, nodeIdOf(settings), startedAtMs);
  let transport: TcpTransport;
  try {
    transport = await openInternalApi(settings, { clusterSecret, tls: internalTls }, log, env, routes);
  } catch (error) {
    lock.release();
    throw error;
  }
  const nodeId = nodeIdOf(settings, transport.port);
  // Only a node with an admin port measures anything: without one, nobody could read it.
  const metrics = settings.adminPort === undefined ? undefined : new NodeMetrics();
  let store: SqliteStore;
  try {
    store = openSqliteStore({
      dataDir: settings.dataDir,
      cacheBytesMax: settings.cacheSize,
      buckets: settings.buckets,
      hintsPerTargetMax: settings.hintsPerTargetMax,
      hintBytesPerTargetMax: settings.hintBytesPerTargetMax,
      durability: settings.durability,
      env,
      commitTimer: metrics?.timings.commits,
    });
    refuseAnotherNodesDataDir(store, nodeId, settings);
  } catch (error) {
    await transport.close();
    lock.release();
    throw error;
  }
  let markLeft: () => void = () => undefined;
  const left = new Promise<void>((resolve) => (markLeft = resolve));
  // The leave status goes out with a few more gossip rounds before the node stops.
  const onLeft = (): void => void env.after(3 * settings.gossipIntervalMs, markLeft);
  const node = composeNode({
    settings,
    nodeId,
    env,
    log,
    transport: metrics === undefined ? transport : metrics.timings.measured(transport),
    store,
    routes,
    startedAtMs,
    onLeft,
    quorumWaits: metrics?.timings.quorumWaits,
  });
  const server = new MemcacheServer({
    dispatcher: node.dispatcher,
    stats: node.stats,
    log,
    env,
    valueBytesMax: settings.maxItemSize,
    connectionsMax: settings.maxConnections,
    idleTimeoutMs: settings.idleTimeoutMs,
    receiveBudget: node.receiveBudget,
    authenticator: fileAuthenticator ?? noAuthentication,
    admission: node.admission,
    tools: node.tools,
    connectionTable: node.connectionTable,
    nodeId,
    tls: memcacheTls && { material: memcacheTls, clientCertificates: settings.tlsClientCertificates },
    requestTimer: metrics?.timings.requests,
  });
  let memcachePort: number;
  let admin: OpenAdmin | undefined;
  try {
    const attempt = listenAttemptOf(settings, 'memcache');
    memcachePort = await listenOrExplain(attempt, () => server.listen(attempt.port, attempt.host));
    if (metrics !== undefined && settings.adminPort !== undefined) {
      const adminAttempt = listenAttemptOf(settings, 'admin');
      admin = await listenOrExplain(adminAttempt, () =>
        openAdmin(adminAttempt.port, { settings, node, store, transport, metrics, env, startedAtMs, log }),
      );
    }
  } catch (error) {
    node.stop();
    await server.stop();
    await transport.close();
    await store.close();
    lock.release();
    throw error;
  }
  node.start();
  log.info({ nodeId, seeds: settings.seeds, members: node.gossip.members.length }, 'gossip started');
  return {
    nodeId,
    memcachePort,
    port: transport.port,
    adminPort: admin?.port,
    left,
    reloadAuthentication: () => fileAuthenticator && reloadAuthFile(fileAuthenticator, log),
    killCommitWorker: () => store.killCommitWorker(),
    async stop() {
      // /ready answers 503 while clients drain, so a load balancer sends no new ones.
      admin?.markStopping();
      node.stop();
      await server.stop();
      await admin?.close();
      await transport.close();
      await store.close();
      lock.release();
      log.info({ nodeId }, 'node stopped');
    },
  };
}

/**
 * A data dir holds one node's replicas, member list and counter actor, under its id (its
 * address). Started with another address, the node would join as a new member holding data the
 * ring places elsewhere, and the old member would stay on the ring: refused, saying what to do.
 */
function refuseAnotherNodesDataDir(store: SqliteStore, nodeId: string, settings: Settings): void {
  const previous = store.readNote('selfId');
  if (previous === undefined || previous === nodeId) return;
  void store.close();
  const port = previous.slice(previous.lastIndexOf(':') + 1);
  const host = previous.slice(0, previous.lastIndexOf(':'));
  // The id's host is the advertised address when the node has one, else the host name.
  const hostFlag = settings.advertiseAddress === undefined ? '--hostname' : '--advertise-address';
  throw new KaiError(
    'KAI_DATA_DIR_OF_ANOTHER_NODE',
    `${settings.dataDir} holds the data of node ${previous}, not ${nodeId}: start it as that node (${hostFlag} ${host} --port ${port}), or start ${nodeId} with an empty --data-dir`,
  );
}

function reloadAuthFile(authenticator: FileAuthenticator, log: Logger): ReloadOutcome {
  const outcome = authenticator.reload();
  if (outcome.ok) log.info({ authFile: authenticator.file, entries: outcome.entries }, 'auth file reloaded');
  else log.error({ authFile: authenticator.file, reason: outcome.reason }, 'auth file reload failed; the previous credentials stay in force');
  return outcome;
}

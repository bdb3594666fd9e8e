/**
 * The gossip shell (src/gossip) over the simulated network: five shells join through seeds and
 * check-node, converge, see a crashed member down and back up after it restarts from its saved
 * list, and follow a partition and its healing, over many seeds. One run persists to real SQLite.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Gossip, memoryPersistence, notePersistence, type MembershipPersistence } from '../../src/gossip';
import { ringMembers } from '../../src/membership';
import type { RpcReply } from '../../src/rpc/messages';
import { routeRequests } from '../../src/rpc/router';
import { openSqliteStore, type SqliteStore } from '../../src/storage/sqlite';
import { assertEventually, simSeeds, SimWorld, withSeed, type SimHost } from './index';

const addresses = ['n1:7001', 'n2:7002', 'n3:7003', 'n4:7004', 'n5:7005'];
const [n1, n2, n3, n4, n5] = addresses;
const intervalMs = 100;
/** Down after 5 silent intervals, plus rounds for the mark to spread under loss. */
const detectMsMax = 3_000;
const settleMsMax = 5_000;
const silentLog = pino({ level: 'silent' });

function zoneOf(address: string): string {
  return addresses.indexOf(address) % 2 === 0 ? 'even' : 'odd';
}

class ShellCluster {
  readonly world: SimWorld;
  readonly shells = new Map<string, Gossip>();
  /** Each address's saved list: it survives a crash, as a disk does. */
  readonly disks = new Map<string, MembershipPersistence>();

  constructor(seed: number) {
    this.world = new SimWorld({ seed, network: { delayMsMin: 1, delayMsMax: 20, lossProbability: 0.05 } });
  }

  async start(host: SimHost, seeds: readonly string[], persistence?: MembershipPersistence): Promise<Gossip> {
    const disk = persistence ?? this.disks.get(host.address) ?? memoryPersistence();
    this.disks.set(host.address, disk);
    const gossip = new Gossip({
      self: { id: host.address, address: host.address, zone: zoneOf(host.address), weight: 1 },
      env: host.env,
      transport: host.transport,
      log: silentLog,
      persistence: disk,
      seeds,
      intervalMs,
    });
    const answer = (request: Parameters<Gossip['handle']>[0]): Promise<RpcReply> | RpcReply => gossip.handle(request);
    await host.transport.serve(routeRequests({ gossip: answer, nodeInfo: answer, addSeed: answer }));
    gossip.start();
    this.shells.set(host.address, gossip);
    return gossip;
  }

  crash(address: string): void {
    this.shells.get(address)?.stop();
    this.world.crash(address);
  }

  /** The status `viewer` holds for `other`, or undefined when it does not know it (yet). */
  statusOf(viewer: string, other: string): string | undefined {
    return this.shells.get(viewer)?.members.find((m) => m.id === other)?.status;
  }

  /** Every viewer holds every listed member at the given status. */
  allSee(viewers: readonly string[], others: readonly string[], status: 'up' | 'down'): boolean {
    return viewers.every((viewer) => others.every((other) => this.statusOf(viewer, other) === status));
  }

  /** Every shell holds the same ring members (ids, zones, weights). */
  ringsAgree(): boolean {
    const rings = [...this.shells.values()].map((shell) => JSON.stringify(ringMembers(shell.membership)));
    return rings.every((ring) => ring === rings[0]);
  }
}

async function startAll(cluster: ShellCluster): Promise<void> {
  const { world } = cluster;
  await cluster.start(world.host(n1, { clockSkewMs: world.scheduler.random.int(-50, 50) }), []);
  for (const address of [n2, n3, n4]) {
    await cluster.start(world.host(address, { clockSkewMs: world.scheduler.random.int(-50, 50) }), [n1]);
  }
  // n5 knows nobody: it is linked the way `kai check-node n1 n5` links it.
  await cluster.start(world.host(n5, { clockSkewMs: world.scheduler.random.int(-50, 50) }), []);
  const linked = cluster.shells.get(n1)!.handle({ type: 'addSeed', address: n5 });
  await world.runFor(intervalMs);
  const reply = await linked;
  expect(reply.type).toBe('nodeInfo');
}

describe('gossip shells over the simulated network', () => {
  // Seeds and check-node join all five, every view converges to the same ring with zones.
  test.each(simSeeds(20))('join and converge, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new ShellCluster(seed);
      await startAll(cluster);
      await assertEventually(cluster.world.scheduler, () => cluster.allSee(addresses, addresses, 'up'), settleMsMax, 'all five see all five up');
      expect(cluster.ringsAgree()).toBe(true);
      const ring = ringMembers(cluster.shells.get(n3)!.membership);
      expect(ring.map((m) => [m.id, m.zone])).toEqual(addresses.map((a) => [a, zoneOf(a)]));
    }),
  );

  // A crashed member is marked down everywhere within a bound; restarted from its saved list,
  // with no seeds, it is up again everywhere and sees everyone up.
  test.each(simSeeds(20))('crash, detect, restart without seeds, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new ShellCluster(seed);
      const { world } = cluster;
      await startAll(cluster);
      await assertEventually(world.scheduler, () => cluster.allSee(addresses, addresses, 'up'), settleMsMax, 'all up');
      cluster.crash(n3);
      const live = [n1, n2, n4, n5];
      await assertEventually(world.scheduler, () => cluster.allSee(live, [n3], 'down'), detectMsMax, 'n3 down everywhere');
      await world.runFor(2 * detectMsMax);
      // With messages lost, a live member may be suspected for a round; it must not stay down.
      await assertEventually(world.scheduler, () => cluster.allSee(live, live, 'up'), settleMsMax, 'live members up');
      const restarted = await cluster.start(world.restart(n3), []);
      expect(restarted.members.map((m) => m.id)).toEqual(addresses);
      await assertEventually(world.scheduler, () => cluster.allSee(addresses, addresses, 'up'), settleMsMax, 'n3 up again');
      expect(cluster.ringsAgree()).toBe(true);
    }),
  );

  // Each side of a partition sees the other down; after healing, all are up, under more loss.
  test.each(simSeeds(20))('partition and heal, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new ShellCluster(seed);
      const { world } = cluster;
      await startAll(cluster);
      await assertEventually(world.scheduler, () => cluster.allSee(addresses, addresses, 'up'), settleMsMax, 'all up');
      const left = [n1, n2];
      const right = [n3, n4, n5];
      world.network.partition(left, right);
      const split = (): boolean =>
        cluster.allSee(left, right, 'down') &&
        cluster.allSee(right, left, 'down') &&
        cluster.allSee(left, left, 'up') &&
        cluster.allSee(right, right, 'up');
      await assertEventually(world.scheduler, split, detectMsMax, 'each side sees the other down');
      world.network.heal();
      world.network.configure({ lossProbability: 0.2 });
      await assertEventually(world.scheduler, () => cluster.allSee(addresses, addresses, 'up'), settleMsMax, 'all up after healing');
      expect(world.network.stats.partitioned).toBeGreaterThan(0);
    }),
  );
});

describe('gossip shell persisting to SQLite', () => {
  let dataDir: string;
  let store: SqliteStore | undefined;

  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-gossip-'));
  });

  afterEach(async () => {
    await store?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  // A shell restarted on a reopened SQLite file restores its members and a higher incarnation,
  // and rejoins the others with no seed.
  test.each(simSeeds(3))('restart from the SQLite file, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new ShellCluster(seed);
      const { world } = cluster;
      store = openSqliteStore({ dataDir });
      cluster.disks.set(n2, notePersistence(store));
      await startAll(cluster);
      await assertEventually(world.scheduler, () => cluster.allSee(addresses, addresses, 'up'), settleMsMax, 'all up');
      const incarnationBefore = cluster.shells.get(n2)!.members.find((m) => m.id === n2)!.incarnation;
      cluster.crash(n2);
      await store.close();
      store = openSqliteStore({ dataDir });
      const restarted = await cluster.start(world.restart(n2), [], notePersistence(store));
      expect(restarted.members.map((m) => m.id)).toEqual(addresses);
      expect(restarted.members.find((m) => m.id === n2)!.incarnation).toBeGreaterThan(incarnationBefore);
      await assertEventually(world.scheduler, () => cluster.allSee(addresses, addresses, 'up'), settleMsMax, 'n2 rejoined');
    }),
  );
});

/**
 * A demonstration of the simulation toolkit: five nodes gossip heartbeats over a lossy simulated
 * network while the test splits, isolates, crashes and heals them, over many seeds.
 */
import { assertEventually, simSeeds, SimWorld, withSeed, type SimHost } from './index';
import { PingGossipNode } from './ping-gossip';

const addresses = ['n1:7001', 'n2:7002', 'n3:7003', 'n4:7004', 'n5:7005'];
const settleMsMax = 5_000;

class GossipCluster {
  readonly world: SimWorld;
  readonly nodes = new Map<string, PingGossipNode>();

  constructor(seed: number) {
    this.world = new SimWorld({ seed, network: { delayMsMin: 1, delayMsMax: 20, lossProbability: 0.05 } });
  }

  async start(host: SimHost): Promise<void> {
    const node = new PingGossipNode(host.address, host.env, host.transport, [addresses[0]]);
    this.nodes.set(host.address, node);
    await node.start();
  }

  /** True when every live node sees exactly the nodes of its own group up. */
  seesGroups(...groups: readonly (readonly string[])[]): boolean {
    return groups.every((group) =>
      group.every((viewer) =>
        addresses.every((other) => other === viewer || this.nodes.get(viewer)?.seesUp(other) === group.includes(other)),
      ),
    );
  }
}

describe('ping gossip over the simulated network', () => {
  // Membership views follow partitions, isolation, a crash and a restart, then heal, on every seed.
  test.each(simSeeds(20))('seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = new GossipCluster(seed);
      const { world } = cluster;
      const [n1, n2, n3, n4, n5] = addresses;
      for (const address of addresses) {
        await cluster.start(world.host(address, { clockSkewMs: world.scheduler.random.int(-50, 50) }));
      }
      const scheduler = world.scheduler;
      const allUp = (): boolean => cluster.seesGroups(addresses);
      await assertEventually(scheduler, allUp, settleMsMax, 'all five see each other up');

      const split = [[n1, n2], [n3, n4, n5]];
      world.network.partition(...split);
      await assertEventually(scheduler, () => cluster.seesGroups(...split), settleMsMax, 'each side sees only itself');
      world.network.heal();
      await assertEventually(scheduler, allUp, settleMsMax, 'all up after healing');

      world.network.isolate(n5);
      await assertEventually(scheduler, () => cluster.seesGroups([n1, n2, n3, n4], [n5]), settleMsMax, 'n5 alone');
      world.network.heal();

      world.crash(n3);
      const live = [n1, n2, n4, n5];
      await assertEventually(
        scheduler,
        () => live.every((viewer) => !cluster.nodes.get(viewer)?.seesUp(n3)),
        settleMsMax,
        'the crashed n3 is seen down',
      );
      await cluster.start(world.restart(n3));
      world.network.configure({ lossProbability: 0.2 });
      await assertEventually(scheduler, allUp, settleMsMax, 'all up after n3 restarts, under 20% loss');
      expect(world.network.stats.lost).toBeGreaterThan(0);
      expect(world.network.stats.partitioned).toBeGreaterThan(0);
    }),
  );
});

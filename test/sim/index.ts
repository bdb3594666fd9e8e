/**
 * The simulation toolkit: seeded randomness, virtual time, a faulty network, and checkers.
 * A cluster test reads like this (see ping-gossip.test.ts for a whole one):
 *
 *   test.each(simSeeds(20))('seed %i', (seed) =>
 *     withSeed(seed, async () => {
 *       const world = new SimWorld({ seed, network: { delayMsMin: 1, delayMsMax: 20, lossProbability: 0.05 } });
 *       const host = world.host('n1:7001', { clockSkewMs: 30 });  // host.env, host.transport
 *       // build each node from host.env and host.transport, start it, then inject faults:
 *       world.network.partition(['n1:7001'], ['n2:7002', 'n3:7003']);
 *       await assertEventually(world.scheduler, () => someCondition(), 5_000, 'what should happen');
 *       world.network.heal();
 *       world.crash('n2:7002');
 *       const restarted = world.restart('n2:7002');  // a fresh Env and Transport for the new node
 *       assertNoLostWrites(history, finalVersionsOf, world.scheduler.seedNote());
 *     }),
 *   );
 */
export * from './random';
export * from './seed';
export * from './scheduler';
export * from './network';
export * from './world';
export * from './checkers';

/**
 * Reaping never resurrects. Tombstones and expired values are removed once every primary holds
 * them and a grace period has passed; the simulation makes that period short and takes replicas
 * away across it, then checks that no deleted, overwritten or expired-and-overwritten value comes
 * back through any node, on any replica, before or after the dead records are reaped. Named after
 * the bugs it covers: an expired value was purged a second after it expired, so a replica that
 * missed the overwrite brought the older value back, and tombstones were purged after a day
 * whether or not every replica had them.
 */
import { deleteSpec, storeSpec } from '../../src/coordinator/specs';
import { isLive } from '../../src/storage/record';
import { ClockHistory, assertNoViolations, staleViolations, type CheckContext } from './clock-history';
import { isUp } from '../../src/membership';
import { NodeCluster } from './node-cluster';
import { simSeeds, withSeed } from './seed';
import { healEverything, randomFault, runRound, workloadDefault } from './workload';

const addresses = ['n1:7001', 'n2:7002', 'n3:7003', 'n4:7004'];
const [n1, n2, n3] = addresses;
const reapGraceMs = 1500;
const seedCount = 8;
/** Long enough for convergence, the grace period and a deferred reap's retry (60 s). */
const reapedWithinMs = 240_000;

function contextOf(cluster: NodeCluster): CheckContext {
  return { primariesOf: (key) => cluster.primariesOf(key), wipedAtMs: cluster.wipedAtMs, expiryMarginMs: 100 };
}

function newCluster(seed: number): NodeCluster {
  return new NodeCluster({
    seed,
    addresses,
    settings: { n: 3, r: 2, w: 2, reapGraceMs },
    network: { delayMsMin: 1, delayMsMax: 15, lossProbability: 0 },
    commitDelayMs: { min: 1, max: 8 },
  });
}

/** Attempts of one write in the scenario of a replica away. */
const writeAttemptsMax = 3;

/** Whether every running node sees every other running node up. */
function runningSeeEachOtherUp(cluster: NodeCluster): boolean {
  const running = cluster.running();
  return running.every((viewer) => running.every((member) => isUp(cluster.node(viewer).node.gossip.membership, member)));
}

/** Whether no node holds a record that has been dead for the grace period (all reaped). */
function deadRecordsReaped(cluster: NodeCluster, keys: readonly string[]): boolean {
  return keys.every((key) =>
    cluster.addresses.every((address) => {
      const held = cluster.held(address, key);
      const nowMs = cluster.world.at(address).env.nowMs();
      return held.length === 0 || held.some((version) => isLive(version, nowMs - reapGraceMs));
    }),
  );
}

/** Reads every key through every node; each read joins the history, to be checked. */
async function readEverywhere(cluster: NodeCluster, history: ClockHistory, keys: readonly string[]): Promise<void> {
  for (const key of keys) {
    for (const via of cluster.running()) {
      const operation = history.invoke(via, 'read', key);
      const read = cluster.read(via, key).then(
        (result) => history.read(operation, result.versions, result.answeredBy),
        (error: unknown) => history.fail(operation, error),
      );
      let done = false;
      void read.finally(() => {
        done = true;
      });
      await cluster.world.runUntil(() => done, 30_000);
    }
  }
}

async function healAndReap(cluster: NodeCluster, keys: readonly string[], seedNote: string): Promise<void> {
  healEverything(cluster);
  await cluster.waitForMembership();
  const done = await cluster.world.runUntil(() => cluster.converged(keys) && deadRecordsReaped(cluster, keys), reapedWithinMs);
  if (!done) throw new Error(`not converged and reaped within ${reapedWithinMs} ms:\n${cluster.divergence(keys).join('\n')}\n${seedNote}`);
}

describe('reaping never resurrects', () => {
  // The cases of the bug reports, on purpose: a replica is away while a key is deleted, and
  // while a key is overwritten by a value that then expires; it returns after the grace period.
  test.each(simSeeds(seedCount))('a replica away across the grace period brings nothing back, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = newCluster(seed);
      const seedNote = cluster.world.scheduler.seedNote();
      await cluster.waitForMembership();
      const history = new ClockHistory(() => cluster.world.scheduler.nowMs());
      const keys = ['deleted', 'expired', 'overwritten'];
      const run = async (via: string, key: string, spec: Parameters<NodeCluster['mutate']>[2], value?: string): Promise<void> => {
        // A write refused while the views still settle after the crash (a peer briefly suspected)
        // is tried again once every running node sees the others up, as a client would retry.
        for (let attempt = 1; ; attempt++) {
          const operation = history.invoke(via, spec.kind === 'delete' ? 'delete' : 'set', key, value);
          let done = false;
          void cluster
            .mutate(via, key, spec)
            .then(
              (applied) => history.wrote(operation, applied.written, applied.acknowledgedBy ?? []),
              (error: unknown) => history.fail(operation, error),
            )
            .finally(() => {
              done = true;
            });
          await cluster.world.runUntil(() => done, 30_000);
          if (operation.outcome === 'ok') return;
          if (attempt >= writeAttemptsMax) throw new Error(`${key} was not acknowledged: ${operation.error}; ${seedNote}`);
          await cluster.world.runUntil(() => runningSeeEachOtherUp(cluster), 30_000);
        }
      };
      const set = (value: string, expiresAtMs = 0) =>
        storeSpec({ mode: 'set', value: Buffer.from(value), flags: 0, expiresAtMs, casUnique: 0n });
      for (const key of keys) await run(n1, key, set(`old-${key}`), `old-${key}`);
      await cluster.world.runUntil(() => cluster.converged(keys), 30_000);
      // Every primary of each key but one stays; the one taken away holds the old values.
      const away = cluster.primariesOf('deleted').find((address) => address !== n1) ?? n2;
      cluster.crash(away);
      const via = cluster.running().find((address) => address !== away) ?? n3;
      await run(via, 'deleted', deleteSpec(0n));
      await run(via, 'expired', set('short-lived', cluster.world.at(via).env.nowMs() + 200), 'short-lived');
      await run(via, 'overwritten', set('new-overwritten'), 'new-overwritten');
      // Well past expiry and the grace period: the reaper tries, finds a replica down, holds back.
      await cluster.world.runFor(reapGraceMs * 4);
      await readEverywhere(cluster, history, keys);
      await healAndReap(cluster, keys, seedNote);
      const healedAtMs = cluster.world.scheduler.nowMs();
      await readEverywhere(cluster, history, keys);
      assertNoViolations(staleViolations(history, contextOf(cluster), healedAtMs), 'value(s) came back', seedNote);
      for (const key of ['deleted', 'expired']) {
        for (const address of addresses) expect(cluster.held(address, key)).toEqual([]);
      }
      for (const address of cluster.primariesOf('overwritten')) {
        expect(cluster.held(address, 'overwritten').map((version) => version.value.toString())).toEqual(['new-overwritten']);
      }
    }),
  );

  // Random deletes, expiring sets and overwrites under crashes, wipes and partitions, with a
  // short grace period: no read, during the faults or after healing and reaping, returns a value
  // that an acknowledged write or delete superseded before the read began.
  test.each(simSeeds(seedCount))('random faults with a short grace period, seed %i', (seed) =>
    withSeed(seed, async () => {
      const cluster = newCluster(seed);
      const seedNote = cluster.world.scheduler.seedNote();
      await cluster.waitForMembership();
      const history = new ClockHistory(() => cluster.world.scheduler.nowMs());
      const workload = { ...workloadDefault, expiringSetChance: 0.4, expiryMs: { min: 50, max: 800 } };
      const faults: string[] = [];
      for (let round = 0; round < 40; round++) {
        if (cluster.world.scheduler.random.chance(0.3)) {
          faults.push(randomFault(cluster, { crashedMax: 1, kinds: ['crash', 'restart', 'partition', 'heal', 'clog', 'wipe'] }));
        }
        await runRound(cluster, history, workload);
        await cluster.world.runFor(cluster.world.scheduler.random.int(0, 600));
      }
      assertNoViolations(staleViolations(history, contextOf(cluster)), `stale read(s) (faults: ${faults.join('; ')})`, seedNote);
      const keys = [...workload.keys, ...workload.counterKeys];
      await healAndReap(cluster, keys, seedNote);
      const healedAtMs = cluster.world.scheduler.nowMs();
      await readEverywhere(cluster, history, keys);
      assertNoViolations(staleViolations(history, contextOf(cluster), healedAtMs), `value(s) came back (faults: ${faults.join('; ')})`, seedNote);
    }),
  );
});

// Counters under partitions, crashes, clogs, loss and a wiped disk count every acknowledged incr and decr exactly once and converge to one value on every node.
/**
 * Clients increment and decrement a few counters concurrently through random nodes of a cluster of
 * whole kai nodes while the network partitions (each side keeps accepting writes through sloppy
 * quorums), nodes crash (losing what they had not committed) and restart, links clog and messages
 * are lost. Every operation is recorded with its signed delta and its outcome: acknowledged (its
 * answer is checked for plausibility at once), not found (nothing written), or failed (an error or
 * a timeout: it may or may not have been applied). Once the faults end and the cluster has healed,
 * every node must answer one version of each counter, the same on every node, and every primary
 * must hold byte-identical versions. The value must be the initial one, plus every acknowledged
 * delta, plus some subset of the failed ones; and each actor's grow-only totals (src/counter) must
 * likewise hold every acknowledged operation its node coordinated, plus failed ones only.
 *
 * Deltas are drawn from [deltaMin, deltaMax], with deltaMax < 2 * deltaMin, rather than from a
 * handful of small numbers: every non-empty subset of the increments (or of the decrements) then
 * sums to at least deltaMin, so an acknowledged increment that goes missing while a failed one
 * survives in its place leaves a difference below deltaMin that no subset of failed operations
 * explains. With deltas of 1 to 5 a few failed operations would explain any small difference.
 *
 * Each seed prints before it runs; a failure names the seed, its replay command and the faults.
 */
import { counterSum, type Counter } from '../../src/counter';
import { arithSpec, storeSpec } from '../../src/coordinator/specs';
import type { Coordinated } from '../../src/coordinator/replica';
import { encodeVersions } from '../../src/storage/record-codec';
import type { Version } from '../../src/storage/record';
import { listFailures } from './checkers';
import { NodeCluster } from './node-cluster';
import { simSeeds, withSeed } from './seed';
import { healEverything, randomFault, type FaultKind } from './workload';

const fiveNodes = ['n1:7001', 'n2:7002', 'n3:7003', 'n4:7004', 'n5:7005'];
const threeNodes = fiveNodes.slice(0, 3);
const seedCount = 8;
/** How long the healed cluster has to converge, in simulated time. */
const convergeMsMax = 120_000;
/** Attempts to read the healed cluster while nothing lands in it (observeHealed). */
const observeAttemptsMax = 5;
/** How long the cluster has to replicate the initial sets before the faults begin. */
const setupMsMax = 30_000;
/** A client gives up on a call after this long (NodeCluster.call), so a round ends within it. */
const roundMsMax = 60_000;
const rounds = 40;
/** Client operations issued at once per round. */
const concurrency = 6;
const faultBeforeRoundChance = 0.2;
const faultDuringRoundChance = 0.2;
/** A fault during a round strikes within this many ms of its start, while operations run. */
const midRoundFaultMsMax = 40;
const counterKeys = ['hits', 'stock', 'votes'];
/**
 * Far above what the decrements can take away (rounds * concurrency * deltaMax = 480,000 at
 * most), so that no decrement stops at 0 and every operation changes a counter by its delta.
 */
const initialValue = 10_000_000n;
const deltaMin = 1000;
const deltaMax = 1999;
const incrChance = 0.7;
/** The share of client operations that read a counter rather than change it. */
const readChance = 0.15;
/**
 * The subset sums are kept as a bitset over [-(failed decrements), +(failed increments)]: a bound
 * on its size, far above what the workload can reach (rounds * concurrency * deltaMax * 2).
 */
const subsetSumRangeMax = 4_000_000;

interface CounterOperation {
  readonly id: number;
  readonly key: string;
  readonly via: string;
  /** Positive for incr, negative for decr. */
  readonly delta: bigint;
  readonly issuedAtMs: number;
  outcome: 'pending' | 'acknowledged' | 'not-found' | 'failed';
  /** What an acknowledged operation answered. */
  answer: bigint | undefined;
  /** The node that coordinated an acknowledged operation. */
  coordinator: string | undefined;
  /**
   * The counter actor of that node when it applied the operation; undefined when its disk was
   * wiped while the operation ran, so that the actor it used is not known.
   */
  actor: string | undefined;
  error: string | undefined;
}

/** What each key saw issued so far, to bound the answers an acknowledged operation may give. */
interface Issued {
  incremented: bigint;
  decremented: bigint;
}

class CounterHistory {
  readonly operations: CounterOperation[] = [];
  readonly issued = new Map<string, Issued>(counterKeys.map((key) => [key, { incremented: 0n, decremented: 0n }]));
  /** Problems seen while the faults run: implausible answers, siblings, refusals. */
  readonly violations: string[] = [];

  invoke(key: string, via: string, delta: bigint, nowMs: number): CounterOperation {
    const issued = this.issued.get(key)!;
    if (delta > 0n) issued.incremented += delta;
    else issued.decremented -= delta;
    const operation: CounterOperation = {
      id: this.operations.length,
      key,
      via,
      delta,
      issuedAtMs: nowMs,
      outcome: 'pending',
      answer: undefined,
      coordinator: undefined,
      actor: undefined,
      error: undefined,
    };
    this.operations.push(operation);
    return operation;
  }

  /** Whether `value` could be what `key` reads now: within what was issued so far either way. */
  plausible(key: string, value: bigint): boolean {
    const issued = this.issued.get(key)!;
    return value >= initialValue - issued.decremented && value <= initialValue + issued.incremented;
  }
}

function describeOperation(operation: CounterOperation): string {
  const sign = operation.delta > 0n ? `incr ${operation.delta}` : `decr ${-operation.delta}`;
  const answer = operation.outcome === 'acknowledged' ? ` -> ${operation.answer} by ${operation.coordinator} as ${operation.actor ?? '?'}` : '';
  const error = operation.error === undefined ? '' : ` (${operation.error})`;
  return `#${operation.id} ${operation.key} ${sign} via ${operation.via} at ${operation.issuedAtMs}: ${operation.outcome}${answer}${error}`;
}

/** Runs the simulation until `call` settles, at most `maxMs`; its value, or its error thrown. */
async function settle<T>(cluster: NodeCluster, call: Promise<T>, maxMs: number, what: string): Promise<T> {
  let settled: { readonly value: T } | { readonly error: unknown } | undefined;
  call.then(
    (value) => (settled = { value }),
    (error: unknown) => (settled = { error }),
  );
  if (!(await cluster.world.runUntil(() => settled !== undefined, maxMs))) throw new Error(`${what} still pending after ${maxMs} ms`);
  if ('error' in settled!) throw settled.error;
  return settled!.value;
}

function wipedBetween(cluster: NodeCluster, address: string, fromMs: number, toMs: number): boolean {
  return (cluster.wipedAtMs.get(address) ?? []).some((atMs) => atMs >= fromMs && atMs <= toMs);
}

function recordArith(cluster: NodeCluster, history: CounterHistory, operation: CounterOperation, applied: Coordinated<'arith'>): void {
  if (applied.error) {
    // incr and decr of a number refuse nothing here: a refusal is a bug, not a fault.
    operation.outcome = 'failed';
    operation.error = applied.error.message;
    history.violations.push(`refused: ${describeOperation(operation)}`);
    return;
  }
  const { outcome, value } = applied.result.result;
  if (outcome === 'NOT_FOUND') {
    // A side of a partition with none of the key's primaries holds nothing to count from; the
    // operation then writes nothing.
    operation.outcome = 'not-found';
    return;
  }
  if (outcome !== 'OK') {
    operation.outcome = 'failed';
    operation.error = outcome;
    history.violations.push(`unexpected outcome: ${describeOperation(operation)}`);
    return;
  }
  operation.outcome = 'acknowledged';
  operation.answer = value;
  const coordinator = applied.acknowledgedBy?.[0];
  operation.coordinator = coordinator;
  if (coordinator !== undefined && !wipedBetween(cluster, coordinator, operation.issuedAtMs, cluster.world.scheduler.nowMs())) {
    // The actor is the name whose clock entry the write advanced, stamped with its write time.
    const written = applied.written;
    operation.actor = written?.clock.find((entry) => entry.node.startsWith(`${coordinator}~`) && entry.timestampMs === written.writtenAtMs)?.node;
  }
  if (!history.plausible(operation.key, value)) history.violations.push(`implausible answer: ${describeOperation(operation)}`);
}

/** Starts one client operation through a random running node; resolves once it has completed. */
function randomOperation(cluster: NodeCluster, history: CounterHistory): Promise<void> {
  const random = cluster.world.scheduler.random;
  const via = random.pick(cluster.running());
  const key = random.pick(counterKeys);
  if (random.chance(readChance)) {
    return cluster.read(via, key).then(
      (result) => {
        const live = result.versions.filter((version) => !version.tombstone);
        if (live.length > 1) history.violations.push(`read of ${key} via ${via} answered ${live.length} versions`);
        for (const version of live) {
          const value = BigInt(version.value.toString('latin1').trim());
          if (!history.plausible(key, value)) history.violations.push(`read of ${key} via ${via} answered implausible ${value}`);
        }
      },
      // A read that fails under faults proves nothing either way.
      () => undefined,
    );
  }
  const incr = random.chance(incrChance);
  const size = BigInt(random.int(deltaMin, deltaMax));
  const operation = history.invoke(key, via, incr ? size : -size, cluster.world.scheduler.nowMs());
  return cluster.mutate(via, key, arithSpec({ incr, delta: size })).then(
    (applied) => recordArith(cluster, history, operation, applied),
    (error: unknown) => {
      operation.outcome = 'failed';
      operation.error = error instanceof Error ? error.message : String(error);
    },
  );
}

/**
 * Issues `concurrency` operations at once and runs until all have completed. `faultMidway`, when
 * given, strikes at a random moment while they run: a node that crashes then loses the writes
 * it had not committed yet, and the operations it was coordinating fail.
 */
async function runRound(cluster: NodeCluster, history: CounterHistory, faultMidway?: () => void): Promise<void> {
  let pending = concurrency;
  for (let index = 0; index < concurrency; index++) {
    void randomOperation(cluster, history).finally(() => {
      pending--;
    });
  }
  const { scheduler } = cluster.world;
  const fault = faultMidway && scheduler.schedule(scheduler.random.int(0, midRoundFaultMsMax), 'fault during a round', faultMidway);
  if (!(await cluster.world.runUntil(() => pending === 0, roundMsMax))) {
    throw new Error(`client operations still pending after ${roundMsMax} ms`);
  }
  // A round over before its fault struck goes without: a fault left behind could strike after
  // the faults end, while the cluster heals.
  fault?.cancel();
}

/**
 * The sums of every subset of `deltas`, as a predicate. A bitset over the range the sums can
 * span, filled as 0/1 knapsack: an increment shifts it up, a decrement down.
 */
function subsetSums(deltas: readonly bigint[]): (sum: bigint) => boolean {
  let below = 0;
  let above = 0;
  for (const delta of deltas) {
    if (delta > 0n) above += Number(delta);
    else below -= Number(delta);
  }
  const size = below + above + 1;
  if (size > subsetSumRangeMax) throw new Error(`subset sums span ${size} values, over ${subsetSumRangeMax}`);
  const reachable = new Uint8Array(size);
  reachable[below] = 1;
  for (const delta of deltas) {
    const shift = Math.abs(Number(delta));
    if (delta > 0n) {
      for (let index = size - 1; index >= shift; index--) if (reachable[index - shift]) reachable[index] = 1;
    } else {
      for (let index = 0; index + shift < size; index++) if (reachable[index + shift]) reachable[index] = 1;
    }
  }
  return (sum) => sum >= BigInt(-below) && sum <= BigInt(above) && reachable[Number(sum) + below] === 1;
}

function sumOf(deltas: readonly bigint[]): bigint {
  return deltas.reduce((total, delta) => total + delta, 0n);
}

/** Each actor's totals in a counter, by actor name. */
function totalsByActor(counter: Counter): Map<string, { readonly added: bigint; readonly taken: bigint }> {
  return new Map(counter.actors.map((totals) => [totals.actor, { added: totals.added, taken: totals.taken }]));
}

/**
 * What is wrong with the healed counter at `key`, held as `version`: its value must be the
 * initial one plus every acknowledged delta plus a subset of the failed ones; each actor's
 * totals must hold every acknowledged operation attributed to it, plus failed or unattributed
 * ones only; and all actors' totals together must hold every acknowledged operation.
 */
function counterProblems(key: string, version: Version, operations: readonly CounterOperation[]): string[] {
  const problems: string[] = [];
  const mine = operations.filter((operation) => operation.key === key);
  const acknowledged = mine.filter((operation) => operation.outcome === 'acknowledged');
  const unknown = mine.filter((operation) => operation.outcome === 'failed');
  const value = BigInt(version.value.toString('latin1').trim());
  const expected = initialValue + sumOf(acknowledged.map((operation) => operation.delta));
  const failedSums = subsetSums(unknown.map((operation) => operation.delta));
  const summary = `${acknowledged.length} acknowledged, ${unknown.length} failed, ${mine.length - acknowledged.length - unknown.length} not found`;
  if (!failedSums(value - expected)) {
    problems.push(
      `${key} reads ${value}: initial ${initialValue} + acknowledged ${expected - initialValue} = ${expected}, ` +
        `and no subset of the failed operations makes up the difference ${value - expected} (${summary})`,
    );
  }
  const counter = version.counter;
  if (!counter) {
    if (mine.some((operation) => operation.outcome === 'acknowledged')) problems.push(`${key} holds no counter after acknowledged operations`);
    return problems;
  }
  if (counter.base !== initialValue) problems.push(`${key}: the counter grew from ${counter.base}, not from the set ${initialValue}`);
  if (counterSum(counter) !== value) problems.push(`${key}: the counter sums to ${counterSum(counter)} but its text is ${value}`);

  // Increments and decrements go to separate grow-only totals, so each is checked on its own:
  // a subset of positive deltas all at least deltaMin cannot hide a shortfall below deltaMin.
  const totals = totalsByActor(counter);
  for (const [sign, pick] of [
    ['added', (operation: CounterOperation) => operation.delta > 0n],
    ['taken', (operation: CounterOperation) => operation.delta < 0n],
  ] as const) {
    const magnitude = (operation: CounterOperation): bigint => (operation.delta > 0n ? operation.delta : -operation.delta);
    const ofSign = mine.filter(pick);
    const acknowledgedOfSign = ofSign.filter((operation) => operation.outcome === 'acknowledged');
    const unattributed = acknowledgedOfSign.filter((operation) => operation.actor === undefined);
    // An actor may hold any failed operation, and any acknowledged one no actor is known for.
    const optional = subsetSums([...ofSign.filter((operation) => operation.outcome === 'failed'), ...unattributed].map(magnitude));
    let extraTotal = 0n;
    const actors = new Set([...totals.keys(), ...acknowledgedOfSign.flatMap((operation) => (operation.actor ? [operation.actor] : []))]);
    for (const actor of actors) {
      const held = totals.get(actor)?.[sign] ?? 0n;
      const owed = sumOf(acknowledgedOfSign.filter((operation) => operation.actor === actor).map(magnitude));
      extraTotal += held - owed;
      if (!optional(held - owed)) {
        problems.push(
          `${key}: actor ${actor} has ${sign} ${held}, but the acknowledged operations it coordinated come to ${owed}, ` +
            `and no subset of the failed ones makes up the difference ${held - owed} (${summary})`,
        );
      }
    }
    const failedOfSign = subsetSums(ofSign.filter((operation) => operation.outcome === 'failed').map(magnitude));
    const unattributedTotal = sumOf(unattributed.map(magnitude));
    if (!failedOfSign(extraTotal - unattributedTotal)) {
      problems.push(
        `${key}: the actors have ${sign} ${extraTotal - unattributedTotal} beyond every acknowledged operation, ` +
          `which no subset of the failed ones makes up (${summary})`,
      );
    }
  }
  return problems;
}

interface Scenario {
  readonly addresses: readonly string[];
  readonly settings: ConstructorParameters<typeof NodeCluster>[0]['settings'];
  /** Faults drawn from; 'partition' cuts so that each side has at least `sideNodesMin` nodes. */
  readonly faults: readonly FaultKind[];
  readonly crashedMax: number;
  readonly sideNodesMin: number;
  /** Wipes allowed in a run, each only while every node is running. */
  readonly wipesMax: number;
}

/** Injects one random fault within the scenario's bounds; returns a line saying what it did. */
function counterFault(cluster: NodeCluster, scenario: Scenario, wipes: { count: number }): string {
  const random = cluster.world.scheduler.random;
  const kind = random.pick(scenario.faults);
  if (kind === 'partition') {
    const shuffled = random.shuffle(cluster.addresses);
    const cut = random.int(scenario.sideNodesMin, shuffled.length - scenario.sideNodesMin);
    cluster.world.network.partition(shuffled.slice(0, cut), shuffled.slice(cut));
    return `partition ${shuffled.slice(0, cut).join(',')} | ${shuffled.slice(cut).join(',')}`;
  }
  if (kind === 'wipe') {
    // One disk lost while the others all hold theirs: every acknowledged operation is committed
    // on W = 2 nodes, so another copy survives, and the wiped node counts on as a new actor.
    if (wipes.count >= scenario.wipesMax) return 'no wipe: enough were wiped';
    if (cluster.running().length < cluster.addresses.length) return 'no wipe: a node is down';
    wipes.count++;
  }
  return randomFault(cluster, { crashedMax: scenario.crashedMax, kinds: [kind] });
}

async function runScenario(seed: number, scenario: Scenario): Promise<void> {
  const cluster = new NodeCluster({
    seed,
    addresses: scenario.addresses,
    // A long grace: nothing is reaped here.
    settings: { reapGraceMs: 24 * 60 * 60 * 1000, ...scenario.settings },
    network: { delayMsMin: 1, delayMsMax: 15, lossProbability: 0 },
    commitDelayMs: { min: 1, max: 8 },
  });
  const seedNote = cluster.world.scheduler.seedNote();
  const faults: string[] = [];
  const fail = (what: string, problems: readonly string[]): never => {
    throw new Error(`${problems.length} ${what}:\n${listFailures(problems, (problem) => problem)}\nfaults: ${faults.join('; ') || 'none'}\n${seedNote}`);
  };
  const settleMembership = async (when: string): Promise<void> => {
    try {
      await cluster.waitForMembership();
    } catch (error) {
      fail(`membership problem ${when}`, [error instanceof Error ? error.message : String(error)]);
    }
  };
  await settleMembership('at the start');

  // Each counter starts as a number set through one node of the healthy cluster, replicated to
  // every primary before the faults begin.
  for (const key of counterKeys) {
    const set = storeSpec({ mode: 'set', value: Buffer.from(initialValue.toString()), flags: 0, expiresAtMs: 0, casUnique: 0n });
    const applied = await settle(cluster, cluster.mutate(scenario.addresses[0], key, set), setupMsMax, `set ${key}`);
    if (applied.result?.result !== 'STORED') fail('initial set(s) refused', [`set ${key}: ${applied.error?.message ?? applied.result?.result}`]);
  }
  if (!(await cluster.world.runUntil(() => cluster.converged(counterKeys), setupMsMax))) {
    fail('key(s) not replicated before the faults', cluster.divergence(counterKeys));
  }

  const history = new CounterHistory();
  const wipes = { count: 0 };
  for (let round = 0; round < rounds; round++) {
    const random = cluster.world.scheduler.random;
    if (random.chance(faultBeforeRoundChance)) faults.push(counterFault(cluster, scenario, wipes));
    const midway = random.chance(faultDuringRoundChance) ? () => faults.push(`${counterFault(cluster, scenario, wipes)} (in round ${round})`) : undefined;
    await runRound(cluster, history, midway);
    await cluster.world.runFor(random.int(0, 300));
  }
  if (history.violations.length > 0) fail('problem(s) while the faults ran', history.violations);

  healEverything(cluster);
  await settleMembership('after healing');
  const observed = await observeHealed(cluster, (what, problems) => fail(what, problems));

  const problems: string[] = [];
  const troubled = new Set<string>();
  for (const key of counterKeys) {
    const before = problems.length;
    checkHealedKey(key, observed.get(key)!, cluster, history, problems);
    if (problems.length > before) troubled.add(key);
  }
  if (problems.length > 0) {
    const involved = history.operations.filter(
      (operation) => troubled.has(operation.key) && (operation.outcome !== 'acknowledged' || operation.actor === undefined),
    );
    fail('problem(s) in the healed cluster', [
      ...problems,
      `operations on ${[...troubled].join(', ')} not plainly acknowledged:\n${involved.map((operation) => `    ${describeOperation(operation)}`).join('\n')}`,
    ]);
  }
}

/** Checks one key of the healed cluster; adds what is wrong to `problems`. */
function checkHealedKey(key: string, healed: HealedKey, cluster: NodeCluster, history: CounterHistory, problems: string[]): void {
  const { primariesAgree, reads } = healed;
  // Every primary holds the same versions, down to the bytes stored (the counter state too).
  if (!primariesAgree) problems.push(`${key}: the primaries ${cluster.primariesOf(key).join(', ')} hold different bytes`);
  // Every node answers one version, the same one.
  const answers = new Map<string, Version>();
  for (const [address, read] of reads) {
    if (typeof read === 'string') {
      problems.push(`${key}: read via ${address} failed in the healed cluster: ${read}`);
      continue;
    }
    const live = read.filter((version) => !version.tombstone);
    if (live.length !== 1 || read.length !== 1) problems.push(`${key}: read via ${address} answered ${read.length} version(s), ${live.length} live`);
    if (live.length > 0) answers.set(address, live[0]);
  }
  const values = new Set([...answers.values()].map((version) => version.value.toString('latin1')));
  if (values.size > 1) {
    problems.push(`${key}: nodes answer different values: ${[...answers].map(([address, version]) => `${address}=${version.value.toString('latin1')}`).join(', ')}`);
  }
  const first = answers.values().next().value;
  if (first) problems.push(...counterProblems(key, first, history.operations));
}

/** What a healed cluster shows of one key: whether its primaries agree, and each node's read. */
interface HealedKey {
  readonly primariesAgree: boolean;
  /** The versions a read through each node answered, or why it failed. */
  readonly reads: ReadonlyMap<string, readonly Version[] | string>;
}

/** Every node's bytes for every key: equal twice means nothing was written in between. */
function storedSnapshot(cluster: NodeCluster): string {
  return counterKeys.map((key) => cluster.addresses.map((address) => encodeVersions(cluster.held(address, key)).toString('hex')).join(',')).join(';');
}

/**
 * Waits until the healed cluster has converged and stays so while a read through every node
 * runs. An operation that failed at its client may still be on its way, held back by a clog,
 * and be coordinated after healing: reads taken while it lands would compare two states. Each
 * such write moves the cluster on for good, so this ends after a few attempts at most.
 */
async function observeHealed(cluster: NodeCluster, fail: (what: string, problems: readonly string[]) => never): Promise<Map<string, HealedKey>> {
  for (let attempt = 1; attempt <= observeAttemptsMax; attempt++) {
    if (!(await cluster.world.runUntil(() => cluster.converged(counterKeys), convergeMsMax))) {
      fail(`divergence(s) ${convergeMsMax} ms after healing`, cluster.divergence(counterKeys));
    }
    const before = storedSnapshot(cluster);
    const observed = new Map<string, HealedKey>();
    for (const key of counterKeys) {
      const encoded = cluster.primariesOf(key).map((address) => encodeVersions(cluster.held(address, key)));
      const reads = new Map<string, readonly Version[] | string>();
      for (const address of cluster.addresses) {
        try {
          reads.set(address, (await settle(cluster, cluster.read(address, key), setupMsMax, `read ${key} via ${address}`)).versions);
        } catch (error) {
          reads.set(address, error instanceof Error ? error.message : String(error));
        }
      }
      observed.set(key, { primariesAgree: encoded.every((bytes) => bytes.equals(encoded[0])), reads });
    }
    if (cluster.converged(counterKeys) && storedSnapshot(cluster) === before) return observed;
  }
  return fail(`the healed cluster still changed after ${observeAttemptsMax} attempts to read it at rest`, cluster.divergence(counterKeys));
}

describe('counters count every acknowledged incr and decr once, under faults', () => {
  // Five nodes, N=3 R=2 W=2: a 2|3 partition leaves both sides writing through sloppy quorums.
  test.each(simSeeds(seedCount))('5 nodes, N=3 R=2 W=2, partitions, crashes, clogs and loss, seed %i', (seed) =>
    withSeed(seed, () =>
      runScenario(seed, {
        addresses: fiveNodes,
        settings: { n: 3, r: 2, w: 2 },
        faults: ['crash', 'restart', 'partition', 'heal', 'clog', 'loss'],
        crashedMax: 2,
        sideNodesMin: 2,
        wipesMax: 0,
      }),
    ),
  );

  // Three nodes, N=3 R=1 W=1: each side of a partition counts alone, even a single node.
  test.each(simSeeds(seedCount))('3 nodes, N=3 R=1 W=1, partitions and crashes, seed %i', (seed) =>
    withSeed(seed, () =>
      runScenario(seed, {
        addresses: threeNodes,
        settings: { n: 3, r: 1, w: 1 },
        faults: ['crash', 'restart', 'partition', 'heal', 'clog', 'loss'],
        crashedMax: 1,
        sideNodesMin: 1,
        wipesMax: 0,
      }),
    ),
  );

  // Five nodes, N=3 R=2 W=2, one disk wiped while every node runs: W copies leave one behind.
  test.each(simSeeds(seedCount))('5 nodes, N=3 R=2 W=2, one wiped disk among other faults, seed %i', (seed) =>
    withSeed(seed, () =>
      runScenario(seed, {
        addresses: fiveNodes,
        settings: { n: 3, r: 2, w: 2 },
        faults: ['crash', 'restart', 'partition', 'heal', 'clog', 'loss', 'wipe'],
        crashedMax: 2,
        sideNodesMin: 2,
        wipesMax: 1,
      }),
    ),
  );
});

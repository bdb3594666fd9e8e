import type { RpcReply, RpcRequest } from '../../../src/rpc/messages';
import { KaiError } from '../../../src/errors';
import type { SimNetworkOptions } from '../../sim/network';
import { simStartMs } from '../../sim/scheduler';
import { SimWorld } from '../../sim/world';

/** A request's outcome, watched from the moment it is sent so no rejection goes unhandled. */
interface Outcome {
  reply?: RpcReply;
  error?: unknown;
  settledAtMs?: number;
}

function watch(world: SimWorld, promise: Promise<RpcReply>): Outcome {
  const outcome: Outcome = {};
  promise.then(
    (reply) => Object.assign(outcome, { reply, settledAtMs: world.scheduler.elapsedMs() }),
    (error: unknown) => Object.assign(outcome, { error, settledAtMs: world.scheduler.elapsedMs() }),
  );
  return outcome;
}

const nodeInfo: RpcRequest = { type: 'nodeInfo' };

/** A world whose nodes answer nodeInfo with their address and record who reached them. */
async function worldOf(addresses: readonly string[], network: SimNetworkOptions = {}, seed = 1) {
  const world = new SimWorld({ seed, network });
  const arrivals: string[] = [];
  for (const address of addresses) {
    await world.host(address).transport.serve((request) => {
      arrivals.push(`${request.type}@${address}`);
      return { type: 'nodeInfo', id: address, members: [] };
    });
  }
  return { world, arrivals };
}

function isUnreachable(error: unknown): boolean {
  return error instanceof KaiError && error.code === 'KAI_PEER_UNREACHABLE';
}

describe('SimNetwork', () => {
  // A request and its reply each take a delay drawn from [min, max], in virtual time.
  test('delivers requests and replies after the configured delays', async () => {
    const { world } = await worldOf(['a', 'b'], { delayMsMin: 5, delayMsMax: 15 });
    const outcomes = Array.from({ length: 200 }, () => watch(world, world.at('a').transport.request('b', nodeInfo, 1_000)));
    await world.runUntilIdle(1_000);
    for (const outcome of outcomes) {
      expect(outcome.reply).toEqual({ type: 'nodeInfo', id: 'b', members: [] });
      expect(outcome.settledAtMs).toBeGreaterThanOrEqual(10);
      expect(outcome.settledAtMs).toBeLessThanOrEqual(30);
    }
    expect(new Set(outcomes.map((outcome) => outcome.settledAtMs)).size).toBeGreaterThan(5);
    expect(world.network.stats).toMatchObject({ sent: 400, delivered: 400, lost: 0, timedOut: 0 });
  });

  // Messages go through msgpack: the receiver gets its own copy, Buffers stay Buffers.
  test('clones messages as the wire does', async () => {
    const world = new SimWorld({ seed: 1 });
    let received: RpcRequest | undefined;
    await world.host('b').transport.serve((request) => {
      received = request;
      if (request.type === 'replicaFetch') request.key.fill(0);
      return { type: 'stored' };
    });
    const key = Buffer.from('key');
    const outcome = watch(world, world.host('a').transport.request('b', { type: 'replicaFetch', key }, 1_000));
    key.write('KEY');
    await world.runUntilIdle(1_000);
    expect(outcome.reply).toEqual({ type: 'stored' });
    expect(received).toEqual({ type: 'replicaFetch', key: Buffer.from('key').fill(0) });
    expect(Buffer.isBuffer((received as { key: Buffer }).key)).toBe(true);
    expect(key.toString()).toBe('KEY');
  });

  // Under partition([a,b],[c,d]) with e in no group, exactly the messages within a group arrive.
  test('drops exactly the cross-partition messages', async () => {
    const addresses = ['a', 'b', 'c', 'd', 'e'];
    const { world } = await worldOf(addresses);
    world.network.partition(['a', 'b'], ['c', 'd']);
    const side = (address: string): string => (['a', 'b'].includes(address) ? 'ab' : ['c', 'd'].includes(address) ? 'cd' : address);
    const outcomes = new Map<string, Outcome>();
    for (const from of addresses) {
      for (const to of addresses) {
        if (from !== to) outcomes.set(`${from}->${to}`, watch(world, world.at(from).transport.request(to, nodeInfo, 500)));
      }
    }
    await world.runUntilIdle(1_000);
    for (const [link, outcome] of outcomes) {
      const [from, to] = link.split('->');
      if (side(from) === side(to)) expect(outcome.reply).toBeDefined();
      else expect(isUnreachable(outcome.error)).toBe(true);
    }
    expect(world.network.stats.partitioned).toBe(20 - 4);
    expect(world.network.stats.timedOut).toBe(20 - 4);
  });

  // isolate and cutLink compose with the current partition; heal removes them all.
  test('isolates nodes, cuts one-way links and heals', async () => {
    const { world } = await worldOf(['a', 'b', 'c']);
    const network = world.network;
    network.isolate('a');
    network.cutLink('b', 'c');
    expect([network.canReach('a', 'b'), network.canReach('b', 'a'), network.canReach('b', 'c'), network.canReach('c', 'b')]).toEqual([
      false,
      false,
      false,
      true,
    ]);
    network.isolate('b');
    expect(network.canReach('b', 'c')).toBe(false);
    expect(network.canReach('a', 'b')).toBe(false);
    network.heal();
    expect(['a', 'b', 'c'].every((from) => ['a', 'b', 'c'].every((to) => network.canReach(from, to)))).toBe(true);
  });

  // A partition that forms while a message is in flight drops it on arrival.
  test('drops messages in flight when a partition forms', async () => {
    const { world, arrivals } = await worldOf(['a', 'b'], { delayMsMin: 50, delayMsMax: 50 });
    const outcome = watch(world, world.at('a').transport.request('b', nodeInfo, 200));
    await world.runFor(10);
    world.network.partition(['a'], ['b']);
    await world.runUntilIdle(1_000);
    expect(arrivals).toEqual([]);
    expect(isUnreachable(outcome.error)).toBe(true);
    expect(world.network.stats.partitioned).toBe(1);
  });

  // With loss probability 0.2, about a fifth of the messages are lost.
  test('loses messages at roughly the configured rate', async () => {
    const { world } = await worldOf(['a', 'b'], { lossProbability: 0.2 }, 12345);
    const outcomes = Array.from({ length: 3_000 }, () => watch(world, world.at('a').transport.request('b', nodeInfo, 100)));
    await world.runUntilIdle(1_000);
    const { sent, lost, timedOut } = world.network.stats;
    expect(lost / sent).toBeGreaterThan(0.17);
    expect(lost / sent).toBeLessThan(0.23);
    // A lost request or a lost reply both end in a timeout; a round trip survives 0.8 * 0.8 of the time.
    const answered = outcomes.filter((outcome) => outcome.reply).length;
    expect(answered + timedOut).toBe(3_000);
    expect(answered / 3_000).toBeGreaterThan(0.6);
    expect(answered / 3_000).toBeLessThan(0.68);
  });

  // A peer that never answers makes the request fail exactly at its timeout, in virtual time.
  test('honours timeouts in virtual time', async () => {
    const world = new SimWorld({ seed: 1 });
    await world.host('silent').transport.serve(() => new Promise<RpcReply>(() => undefined));
    const caller = world.host('caller').transport;
    const outcome = watch(world, caller.request('silent', nodeInfo, 750));
    const nowhere = watch(world, caller.request('nobody-there', nodeInfo, 300));
    await world.runFor(749);
    expect(outcome.settledAtMs).toBeUndefined();
    await world.runFor(1);
    expect(outcome.settledAtMs).toBe(750);
    expect(isUnreachable(outcome.error)).toBe(true);
    expect((outcome.error as KaiError).detail).toBe('silent did not answer within 750 ms');
    expect(nowhere.settledAtMs).toBe(300);
    expect(caller.pendingRequests).toBe(0);
    expect(world.network.stats).toMatchObject({ unreachable: 1, timedOut: 2 });
  });

  // A crashed node's own requests fail at once, it answers nothing, and replies it owed are lost;
  // after a restart a fresh transport serves again.
  test('crashes and restarts nodes', async () => {
    const world = new SimWorld({ seed: 1, network: { delayMsMin: 5, delayMsMax: 5 } });
    const a = world.host('a');
    const b = world.host('b');
    // b answers after 100 ms of its own time, so a reply is owed when it crashes.
    await b.transport.serve(() => new Promise<RpcReply>((resolve) => b.env.after(100, () => resolve({ type: 'stored' }))));
    await a.transport.serve(() => new Promise<RpcReply>(() => undefined));
    // Pending from b when it crashes: a never answers.
    const fromB = watch(world, b.transport.request('a', nodeInfo, 1_000));
    const toB = watch(world, a.transport.request('b', nodeInfo, 1_000));
    await world.runFor(50);
    world.crash('b');
    await world.runFor(0);
    expect(fromB.settledAtMs).toBe(50);
    expect((fromB.error as KaiError).detail).toBe('b crashed');
    const afterCrash = watch(world, a.transport.request('b', nodeInfo, 200));
    const oldTransport = watch(world, b.transport.request('a', nodeInfo, 200));
    await world.runFor(2_000);
    expect(isUnreachable(toB.error)).toBe(true);
    expect(toB.settledAtMs).toBe(1_000);
    expect(isUnreachable(afterCrash.error)).toBe(true);
    expect(oldTransport.settledAtMs).toBe(50);
    expect((oldTransport.error as KaiError).detail).toBe('b is closed');
    expect(b.env.pendingTimers).toBe(0);

    const restarted = world.restart('b');
    await restarted.transport.serve(() => ({ type: 'stored' }));
    const again = watch(world, a.transport.request('b', nodeInfo, 200));
    await world.runFor(20);
    expect(again.reply).toEqual({ type: 'stored' });
    expect(world.at('b')).toBe(restarted);
  });

  // A clogged node's traffic waits until the clog ends, then takes its usual delay.
  test('clogs a node', async () => {
    const { world } = await worldOf(['a', 'b', 'c'], { delayMsMin: 3, delayMsMax: 3 });
    world.network.clog('b', 500);
    const clogged = watch(world, world.at('a').transport.request('b', nodeInfo, 2_000));
    const clear = watch(world, world.at('a').transport.request('c', nodeInfo, 2_000));
    await world.runUntilIdle(2_000);
    expect(clear.settledAtMs).toBe(6);
    expect(clogged.settledAtMs).toBe(506);
  });

  // A KaiError thrown by a handler comes back as an error reply naming its code.
  test('carries KaiErrors back as error replies', async () => {
    const world = new SimWorld({ seed: 1 });
    await world.host('b').transport.serve(() => {
      throw new KaiError('KAI_STORAGE_FAILURE', 'disk full');
    });
    const outcome = watch(world, world.host('a').transport.request('b', nodeInfo, 100));
    await world.runUntilIdle(1_000);
    expect(outcome.reply).toEqual({ type: 'error', code: 'KAI_STORAGE_FAILURE', detail: 'disk full' });
  });

  // Any other throw is a bug: it stops the run, or with internalErrors 'reply' answers KAI_INTERNAL.
  test('treats other handler errors as bugs', async () => {
    const failing = new SimWorld({ seed: 99 });
    await failing.host('b').transport.serve(() => Promise.reject(new TypeError('undefined is not a function')));
    watch(failing, failing.host('a').transport.request('b', nodeInfo, 100));
    await expect(failing.runFor(1_000)).rejects.toThrow(/undefined is not a function; seed 99/);

    const lenient = new SimWorld({ seed: 1, network: { internalErrors: 'reply' } });
    await lenient.host('b').transport.serve(() => {
      throw new Error('oops');
    });
    const outcome = watch(lenient, lenient.host('a').transport.request('b', nodeInfo, 100));
    await lenient.runUntilIdle(1_000);
    expect(outcome.reply).toMatchObject({ type: 'error', code: 'KAI_INTERNAL' });
  });

  // A message the real receiver would reject as malformed stops the run, naming the problem.
  test('stops the run on messages the wire would reject', async () => {
    const { world } = await worldOf(['a', 'b'], {}, 5);
    const bogus = { type: 'replicaFetch', key: 'not bytes' } as unknown as RpcRequest;
    watch(world, world.at('a').transport.request('b', bogus, 100));
    await expect(world.runFor(100)).rejects.toThrow(/request #1 from a would not pass the wire: request\.key is not/);
  });

  // close fails pending requests at once and stops serving.
  test('closes a transport', async () => {
    const { world } = await worldOf(['a', 'b']);
    const outcome = watch(world, world.at('a').transport.request('b', nodeInfo, 1_000));
    await world.at('a').transport.close();
    await world.runFor(0);
    expect(outcome.settledAtMs).toBe(0);
    expect(isUnreachable(outcome.error)).toBe(true);
    expect(world.network.server('a')).toBeUndefined();
    expect(world.scheduler.nowMs()).toBe(simStartMs);
  });
});

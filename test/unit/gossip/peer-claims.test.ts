// The gossip shell refuses seeds that name no one machine, and takes a member's own word only from the address it dialled.
import pino from 'pino';
import { KaiError } from '../../../src/errors';
import { exchangesInFlightMax, Gossip, memoryPersistence } from '../../../src/gossip';
import { findMember } from '../../../src/membership';
import type { RpcReply, WireMember } from '../../../src/rpc/messages';
import type { Transport } from '../../../src/rpc/transport';
import { ManualEnv } from '../../support/manual-env';

const self = { id: 'n1:7001', address: 'n1:7001', zone: '', weight: 1 };
const silentLog = pino({ level: 'silent' });

function peer(id: string, overrides: Partial<WireMember> = {}): WireMember {
  return { id, address: id, zone: '', weight: 1, status: 'up', incarnation: 0, heartbeat: 5, ...overrides };
}

// The measured attack: addSeed made a node dial any address given.
test('addSeed refuses what names no one machine, and dials nothing for it', async () => {
  const dialled: string[] = [];
  const transport: Pick<Transport, 'request'> = {
    request: (address) => {
      dialled.push(address);
      return Promise.reject(new KaiError('KAI_PEER_UNREACHABLE', `${address}: refused`));
    },
  };
  const gossip = new Gossip({ self, env: new ManualEnv(), transport, log: silentLog, persistence: memoryPersistence(), intervalMs: 100 });
  for (const address of ['0.0.0.0:7001', '255.255.255.255:7001', '224.0.0.5:7001', '[ff02::1]:7001', 'a b:7001', '10.0.0.1:0']) {
    await expect(Promise.resolve(gossip.handle({ type: 'addSeed', address }))).rejects.toMatchObject({ code: 'KAI_BAD_COMMAND_LINE' });
  }
  expect(dialled).toEqual([]);
  expect(gossip.membership.members.map((m) => m.id)).toEqual([self.id]);
  await gossip.handle({ type: 'addSeed', address: '10.0.0.1:7002' });
  expect(dialled).toEqual(['10.0.0.1:7002']);
});

// A gossip request's list vouches for nobody; the reply from a dialled address vouches for the
// member there. A member heard of second-hand is dialled at once, and stays unvouched while silent.
test('only the dialled member vouches for itself', async () => {
  const fake = peer('n9:7009', { weight: 16 });
  const dialled: string[] = [];
  const transport: Pick<Transport, 'request'> = {
    request: (address) => {
      dialled.push(address);
      if (address !== 'n2:7002') return Promise.reject(new KaiError('KAI_PEER_UNREACHABLE', `${address}: refused`));
      return Promise.resolve<RpcReply>({ type: 'gossip', members: [peer(address), peer('n3:7003')] });
    },
  };
  const gossip = new Gossip({ self, env: new ManualEnv(), transport, log: silentLog, persistence: memoryPersistence(), intervalMs: 100 });
  gossip.handle({ type: 'gossip', members: [fake] });
  expect(findMember(gossip.membership, fake.id)).toMatchObject({ confirmed: true, vouched: false });
  expect(dialled).toEqual([fake.address]);
  await gossip.handle({ type: 'addSeed', address: 'n2:7002' });
  expect(findMember(gossip.membership, 'n2:7002')?.vouched).toBe(true);
  expect(dialled).toEqual([fake.address, 'n2:7002', 'n3:7003']);
  await Promise.resolve();
  expect(findMember(gossip.membership, 'n3:7003')?.vouched).toBe(false);
  expect(findMember(gossip.membership, fake.id)?.vouched).toBe(false);
});

// However many members one frame invents, only exchangesInFlightMax are dialled at once.
test('newcomers are dialled within the exchanges in flight', () => {
  const dialled: string[] = [];
  const transport: Pick<Transport, 'request'> = {
    request: (address) => {
      dialled.push(address);
      return new Promise<RpcReply>(() => undefined);
    },
  };
  const gossip = new Gossip({ self, env: new ManualEnv(), transport, log: silentLog, persistence: memoryPersistence(), intervalMs: 100 });
  gossip.handle({ type: 'gossip', members: Array.from({ length: 100 }, (_, index) => peer(`n${index + 10}:7000`)) });
  expect(dialled).toHaveLength(exchangesInFlightMax);
});

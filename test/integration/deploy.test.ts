// The deployment files: the Dockerfile, compose file, Kubernetes manifest and systemd unit parse, agree with kai's flags and ports, and their commands run here as plain processes (one node, and the compose file's 3-node cluster, which forms).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadSettings } from '../../src/config/load';
import { defaultSettings } from '../../src/config/settings';
import { adminRequest, eventually } from '../support/admin';
import {
  advertiseFlag,
  deployDir,
  deployFile,
  dockerInstructions,
  execForm,
  imageConfigPath,
  loadableFlags,
  localStartArgs,
  parseStartCommand,
  repoConfigPath,
  type StartCommand,
} from '../support/deploy';
import { getFreePort, kaiBin, killStartedKai, repoRoot } from '../support/process';
import { RawClient } from '../support/raw-client';
import { spawnServer, type ServerProcess } from '../support/servers';

/** How long the compose file's cluster may take to form: gossip, the first ring, a join plan. */
const formTimeoutMs = 60_000;

let workDir: string;
let secretFile: string;
const imageConfig = JSON.parse(fs.readFileSync(repoConfigPath, 'utf8')) as Record<string, unknown>;
const started: ServerProcess[] = [];

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kai-deploy-'));
  secretFile = path.join(workDir, 'cluster-secret');
  fs.writeFileSync(secretFile, 'a-cluster-secret-of-more-than-16-bytes\n');
});

afterAll(async () => {
  await Promise.all(started.map((server) => server.stop('SIGTERM', 20_000).catch(() => undefined)));
  await killStartedKai();
  fs.rmSync(workDir, { recursive: true, force: true });
}, 60_000);

/** Loads `command` with kai's own config loader, as `kai start` would, with its files swapped for ones here. */
function loadCommand(command: StartCommand, name: string) {
  const dataDir = path.join(workDir, 'loaded', name);
  const configFile = command.configFile === imageConfigPath ? repoConfigPath : command.configFile;
  const settings = loadSettings(loadableFlags(command, { dataDir, clusterSecretFile: secretFile }), { cwd: workDir, configFile });
  return settings;
}

function startLocal(label: string, args: readonly string[], memcachePort: number): Promise<ServerProcess> {
  return spawnServer({ label, command: process.execPath, args: [kaiBin, ...args], cwd: workDir, readyPort: memcachePort }).then((server) => {
    started.push(server);
    return server;
  });
}

async function setAndGet(memcachePort: number, key: string): Promise<void> {
  const client = await RawClient.connect(memcachePort);
  try {
    expect(await client.request(`set ${key} 0 0 2\r\nok\r\n`)).toBe('STORED\r\n');
    expect(await client.request(`get ${key}\r\n`, 'END\r\n')).toBe(`VALUE ${key} 0 2\r\nok\r\nEND\r\n`);
  } finally {
    client.close();
  }
}

describe('the image', () => {
  const instructions = dockerInstructions(deployFile('Dockerfile'));
  const all = (keyword: string) => instructions.filter((instruction) => instruction.keyword === keyword);
  const last = (keyword: string) => all(keyword)[all(keyword).length - 1];

  test('builds in node:20 bookworm and runs on its slim image, as a user that is not root, with the data on a volume', () => {
    expect(all('FROM').map((from) => from.argument)).toEqual(['node:20-bookworm AS build', 'node:20-bookworm-slim']);
    expect(all('RUN').some((run) => run.argument.includes('npm rebuild better-sqlite3 --build-from-source'))).toBe(true);
    expect(last('USER').argument).toBe('kai');
    expect(last('VOLUME').argument).toBe(imageConfig.data_dir);
    expect(all('COPY').map((copy) => copy.argument)).toContain(`deploy/kai.config.json ${imageConfigPath}`);
    for (const copied of ['package.json', 'package-lock.json', 'tsconfig.json', 'bin', 'src']) expect(fs.existsSync(path.join(repoRoot, copied))).toBe(true);
  });

  test('exposes the ports its config gives, and its health check asks /health on the admin port', () => {
    const config = loadCommand(parseStartCommand(execForm(last('CMD').argument)), 'image');
    // kai refuses an id its peers cannot dial (0.0.0.0): a lone container is known as 127.0.0.1.
    expect(config).toMatchObject({ memcachePort: imageConfig.memcache_port, adminHost: '0.0.0.0', hostname: '0.0.0.0', advertiseAddress: '127.0.0.1' });
    expect(last('EXPOSE').argument.split(/\s+/).map(Number).sort()).toEqual([config.adminPort, config.memcachePort, config.port].sort());
    const healthCheck = execForm(last('HEALTHCHECK').argument);
    expect(healthCheck.slice(0, 2)).toEqual(['node', '-e']);
    expect(healthCheck[2]).toContain(`fetch('http://127.0.0.1:${config.adminPort}/health')`);
    expect(execForm(last('ENTRYPOINT').argument)).toEqual(['node', '/opt/kai/bin/kai']);
  });

  test("its start command runs here as a plain process, answering memcache and its own health check", async () => {
    const command = parseStartCommand(execForm(last('CMD').argument));
    const [port, memcachePort, adminPort] = [await getFreePort(), await getFreePort(), await getFreePort()];
    const args = localStartArgs(command, { port, memcachePort, adminPort, dataDir: path.join(workDir, 'image-node'), peerPorts: new Map() });
    const node = await startLocal('image node', args, memcachePort);
    await setAndGet(memcachePort, 'image');
    const healthCheck = execForm(last('HEALTHCHECK').argument).map((word) => word.replace(`:${imageConfig.admin_port}/`, `:${adminPort}/`));
    const runCheck = () => spawnSync(process.execPath, healthCheck.slice(1), { timeout: 10_000 }).status;
    expect(runCheck()).toBe(0);
    expect(await eventually(async () => (await adminRequest(adminPort, '/ready')).status === 200, 15_000)).toBe(true);
    expect((await node.stop('SIGTERM', 20_000)).status).toEqual({ code: 0, signal: null });
    // Stopped, the node fails the same check.
    expect(runCheck()).toBe(1);
  }, 60_000);
});

describe('the compose file', () => {
  interface ComposeService {
    readonly hostname: string;
    readonly command: string[];
    readonly ports: string[];
    readonly volumes: string[];
    readonly build: { readonly context: string; readonly dockerfile: string };
  }
  const compose = parse(deployFile('docker-compose.yml'), { merge: true }) as { services: Record<string, ComposeService> };
  const services = Object.entries(compose.services);

  test('parses: three nodes, each built from deploy/Dockerfile with its data on a volume', () => {
    expect(services.map(([name]) => name)).toEqual(['kai1', 'kai2', 'kai3']);
    for (const [, service] of services) {
      expect(fs.existsSync(path.join(deployDir, service.build.context, service.build.dockerfile))).toBe(true);
      expect(service.volumes).toHaveLength(1);
      expect(service.volumes[0].endsWith(`:${imageConfig.data_dir}`)).toBe(true);
    }
  });

  test("each command is kai's: flags it knows with values it takes, advertising the service's name, seeding the nodes before it", () => {
    services.forEach(([name, service], index) => {
      const command = parseStartCommand(service.command);
      const settings = loadCommand(command, name);
      expect(command.configFile).toBe(imageConfigPath);
      expect(command.advertiseAddress).toBe(name);
      expect(service.hostname).toBe(name);
      const earlier = services.slice(0, index).map(([other]) => `${other}:${settings.port}`);
      expect(settings.seeds).toEqual(earlier);
      // Published: the memcache and admin ports the node listens on; never the internal API.
      const containerPorts = service.ports.map((mapping) => Number(mapping.split(':')[1]));
      expect(containerPorts.sort()).toEqual([settings.adminPort, settings.memcachePort].sort());
      expect(settings.adminHost).toBe('0.0.0.0');
    });
    const hostPorts = services.flatMap(([, service]) => service.ports.map((mapping) => mapping.split(':')[0]));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  test('its cluster, started here from the same commands on 127.0.0.1 and free ports, forms: every node ready', async () => {
    const local = await Promise.all(
      services.map(async ([name]) => ({ name, port: await getFreePort(), memcachePort: await getFreePort(), adminPort: await getFreePort() })),
    );
    const peerPorts = new Map(local.map((node) => [node.name, node.port]));
    const nodes = await Promise.all(
      services.map(([name, service], index) => {
        const args = localStartArgs(parseStartCommand(service.command), {
          ...local[index],
          dataDir: path.join(workDir, 'compose', name),
          peerPorts,
          clusterSecretFile: secretFile,
        });
        return startLocal(name, [...args, '--log-level', 'warn'], local[index].memcachePort);
      }),
    );
    expect(nodes).toHaveLength(3);
    // Formed: every node sees all three up and owning buckets, and each is ready for N=3, R=2, W=2.
    const formed = async (): Promise<boolean> => {
      const views = await Promise.all(local.map(async (node) => JSON.parse((await adminRequest(node.adminPort, '/status')).body)));
      return views.every(
        (view) =>
          view.ready &&
          view.quorum.effective.n === 3 &&
          view.members.length === 3 &&
          view.members.every((member: { status: string; ring: string }) => member.status === 'up' && member.ring === 'owner'),
      );
    };
    expect(await eventually(formed, formTimeoutMs)).toBe(true);
    for (const node of local) expect((await adminRequest(node.adminPort, '/ready')).status).toBe(200);
    for (const node of local) await setAndGet(node.memcachePort, `through-${node.name}`);
  }, 120_000);
});

describe('the Kubernetes manifest', () => {
  const documents = parseAllDocuments(deployFile('kubernetes/kai.yaml')).map((document) => {
    expect(document.errors).toEqual([]);
    return document.toJSON();
  });
  const ofKind = (kind: string) => documents.filter((document) => document.kind === kind);
  const [statefulSet] = ofKind('StatefulSet');
  const pod = statefulSet.spec.template.spec;
  const container = pod.containers[0];
  const headless = ofKind('Service').find((service) => service.spec.clusterIP === 'None');
  const portOf = (name: string): number => container.ports.find((port: { name: string }) => port.name === name).containerPort;

  test('parses: a headless service, a client service, a disruption budget and a 3-node StatefulSet', () => {
    expect(documents.map((document) => document.kind)).toEqual(['Service', 'Service', 'PodDisruptionBudget', 'StatefulSet']);
    expect(statefulSet.spec.replicas).toBe(3);
    expect(statefulSet.spec.serviceName).toBe(headless.metadata.name);
    // Peers must reach a node that is not ready, or a cluster that lost its quorum could not heal.
    expect(headless.spec.publishNotReadyAddresses).toBe(true);
    expect(statefulSet.spec.podManagementPolicy).toBe('Parallel');
  });

  test("each pod's command is kai's, advertising its stable DNS name and seeding the first pod", () => {
    for (let index = 0; index < statefulSet.spec.replicas; index++) {
      const podName = `${statefulSet.metadata.name}-${index}`;
      const words = (container.args as string[]).map((word) => word.replace('$(POD_NAME)', podName));
      const command = parseStartCommand(words);
      const settings = loadCommand(command, podName);
      expect(command.advertiseAddress).toBe(`${podName}.${headless.metadata.name}`);
      expect(settings.seeds).toEqual([`${statefulSet.metadata.name}-0.${headless.metadata.name}:${settings.port}`]);
      expect(settings.clusterSecretFile).toBe(secretFile);
      const secretMount = container.volumeMounts.find((mount: { name: string }) => mount.name === 'cluster-secret');
      expect(command.flags.clusterSecretFile!.startsWith(`${secretMount.mountPath}/`)).toBe(true);
      expect({ internal: portOf('internal'), memcache: portOf('memcache'), admin: portOf('admin') }).toEqual({
        internal: settings.port,
        memcache: settings.memcachePort,
        admin: settings.adminPort,
      });
    }
    expect(container.env).toContainEqual({ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
  });

  test('its probes ask /ready and /health on the admin port, which listens on every interface', () => {
    const settings = loadCommand(parseStartCommand((container.args as string[]).map((word) => word.replace('$(POD_NAME)', 'kai-0'))), 'probe');
    expect(container.readinessProbe.httpGet).toEqual({ path: '/ready', port: 'admin' });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/health', port: 'admin' });
    expect(portOf('admin')).toBe(settings.adminPort);
    expect(settings.adminHost).toBe('0.0.0.0');
    expect(headless.spec.ports.map((port: { port: number }) => port.port).sort()).toEqual([settings.adminPort, settings.memcachePort, settings.port].sort());
  });

  test("runs as the image's user, keeps its data on a claim, and waits out the node's own stop", () => {
    const uid = /--uid (\d+)/.exec(deployFile('Dockerfile'))![1];
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: Number(uid), fsGroup: Number(uid) });
    const [claim] = statefulSet.spec.volumeClaimTemplates;
    expect(container.volumeMounts).toContainEqual({ name: claim.metadata.name, mountPath: imageConfig.data_dir });
    expect(pod.terminationGracePeriodSeconds * 1000).toBeGreaterThan(defaultSettings.stopTimeoutMs);
  });
});

describe('the systemd unit', () => {
  const unit = deployFile('systemd/kai.service');
  const directive = (name: string): string => new RegExp(`^${name}=(.*)$`, 'm').exec(unit)![1];

  test("starts kai start with kai's flags, as a user of its own, restarting on failure and waiting out the stop", () => {
    // systemd puts the machine's host name for %H.
    const words = directive('ExecStart').replaceAll('%H', os.hostname()).split(' ');
    expect(words.slice(0, 2)).toEqual(['/usr/bin/node', '/opt/kai/bin/kai']);
    const command = parseStartCommand(words.slice(2));
    expect(command.flags.dataDir).toBe(`/var/lib/${directive('StateDirectory')}`);
    const settings = loadCommand({ ...command, configFile: repoConfigPath }, 'systemd');
    expect(settings.adminPort).toBe(9100);
    expect(settings.advertiseAddress).toBe(os.hostname());
    expect(directive('User')).toBe('kai');
    expect(directive('Restart')).toBe('on-failure');
    expect(Number(directive('TimeoutStopSec')) * 1000).toBeGreaterThan(defaultSettings.stopTimeoutMs);
  });

  test('passes systemd-analyze verify', () => {
    const verify = spawnSync('systemd-analyze', ['verify', path.join(deployDir, 'systemd', 'kai.service')], { encoding: 'utf8', timeout: 30_000 });
    if (verify.error !== undefined) throw new Error(`systemd-analyze could not run: ${verify.error.message}`);
    expect({ status: verify.status, stderr: verify.stderr }).toEqual({ status: 0, stderr: '' });
  });
});

test(`nodes in containers are known to their peers by ${advertiseFlag}, bound to every interface by --hostname`, () => {
  for (const file of ['docker-compose.yml', 'kubernetes/kai.yaml']) expect(deployFile(file)).toContain(advertiseFlag);
  expect(imageConfig.hostname).toBe('0.0.0.0');

});

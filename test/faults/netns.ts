/**
 * Fault hosts for tests: real `bin/kai` processes, each in its own Linux network namespace, joined
 * by one bridge in the root namespace, with iptables rules inside the namespaces to cut the links
 * between them. The test process stays in the root namespace and reaches every node through the
 * bridge's own address. Plain Node (no jest), like ../support/servers.
 *
 *   const availability = faultHostsAvailable();          // root, ip and iptables present?
 *   const network = await FaultNetwork.create({ hostCount: 3 });
 *   const kai = await network.startKaiIn(network.hosts[0], { dataDir, args });
 *   await network.isolate(kai);                           // DROP between it and the other nodes
 *   await network.heal();
 *   afterAll(() => network.cleanup());                    // processes, namespaces, veths, bridge, rules
 *
 * Address plan: one /24 per run inside 10.64.0.0/10, picked from the process id and skipped when
 * any route of the host overlaps it. The bridge (the root namespace) is .1; host i (1-based) is
 * .(10 + i). Namespaces have no default route, so nodes can reach nothing but each other and .1.
 *
 * Names: every bridge, veth and namespace is `kaif<pid in base 36>-<kind><index>` (at most 13
 * characters; Linux interface names are at most 15), so two concurrent runs never share one and
 * removeLeftoverFaultNetworks() can tell what an earlier, crashed run left behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { kaiBin, type KaiProcess } from '../support/process';
import {
  delay,
  exitTimeoutMsDefault,
  killByPid,
  spawnServer,
  spawnTracked,
  withTimeout,
  type ExitStatus,
  type OutputMode,
  type StartedProcess,
} from '../support/servers';

/** Every name this harness gives a namespace, interface or iptables comment starts with this. */
export const faultNamePrefix = 'kaif';
/** `kaif<run tag>-<kind>[index]`: b is the bridge, n<i> a namespace, h<i> the veth end on the bridge. */
const faultNamePattern = /^kaif([0-9a-z]+)-(b|n[0-9]+|h[0-9]+)$/;
/** Linux's IFNAMSIZ is 16 bytes with the terminating NUL. */
const interfaceNameLengthMax = 15;
/** Fits the two-digit index in names and the .11 to .26 host addresses. */
export const hostCountMax = 16;
/** Each namespace's end of its veth pair; namespaces do not share a name space for links. */
export const namespaceInterface = 'eth0';
/** kai's own defaults: each namespace has its own port space, so every node can use them. */
export const kaiPortDefault = 11011;
export const kaiMemcachePortDefault = 11211;
/** One `ip` or `iptables` command; they take milliseconds, so this only bounds a hung one. */
export const commandTimeoutMsDefault = 10_000;
/** How long cleanup waits for a killed process (not our child) to be gone from a namespace. */
const goneTimeoutMs = 5_000;
const goneCheckIntervalMs = 25;
/** 10.64.0.0/10 holds 16,384 /24s: runs pick one by pid and step over those in use. */
const subnetSecondOctetMin = 64;
const subnetCount = 16_384;
const subnetAttemptsMax = 64;
const hostSideOctet = 1;
const firstNodeOctetBase = 10;
/** Where `ip netns add` mounts namespaces; its inode identifies the namespace. */
const namespaceMountDirectory = '/run/netns';
/** Searched after PATH: a root shell has /usr/sbin, but a test runner's PATH may not. */
const systemToolDirectories = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

export interface FaultHostsAvailability {
  readonly ok: boolean;
  /** Why not, and what to install or change; absent when ok. */
  readonly why?: string;
}

interface Tools {
  readonly ip: string;
  readonly iptables: string;
}

function findTool(name: string): string | undefined {
  const directories = [...(process.env.PATH ?? '').split(':').filter((directory) => directory !== ''), ...systemToolDirectories];
  for (const directory of directories) {
    const candidate = path.join(directory, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

function findTools(): Tools | FaultHostsAvailability {
  const ip = findTool('ip');
  if (ip === undefined) return { ok: false, why: 'ip (iproute2) not found: run `bash test/faults/ensure-tools.sh` as root' };
  const iptables = findTool('iptables');
  if (iptables === undefined) return { ok: false, why: 'iptables not found: run `bash test/faults/ensure-tools.sh` as root' };
  return { ip, iptables };
}

/**
 * Whether this process can build fault hosts: Linux, root (namespaces, veths and iptables need
 * CAP_NET_ADMIN), `ip` and `iptables` installed. Tests that need them fail with `why` rather
 * than skip, so that a CI runner without them cannot pass by running nothing.
 */
export function faultHostsAvailable(): FaultHostsAvailability {
  if (process.platform !== 'linux') return { ok: false, why: `network namespaces are Linux only; this is ${process.platform}` };
  const uid = process.getuid?.();
  if (uid !== 0) return { ok: false, why: `network namespaces, veth pairs and iptables need root; this process runs as uid ${uid}` };
  if (!fs.existsSync('/proc/self/ns/net')) return { ok: false, why: 'this kernel has no network namespaces (/proc/self/ns/net is missing)' };
  const tools = findTools();
  return 'ip' in tools ? { ok: true } : tools;
}

function requireTools(): Tools {
  const availability = faultHostsAvailable();
  if (!availability.ok) throw new Error(`fault hosts unavailable: ${availability.why}`);
  const tools = findTools();
  if (!('ip' in tools)) throw new Error(`fault hosts unavailable: ${tools.why}`);
  return tools;
}

export interface CommandResult extends ExitStatus {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to completion, killed by PID and rejected when it outlives `timeoutMs`. */
async function runCommand(command: string, args: readonly string[], timeoutMs: number): Promise<CommandResult> {
  const started = spawnTracked({ command, args });
  const status = await withTimeout(started.exited, timeoutMs, () => {
    killByPid(started.child.pid);
    return new Error(`${command} ${args.join(' ')} still running after ${timeoutMs} ms; killed`);
  });
  return { ...status, stdout: started.stdout(), stderr: started.stderr() };
}

/** The same, rejecting unless the command exits 0. */
async function runChecked(command: string, args: readonly string[], timeoutMs: number): Promise<string> {
  const result = await runCommand(command, args, timeoutMs);
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.code ?? result.signal}: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** The iptables arguments shared by every call: wait for the xtables lock rather than fail on it. */
const iptablesWait = ['-w', '5'];

// ---- Names and addresses.

function runTagOf(pid: number): string {
  return pid.toString(36);
}

function bridgeName(runTag: string): string {
  return checkedInterfaceName(`${faultNamePrefix}${runTag}-b`);
}

function namespaceName(runTag: string, index: number): string {
  return `${faultNamePrefix}${runTag}-n${index}`;
}

function hostVethName(runTag: string, index: number): string {
  return checkedInterfaceName(`${faultNamePrefix}${runTag}-h${index}`);
}

/** The comment on the host's FORWARD rule for this run's bridge, to find it again. */
function forwardRuleComment(runTag: string): string {
  return `${faultNamePrefix}${runTag}`;
}

function checkedInterfaceName(name: string): string {
  if (name.length > interfaceNameLengthMax) throw new Error(`interface name ${name} is longer than ${interfaceNameLengthMax} characters`);
  return name;
}

function ipv4ToNumber(address: string): number {
  const octets = address.split('.').map(Number);
  if (octets.length !== 4 || octets.some((octet) => !Number.isInteger(octet) || octet < 0 || octet > 255)) {
    throw new Error(`not an IPv4 address: ${address}`);
  }
  return ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
}

/** [first, last] address of an `a.b.c.d[/len]` prefix, as numbers. */
function prefixRange(prefix: string): [number, number] {
  const [address, lengthText] = prefix.split('/');
  const length = lengthText === undefined ? 32 : Number(lengthText);
  const size = 2 ** (32 - length);
  const first = Math.floor(ipv4ToNumber(address) / size) * size;
  return [first, first + size - 1];
}

function overlaps(a: string, b: string): boolean {
  const [aFirst, aLast] = prefixRange(a);
  const [bFirst, bLast] = prefixRange(b);
  return aFirst <= bLast && bFirst <= aLast;
}

/** The first three octets of candidate `attempt` for this pid, e.g. `10.77.12`. */
function subnetCandidate(pid: number, attempt: number): string {
  const index = (pid + attempt) % subnetCount;
  return `10.${subnetSecondOctetMin + (index >> 8)}.${index & 255}`;
}

/**
 * A /24 for this run that no route of the host (any table; local addresses included) overlaps,
 * so that no existing network, nor another run's bridge, shares it. The default route overlaps
 * everything and is not counted: the bridge's own route is more specific.
 */
async function pickSubnet(tools: Tools, pid: number, timeoutMs: number): Promise<string> {
  const routes = JSON.parse((await runChecked(tools.ip, ['-j', '-4', 'route', 'show', 'table', 'all'], timeoutMs)) || '[]') as {
    dst?: string;
  }[];
  const destinations = routes.map((route) => route.dst).filter((dst): dst is string => dst !== undefined && /^[0-9.]+(\/[0-9]+)?$/.test(dst));
  for (let attempt = 0; attempt < subnetAttemptsMax; attempt++) {
    const subnet = subnetCandidate(pid, attempt);
    if (!destinations.some((destination) => overlaps(destination, `${subnet}.0/24`))) return subnet;
  }
  throw new Error(`no free /24 in 10.64.0.0/10 after ${subnetAttemptsMax} candidates; routes: ${destinations.join(' ')}`);
}

// ---- What exists now, by name.

async function namespaceNames(tools: Tools, timeoutMs: number): Promise<string[]> {
  // `ip -j netns list` prints nothing at all when there is no namespace.
  const listed = JSON.parse((await runChecked(tools.ip, ['-j', 'netns', 'list'], timeoutMs)).trim() || '[]') as { name: string }[];
  return listed.map((entry) => entry.name);
}

async function linkNames(tools: Tools, timeoutMs: number): Promise<string[]> {
  const listed = JSON.parse((await runChecked(tools.ip, ['-j', 'link', 'show'], timeoutMs)).trim() || '[]') as { ifname: string }[];
  return listed.map((entry) => entry.ifname);
}

/** The host's FORWARD rules this harness added, as `iptables -S` prints them (`-A FORWARD ...`). */
async function forwardRules(tools: Tools, timeoutMs: number): Promise<{ readonly runTag: string; readonly rule: string }[]> {
  const printed = await runChecked(tools.iptables, [...iptablesWait, '-S', 'FORWARD'], timeoutMs);
  const comment = new RegExp(`--comment "?${faultNamePrefix}([0-9a-z]+)"?(\\s|$)`);
  const found: { runTag: string; rule: string }[] = [];
  for (const line of printed.split('\n')) {
    const match = comment.exec(line);
    if (line.startsWith('-A FORWARD ') && match !== null) found.push({ runTag: match[1], rule: line.trim() });
  }
  return found;
}

/** Whether `pid` is a live process; a zombie has left its namespaces already and counts as gone. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function waitUntilGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadlineMs = Date.now() + timeoutMs;
  let remaining = pids.filter(isAlive);
  while (remaining.length > 0 && Date.now() < deadlineMs) {
    await delay(goneCheckIntervalMs);
    remaining = remaining.filter(isAlive);
  }
  return remaining;
}

/**
 * Removes everything of run `runTag`: SIGKILLs the processes inside its namespaces (by PID, from
 * `ip netns pids`), deletes the namespaces, the veths left on the host, the bridge and the host
 * FORWARD rule. Whatever is already gone is skipped; every step is tried, and the failures are
 * thrown together at the end.
 */
async function removeRun(tools: Tools, runTag: string, timeoutMs: number): Promise<void> {
  const problems: string[] = [];
  const attempt = async (what: string, step: () => Promise<unknown>): Promise<void> => {
    try {
      await step();
    } catch (error) {
      problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const ours = (name: string): boolean => faultNamePattern.exec(name)?.[1] === runTag;

  const namespaces = (await namespaceNames(tools, timeoutMs)).filter(ours);
  for (const namespace of namespaces) {
    await attempt(`processes in ${namespace}`, async () => {
      const pids = (await runChecked(tools.ip, ['netns', 'pids', namespace], timeoutMs))
        .split('\n')
        .filter((line) => /^[0-9]+$/.test(line.trim()))
        .map(Number);
      for (const pid of pids) killByPid(pid);
      const remaining = await waitUntilGone(pids, goneTimeoutMs);
      if (remaining.length > 0) throw new Error(`pids ${remaining.join(', ')} still alive ${goneTimeoutMs} ms after SIGKILL`);
    });
    await attempt(`namespace ${namespace}`, () => runChecked(tools.ip, ['netns', 'delete', namespace], timeoutMs));
  }

  // Deleting a namespace deletes its veth pairs, unless a process still holds the namespace open;
  // the host ends are deleted by name in case. The kernel tears a namespace down in the
  // background, so a veth listed here may vanish before its delete: that counts as deleted.
  // The bridge goes last, once it has no ports.
  const links = (await linkNames(tools, timeoutMs)).filter(ours);
  const bridges = links.filter((name) => name.endsWith('-b'));
  for (const link of [...links.filter((name) => !name.endsWith('-b')), ...bridges]) {
    await attempt(`link ${link}`, async () => {
      const result = await runCommand(tools.ip, ['link', 'delete', link], timeoutMs);
      if (result.code !== 0 && (await linkNames(tools, timeoutMs)).includes(link)) {
        throw new Error(`ip link delete ${link} exited ${result.code ?? result.signal}: ${result.stderr.trim()}`);
      }
    });
  }

  for (const { runTag: ruleTag, rule } of await forwardRules(tools, timeoutMs)) {
    if (ruleTag !== runTag) continue;
    const deleteArgs = ['-D', ...rule.split(/\s+/).slice(1).map((word) => word.replace(/^"(.*)"$/, '$1'))];
    await attempt(`FORWARD rule ${rule}`, () => runChecked(tools.iptables, [...iptablesWait, ...deleteArgs], timeoutMs));
  }
  if (problems.length > 0) throw new Error(`removing fault network ${runTag} left:\n${problems.join('\n')}`);
}

/** The network of this process not yet cleaned up; one at a time, since names come from the pid. */
let activeNetwork: FaultNetwork | undefined;

/**
 * Removes what earlier runs of this harness left behind (a crashed or killed test process never
 * reached its cleanup): every namespace, link and FORWARD rule named `kaif<tag>...` whose owning
 * process (the tag is its pid) is gone, or is this process with no network active. A run still
 * alive is left alone. Returns the tags removed. A crashed run whose pid now belongs to another
 * live process is kept until that process ends.
 */
export async function removeLeftoverFaultNetworks(options: { readonly commandTimeoutMs?: number } = {}): Promise<string[]> {
  const tools = requireTools();
  const timeoutMs = options.commandTimeoutMs ?? commandTimeoutMsDefault;
  const tags = new Set<string>();
  for (const name of [...(await namespaceNames(tools, timeoutMs)), ...(await linkNames(tools, timeoutMs))]) {
    const match = faultNamePattern.exec(name);
    if (match !== null) tags.add(match[1]);
  }
  for (const { runTag } of await forwardRules(tools, timeoutMs)) tags.add(runTag);
  const removed: string[] = [];
  for (const runTag of tags) {
    const pid = parseInt(runTag, 36);
    const stale = pid === process.pid ? activeNetwork?.runTag !== runTag : !isAlive(pid);
    if (!stale) continue;
    await removeRun(tools, runTag, timeoutMs);
    removed.push(runTag);
  }
  return removed;
}

// ---- Processes in a namespace.

/** Spawns `command args` inside `namespace`; tracked by ../support/servers until it exits. */
export function spawnInNamespace(
  namespace: string,
  command: string,
  args: readonly string[],
  options: { readonly cwd?: string; readonly output?: OutputMode } = {},
): StartedProcess {
  return spawnTracked({ command: requireTools().ip, args: ['netns', 'exec', namespace, command, ...args], cwd: options.cwd, output: options.output });
}

/** Asserts that process `pid` runs in `namespace`: its /proc net namespace is the mounted one. */
function assertInNamespace(pid: number, namespace: string): void {
  const mounted = fs.statSync(path.join(namespaceMountDirectory, namespace));
  const own = fs.statSync(`/proc/${pid}/ns/net`);
  if (mounted.ino !== own.ino || mounted.dev !== own.dev) {
    throw new Error(`pid ${pid} is not in network namespace ${namespace}`);
  }
}

// ---- The network.

export interface FaultHost {
  /** 1-based, as in the namespace's name and its address's last octet (10 + index). */
  readonly index: number;
  readonly namespace: string;
  readonly address: string;
  /** The veth end attached to the bridge, in the root namespace. */
  readonly hostInterface: string;
}

/** A host, or anything standing on one (a kai started there). */
export type FaultTarget = FaultHost | { readonly host: FaultHost };

function hostOf(target: FaultTarget): FaultHost {
  return 'namespace' in target ? target : target.host;
}

/**
 * The matches for all traffic between a namespace and `other`, in its INPUT and OUTPUT chains.
 * They name the veth: a REJECT in OUTPUT answers the local socket over loopback, with the peer's
 * address as source, and that answer must not meet the INPUT rule.
 */
function bothWaysWith(other: FaultHost): string[][] {
  return [['INPUT', '-i', namespaceInterface, '-s', other.address], toward(other)];
}

function toward(other: FaultHost): string[] {
  return ['OUTPUT', '-o', namespaceInterface, '-d', other.address];
}

/**
 * DROP makes a cut look like a real split: packets vanish, connects and requests hang until their
 * own timeouts. REJECT answers at once: a TCP reset for TCP, port unreachable for the rest.
 */
export type CutAction = 'DROP' | 'REJECT';

export interface CutOptions {
  readonly action?: CutAction;
}

export interface IsolateOptions extends CutOptions {
  /** Also cut the host (.1, the test process) off; by default the test can still reach the node. */
  readonly cutHost?: boolean;
}

export interface FaultNetworkOptions {
  /** Namespaces to create, 1 to hostCountMax. */
  readonly hostCount: number;
  readonly commandTimeoutMs?: number;
}

export interface StartKaiInOptions {
  /** Passed as --data-dir. */
  readonly dataDir: string;
  /** More flags, after the ones set here (hostname, ports and data dir come from the options). */
  readonly args?: readonly string[];
  /** kai's defaults (11011, 11211) when absent: the namespace has its own port space. */
  readonly port?: number;
  readonly memcachePort?: number;
  /** The working directory; by default the data dir's parent, where no kai.config.json is expected. */
  readonly cwd?: string;
  readonly readyTimeoutMs?: number;
}

export interface NamespacedKai extends KaiProcess {
  readonly host: FaultHost;
  /** The host's address: kai's --hostname, and where the test process reaches it. */
  readonly address: string;
  /** The node's id: its internal address, `<address>:<port>`. */
  readonly id: string;
  readonly dataDir: string;
  /** SIGSTOP: the process stays, answers nothing. */
  pause(): void;
  /** SIGCONT after pause. */
  resume(): void;
}

export class FaultNetwork {
  /** The bridge's address, in the root namespace: where the test process's connections come from. */
  readonly hostAddress: string;
  readonly bridge: string;
  readonly hosts: readonly FaultHost[];
  /** Processes this network started and that may still run; cleanup SIGKILLs them by PID. */
  private readonly started = new Set<StartedProcess>();
  private readonly paused = new Set<number>();

  private constructor(
    private readonly tools: Tools,
    /** Names every resource of this run; the pid in base 36. */
    readonly runTag: string,
    /** The first three octets of the run's /24. */
    readonly subnet: string,
    hostCount: number,
    private readonly commandTimeoutMs: number,
  ) {
    this.hostAddress = `${subnet}.${hostSideOctet}`;
    this.bridge = bridgeName(runTag);
    this.hosts = Array.from({ length: hostCount }, (_, offset) => {
      const index = offset + 1;
      return {
        index,
        namespace: namespaceName(runTag, index),
        address: `${subnet}.${firstNodeOctetBase + index}`,
        hostInterface: hostVethName(runTag, index),
      };
    });
  }

  /**
   * Builds the bridge and `hostCount` namespaces, after removing what crashed runs left behind.
   * On failure everything built so far is removed before the error is thrown.
   */
  static async create(options: FaultNetworkOptions): Promise<FaultNetwork> {
    const tools = requireTools();
    if (!Number.isInteger(options.hostCount) || options.hostCount < 1 || options.hostCount > hostCountMax) {
      throw new Error(`hostCount must be an integer from 1 to ${hostCountMax}; got ${options.hostCount}`);
    }
    if (activeNetwork !== undefined) throw new Error(`fault network ${activeNetwork.runTag} is still active: clean it up first`);
    const timeoutMs = options.commandTimeoutMs ?? commandTimeoutMsDefault;
    await removeLeftoverFaultNetworks({ commandTimeoutMs: timeoutMs });
    const subnet = await pickSubnet(tools, process.pid, timeoutMs);
    const network = new FaultNetwork(tools, runTagOf(process.pid), subnet, options.hostCount, timeoutMs);
    activeNetwork = network;
    try {
      await network.build();
    } catch (error) {
      await network.cleanup().catch(() => undefined);
      throw error;
    }
    return network;
  }

  /** `<subnet>.0/24`. */
  get subnetPrefix(): string {
    return `${this.subnet}.0/24`;
  }

  private ip(args: readonly string[]): Promise<string> {
    return runChecked(this.tools.ip, args, this.commandTimeoutMs);
  }

  private iptablesIn(host: FaultHost, args: readonly string[]): Promise<string> {
    return this.ip(['netns', 'exec', host.namespace, this.tools.iptables, ...iptablesWait, ...args]);
  }

  private async build(): Promise<void> {
    // No IPv6 address anywhere (addrgenmode none): the cuts are IPv4 iptables rules, and nothing
    // should reach across them by another path, nor chatter on the bridge.
    await this.ip(['link', 'add', this.bridge, 'type', 'bridge']);
    await this.ip(['link', 'set', this.bridge, 'addrgenmode', 'none']);
    await this.ip(['address', 'add', `${this.hostAddress}/24`, 'dev', this.bridge]);
    await this.ip(['link', 'set', this.bridge, 'up']);
    await this.allowBridgedForwarding();
    for (const host of this.hosts) {
      await this.ip(['netns', 'add', host.namespace]);
      // The namespace end is created inside the namespace directly, so its name cannot clash with the host's.
      await this.ip(['link', 'add', host.hostInterface, 'type', 'veth', 'peer', 'name', namespaceInterface, 'netns', host.namespace]);
      await this.ip(['link', 'set', host.hostInterface, 'addrgenmode', 'none']);
      await this.ip(['link', 'set', host.hostInterface, 'master', this.bridge, 'up']);
      await this.ip(['-n', host.namespace, 'link', 'set', namespaceInterface, 'addrgenmode', 'none']);
      await this.ip(['-n', host.namespace, 'address', 'add', `${host.address}/24`, 'dev', namespaceInterface]);
      await this.ip(['-n', host.namespace, 'link', 'set', namespaceInterface, 'up']);
      await this.ip(['-n', host.namespace, 'link', 'set', 'lo', 'up']);
    }
  }

  /**
   * With br_netfilter loaded and bridge-nf-call-iptables on, frames crossing the bridge from one
   * namespace to another pass the host's FORWARD chain, which a host running Docker sets to DROP.
   * One ACCEPT rule for this bridge only, tagged with the run's name, keeps the nodes connected;
   * cleanup deletes it.
   */
  private async allowBridgedForwarding(): Promise<void> {
    let bridgedThroughIptables = false;
    try {
      bridgedThroughIptables = fs.readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim() === '1';
    } catch {
      // br_netfilter is not loaded: bridged frames never see iptables.
    }
    if (!bridgedThroughIptables) return;
    await runChecked(
      this.tools.iptables,
      [...iptablesWait, '-I', 'FORWARD', '-i', this.bridge, '-o', this.bridge, '-m', 'comment', '--comment', forwardRuleComment(this.runTag), '-j', 'ACCEPT'],
      this.commandTimeoutMs,
    );
  }

  /** Spawns `command args` inside the target's namespace, tracked for cleanup. */
  runInNamespace(
    target: FaultTarget,
    command: string,
    args: readonly string[],
    options: { readonly cwd?: string; readonly output?: OutputMode } = {},
  ): StartedProcess {
    const started = spawnInNamespace(hostOf(target).namespace, command, args, options);
    this.track(started);
    return started;
  }

  /** Runs `command args` inside the target's namespace to completion, killed after `timeoutMs`. */
  execInNamespace(target: FaultTarget, command: string, args: readonly string[], timeoutMs = this.commandTimeoutMs): Promise<CommandResult> {
    return runCommand(this.tools.ip, ['netns', 'exec', hostOf(target).namespace, command, ...args], timeoutMs);
  }

  private track(started: StartedProcess): void {
    this.started.add(started);
    void started.exited.then(
      () => this.started.delete(started),
      () => this.started.delete(started),
    );
  }

  /**
   * Starts `kai start` inside the target's namespace, listening on the host's address, and
   * resolves once its memcache port answers `stats` with this process's pid from the root
   * namespace (`ip netns exec` execs kai in place, so the pid spawned is kai's).
   */
  async startKaiIn(target: FaultTarget, options: StartKaiInOptions): Promise<NamespacedKai> {
    const host = hostOf(target);
    const port = options.port ?? kaiPortDefault;
    const memcachePort = options.memcachePort ?? kaiMemcachePortDefault;
    const dataDir = path.resolve(options.dataDir);
    const server = await spawnServer({
      label: `kai in ${host.namespace}`,
      command: this.tools.ip,
      args: [
        ...['netns', 'exec', host.namespace, process.execPath, kaiBin, 'start'],
        ...['--hostname', host.address, '--port', String(port), '--memcache-port', String(memcachePort)],
        ...['--data-dir', dataDir],
        ...(options.args ?? []),
      ],
      cwd: options.cwd ?? path.dirname(dataDir),
      readyPort: memcachePort,
      readyHost: host.address,
      readyTimeoutMs: options.readyTimeoutMs,
    });
    this.track(server);
    const pid = server.pid;
    try {
      assertInNamespace(pid, host.namespace);
    } catch (error) {
      await server.kill();
      throw error;
    }
    const resume = (): void => {
      killByPid(pid, 'SIGCONT');
      this.paused.delete(pid);
    };
    return {
      pid,
      host,
      address: host.address,
      id: `${host.address}:${port}`,
      port,
      memcachePort,
      dataDir,
      exited: server.exited,
      stdout: server.stdout,
      stderr: server.stderr,
      stop: async (signal = 'SIGTERM', timeoutMs = exitTimeoutMsDefault) => {
        // A stopped process would hold the signal until continued: continue it first.
        if (this.paused.has(pid)) resume();
        const { status, forced } = await server.stop(signal, timeoutMs);
        if (forced) throw new Error(`kai (pid ${pid}) in ${host.namespace} did not exit within ${timeoutMs} ms of ${signal}; killed`);
        return status;
      },
      kill: () => {
        // SIGKILL ends a stopped process too.
        this.paused.delete(pid);
        return server.kill();
      },
      pause: () => {
        killByPid(pid, 'SIGSTOP');
        this.paused.add(pid);
      },
      resume,
    };
  }

  /**
   * Cuts the target off from every other host: its namespace drops (or rejects) all packets to
   * and from their addresses. The host (.1) can still reach it unless `cutHost`, which cuts its
   * interface altogether; loopback inside stays up either way.
   */
  async isolate(target: FaultTarget, options: IsolateOptions = {}): Promise<void> {
    const host = hostOf(target);
    const action = options.action ?? 'DROP';
    if (options.cutHost === true) {
      await this.addRules(host, [['INPUT', '-i', namespaceInterface], ['OUTPUT', '-o', namespaceInterface]], action);
      return;
    }
    const others = this.hosts.filter((other) => other.namespace !== host.namespace);
    await this.addRules(host, others.flatMap(bothWaysWith), action);
  }

  /** No packet passes between a host of `groupA` and a host of `groupB`, either way; within a group all do. */
  async partition(groupA: readonly FaultTarget[], groupB: readonly FaultTarget[], options: CutOptions = {}): Promise<void> {
    const hostsA = groupA.map(hostOf);
    const hostsB = groupB.map(hostOf);
    const shared = hostsA.filter((host) => hostsB.some((other) => other.namespace === host.namespace));
    if (shared.length > 0) throw new Error(`a partition's groups overlap: ${shared.map((host) => host.namespace).join(', ')}`);
    // Rules on side A alone cover both directions: every packet between the sides crosses A's INPUT or OUTPUT.
    const action = options.action ?? 'DROP';
    for (const host of hostsA) {
      await this.addRules(host, hostsB.flatMap(bothWaysWith), action);
    }
  }

  /**
   * Drops (or rejects) packets from `from` to `to` only. TCP needs both directions, so a
   * connection either way stalls; what differs is which side sends into the void.
   */
  async cutLink(from: FaultTarget, to: FaultTarget, options: CutOptions = {}): Promise<void> {
    await this.addRules(hostOf(from), [toward(hostOf(to))], options.action ?? 'DROP');
  }

  /** Removes every cut: flushes INPUT and OUTPUT in each namespace (nothing else adds rules there). */
  async heal(): Promise<void> {
    await Promise.all(this.hosts.map((host) => this.iptablesIn(host, ['-F', 'INPUT']).then(() => this.iptablesIn(host, ['-F', 'OUTPUT']))));
  }

  /** The rules in the target's namespace, as `iptables -S` prints them: for failure messages. */
  rulesOf(target: FaultTarget): Promise<string> {
    return this.iptablesIn(hostOf(target), ['-S']);
  }

  private async addRules(host: FaultHost, matches: readonly (readonly string[])[], action: CutAction): Promise<void> {
    if (action === 'REJECT') await this.letRejectionsOut(host);
    for (const match of matches) {
      if (action === 'DROP') {
        await this.iptablesIn(host, ['-A', ...match, '-j', 'DROP']);
      } else {
        // A reset ends an established TCP connection at once; an ICMP error alone would not.
        await this.iptablesIn(host, ['-A', ...match, '-p', 'tcp', '-j', 'REJECT', '--reject-with', 'tcp-reset']);
        await this.iptablesIn(host, ['-A', ...match, '-j', 'REJECT']);
      }
    }
  }

  /**
   * A REJECT in INPUT answers with a reset or an ICMP error that leaves through OUTPUT, where the
   * cut's own OUTPUT rule would swallow it and the peer would hang as under DROP. These two rules,
   * first in OUTPUT, let such answers out. Other resets this namespace sends pass too: a peer
   * learning that a connection is dead is what REJECT stands for.
   */
  private async letRejectionsOut(host: FaultHost): Promise<void> {
    const exemptions = [
      ['OUTPUT', '-o', namespaceInterface, '-p', 'tcp', '--tcp-flags', 'RST', 'RST', '-j', 'ACCEPT'],
      ['OUTPUT', '-o', namespaceInterface, '-p', 'icmp', '--icmp-type', 'destination-unreachable', '-j', 'ACCEPT'],
    ];
    for (const rule of exemptions) {
      const present = await runCommand(this.tools.ip, ['netns', 'exec', host.namespace, this.tools.iptables, ...iptablesWait, '-C', ...rule], this.commandTimeoutMs);
      if (present.code !== 0) await this.iptablesIn(host, ['-I', rule[0], '1', ...rule.slice(1)]);
    }
  }

  /**
   * SIGKILLs every process started here (by PID; stopped ones too) and waits for the exits, then
   * deletes the namespaces, veths, bridge and the host FORWARD rule. Safe to call twice, and after
   * a failed create. Throws, after trying every step, if something could not be removed.
   */
  async cleanup(): Promise<void> {
    const children = [...this.started];
    for (const started of children) killByPid(started.child.pid);
    const stuck: string[] = [];
    await Promise.all(
      children.map((started) =>
        // A process that failed to spawn has nothing to wait for: only a timeout counts as stuck.
        withTimeout(
          started.exited.catch(() => undefined),
          exitTimeoutMsDefault,
          () => new Error('no exit'),
        ).catch(() => {
          stuck.push(String(started.child.pid));
        }),
      ),
    );
    this.started.clear();
    this.paused.clear();
    try {
      await removeRun(this.tools, this.runTag, this.commandTimeoutMs);
    } finally {
      if (activeNetwork === this) activeNetwork = undefined;
    }
    if (stuck.length > 0) throw new Error(`pids ${stuck.join(', ')} did not exit within ${exitTimeoutMsDefault} ms of SIGKILL`);
  }
}

/**
 * The commands that talk to a running node's internal API: check-node and join, leave, remove,
 * replace, transfers, status and locate. Each takes the cluster secret and TLS settings it needs
 * from its flags or the config file; those that ask one node for its view take `--node`, and
 * without it ask the node the config file describes on this machine.
 */
import { Command } from 'commander';
import { commandSecurity, defaultConfigFileName, localNodeAddress, type CommandSecurityFlags } from '../config/load';
import type { ConnectionSecurity } from '../rpc/tcp-transport';
import { locateJson, locateKey, locateTable, parseLocateKey } from './locate-command';
import { checkNode } from './membership-commands';
import { CommandError, parseNodeAddress } from './node-request';
import { leaveCommand, removeCommand, replaceCommand, transfersStatus, transfersTable } from './ring-commands';
import { clusterStatus, statusJson, statusTable } from './status-command';

/** The options every command that talks to a node takes. */
interface NodeCommandOptions extends CommandSecurityFlags {
  readonly config?: string;
  /** The node asked, for the commands that ask one node for its view. */
  readonly node?: string;
  readonly json?: boolean;
}

/** A command that talks to nodes: its security flags, the config file they default from, and help. */
function nodeCommand(program: Command, name: string, description: string): Command {
  return program
    .command(name)
    .description(description)
    .option('--cluster-secret-file <file>', "the nodes' cluster secret (default: the config file's cluster_secret_file)")
    .option('--tls-ca <file>', "speak TLS, checking the node's certificate against this CA (default: the config file's, when its tls covers internal)")
    .option('--tls-cert <file>', "certificate presented to the node with --tls-ca (default: the config file's tls_cert_file)")
    .option('--tls-key <file>', "private key of --tls-cert (default: the config file's tls_key_file)")
    .option('--config <file>', `JSON config file to read these from (default: ./${defaultConfigFileName} when present)`)
    .helpOption('-h, --help', 'print this help');
}

/** A command that asks one node for its view: `--node`, or the node of the config file. */
function viewCommand(program: Command, name: string, description: string): Command {
  return nodeCommand(program, name, description).option(
    '--node <host:port>',
    `internal API address of a running node (default: the node the config file describes on this machine, else 127.0.0.1:11011)`,
  );
}

function securityOf(options: NodeCommandOptions): ConnectionSecurity {
  return commandSecurity(options, { configFile: options.config });
}

/**
 * Runs `command` against the node `--node` names, or the local node of the config file; a local
 * node that cannot be reached says where its address came from and how to name another.
 */
async function withViewedNode<T>(options: NodeCommandOptions, command: (node: string) => Promise<T>): Promise<T> {
  if (options.node !== undefined) return command(parseNodeAddress(options.node, '--node'));
  const local = localNodeAddress({ configFile: options.config });
  try {
    return await command(local.address);
  } catch (error) {
    if (!(error instanceof CommandError) || !error.message.startsWith(`cannot reach ${local.address}`)) throw error;
    const described = local.configFile === undefined ? `the default address, with no ${defaultConfigFileName} here` : `as ${local.configFile} describes it`;
    throw new CommandError(`${error.message} (the node on this machine, ${described}; name another with --node host:port)`);
  }
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

export function addNodeCommands(program: Command): void {
  for (const [name, description, otherName] of [
    ['check-node', "tell the node at <node> (its internal API, host:port) about the node at <other>; they then gossip", '<other>'],
    ['join', 'make the node at <node> join the cluster of the node at <seed> (as check-node)', '<seed>'],
  ] as const) {
    nodeCommand(program, name, description)
      .argument('<node>', 'internal API address of a running node')
      .argument(otherName, name === 'join' ? 'internal API address of a member of the cluster' : 'internal API address of the node it should know')
      .action(async (node: string, other: string, options: NodeCommandOptions) => {
        print(await checkNode(parseNodeAddress(node, '<node>'), parseNodeAddress(other, otherName), securityOf(options)));
      });
  }
  nodeCommand(program, 'leave', 'make the node at <node> hand its buckets to the others, leave the ring and stop')
    .argument('<node>', 'internal API address of the node that leaves')
    .action(async (node: string, options: NodeCommandOptions) => {
      print(await leaveCommand(parseNodeAddress(node, '<node>'), securityOf(options)));
    });
  nodeCommand(program, 'remove', 'take a member that is down (or a seed never heard from) out of the ring, asking the node at <node>')
    .argument('<node>', 'internal API address of a running node')
    .argument('<member>', 'id of the member to remove (its internal address)')
    .action(async (node: string, member: string, options: NodeCommandOptions) => {
      print(await removeCommand(parseNodeAddress(node, '<node>'), member, securityOf(options)));
    });
  nodeCommand(program, 'replace', 'give every bucket of member <old> to the running node at <new>, asking the node at <node>')
    .argument('<node>', 'internal API address of a running member')
    .argument('<old>', 'id of the member to replace')
    .argument('<new>', 'internal API address of the new node, started and not yet joined')
    .action(async (node: string, old: string, replacement: string, options: NodeCommandOptions) => {
      print(await replaceCommand(parseNodeAddress(node, '<node>'), old, parseNodeAddress(replacement, '<new>'), securityOf(options)));
    });
  viewCommand(program, 'transfers', 'show the bucket transfers of the ring change in progress, member by member')
    .option('--json', 'print {"version", "changing", "rows": [{"member", "progress"}, ...]}')
    .action(async (options: NodeCommandOptions) => {
      const status = await withViewedNode(options, (node) => transfersStatus(node, securityOf(options)));
      print(options.json ? JSON.stringify(status) : transfersTable(status));
    });
  viewCommand(program, 'status', "print the members a node knows, their part in the ring, and each one's health")
    .option(
      '--json',
      'print {"members": [{"id", "address", "status", "ring", "zone", "ownership", "plannedOwnership", "hintsPending", "hintBytesPending"}, ...], ' +
        '"ringVersion", "changing", "quorum", "storage", "asked", "nodes": [{"id", "refusing", "quorum", "hintsHeld", "transfers", "storage", ...}, ...]}',
    )
    .option('--no-health', "print only the view of the node asked, without asking each member for its health")
    .action(async (options: NodeCommandOptions & { health: boolean }) => {
      const status = await withViewedNode(options, (node) => clusterStatus(node, securityOf(options), { health: options.health }));
      print(options.json ? statusJson(status) : statusTable(status));
    });
  viewCommand(program, 'locate', "print a key's bucket, its preference list, and which replicas hold which of its versions")
    .argument('<key>', 'the key, as a memcache client names it')
    .option('--base64', 'the key is given in base64 (for keys that are not text)')
    .option('--json', 'print {"key", "bucket", "buckets", "quorum", "lists", "replicas"} as the node answers it')
    .action(async (key: string, options: NodeCommandOptions & { base64?: boolean }) => {
      const keyBytes = parseLocateKey(key, options.base64 === true);
      const located = await withViewedNode(options, (node) => locateKey(node, keyBytes, securityOf(options)));
      print(options.json ? locateJson(located) : locateTable(located));
    });
}

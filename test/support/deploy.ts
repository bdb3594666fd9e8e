/**
 * Reading the deployment files (deploy/) the way Docker, Compose, Kubernetes and systemd read
 * them, far enough to hold them to kai: a Dockerfile's instructions, a `kai start` command line
 * split into kai's own settings, and that command moved onto this machine (127.0.0.1, free
 * ports, a temporary data dir) so it can be run as a plain process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { settingFields, settingNames, type SettingName } from '../../src/config/fields';
import type { SettingsFlags } from '../../src/config/load';
import { repoRoot } from './process';

export const deployDir = path.join(repoRoot, 'deploy');
/** Where the image keeps its config file, and the file in the repository it is copied from. */
export const imageConfigPath = '/etc/kai/kai.config.json';
export const repoConfigPath = path.join(deployDir, 'kai.config.json');
/** The flag nodes in containers are known to their peers by (the bind address stays --hostname). */
export const advertiseFlag = '--advertise-address';

export interface DockerInstruction {
  readonly keyword: string;
  readonly argument: string;
}

/** A Dockerfile's instructions, in order, with continued lines joined and comments left out. */
export function dockerInstructions(text: string): DockerInstruction[] {
  const logical = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return logical
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const space = line.indexOf(' ');
      return { keyword: line.slice(0, space).toUpperCase(), argument: line.slice(space + 1).trim() };
    });
}

/** The exec (JSON array) form of ENTRYPOINT, CMD or HEALTHCHECK's CMD. */
export function execForm(argument: string): string[] {
  const start = argument.indexOf('[');
  const parsed: unknown = JSON.parse(argument.slice(start));
  if (!Array.isArray(parsed) || !parsed.every((item) => typeof item === 'string')) throw new Error(`not an exec form: ${argument}`);
  return parsed;
}

const settingOfFlag = new Map(settingNames.map((name) => [settingFields[name].flag.split(' ')[0], name]));

export interface StartCommand {
  /** `--config <file>`, when given. */
  readonly configFile: string | undefined;
  readonly flags: Partial<Record<SettingName, string>>;
  /** `--advertise-address`, when given: the name the node's peers reach it by. */
  readonly advertiseAddress: string | undefined;
}

/**
 * Splits the words after `start` into kai's settings by their flags, as `kai start` reads them.
 * A word that is no flag of kai's, or a flag without its value, throws.
 */
export function parseStartCommand(words: readonly string[]): StartCommand {
  if (words[0] !== 'start') throw new Error(`not a start command: ${words.join(' ')}`);
  const flags: Partial<Record<SettingName, string>> = {};
  let configFile: string | undefined;
  for (let index = 1; index < words.length; index += 2) {
    const flag = words[index];
    const value = words[index + 1];
    if (value === undefined || value.startsWith('--')) throw new Error(`${flag} has no value in: ${words.join(' ')}`);
    if (flag === '--config') {
      configFile = value;
      continue;
    }
    const name = settingOfFlag.get(flag);
    if (name === undefined) throw new Error(`${flag} is not a flag of kai start`);
    flags[name] = value;
  }
  return { configFile, flags, advertiseAddress: flags.advertiseAddress };
}

/** The flags of `command` as loadSettings takes them, with the files it names swapped for ones on this machine. */
export function loadableFlags(command: StartCommand, files: { readonly dataDir: string; readonly clusterSecretFile: string }): SettingsFlags {
  return {
    ...command.flags,
    dataDir: files.dataDir,
    ...(command.flags.clusterSecretFile === undefined ? {} : { clusterSecretFile: files.clusterSecretFile }),
  };
}

export interface LocalPlacement {
  readonly port: number;
  readonly memcachePort: number;
  readonly adminPort: number;
  readonly dataDir: string;
  /** Internal ports on 127.0.0.1 of the other nodes, by the host name the files give them. */
  readonly peerPorts: ReadonlyMap<string, number>;
  readonly clusterSecretFile?: string;
}

/**
 * The `kai start` arguments of `command` moved onto this machine: bound to and known by
 * 127.0.0.1, on free ports, with a temporary data dir, seeds naming the other nodes' local
 * ports, and the repository's copy of the image's config file. Everything else is as written.
 */
export function localStartArgs(command: StartCommand, placement: LocalPlacement): string[] {
  const flags: Partial<Record<SettingName, string>> = { ...command.flags };
  if (flags.seeds !== undefined) {
    flags.seeds = flags.seeds
      .split(',')
      .map((seed) => {
        const host = seed.slice(0, seed.lastIndexOf(':'));
        const port = placement.peerPorts.get(host);
        if (port === undefined) throw new Error(`seed ${seed} names no node of the file`);
        return `127.0.0.1:${port}`;
      })
      .join(',');
  }
  // The advertised address names a container or a pod; here every node is known as 127.0.0.1.
  if (flags.advertiseAddress !== undefined) flags.advertiseAddress = '127.0.0.1';
  Object.assign(flags, {
    hostname: '127.0.0.1',
    port: String(placement.port),
    memcachePort: String(placement.memcachePort),
    adminPort: String(placement.adminPort),
    dataDir: placement.dataDir,
  });
  if (flags.clusterSecretFile !== undefined && placement.clusterSecretFile !== undefined) flags.clusterSecretFile = placement.clusterSecretFile;
  const args = ['start'];
  if (command.configFile !== undefined) args.push('--config', command.configFile === imageConfigPath ? repoConfigPath : command.configFile);
  for (const [name, value] of Object.entries(flags) as [SettingName, string][]) args.push(settingFields[name].flag.split(' ')[0], value);
  return args;
}

/** The file's text. */
export function deployFile(relative: string): string {
  return fs.readFileSync(path.join(deployDir, relative), 'utf8');
}

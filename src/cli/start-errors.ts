/**
 * Why `kai start` could not start, as the one line it prints: for the failures an operator meets
 * (a port in use, a port below 1024, an address no interface has, a data dir another process or
 * another node holds) the line says what is wrong and which flag to change, with no stack trace.
 * Pure: the error in, the words out.
 */
import { oneLineMessage, settingFields, type SettingName } from '../config/fields';
import { KaiError } from '../errors';
import { ListenFailure, type ListenerName } from '../server/listen-failure';

export interface StartFailure {
  /** The line printed after `kai: `. */
  readonly line: string;
  /** Whether the failure is an operating one the line explains fully; otherwise its stack helps. */
  readonly explained: boolean;
}

const portNames: Readonly<Record<ListenerName, string>> = { memcache: 'memcache port', internal: 'internal API port', admin: 'admin port' };

function flagOf(setting: SettingName): string {
  return settingFields[setting].flag.split(' ')[0];
}

function listenLine(failure: ListenFailure): string {
  const { listener, host, port, hostSetting, portSetting } = failure.attempt;
  const what = `${portNames[listener]} ${port} on ${host}`;
  const portFlag = flagOf(portSetting);
  const hostFlag = flagOf(hostSetting);
  switch (failure.systemCode) {
    case 'EADDRINUSE':
      return `${what} is in use: choose another with ${portFlag}`;
    case 'EACCES':
    case 'EPERM':
      return `${what} is not allowed to this user (ports below 1024 need root or CAP_NET_BIND_SERVICE): choose another with ${portFlag}`;
    case 'EADDRNOTAVAIL':
      return `cannot listen on ${host} for the ${portNames[listener]}: no interface of this machine has that address: choose another with ${hostFlag}`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot listen on ${host} for the ${portNames[listener]}: the name does not resolve: choose another with ${hostFlag}`;
    default:
      return `cannot listen on the ${what}: ${failure.reason}`;
  }
}

export function startFailure(error: unknown): StartFailure {
  if (error instanceof ListenFailure) return { line: listenLine(error), explained: error.systemCode !== undefined };
  // Refusals the node words itself (a data dir in use or of another node) say what to do already.
  if (error instanceof KaiError && error.detail !== undefined && error.code !== 'KAI_INTERNAL') {
    return { line: `cannot start: ${oneLineMessage(error.detail)}`, explained: true };
  }
  return { line: `cannot start: ${oneLineMessage(error)}`, explained: false };
}

/**
 * A port a node could not listen on, with what an operator needs to choose another: which of the
 * node's two ports, the host and port asked for, the system's reason (EADDRINUSE, EACCES, ...),
 * and the settings that chose them, so the command line can name the flag to change.
 */
import type { SettingName } from '../config/fields';
import type { Settings } from '../config/settings';
import { KaiError } from '../errors';

export type ListenerName = 'memcache' | 'internal' | 'admin';

/** The settings that give each listener its host and its port. */
const listenerSettings = {
  memcache: ['memcacheHost', 'memcachePort'],
  internal: ['internalHost', 'port'],
  admin: ['adminHost', 'adminPort'],
} as const;

export interface ListenAttempt {
  readonly listener: ListenerName;
  readonly host: string;
  readonly port: number;
  /** The settings the host and the port came from. */
  readonly hostSetting: SettingName;
  readonly portSetting: SettingName;
}

export class ListenFailure extends KaiError {
  constructor(
    readonly attempt: ListenAttempt,
    /** The system's code (`EADDRINUSE`), or undefined for a failure without one. */
    readonly systemCode: string | undefined,
    /** The system's words for it. */
    readonly reason: string,
  ) {
    super('KAI_LISTEN_FAILED', `${attempt.listener} port ${attempt.port} on ${attempt.host}: ${reason}`);
    this.name = 'ListenFailure';
  }
}

/** Where a node's settings have `listener` listen, and the settings that say so. */
export function listenAttemptOf(settings: Settings, listener: ListenerName): ListenAttempt {
  const [hostOverride, portSetting] = listenerSettings[listener];
  const override = settings[hostOverride];
  return {
    listener,
    host: override ?? settings.hostname,
    // The admin port is only listened on when it is set.
    port: settings[portSetting] ?? 0,
    hostSetting: override === undefined ? 'hostname' : hostOverride,
    portSetting,
  };
}

/** Runs `listen`; a failure becomes a ListenFailure describing `attempt`. */
export async function listenOrExplain<T>(attempt: ListenAttempt, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (error) {
    const systemCode = (error as { code?: unknown }).code;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ListenFailure(attempt, typeof systemCode === 'string' ? systemCode : undefined, reason);
  }
}

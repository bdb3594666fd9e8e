/**
 * One request from a `kai` command to a node's internal API, and the reply. An unreachable node is
 * a CommandError, one line; so is an address that turns out to be a memcache port, which the
 * command finds out at once instead of waiting out its timeout (port-probe.ts).
 */
import { ConfigError, checkNodeAddress } from '../config/fields';
import { realEnv } from '../env';
import { KaiError } from '../errors';
import type { RpcReply, RpcRequest } from '../rpc/messages';
import { TcpTransport, type ConnectionSecurity } from '../rpc/tcp-transport';
import { identifyPort, wrongPortMessage } from './port-probe';

/**
 * How long a command waits for the node. check-node's node first gossips with the other node,
 * which takes one exchange timeout (a gossip interval) at most.
 */
export const commandTimeoutMs = 10_000;

/**
 * How long a node may be silent before the command checks what answers at its address. A node
 * answers a command within milliseconds; a memcache port never answers it at all.
 */
export const silenceBeforeProbeMs = 1_000;

/** Replies carry member lists and the ring state, never values: the ring of 65536 buckets fits. */
const commandFrameBytesMax = 8 * 1024 * 1024;

/** An operating failure of a command: printed as `kai: <message>`, exit code 1. */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export function parseNodeAddress(text: string, what: string): string {
  if (!checkNodeAddress(text)) throw new ConfigError(`${what}: must be host:port of a node's internal API, got ${JSON.stringify(text)}`);
  return text;
}

type Outcome = { readonly ok: true; readonly reply: RpcReply } | { readonly ok: false; readonly error: unknown };

function outcomeOf(reply: Promise<RpcReply>): Promise<Outcome> {
  return reply.then(
    (value) => ({ ok: true, reply: value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/** A failure to reach `address` in one line, without the address twice. */
function unreachable(address: string, error: unknown): unknown {
  if (!(error instanceof KaiError) || error.code !== 'KAI_PEER_UNREACHABLE') return error;
  const detail = error.detail ?? error.message;
  return new CommandError(`cannot reach ${address}: ${detail.startsWith(`${address}: `) ? detail.slice(address.length + 2) : detail}`);
}

async function replyOrUnreachable(address: string, reply: Promise<RpcReply>): Promise<RpcReply> {
  try {
    return await reply;
  } catch (error) {
    throw unreachable(address, error);
  }
}

/**
 * The reply, unless the node fails the request or stays silent past silenceBeforeProbeMs: then
 * the address is probed, and a memcache port there ends the command at once with a line saying
 * so.
 */
async function replyOrWrongPort(address: string, reply: Promise<RpcReply>): Promise<RpcReply> {
  const outcome = outcomeOf(reply);
  let timer: NodeJS.Timeout | undefined;
  const silence = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), silenceBeforeProbeMs)));
  const early = await Promise.race([outcome, silence]);
  clearTimeout(timer);
  if (early?.ok === true) return early.reply;
  // A refused connection makes a refused probe, at once: nothing listens there.
  const identity = await identifyPort(address);
  if (identity.kind === 'kaiMemcache' || identity.kind === 'memcache') throw new CommandError(wrongPortMessage(address, identity));
  const settled = early ?? (await outcome);
  if (settled.ok) return settled.reply;
  throw unreachable(address, settled.error);
}

export interface AskOptions {
  /** commandTimeoutMs by default. */
  readonly timeoutMs?: number;
  /**
   * Whether a failing or silent address is probed for a memcache port: yes for an address the
   * operator typed, no for members a node named (they are nodes; a silent one is down or cut off).
   */
  readonly probe?: boolean;
}

/** One request to `address`, and the transport closed after; an `error` reply is a CommandError. */
export async function ask(
  address: string,
  request: RpcRequest,
  security: ConnectionSecurity | undefined,
  options: AskOptions = {},
): Promise<RpcReply> {
  const transport = new TcpTransport({ host: '127.0.0.1', port: 0, env: realEnv, frameBytesMax: commandFrameBytesMax, ...security });
  try {
    const sent = transport.request(address, request, options.timeoutMs ?? commandTimeoutMs);
    const reply = options.probe === false ? await replyOrUnreachable(address, sent) : await replyOrWrongPort(address, sent);
    if (reply.type === 'error') throw new CommandError(`${address} refused ${request.type}: ${reply.code}: ${reply.detail}`);
    return reply;
  } finally {
    await transport.close();
  }
}

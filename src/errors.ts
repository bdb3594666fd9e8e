/**
 * The one registry of kai's errors. Every error carries a stable code; the protocol layers map
 * the code to their own words (a text reply line, a binary status). docs/protocol.md lists them.
 */

/** Binary protocol status codes (protocol_binary.h) that errors map to. */
export const BinaryStatus = {
  success: 0x0000,
  keyNotFound: 0x0001,
  keyExists: 0x0002,
  valueTooLarge: 0x0003,
  invalidArguments: 0x0004,
  itemNotStored: 0x0005,
  nonNumericValue: 0x0006,
  authenticationError: 0x0020,
  authenticationContinue: 0x0021,
  unknownCommand: 0x0081,
  outOfMemory: 0x0082,
  notSupported: 0x0083,
  internalError: 0x0084,
  busy: 0x0085,
  temporaryFailure: 0x0086,
} as const;

interface ErrorSpec {
  /** The reply line a text client gets, without the trailing CRLF. */
  readonly textReply: string;
  readonly binaryStatus: number;
  /** For the admin HTTP server's errors: the HTTP status it answers with. */
  readonly httpStatus?: number;
}

export const errorRegistry = {
  KAI_UNKNOWN_COMMAND: { textReply: 'ERROR', binaryStatus: BinaryStatus.unknownCommand },
  KAI_BAD_COMMAND_LINE: {
    textReply: 'CLIENT_ERROR bad command line format',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  KAI_BAD_DATA_CHUNK: { textReply: 'CLIENT_ERROR bad data chunk', binaryStatus: BinaryStatus.invalidArguments },
  KAI_LINE_TOO_LONG: { textReply: 'CLIENT_ERROR line too long', binaryStatus: BinaryStatus.invalidArguments },
  /**
   * A text command line that looks like HTTP (`GET / HTTP/1.1`): the connection is closed without a
   * reply, as memcached closes it, so a browser cannot be used to send commands to the port.
   */
  KAI_HTTP_REQUEST_LINE: { textReply: 'CLIENT_ERROR HTTP request line', binaryStatus: BinaryStatus.invalidArguments },
  KAI_VALUE_TOO_LARGE: {
    textReply: 'SERVER_ERROR object too large for cache',
    binaryStatus: BinaryStatus.valueTooLarge,
  },
  KAI_NON_NUMERIC_VALUE: {
    textReply: 'CLIENT_ERROR cannot increment or decrement non-numeric value',
    binaryStatus: BinaryStatus.nonNumericValue,
  },
  KAI_INVALID_DELTA: {
    textReply: 'CLIENT_ERROR invalid numeric delta argument',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  KAI_INVALID_EXPTIME: {
    textReply: 'CLIENT_ERROR invalid exptime argument',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  KAI_QUORUM_UNMET: { textReply: 'SERVER_ERROR quorum not met', binaryStatus: BinaryStatus.temporaryFailure },
  KAI_STORAGE_FAILURE: { textReply: 'SERVER_ERROR storage failure', binaryStatus: BinaryStatus.internalError },
  KAI_SHUTTING_DOWN: { textReply: 'SERVER_ERROR shutting down', binaryStatus: BinaryStatus.temporaryFailure },
  KAI_INTERNAL: { textReply: 'SERVER_ERROR internal error', binaryStatus: BinaryStatus.internalError },
  /** The client closed its connection while its reply was being written; nobody reads this reply. */
  KAI_CLIENT_GONE: { textReply: 'SERVER_ERROR client connection closed', binaryStatus: BinaryStatus.internalError },
  KAI_OUT_OF_MEMORY_STORING: {
    textReply: 'SERVER_ERROR out of memory storing object',
    binaryStatus: BinaryStatus.valueTooLarge,
  },
  /** memcached's own wording for a `delete` with a hold time other than 0 or a stray token. */
  KAI_BAD_DELETE_FORMAT: {
    textReply: 'CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  /** Meta commands: memcached's own words for each way a flag can be wrong. */
  KAI_META_DUPLICATE_FLAG: { textReply: 'CLIENT_ERROR duplicate flag', binaryStatus: BinaryStatus.invalidArguments },
  KAI_META_INVALID_FLAG: { textReply: 'CLIENT_ERROR invalid flag', binaryStatus: BinaryStatus.invalidArguments },
  KAI_META_INVALID_OR_DUPLICATE_FLAG: {
    textReply: 'CLIENT_ERROR invalid or duplicate flag',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  KAI_META_BAD_TOKEN: {
    textReply: 'CLIENT_ERROR bad token in command line format',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  KAI_META_KEY_NOT_BASE64: { textReply: 'CLIENT_ERROR error decoding key', binaryStatus: BinaryStatus.invalidArguments },
  KAI_META_OPAQUE_TOO_LONG: { textReply: 'CLIENT_ERROR opaque token too long', binaryStatus: BinaryStatus.invalidArguments },
  /** mg words it so; ms, md and ma say KAI_META_TOO_MANY_FLAGS' words. */
  KAI_META_GET_TOO_MANY_FLAGS: {
    textReply: 'CLIENT_ERROR options flags are too long',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  KAI_META_TOO_MANY_FLAGS: { textReply: 'CLIENT_ERROR options flags too long', binaryStatus: BinaryStatus.invalidArguments },
  KAI_META_MODE_LENGTH: { textReply: 'CLIENT_ERROR incorrect length for M token', binaryStatus: BinaryStatus.invalidArguments },
  KAI_META_SET_MODE: { textReply: 'CLIENT_ERROR invalid mode for ms M token', binaryStatus: BinaryStatus.invalidArguments },
  KAI_META_ARITH_MODE: { textReply: 'CLIENT_ERROR invalid mode for ma M token', binaryStatus: BinaryStatus.invalidArguments },
  KAI_META_INVALID_INITIAL: {
    textReply: 'CLIENT_ERROR invalid numeric initial value',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  KAI_META_INVALID_DELTA: { textReply: 'CLIENT_ERROR invalid numeric delta value', binaryStatus: BinaryStatus.invalidArguments },
  /** A request before the client has authenticated (auth file set). */
  KAI_UNAUTHENTICATED: { textReply: 'CLIENT_ERROR unauthenticated', binaryStatus: BinaryStatus.authenticationError },
  /** Credentials that are not in the auth file. */
  KAI_AUTHENTICATION_FAILURE: {
    textReply: 'CLIENT_ERROR authentication failure',
    binaryStatus: BinaryStatus.authenticationError,
  },
  /** A text auth `set` whose data is not `<user> <password>`. */
  KAI_BAD_AUTHENTICATION_TOKEN: {
    textReply: 'CLIENT_ERROR bad authentication token format',
    binaryStatus: BinaryStatus.authenticationError,
  },
  /** A text auth `set` whose data block does not end with CRLF. */
  KAI_BAD_COMMAND_LINE_TERMINATION: {
    textReply: 'CLIENT_ERROR bad command line termination',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  /** `stats detail` without on, off or dump, in memcached's words; binary: not found, as memcached. */
  KAI_STATS_DETAIL_USAGE: {
    textReply: 'CLIENT_ERROR usage: stats detail on|off|dump',
    binaryStatus: BinaryStatus.keyNotFound,
  },
  /** A `stats cachedump` short of its class and limit: memcached's words for a line missing arguments. */
  KAI_MISSING_ARGUMENTS: { textReply: 'CLIENT_ERROR bad command line', binaryStatus: BinaryStatus.invalidArguments },
  /** A `stats cachedump` class id past memcached's 63. */
  KAI_ILLEGAL_SLAB_CLASS: { textReply: 'CLIENT_ERROR Illegal slab id', binaryStatus: BinaryStatus.invalidArguments },
  /** An `lru_crawler metadump` class list naming a class that cannot exist. */
  KAI_BAD_SLAB_CLASS_LIST: { textReply: 'BADCLASS invalid class id', binaryStatus: BinaryStatus.invalidArguments },
  /** An `lru_crawler metadump` class list naming no class at all (`,`). */
  KAI_NOTHING_TO_CRAWL: { textReply: 'NOTSTARTED no items to crawl', binaryStatus: BinaryStatus.invalidArguments },
  /** As many key dumps as the node runs at once are running (server/text-tools.ts). */
  KAI_KEY_DUMPS_BUSY: { textReply: 'BUSY currently processing crawler request', binaryStatus: BinaryStatus.busy },
  /** `lru_crawler metadump` behind other requests still answering on the connection. */
  KAI_METADUMP_PIPELINED: {
    textReply: 'ERROR cannot pipeline other commands before metadump',
    binaryStatus: BinaryStatus.invalidArguments,
  },
  /** `watch` behind other requests still answering on the connection. */
  KAI_WATCH_PIPELINED: { textReply: 'ERROR cannot pipeline other commands before watch', binaryStatus: BinaryStatus.invalidArguments },
  /** As many watchers as the node keeps are watching (server/watchers.ts). */
  KAI_WATCHERS_FULL: { textReply: 'WATCHER_TOO_MANY log watcher limit reached', binaryStatus: BinaryStatus.busy },
  /** A peer did not answer an internal API request: refused, reset, or too slow. */
  KAI_PEER_UNREACHABLE: { textReply: 'SERVER_ERROR peer unreachable', binaryStatus: BinaryStatus.temporaryFailure },
  /** A frame of the internal API was malformed or over its size cap. */
  KAI_BAD_FRAME: { textReply: 'SERVER_ERROR bad internal frame', binaryStatus: BinaryStatus.internalError },
  /**
   * A fallback refused to stand in for a down node: it already holds its most hints for that node
   * (`hints_per_target_max`, `hint_bytes_per_target_max`). The coordinator counts it as a failed replica.
   */
  KAI_HINTS_FULL: { textReply: 'SERVER_ERROR hints full', binaryStatus: BinaryStatus.temporaryFailure },
  /** A peer cuts its ring differently (--buckets): gossip with it is refused. */
  KAI_RING_LAYOUT_MISMATCH: {
    textReply: 'SERVER_ERROR ring layout differs between nodes',
    binaryStatus: BinaryStatus.internalError,
  },
  /** Another process holds the data dir (storage/data-dir-lock.ts); a node refuses to start. */
  KAI_DATA_DIR_IN_USE: { textReply: 'SERVER_ERROR data dir in use', binaryStatus: BinaryStatus.internalError },
  /** The data dir was written by a node with another id (address); a node refuses to start on it. */
  KAI_DATA_DIR_OF_ANOTHER_NODE: { textReply: 'SERVER_ERROR data dir of another node', binaryStatus: BinaryStatus.internalError },
  /** /ready: the node cannot meet its quorums, or is joining, stopping or without storage (admin/readiness.ts). */
  KAI_NOT_READY: { textReply: 'SERVER_ERROR not ready', binaryStatus: BinaryStatus.temporaryFailure, httpStatus: 503 },
  /** The admin HTTP server has no such path. */
  KAI_ADMIN_NOT_FOUND: { textReply: 'CLIENT_ERROR no such admin path', binaryStatus: BinaryStatus.keyNotFound, httpStatus: 404 },
  /** The admin HTTP server answers GET only. */
  KAI_ADMIN_METHOD_NOT_ALLOWED: {
    textReply: 'CLIENT_ERROR admin paths answer GET only',
    binaryStatus: BinaryStatus.invalidArguments,
    httpStatus: 405,
  },
  /** An admin HTTP request carried a body: none of its paths takes one. */
  KAI_ADMIN_REQUEST_TOO_LARGE: {
    textReply: 'CLIENT_ERROR admin requests take no body',
    binaryStatus: BinaryStatus.invalidArguments,
    httpStatus: 413,
  },
  /** A port could not be listened on (in use, privileged, no such address); a node refuses to start. */
  KAI_LISTEN_FAILED: { textReply: 'SERVER_ERROR cannot listen', binaryStatus: BinaryStatus.internalError },
  /**
   * An internal API request reached a node's memcache port (server/wrong-port.ts): the port
   * answers in the memcache protocol, and names the internal API the request was meant for.
   */
  KAI_MEMCACHE_PORT: { textReply: 'SERVER_ERROR memcache port', binaryStatus: BinaryStatus.invalidArguments },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorRegistry;

/**
 * An operating error: expected, handled as a value and answered in the client's protocol.
 * `detail` may refine the text reply (for example which quorum was unmet).
 */
export class KaiError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly detail?: string,
    /**
     * For KAI_PEER_UNREACHABLE: the request never left this node (the peer refused the
     * connection, or the connection was in backoff), so the peer cannot have acted on it.
     */
    readonly undelivered = false,
  ) {
    super(detail ? `${errorRegistry[code].textReply}: ${detail}` : errorRegistry[code].textReply);
    this.name = 'KaiError';
  }

  /** The text protocol reply line for this error, without CRLF. */
  textReply(): string {
    const base = errorRegistry[this.code].textReply;
    return this.detail ? `${base} (${this.detail})` : base;
  }

  binaryStatus(): number {
    return errorRegistry[this.code].binaryStatus;
  }

  /** The HTTP status the admin server answers this error with; 500 for an error it has none for. */
  httpStatus(): number {
    const spec: ErrorSpec = errorRegistry[this.code];
    return spec.httpStatus ?? 500;
  }
}

/** Maps any thrown value to a KaiError, so no request ever goes unanswered. */
export function asKaiError(error: unknown): KaiError {
  if (error instanceof KaiError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new KaiError('KAI_INTERNAL', message);
}

/** A programmer error: an invariant that must hold. Never used for bad input. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`assertion failed: ${message}`);
}

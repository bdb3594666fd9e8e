/**
 * Client authentication. When an auth file is configured, clients must prove a user and password
 * from it before anything else: binary clients with SASL PLAIN, text clients as memcached's ascii
 * auth does (a first `set` whose data is `<user> <password>`).
 */

export interface Authenticator {
  /** False when no auth file is configured: every client is trusted, as memcached does by default. */
  readonly required: boolean;
  /** Whether the pair is in the auth file; compares in constant time. */
  verify(user: Buffer, password: Buffer): boolean;
}

/** The authenticator of a node without an auth file. */
export const noAuthentication: Authenticator = {
  required: false,
  verify: () => true,
};

/** The SASL mechanisms kai offers (binary SASL_LIST_MECHS). */
export const saslMechanisms = 'PLAIN';

/**
 * The user and password of a SASL PLAIN message (RFC 4616): `[authzid] NUL authcid NUL passwd`.
 * Undefined when the message is not of that form.
 */
export function parseSaslPlain(message: Buffer): { readonly user: Buffer; readonly password: Buffer } | undefined {
  const first = message.indexOf(0);
  if (first === -1) return undefined;
  const second = message.indexOf(0, first + 1);
  if (second === -1 || message.indexOf(0, second + 1) !== -1) return undefined;
  const user = message.subarray(first + 1, second);
  if (user.length === 0) return undefined;
  return { user, password: message.subarray(second + 1) };
}

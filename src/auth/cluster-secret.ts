/**
 * The cluster secret file (--cluster-secret-file): the bytes every node of a cluster, and every
 * `kai` command that talks to one, proves it holds when it opens an internal API connection
 * (src/rpc/handshake.ts). The file holds the secret as it is, one trailing line ending aside, so
 * `head -c 32 /dev/urandom | base64 > secret` makes one.
 */
import fs from 'node:fs';
import { oneLineMessage } from '../config/fields';
import { clusterSecretBytesMax, clusterSecretBytesMin } from '../rpc/handshake';

export class ClusterSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterSecretError';
  }
}

/** The secret in `file`; throws ClusterSecretError saying what is wrong with it. */
export function readClusterSecret(file: string): Buffer {
  let content: Buffer;
  try {
    const size = fs.statSync(file).size;
    if (size > clusterSecretBytesMax + 2) throw new ClusterSecretError(`cluster secret file ${file}: larger than ${clusterSecretBytesMax} bytes`);
    content = fs.readFileSync(file);
  } catch (error) {
    if (error instanceof ClusterSecretError) throw error;
    throw new ClusterSecretError(`cluster secret file ${file}: ${oneLineMessage(error)}`);
  }
  let end = content.length;
  if (end > 0 && content[end - 1] === 0x0a) end--;
  if (end > 0 && content[end - 1] === 0x0d) end--;
  const secret = content.subarray(0, end);
  if (secret.length < clusterSecretBytesMin) {
    throw new ClusterSecretError(
      `cluster secret file ${file}: ${secret.length} bytes, fewer than ${clusterSecretBytesMin} (make one with: head -c 32 /dev/urandom | base64 > ${file})`,
    );
  }
  if (secret.length > clusterSecretBytesMax) throw new ClusterSecretError(`cluster secret file ${file}: larger than ${clusterSecretBytesMax} bytes`);
  return secret;
}

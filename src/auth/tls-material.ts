/**
 * The certificate, key and CA files of --tls, read once at start. A node's memcache port presents
 * the certificate to clients (asking for theirs per --tls-client-certificates); its internal API
 * presents it to peers both ways and accepts only peers whose certificates chain to the CA: the
 * CA is the cluster's own, so a peer's name is not checked against its address.
 */
import fs from 'node:fs';
import tls from 'node:tls';
import { oneLineMessage } from '../config/fields';

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** Absent only when nothing is verified (a memcache port that asks clients for no certificate). */
  readonly ca: Buffer | undefined;
}

export class TlsMaterialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsMaterialError';
  }
}

/** PEM files hold a few certificates; more than this is not a certificate file. */
const pemFileBytesMax = 1024 * 1024;

function readPem(file: string, what: string): Buffer {
  try {
    if (fs.statSync(file).size > pemFileBytesMax) throw new Error(`larger than ${pemFileBytesMax} bytes`);
    return fs.readFileSync(file);
  } catch (error) {
    throw new TlsMaterialError(`${what} ${file}: ${oneLineMessage(error)}`);
  }
}

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string | undefined;
}

/** Reads the files and proves they make a usable context (the key matches the certificate). */
export function readTlsMaterial(files: TlsFiles): TlsMaterial {
  const material: TlsMaterial = {
    cert: readPem(files.certFile, 'TLS certificate'),
    key: readPem(files.keyFile, 'TLS key'),
    ca: files.caFile === undefined ? undefined : readPem(files.caFile, 'TLS CA file'),
  };
  try {
    tls.createSecureContext({ cert: material.cert, key: material.key, ca: material.ca });
  } catch (error) {
    throw new TlsMaterialError(`TLS files ${files.certFile}, ${files.keyFile}${files.caFile ? `, ${files.caFile}` : ''}: ${oneLineMessage(error)}`);
  }
  return material;
}

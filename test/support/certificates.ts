/**
 * Certificates for TLS tests, made with the openssl command in a temp dir: a cluster CA, a node
 * certificate and a client certificate it signed, and a stranger's certificate signed by another
 * CA. Plain Node (no jest), like ./servers.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface TestCertificates {
  readonly dir: string;
  readonly caFile: string;
  readonly nodeCertFile: string;
  readonly nodeKeyFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** Signed by a CA the nodes do not trust. */
  readonly strangerCertFile: string;
  readonly strangerKeyFile: string;
}

function openssl(dir: string, args: readonly string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function makeCa(dir: string, name: string): void {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2']
    .concat(['-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.pem`]));
}

function makeSigned(dir: string, name: string, ca: string): void {
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`]
    .concat(['-keyout', `${name}.key`, '-out', `${name}.csr`]));
  fs.writeFileSync(path.join(dir, `${name}.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2']
    .concat(['-extfile', `${name}.ext`, '-out', `${name}.pem`]));
}

/** Makes the certificates under `dir` (created if missing). */
export function makeTestCertificates(dir: string): TestCertificates {
  fs.mkdirSync(dir, { recursive: true });
  makeCa(dir, 'cluster-ca');
  makeCa(dir, 'other-ca');
  makeSigned(dir, 'node', 'cluster-ca');
  makeSigned(dir, 'client', 'cluster-ca');
  makeSigned(dir, 'stranger', 'other-ca');
  const file = (name: string): string => path.join(dir, name);
  return {
    dir,
    caFile: file('cluster-ca.pem'),
    nodeCertFile: file('node.pem'),
    nodeKeyFile: file('node.key'),
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
    strangerCertFile: file('stranger.pem'),
    strangerKeyFile: file('stranger.key'),
  };
}

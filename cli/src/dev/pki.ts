// Certificates for the local federation, made with the openssl CLI once per federation directory:
// one CA; an admin client cert in system:masters (for kubectl, KCM, scheduler, KWOK); one serving
// cert for every loopback API server; and a service-account key pair per cluster, so a token
// minted by one cluster is worthless on another.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  adminCert: string;
  adminKey: string;
  servingCert: string;
  servingKey: string;
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args, { maxBuffer: 1 << 20 });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new Error('openssl is not installed; install it (apt-get install openssl) and retry', { cause: e });
    throw new Error(`openssl ${args[0]} failed: ${err.stderr ?? err.message}`, { cause: e });
  }
}

async function signedCert(p: Pki, name: string, subject: string, ext: string): Promise<void> {
  const key = join(p.dir, `${name}.key`);
  const csr = join(p.dir, `${name}.csr`);
  const extFile = join(p.dir, `${name}.ext`);
  writeFileSync(extFile, ext);
  await openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', subject, '-keyout', key, '-out', csr]);
  await openssl(['x509', '-req', '-in', csr, '-CA', p.caCert, '-CAkey', p.caKey, '-CAcreateserial', '-days', '3650', '-extfile', extFile, '-out', join(p.dir, `${name}.crt`)]);
}

/** Where a federation directory keeps its certificates. */
export function pkiPaths(dir: string): Pki {
  const pkiDir = join(dir, 'pki');
  return {
    dir: pkiDir,
    caCert: join(pkiDir, 'ca.crt'),
    caKey: join(pkiDir, 'ca.key'),
    adminCert: join(pkiDir, 'admin.crt'),
    adminKey: join(pkiDir, 'admin.key'),
    servingCert: join(pkiDir, 'serving.crt'),
    servingKey: join(pkiDir, 'serving.key'),
  };
}

/** Creates the CA and certs in `<dir>/pki` unless they are already there. */
export async function ensurePki(dir: string): Promise<Pki> {
  const p = pkiPaths(dir);
  if (existsSync(p.servingCert)) return p;
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  await openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', '/CN=gpufed-dev-ca', '-keyout', p.caKey, '-out', p.caCert]);
  await Promise.all([
    signedCert(p, 'admin', '/O=system:masters/CN=gpufed-dev-admin', 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n'),
    signedCert(
      p,
      'serving',
      '/CN=gpufed-dev-apiserver',
      'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1\n' +
        'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
    ),
  ]);
  return p;
}

/** The service-account signing key pair of one cluster (created on first use). */
export async function ensureServiceAccountKey(p: Pki, cluster: string): Promise<{ key: string; pub: string }> {
  const key = join(p.dir, `sa-${cluster}.key`);
  const pub = join(p.dir, `sa-${cluster}.pub`);
  if (!existsSync(pub)) {
    await openssl(['genrsa', '-out', key, '2048']);
    await openssl(['rsa', '-in', key, '-pubout', '-out', pub]);
  }
  return { key, pub };
}

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { toBase64, toHex } from '@cosmjs/encoding';
import { verifyTenantProof, type TenantProofSubject } from '../../../operator/src/tenancy/proof.js';
import { UsageError } from '../output.js';
import { parsePrivateKey, readPrivateKey, TENANT_KEY_ENV, tenantManifest } from './tenant.js';

const key = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const dir = mkdtempSync(join(tmpdir(), 'gpufed-tenant-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('parsePrivateKey', () => {
  it('reads 64 hex digits, with or without 0x and surrounding whitespace', () => {
    expect(parsePrivateKey(toHex(key), 'k')).toEqual(key);
    expect(parsePrivateKey(`0x${toHex(key).toUpperCase()}\n`, 'k')).toEqual(key);
  });

  it('reads base64 of 32 bytes', () => {
    expect(parsePrivateKey(`${toBase64(key)}\n`, 'k')).toEqual(key);
  });

  it.each([
    ['empty', ''],
    ['short hex', 'abcd'],
    ['base64 of 31 bytes', toBase64(new Uint8Array(31))],
    ['garbage', 'not a key at all!'],
  ])('rejects %s with a UsageError naming the source', (_name, text) => {
    expect(() => parsePrivateKey(text, '--key-file k.txt')).toThrow(UsageError);
    expect(() => parsePrivateKey(text, '--key-file k.txt')).toThrow(/--key-file k\.txt/);
  });
});

describe('readPrivateKey', () => {
  it('reads the key file', () => {
    const file = join(dir, 'key.hex');
    writeFileSync(file, toHex(key) + '\n');
    expect(readPrivateKey(file, {})).toEqual(key);
  });

  it(`falls back to $${TENANT_KEY_ENV}`, () => {
    expect(readPrivateKey(undefined, { [TENANT_KEY_ENV]: toBase64(key) })).toEqual(key);
  });

  it('names --key-file when there is neither a file nor the variable, or the file is missing', () => {
    expect(() => readPrivateKey(undefined, {})).toThrow(/--key-file/);
    expect(() => readPrivateKey(join(dir, 'absent'), {})).toThrow(UsageError);
  });
});

describe('tenantManifest', () => {
  it('prints a Tenant named after the namespace whose proof verifies', () => {
    const m = tenantManifest(key, 'dave', 'cosmos') as TenantProofSubject & { apiVersion: string; kind: string; metadata: { name: string } };
    expect(m).toMatchObject({ apiVersion: 'gpufed.io/v1alpha1', kind: 'Tenant', metadata: { name: 'dave' }, spec: { namespace: 'dave' } });
    expect(verifyTenantProof(m)).toEqual({ valid: true });
  });

  it('rejects a key outside the curve order', () => {
    expect(() => tenantManifest(new Uint8Array(32), 'dave', 'cosmos')).toThrow(UsageError);
  });
});

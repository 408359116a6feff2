import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { fromBech32, toBech32 } from '@cosmjs/encoding';
import { stringify } from 'yaml';
import { signTenantProof } from '../../../operator/src/tenancy/proof.js';
import { UsageError } from '../output.js';
import { tenantRequest, type AddTenantOptions } from './registry.js';
import { tenantManifest } from './tenant.js';

const key = new Uint8Array(32).fill(9);
const dave = signTenantProof(key, 'dave', 'cosmos', 'c0ffee01');
const dir = mkdtempSync(join(tmpdir(), 'gpufed-registry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
/** What `gpufed tenant prove -o yaml|json` prints for dave. */
const proveYaml = file('dave.yaml', stringify(tenantManifest(key, 'dave', 'cosmos'), { lineWidth: 0 }));
const proveJson = file('dave.json', JSON.stringify(tenantManifest(key, 'dave', 'cosmos')));
const bareProof = file('proof.json', JSON.stringify(dave.proof));

const opts = (o: Partial<AddTenantOptions>): AddTenantOptions => ({ kubeconfigOut: join(dir, 'x.kubeconfig'), output: 'table', addressPrefix: 'cosmos', ...o });
const manual = { challenge: dave.proof.challenge, signature: dave.proof.signature, pubKey: dave.proof.pubKey };

describe('tenantRequest (gpufed registry add-tenant)', () => {
  it.each([
    ['YAML', proveYaml],
    ['JSON', proveJson],
  ])("takes gpufed tenant prove's %s output, address and all", (_format, proof) => {
    const r = tenantRequest('dave', opts({ proof }));
    expect(r).toMatchObject({ name: 'dave', namespace: 'dave', address: dave.address });
    expect(r.proof.challenge).toMatch(/^gpufed\.io\/tenant namespace=dave address=cosmos1\S+ nonce=[0-9a-f]{16}$/);
  });

  it('takes a bare proof with --address, or the three flags with --address', () => {
    expect(tenantRequest('dave', opts({ proof: bareProof, address: dave.address }))).toEqual({ name: 'dave', namespace: 'dave', address: dave.address, proof: dave.proof });
    expect(tenantRequest('dave', opts({ ...manual, address: dave.address }))).toEqual({ name: 'dave', namespace: 'dave', address: dave.address, proof: dave.proof });
  });

  it('binds another namespace than the name with --namespace', () => {
    const lab = signTenantProof(key, 'dave-lab', 'cosmos', 'c0ffee01');
    expect(tenantRequest('dave', opts({ namespace: 'dave-lab', ...lab.proof, address: lab.address }))).toMatchObject({ name: 'dave', namespace: 'dave-lab' });
  });

  const osmo = toBech32('osmo', fromBech32(dave.address, 90).data);
  const flipped = (() => {
    const sig = Buffer.from(dave.proof.signature, 'base64');
    sig[10] = (sig[10] ?? 0) ^ 1;
    return sig.toString('base64');
  })();
  it.each([
    ['no proof at all', { address: dave.address }, /the payer's proof is required: --proof <file\|->.* \(missing --challenge, --signature, --pub-key\)/],
    ['only some of the three flags', { address: dave.address, signature: manual.signature }, /\(missing --challenge, --pub-key\)/],
    ['a bare proof without --address', { proof: bareProof }, /--address is required/],
    ['a proof file that is not there', { proof: join(dir, 'absent.yaml') }, /--proof \S+absent\.yaml: ENOENT/],
    ['a proof file that is no proof', { proof: file('junk.yaml', 'hello: world\n') }, /--proof \S+junk\.yaml: is neither a Tenant/],
    ['a proof file that is no YAML', { proof: file('bad.yaml', '{ "a": [\n') }, /--proof \S+bad\.yaml: /],
    ['a proof for another namespace', { proof: proveYaml, namespace: 'erin' }, /--proof \S+dave\.yaml: the proof is for namespace dave, not erin$/],
    ['an --address the proof is not for', { proof: proveYaml, address: osmo }, /--address osmo1\S+: the proof in --proof \S+ is for cosmos1/],
    ['an address of another chain', { ...manual, address: osmo }, /--address osmo1\S+: has prefix "osmo", expected "cosmos"/],
    ['a bad signature', { ...manual, signature: flipped, address: dave.address }, /--signature: does not prove that cosmos1\S+ pays for namespace dave \(SignatureInvalid\)/],
    ['a signature by another key', { ...signTenantProof(new Uint8Array(32).fill(3), 'dave').proof, address: dave.address }, /\((ChallengeMismatch|PubKeyAddressMismatch)\)/],
  ])('is a UsageError naming the flag for %s', (_what, o, message) => {
    expect(() => tenantRequest('dave', opts(o))).toThrow(UsageError);
    expect(() => tenantRequest('dave', opts(o))).toThrow(message);
  });

  it('suggests --namespace when the proof is for another namespace than the name', () => {
    expect(() => tenantRequest('erin', opts({ proof: proveYaml }))).toThrow(/the proof is for namespace dave, not erin \(bind that one with --namespace dave\)/);
  });
});

// A provider is a stranger: every attack of issue 12, made with nothing but the provider agent's
// own onboarded credentials and its own hot key (what a provider running modified code has), on
// the real registry API server and the real chain. None of them changes its standing, gets money
// moved for usage the registry did not verify, or shows a payment that is not on chain; a fenced
// copy is paid only up to the fence; and neither the provider's key nor the registry's can use a
// renter's grant alone.
import { randomUUID } from 'node:crypto';
import { toBase64 } from '@cosmjs/encoding';
import * as k8s from '@kubernetes/client-node';
import { MsgExec } from 'cosmjs-types/cosmos/authz/v1beta1/tx';
import { CompactBitArray, MultiSignature } from 'cosmjs-types/cosmos/crypto/multisig/v1beta1/multisig';
import { SignMode } from 'cosmjs-types/cosmos/tx/signing/v1beta1/signing';
import { AuthInfo, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import { encodePubkey } from '@cosmjs/proto-signing';
import { ComputeJobResource, ProviderResource, SettlementResource, UsageRecordResource, type Assignment, type ComputeJob, type Provider, type Settlement, type UsageRecord, type UsageRecordSpec } from '../../operator/src/api/index.js';
import { Kube } from '../../operator/src/kube/client.js';
import { signUsageRecord } from '../../operator/src/metering/evidence.js';
import type { Registry } from '../../operator/src/registry/registry.js';
import { execMessage, type Chain } from '../../operator/src/settlement/chain.js';
import { keyAddress } from '../../operator/src/settlement/keys.js';
import { buildTx, publicKeyOf, settlementAccount, signDocDigest, signMember } from '../../operator/src/settlement/multisig.js';
import { feeAmount } from '../../operator/src/settlement/settler.js';
import { devFaucetKey, devProviderHotKey, devProviderPayout, devRegistryKey, devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { validComputeJob } from '../fixtures/computejobs.js';
import { balance, fundedTenant, send as transfer, type FundedTenant } from '../support/chain.js';
import { eventually, kubeConfig, kubectl, withoutWork } from '../support/federation.js';
import { agentFiles, devChainTarget, settlingRegistry, startAgent, stopAgent, type AgentProcess } from '../support/operators.js';
import { chainProfiles } from '../support/profiles.js';

const A6000 = 'NVIDIA-RTX-A6000';
const PRICE = 1_400_007n;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const admin = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
const ns = (p: string) => `gpufed-provider-${p}`;
const iso = (ms: number) => new Date(ms).toISOString();

let chain: Chain;
let registry: Registry | undefined;
const agents: AgentProcess[] = [];

async function provider(name: string): Promise<Provider> {
  return (await admin().getClusterCustomObject({ group: ProviderResource.group, version: ProviderResource.version, plural: ProviderResource.plural, name })) as Provider;
}
async function record(name: string): Promise<UsageRecord> {
  return (await admin().getNamespacedCustomObject({ group: UsageRecordResource.group, version: UsageRecordResource.version, plural: UsageRecordResource.plural, namespace: ns('bob'), name })) as UsageRecord;
}
async function settlement(name: string): Promise<Settlement> {
  return (await admin().getNamespacedCustomObject({ group: SettlementResource.group, version: SettlementResource.version, plural: SettlementResource.plural, namespace: ns('bob'), name })) as Settlement;
}
async function recordsOfJob(uid: string): Promise<UsageRecord[]> {
  const list = (await admin().listClusterCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'usagerecords', labelSelector: `gpufed.io/job-uid=${uid}` })) as { items: UsageRecord[] };
  return list.items;
}
async function assignmentOf(j: ComputeJob): Promise<Assignment> {
  const list = (await admin().listNamespacedCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'assignments', namespace: ns('bob'), labelSelector: `gpufed.io/job-uid=${j.metadata.uid ?? ''}` })) as { items: Assignment[] };
  const a = list.items[0];
  if (!a) throw new Error(`No Assignment of ${j.metadata.name ?? ''}`);
  return a;
}

let seq = 0;
async function submit(t: FundedTenant, duration: string): Promise<ComputeJob> {
  const j = validComputeJob(`trust-${Date.now().toString(36)}-${seq++}`, t.namespace);
  j.metadata.annotations = { 'sim.gpufed.io/duration': duration };
  j.spec = { ...j.spec, resources: { gpu: { count: 1, models: [A6000] }, cpu: '1', memory: '1Gi' }, maxPricePerGpuHour: '2000000ustake', retries: 0 };
  delete j.spec.placement;
  const ref = { group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural, namespace: t.namespace };
  return (await t.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({ ...ref, body: j })) as ComputeJob;
}
async function jobWhen(t: FundedTenant, name: string, what: string, ok: (j: ComputeJob) => boolean, timeoutMs = 90_000): Promise<ComputeJob> {
  const ref = { group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural, namespace: t.namespace, name };
  return eventually(`${name} ${what}`, async () => {
    const j = (await admin().getNamespacedCustomObject(ref)) as ComputeJob;
    return ok(j) ? j : undefined;
  }, timeoutMs, 500);
}
const settledJob = (t: FundedTenant, name: string) => jobWhen(t, name, 'Settled', (j) => j.status?.conditions?.find((c) => c.type === 'Settled')?.status === 'True');
const sum = (rs: UsageRecord[]) => rs.reduce((s, r) => s + BigInt(r.spec.amount.replace(/[a-z]+$/, '')), 0n);
const verified = (r: UsageRecord) => r.status?.conditions?.find((c) => c.type === 'Verified');

afterAll(async () => {
  for (const a of agents) await stopAgent(a);
  await registry?.stop();
  await kubectl('registry', ['patch', 'lease', 'gpufed-registry', '-n', 'gpufed-system', '--type=merge', '-p', '{"spec":{"holderIdentity":""}}']);
  chain?.disconnect();
});

describe("a provider's agent credentials and hot key cannot make the registry pay", () => {
  let renter: FundedTenant;
  let bystander: FundedTenant;
  let agentKube: Kube;
  let files: { kubeconfig: string; keyFile: string };
  const payout = devProviderPayout('bob');
  const account = devSettlementAccount('bob');

  beforeAll(async () => {
    const dev = chainProfiles()[0];
    if (!dev) throw new Error('no chain');
    chain = await dev.connect();
    files = await agentFiles('bob', dev.prices('bob'));
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(files.kubeconfig);
    agentKube = new Kube(kc, 'mallory');
    await withoutWork('bob');
    registry = await settlingRegistry('trust-test', chain, { fencingTimeoutMs: 6000, providerLostTimeoutMs: 30_000 });
    renter = await fundedTenant(chain, 'victim', 100_000_000n);
    bystander = await fundedTenant(chain, 'bystander', 100_000_000n);
    for (const t of [renter, bystander]) await chain.grantSpend(t.key, account, { amount: 50_000_000n, denom: 'ustake' }, [payout]);
    agents.push(startAgent({ provider: 'bob', kubeconfig: files.kubeconfig, keyFile: files.keyFile, chain: devChainTarget(), fencingTimeout: '6s', providerLostTimeout: '30s' }));
  }, 180_000);

  /** A record as the provider's modified agent would write it: signed with its own hot key, claiming what it likes. */
  function forged(name: string, spec: Partial<UsageRecordSpec> & Pick<UsageRecordSpec, 'assignmentName' | 'jobRef' | 'payer' | 'period'>): UsageRecord {
    const full: UsageRecordSpec = { epoch: 1, model: A6000, gpus: 1, gpuMilliseconds: { cumulative: 3_600_000, delta: 3_600_000 }, pricePerGpuHour: `${PRICE}ustake`, amount: `${PRICE}ustake`, payee: payout, final: true, evidenceDigest: '0'.repeat(64), ...spec };
    full.signature = signUsageRecord(full, devProviderHotKey('bob'));
    return { apiVersion: 'gpufed.io/v1alpha1', kind: 'UsageRecord', metadata: { name, namespace: ns('bob'), labels: { 'gpufed.io/job-uid': full.jobRef.uid } }, spec: full };
  }

  it('disputes forged, inflated, mis-priced and mis-payered records, never pays them, and counts them against the provider', async () => {
    const before = { renter: await balance(chain, renter.address), bystander: await balance(chain, bystander.address), payout: await balance(chain, payout) };
    // An honest job first: the agent meters and settles it, the registry verifies and co-signs.
    const j = await submit(renter, '5s');
    const done = await settledJob(renter, j.metadata.name ?? '');
    const honest = await recordsOfJob(done.metadata.uid ?? '');
    expect(honest.every((r) => verified(r)?.status === 'True')).toBe(true);
    const a = await assignmentOf(done);
    const placed = Date.parse(String(a.metadata.creationTimestamp));
    const now = Date.now();
    const attacks: [UsageRecord, string][] = [
      // Another tenant's job that was never placed here: a made-up Assignment, that tenant as payer, a GPU-hour.
      [forged(`forged-${seq}`, { assignmentName: 'bystander-ghost-1', jobRef: { namespace: bystander.namespace, name: 'ghost', uid: randomUUID() }, payer: bystander.address, period: { start: iso(now - 60_000), end: iso(now - 1000) } }), 'NoAssignment'],
      // The real job, at a higher price than its Assignment's.
      [forged(`mispriced-${seq}`, { assignmentName: a.metadata.name ?? '', jobRef: a.spec.jobRef, payer: a.spec.payer, pricePerGpuHour: '9000000ustake', amount: '9000000ustake', period: { start: iso(placed), end: iso(placed + 5000) } }), 'AssignmentMismatch'],
      // The real job, billed to another payer.
      [forged(`mispayered-${seq}`, { assignmentName: a.metadata.name ?? '', jobRef: a.spec.jobRef, payer: bystander.address, period: { start: iso(placed), end: iso(placed + 5000) } }), 'AssignmentMismatch'],
      // The real job, a GPU-hour claimed for seconds of it (a second chain start, and far outside its run window).
      [forged(`inflated-${seq}`, { assignmentName: a.metadata.name ?? '', jobRef: a.spec.jobRef, payer: a.spec.payer, period: { start: iso(placed), end: iso(placed + 5000) } }), 'ChainBroken'],
      // A period in 2099.
      [forged(`future-${seq}`, { assignmentName: a.metadata.name ?? '', jobRef: a.spec.jobRef, payer: a.spec.payer, period: { start: '2099-01-01T00:00:00Z', end: '2099-01-01T01:00:00Z' } }), 'FuturePeriod'],
    ];
    seq++;
    // The API server admits every one of them: they are claims, not facts.
    for (const [r] of attacks) expect(await agentKube.createCustom(UsageRecordResource, r)).not.toBe(false);
    for (const [r, reason] of attacks) {
      const judged = await eventually(`the registry to judge ${r.metadata.name ?? ''}`, async () => {
        const got = await record(r.metadata.name ?? '');
        return verified(got) ? got : undefined;
      }, 30_000);
      expect(verified(judged)).toMatchObject({ status: 'False', reason });
      expect(judged.status?.state).toBe('Disputed');
    }
    // Several settlement rounds later nothing of them is paid, and the provider's reputation counts them.
    await sleep(12_000);
    for (const [r] of attacks) expect((await record(r.metadata.name ?? '')).status?.state).toBe('Disputed');
    expect(await balance(chain, bystander.address)).toBe(before.bystander);
    expect(await balance(chain, renter.address)).toBe(before.renter - sum(honest));
    expect(await balance(chain, payout)).toBe(before.payout + sum(honest));
    expect((await provider('bob')).status?.reputation?.disputed).toBeGreaterThanOrEqual(attacks.length);
    // The renter's view has only the verified usage.
    const view = await jobWhen(renter, j.metadata.name ?? '', 'after the forgeries', () => true);
    expect(view.status).toMatchObject({ cost: `${sum(honest)}ustake`, paid: `${sum(honest)}ustake` });
    expect(view.status?.disputed).toMatch(/ustake$/);
  });

  it('refuses to co-sign a settlement the provider signed for disputed records, and moves nothing', async () => {
    const victims = (await admin().listNamespacedCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'usagerecords', namespace: ns('bob') }) as { items: UsageRecord[] }).items.filter((r) => r.status?.state === 'Disputed' && r.spec.payer === bystander.address && !r.spec.period.start.startsWith('2099'));
    expect(victims.length).toBeGreaterThan(0);
    const acct = settlementAccount(publicKeyOf(devProviderHotKey('bob')), publicKeyOf(devRegistryKey()), 'cosmos');
    const onChain = await chain.account(acct.address);
    if (!onChain) throw new Error('the settlement account has no account on chain');
    const total = sum(victims);
    const exec = execMessage(acct.address, [{ from: bystander.address, to: payout, amount: { amount: total, denom: 'ustake' } }]);
    const messages = [{ typeUrl: exec.typeUrl, value: MsgExec.encode(exec.value as MsgExec).finish() }];
    const timeoutHeight = (await chain.height()) + 50;
    const tx = buildTx({ account: acct, messages, memo: `gpufed/v1/bob/${'ee'.repeat(32)}`, timeoutHeight, sequence: onChain.sequence, fee: { amount: feeAmount('0.001ustake', 300_000), gasLimit: 300_000, granter: keyAddress(devProviderHotKey('bob')) } });
    const sig = signMember(signDocDigest(tx, chain.chainId, onChain.accountNumber), devProviderHotKey('bob'));
    const name = `mallory-${Date.now().toString(36)}`;
    const proposal: Settlement = {
      apiVersion: 'gpufed.io/v1alpha1',
      kind: 'Settlement',
      metadata: { name, namespace: ns('bob') },
      spec: { chainId: chain.chainId, account: acct.address, accountNumber: onChain.accountNumber, sequence: onChain.sequence, timeoutHeight, records: victims.map((r) => r.metadata.name ?? '').sort(), total: `${total}ustake`, bodyBytes: toBase64(tx.bodyBytes), authInfoBytes: toBase64(tx.authInfoBytes), providerSignature: toBase64(sig) },
    };
    const before = await balance(chain, bystander.address);
    expect(await agentKube.createCustom(SettlementResource, proposal)).not.toBe(false);
    const refused = await eventually('the registry to decide on it', async () => {
      const s = await settlement(name);
      return s.status?.state ? s : undefined;
    }, 30_000);
    expect(refused.status).toMatchObject({ state: 'Refused' });
    expect(refused.status?.message).toMatch(/is disputed: it is never paid/);
    expect(refused.status?.signedTx).toBeUndefined();
    // The provider's half alone is no transaction the chain takes (see below); nothing moved.
    expect(await balance(chain, bystander.address)).toBe(before);
  });

  it('pays a fenced copy only up to its last heartbeat the registry saw plus the fencing timeout', async () => {
    const bob = agents.at(-1) as AgentProcess;
    const payoutBefore = await balance(chain, payout);
    const j = await submit(renter, '40s');
    await jobWhen(renter, j.metadata.name ?? '', 'Running', (x) => x.status?.phase === 'Running');
    await sleep(2000);
    // A GC pause, a suspended VM: the agent stops for longer than the fencing timeout (6 s), not long enough to be declared lost (30 s).
    bob.proc.kill('SIGSTOP');
    const frozenAt = Date.now();
    const a = await eventually('the registry to close the frozen copy\'s run window', async () => {
      const x = await assignmentOf(j);
      return x.spec.billableUntil ? x : undefined;
    }, 30_000);
    const fence = Date.parse(a.spec.billableUntil ?? '');
    expect(fence).toBeLessThanOrEqual(frozenAt + 6000 + 1000);
    expect(fence).toBeGreaterThan(frozenAt);
    await sleep(Math.max(0, frozenAt + 12_000 - Date.now()));
    bob.proc.kill('SIGCONT');
    // On waking the agent fences the pod itself, and reports it stopped at the fence, not now.
    const ended = await jobWhen(renter, j.metadata.name ?? '', 'to end', (x) => ['Succeeded', 'Failed'].includes(x.status?.phase ?? ''), 60_000);
    expect((await assignmentOf(ended)).status).toMatchObject({ phase: 'Failed', reason: 'Fenced' });
    const done = await settledJob(renter, j.metadata.name ?? '');
    const records = await recordsOfJob(done.metadata.uid ?? '');
    expect(records.every((r) => verified(r)?.status === 'True')).toBe(true);
    const pods = await kubeConfig('bob').makeApiClient(k8s.CoreV1Api).listPodForAllNamespaces({ labelSelector: `gpufed.io/job-uid=${done.metadata.uid ?? ''}` });
    const started = pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated?.startedAt ?? pods.items[0]?.status?.startTime;
    const cumulative = Math.max(...records.map((r) => r.spec.gpuMilliseconds.cumulative));
    // Billed to the fence (within the skew allowed), far short of the ~14 s the pod really ran.
    expect(cumulative).toBeLessThanOrEqual(fence - (started ? new Date(started).getTime() : 0) + 2000);
    expect(await balance(chain, payout)).toBe(payoutBefore + sum(records));
    expect(sum(records)).toBe((PRICE * BigInt(cumulative)) / 3_600_000n);
  });
});

describe('standing the provider cannot write', () => {
  it('keeps reading a silent provider as silent, whatever time its heartbeat Lease claims', async () => {
    await stopAgent(agents.pop());
    const files = await agentFiles('bob', [{ model: A6000, pricePerGpuHour: `${PRICE}ustake` }]);
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(files.kubeconfig);
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'gpufed-agent', namespace: ns('bob') }, spec: { holderIdentity: 'mallory', leaseDurationSeconds: 315_360_000, renewTime: '2099-01-01T00:00:00.000000Z' } };
    await new Kube(kc, 'mallory').apply(lease);
    const seen = await eventually('the registry to see the write as one heartbeat, at its own time', async () => {
      const p = await provider('bob');
      const t = Date.parse(p.status?.lastHeartbeatTime ?? '');
      return t > Date.now() - 10_000 && t < Date.now() + 5_000 ? p : undefined;
    }, 15_000);
    expect(seen.status?.lastHeartbeatTime?.startsWith('2099')).toBe(false);
    // Then silence: stale after the heartbeat timeout (5 s), 2099 or not.
    const stale = await eventually('bob to go stale', async () => {
      const c = (await provider('bob')).status?.conditions?.find((x) => x.type === 'Ready');
      return c?.reason === 'HeartbeatStale' ? c : undefined;
    }, 20_000);
    expect(stale.status).toBe('False');
  });
});

describe('on chain: neither key alone can use a renter\'s grant', () => {
  it('refuses the provider\'s hot key and the registry\'s key, each alone, and a settlement account transaction with one signature', async () => {
    const renter = await fundedTenant(chain, 'grantor', 10_000_000n);
    const payout = devProviderPayout('bob');
    const account = devSettlementAccount('bob');
    await chain.grantSpend(renter.key, account, { amount: 5_000_000n, denom: 'ustake' }, [payout]);
    // The registry's key holds no coins of its own; give it some for fees, as a hostile operator could.
    await transfer(chain, devFaucetKey(), keyAddress(devRegistryKey()), 1_000_000n);
    const before = await balance(chain, renter.address);
    const send = [{ from: renter.address, to: payout, amount: { amount: 1000n, denom: 'ustake' } }];
    for (const key of [devProviderHotKey('bob'), devRegistryKey()]) {
      // As its own grantee: no grant from the renter to it.
      await expect(chain.submit(key, [execMessage(keyAddress(key), send)], 'alone')).rejects.toThrow(/authorization not found/);
    }
    // The settlement account's transaction with only the provider's signature.
    const acct = settlementAccount(publicKeyOf(devProviderHotKey('bob')), publicKeyOf(devRegistryKey()), 'cosmos');
    const onChain = await chain.account(acct.address);
    if (!onChain) throw new Error('no account');
    const exec = execMessage(acct.address, send);
    const full = buildTx({ account: acct, messages: [{ typeUrl: exec.typeUrl, value: MsgExec.encode(exec.value as MsgExec).finish() }], memo: '', timeoutHeight: (await chain.height()) + 20, sequence: onChain.sequence, fee: { amount: feeAmount('0.001ustake', 300_000), gasLimit: 300_000, granter: keyAddress(devProviderHotKey('bob')) } });
    const one = AuthInfo.decode(full.authInfoBytes);
    const info = one.signerInfos[0] as NonNullable<(typeof one.signerInfos)[number]>;
    const mine = acct.members.findIndex((m) => toBase64(m) === toBase64(publicKeyOf(devProviderHotKey('bob'))));
    info.publicKey = encodePubkey(acct.pubkey);
    info.modeInfo = { multi: { bitarray: CompactBitArray.fromPartial({ elems: new Uint8Array([mine === 0 ? 0b1000_0000 : 0b0100_0000]), extraBitsStored: 2 }), modeInfos: [{ single: { mode: SignMode.SIGN_MODE_DIRECT } }] } };
    const authInfoBytes = AuthInfo.encode(one).finish();
    const unsigned = { bodyBytes: full.bodyBytes, authInfoBytes };
    const sig = signMember(signDocDigest(unsigned, chain.chainId, onChain.accountNumber), devProviderHotKey('bob'));
    const bytes = TxRaw.encode(TxRaw.fromPartial({ bodyBytes: full.bodyBytes, authInfoBytes, signatures: [MultiSignature.encode({ signatures: [sig] }).finish()] })).finish();
    const sent = await chain.broadcast(bytes);
    expect(sent).toMatchObject({ kind: 'rejected', code: 4 });
    // Nothing of the renter's moved, and the grant is whole.
    expect(await balance(chain, renter.address)).toBe(before);
    expect((await chain.grant(renter.address, account))?.spendLimit.get('ustake')).toBe(5_000_000n);
  });
});

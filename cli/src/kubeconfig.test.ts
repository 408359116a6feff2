import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from '@jest/globals';
import { commandKubeConfig, contextNamespace } from './kubeconfig.js';
import { UsageError } from './output.js';

const dir = mkdtempSync(join(tmpdir(), 'gpufed-kubeconfig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A kubeconfig with one cluster per context, `current` the current one ('' for none). */
function kubeconfig(name: string, contexts: { name: string; namespace?: string }[], current: string): string {
  const path = join(dir, name);
  const clusters = contexts.map((c) => `  - {name: ${c.name}, cluster: {server: 'https://${c.name}.example:6443'}}`);
  const ctx = contexts.map((c) => `  - {name: ${c.name}, context: {cluster: ${c.name}, user: u${c.namespace ? `, namespace: ${c.namespace}` : ''}}}`);
  writeFileSync(path, ['apiVersion: v1', 'kind: Config', 'clusters:', ...clusters, 'users: [{name: u, user: {token: t}}]', 'contexts:', ...ctx, `current-context: '${current}'`, ''].join('\n'));
  return path;
}

const fromEnv = kubeconfig('env.kubeconfig', [{ name: 'env', namespace: 'erin' }], 'env');
const fromFlag = kubeconfig('flag.kubeconfig', [{ name: 'flag', namespace: 'carol' }, { name: 'lab', namespace: 'carol-lab' }, { name: 'bare' }], 'flag');
const noCurrent = kubeconfig('none.kubeconfig', [{ name: 'a' }, { name: 'b' }], '');
const server = (kc: ReturnType<typeof commandKubeConfig>) => kc.getCurrentCluster()?.server;

// loadFromDefault reads $KUBECONFIG from the process itself.
const saved = process.env.KUBECONFIG;
afterEach(() => {
  if (saved === undefined) delete process.env.KUBECONFIG;
  else process.env.KUBECONFIG = saved;
});
const withEnv = (file: string): NodeJS.ProcessEnv => {
  process.env.KUBECONFIG = file;
  return { HOME: dir, KUBECONFIG: file };
};

describe('commandKubeConfig: flags, then the environment, then the file', () => {
  it('takes --kubeconfig over $KUBECONFIG', () => {
    const env = withEnv(fromEnv);
    expect(server(commandKubeConfig({ kubeconfig: fromFlag }, 'x', env))).toBe('https://flag.example:6443');
    expect(server(commandKubeConfig({}, 'x', env))).toBe('https://env.example:6443');
  });

  it("takes --context over the file's current context, and -n's fallback is the context's namespace", () => {
    const kc = commandKubeConfig({ kubeconfig: fromFlag, context: 'lab' }, 'x', {});
    expect(server(kc)).toBe('https://lab.example:6443');
    expect(contextNamespace(kc)).toBe('carol-lab');
    expect(contextNamespace(commandKubeConfig({ kubeconfig: fromFlag, context: 'bare' }, 'x', {}))).toBeUndefined();
  });

  it.each([
    ['no kubeconfig anywhere', {}, { HOME: dir }, /^no kubeconfig: pass --kubeconfig <file> \(the renter's\) or set \$KUBECONFIG$/],
    ['a --kubeconfig that is not there', { kubeconfig: join(dir, 'absent') }, {}, /^--kubeconfig \S+absent: no such file$/],
    ['a $KUBECONFIG that is not there', {}, { HOME: dir, KUBECONFIG: `${fromEnv}:${join(dir, 'gone')}` }, /^\$KUBECONFIG names \S+gone, which does not exist: correct \$KUBECONFIG or pass --kubeconfig <file> \(the renter's\)$/],
    ['a file that is no kubeconfig', { kubeconfig: join(dir, 'junk.yaml') }, {}, /^--kubeconfig \S+junk\.yaml: not a kubeconfig \(/],
    ['a context that is not there', { kubeconfig: fromFlag, context: 'prod' }, {}, /^--context prod: no such context in --kubeconfig \S+; it has: flag, lab, bare$/],
    ['no current context', { kubeconfig: noCurrent }, {}, /^--kubeconfig \S+none\.kubeconfig: no current context with a cluster: pass --context <name>; it has: a, b$/],
  ])('is a usage error saying what to set for %s', (_what, flags, env, message) => {
    writeFileSync(join(dir, 'junk.yaml'), 'clusters: [\n');
    expect(() => commandKubeConfig(flags, "the renter's", env)).toThrow(UsageError);
    expect(() => commandKubeConfig(flags, "the renter's", env)).toThrow(message);
  });
});

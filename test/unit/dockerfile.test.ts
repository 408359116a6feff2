// What can be checked about the Dockerfile without a Docker engine: the base images are the
// project's Node, every COPY has something to copy (and .dockerignore does not hide it), the build
// stage gets everything tsconfig.build.json compiles, the entry point is the compiled operator, the
// runtime is non-root, and the code shipped imports no devDependency (the image has none).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, posix, relative } from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../../cli/src/dev/paths.js';

const root = repoRoot();
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  image: string;
  name?: string;
  body: Instruction[];
}

/** The Dockerfile's instructions by stage: continuation lines joined, comments and blank lines dropped. */
function stages(text: string): Stage[] {
  const lines = text.split('\n').filter((l) => !/^\s*#/.test(l));
  const joined = lines.join('\n').replace(/\\\n/g, ' ');
  const out: Stage[] = [];
  for (const line of joined.split('\n').map((l) => l.trim()).filter((l) => l !== '')) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [image = '', as, name] = args.split(/\s+/);
      out.push({ image, ...(as?.toUpperCase() === 'AS' && name ? { name } : {}), body: [] });
    } else {
      const stage = out.at(-1);
      if (!stage) throw new Error(`${op} before FROM`);
      stage.body.push({ op: op.toUpperCase(), args });
    }
  }
  return out;
}

interface Copy {
  from?: string;
  sources: string[];
  dest: string;
}

function copies(stage: Stage): Copy[] {
  return stage.body
    .filter((i) => i.op === 'COPY')
    .map((i) => {
      if (i.args.startsWith('[')) throw new Error(`COPY ${i.args}: the JSON form is not parsed here`);
      const words = i.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      return { ...(from ? { from } : {}), sources: paths.slice(0, -1), dest: paths.at(-1) ?? '' };
    });
}

const last = <T>(xs: readonly T[]): T => {
  const x = xs.at(-1);
  if (x === undefined) throw new Error('empty');
  return x;
};
const workdir = (stage: Stage): string => last(stage.body.filter((i) => i.op === 'WORKDIR')).args;
/** An absolute path in the image for a path a stage names (relative ones are from its WORKDIR). */
const inImage = (stage: Stage, p: string): string => posix.normalize(p.startsWith('/') ? p : posix.join(workdir(stage), p)).replace(/(.)\/$/, '$1');

// ---------------------------------------------------------------------------------------------
// The build context: the repo's files, less what .dockerignore excludes

const SKIP = new Set(['.git', 'node_modules', 'dist', '.gpufed', 'coverage']);
function repoFiles(dir = ''): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => {
    const path = dir === '' ? e.name : `${dir}/${e.name}`;
    if (e.isDirectory()) return SKIP.has(e.name) ? [] : repoFiles(path);
    return [path];
  });
}

/** A .dockerignore or COPY pattern as a regular expression (`**` any depth, `*` and `?` within a segment). */
function globRegExp(pattern: string): RegExp {
  let re = '';
  const p = pattern.replace(/^\.?\//, '').replace(/\/$/, '');
  for (let i = 0; i < p.length; i++) {
    const c = p[i] ?? '';
    if (p.startsWith('**/', i)) {
      re += '(?:.*/)?';
      i += 2;
    } else if (p.startsWith('**', i)) {
      re += '.*';
      i += 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const ignorePatterns = read('.dockerignore')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));

/** Excluded when the path or any directory above it matches a pattern (as Docker does). */
function ignored(path: string): string | undefined {
  const parts = path.split('/');
  for (let n = 1; n <= parts.length; n++) {
    const prefix = parts.slice(0, n).join('/');
    const hit = ignorePatterns.find((p) => globRegExp(p).test(prefix));
    if (hit !== undefined) return hit;
  }
  return undefined;
}

const allFiles = repoFiles();
/** The files a COPY source from the build context delivers: those it names that .dockerignore lets through. */
function delivered(source: string): string[] {
  const clean = source.replace(/^\.\//, '').replace(/\/$/, '');
  let named: string[];
  if (/[*?[]/.test(clean)) named = allFiles.filter((f) => globRegExp(clean).test(f));
  else if (!existsSync(join(root, clean))) named = [];
  else if (statSync(join(root, clean)).isFile()) named = [clean];
  else named = allFiles.filter((f) => f.startsWith(`${clean}/`));
  return named.filter((f) => ignored(f) === undefined);
}

// ---------------------------------------------------------------------------------------------
// Imports

/** Module specifiers a JS or TS file loads at run time (type-only imports are erased, so skipped). */
function runtimeSpecifiers(text: string): string[] {
  const out: string[] = [];
  const statements = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^'";]*?\sfrom\s*)?['"]([^'"]+)['"]/g;
  for (const m of text.matchAll(statements)) {
    const isTypeOnly = m[2] !== undefined;
    const hasFrom = m[3] !== undefined;
    if (m[1] === 'export' && !hasFrom) continue;
    if (!isTypeOnly) out.push(m[4] ?? '');
  }
  for (const m of text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) out.push(m[1] ?? '');
  return out;
}

const packageName = (spec: string): string => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? ''));
const isBuiltin = (spec: string): boolean => spec.startsWith('node:') || builtinModules.includes(spec);

function filesUnder(dir: string, ext: string): string[] {
  if (!existsSync(join(root, dir))) return [];
  return (readdirSync(join(root, dir), { recursive: true }) as string[]).map((f) => `${dir}/${f}`).filter((f) => f.endsWith(ext) && !f.endsWith(`.test${ext}`) && !f.endsWith('.d.ts'));
}

// ---------------------------------------------------------------------------------------------

const dockerfile = stages(read('Dockerfile'));
const final = last(dockerfile);
const build = dockerfile.find((s) => s.name === 'build');
const pkg = JSON.parse(read('package.json')) as { version: string; license: string; dependencies: Record<string, string>; devDependencies: Record<string, string> };
const nodeVersion = read('.node-version').trim();

describe('Dockerfile', () => {
  it('builds from the Node LTS in .node-version, in a build stage and a slim runtime stage', () => {
    expect(dockerfile.length).toBeGreaterThanOrEqual(2);
    expect(build).toBeDefined();
    for (const stage of dockerfile) {
      const m = /^node:([0-9.]+)-[a-z]+-slim$/.exec(stage.image);
      expect([stage.image, m?.[1]]).toEqual([stage.image, nodeVersion]);
      expect(m?.[1]?.split('.')[0]).toBe(nodeVersion.split('.')[0]);
    }
  });

  it('copies only what exists in the build context and .dockerignore lets through', () => {
    for (const stage of dockerfile) {
      for (const c of copies(stage).filter((x) => x.from === undefined)) {
        for (const source of c.sources) {
          // A directory may lose its tests to .dockerignore, but not everything; a file named must get through.
          expect([source, delivered(source).length > 0]).toEqual([source, true]);
          expect([source, ignored(source.replace(/^\.\//, '').replace(/\/$/, ''))]).toEqual([source, undefined]);
        }
      }
    }
    // and leaves out the heavy and the local: dependencies, build output, federations, history
    for (const path of ['node_modules/x', 'dist/x', '.gpufed/test/state.json', '.git/HEAD', 'cli/src/commands/offers.test.ts']) {
      expect([path, ignored(path) !== undefined]).toEqual([path, true]);
    }
  });

  it('gives the build stage everything tsconfig.build.json compiles, and every relative import of it', () => {
    const config = ts.readConfigFile(join(root, 'tsconfig.build.json'), (p) => readFileSync(p, 'utf8'));
    const { include = [], files = [] } = config.config as { include?: string[]; files?: string[] };
    const inStage = new Set(copies(build as Stage).filter((c) => c.from === undefined).flatMap((c) => c.sources.flatMap(delivered)));
    expect(inStage.size).toBeGreaterThan(0);
    const compiled = [...include.flatMap((p) => allFiles.filter((f) => globRegExp(p).test(f) || f.startsWith(`${p}/`))), ...files].filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    expect(compiled).toContain('operator/src/main.ts');
    for (const f of compiled) expect([f, inStage.has(f)]).toEqual([f, true]);
    for (const f of compiled) {
      for (const spec of runtimeSpecifiers(read(f)).filter((s) => s.startsWith('.'))) {
        const target = posix.join(posix.dirname(f), spec).replace(/\.js$/, '.ts');
        expect([f, spec, inStage.has(target)]).toEqual([f, spec, true]);
      }
    }
    for (const name of ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json']) expect(inStage.has(name)).toBe(true);
    expect(build?.body.some((i) => i.op === 'RUN' && i.args.includes('npx tsc -p tsconfig.build.json'))).toBe(true);
  });

  it('runs the compiled operator as the entry point, with the mode as the first argument', () => {
    const entrypoint = JSON.parse(last(final.body.filter((i) => i.op === 'ENTRYPOINT')).args) as string[];
    expect(entrypoint).toEqual(['node', '/app/dist/operator/src/main.js']);
    expect(JSON.parse(last(final.body.filter((i) => i.op === 'CMD')).args)).toEqual(['--help']);
    // The entry file is under a directory the runtime stage copies from the build stage's dist/.
    const fromBuild = copies(final).filter((c) => c.from === 'build');
    const dist = fromBuild.find((c) => c.sources.length === 1 && (entrypoint[1] ?? '').startsWith(`${inImage(final, c.dest)}/`));
    expect(dist).toBeDefined();
    const inBuild = relative(workdir(build as Stage), inImage(build as Stage, dist?.sources[0] ?? ''));
    const entry = join(inBuild, relative(inImage(final, dist?.dest ?? ''), entrypoint[1] ?? ''));
    expect(entry).toBe('dist/operator/src/main.js');
    expect(existsSync(join(root, 'operator/src/main.ts'))).toBe(true);
    // `make test` builds before it tests; a bare unit run may have no dist/ yet.
    if (existsSync(join(root, 'dist'))) expect(existsSync(join(root, entry))).toBe(true);
    // The operator finds its root and version by package.json (operator/src/version.ts).
    expect(fromBuild.some((c) => inImage(final, c.dest) === workdir(final) && c.sources.some((s) => s.endsWith('/package.json')))).toBe(true);
  });

  it('installs only production dependencies for the runtime stage, from the lockfile', () => {
    const nodeModules = copies(final).find((c) => c.sources.some((s) => s.endsWith('/node_modules')));
    expect(nodeModules?.from).toBe('build');
    const prodDir = dirname(nodeModules?.sources[0] ?? '');
    const install = build?.body.find((i) => i.op === 'RUN' && i.args.includes(`cd ${prodDir}`) && /npm (install|ci) .*--omit=dev/.test(i.args));
    expect(install?.args).toMatch(/cmp package-lock\.json/); // fails the build if npm changed the lock
    expect(final.body.some((i) => i.op === 'RUN' && /npm (install|ci)/.test(i.args))).toBe(false);
  });

  it('runs as a numeric non-root user', () => {
    const user = last(final.body.filter((i) => i.op === 'USER')).args;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(user.split(':').map(Number).every((id) => id !== 0)).toBe(true);
    // and nothing after it switches back
    const after = final.body.slice(final.body.findIndex((i) => i.op === 'USER' && i.args === user));
    expect(after.filter((i) => i.op === 'USER')).toHaveLength(1);
  });

  it("exposes the metrics ports the operator's modes serve by default, and labels the image", () => {
    const ports = [...read('operator/src/operator.ts').matchAll(/'--metrics-addr <host:port>', '[^']*', '[^':]*:(\d+)'/g)].map((m) => m[1]);
    expect(ports).toHaveLength(3);
    const exposed = final.body.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/));
    expect(exposed.sort()).toEqual(ports.sort());
    const labels = final.body.filter((i) => i.op === 'LABEL').map((i) => i.args).join(' ');
    expect(labels).toContain(`org.opencontainers.image.version="${pkg.version}"`);
    expect(labels).toContain(`org.opencontainers.image.licenses="${pkg.license}"`);
    expect(labels).toContain('org.opencontainers.image.title="gpufed"');
  });
});

describe('the code the image ships', () => {
  const sources = [...filesUnder('operator/src', '.ts'), ...filesUnder('cli/src', '.ts')];
  // dist/ is what the image holds; `make test` builds it first. Without it, the sources say the same.
  const compiled = [...filesUnder('dist/operator/src', '.js'), ...filesUnder('dist/cli/src', '.js')];

  it.each([
    ['sources', sources],
    ['compiled', compiled],
  ])('imports only dependencies and Node built-ins, never a devDependency (%s)', (_what, files) => {
    const problems: string[] = [];
    for (const f of files) {
      for (const spec of runtimeSpecifiers(read(f)).filter((s) => !s.startsWith('.'))) {
        if (isBuiltin(spec)) continue;
        const name = packageName(spec);
        if (!(name in pkg.dependencies)) problems.push(`${f}: ${spec}${name in pkg.devDependencies ? ' (a devDependency)' : ' (not a dependency)'}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('keeps the operator to operator/src: it imports nothing from the CLI, tests or tools', () => {
    expect(sources.length).toBeGreaterThan(0);
    const operator = [...sources.filter((f) => f.startsWith('operator/')), ...compiled.filter((f) => f.startsWith('dist/operator/'))];
    const escapes = operator.flatMap((f) =>
      runtimeSpecifiers(read(f))
        .filter((s) => s.startsWith('.'))
        .map((s) => posix.join(posix.dirname(f), s))
        .filter((target) => !target.startsWith('operator/src/') && !target.startsWith('dist/operator/src/'))
        .map((target) => `${f} → ${target}`),
    );
    expect(escapes).toEqual([]);
  });

  it('finds imports the way the scan needs to (a check of the scanner)', () => {
    const text = ["import type { A } from 'jest';", "import { b, type C } from 'yaml';", "export { d } from './d.js';", "export type { E } from 'typescript';", "import * as k8s from '@kubernetes/client-node/dist/gen';", "await import('./operator.js');", "import {\n  x,\n} from 'pino';"].join('\n');
    expect(runtimeSpecifiers(text)).toEqual(['yaml', './d.js', '@kubernetes/client-node/dist/gen', 'pino', './operator.js']);
    expect(packageName('@kubernetes/client-node/dist/gen')).toBe('@kubernetes/client-node');
  });
});

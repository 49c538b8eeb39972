/**
 * devcluster's kubeconfig entries, read and written alongside the real
 * kubectl (/usr/bin/kubectl): kubectl sees our context and the user's
 * entries unchanged, its own writes land in the file ours do, it respects our
 * lock (and we its), and after removal it sees exactly what it saw before.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, tempDir } from '../helpers/cli.ts';
import { isError } from '../helpers/errors.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { kubeconfigMergeTarget, mergeClusterIntoKubeconfig, removeClusterFromKubeconfig } from '../../src/kube/kubeconfig-merge.ts';
import type { MergeClusterOptions } from '../../src/kube/kubeconfig-merge.ts';
import { kubeconfigLockPath, withKubeconfigLocks } from '../../src/kube/kubeconfig-lock.ts';

const KUBECTL = '/usr/bin/kubectl';
const skip = skipUnlessPresent(existsSync(KUBECTL) ? false : `${KUBECTL} is missing: install kubectl (Debian: the kubectl package from pkgs.k8s.io, or google-cloud-cli's kubectl)`);

const fixture = (name: string): string => readFileSync(join(REPO, 'test', 'fixtures', 'kubeconfig', name), 'utf8');
const OURS = { caPem: fixture('ours-ca.crt'), clientCertPem: fixture('ours-client.crt'), clientKeyPem: fixture('ours-client.key') };
const OTHER = { caPem: fixture('other-ca.crt'), clientCertPem: fixture('other-client.crt'), clientKeyPem: fixture('other-client.key') };
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const SERVER = 'https://127.0.0.1:40443';

interface Named { name: string; [k: string]: unknown }
interface View { clusters: Named[] | null; users: Named[] | null; contexts: Named[] | null; 'current-context': string; [k: string]: unknown }

let root: string;
let n = 0;
async function sandbox(): Promise<{ dir: string; home: string }> {
  const dir = join(root, `t${n++}`);
  await mkdir(join(dir, 'home'), { recursive: true });
  return { dir, home: join(dir, 'home') };
}

/** kubectl with only the environment a user's shell would give it here: HOME, PATH and, when given, KUBECONFIG. */
function kubectl(home: string, args: string[], kubeconfigEnv?: string): { code: number; stdout: string; stderr: string } {
  const env: NodeJS.ProcessEnv = { HOME: home, PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' };
  if (kubeconfigEnv !== undefined) env['KUBECONFIG'] = kubeconfigEnv;
  const r = spawnSync(KUBECTL, args, { env, encoding: 'utf8', timeout: 30_000 });
  if (r.error !== undefined) throw r.error;
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
function kubectlOk(home: string, args: string[], kubeconfigEnv?: string): string {
  const r = kubectl(home, args, kubeconfigEnv);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
function view(home: string, kubeconfig: { file: string } | { env: string }): View {
  return 'file' in kubeconfig
    ? (JSON.parse(kubectlOk(home, ['config', 'view', '--raw', '-o', 'json', '--kubeconfig', kubeconfig.file])) as View)
    : (JSON.parse(kubectlOk(home, ['config', 'view', '--raw', '-o', 'json'], kubeconfig.env)) as View);
}
const named = (list: Named[] | null, name: string): Named | undefined => (list ?? []).find((e) => e.name === name);
/** The view without the entries named name, and without current-context (compared on its own). */
function others(v: View, name: string): Record<string, unknown> {
  const drop = (l: Named[] | null) => (l ?? []).filter((e) => e.name !== name);
  return { ...v, clusters: drop(v.clusters), users: drop(v.users), contexts: drop(v.contexts), 'current-context': undefined };
}

function merge(env: NodeJS.ProcessEnv, home: string, more: Partial<MergeClusterOptions> = {}) {
  return mergeClusterIntoKubeconfig({ env, userHome: home, platform: 'linux', profile: 'devcluster', server: SERVER, ...OURS, setCurrent: true, ...more });
}
function remove(env: NodeJS.ProcessEnv, home: string, profile = 'devcluster') {
  return removeClusterFromKubeconfig({ env, userHome: home, platform: 'linux', profile, caPem: OURS.caPem });
}

/** A user's kubeconfig made by kubectl itself: embedded certificates, an exec credential plugin, a namespace; then extensions and an unknown field added by hand. */
async function usersKubeconfig(home: string, file: string, prefix = 'prod'): Promise<void> {
  const ca = join(home, `${prefix}-ca.crt`);
  await writeFile(ca, OTHER.caPem);
  kubectlOk(home, ['config', 'set-cluster', prefix, '--server=https://prod.example.test:6443', `--certificate-authority=${ca}`, '--embed-certs', '--kubeconfig', file]);
  kubectlOk(home, ['config', 'set-credentials', `${prefix}-admin`, '--exec-api-version=client.authentication.k8s.io/v1', '--exec-command=cloud-login', '--exec-arg=token', '--exec-arg=--cluster', `--exec-arg=${prefix}`, '--exec-interactive-mode=Never', '--kubeconfig', file]);
  kubectlOk(home, ['config', 'set-context', prefix, `--cluster=${prefix}`, `--user=${prefix}-admin`, '--namespace=web', '--kubeconfig', file]);
  kubectlOk(home, ['config', 'use-context', prefix, '--kubeconfig', file]);
  const text = await readFile(file, 'utf8');
  const withExtras = text
    .replace(`    server: https://prod.example.test:6443\n`, `    server: https://prod.example.test:6443\n    extensions:\n    - name: vendor.example.test\n      extension:\n        region: eu-1\n`)
    .replace(/^kind: Config\n/m, '# kept by hand\nkind: Config\nx-top-level-unknown: {anything: [1, 2, 3]}\n');
  assert.notEqual(withExtras, text);
  await writeFile(file, withExtras);
}

before(async () => {
  root = await tempDir('devcluster-kubectl-');
});
after(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
});

describe('kubeconfig merge against kubectl', { skip }, () => {
  test('kubectl sees our context, cluster and user, and the user\'s entries exactly as before', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await usersKubeconfig(home, file);
    const before = view(home, { file });
    assert.equal(named(before.users, 'prod-admin')?.['user'] !== undefined, true);

    await merge({ KUBECONFIG: file }, home);
    const afterMerge = view(home, { file });
    assert.deepEqual(named(afterMerge.contexts, 'devcluster'), { name: 'devcluster', context: { cluster: 'devcluster', user: 'devcluster' } });
    assert.deepEqual(named(afterMerge.clusters, 'devcluster'), { name: 'devcluster', cluster: { server: SERVER, 'certificate-authority-data': b64(OURS.caPem) } });
    assert.deepEqual(named(afterMerge.users, 'devcluster'), { name: 'devcluster', user: { 'client-certificate-data': b64(OURS.clientCertPem), 'client-key-data': b64(OURS.clientKeyPem) } });
    assert.deepEqual(others(afterMerge, 'devcluster'), others(before, 'devcluster'), 'the exec plugin, extensions and namespace are what kubectl read before');
    assert.match(JSON.stringify(named(afterMerge.clusters, 'prod')), /"extensions":\[\{"name":"vendor\.example\.test","extension":\{"region":"eu-1"\}\}\]/);
    assert.match(await readFile(file, 'utf8'), /# kept by hand\n[^]*x-top-level-unknown: \{anything: \[1, 2, 3\]\}/);

    assert.equal(kubectlOk(home, ['config', 'current-context', '--kubeconfig', file]).trim(), 'devcluster');
    assert.deepEqual(kubectlOk(home, ['config', 'get-contexts', '-o', 'name', '--kubeconfig', file]).trim().split('\n'), ['devcluster', 'prod']);
    const table = kubectlOk(home, ['config', 'get-contexts', '--kubeconfig', file]).trim().split('\n').map((l) => l.trim().split(/\s+/));
    assert.deepEqual(table.slice(1), [['*', 'devcluster', 'devcluster', 'devcluster'], ['prod', 'prod', 'prod-admin', 'web']]);

    // kubectl still changes the file after us, then removal leaves what kubectl saw at first
    kubectlOk(home, ['config', 'use-context', 'prod', '--kubeconfig', file]);
    const r = await remove({ KUBECONFIG: file }, home);
    assert.deepEqual(r.removed.map((x) => x.kind).sort(), ['cluster', 'context', 'user']);
    assert.deepEqual(view(home, { file }), before);
    assert.deepEqual(kubectlOk(home, ['config', 'get-contexts', '-o', 'name', '--kubeconfig', file]).trim().split('\n'), ['prod']);
  });

  test('when removal unsets current-context, kubectl has none and lists only the user\'s contexts', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await usersKubeconfig(home, file);
    await merge({ KUBECONFIG: file }, home);
    await remove({ KUBECONFIG: file }, home);
    const r = kubectl(home, ['config', 'current-context', '--kubeconfig', file]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /current-context is not set/);
    assert.deepEqual(kubectlOk(home, ['config', 'get-contexts', '-o', 'name', '--kubeconfig', file]).trim().split('\n'), ['prod']);
  });

  test('KUBECONFIG with several files, one missing: kubectl\'s merged view has ours, the files it did not need are untouched', async () => {
    const { dir, home } = await sandbox();
    const [missing, b, c] = ['missing', 'b', 'c'].map((x) => join(dir, x)) as [string, string, string];
    await usersKubeconfig(home, b, 'prod');
    await usersKubeconfig(home, c, 'staging');
    const chain = [missing, b, c].join(':');
    const cText = await readFile(c, 'utf8');
    const before = view(home, { env: chain });
    assert.equal(before['current-context'], 'prod');

    const r = await merge({ KUBECONFIG: chain }, home);
    assert.deepEqual(r.written, [b]);
    const merged = view(home, { env: chain });
    assert.equal(named(merged.contexts, 'devcluster')?.['context'] !== undefined, true);
    assert.deepEqual(others(merged, 'devcluster'), others(before, 'devcluster'));
    assert.equal(kubectlOk(home, ['config', 'current-context'], chain).trim(), 'devcluster');
    assert.deepEqual(kubectlOk(home, ['config', 'get-contexts', '-o', 'name'], chain).trim().split('\n'), ['devcluster', 'prod', 'staging']);
    assert.equal(await readFile(c, 'utf8'), cText);
    assert.equal(existsSync(missing), false);

    const removed = await remove({ KUBECONFIG: chain }, home);
    assert.deepEqual(removed.currentContextUnset, [b]);
    // b's own current-context ("prod") was replaced by ours at merge and is not brought back: with it unset,
    // kubectl takes the next file's ("staging"). Everything else is what kubectl saw before.
    const afterRemove = view(home, { env: chain });
    assert.equal(afterRemove['current-context'], 'staging');
    assert.deepEqual({ ...afterRemove, 'current-context': 'prod' }, before);
    assert.equal(await readFile(c, 'utf8'), cText);
  });

  test('a new entry goes to the file kubectl creates one in, for every layout of existing and missing files', async () => {
    const { dir, home } = await sandbox();
    const names = ['a', 'b', 'c'];
    for (let mask = 0; mask < 8; mask++) {
      const here = join(dir, `layout-${mask}`);
      await mkdir(here);
      const paths = names.map((x) => join(here, x));
      for (const [i, p] of paths.entries()) if ((mask & (1 << i)) !== 0) await writeFile(p, '');
      for (const chain of [paths.join(':'), paths[1] ?? '']) {
        const ours = await kubeconfigMergeTarget({ KUBECONFIG: chain }, home, 'linux');
        const existedBefore = paths.map((p) => existsSync(p) ? readFileSync(p, 'utf8') : undefined);
        kubectlOk(home, ['config', 'set-context', 'probe', '--cluster=x'], chain);
        const changed = paths.filter((p, i) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined) !== existedBefore[i]);
        assert.deepEqual(changed, [ours], `layout ${mask.toString(2).padStart(3, '0')}, KUBECONFIG=${chain}`);
        kubectlOk(home, ['config', 'delete-context', 'probe'], chain);
      }
    }
    // without KUBECONFIG kubectl writes ~/.kube/config, as we do
    assert.equal(await kubeconfigMergeTarget({}, home, 'linux'), join(home, '.kube', 'config'));
    kubectlOk(home, ['config', 'set-context', 'probe', '--cluster=x']);
    assert.ok(existsSync(join(home, '.kube', 'config')));
  });

  test('one lock for both: kubectl refuses to write while we hold <file>.lock, and we wait out a kubectl-style lock', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await usersKubeconfig(home, file);
    await withKubeconfigLocks([file], {}, async () => {
      const r = kubectl(home, ['config', 'set-context', 'blocked', '--cluster=x', '--kubeconfig', file]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, new RegExp(`${kubeconfigLockPath(file).replace(/[.]/g, '\\.')}: file exists`));
    });
    assert.equal(existsSync(kubeconfigLockPath(file)), false);
    kubectlOk(home, ['config', 'set-context', 'allowed', '--cluster=x', '--kubeconfig', file]);

    await writeFile(kubeconfigLockPath(file), '');
    await assert.rejects(merge({ KUBECONFIG: file }, home, { lock: { waitMs: 100 } }), isError('KUBECONFIG_LOCKED'));
    assert.equal(named(view(home, { file }).contexts, 'devcluster'), undefined);
  });

  test('an empty file is merged into; a file kubectl refuses is refused too and left as it is', async () => {
    const { dir, home } = await sandbox();
    const empty = join(dir, 'empty');
    await writeFile(empty, '');
    await merge({ KUBECONFIG: empty }, home);
    assert.equal(kubectlOk(home, ['config', 'current-context', '--kubeconfig', empty]).trim(), 'devcluster');

    const broken = join(dir, 'broken');
    const text = 'clusters:\n- name: x\n  cluster: {server: [\n';
    await writeFile(broken, text);
    assert.notEqual(kubectl(home, ['config', 'view', '--kubeconfig', broken]).code, 0, 'kubectl refuses it');
    await assert.rejects(merge({ KUBECONFIG: broken }, home), isError('KUBECONFIG_UNUSABLE'));
    assert.equal(await readFile(broken, 'utf8'), text);
  });

  test('20 devcluster processes merging at once into one file: every entry is there and kubectl reads the file', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await usersKubeconfig(home, file);
    const before = view(home, { file });
    const mergeModule = join(REPO, 'src', 'kube', 'kubeconfig-merge.ts');
    const writers = Array.from({ length: 20 }, (_, i) => {
      const child = spawn(process.execPath, ['--input-type=module', '-e', `
        import { mergeClusterIntoKubeconfig } from ${JSON.stringify(mergeModule)};
        const [server, caPem, clientCertPem, clientKeyPem] = JSON.parse(process.argv[1]);
        await mergeClusterIntoKubeconfig({ env: { KUBECONFIG: ${JSON.stringify(file)} }, userHome: ${JSON.stringify(home)}, profile: 'p-${i}', server, caPem, clientCertPem, clientKeyPem, setCurrent: ${i % 2 === 0}, lock: { waitMs: 120000 } });
      `, JSON.stringify([`https://127.0.0.1:${41000 + i}`, OURS.caPem, OURS.clientCertPem, OURS.clientKeyPem])], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      return once(child, 'close').then(([code]) => ({ code: code as number, stderr }));
    });
    const results = await Promise.all(writers);
    assert.deepEqual(results.filter((r) => r.code !== 0), []);
    const after = view(home, { file });
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(named(after.contexts, `p-${i}`)?.['context'], { cluster: `p-${i}`, user: `p-${i}` });
      assert.equal((named(after.clusters, `p-${i}`)?.['cluster'] as { server?: string } | undefined)?.server, `https://127.0.0.1:${41000 + i}`);
      assert.ok(named(after.users, `p-${i}`) !== undefined);
    }
    assert.equal(after.contexts?.length, 21);
    assert.match(after['current-context'], /^p-\d+$/);
    assert.deepEqual(named(after.contexts, 'prod'), named(before.contexts, 'prod'));
    assert.equal(existsSync(kubeconfigLockPath(file)), false);
    const files = execFileSync('ls', ['-a', dir], { encoding: 'utf8' }).trim().split('\n').sort();
    assert.deepEqual(files, ['.', '..', 'config', 'home'], 'no temporary or lock file left');
  });
});

/**
 * Merging devcluster's cluster, user and context into kubeconfig files, and
 * removing them: real files in a temporary directory, YAML compared as text
 * and as data. kubectl itself reads the results in
 * test/contract/kube-kubeconfig-kubectl.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, lstat, mkdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO, snapshotTree, tempDir } from '../helpers/cli.ts';
import { isError } from '../helpers/errors.ts';
import { kubeconfigEntryNames, kubeconfigMergeTarget, mergeClusterIntoKubeconfig, removeClusterFromKubeconfig } from '../../src/kube/kubeconfig-merge.ts';
import type { MergeClusterOptions } from '../../src/kube/kubeconfig-merge.ts';
import { kubeconfigLockPath } from '../../src/kube/kubeconfig-lock.ts';

const fixture = (name: string): string => readFileSync(join(REPO, 'test', 'fixtures', 'kubeconfig', name), 'utf8');
const OURS = { caPem: fixture('ours-ca.crt'), clientCertPem: fixture('ours-client.crt'), clientKeyPem: fixture('ours-client.key') };
const OTHER = { caPem: fixture('other-ca.crt'), clientCertPem: fixture('other-client.crt'), clientKeyPem: fixture('other-client.key') };
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const SERVER = 'https://127.0.0.1:40443';

/** A kubeconfig a user keeps: comments, fields devcluster does not know, an exec plugin, extensions, flow style. */
const USERS_FILE = `# my clusters: keep this comment
apiVersion: v1
kind: Config
preferences: {}
clusters:
- cluster:
    server: https://prod.example.test:6443 # the prod API
    certificate-authority-data: ${b64(OTHER.caPem)}
    x-vendor-field: keep-me
    extensions:
    - name: vendor.example.test
      extension: {region: eu-1}
  name: prod
contexts:
- context: {cluster: prod, user: prod-admin, namespace: web}
  name: prod
current-context: prod
users:
- name: prod-admin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: cloud-login
      args: [token, --cluster, prod]
      interactiveMode: Never
x-top-level-unknown:
  anything: [1, 2, 3]
`;

type Kube = Record<string, unknown> & { clusters?: Named[]; users?: Named[]; contexts?: Named[]; 'current-context'?: string };
type Named = { name: string } & Record<string, unknown>;

function without(k: Kube, name: string): Kube {
  const drop = (l: Named[] | undefined) => (l ?? []).filter((e) => e.name !== name);
  return { ...k, clusters: drop(k.clusters), users: drop(k.users), contexts: drop(k.contexts) };
}
const entry = (k: Kube, list: 'clusters' | 'users' | 'contexts', name: string) => (k[list] ?? []).find((e) => e.name === name);

let root: string;
let n = 0;
/** A fresh directory per test, with an empty home. */
async function sandbox(): Promise<{ dir: string; home: string }> {
  const dir = join(root, `t${n++}`);
  await mkdir(join(dir, 'home'), { recursive: true });
  return { dir, home: join(dir, 'home') };
}
function merge(env: NodeJS.ProcessEnv, home: string, more: Partial<MergeClusterOptions> = {}) {
  return mergeClusterIntoKubeconfig({ env, userHome: home, platform: 'linux', profile: 'devcluster', server: SERVER, ...OURS, setCurrent: true, ...more });
}
function remove(env: NodeJS.ProcessEnv, home: string, profile = 'devcluster') {
  return removeClusterFromKubeconfig({ env, userHome: home, platform: 'linux', profile, caPem: OURS.caPem });
}
const readYaml = async (p: string): Promise<Kube> => parse(await readFile(p, 'utf8')) as Kube;

before(async () => {
  root = await tempDir('devcluster-kubeconfig-');
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('which file a new entry goes to (kubectl config rules)', () => {
  test('without KUBECONFIG: ~/.kube/config; with one entry: that one, existing or not', async () => {
    const { dir, home } = await sandbox();
    assert.equal(await kubeconfigMergeTarget({}, home, 'linux'), join(home, '.kube', 'config'));
    assert.equal(await kubeconfigMergeTarget({ KUBECONFIG: '   ' }, home, 'linux'), join(home, '.kube', 'config'));
    assert.equal(await kubeconfigMergeTarget({ KUBECONFIG: join(dir, 'missing') }, home, 'linux'), join(dir, 'missing'));
  });

  test('with several: the first that exists, else the LAST; empty entries and repeats are dropped', async () => {
    const { dir, home } = await sandbox();
    const [a, b, c] = ['a', 'b', 'c'].map((x) => join(dir, x)) as [string, string, string];
    assert.equal(await kubeconfigMergeTarget({ KUBECONFIG: `${a}::${b}:${c}:` }, home, 'linux'), c);
    await writeFile(c, '');
    await writeFile(b, '');
    assert.equal(await kubeconfigMergeTarget({ KUBECONFIG: `${a}:${c}:${b}:${a}` }, home, 'linux'), c);
    assert.equal(await kubeconfigMergeTarget({ KUBECONFIG: `${a}:${b}:${c}` }, home, 'linux'), b);
  });

  test('Windows splits on ";" (a drive letter\'s ":" is part of the path)', async () => {
    const { home } = await sandbox();
    assert.equal(await kubeconfigMergeTarget({ KUBECONFIG: 'C:\\nope\\a;D:\\nope\\b' }, home, 'win32'), 'D:\\nope\\b');
  });

  test('entries are named after the profile', () => {
    assert.deepEqual(kubeconfigEntryNames('devcluster'), { cluster: 'devcluster', user: 'devcluster', context: 'devcluster' });
    assert.deepEqual(kubeconfigEntryNames('dev-2'), { cluster: 'dev-2', user: 'dev-2', context: 'dev-2' });
    assert.throws(() => kubeconfigEntryNames('Bad Name'), isError('PROFILE_INVALID_NAME'));
  });
});

describe('merging', () => {
  test('a new ~/.kube/config: our three entries, embedded certificates, current-context, mode 0600', async () => {
    const { home } = await sandbox();
    const r = await merge({}, home);
    const file = join(home, '.kube', 'config');
    assert.deepEqual(r.written, [file]);
    assert.deepEqual(r.entries.map((e) => [e.kind, e.name, e.action, e.file]), [
      ['cluster', 'devcluster', 'created', file],
      ['user', 'devcluster', 'created', file],
      ['context', 'devcluster', 'created', file],
    ]);
    const k = await readYaml(file);
    assert.equal(k['apiVersion'], 'v1');
    assert.equal(k['kind'], 'Config');
    assert.equal(k['current-context'], 'devcluster');
    assert.deepEqual(entry(k, 'clusters', 'devcluster'), { name: 'devcluster', cluster: { server: SERVER, 'certificate-authority-data': b64(OURS.caPem) } });
    assert.deepEqual(entry(k, 'users', 'devcluster'), { name: 'devcluster', user: { 'client-certificate-data': b64(OURS.clientCertPem), 'client-key-data': b64(OURS.clientKeyPem) } });
    assert.deepEqual(entry(k, 'contexts', 'devcluster'), { name: 'devcluster', context: { cluster: 'devcluster', user: 'devcluster' } });
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(existsSync(kubeconfigLockPath(file)), false, 'the lock is removed');
  });

  test('the user\'s file keeps its comments, unknown fields, other entries and their order', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await writeFile(file, USERS_FILE);
    await merge({ KUBECONFIG: file }, home, { setCurrent: false });
    const text = await readFile(file, 'utf8');
    assert.ok(text.startsWith('# my clusters: keep this comment\napiVersion: v1\n'), text);
    assert.match(text, /server: https:\/\/prod\.example\.test:6443 # the prod API\n/);
    assert.match(text, /- context: \{cluster: prod, user: prod-admin, namespace: web\}\n/, 'flow style stays flow, unpadded as written');
    assert.deepEqual(without(await readYaml(file), 'devcluster'), without(parse(USERS_FILE) as Kube, 'devcluster'));
    assert.deepEqual(Object.keys(await readYaml(file)), Object.keys(parse(USERS_FILE) as Kube), 'no top-level field added, removed or moved');
    assert.equal((await readYaml(file))['current-context'], 'prod', 'setCurrent: false leaves current-context alone');
  });

  test('a second merge with the same input changes nothing, byte for byte', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await writeFile(file, USERS_FILE);
    await merge({ KUBECONFIG: file }, home);
    const first = await readFile(file, 'utf8');
    const again = await merge({ KUBECONFIG: file }, home);
    assert.deepEqual(again.written, []);
    assert.deepEqual(again.entries.map((e) => e.action), ['unchanged', 'unchanged', 'unchanged']);
    assert.equal(await readFile(file, 'utf8'), first);
  });

  test('a new address updates only the server, in place, and keeps fields the user added to our entries', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await merge({ KUBECONFIG: file }, home);
    const k = await readYaml(file);
    (entry(k, 'contexts', 'devcluster')?.['context'] as Record<string, unknown>)['namespace'] = 'team-a';
    (entry(k, 'clusters', 'devcluster')?.['cluster'] as Record<string, unknown>)['tls-server-name'] = 'control-plane.devcluster';
    const { stringify } = await import('yaml');
    await writeFile(file, stringify(k));
    const r = await merge({ KUBECONFIG: file }, home, { server: 'https://192.168.64.9:6443' });
    assert.deepEqual(r.entries.map((e) => e.action), ['updated', 'unchanged', 'unchanged']);
    const after = await readYaml(file);
    assert.deepEqual(entry(after, 'clusters', 'devcluster')?.['cluster'], { server: 'https://192.168.64.9:6443', 'certificate-authority-data': b64(OURS.caPem), 'tls-server-name': 'control-plane.devcluster' });
    assert.equal((entry(after, 'contexts', 'devcluster')?.['context'] as Record<string, unknown>)['namespace'], 'team-a');
    assert.equal(after.clusters?.length, 1);
  });

  test('a same-named entry of the user\'s is replaced, says so, and loses only the fields that contradict ours', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await writeFile(file, `clusters:
- name: devcluster
  cluster: {server: "https://10.0.0.1", certificate-authority: /etc/ca.pem, insecure-skip-tls-verify: true, proxy-url: "http://127.0.0.1:3128"}
users:
- name: devcluster
  user: {token: secret, client-certificate-data: ${b64(OTHER.clientCertPem)}}
`);
    const r = await merge({ KUBECONFIG: file }, home);
    assert.deepEqual(r.entries.map((e) => e.action), ['replaced', 'replaced', 'created']);
    const k = await readYaml(file);
    assert.deepEqual(entry(k, 'clusters', 'devcluster')?.['cluster'], { server: SERVER, 'proxy-url': 'http://127.0.0.1:3128', 'certificate-authority-data': b64(OURS.caPem) });
    assert.deepEqual(entry(k, 'users', 'devcluster')?.['user'], { 'client-certificate-data': b64(OURS.clientCertPem), 'client-key-data': b64(OURS.clientKeyPem) });
  });

  test('empty, comment-only and "null lists" files (as kubectl writes them) are merged into', async () => {
    const { dir, home } = await sandbox();
    for (const [name, text] of [['empty', ''], ['comment', '# only a comment\n'], ['nulls', 'apiVersion: v1\nclusters: null\ncontexts: []\ncurrent-context: ""\nkind: Config\npreferences: {}\nusers: null\n']] as const) {
      const file = join(dir, name);
      await writeFile(file, text);
      await merge({ KUBECONFIG: file }, home);
      const out = await readFile(file, 'utf8');
      const k = parse(out) as Kube;
      assert.equal(k['current-context'], 'devcluster', name);
      assert.equal(entry(k, 'contexts', 'devcluster')?.name, 'devcluster', name);
      assert.equal(k.clusters?.length, 1, name);
      if (name === 'comment') assert.ok(out.startsWith('# only a comment\n'), out);
      assert.doesNotMatch(out, /contexts: \[/, `${name}: an empty flow list becomes a block list`);
    }
  });

  test('sequence indentation and CRLF line ends stay as the file has them', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await writeFile(file, 'apiVersion: v1\r\nkind: Config\r\nclusters:\r\n  - name: a\r\n    cluster: {server: "https://a"}\r\n');
    await merge({ KUBECONFIG: file }, home);
    const text = await readFile(file, 'utf8');
    assert.doesNotMatch(text, /[^\r]\n/, 'every line ends in CRLF');
    assert.match(text, /\r\nclusters:\r\n {2}- name: a\r\n/);
    assert.match(text, /\r\n {2}- name: devcluster\r\n/);
  });

  test('mode: 0644 becomes 0600, a stricter 0400 stays; a symlinked kubeconfig stays a symlink', async () => {
    const { dir, home } = await sandbox();
    const loose = join(dir, 'loose');
    const strict = join(dir, 'strict');
    await writeFile(loose, '');
    await chmod(loose, 0o644);
    await writeFile(strict, '');
    await chmod(strict, 0o400);
    await merge({ KUBECONFIG: loose }, home);
    await merge({ KUBECONFIG: strict }, home);
    assert.equal((await stat(loose)).mode & 0o777, 0o600);
    assert.equal((await stat(strict)).mode & 0o777, 0o400);

    const real = join(dir, 'dotfiles-config');
    const link = join(dir, 'link');
    await writeFile(real, USERS_FILE);
    await symlink(real, link);
    await merge({ KUBECONFIG: link }, home);
    assert.ok((await lstat(link)).isSymbolicLink());
    assert.equal(await readlink(link), real);
    assert.equal(entry(await readYaml(real), 'contexts', 'devcluster')?.name, 'devcluster');
  });

  test('several KUBECONFIG files, some missing: new entries and current-context go to the first that exists, an existing entry is updated where it is', async () => {
    const { dir, home } = await sandbox();
    const [missing, a, b] = ['missing', 'a', 'b'].map((x) => join(dir, x)) as [string, string, string];
    await writeFile(a, USERS_FILE);
    // b already holds devcluster's user (an earlier start wrote it there), and a current-context kubectl reads after a's
    await writeFile(b, `apiVersion: v1\nkind: Config\ncurrent-context: old\nusers:\n- name: devcluster\n  user: {client-certificate-data: ${b64(OURS.clientCertPem)}, client-key-data: ${b64(OURS.clientKeyPem)}}\n`);
    const bBefore = await readFile(b, 'utf8');
    const r = await merge({ KUBECONFIG: [missing, a, b].join(':') }, home);
    assert.deepEqual(r.entries.map((e) => [e.kind, e.file, e.action]), [
      ['cluster', a, 'created'],
      ['user', b, 'unchanged'],
      ['context', a, 'created'],
    ]);
    assert.equal(r.currentContextFile, a);
    assert.deepEqual(r.written, [a]);
    assert.equal(await readFile(b, 'utf8'), bBefore);
    assert.equal(existsSync(missing), false, 'a missing file is not created when another exists');
    const ka = await readYaml(a);
    assert.equal(ka['current-context'], 'devcluster');
    assert.equal(entry(ka, 'users', 'devcluster'), undefined, 'no second user entry');
  });

  test('with no KUBECONFIG file existing, the last one is created (and its directory)', async () => {
    const { dir, home } = await sandbox();
    const first = join(dir, 'x', 'first');
    const last = join(dir, 'y', 'last');
    const r = await merge({ KUBECONFIG: `${first}:${last}` }, home);
    assert.deepEqual(r.written, [last]);
    assert.equal(existsSync(join(dir, 'x')), false);
    assert.equal((await readYaml(last))['current-context'], 'devcluster');
  });
});

describe('refusals change nothing', () => {
  test('a file that is not YAML or not a kubeconfig, as the target or elsewhere in KUBECONFIG', async () => {
    const { dir, home } = await sandbox();
    const good = join(dir, 'good');
    await writeFile(good, USERS_FILE);
    for (const bad of ['clusters: [\n', '- a list\n', 'users: {name: x}\n', 'a: 1\n---\nb: 2\n']) {
      const broken = join(dir, 'broken');
      await writeFile(broken, bad);
      for (const chain of [broken, `${good}:${broken}`]) {
        const before = await snapshotTree(dir);
        await assert.rejects(merge({ KUBECONFIG: chain }, home), isError('KUBECONFIG_UNUSABLE', (e) => {
          assert.match(e.message, new RegExp(`^${broken} cannot be used: not (valid YAML|a kubeconfig)`));
          assert.match(e.advice ?? '', /No kubeconfig file was changed/);
        }));
        await assert.rejects(remove({ KUBECONFIG: chain }, home), isError('KUBECONFIG_UNUSABLE'));
        assert.deepEqual(await snapshotTree(dir), before, `${JSON.stringify(bad)} in ${chain}: no file changed, no lock left`);
      }
    }
  });

  test('malformed entry input is refused before any file or directory is made', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'sub', 'config');
    const cases: Array<[Partial<MergeClusterOptions>, string, RegExp]> = [
      [{ server: 'http://127.0.0.1:6443' }, 'KUBECONFIG_ENTRY_INVALID', /not an https:\/\/host\[:port\] URL/],
      [{ server: '127.0.0.1:6443' }, 'KUBECONFIG_ENTRY_INVALID', /is not an https|is not a URL/],
      [{ caPem: 'not a certificate' }, 'KUBECONFIG_ENTRY_INVALID', /CA certificate is not a PEM certificate/],
      [{ clientCertPem: OTHER.clientCertPem, clientKeyPem: OTHER.clientKeyPem }, 'KUBECONFIG_ENTRY_INVALID', /was not issued by the CA/],
      [{ clientKeyPem: OTHER.clientKeyPem }, 'KUBECONFIG_ENTRY_INVALID', /does not belong to the client certificate/],
      [{ clientKeyPem: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }, 'KUBECONFIG_ENTRY_INVALID', /client key is not a PEM private key/],
      [{ profile: '../x' }, 'PROFILE_INVALID_NAME', /not a valid profile name/],
    ];
    for (const [more, id, message] of cases) {
      await assert.rejects(merge({ KUBECONFIG: file }, home, more), isError(id, (e) => assert.match(e.message, message)));
    }
    assert.equal(existsSync(join(dir, 'sub')), false);
  });
});

describe('the lock (<file>.lock, as kubectl takes it)', () => {
  test('a lock that stays taken: a clear error after the bounded wait, the file and the other program\'s lock untouched', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await writeFile(file, USERS_FILE);
    await writeFile(kubeconfigLockPath(file), '');
    const before = await snapshotTree(dir);
    const waited: string[] = [];
    await assert.rejects(merge({ KUBECONFIG: file }, home, { lock: { waitMs: 200, pollMs: 20, onWait: (l) => waited.push(l) } }), isError('KUBECONFIG_LOCKED', (e) => {
      assert.match(e.message, new RegExp(`^${file}\\.lock stayed locked for 200ms \\(created \\d`));
      assert.match(e.advice ?? '', new RegExp(`remove ${file}\\.lock`));
    }));
    assert.deepEqual(waited, [kubeconfigLockPath(file)]);
    assert.deepEqual(await snapshotTree(dir), before);
  });

  test('every file kubectl reads is locked: a lock on another KUBECONFIG file blocks too, and locks taken first are released', async () => {
    const { dir, home } = await sandbox();
    const [a, b] = [join(dir, 'a'), join(dir, 'b')];
    await writeFile(a, '');
    await writeFile(b, '');
    await writeFile(kubeconfigLockPath(b), '');
    await assert.rejects(merge({ KUBECONFIG: `${a}:${b}` }, home, { lock: { waitMs: 0 } }), isError('KUBECONFIG_LOCKED'));
    assert.equal(existsSync(kubeconfigLockPath(a)), false, 'a.lock, taken first, was released');
    assert.equal(await readFile(a, 'utf8'), '');
  });

  test('another process holding the lock: the merge waits for it, then writes', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await writeFile(file, USERS_FILE);
    const lockModule = join(REPO, 'src', 'kube', 'kubeconfig-lock.ts');
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `
      import { withKubeconfigLocks } from ${JSON.stringify(lockModule)};
      await withKubeconfigLocks([${JSON.stringify(file)}], {}, async () => {
        process.stdout.write('held\\n');
        await new Promise((resolve) => process.stdin.once('data', resolve));
      });
      process.stdout.write('released\\n');
    `], { stdio: ['pipe', 'pipe', 'inherit'] });
    const closed = once(holder, 'close');
    const lines: string[] = [];
    holder.stdout.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n').filter((l) => l !== '')));
    while (!lines.includes('held')) await once(holder.stdout, 'data');
    assert.ok(existsSync(kubeconfigLockPath(file)));

    let waiting: () => void = () => {};
    const onWait = new Promise<void>((resolve) => (waiting = resolve));
    const merging = merge({ KUBECONFIG: file }, home, { lock: { waitMs: 60_000, onWait: () => waiting() } });
    await onWait;
    assert.equal(await readFile(file, 'utf8'), USERS_FILE, 'nothing is written while the other process holds the lock');
    holder.stdin.end('go\n');
    const r = await merging;
    const [code] = (await closed) as [number];
    assert.equal(code, 0);
    assert.deepEqual(lines, ['held', 'released']);
    assert.deepEqual(r.written, [file]);
    assert.equal(entry(await readYaml(file), 'contexts', 'devcluster')?.name, 'devcluster');
    assert.equal(existsSync(kubeconfigLockPath(file)), false);
  });
});

describe('removing', () => {
  test('merge then remove gives back the user\'s file, byte for byte except current-context', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    await writeFile(file, USERS_FILE);
    await merge({ KUBECONFIG: file }, home, { setCurrent: false });
    const r = await remove({ KUBECONFIG: file }, home);
    assert.deepEqual(r.removed.map((x) => x.kind).sort(), ['cluster', 'context', 'user']);
    assert.deepEqual(r.leftAlone, []);
    assert.deepEqual(r.currentContextUnset, [], 'current-context was the user\'s "prod"');
    assert.deepEqual(await readYaml(file), parse(USERS_FILE));
    assert.match(await readFile(file, 'utf8'), /^# my clusters: keep this comment\n/);

    await merge({ KUBECONFIG: file }, home, { setCurrent: true });
    const r2 = await remove({ KUBECONFIG: file }, home);
    assert.deepEqual(r2.currentContextUnset, [file]);
    const k = await readYaml(file);
    assert.equal(k['current-context'], undefined);
    assert.deepEqual({ ...k, 'current-context': 'prod' }, parse(USERS_FILE));
  });

  test('a user\'s own entries with our names are left alone, said so, and their current-context kept', async () => {
    const { dir, home } = await sandbox();
    const file = join(dir, 'config');
    const theirs = `apiVersion: v1
kind: Config
current-context: devcluster
clusters:
- name: devcluster
  cluster: {server: "${SERVER}", certificate-authority-data: ${b64(OTHER.caPem)}}
users:
- name: devcluster
  user: {client-certificate-data: ${b64(OTHER.clientCertPem)}, client-key-data: ${b64(OTHER.clientKeyPem)}}
contexts:
- name: devcluster
  context: {cluster: devcluster, user: devcluster}
`;
    await writeFile(file, theirs);
    const r = await remove({ KUBECONFIG: file }, home);
    assert.deepEqual(r.removed, []);
    assert.deepEqual(r.written, []);
    assert.deepEqual(r.currentContextUnset, []);
    assert.deepEqual(r.leftAlone.map((x) => [x.kind, x.reason]), [
      ['context', 'the cluster and user it points at are not devcluster\'s'],
      ['cluster', 'its certificate-authority-data is not this profile\'s CA'],
      ['user', 'its client certificate was not issued by this profile\'s CA'],
    ]);
    assert.equal(await readFile(file, 'utf8'), theirs);
  });

  test('across KUBECONFIG files: ours is removed wherever it is, a user\'s same-named context elsewhere stays', async () => {
    const { dir, home } = await sandbox();
    const [a, b] = [join(dir, 'a'), join(dir, 'b')];
    await writeFile(a, USERS_FILE);
    await merge({ KUBECONFIG: b }, home);
    // the user's own context "devcluster" pointing at their prod cluster, in the first file
    await writeFile(a, `${USERS_FILE.replace('current-context: prod', 'current-context: devcluster')}`.replace('contexts:\n', 'contexts:\n- name: devcluster\n  context: {cluster: prod, user: prod-admin}\n'));
    const aBefore = await readFile(a, 'utf8');
    const r = await remove({ KUBECONFIG: `${a}:${b}` }, home);
    assert.deepEqual(r.removed.map((x) => [x.kind, x.file]), [['context', b], ['cluster', b], ['user', b]]);
    assert.deepEqual(r.leftAlone.map((x) => [x.kind, x.file]), [['context', a]]);
    assert.match(r.leftAlone[0]?.reason ?? '', /points at cluster "prod" and user "prod-admin"/);
    assert.deepEqual(r.currentContextUnset, [], 'a "devcluster" context remains, so current-context still names something real');
    assert.equal(await readFile(a, 'utf8'), aBefore);
    const kb = await readYaml(b);
    assert.deepEqual([kb.clusters, kb.users, kb.contexts], [[], [], []]);
  });

  test('nothing to remove: no file is created, and a repeated remove is a no-op', async () => {
    const { dir, home } = await sandbox();
    const before = await snapshotTree(dir);
    const r = await remove({}, home);
    assert.deepEqual(r, { removed: [], leftAlone: [], currentContextUnset: [], written: [] });
    assert.deepEqual(await snapshotTree(dir), before);
    await merge({}, home, { profile: 'dev-2' });
    await remove({}, home, 'dev-2');
    const again = await remove({}, home, 'dev-2');
    assert.deepEqual(again.written, []);
    assert.ok(existsSync(join(home, '.kube', 'config')), 'the file stays, even empty');
  });
});

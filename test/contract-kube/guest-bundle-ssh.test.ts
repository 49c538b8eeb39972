/**
 * The guest side of the bundle install, run over a real SSH session against
 * a real sshd on 127.0.0.1, with real sudo, blkid and mount: files written as
 * root in one command, only when they changed; the bundle medium found by its
 * label on a read-only loop device, and missed when absent. Needs root (loop
 * devices), like the guest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureBundleMedium, BUNDLE_MEDIUM_LABEL } from '../../src/kube/bundle-medium.ts';
import type { BundleManifest } from '../../src/kube/bundle-manifest.ts';
import { GUEST_MEDIUM_MOUNT, mountBundleMedium, writeGuestFiles } from '../../src/kube/guest-bundle.ts';
import { ensureProfileKeys } from '../../src/ssh/keys.ts';
import { connect } from '../../src/ssh/session.ts';
import type { SshSession } from '../../src/ssh/session.ts';
import { tempDir } from '../helpers/cli.ts';
import { rejectsWith } from '../helpers/errors.ts';
import { skipUnlessPresent } from '../helpers/prerequisite.ts';
import { sshdMissing, startSshd } from '../integration/ssh-server.ts';
import type { SshServer } from '../integration/ssh-server.ts';

const missing = sshdMissing() || (process.getuid?.() !== 0 ? 'needs root: loop devices and mounts' : undefined) || (existsSync('/usr/bin/sudo') ? undefined : '/usr/bin/sudo is missing: install the Debian package sudo');
const skip = skipUnlessPresent(missing);

const isMounted = (): boolean => spawnSync('mountpoint', ['-q', GUEST_MEDIUM_MOUNT]).status === 0;
const labelled = (): string => spawnSync('blkid', ['-L', BUNDLE_MEDIUM_LABEL], { encoding: 'utf8' }).stdout.trim();

describe('the guest side of the bundle install, over SSH', { skip }, () => {
  let dir: string;
  let server: SshServer;
  let ssh: SshSession;
  let loop: string | undefined;

  before(async () => {
    dir = await tempDir('guest-bundle-ssh-');
    const keys = await ensureProfileKeys(join(dir, 'keys'));
    server = await startSshd({ hostKeyPath: keys.hostPrivateKeyPath, authorizedKeys: `${keys.clientPublicKey}\n` });
    ssh = await connect({ host: server.host, port: server.port, username: server.user, privateKeyPath: keys.clientPrivateKeyPath, expectedHostKey: keys.hostPublicKey, readyTimeoutMs: 20_000 });
  });

  after(async () => {
    if (isMounted()) spawnSync('umount', [GUEST_MEDIUM_MOUNT]);
    if (loop !== undefined) spawnSync('losetup', ['-d', loop]);
    ssh?.dispose();
    await server?.stop();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  test('writes only the files that differ, as root, with their modes, in one command', async () => {
    const root = join(dir, 'etc');
    const files = [
      { path: join(root, 'a', 'b', 'config.toml'), content: 'version = 3\n[plugins."io.containerd.cri.v1.runtime"]\n', mode: 0o644 },
      { path: join(root, 'pki', 'ca.key'), content: '-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n', mode: 0o600 },
      { path: join(root, 'odd'), content: "quotes ' \" $HOME `x` \\ and ü\nno newline at the end", mode: 0o755 },
    ];
    assert.deepEqual(await writeGuestFiles(ssh, files), files.map((f) => f.path));
    for (const f of files) {
      assert.equal(readFileSync(f.path, 'utf8'), f.content, f.path);
      assert.equal(statSync(f.path).mode & 0o7777, f.mode, f.path);
    }
    assert.deepEqual(await writeGuestFiles(ssh, files), [], 'nothing changed, nothing written');
    const changed = [files[0], { ...files[1], content: 'another key\n' } as (typeof files)[number], files[2]] as typeof files;
    assert.deepEqual(await writeGuestFiles(ssh, changed), [files[1]?.path]);
    assert.equal(readFileSync(files[1]?.path as string, 'utf8'), 'another key\n');
  });

  // Mounting needs the kernel's iso9660 driver, which this machine's kernel
  // lacks (and cannot load); the mount itself runs in the e2e's real guest.
  test('finds the medium by its label on a read-only block device, and says so when there is none', async () => {
    assert.equal(labelled(), '', `a device labelled ${BUNDLE_MEDIUM_LABEL} already exists on this machine`);
    const missingMedium = await rejectsWith(mountBundleMedium(ssh, { label: BUNDLE_MEDIUM_LABEL, manifestSha256: 'f'.repeat(64) }), 'KUBE_BUNDLE_MEDIUM_MISSING');
    assert.match(missingMedium.message, /no disk labelled devcluster-kube/);
    assert.equal(isMounted(), false);

    const bundleDir = join(dir, 'bundle');
    mkdirSync(join(bundleDir, 'bin'), { recursive: true });
    writeFileSync(join(bundleDir, 'bin', 'kubeadm'), 'kubeadm bytes');
    const manifest: BundleManifest = {
      schemaVersion: 1, kubernetesVersion: 'v1.37.2', platform: { os: 'linux', architecture: 'amd64' }, components: {}, images: [],
      files: [{ path: 'bin/kubeadm', size: 13, mode: '0755', sha256: createHash('sha256').update('kubeadm bytes').digest('hex') }],
    };
    writeFileSync(join(bundleDir, 'manifest.json'), JSON.stringify(manifest));
    const manifestSha256 = createHash('sha256').update(JSON.stringify(manifest)).digest('hex');
    const medium = await ensureBundleMedium(join(dir, 'home'), { dir: bundleDir, manifest, manifestSha256 });
    loop = execFileSync('losetup', ['--find', '--show', '--read-only', medium.path], { encoding: 'utf8' }).trim();
    // The same lookup mountBundleMedium runs, through sudo over SSH.
    const found = await ssh.run(`sudo blkid -L ${BUNDLE_MEDIUM_LABEL}`);
    assert.equal(found.stdout.trim(), loop);
    assert.equal((await ssh.run(`sudo blkid -o value -s TYPE ${loop}`)).stdout.trim(), 'iso9660');
  });
});

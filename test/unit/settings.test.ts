import { test } from 'node:test';
import assert from 'node:assert/strict';

// Fixed host facts so limits do not depend on the machine running the tests.
process.env['DEVCLUSTER_HOST_CPUS'] = '4';
process.env['DEVCLUSTER_HOST_MEMORY_MIB'] = '16384';
const { requireSetting, envName, SETTINGS } = await import('../../src/profile/settings.ts');
const { validateProfileName } = await import('../../src/profile/names.ts');
const { DevclusterError } = await import('../../src/ui/errors.ts');

function rejects(key: string, raw: string, id: string) {
  assert.throws(() => requireSetting(key).parse(raw, 'test'), (e: unknown) => e instanceof DevclusterError && e.id === id, `${key}=${raw} should fail with ${id}`);
}

test('profile names: valid and invalid', () => {
  for (const ok of ['devcluster', 'a', 'dev-2', '0x', 'a'.repeat(63)]) assert.equal(validateProfileName(ok), ok);
  for (const bad of ['', 'Dev', '-dev', '../x', 'a/b', 'a b', 'a'.repeat(64), 'dev_1', 'con', 'nul', 'com1', 'dev.x', '..', 'ä']) {
    assert.throws(() => validateProfileName(bad), (e: unknown) => e instanceof DevclusterError && e.id === 'PROFILE_INVALID_NAME', bad);
  }
});

test('memory accepts sizes and rejects nonsense, zero and more than the host has', () => {
  const memory = requireSetting('memory');
  assert.equal(memory.parse('4096', 't'), 4096);
  assert.equal(memory.parse('4g', 't'), 4096);
  assert.equal(memory.parse('4GiB', 't'), 4096);
  assert.equal(memory.parse('max', 't'), 12288);
  rejects('memory', 'abc', 'CONFIG_INVALID_VALUE');
  rejects('memory', '0', 'CONFIG_INVALID_VALUE');
  rejects('memory', '-4g', 'CONFIG_INVALID_VALUE');
  rejects('memory', '512mb', 'CONFIG_INVALID_VALUE');
  rejects('memory', '17g', 'HOST_MEMORY_TOO_LOW');
});

test('cpus: 1..host cores or max', () => {
  const cpus = requireSetting('cpus');
  assert.equal(cpus.parse('1', 't'), 1);
  assert.equal(cpus.parse('max', 't'), 4);
  rejects('cpus', '0', 'CONFIG_INVALID_VALUE');
  rejects('cpus', '-1', 'CONFIG_INVALID_VALUE');
  rejects('cpus', '2.5', 'CONFIG_INVALID_VALUE');
  rejects('cpus', '5', 'HOST_CPUS_TOO_FEW');
});

test('kubernetes versions: the supported ones normalise, others are refused when parsed, default pinned', () => {
  const k = requireSetting('kubernetes-version');
  assert.equal(k.defaultValue, 'v1.37.2');
  assert.equal(k.parse('v1.37.2', 't'), 'v1.37.2');
  assert.equal(k.parse('1.36.3', 't'), 'v1.36.3');
  assert.equal(k.parse(' v1.36.03 ', 't'), 'v1.36.3');
  assert.equal(k.parse('stable', 't'), 'stable');
  assert.equal(k.parse('latest', 't'), 'latest');
  for (const bad of ['latest-ish', 'v9', 'v1.31', 'v2.0.0', '1.31.2.1', 'v1.31.x']) rejects('kubernetes-version', bad, 'KUBERNETES_VERSION_INVALID');
  for (const unsupported of ['v1.30.0', 'v1.20.0', 'v1.37.1', 'v1.36.2', '1.38.0']) rejects('kubernetes-version', unsupported, 'KUBERNETES_VERSION_UNSUPPORTED');
  assert.throws(() => k.parse('v1.30.0', 'config set'), (e: unknown) => e instanceof DevclusterError && /v1\.37\.2.*v1\.36\.3/.test(e.message) && e.input);
});

test('release base URLs: http(s) only, no query or fragment, trailing slashes dropped', () => {
  const defaults: Record<string, string> = {
    'kubernetes-release-url': 'https://dl.k8s.io/release',
    'containerd-release-url': 'https://github.com/containerd/containerd/releases/download',
    'runc-release-url': 'https://github.com/opencontainers/runc/releases/download',
    'cni-plugins-release-url': 'https://github.com/containernetworking/plugins/releases/download',
    'cri-tools-release-url': 'https://github.com/kubernetes-sigs/cri-tools/releases/download',
  };
  for (const [key, value] of Object.entries(defaults)) {
    const s = requireSetting(key);
    assert.equal(s.defaultValue, value, key);
    assert.equal(s.parse('http://mirror.internal:8080/k8s/', 't'), 'http://mirror.internal:8080/k8s', key);
    assert.equal(s.parse('https://mirror.internal', 't'), 'https://mirror.internal', key);
    for (const bad of ['mirror.internal/k8s', 'ftp://mirror.internal/k8s', 'file:///srv/k8s', 'https://m.internal/k8s?x=1', 'https://m.internal/#a', '']) rejects(key, bad, 'CONFIG_INVALID_VALUE');
  }
});

test('drivers resolve aliases and reject unknown names', () => {
  const d = requireSetting('driver');
  assert.equal(d.parse('hyper-v', 't'), 'hyperv');
  assert.equal(d.parse('VBox', 't'), 'virtualbox');
  assert.equal(d.parse('qemu2', 't'), 'qemu');
  assert.equal(d.parse('auto', 't'), 'auto');
  rejects('driver', 'docker', 'DRIVER_UNKNOWN');
});

test('disk size, subnet, bridge and image validation', () => {
  assert.equal(requireSetting('disk-size').parse('20g', 't'), 20480);
  rejects('disk-size', '1g', 'CONFIG_INVALID_VALUE');
  rejects('disk-size', '5t', 'CONFIG_INVALID_VALUE');
  assert.equal(requireSetting('subnet').parse('192.168.211.0/24', 't'), '192.168.211.0/24');
  rejects('subnet', '8.8.8.0/24', 'CONFIG_INVALID_VALUE');
  rejects('subnet', '192.168.211.5/24', 'CONFIG_INVALID_VALUE');
  rejects('subnet', '10.0.0.0/8', 'CONFIG_INVALID_VALUE');
  rejects('qemu-bridge', 'a-very-long-bridge-name', 'CONFIG_INVALID_VALUE');
  assert.equal(requireSetting('image').parse('https://example.invalid/x.qcow2', 't'), 'https://example.invalid/x.qcow2');
  rejects('image', 'relative/path.qcow2', 'CONFIG_INVALID_VALUE');
  rejects('image-sha256', 'abc', 'CONFIG_INVALID_VALUE');
});

test('unknown keys are rejected with the list of known ones', () => {
  assert.throws(() => requireSetting('memroy'), (e: unknown) => e instanceof DevclusterError && e.id === 'CONFIG_UNKNOWN_KEY' && /memory/.test(e.advice ?? ''));
});

test('every setting has an environment variable name', () => {
  assert.equal(envName('disk-size'), 'DEVCLUSTER_DISK_SIZE');
  assert.equal(envName('doctor.muted'), 'DEVCLUSTER_DOCTOR_MUTED');
  assert.equal(new Set(SETTINGS.map((s) => envName(s.key))).size, SETTINGS.length);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redact, redactArgs } from '../../src/ui/redact.ts';

test('private keys, proxy passwords, tokens and kubeconfig secrets are masked', () => {
  const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
  assert.doesNotMatch(redact(`key: ${key}`), /b3BlbnNzaC1rZXktdjEAAAAA/);
  assert.equal(redact('HTTPS_PROXY=http://alice:s3cret@proxy.corp:3128'), 'HTTPS_PROXY=http://alice:********@proxy.corp:3128');
  assert.doesNotMatch(redact('Authorization: Bearer eyJhbGciOiJSUzI1NiIs'), /eyJhbGci/);
  assert.doesNotMatch(redact('    client-key-data: LS0tLS1CRUdJTiBSU0E='), /LS0tLS1CRUdJTiBSU0E/);
  assert.doesNotMatch(redact('kubeadm join --token abcdef.0123456789abcdef'), /0123456789abcdef/);
  assert.equal(redact('nothing secret here: memory=4096'), 'nothing secret here: memory=4096');
});

test('command arguments carrying secrets are masked', () => {
  assert.deepEqual(redactArgs(['kubeadm', 'join', '--token', 'abc', '--x=1']), ['kubeadm', 'join', '--token', '********', '--x=1']);
  assert.deepEqual(redactArgs(['--password=hunter2']), ['--password=********']);
  assert.deepEqual(redactArgs(['echo', 'pw is topsecret'], ['topsecret']), ['echo', 'pw is ********']);
});

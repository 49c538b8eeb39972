import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sshCommandLine, sshConfigPath } from '../../src/ssh/interactive.ts';
import { quoteArgv, quoteShellArg } from '../../src/host/posix-quote.ts';

describe('quoting for the remote POSIX shell', () => {
  test('safe words stay bare, others are single-quoted', () => {
    assert.equal(quoteShellArg('kubeadm'), 'kubeadm');
    assert.equal(quoteShellArg('/etc/kubernetes/admin.conf'), '/etc/kubernetes/admin.conf');
    assert.equal(quoteShellArg('--node-ip=10.0.0.2'), '--node-ip=10.0.0.2');
    assert.equal(quoteShellArg(''), "''");
    assert.equal(quoteShellArg('a b'), "'a b'");
    assert.equal(quoteShellArg('$(reboot)'), "'$(reboot)'");
    assert.equal(quoteShellArg("it's"), "'it'\\''s'");
    assert.equal(quoteArgv(['echo', 'a;b', '*']), "echo 'a;b' '*'");
  });

  test('NUL bytes and empty commands are refused', () => {
    assert.throws(() => quoteShellArg('a\0b'), /NUL/);
    assert.throws(() => quoteArgv([]), /at least one word/);
  });
});

describe('sshCommandLine', () => {
  const base = {
    host: '127.0.0.1',
    port: 2222,
    user: 'devcluster',
    privateKeyPath: '/home/u/.devcluster/profiles/p/keys/id_ed25519',
    knownHostsPath: '/home/u/.devcluster/profiles/p/keys/known_hosts',
    platform: 'linux' as const,
  };

  function option(args: readonly string[], name: string): string | undefined {
    for (let i = 0; i < args.length - 1; i++) {
      if (args[i] === '-o' && args[i + 1]?.startsWith(`${name}=`)) return args[i + 1]?.slice(name.length + 1);
    }
    return undefined;
  }

  test('trusts only the pinned key and uses only the profile key', () => {
    const { command, args } = sshCommandLine(base);
    assert.equal(command, 'ssh');
    assert.equal(option(args, 'UserKnownHostsFile'), '"/home/u/.devcluster/profiles/p/keys/known_hosts"');
    assert.equal(option(args, 'IdentityFile'), '"/home/u/.devcluster/profiles/p/keys/id_ed25519"');
    assert.equal(option(args, 'StrictHostKeyChecking'), 'yes');
    assert.equal(option(args, 'IdentitiesOnly'), 'yes');
    assert.equal(option(args, 'UpdateHostKeys'), 'no');
    assert.equal(option(args, 'LogLevel'), 'ERROR');
    assert.deepEqual(args.slice(args.indexOf('-p'), args.indexOf('-p') + 2), ['-p', '2222']);
    assert.deepEqual(args.slice(args.indexOf('-l'), args.indexOf('-l') + 2), ['-l', 'devcluster']);
    assert.deepEqual(args.slice(0, 2), ['-F', 'none']);
  });

  test('non-interactive runs use BatchMode and no TTY', () => {
    const { args } = sshCommandLine({ ...base, command: ['uptime'] });
    assert.equal(option(args, 'BatchMode'), 'yes');
    assert.ok(!args.includes('-t'));
    assert.deepEqual(args.slice(-3), ['--', '127.0.0.1', 'uptime']);
  });

  test('an interactive shell gets a TTY; an interactive command does not', () => {
    const shell = sshCommandLine({ ...base, interactive: true }).args;
    assert.ok(shell.includes('-t'));
    assert.equal(option(shell, 'BatchMode'), undefined);
    assert.deepEqual(shell.slice(-2), ['--', '127.0.0.1']);
    const cmd = sshCommandLine({ ...base, interactive: true, command: ['ls'] }).args;
    assert.ok(!cmd.includes('-t'));
  });

  test('command words pass as ssh passes them, or quoted one by one', () => {
    const plain = sshCommandLine({ ...base, command: ['ls', '-l', 'a b'] }).args;
    assert.deepEqual(plain.slice(-3), ['ls', '-l', 'a b']);
    const quoted = sshCommandLine({ ...base, command: ['ls', '-l', 'a b'], quoteCommand: true }).args;
    assert.equal(quoted.at(-1), "ls -l 'a b'");
  });

  test('paths are escaped for ssh_config: quotes, % tokens, Windows separators', () => {
    assert.equal(sshConfigPath('/tmp/John Doe/%h/key', 'linux'), '"/tmp/John Doe/%%h/key"');
    assert.equal(sshConfigPath('/tmp/a"b\\c', 'darwin'), '"/tmp/a\\"b\\\\c"');
    assert.equal(sshConfigPath('C:\\Users\\John Doe\\.devcluster\\keys\\id_ed25519', 'win32'), '"C:/Users/John Doe/.devcluster/keys/id_ed25519"');
  });
});

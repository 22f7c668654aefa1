// TEST DOUBLE of AWS's SSM Agent distribution, for the rehearsal's aws bake (nothing of AWS is
// reachable here). It keeps the contract install-ssm-agent.sh relies on, as AWS documents it
// ("Manually installing SSM Agent on Debian Server instances" and "Verify the signature of SSM
// Agent", AWS Systems Manager user guide): the package at
// <base>/<version>/debian_amd64/amazon-ssm-agent.deb, a detached OpenPGP signature beside it as
// amazon-ssm-agent.deb.sig, a Debian package named amazon-ssm-agent whose version starts with the
// release number and which ships amazon-ssm-agent.service. What it is not: AWS's agent. The
// package installs a unit whose program says it is a test double and idles; the signing key is
// made here, named TEST, and is trusted only by builds the rehearsal configures with it.
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface TestSigningKey {
  /** GnuPG home holding the secret key. */
  home: string;
  /** Armored public key; `<name>.fingerprint` sits beside it (the layout of packer/keys/). */
  asc: string;
  fingerprint: string;
  /** gpg --faked-system-time for the key and its signatures (a key that has expired since). */
  fakedTime?: string;
}

function gpg(home: string, args: string[]): string {
  return execFileSync('gpg', ['--homedir', home, '--batch', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A signing key for tests and the rehearsal only (never AWS's), valid for `expiry` (gpg syntax). */
export function makeTestSigningKey(dir: string, name: string, expiry = '1d', fakedTime?: string): TestSigningKey {
  const home = join(dir, `gnupg-${name}`);
  mkdirSync(home, { recursive: true, mode: 0o700 });
  gpg(home, [...(fakedTime ? ['--faked-system-time', fakedTime] : []), '--quick-gen-key', `${name} TEST key <test@invalid>`, 'ed25519', 'sign', expiry]);
  const fingerprint = gpg(home, ['--with-colons', '--fingerprint']).split('\n').find((l) => l.startsWith('fpr:'))!.split(':')[9]!;
  const asc = join(dir, `${name}.asc`);
  writeFileSync(asc, gpg(home, ['--armor', '--export']));
  writeFileSync(join(dir, `${name}.fingerprint`), `${fingerprint}\n`);
  return { home, asc, fingerprint, fakedTime };
}

const UNIT = `[Unit]
Description=amazon-ssm-agent TEST DOUBLE (rehearsal only; not AWS's SSM Agent)
After=network-online.target

[Service]
Type=simple
ExecStart=/usr/bin/amazon-ssm-agent
KillMode=process
Restart=on-failure

[Install]
WantedBy=multi-user.target
`;

const PROGRAM = `#!/bin/sh
echo "amazon-ssm-agent TEST DOUBLE: built by the rehearsal (scripts/lib/emulator/ssm-agent-double.ts); it registers nowhere"
exec sleep infinity
`;

/**
 * Writes <root>/<version>/debian_amd64/amazon-ssm-agent.deb (+ .sig signed by `signer`). With
 * `service: false` the package is bare (for tests that only check the signature path).
 */
export function makeSsmAgentRepo(root: string, version: string, signer: TestSigningKey, opts: { debVersion?: string; service?: boolean } = {}): string {
  const pkg = join(root, 'pkg');
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  writeFileSync(
    join(pkg, 'DEBIAN/control'),
    `Package: amazon-ssm-agent\nVersion: ${opts.debVersion ?? version}-1\nArchitecture: amd64\nMaintainer: rehearsal <test@invalid>\nDescription: TEST DOUBLE of amazon-ssm-agent (rehearsal only)\n`,
  );
  if (opts.service !== false) {
    mkdirSync(join(pkg, 'usr/lib/systemd/system'), { recursive: true });
    mkdirSync(join(pkg, 'usr/bin'), { recursive: true });
    writeFileSync(join(pkg, 'usr/lib/systemd/system/amazon-ssm-agent.service'), UNIT, { mode: 0o644 });
    writeFileSync(join(pkg, 'usr/bin/amazon-ssm-agent'), PROGRAM, { mode: 0o755 });
  }
  const dir = join(root, version, 'debian_amd64');
  mkdirSync(dir, { recursive: true });
  const deb = join(dir, 'amazon-ssm-agent.deb');
  execFileSync('dpkg-deb', ['--build', '--root-owner-group', pkg, deb], { stdio: 'ignore' });
  gpg(signer.home, [...(signer.fakedTime ? ['--faked-system-time', signer.fakedTime] : []), '--yes', '--detach-sign', '-o', `${deb}.sig`, deb]);
  return root;
}

/** Serves a directory read-only over HTTP on 127.0.0.1 (GET only; anything else 405). */
export class StaticServer {
  private server: Server | null = null;
  readonly requests: { path: string; status: number }[] = [];

  constructor(private readonly root: string) {}

  start(): Promise<number> {
    this.server = createServer((req, res) => {
      const path = decodeURIComponent((req.url ?? '/').split('?')[0]!);
      const file = join(this.root, path);
      let status = 200;
      if (req.method !== 'GET' && req.method !== 'HEAD') status = 405;
      else if (path.includes('..') || !existsSync(file) || !file.startsWith(this.root)) status = 404;
      this.requests.push({ path, status });
      if (status !== 200) {
        res.writeHead(status).end();
        return;
      }
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    return new Promise((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve((this.server!.address() as AddressInfo).port)));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

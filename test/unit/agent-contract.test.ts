// What the image does because of what the real agent does (images/agent-double/CONTRACT.md):
// it discloses every host the agent contacts, and keeps bridged containers away from the
// instance metadata service.
import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { readListFile, REPO } from '../../scripts/lib/paths.ts';

describe('Marketplace disclosure of external connections', () => {
  it('names every host the agent contacts (from its source), including STUN and NTP', () => {
    const disclosure = readFileSync(join(REPO, 'rootfs/usr/share/doc/syntropy-agent-image/EXTERNAL-CONNECTIONS'), 'utf8');
    const hosts = readListFile(join(REPO, 'images/agent-double/external-connections.txt'));
    expect(hosts.filter((h) => h.startsWith('stun'))).toHaveLength(13);
    for (const h of hosts) expect(disclosure, h).toContain(h);
  });
});

describe('instance metadata guard for bridged containers', () => {
  function guard(chains: string[]): string[] {
    const dir = mkdtempSync(join(tmpdir(), 'imds-guard-'));
    const rules = join(dir, 'rules');
    writeFileSync(rules, '');
    for (const ipt of ['iptables', 'ip6tables']) {
      writeFileSync(
        join(dir, ipt),
        `#!/bin/bash
args="$*"
case "$args" in
  *" -L DOCKER-USER"*) ${chains.includes(ipt) ? 'exit 0' : 'exit 1'} ;;
  *" -C DOCKER-USER "*) grep -qxF "${ipt} \${args/-C DOCKER-USER/-I DOCKER-USER 1}" ${rules} ;;
  *" -I DOCKER-USER "*) echo "${ipt} $args" >> ${rules} ;;
esac`,
      );
      chmodSync(join(dir, ipt), 0o755);
    }
    const run = () => spawnSync('bash', [join(REPO, 'rootfs/usr/lib/syntropy-image/imds-guard')], { env: { PATH: `${dir}:/usr/bin:/bin` }, encoding: 'utf8' });
    expect(run().status).toBe(0);
    expect(run().status).toBe(0);
    return readFileSync(rules, 'utf8').split('\n').filter(Boolean);
  }

  it('drops forwarded traffic to 169.254.169.254 in DOCKER-USER, once however often Docker restarts', () => {
    expect(guard(['iptables'])).toEqual(['iptables -w -I DOCKER-USER 1 -d 169.254.169.254/32 -j DROP']);
    expect(guard(['iptables', 'ip6tables'])).toEqual(['iptables -w -I DOCKER-USER 1 -d 169.254.169.254/32 -j DROP', 'ip6tables -w -I DOCKER-USER 1 -d fd00:ec2::254/128 -j DROP']);
  });

  it('runs after every Docker start', () => {
    const dropIn = readFileSync(join(REPO, 'rootfs/etc/systemd/system/docker.service.d/syntropy-imds-guard.conf'), 'utf8');
    expect(dropIn).toMatch(/^\[Service\]\nExecStartPost=\/usr\/lib\/syntropy-image\/imds-guard$/m);
  });
});

// First boot writes the agent's UDP rule into ufw's files itself (firstboot/src/ufw-rules.ts).
// The expected files are real ufw's output (test/fixtures/ufw, see its README): the writer must
// produce them byte for byte, and leave every case it does not reproduce to ufw.
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendUfwRule, parseUfwSettings, planUfwAllow, ufwRuleBlock } from '../../firstboot/src/ufw-rules.ts';
import { ufwFixture as fixture, ufwTree } from '../helpers/ufw-tree.ts';

const R1 = { start: 51820, end: 51919 };
const R2 = { start: 40000, end: 40010 };

describe('appendUfwRule', () => {
  it('writes what ufw writes for the agent rule, in both families', () => {
    expect(appendUfwRule(fixture('image.user.rules'), R1, false)).toEqual({ content: fixture('allow-51820-51919.user.rules') });
    expect(appendUfwRule(fixture('image.user6.rules'), R1, true)).toEqual({ content: fixture('allow-51820-51919.user6.rules') });
  });

  it('appends a second rule after the first, as ufw does', () => {
    expect(appendUfwRule(fixture('allow-51820-51919.user.rules'), R2, false)).toEqual({ content: fixture('allow-then-40000-40010.user.rules') });
    expect(appendUfwRule(fixture('allow-51820-51919.user6.rules'), R2, true)).toEqual({ content: fixture('allow-then-40000-40010.user6.rules') });
  });

  it("leaves a rule for the same ports to ufw, whatever its action or comment (ufw skips or updates it)", () => {
    const v4 = fixture('allow-51820-51919.user.rules');
    expect(appendUfwRule(v4, R1, false)).toEqual({ fallback: 'a rule for UDP 51820:51919 is already there' });
    const denied = v4.replace('### tuple ### allow udp 51820:51919', '### tuple ### deny udp 51820:51919');
    expect(appendUfwRule(denied, R1, false)).toHaveProperty('fallback');
    const noComment = v4.replace(/ comment=73796e[0-9a-f]+\n-A ufw-user-input -p udp -m multiport --dports 51820:51919/, '\n-A ufw-user-input -p udp -m multiport --dports 51820:51919');
    expect(noComment).not.toBe(v4);
    expect(appendUfwRule(noComment, R1, false)).toHaveProperty('fallback');
    // Other ports, or the same ports on one interface only, are other rules: appended.
    expect(appendUfwRule(v4, { start: 51820, end: 51918 }, false)).toHaveProperty('content');
    const onEth0 = v4.replace('0.0.0.0/0 in comment=73796e', '0.0.0.0/0 in_eth0 comment=73796e');
    expect(appendUfwRule(onEth0, R1, false)).toHaveProperty('content');
  });

  it('leaves files not in the shape ufw writes to ufw', () => {
    const v4 = fixture('image.user.rules');
    const cases = [
      '',
      v4.replace('*filter\n', '# edited\n*filter\n'),
      v4.replace('### END RULES ###\n', ''),
      v4.replace('### RULES ###\n', ''),
      v4.replace('\n\n### END RULES ###', '\n### END RULES ###'),
      v4.replace('### END RULES ###\n', '### END RULES ###\n### END RULES ###\n'),
    ];
    for (const text of cases) {
      expect(text === v4 && text !== '').toBe(false);
      expect(appendUfwRule(text, R1, false)).toEqual({ fallback: 'the rules file is not in the shape ufw writes' });
    }
  });

  it("encodes the comment as ufw does (UTF-8 bytes in hex)", () => {
    expect(ufwRuleBlock(R1, false, 'é')).toContain(' in comment=c3a9\n');
    expect(ufwRuleBlock(R1, true)).toBe('### tuple ### allow udp 51820:51919 ::/0 any ::/0 in comment=73796e74726f70792d6167656e7420776972656775617264\n-A ufw6-user-input -p udp -m multiport --dports 51820:51919 -j ACCEPT\n\n');
  });
});

describe('parseUfwSettings', () => {
  it("reads KEY=value lines as ufw does: lower-cased, quotes stripped, later files win", () => {
    const s = parseUfwSettings('IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n# ENABLED=yes\n  LOGLEVEL=full\n', 'ENABLED=Yes\nIPV6=no\n');
    expect(s.get('ipv6')).toBe('no');
    expect(s.get('enabled')).toBe('yes');
    expect(s.get('default_input_policy')).toBe('drop');
    expect(s.has('loglevel')).toBe(false);
  });
});

describe('planUfwAllow', () => {
  it('plans both files and their restores when ufw is enabled with IPv6', () => {
    const loc = ufwTree();
    const plan = planUfwAllow(R1, loc);
    expect(plan).toEqual({
      live: true,
      changes: [
        { file: join(loc.dir, 'user.rules'), content: fixture('allow-51820-51919.user.rules'), restore: 'iptables-restore' },
        { file: join(loc.dir, 'user6.rules'), content: fixture('allow-51820-51919.user6.rules'), restore: 'ip6tables-restore' },
      ],
    });
    // Nothing is written by planning.
    expect(readFileSync(join(loc.dir, 'user.rules'), 'utf8')).toBe(fixture('image.user.rules'));
  });

  it('leaves IPv6 out when ufw has it off or the kernel lacks it, and the live firewall when ufw is disabled', () => {
    for (const loc of [ufwTree({ ipv6: 'no' }), ufwTree({ procIpv6: false })]) {
      const plan = planUfwAllow(R1, loc);
      expect('changes' in plan && plan.changes.map((c) => c.restore)).toEqual(['iptables-restore']);
    }
    expect(planUfwAllow(R1, ufwTree({ enabled: 'no' }))).toMatchObject({ live: false });
  });

  it('names what it cannot read', () => {
    const loc = ufwTree();
    expect(planUfwAllow(R1, { ...loc, defaults: join(loc.dir, 'missing') })).toEqual({ fallback: expect.stringMatching(/^cannot read ufw's settings: ENOENT/) });
    writeFileSync(join(loc.dir, 'user6.rules'), 'garbage\n');
    expect(planUfwAllow(R1, loc)).toEqual({ fallback: `${join(loc.dir, 'user6.rules')}: the rules file is not in the shape ufw writes` });
  });
});

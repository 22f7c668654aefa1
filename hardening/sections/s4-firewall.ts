// CIS Debian 13 v1.0.0, section 4: Host Based Firewall (ufw). The catalog owns the base policy;
// first boot owns the one rule that opens the agent's UDP range.
import { all, installed, q, type Draft, type Section } from '../builders.ts';
import { keyValues } from '../parse.ts';
import type { Facts } from '../facts.ts';

/** Interfaces the agent creates; routed traffic may enter or leave through them and nowhere else. */
export const AGENT_INTERFACES = ['SYNTROPY_PUBLIC', 'SYNTROPY_SDN1', 'SYNTROPY_SDN2', 'SYNTROPY_SDN3'];

const UFW_NEEDS = ['read:/etc/default/ufw', 'read:/etc/ufw/ufw.conf', 'read:/etc/ufw/user.rules', 'cmd:ufw-status', 'unit:ufw.service'];
const defaults = (f: Facts) => keyValues(f.read('/etc/default/ufw'), /=/);
const status = (f: Facts) => f.cmd('ufw-status');

function policy(id: string, title: string, key: string, word: string, extra?: (f: Facts) => { pass: boolean; evidence: string }): Draft {
  return {
    id,
    title,
    tags: ['firewall'],
    needs: UFW_NEEDS,
    apply: '# base policy written by 4.1.2 (ufw_base_policy)',
    check: (f) => {
      const v = defaults(f).get(key) ?? '';
      const vs = [{ pass: v === 'DROP' || v === 'REJECT', evidence: `/etc/default/ufw ${key}=${v || '(unset)'}` }];
      const s = status(f);
      if (s) {
        const m = new RegExp(`Default:.*?(\\w+) \\(${word}\\)`).exec(s.out);
        vs.push({ pass: !!m && /^(deny|reject)$/.test(m[1]!), evidence: `ufw status: ${m ? `${m[1]} (${word})` : 'no default shown'}` });
      }
      if (extra) vs.push(extra(f));
      return all(...vs);
    },
    fixture: {
      good: () => {},
      bad: (fx) => fx.file('/etc/default/ufw', (fx.read('/etc/default/ufw') ?? '').replace(new RegExp(`^${key}=.*$`, 'm'), `${key}="ACCEPT"`)),
    },
  };
}

export const section4: Section = ({ sshPort }) => {
  return [
    installed('4.1.1', 'Ensure ufw is installed', ['ufw']),
    {
      id: '4.1.2',
      title: 'Ensure ufw service is configured',
      tags: ['firewall'],
      needs: UFW_NEEDS,
      apply: `ufw_base_policy ${sshPort} ${AGENT_INTERFACES.map(q).join(' ')}`,
      check: (f) => {
        const conf = keyValues(f.read('/etc/ufw/ufw.conf'), /=/).get('ENABLED');
        const unit = f.unit('ufw.service');
        const vs = [
          { pass: conf === 'yes', evidence: `ufw.conf ENABLED=${conf ?? '(unset)'}` },
          { pass: unit.enabled === 'enabled' && (unit.active === null || unit.active === 'active'), evidence: `ufw.service ${unit.enabled}${unit.active ? `, ${unit.active}` : ''}` },
        ];
        const s = status(f);
        if (s) vs.push({ pass: /^Status: active/m.test(s.out), evidence: s.out.split('\n')[0] ?? '' });
        return all(...vs);
      },
      fixture: {
        good: (fx) => {
          fx.file('/etc/ufw/ufw.conf', 'ENABLED=yes\nLOGLEVEL=low\n');
          fx.unit('ufw.service', 'enabled');
          fx.file('/etc/default/ufw', 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\nDEFAULT_FORWARD_POLICY="DROP"\nIPT_SYSCTL=/etc/ufw/sysctl.conf\n');
          fx.file('/etc/ufw/user.rules', AGENT_INTERFACES.map((i) => `### tuple ### route:allow any any 0.0.0.0/0 any 0.0.0.0/0 in_${i}\n`).join(''));
        },
        bad: (fx) => fx.file('/etc/ufw/ufw.conf', 'ENABLED=no\nLOGLEVEL=low\n'),
      },
    },
    policy('4.1.3', 'Ensure ufw incoming default is configured', 'DEFAULT_INPUT_POLICY', 'incoming'),
    policy('4.1.5', 'Ensure ufw routed default is configured', 'DEFAULT_FORWARD_POLICY', 'routed', (f) => {
      const rules = f.read('/etc/ufw/user.rules') ?? '';
      const missing = AGENT_INTERFACES.filter((i) => !rules.includes(`in_${i}`));
      return { pass: missing.length === 0, evidence: missing.length ? `no route rule for ${missing.join(', ')}` : `route rules only for the agent's interfaces (${AGENT_INTERFACES.join(', ')})` };
    }),
  ];
}

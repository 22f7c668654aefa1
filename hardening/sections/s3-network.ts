// CIS Debian 13 v1.0.0, section 3: Network.
import { kmod, manual, notInUse, sysctl, type Draft, type Section } from '../builders.ts';
import { exception } from '../exceptions.ts';

export const ROUTER_EXCEPTION = exception('router');

/** Forwarding controls keep their check (for evidence); while the exception is in force the build turns forwarding on instead. */
function forwarding(id: string, key: string): Draft {
  return { ...sysctl(id, `Ensure ${key} is configured`, key, '0'), exception: ROUTER_EXCEPTION };
}

const v4 = (id: string, key: string, value: string) => sysctl(id, `Ensure net.ipv4.${key} is configured`, `net.ipv4.${key}`, value);
const v6 = (id: string, key: string, value: string) => sysctl(id, `Ensure net.ipv6.${key} is configured`, `net.ipv6.${key}`, value);

export const section3: Section = () => [
  manual('3.1.1', 'Ensure IPv6 status is identified', 'IPv6 stays enabled (VPCs may be dual-stack); its redirect, source-route and router-advertisement parameters are set by 3.3.2. Note that accept_ra=0 means an IPv6 default route must come from DHCPv6 or static configuration.'),
  {
    id: '3.1.2',
    title: 'Ensure wireless interfaces are not available',
    tags: ['network'],
    needs: ['cmd:wireless-drivers', 'cmd:wireless-ifaces'],
    apply: '# the cloud kernel ships no wireless drivers; nothing to disable',
    check: (f) => {
      const drivers = Number((f.cmd('wireless-drivers')?.out ?? '0').trim() || 0);
      const ifaces = f.cmd('wireless-ifaces');
      const n = ifaces ? Number(ifaces.out.trim() || 0) : 0;
      return { pass: drivers === 0 && n === 0, evidence: `${drivers} wireless driver module(s) shipped${ifaces ? `, ${n} wireless interface(s)` : ''}` };
    },
    fixture: {
      good: () => {},
      bad: (fx) => fx.append('/lib/modules/6.12.0-cloud-amd64/modules.dep', 'kernel/drivers/net/wireless/intel/iwlwifi/iwlwifi.ko.xz:\n'),
    },
  },
  notInUse('3.1.3', 'Ensure bluetooth services are not in use', ['bluez'], ['bluetooth.service']),
  kmod('3.2.1', 'Ensure atm kernel module is not available', 'atm'),
  kmod('3.2.2', 'Ensure can kernel module is not available', 'can'),
  kmod('3.2.3', 'Ensure dccp kernel module is not available', 'dccp'),
  kmod('3.2.4', 'Ensure rds kernel module is not available', 'rds'),
  kmod('3.2.5', 'Ensure sctp kernel module is not available', 'sctp'),
  kmod('3.2.6', 'Ensure tipc kernel module is not available', 'tipc'),
  forwarding('3.3.1.2', 'net.ipv4.conf.all.forwarding'),
  forwarding('3.3.1.3', 'net.ipv4.conf.default.forwarding'),
  v4('3.3.1.4', 'conf.all.send_redirects', '0'),
  v4('3.3.1.5', 'conf.default.send_redirects', '0'),
  v4('3.3.1.6', 'icmp_ignore_bogus_error_responses', '1'),
  v4('3.3.1.7', 'icmp_echo_ignore_broadcasts', '1'),
  v4('3.3.1.8', 'conf.all.accept_redirects', '0'),
  v4('3.3.1.9', 'conf.default.accept_redirects', '0'),
  v4('3.3.1.10', 'conf.all.secure_redirects', '0'),
  v4('3.3.1.11', 'conf.default.secure_redirects', '0'),
  v4('3.3.1.12', 'conf.all.rp_filter', '1'),
  v4('3.3.1.13', 'conf.default.rp_filter', '1'),
  v4('3.3.1.14', 'conf.all.accept_source_route', '0'),
  v4('3.3.1.15', 'conf.default.accept_source_route', '0'),
  v4('3.3.1.16', 'conf.all.log_martians', '1'),
  v4('3.3.1.17', 'conf.default.log_martians', '1'),
  v4('3.3.1.18', 'tcp_syncookies', '1'),
  forwarding('3.3.2.1', 'net.ipv6.conf.all.forwarding'),
  forwarding('3.3.2.2', 'net.ipv6.conf.default.forwarding'),
  v6('3.3.2.3', 'conf.all.accept_redirects', '0'),
  v6('3.3.2.4', 'conf.default.accept_redirects', '0'),
  v6('3.3.2.5', 'conf.all.accept_source_route', '0'),
  v6('3.3.2.6', 'conf.default.accept_source_route', '0'),
  v6('3.3.2.7', 'conf.all.accept_ra', '0'),
  v6('3.3.2.8', 'conf.default.accept_ra', '0'),
];

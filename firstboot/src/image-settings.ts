// The settings baked into the image by the build (/etc/syntropy/firstboot.conf, whose shape is
// contracts/firstboot-conf.ts), and the port rules they make with the host's bound ports.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFirstbootConf } from '../../contracts/firstboot-conf.ts';
import type { Env } from './env.ts';
import type { Paths, State } from './state.ts';
import type { PortRules } from './validate.ts';

export interface ImageSettings {
  sshPort: number;
  maxRangeWidth: number;
  defaultPortRange: string;
  networkApi: string;
}

export function readImageSettings(p: Paths): ImageSettings {
  const file = join(p.root, 'etc/syntropy/firstboot.conf');
  const c = parseFirstbootConf(existsSync(file) ? readFileSync(file, 'utf8') : null, file);
  return { sshPort: c.SSH_PORT, maxRangeWidth: c.MAX_PORT_RANGE_WIDTH, defaultPortRange: c.DEFAULT_PORT_RANGE, networkApi: c.AGENT_NETWORK_API };
}

export function portRules(env: Env, image: ImageSettings, current: State | null): PortRules {
  return {
    maxWidth: image.maxRangeWidth,
    sshPort: image.sshPort,
    boundUdpPorts: () => {
      const ports = env.sys.boundUdpPorts();
      // On reconfigure the running agent's own port is not a conflict.
      if (current?.boundPort) ports.delete(current.boundPort);
      return ports;
    },
  };
}

#!/usr/bin/env -S npx tsx
// Builds (or reuses) the agent test double archive for local images: `npm run agent-double`.
import { loadConfig } from './lib/config.ts';
import { ensureAgentDouble } from './lib/agentdouble.ts';
import { parseCli } from './lib/cli.ts';
import { fail } from './lib/log.ts';

try {
  const cli = parseCli(process.argv.slice(2));
  const { config } = loadConfig(cli.configInput);
  process.stdout.write(`${JSON.stringify(await ensureAgentDouble(config), null, 2)}\n`);
} catch (e) {
  fail((e as Error).message);
}

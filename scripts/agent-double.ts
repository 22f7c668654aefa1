#!/usr/bin/env -S npx tsx
// Builds (or reuses) the agent test double archive for local images: `npm run agent-double`.
import { loadConfig } from './lib/config.ts';
import { ensureAgentDouble } from './lib/bake/agent-double.ts';
import { runEntry } from './lib/cli/entry.ts';

const USAGE = `usage: npm run agent-double -- [--config FILE] [--set key=value]...
Builds (or reuses from cache) the agent TEST DOUBLE archive that local images preload.`;

runEntry(import.meta.url, { usage: USAGE }, async (cli) => {
  const { config } = loadConfig(cli.configInput);
  process.stdout.write(`${JSON.stringify(await ensureAgentDouble(config), null, 2)}\n`);
});

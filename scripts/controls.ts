#!/usr/bin/env -S npx tsx
// `npm run --silent controls -- [--json] [--config FILE] [--set hardening.x=...]`
// Prints the CIS catalog as the current config resolves it: id, title, level, automated, whether
// the build applies it, and each named exception with its reason (JSON for tooling, or a table).
import { loadConfig } from './lib/config.ts';
import { runEntry } from './lib/cli/entry.ts';
import { catalogFor } from './lib/compliance.ts';
import { BENCHMARK } from '../hardening/types.ts';
import type { CatalogEntry } from '../hardening/catalog.ts';

export function catalogJson(entries: CatalogEntry[]) {
  return entries.map((c) => ({
    id: c.id,
    title: c.title,
    section: c.section,
    level: c.level,
    automated: c.automated,
    applied: !c.manual && !c.disabled && !c.excepted,
    apply_step: c.manual || c.excepted || c.disabled ? 'none' : /^(#[^\n]*\n?)*$/.test(c.apply.trim()) ? 'verify-only' : 'patch',
    exception: c.exception && c.excepted ? { name: c.exception.name, reason: c.exception.reason } : null,
    manual: c.manual ?? null,
    disabled: c.disabled ?? null,
    tags: c.tags,
  }));
}

const USAGE = `usage: npm run --silent controls -- [--json] [--config FILE] [--set key=value]...
Prints the CIS catalog as the config resolves it (JSON with --json).`;

runEntry(import.meta.url, { usage: USAGE, extraBooleans: ['json'] }, (cli) => {
  const { config } = loadConfig(cli.configInput);
  const rows = catalogJson(catalogFor(config));
  if (cli.flags.json) {
    process.stdout.write(`${JSON.stringify({ benchmark: BENCHMARK, controls: rows }, null, 2)}\n`);
    return;
  }
  for (const r of rows) {
    const state = r.exception ? `EXCEPTION ${r.exception.name}` : r.manual ? 'MANUAL' : r.disabled ? 'OFF' : r.apply_step.toUpperCase();
    process.stdout.write(`${r.id.padEnd(10)} ${r.level.padEnd(9)} ${(r.automated ? 'auto' : 'manual').padEnd(6)} ${state.padEnd(26)} ${r.title}\n`);
  }
  const cis = rows.filter((r) => r.section !== 'MP');
  const l1auto = cis.filter((r) => r.level === 'l1_server' && r.automated);
  process.stdout.write(
    `\n${BENCHMARK.name} ${BENCHMARK.version}: ${cis.length} recommendations in the catalog, ${l1auto.length} automated Level 1 Server; ` +
      `${l1auto.filter((r) => r.applied).length} applied, ${l1auto.filter((r) => r.exception).length} named exceptions; ${rows.length - cis.length} Marketplace checks\n`,
  );
});

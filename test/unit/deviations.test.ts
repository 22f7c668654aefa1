// hardening/DEVIATIONS.md names every exception the catalog can report, with the controls that
// carry it, and every control it names exists in the catalog.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../../scripts/lib/paths.ts';
import { EXCEPTION_NAMES } from '../../hardening/exceptions.ts';
import { loadConfig } from '../../scripts/lib/config.ts';
import { catalogFor } from '../../scripts/lib/compliance.ts';

const doc = readFileSync(join(REPO, 'hardening', 'DEVIATIONS.md'), 'utf8');

describe('hardening/DEVIATIONS.md', () => {
  const catalog = catalogFor(loadConfig({}).config);
  const byException = new Map<string, string[]>();
  for (const c of catalog) {
    const name = (c as { exception?: { name: string } }).exception?.name;
    if (name) byException.set(name, [...(byException.get(name) ?? []), c.id]);
  }

  it('has a row for every named exception, listing exactly the controls that carry it', () => {
    for (const name of EXCEPTION_NAMES) {
      const row = doc.split('\n').find((l) => l.includes(`(exception \`${name}\`)`));
      expect(row, `no row for exception ${name}`).toBeDefined();
      const ids = (row!.split('|')[1]!.match(/\d+(\.\d+)+/g) ?? []).sort();
      expect(ids, name).toEqual([...(byException.get(name) ?? [])].sort());
    }
  });

  it('names only controls the catalog has', () => {
    const known = new Set(catalog.map((c) => c.id));
    const rows = doc.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| control') && !l.startsWith('| ---'));
    for (const r of rows) for (const id of r.split('|')[1]!.match(/\d+\.\d+(\.\d+)*/g) ?? []) expect(known.has(id), id).toBe(true);
  });
});

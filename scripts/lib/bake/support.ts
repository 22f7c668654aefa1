// End-of-life check of the bake (Marketplace: no end-of-life software): the OS release and the
// Docker engine must be within their support periods on the day of the build. The periods are
// data (deps/support-periods.json, each with its source); the engine's follows its source:
// - Debian's docker.io: security-supported as part of Debian 13, limited for Go-based packages
//   (fixes mostly through point releases); held to the end of Debian's regular security support,
//   which Debian LTS may not extend to it.
// - Docker's docker-ce: Docker publishes packages only for its maintained release lines, so the
//   engine is supported when it is the newest the repository offers, which check-updates.sh
//   proves at the end of every bake (the repository is one of the image's APT sources).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { REPO } from '../paths.ts';
import type { PackageEntry } from '../../../contracts/build-manifest.ts';

const DATE = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
export const SupportPeriodsSchema = z
  .object({
    _comment: z.string(),
    checked: DATE,
    debian: z.record(z.string(), z.object({ codename: z.string(), released: DATE, security_until: DATE, lts_until: DATE }).strict()),
  })
  .strict();
export type SupportPeriods = z.infer<typeof SupportPeriodsSchema>;

export function loadSupportPeriods(file = join(REPO, 'deps', 'support-periods.json')): SupportPeriods {
  return SupportPeriodsSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
}

export const SUITE_VERSION: Record<string, string> = { trixie: '13' };

export interface SupportStatus {
  os: { release: string; phase: 'regular' | 'lts'; until: string };
  docker: { package: string; version: string; source: 'debian' | 'docker-ce'; until: string | null; note: string } | null;
  warnings: string[];
  problems: string[];
}

const daysBetween = (a: string, b: string) => Math.round((Date.parse(b) - Date.parse(a)) / 86_400_000);

/**
 * Judges a Debian release and (when the packages are known) the engine on `today` (YYYY-MM-DD).
 * problems: the build must fail. warnings: within `warnDays` of an end, or in LTS.
 */
export function supportStatus(versionId: string, packages: PackageEntry[] | null, today: string, data: SupportPeriods = loadSupportPeriods(), warnDays = 180): SupportStatus {
  const rel = data.debian[versionId];
  const problems: string[] = [];
  const warnings: string[] = [];
  if (!rel) {
    return { os: { release: `Debian ${versionId}`, phase: 'regular', until: '' }, docker: null, warnings, problems: [`Debian ${versionId} has no support period in deps/support-periods.json: add it from https://www.debian.org/releases/`] };
  }
  const name = `Debian ${versionId} (${rel.codename})`;
  let phase: 'regular' | 'lts' = 'regular';
  if (today > rel.lts_until) problems.push(`${name} reached its end of life on ${rel.lts_until} (LTS ended): rebase the image on a supported Debian release`);
  else if (today > rel.security_until) {
    phase = 'lts';
    warnings.push(`${name}: regular security support ended on ${rel.security_until}; in Debian LTS until ${rel.lts_until}`);
  } else if (daysBetween(today, rel.security_until) <= warnDays) warnings.push(`${name}: regular security support ends on ${rel.security_until} (${daysBetween(today, rel.security_until)} days)`);
  if (daysBetween(data.checked, today) > 365) warnings.push(`deps/support-periods.json was last checked on ${data.checked}: refresh it from Debian's release pages`);
  let docker: SupportStatus['docker'] = null;
  if (packages) {
    const deb = packages.find((p) => p.name === 'docker.io');
    const ce = packages.find((p) => p.name === 'docker-ce');
    if (deb) {
      docker = { package: 'docker.io', version: deb.version, source: 'debian', until: rel.security_until, note: `${name} security support, limited for Go-based packages (fixes mostly through point releases)` };
      if (today > rel.security_until) problems.push(`docker.io ${deb.version}: Debian's regular security support for it ended on ${rel.security_until} (Debian LTS may not cover Go packages): move to a supported release, or to docker.source docker-ce`);
    } else if (ce) {
      docker = { package: 'docker-ce', version: ce.version, source: 'docker-ce', until: null, note: "Docker's repository publishes only maintained release lines; check-updates.sh proved it is the newest there" };
    } else {
      problems.push('the image has neither docker.io nor docker-ce installed');
    }
  }
  return { os: { release: name, phase, until: phase === 'regular' ? rel.security_until : rel.lts_until }, docker, warnings, problems };
}

// Which controls hardening/DEVIATIONS.md explains, and where: the compliance report links each
// such control to its table (the named exceptions, or the deliberate choices some readers fail).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DEVIATIONS_FILE = 'hardening/DEVIATIONS.md';

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function headingAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');
}

/** control ID -> `hardening/DEVIATIONS.md#<the table's heading>`, for every ID a table row names. */
export function deviationLinks(text = readFileSync(join(import.meta.dirname, 'DEVIATIONS.md'), 'utf8')): Map<string, string> {
  const out = new Map<string, string>();
  let heading = '';
  for (const line of text.split('\n')) {
    const h = /^##\s+(.+)$/.exec(line);
    if (h) {
      heading = headingAnchor(h[1]!);
      continue;
    }
    if (!line.startsWith('| ') || line.startsWith('| control') || line.startsWith('| ---')) continue;
    const first = line.split('|')[1] ?? '';
    for (const id of first.match(/\b(\d+(?:\.\d+)+|DD-\d+|MP-\w+)\b/g) ?? []) out.set(id, `${DEVIATIONS_FILE}#${heading}`);
  }
  return out;
}

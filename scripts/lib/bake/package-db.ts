// The package databases of the agent image's layers, as preload-agent.sh copies them out of the
// image (a created, never started container): the dpkg status file (Debian-based images, such as
// the test double) and apk's installed database (Alpine-based images, such as the real agent,
// whose Dockerfile is `FROM alpine` + `apk add iptables`).
//
// Formats as their owners document them: dpkg's status file is deb822 stanzas (deb-control(5):
// Package, Status "want flag status", Version, Architecture, Source "name (version)" when it
// differs); apk's installed database is stanzas of one-letter fields (apk-tools' "installed
// database" / PKGINFO: P name, V version, A arch, o origin package).
import type { AgentPackage } from '../../../contracts/build-manifest.ts';

function stanzas(text: string): string[] {
  return text.split(/\n\s*\n/).filter((s) => s.trim() !== '');
}

/** Installed packages of a dpkg status file. */
export function parseDpkgStatus(text: string): AgentPackage[] {
  const out: AgentPackage[] = [];
  for (const st of stanzas(text)) {
    const f: Record<string, string> = {};
    let last = '';
    for (const line of st.split('\n')) {
      if (/^\s/.test(line)) {
        if (last) f[last] += `\n${line.trim()}`;
        continue;
      }
      const i = line.indexOf(':');
      if (i < 0) continue;
      last = line.slice(0, i);
      f[last] = line.slice(i + 1).trim();
    }
    // "install ok installed" (or hold): a package whose files are on disk; config-files and
    // half-installed ones are not software the image runs.
    if (!f.Package || !f.Version || !/ (installed)$/.test(f.Status ?? '')) continue;
    const src = /^(\S+)(?: \((\S+)\))?$/.exec(f.Source ?? '');
    out.push({
      kind: 'deb',
      name: f.Package,
      version: f.Version,
      arch: f.Architecture ?? '',
      ...(src ? { source: src[1]!, ...(src[2] ? { source_version: src[2] } : {}) } : {}),
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** Packages of an apk installed database. */
export function parseApkInstalled(text: string): AgentPackage[] {
  const out: AgentPackage[] = [];
  for (const st of stanzas(text)) {
    const f: Record<string, string> = {};
    for (const line of st.split('\n')) {
      const m = /^([A-Za-z]):(.*)$/.exec(line);
      // Only the first of a letter: a stanza repeats some (R:, F:, Z: per file).
      if (m && !(m[1]! in f)) f[m[1]!] = m[2]!;
    }
    if (!f.P || !f.V) continue;
    out.push({ kind: 'apk', name: f.P, version: f.V, arch: f.A ?? '', ...(f.o && f.o !== f.P ? { source: f.o } : {}) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

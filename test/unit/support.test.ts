// The bake's end-of-life check (scripts/lib/bake/support.ts) over deps/support-periods.json.
import { describe, expect, it } from 'vitest';
import { loadSupportPeriods, SUITE_VERSION, supportStatus } from '../../scripts/lib/bake/support.ts';

const data = loadSupportPeriods();
const pkgs = (name: string) => [{ name, version: name === 'docker.io' ? '26.1.5+dfsg1-9' : '5:29.1.2-1~debian.13~trixie', arch: 'amd64' }];

describe('support periods', () => {
  it('cover the release the image is built on, with sane dates', () => {
    const r = data.debian[SUITE_VERSION.trixie!]!;
    expect(r.codename).toBe('trixie');
    expect(r.released < r.security_until && r.security_until < r.lts_until).toBe(true);
  });

  it('pass Debian 13 with docker.io today, and record until when', () => {
    const s = supportStatus('13', pkgs('docker.io'), '2026-12-02', data);
    expect(s.problems).toEqual([]);
    expect(s.os).toEqual({ release: 'Debian 13 (trixie)', phase: 'regular', until: '2028-08-09' });
    expect(s.docker).toMatchObject({ package: 'docker.io', source: 'debian', until: '2028-08-09' });
  });

  it('warn near the end of regular support, in LTS; fail the engine after regular support and the OS after LTS', () => {
    expect(supportStatus('13', null, '2028-03-01', { ...data, checked: '2028-01-01' }).warnings).toEqual(['Debian 13 (trixie): regular security support ends on 2028-08-09 (161 days)']);
    const lts = supportStatus('13', pkgs('docker.io'), '2029-01-01', data);
    expect(lts.os.phase).toBe('lts');
    expect(lts.problems).toEqual([expect.stringMatching(/^docker\.io 26\.1\.5\+dfsg1-9: Debian's regular security support for it ended on 2028-08-09/)]);
    // docker-ce is judged by the repository (check-updates.sh), not by Debian's dates.
    expect(supportStatus('13', pkgs('docker-ce'), '2029-01-01', data).problems).toEqual([]);
    expect(supportStatus('13', null, '2030-07-01', data).problems).toEqual(['Debian 13 (trixie) reached its end of life on 2030-06-30 (LTS ended): rebase the image on a supported Debian release']);
  });

  it('fail an unknown release or an image without an engine; warn when the data is a year old', () => {
    expect(supportStatus('15', null, '2026-12-02', data).problems[0]).toMatch(/Debian 15 has no support period/);
    expect(supportStatus('13', [{ name: 'bash', version: '5.2', arch: 'amd64' }], '2026-12-02', data).problems).toEqual(['the image has neither docker.io nor docker-ce installed']);
    expect(supportStatus('13', null, '2028-01-01', { ...data, checked: '2026-12-02' }).warnings).toContain('deps/support-periods.json was last checked on 2026-12-02: refresh it from Debian\'s release pages');
  });
});

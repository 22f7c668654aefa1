// The CIS catalog: coverage of the benchmark, every check proven on fixture root directories
// (passes where its control is applied, fails where it is not), toggles and exceptions from config.
import { describe, expect, it, beforeAll } from 'vitest';
import { rmSync } from 'node:fs';
import { benchmarkEntries, catalog, DEFAULT_EXCEPTIONS, exceptionNames, type CatalogEntry } from '../../hardening/catalog.ts';
import { baseFixture, type Fixture } from '../../hardening/fixture.ts';
import { LocalRootHost } from '../../hardening/host.ts';
import { collectFacts, judge, runChecks } from '../../hardening/runner.ts';
import { summarize } from '../../hardening/report.ts';
import { ConfigSchema } from '../../scripts/lib/config.ts';
import { catalogJson } from '../../scripts/controls.ts';

const opts = { sshPort: 22, sshUser: 'admin' };
const cat = catalog(opts);
/** Every control on, the defense-in-depth options (off by default) included: for the fixture proofs. */
const catAll = catalog(opts, { levels: ['l1_server'], sections: {}, controls: { 'DD-30': true, 'DD-31': true }, exceptions: DEFAULT_EXCEPTIONS });
const cis = cat.filter((c) => c.section !== 'MP' && c.section !== 'DD');

function hardenedFixture(): Fixture {
  const fx = baseFixture();
  for (const c of catAll) c.fixture?.good(fx);
  return fx;
}

describe('catalog coverage', () => {
  it('holds every Level 1 Server recommendation of the benchmark list, once, with its Automated/Manual status', () => {
    const l1 = benchmarkEntries().filter((e) => e.levels.includes('l1_server'));
    expect(l1).toHaveLength(262);
    expect(l1.filter((e) => e.automated)).toHaveLength(249);
    const ids = cis.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const e of l1) expect(ids, e.id).toContain(e.id);
    for (const c of cis) expect(c.automated, c.id).toBe(benchmarkEntries().find((e) => e.id === c.id)!.automated);
  });

  it('gives every control a check (or a manual instruction), declared facts, a title and a benchmark-keyed id', () => {
    for (const c of cat) {
      expect(c.title.length, c.id).toBeGreaterThan(10);
      if (c.manual) {
        expect(c.automated, c.id).toBe(false);
        expect(c.manual.length, c.id).toBeGreaterThan(20);
        continue;
      }
      expect(typeof c.check, c.id).toBe('function');
      expect(c.needs.length, c.id).toBeGreaterThan(0);
    }
  });

  it('names a reason for every exception and applies every other automated control', () => {
    for (const c of cat.filter((x) => !x.manual)) {
      if (c.exception) expect(c.exception.reason.length, c.id).toBeGreaterThan(30);
      else if (c.section !== 'MP') expect(c.apply.trim(), c.id).not.toBe('');
    }
    const excepted = cis.filter((c) => c.level === 'l1_server' && c.automated && c.excepted).map((c) => c.id);
    expect(excepted.sort()).toEqual(['2.3.2.1', '2.3.2.2', '3.3.1.2', '3.3.1.3', '3.3.2.1', '3.3.2.2', '6.1.1.1.4', '6.1.1.2.3'].sort());
    // The router exception covers exactly the four forwarding parameters; the rest of section 3 applies.
    expect(cis.filter((c) => c.exception?.name === 'router').map((c) => c.id)).toEqual(['3.3.1.2', '3.3.1.3', '3.3.2.1', '3.3.2.2']);
    expect(cat.find((c) => c.id === '1.1.1.6')?.exception?.name).toBe('docker-overlay');
  });

  it('keeps the config schema\'s exception names in step with the catalog', () => {
    // The default config puts every exception in force; the schema accepts exactly those names.
    expect([...ConfigSchema.parse({}).hardening.exceptions].sort()).toEqual(exceptionNames(opts).sort());
    expect(() => ConfigSchema.parse({ hardening: { exceptions: ['convenience'] } })).toThrow();
  });
});

describe('checks on fixture root directories', () => {
  let root = '';
  beforeAll(() => {
    root = hardenedFixture().materialize();
    return () => rmSync(root, { recursive: true, force: true });
  });

  it('passes every check where every control is applied, in one probe round trip', async () => {
    const out = await runChecks(new LocalRootHost(root), catAll, { live: false });
    expect(out.roundTrips).toBe(1);
    const bad = out.results.filter((r) => !['PASS', 'SKIP', 'EXCEPTION'].includes(r.result));
    expect(bad.map((r) => `${r.id} ${r.result} ${r.evidence}`)).toEqual([]);
    expect(out.results.filter((r) => r.result === 'SKIP').every((r) => r.manual)).toBe(true);
  });

  it('fails each check on a fixture where only its own control is not applied', async () => {
    const good = hardenedFixture();
    const notFailing: string[] = [];
    let tested = 0;
    for (const c of catAll.filter((x) => !x.manual && !x.excepted)) {
      expect(c.fixture, `${c.id} has no fixture sides`).toBeDefined();
      const fx = good.clone();
      c.fixture!.bad(fx);
      const dir = fx.materialize();
      try {
        // Strict: a check that reads a fact it did not declare is an error, not a pass.
        const { facts } = await collectFacts(new LocalRootHost(dir), [c], false);
        const r = judge(c, facts, true);
        if (r.result !== 'FAIL') notFailing.push(`${c.id}: ${r.result} ${r.evidence}`);
        tested += 1;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    expect(notFailing).toEqual([]);
    expect(tested).toBeGreaterThanOrEqual(241 + 11);
  }, 120_000);

  it('scores a stock root (nothing applied) low, like an unhardened image', async () => {
    const dir = baseFixture().materialize();
    try {
      const out = await runChecks(new LocalRootHost(dir), cat, { live: false });
      const autoL1 = out.results.filter((r) => r.section !== 'MP' && r.level === 'l1_server' && r.automated);
      const passing = autoL1.filter((r) => r.result === 'PASS').length;
      expect(passing).toBeLessThan(autoL1.length / 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('config toggles', () => {
  const run = (settings: Parameters<typeof catalog>[1]) => catalog(opts, settings);
  const base = { levels: ['l1_server' as const], sections: {}, controls: {}, exceptions: ['router', 'docker-overlay', 'timesync-chrony', 'rsyslog-logging', 'remote-log-host'] };
  const find = (list: CatalogEntry[], id: string) => list.find((c) => c.id === id)!;

  it('turns off a section, a single control, and re-enables one control inside an off section', () => {
    const list = run({ ...base, sections: { '6': false }, controls: { '1.4.1': false, '6.3.1': true } });
    expect(find(list, '6.1.2.1').disabled).toMatch(/section 6 disabled/);
    expect(find(list, '6.3.1').disabled).toBeUndefined();
    expect(find(list, '1.4.1').disabled).toMatch(/hardening.controls."1.4.1"/);
    expect(judge(find(list, '1.4.1'), null).result).toBe('SKIP');
  });

  it('applies the defense-in-depth layer by default, its options only when asked, and never scores it', () => {
    const dd = cat.filter((c) => c.section === 'DD');
    expect(dd.length).toBeGreaterThanOrEqual(15);
    expect(dd.every((c) => /^DD-\d+$/.test(c.id))).toBe(true);
    expect(dd.filter((c) => c.disabled).map((c) => c.id)).toEqual(['DD-30', 'DD-31']);
    expect(find(run({ ...base, controls: { 'DD-30': true } }), 'DD-30').disabled).toBeUndefined();
    expect(find(run({ ...base, sections: { DD: false } }), 'DD-20').disabled).toMatch(/section DD disabled/);
    expect(ConfigSchema.parse({ hardening: { sections: { DD: false }, controls: { 'DD-20': false } } }).hardening.sections.DD).toBe(false);
    expect(() => ConfigSchema.parse({ hardening: { controls: { 'XX-1': true } } })).toThrow();
    // A failing DD control fails the report, but does not move the benchmark score.
    const rows = (result: 'PASS' | 'FAIL') => [
      { id: '1.1.1.1', title: 't', level: 'l1_server' as const, section: '1', automated: true, tags: [], result: 'PASS' as const, evidence: '' },
      { id: 'DD-1', title: 't', level: 'l1_server' as const, section: 'DD', automated: true, tags: [], result, evidence: '' },
    ];
    const s = summarize(rows('FAIL'));
    expect([s.automated_l1, s.automated_l1_passing, s.totals.FAIL]).toEqual([1, 1, 1]);
    expect(summarize(rows('PASS')).automated_l1).toBe(1);
  });

  it('applies an excepted control when its exception is removed from config', () => {
    const list = run({ ...base, exceptions: base.exceptions.filter((e) => e !== 'router') });
    expect(find(list, '3.3.1.2').excepted).toBe(false);
    expect(find(list, '3.3.1.2').apply).toContain('set_sysctl');
  });

  it('exports the catalog for tooling with applied/exception/manual per control', () => {
    const rows = catalogJson(cat);
    expect(rows.find((r) => r.id === '3.3.2.1')).toMatchObject({ applied: false, exception: { name: 'router' } });
    expect(rows.find((r) => r.id === '1.1.1.11')).toMatchObject({ applied: false, automated: false });
    expect(rows.find((r) => r.id === '5.1.21')).toMatchObject({ applied: true, apply_step: 'patch', level: 'l1_server' });
    const l1auto = rows.filter((r) => r.section !== 'MP' && r.section !== 'DD' && r.level === 'l1_server' && r.automated);
    expect(l1auto.filter((r) => r.applied)).toHaveLength(241);
  });
});

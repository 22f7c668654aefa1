// Shapes shared by the CIS catalog, the checks and the reports.
import type { Facts } from './facts.ts';

export const BENCHMARK = {
  name: 'CIS Debian Linux 13 Benchmark',
  version: 'v1.0.0',
  profile: 'Level 1 - Server',
} as const;

export type Level = 'l1_server' | 'l2_server';
export type Status = 'PASS' | 'FAIL' | 'SKIP' | 'EXCEPTION' | 'ERROR';

export interface Verdict {
  pass: boolean;
  evidence: string;
}

/** Writes one control's state into a fixture root: `good` applies it, `bad` breaks it. */
export interface FixtureSide {
  good(fx: FixtureWriter): void;
  bad(fx: FixtureWriter): void;
}

export interface FixtureWriter {
  file(path: string, content: string, mode?: number, owner?: { uid: number; gid: number }): void;
  append(path: string, content: string): void;
  remove(path: string): void;
  dir(path: string, mode?: number, owner?: { uid: number; gid: number }): void;
  symlink(path: string, target: string): void;
  pkg(name: string, installed: boolean, version?: string): void;
  /** Enables (wanted by multi-user.target), disables or masks a unit; creates the unit file. */
  unit(name: string, state: 'enabled' | 'disabled' | 'masked' | 'absent'): void;
  read(path: string): string | undefined;
}

export interface Control {
  id: string;
  title: string;
  level: Level;
  automated: boolean;
  /** Section number ("1".."7", "MP" for Marketplace policy, "DD" for the defense-in-depth layer). */
  section: string;
  tags: string[];
  /** Fact keys the check reads (see facts.ts). */
  needs: string[];
  /** Shell (bash) that applies the control idempotently; empty for audit-only controls. */
  apply: string;
  check?: (f: Facts) => Verdict;
  /** A named workload exception: the control is not applied and reports EXCEPTION. */
  exception?: { name: string; reason: string };
  /** Manual recommendations: what an operator must do. */
  manual?: string;
  /** How the fixture tests apply and break this control. */
  fixture?: FixtureSide;
  /** An option, off unless hardening.controls names it true (the reason is reported). */
  defaultOff?: string;
}

export interface ControlResult {
  id: string;
  title: string;
  level: Level;
  section: string;
  automated: boolean;
  tags: string[];
  result: Status;
  evidence: string;
  exception?: { name: string; reason: string };
  manual?: string;
  /** Where hardening/DEVIATIONS.md explains this control (set by buildReport). */
  deviation?: string;
}

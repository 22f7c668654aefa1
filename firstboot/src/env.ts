// What every command receives from the entry point (cli.ts): the console, the file layout, the
// system seam (live, plan or fake), the metadata client and the prompt streams. Commands take
// everything from here, so each runs against fixtures in tests.
import type { PromptContext } from './dialogue.ts';
import type { Console } from './secrets.ts';
import type { ImdsClient } from './sources.ts';
import type { Paths } from './state.ts';
import type { System } from './system.ts';

export interface Env {
  con: Console;
  p: Paths;
  sys: System;
  imds: ImdsClient | null;
  ssmEndpoint?: string;
  region?: string;
  prompt: PromptContext;
  /** Reads a token from standard input (non-interactive). */
  readStdin: () => Promise<string>;
  confirmTimeoutMs?: number;
}

/** Bad flags or answers: exit 2, nothing changed. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export const RESUME = 'Nothing was changed. To configure later, run: sudo syntropy-firstboot configure';

/** Figures reported on stderr when SYNTROPY_FIRSTBOOT_STATS=1 (used by the benchmark). */
export const stats: {
  confirmedToRunningMs?: number;
  /** When each step of the last apply finished, in ms from the apply's start (apply.ts). */
  applySteps?: [step: string, atMs: number][];
} = {};

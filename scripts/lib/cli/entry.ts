// The one epilogue of every entry script (scripts/*.ts): parse the flags, answer --help with the
// usage before reading any config or credentials, run, and map errors to exit codes:
//   0 success; 1 a failure of the work itself; 2 bad input (flags, config, a file's contract,
//   a missing tool), printed as one line naming the problem.
import { parseCli, type CliSpec, type ParsedCli } from './args.ts';

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * The AWS SDK warns on every run that its releases after the first week of January 2027 need
 * Node >= 22. The project pins the SDK (package.json, exact versions) to a release that supports
 * Node 20, the Node of this toolchain and of Debian 13's nodejs in the image, so the warning is
 * noise; AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED is the SDK's own switch for it.
 */
export function quietSdkNodeWarning(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/** Error names that mean "fix your input": reported without a stack, exit 2. */
const INPUT_ERRORS = new Set(['UsageError', 'ConfigError', 'PreflightError', 'ContractError']);

export function exitCodeOf(e: unknown): 1 | 2 {
  return e instanceof Error && INPUT_ERRORS.has(e.name) ? 2 : 1;
}

/**
 * Runs `main` when `moduleUrl` is the script node was started with (so tests can import the
 * script's helpers without running it).
 */
export function runEntry(moduleUrl: string, spec: CliSpec, main: (cli: ParsedCli) => Promise<void> | void): void {
  if (moduleUrl !== `file://${process.argv[1]}`) return;
  quietSdkNodeWarning();
  void (async () => {
    try {
      const cli = parseCli(process.argv.slice(2), spec);
      if (cli.help) {
        process.stdout.write(`${spec.usage.trimEnd()}\n`);
        return;
      }
      await main(cli);
    } catch (e) {
      const code = exitCodeOf(e);
      process.stderr.write(`error: ${(e as Error).message}\n`);
      if (code === 1 && process.env.DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      process.exit(code);
    }
  })();
}

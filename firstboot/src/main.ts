#!/usr/bin/env node
// Entry point of syntropy-firstboot (bundled to one file for Debian's nodejs in the image).
import { main } from './cli.ts';
import { installRedactionBoundary } from './secrets.ts';

// Nothing any library prints reaches the journal or the console unredacted.
installRedactionBoundary();

// The SDK's Node-version notice would reach the journal and the console on every boot; the
// bundled SDK is pinned to a release that supports Debian 13's Node 20 (see the README).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });

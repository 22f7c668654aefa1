#!/usr/bin/env node
// Entry point of syntropy-firstboot (bundled to one file for Debian's nodejs in the image).
import { main } from './cli.ts';

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin });

// The files handed between steps, one schema each (see ARCHITECTURE.md).
export * from './parse.ts';
export * from './agent-image-lock.ts';
export * from './firstboot-conf.ts';
export * from './packer-manifest.ts';
export * from './build-manifest.ts';
export * from './compliance-report.ts';
export * from './boot-report.ts';
export * from './publish-manifest.ts';

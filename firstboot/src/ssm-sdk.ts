// The two AWS SDK names first boot needs to read a Parameter Store token, re-exported from an ES
// module. sources.ts imports this module on demand: bundled with code splitting, esbuild gives an
// on-demand import of a CommonJS package (the SDK) its default export only, while an ES module's
// named exports stay named, so this module has the same shape under Node, tsx and the bundle.
export { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';

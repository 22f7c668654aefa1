// The named workload exceptions of the catalog, defined once: the config schema's allowed values,
// the catalog's defaults and each control's EXCEPTION reason all come from here.

export const EXCEPTIONS = {
  router:
    "the instance routes VPC traffic through the agent's WireGuard tunnels, so IP forwarding stays on (the EC2 source/destination check is turned off for the same reason)",
  'docker-overlay': "Docker's overlay2 storage driver, which runs the agent container, needs the overlay module (Level 2 only)",
  'timesync-chrony':
    'chrony is the one time daemon (Amazon Time Sync Service at 169.254.169.123); the benchmark makes 2.3.2 (systemd-timesyncd) not applicable when chrony is used',
  'rsyslog-logging':
    'rsyslog is the logging method (6.1.2), and 6.1.2.3 requires journald to forward to it; the benchmark has each method exclude the other',
  'remote-log-host':
    "systemd-journal-upload needs the site's log server URL and TLS material, which only the operator knows (see 6.1.1.2.2); enabled without them it fails every boot",
} as const;

export type ExceptionName = keyof typeof EXCEPTIONS;
export const EXCEPTION_NAMES = Object.keys(EXCEPTIONS) as [ExceptionName, ...ExceptionName[]];

/** The `exception` field of a control record. */
export function exception(name: ExceptionName): { name: ExceptionName; reason: string } {
  return { name, reason: EXCEPTIONS[name] };
}

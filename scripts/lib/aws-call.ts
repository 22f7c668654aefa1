// Every AWS call the pipeline makes goes through here: throttling is retried with backoff, and a
// failure names the region and the API call, so an operator knows where to look.

const THROTTLING = new Set(['Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequestsException', 'RequestThrottled', 'SlowDown']);

export class AwsCallError extends Error {
  override name = 'AwsCallError';
  constructor(
    readonly region: string,
    readonly call: string,
    readonly causeName: string,
    message: string,
  ) {
    super(`${region}: ${call} failed: ${causeName}: ${message}`);
  }
}

export interface RetryOptions {
  attempts?: number;
  baseDelayMs?: number;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Error names that mean "not there yet" for this call (EC2's eventual consistency: a resource
   * just created may answer InvalidInstanceID.NotFound for a while), retried like throttling.
   */
  retryOn?: string[];
}

/** EC2 and SSM answers that mean a just-created resource is not visible yet. */
export const NOT_YET = ['InvalidInstanceID.NotFound', 'InvalidAMIID.NotFound', 'InvalidSnapshot.NotFound', 'ParameterNotFound', 'InvalidInstanceId'];

export async function awsCall<T>(region: string, call: string, fn: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const attempts = opts.attempts ?? 6;
  const sleep = opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms)));
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      const err = e as Error & { $retryable?: { throttling?: boolean } };
      const throttled = THROTTLING.has(err.name) || err.$retryable?.throttling === true;
      const notYet = opts.retryOn?.includes(err.name) ?? false;
      if ((!throttled && !notYet) || i >= attempts) throw new AwsCallError(region, call, err.name, err.message);
      await sleep((opts.baseDelayMs ?? 500) * 2 ** (i - 1));
    }
  }
}

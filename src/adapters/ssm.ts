import { GetParametersCommand, SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError } from '../core/errors';

/**
 * Resolves every `<NAME>_PARAM` variable to the value of the SSM parameter it names (decrypted), returning a copy of
 * `env` where `<NAME>` holds that value. A parameter that does not exist is a configuration error naming the variable,
 * never the value.
 */
export async function resolveSsmParams(env: Record<string, string | undefined>, region: string): Promise<Record<string, string | undefined>> {
  const wanted = Object.entries(env).filter(([k, v]) => k.endsWith('_PARAM') && v !== undefined && v !== '');
  if (wanted.length === 0) return { ...env };
  const client = new SSMClient({ region, maxAttempts: 6, retryMode: 'adaptive' });
  const out = { ...env };
  // GetParameters takes at most 10 names a call.
  for (let i = 0; i < wanted.length; i += 10) {
    const chunk = wanted.slice(i, i + 10);
    const names = [...new Set(chunk.map(([, v]) => v!))];
    const res = await client.send(new GetParametersCommand({ Names: names, WithDecryption: true }));
    const values = new Map((res.Parameters ?? []).map((p) => [p.Name!, p.Value!]));
    for (const [k, name] of chunk) {
      const value = values.get(name!);
      if (value === undefined) throw new ConfigError(`${k} names SSM parameter ${name} which does not exist`, { details: [{ path: k, message: 'parameter not found' }] });
      out[k.slice(0, -'_PARAM'.length)] = value;
    }
  }
  client.destroy();
  return out;
}

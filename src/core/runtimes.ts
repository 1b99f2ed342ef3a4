/**
 * Lambda runtime identifiers. moto accepts any string, AWS does not: an unknown runtime must be caught at validate
 * time, not at CreateFunction. Deprecated runtimes are only warned about, because AWS blocks creates for them on
 * dates that vary by runtime and region, and updates of existing functions keep working for longer.
 */
export const SUPPORTED_RUNTIMES: ReadonlySet<string> = new Set([
  'nodejs24.x', 'nodejs22.x', 'nodejs20.x',
  'python3.14', 'python3.13', 'python3.12', 'python3.11', 'python3.10',
  'java25', 'java21', 'java17', 'java11', 'java8.al2',
  'dotnet10', 'dotnet8',
  'ruby3.4', 'ruby3.3',
  'provided.al2023', 'provided.al2',
]);

export const DEPRECATED_RUNTIMES: ReadonlySet<string> = new Set([
  'nodejs18.x', 'nodejs16.x', 'nodejs14.x', 'nodejs12.x', 'nodejs10.x', 'nodejs8.10', 'nodejs6.10', 'nodejs4.3', 'nodejs4.3-edge', 'nodejs',
  'python3.9', 'python3.8', 'python3.7', 'python3.6', 'python2.7',
  'java8', 'dotnet9', 'dotnet7', 'dotnet6', 'dotnetcore3.1', 'dotnetcore2.1', 'dotnetcore2.0', 'dotnetcore1.0',
  'go1.x', 'ruby3.2', 'ruby2.7', 'ruby2.5', 'provided',
]);

export type RuntimeStatus = 'supported' | 'deprecated' | 'unknown';

export function runtimeStatus(runtime: string): RuntimeStatus {
  if (SUPPORTED_RUNTIMES.has(runtime)) return 'supported';
  if (DEPRECATED_RUNTIMES.has(runtime)) return 'deprecated';
  return 'unknown';
}

import { describe, expect, it } from 'vitest';
import { parseFailpoint, withFailpoint } from '../../src/cli/failpoint';
import type { ProgressEvent } from '../../src/core/deploy';

describe('the deploy failpoint', () => {
  it('does nothing unless set', () => {
    const inner = (_: ProgressEvent) => {};
    expect(withFailpoint({}, inner)).toBe(inner);
  });

  it('fires right after the n-th event of its step, once', () => {
    // Prepare
    const seen: string[] = [];
    let kills = 0;
    const onProgress = withFailpoint({ APPS_DEPLOYER_FAILPOINT: 'static:2' }, (e) => seen.push(`${e.step} ${e.name}`), () => kills++);

    // Act
    for (const name of ['a', 'b', 'c']) onProgress({ step: 'static', name, action: 'create' });
    onProgress({ step: 'manifest', name: 'm', action: 'create' });

    // Assess
    expect(seen).toEqual(['static a', 'static b', 'static c', 'manifest m']);
    expect(kills).toBe(1);
  });

  it('refuses a malformed value with the steps it knows', () => {
    expect(parseFailpoint('manifest')).toEqual({ step: 'manifest', n: 1 });
    expect(() => parseFailpoint('upload:3')).toThrow(/static, code, function, policy, manifest, mattermost/);
    expect(() => parseFailpoint('static:0')).toThrow(/APPS_DEPLOYER_FAILPOINT/);
  });
});

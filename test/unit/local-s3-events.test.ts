// The local S3 event pump's translation of moto's SQS messages into the S3 events the auto-deploy handler gets.
import { describe, expect, it } from 'vitest';
import type { S3Event } from 'aws-lambda';
import { eventIdentity } from '../../src/core/control-plane';
import { bundleEventsOf } from '../../src/handlers/auto-deploy';
import { s3EventOf, withSequencer } from '../../src/local/s3-events';

/** A record as moto 5.2.5 writes it (moto/s3/notifications.py): key through Python's quote_plus, no sequencer. */
const motoBody = (key: string) =>
  JSON.stringify({
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: '2026-01-01T00:00:00.000Z',
        eventName: 'ObjectCreated:Post',
        s3: { s3SchemaVersion: '1.0', configurationId: 'x', bucket: { name: 'b', arn: 'arn:aws:s3:::b' }, object: { key, size: 10, eTag: 'abc' } },
      },
    ],
  });

describe('s3EventOf', () => {
  it.each([
    { case: "S3's test event", body: JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' }) },
    { case: 'a body that is not JSON', body: 'hello' },
    { case: 'JSON without Records', body: '{"a": 1}' },
    { case: 'no body', body: undefined },
  ])('skips $case', ({ body }) => {
    // Act
    const event = s3EventOf(body);

    // Assess
    expect(event).toBeUndefined();
  });

  it.each([
    // quote_plus('bundles/a b.zip') and the like, as moto sends them; AWS would leave the slashes alone.
    { moto: 'bundles%2Fa+b.zip', key: 'bundles/a b.zip' },
    { moto: 'bundles%2Fwith+space%2Bplus+%281%29.zip', key: 'bundles/with space+plus (1).zip' },
    { moto: 'bundles%2F%C3%A9t%C3%A9.zip', key: 'bundles/été.zip' },
    { moto: 'bundles/a+b.zip', key: 'bundles/a b.zip' },
  ])('hands the handler a key it decodes to $key', ({ moto, key }) => {
    // Act
    const event = s3EventOf(motoBody(moto))!;

    // Assess
    expect(bundleEventsOf(event)[0]!.key).toBe(key);
  });
});

describe('withSequencer', () => {
  const event = s3EventOf(motoBody('bundles%2Fa.zip')) as S3Event;
  const message = { MessageId: '3f2a8c1e-0000-4000-8000-000000000001', Attributes: { SentTimestamp: '1767225600000' } };

  it('gives a redelivery of a message the same identity, and another message (another write) a new one', () => {
    // Act
    const first = bundleEventsOf(withSequencer(event, message))[0]!;
    const redelivered = bundleEventsOf(withSequencer(event, { ...message }))[0]!;
    const rewrite = bundleEventsOf(withSequencer(event, { MessageId: '9b1d0000-0000-4000-8000-000000000002', Attributes: { SentTimestamp: '1767225601000' } }))[0]!;

    // Assess
    expect(first.sequencer).toMatch(/^[0-9A-F]{20}$/);
    expect(eventIdentity(redelivered)).toBe(eventIdentity(first));
    expect(eventIdentity(rewrite)).not.toBe(eventIdentity(first));
  });

  it('keeps a sequencer S3 sent', () => {
    // Prepare
    const withOwn = structuredClone(event);
    withOwn.Records[0]!.s3.object.sequencer = '0055AED6DCD90281E5';

    // Act
    const out = withSequencer(withOwn, message);

    // Assess
    expect(out.Records[0]!.s3.object.sequencer).toBe('0055AED6DCD90281E5');
  });
});

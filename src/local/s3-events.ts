import {
  GetBucketNotificationConfigurationCommand,
  PutBucketNotificationConfigurationCommand,
  S3Client,
  type NotificationConfiguration,
} from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageCommand,
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { Context, S3Event } from 'aws-lambda';
import { handler as autoDeploy, decodeS3Key } from '../handlers/auto-deploy';
import type { BundleEventOutcome } from '../core/control-plane';
import { BUNDLES_PREFIX } from '../core/control-plane';
import { lambdaContext } from './server';

/**
 * Delivers the apps bucket's S3 events to the auto-deploy handler on the local stack (design.md §4, §6). moto sends
 * bucket notifications to SQS queues only (to Lambda it needs Docker), so the bucket notifies a queue and this pump
 * plays Lambda's SQS event source: long-poll, call the handler with the S3 event, delete the message once it returned.
 */
export const PUMP_NOTIFICATION_ID = 'apps-deployer-local-auto-deploy';

export interface S3EventPumpOptions {
  bucket: string;
  region: string;
  /** Default `apps-deployer-local-s3-events`. */
  queueName?: string;
  /** Long-poll wait. Small, so that stop() returns quickly even if an abort is not honoured. Default 1 s. */
  waitTimeSeconds?: number;
  /** A message whose handler call failed this many times is dropped (what a dead-letter queue would get). Default 3. */
  maxReceives?: number;
  /** Called with what the handler answered for each delivered event, with the records' keys decoded. */
  onOutcome?: (keys: string[], outcomes: BundleEventOutcome[]) => void;
  onError?: (err: unknown) => void;
}

export interface S3EventPump {
  queueUrl: string;
  queueArn: string;
  /** Resolves when every message received so far has been handled (for tests). */
  idle(): Promise<void>;
  /**
   * Stops polling and waits for the handler call in flight; then, unless `detach: false` (moto is about to go away
   * anyway), removes the bucket notification and deletes the queue.
   */
  stop(options?: { detach?: boolean }): Promise<void>;
}

// Same settings the handlers' own clients get from the environment (AWS_ENDPOINT_URL → moto).
function clients(region: string) {
  const custom = Boolean(process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL);
  return { s3: new S3Client({ region, forcePathStyle: custom }), sqs: new SQSClient({ region }) };
}

/** The notification configuration of the bucket with ours (same Id) replaced or removed; other targets are kept. */
function withOurQueue(config: NotificationConfiguration, queueArn: string | undefined): NotificationConfiguration {
  const others = (config.QueueConfigurations ?? []).filter((q) => q.Id !== PUMP_NOTIFICATION_ID);
  const queues = queueArn
    ? [
        ...others,
        {
          Id: PUMP_NOTIFICATION_ID,
          QueueArn: queueArn,
          Events: ['s3:ObjectCreated:*' as const],
          Filter: { Key: { FilterRules: [{ Name: 'prefix' as const, Value: BUNDLES_PREFIX }, { Name: 'suffix' as const, Value: '.zip' }] } },
        },
      ]
    : others;
  return {
    ...(queues.length > 0 ? { QueueConfigurations: queues } : {}),
    ...(config.TopicConfigurations?.length ? { TopicConfigurations: config.TopicConfigurations } : {}),
    ...(config.LambdaFunctionConfigurations?.length ? { LambdaFunctionConfigurations: config.LambdaFunctionConfigurations } : {}),
    ...(config.EventBridgeConfiguration ? { EventBridgeConfiguration: config.EventBridgeConfiguration } : {}),
  };
}

async function currentNotifications(s3: S3Client, bucket: string): Promise<NotificationConfiguration> {
  const { $metadata: _, ...config } = await s3.send(new GetBucketNotificationConfigurationCommand({ Bucket: bucket }));
  return config;
}

/**
 * Parses one SQS message body as S3 sends it. `undefined` for S3's `s3:TestEvent` (sent when a notification is
 * configured) and anything else that is not an event: nothing to deploy.
 *
 * Keys: AWS URL-encodes the object key in events with spaces as `+` (`bundles/a b.zip` → `bundles/a+b.zip`), and the
 * handler decodes with `decodeURIComponent(key.replace(/\+/g, ' '))`. moto 5.2.5 encodes with Python's
 * `quote_plus(key)` (moto/s3/notifications.py), which differs from AWS only in also encoding `/` as `%2F`: the
 * handler's decoding gives the same key for both, so the key is passed through as moto wrote it. Should a moto ever send
 * the raw key, api.test.ts (a key with a space, a `+` and parentheses) and test/unit/local-s3-events.test.ts fail.
 */
export function s3EventOf(body: string | undefined): S3Event | undefined {
  if (!body) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  if ((parsed as { Event?: unknown }).Event === 's3:TestEvent') return undefined;
  const records = (parsed as { Records?: unknown }).Records;
  return Array.isArray(records) ? (parsed as S3Event) : undefined;
}

/**
 * moto's events carry no `sequencer`, which AWS always sends and the handler's duplicate check relies on when the bucket
 * is not versioned: without it, uploading the same bytes to the same key again would look like a duplicate of the
 * first upload and not deploy. One is made from the message's send time and id, which a redelivery of the same
 * message keeps, so a redelivery is still a duplicate (as on AWS, where S3's duplicate events share a sequencer).
 */
export function withSequencer(event: S3Event, message: Pick<Message, 'MessageId' | 'Attributes'>): S3Event {
  const sent = Number(message.Attributes?.SentTimestamp ?? '0');
  const id = (message.MessageId ?? '').replace(/[^0-9a-f]/gi, '').slice(0, 8).toUpperCase();
  const sequencer = `${sent.toString(16).toUpperCase().padStart(12, '0')}${id}`;
  return {
    ...event,
    Records: event.Records.map((r) => (r.s3.object.sequencer ? r : { ...r, s3: { ...r.s3, object: { ...r.s3.object, sequencer } } })),
  };
}

export async function startS3EventPump(options: S3EventPumpOptions): Promise<S3EventPump> {
  const { s3, sqs } = clients(options.region);
  const queueName = options.queueName ?? 'apps-deployer-local-s3-events';
  const waitTimeSeconds = options.waitTimeSeconds ?? 1;
  const maxReceives = options.maxReceives ?? 3;
  const onError = options.onError ?? ((err: unknown) => console.error('S3 event pump:', err instanceof Error ? err.message : err));

  // A deploy takes longer than SQS's default 30 s of invisibility; redelivery mid-deploy would only be a duplicate,
  // but it would be noise.
  const { QueueUrl: queueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: queueName, Attributes: { VisibilityTimeout: '900' } }));
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl!, AttributeNames: ['QueueArn'] }));
  const queueArn = attrs.Attributes?.QueueArn;
  if (!queueUrl || !queueArn) throw new Error(`S3 event pump: could not create the SQS queue ${queueName}`);

  try {
    const config = await currentNotifications(s3, options.bucket);
    await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: options.bucket, NotificationConfiguration: withOurQueue(config, queueArn) }));
  } catch (err) {
    await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    const name = (err as { name?: string }).name;
    if (name === 'NoSuchBucket') throw new Error(`S3 event pump: bucket ${options.bucket} does not exist yet; create it first (POST /init {"create": true})`, { cause: err });
    throw err;
  }

  let stopping = false;
  const abort = new AbortController();
  let busy: Promise<void> = Promise.resolve();

  const handle = async (message: Message): Promise<void> => {
    const parsed = s3EventOf(message.Body);
    if (parsed) {
      const event = withSequencer(parsed, message);
      try {
        const outcomes = (await autoDeploy(event, lambdaContext('auto-deploy'))) as BundleEventOutcome[];
        options.onOutcome?.(
          event.Records.map((r) => decodeS3Key(r.s3.object.key)),
          outcomes,
        );
      } catch (err) {
        // As Lambda's SQS source: the message comes back after a while, and goes to the "dead-letter queue" after a few tries.
        const receives = Number(message.Attributes?.ApproximateReceiveCount ?? '1');
        onError(new Error(`auto-deploy handler failed (attempt ${receives} of ${maxReceives}): ${(err as Error).message}`, { cause: err }));
        if (receives < maxReceives) {
          await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: 5 }));
          return;
        }
      }
    }
    await sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
  };

  const loop = (async () => {
    while (!stopping) {
      let messages: Message[] = [];
      try {
        const res = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitTimeSeconds, MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'] }),
          { abortSignal: abort.signal },
        );
        messages = res.Messages ?? [];
      } catch (err) {
        if (stopping) break;
        onError(err);
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      // One at a time, in the order received: the handler deduplicates, and one deploy at a time keeps moto calm.
      const batch = (async () => {
        for (const m of messages) {
          try {
            await handle(m);
          } catch (err) {
            onError(err);
          }
        }
      })();
      busy = batch;
      await batch;
    }
  })();

  return {
    queueUrl,
    queueArn,
    idle: () => busy,
    async stop({ detach = true } = {}) {
      if (stopping) return;
      stopping = true;
      abort.abort();
      await loop;
      if (!detach) {
        s3.destroy();
        sqs.destroy();
        return;
      }
      try {
        const config = await currentNotifications(s3, options.bucket);
        await s3.send(new PutBucketNotificationConfigurationCommand({ Bucket: options.bucket, NotificationConfiguration: withOurQueue(config, undefined) }));
        await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
      } catch (err) {
        // moto may already be gone when the whole stack shuts down; nothing is left behind then anyway.
        onError(err);
      } finally {
        s3.destroy();
        sqs.destroy();
      }
    },
  };
}

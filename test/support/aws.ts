// SDK clients pointed at the test moto. The endpoint comes from AWS_ENDPOINT_URL, which
// test/support/integration-setup.ts sets for every integration test file.
import { IAMClient, type IAMClientConfig } from '@aws-sdk/client-iam';
import { LambdaClient, type LambdaClientConfig } from '@aws-sdk/client-lambda';
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

export const TEST_REGION = 'us-east-1';
/** moto's default account. */
export const TEST_ACCOUNT_ID = '123456789012';

export function testEndpoint(): string {
  const endpoint = process.env.AWS_ENDPOINT_URL;
  if (!endpoint) {
    throw new Error('AWS_ENDPOINT_URL is not set: these clients are for the integration project, whose setup sets it');
  }
  return endpoint;
}

function common() {
  return {
    endpoint: testEndpoint(),
    region: TEST_REGION,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
}

export function s3Client(overrides: S3ClientConfig = {}): S3Client {
  // Virtual-host addressing would put the bucket name in front of the IP address.
  return new S3Client({ ...common(), forcePathStyle: true, ...overrides });
}

export function iamClient(overrides: IAMClientConfig = {}): IAMClient {
  return new IAMClient({ ...common(), ...overrides });
}

export function lambdaClient(overrides: LambdaClientConfig = {}): LambdaClient {
  return new LambdaClient({ ...common(), ...overrides });
}

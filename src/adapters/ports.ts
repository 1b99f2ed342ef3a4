import type { AwsTarget } from '../core/config';
import type { DeployPorts } from '../core/deploy';
import type { MattermostPort } from '../core/ports';
import { makeAwsClients } from './aws';
import { SdkIamPort } from './iam';
import { SdkLambdaPort } from './lambda';
import { SdkS3Port } from './s3';

/** The SDK-backed ports for one AWS target: the one place the CLI and the handlers wire core to AWS. */
export function makeDeployPorts(target: AwsTarget, mattermost?: MattermostPort): DeployPorts {
  const clients = makeAwsClients(target);
  return {
    region: target.region,
    s3: new SdkS3Port(clients.s3, target.bucket, target.region),
    lambda: new SdkLambdaPort(clients.lambda),
    iam: new SdkIamPort(clients.iam),
    ...(mattermost ? { mattermost } : {}),
  };
}

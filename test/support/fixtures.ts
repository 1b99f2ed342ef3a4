// Paths of the peer project's fixtures, read from ../shared beside the clone (never copied into the project).
import { fileURLToPath } from 'node:url';

export const PEER_BUNDLE = fileURLToPath(new URL('../../../shared/fixtures/test_aws_bundle.zip', import.meta.url));
export const PEER_PROVISION_JSON = fileURLToPath(new URL('../../../shared/fixtures/test_aws_bundle.provision.json', import.meta.url));

import { createProvisioningDriver as createDriver, DriverExtras } from '../provisioning/create-provisioning-driver';
import type { ProvisioningDriver } from '../provisioning/provisioning-driver';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import type { ControlPlaneConfig } from './config';

export { createKvStore } from '../common/create-kv-store';
export { createSecretStore } from '../provisioning/secrets/create-secret-store';
export type { DriverExtras } from '../provisioning/create-provisioning-driver';

/** The control plane's driver (provisioning/create-provisioning-driver.ts picks it from config). */
export function createProvisioningDriver(config: ControlPlaneConfig, secretStore: SecretStore, extras: DriverExtras = {}): Promise<ProvisioningDriver> {
  return createDriver(config, secretStore, extras);
}

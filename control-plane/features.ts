import type { DynamicModule } from '@nestjs/common';
import { ApiKeysModule } from './api-keys/api-keys.module';
import { BillingModule } from './billing/billing.module';
import { TenantsModule } from './tenants/tenants.module';

/** Feature modules of the control plane, in one list so the app and tests compose the same thing. */
export function featureModules(): NonNullable<DynamicModule['imports']> {
  return [TenantsModule, ApiKeysModule, BillingModule];
}

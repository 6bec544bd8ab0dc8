import sharedGlobalTeardown from '../global-teardown';

export default async function globalTeardown(): Promise<void> {
  await sharedGlobalTeardown();
}
